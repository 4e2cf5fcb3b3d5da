//! The `gatez` binary as a process: `up` serves every layer's health endpoint, SIGTERM stops it
//! cleanly within 5 s, and bad config fails at start naming the field.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const GATEZ: &str = env!("CARGO_BIN_EXE_gatez");

struct Stack {
    child: Child,
    ports: [u16; 3],
    _dir: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, ports: [u16; 3], extra: &str) -> std::path::PathBuf {
    let path = dir.join("gatez.yaml");
    let events = dir.join("events");
    std::fs::write(
        &path,
        format!(
            "edge:\n  listen: 127.0.0.1:{}\nai:\n  listen: 127.0.0.1:{}\nagent:\n  listen: 127.0.0.1:{}\n\
             stores:\n  events:\n    backend: jsonl\n    jsonl:\n      dir: {}\n{extra}",
            ports[0],
            ports[1],
            ports[2],
            events.display()
        ),
    )
    .unwrap();
    path
}

fn start(args: &[&str], extra_config: &str) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let p = gatez_conformance::free_ports(3);
    let ports = [p[0], p[1], p[2]];
    let config = write_config(dir.path(), ports, extra_config);
    let child = Command::new(GATEZ)
        .args(args)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Stack {
        child,
        ports,
        _dir: dir,
    }
}

async fn wait_healthy(client: &reqwest::Client, port: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status().is_success()
        {
            return r.json().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "port {port} never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "gatez did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn up_serves_all_layers_and_stops_on_sigterm() {
    let mut stack = start(&["up"], "");
    let client = reqwest::Client::new();
    for (port, layer) in stack.ports.iter().zip(["edge", "ai", "agent"]) {
        let body = wait_healthy(&client, *port).await;
        assert_eq!(body["layer"], layer);
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        let metrics = client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(metrics.status(), 200);
    }
    // Unknown paths are JSON errors in each layer's shape, with the request id.
    let r = client
        .get(format!("http://127.0.0.1:{}/nope", stack.ports[0]))
        .header("x-request-id", "test-req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-request-id"], "test-req-1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(body["error"]["request_id"], "test-req-1");
    let r = client
        .get(format!("http://127.0.0.1:{}/v1/nope", stack.ports[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    // Every layer counts its requests by route template, never by raw path.
    let metrics = client
        .get(format!("http://127.0.0.1:{}/metrics", stack.ports[0]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("gatez_http_requests_total")
                && l.contains("layer=\"edge\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("edge's 404 not counted:\n{metrics}"));
    assert!(line.contains("route=\"unmatched\""), "{line}");
    assert!(!line.contains("/nope"), "raw path used as a label: {line}");

    let started = Instant::now();
    sigterm(&stack.child);
    let status = wait_exit(&mut stack.child, Duration::from_secs(5));
    assert!(status.success(), "exit status {status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    for port in stack.ports {
        assert!(
            client
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_err(),
            "port {port} still answers after exit"
        );
    }
}

#[tokio::test]
async fn serve_runs_only_the_named_layer() {
    let mut stack = start(&["serve", "agent"], "");
    let client = reqwest::Client::new();
    let body = wait_healthy(&client, stack.ports[2]).await;
    assert_eq!(body["layer"], "agent");
    assert!(
        client
            .get(format!("http://127.0.0.1:{}/healthz", stack.ports[0]))
            .send()
            .await
            .is_err(),
        "edge must not be served by `serve agent`"
    );
    sigterm(&stack.child);
    assert!(wait_exit(&mut stack.child, Duration::from_secs(5)).success());
}

#[test]
fn bad_config_fails_at_start_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, "edge:\n  listen: 127.0.0.1:1\n  lisen: typo\n").unwrap();
    let out = Command::new(GATEZ)
        .args(["up", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("edge"), "{stderr}");
    assert!(stderr.contains("lisen"), "{stderr}");

    let out = Command::new(GATEZ)
        .args(["check-config", "--config"])
        .arg(dir.path().join("missing.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

#[test]
fn port_in_use_fails_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let p = gatez_conformance::free_ports(2);
    let config = write_config(dir.path(), [port, p[0], p[1]], "");
    let out = Command::new(GATEZ)
        .args(["up", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn keygen_writes_a_usable_key_pair() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(GATEZ)
        .args(["keygen", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let private = dir.path().join("identity.pem");
    let public = dir.path().join("identity.pub.pem");
    let config = dir.path().join("gatez.yaml");
    std::fs::write(
        &config,
        format!(
            "identity:\n  signing_key: {{ file: {} }}\n  trusted_keys: [{}]\n",
            private.display(),
            public.display()
        ),
    )
    .unwrap();
    let out = Command::new(GATEZ)
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second run must not overwrite the keys.
    let again = Command::new(GATEZ)
        .args(["keygen", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
    }
}
