//! A server running as a child process: spawning, killing, and reading its log.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// A child server process whose stdout and stderr go to a log file.
///
/// Dropping it kills the process (SIGKILL) and reaps it, so a panicking test leaves no
/// orphan behind. If the test process itself dies without unwinding (abort, SIGKILL from a
/// test runner's timeout), the kernel kills the server through `PR_SET_PDEATHSIG`.
pub(crate) struct ServerProcess {
    child: Mutex<Child>,
    pid: u32,
}

impl ServerProcess {
    /// Starts `program` with `args`, appending its output to `log` (kept across restarts).
    pub(crate) fn spawn(program: &Path, args: &[String], log: &Path) -> io::Result<Self> {
        let out = OpenOptions::new().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let mut command = death_signal_wrapper(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = spawn_from_long_lived_thread(command)?;
        let pid = child.id();
        Ok(Self {
            child: Mutex::new(child),
            pid,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// `Some(status)` once the process has exited.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.try_wait().ok().flatten()
    }

    /// SIGKILL (a crash, as far as the server knows), then reap, so the pid really is gone.
    pub(crate) fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        // Errors only mean the process already exited.
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wraps the server in `setpriv --pdeathsig KILL`, which sets the death signal and then
/// execs the server (same pid). The `unsafe` needed to call prctl ourselves is forbidden in
/// this workspace. Without setpriv, servers still die on Drop, just not on an abort.
fn death_signal_wrapper(program: &Path) -> Command {
    static SETPRIV: OnceLock<Option<PathBuf>> = OnceLock::new();
    match SETPRIV.get_or_init(|| find_in_path("setpriv")) {
        Some(setpriv) => {
            let mut command = Command::new(setpriv);
            command.args(["--pdeathsig", "KILL", "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// The death signal fires when the *thread* that forked the child exits, not the process.
/// Test threads (and tokio's blocking threads) come and go, so every server is forked from
/// one thread that lives until the test process exits.
fn spawn_from_long_lived_thread(command: Command) -> io::Result<Child> {
    type Request = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("gatez-conformance-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("gatez-conformance: cannot start the spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread is gone"))?
}

/// Full path of `name` in `$PATH` (plus the sbin directories, where Debian puts
/// clickhouse-server but which a non-root `$PATH` often lacks).
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The last `count` lines of `text`, for error messages.
pub(crate) fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_reaps_and_drop_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let sleep = find_in_path("sleep").expect("sleep in PATH");
        let process = ServerProcess::spawn(&sleep, &["30".into()], &log).unwrap();
        assert!(process.exit_status().is_none());
        process.kill();
        assert!(process.exit_status().is_some());
        assert!(!Path::new(&format!("/proc/{}", process.pid())).exists());
    }

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
        assert_eq!(last_lines("", 5), "");
    }
}
