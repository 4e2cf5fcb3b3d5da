//! Runs `tests/python/test_sdk_fidelity.py` (the official `openai` and `anthropic` Python
//! SDKs against the mocks) under pytest, so the crate's test command covers it.
//! Needs `python3 -m pip install -r mocks/tests/python/requirements.txt` (the README test
//! command runs it); without them this test fails, loudly.

use std::process::Command;

#[test]
fn official_python_sdks_accept_the_mocks() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import openai, anthropic, pytest"])
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "the SDK fidelity test needs: {python} -m pip install openai anthropic pytest"
    );
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_sdk_fidelity.py");
    let out = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
        ])
        .arg(&script)
        .env("GATEZ_MOCKS_BIN", env!("CARGO_BIN_EXE_gatez-mocks"))
        .output()
        .expect("run pytest");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pytest failed:\n{report}");
    // pytest exits 0 only when tests ran; make sure they did not all get deselected.
    assert!(report.contains(" passed"), "pytest ran no test:\n{report}");
}
