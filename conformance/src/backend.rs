//! Choosing between local processes and Docker containers (`GATEZ_INFRA`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// How servers are started. Chosen once per test process, see [`Backend::current`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Servers run as child processes of the test, from the binaries installed on the host.
    Process,
    /// Servers run in Docker containers started with `testcontainers`.
    Docker,
}

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

impl Backend {
    /// The backend for this test process:
    /// - `GATEZ_INFRA=process` or `GATEZ_INFRA=docker` forces one;
    /// - otherwise Docker when `DOCKER_HOST` is set or `/var/run/docker.sock` answers a ping,
    ///   else processes.
    ///
    /// # Panics
    /// If `GATEZ_INFRA` has any other value: a typo must not silently pick a backend.
    pub fn current() -> Self {
        static CURRENT: OnceLock<Backend> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let requested = std::env::var("GATEZ_INFRA").ok();
            match requested.as_deref().map(str::trim) {
                Some("process") => Backend::Process,
                Some("docker") => Backend::Docker,
                Some("") | None => Self::detect(),
                Some(other) => panic!(
                    "gatez-conformance: GATEZ_INFRA={other:?} is not supported: use \"process\" or \"docker\""
                ),
            }
        })
    }

    fn detect() -> Self {
        let docker_host = std::env::var_os("DOCKER_HOST").is_some_and(|v| !v.is_empty());
        if docker_host || docker_socket_answers(Path::new(DOCKER_SOCKET)) {
            Backend::Docker
        } else {
            Backend::Process
        }
    }
}

/// A socket file can outlive its daemon, so only a `/_ping` answer counts as "reachable".
fn docker_socket_answers(socket: &Path) -> bool {
    let ping = || -> std::io::Result<bool> {
        let mut stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.") && head.ends_with(b"200"))
    };
    socket.exists() && ping().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_socket_does_not_answer() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!docker_socket_answers(&dir.path().join("docker.sock")));
    }

    #[test]
    fn stale_socket_file_does_not_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        // A listener that accepts and closes without answering, like a wedged daemon.
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || drop(listener.accept()));
        assert!(!docker_socket_answers(&path));
        server.join().unwrap();
    }

    #[test]
    fn answering_socket_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 64];
            let _ = conn.read(&mut request).unwrap();
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                .unwrap();
        });
        assert!(docker_socket_answers(&path));
        server.join().unwrap();
    }
}
