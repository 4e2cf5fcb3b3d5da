//! The system under test: a `gatez up` child process the gate starts, waits for, and stops
//! with SIGTERM, timing the shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::config::Ports;
use crate::scenarios::Endpoints;

/// `gatez` next to this executable, as cargo lays out one target directory.
pub fn default_gatez_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the running executable")?;
    let dir = exe
        .parent()
        .context("the running executable has no directory")?;
    Ok(dir.join("gatez"))
}

pub struct Gatez {
    child: Child,
    pub endpoints: Endpoints,
    /// Holds the config and the child's log; removed on drop.
    dir: tempfile::TempDir,
}

#[derive(Debug, Clone)]
pub struct Shutdown {
    pub took: Duration,
    /// `None` when it had to be killed.
    pub status: Option<ExitStatus>,
    /// Peak resident memory of the process over its life (VmHWM), when it could be read.
    pub peak_rss_kib: Option<u64>,
}

impl Gatez {
    /// Starts `gatez up` on `ports` (127.0.0.1 only) and waits until every layer answers
    /// `/healthz`, for at most `startup_timeout`.
    pub async fn start(
        bin: &Path,
        ports: Ports,
        startup_timeout: Duration,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            bin.is_file(),
            "no gatez binary at {}; build it first with `cargo build --release -p gatez` \
             (or point --gatez-bin at one)",
            bin.display()
        );
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let endpoints = Endpoints {
            edge: loopback(ports.edge),
            ai: loopback(ports.ai),
            agent: loopback(ports.agent),
        };
        for (layer, addr) in endpoints.layers() {
            // Something already answering there would be measured instead of our child.
            anyhow::ensure!(
                TcpStream::connect(addr).await.is_err(),
                "{addr} (for {layer}) is already in use; stop whatever listens there or change \
                 the ports in gate.yaml"
            );
        }

        let dir = tempfile::Builder::new()
            .prefix("gatez-loadtest-")
            .tempdir()?;
        let config = dir.path().join("gatez.yaml");
        std::fs::write(&config, gatez_config(&endpoints))?;
        let log = std::fs::File::create(dir.path().join("gatez.log"))?;
        let mut command = Command::new(bin);
        command
            .arg("up")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // A failing gate must not leave a server behind.
            .kill_on_drop(true);
        // Config overrides, log levels or trace export from the developer's shell would
        // change what is measured: gatez runs with its own defaults.
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("GATEZ") || name.starts_with("OTEL_") || name == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut gatez = Self {
            child,
            endpoints,
            dir,
        };
        if let Err(e) = gatez.wait_healthy(startup_timeout).await {
            return Err(e.context(format!(
                "gatez did not come up; its log:\n{}",
                gatez.log_tail()
            )));
        }
        Ok(gatez)
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for (layer, addr) in self.endpoints.layers() {
            loop {
                if let Some(status) = self.child.try_wait()? {
                    anyhow::bail!("gatez exited during start-up ({status})");
                }
                match probe(addr).await {
                    Ok(200) => break,
                    Ok(_) | Err(_) if Instant::now() >= deadline => {
                        anyhow::bail!(
                            "{layer} at {addr} did not answer /healthz with 200 within {timeout:?}"
                        )
                    }
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
        Ok(())
    }

    /// SIGTERM, then waits up to `limit` for the exit. Past that the child is killed and
    /// `status` is `None`: the gate records that as a failure rather than aborting, so the
    /// figures of the run still land in RESULTS.md.
    pub async fn stop(mut self, limit: Duration) -> anyhow::Result<Shutdown> {
        let pid = self.child.id().context("gatez already exited")?;
        let peak_rss_kib = peak_rss_kib(pid);
        let pid = Pid::from_raw(i32::try_from(pid)?);
        let sent = Instant::now();
        kill(pid, Signal::SIGTERM).context("cannot send SIGTERM to gatez")?;
        let status = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => Some(status?),
            Err(_) => {
                eprintln!(
                    "gatez did not exit within {limit:?} of SIGTERM; killing it. Its log:\n{}",
                    self.log_tail()
                );
                let _ = self.child.kill().await;
                None
            }
        };
        let took = sent.elapsed();
        if let Some(status) = status
            && !status.success()
        {
            eprintln!("gatez exited with {status}; its log:\n{}", self.log_tail());
        }
        Ok(Shutdown {
            took,
            status,
            peak_rss_kib,
        })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("gatez.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// Only the listeners: everything else keeps its defaults (embedded stores, no telemetry
/// export), so the gate measures the gateway itself.
fn gatez_config(endpoints: &Endpoints) -> String {
    format!(
        "edge:\n  listen: \"{}\"\nai:\n  listen: \"{}\"\nagent:\n  listen: \"{}\"\n",
        endpoints.edge, endpoints.ai, endpoints.agent
    )
}

/// One `GET /healthz` over a fresh connection, returning the status code. Plain HTTP/1.1 by
/// hand: the probe needs no client library, only a status line.
async fn probe(addr: SocketAddr) -> anyhow::Result<u16> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut head = Vec::new();
        stream.take(4096).read_to_end(&mut head).await?;
        let text = String::from_utf8_lossy(&head);
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .context("not an HTTP/1.1 response")?;
        anyhow::Ok(status)
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .context("timed out")?
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_only_the_listeners() {
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let text = gatez_config(&Endpoints {
            edge: loopback(19080),
            ai: loopback(14000),
            agent: loopback(15001),
        });
        assert_eq!(
            text,
            "edge:\n  listen: \"127.0.0.1:19080\"\nai:\n  listen: \"127.0.0.1:14000\"\n\
             agent:\n  listen: \"127.0.0.1:15001\"\n"
        );
    }
}
