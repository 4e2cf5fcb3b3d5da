//! The lifecycle every server kind shares: start (retrying on port clashes), readiness,
//! stop, restart and teardown, on either backend.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::backend::Backend;
use crate::docker::DockerServer;
use crate::kind::{Endpoint, Kind, Probed};
use crate::ports::free_ports;
use crate::process::{ServerProcess, find_in_path, last_lines};

/// Whole starts (fresh ports, fresh data dir) tried before giving up. A retry only happens
/// when the server died early or another server answered on our port: both mean a port
/// clash with a parallel test, which a new random port almost surely avoids.
const ATTEMPTS: u32 = 5;
/// One probe may hang on a half-started server; never let it eat the whole timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const LOG_LINES: usize = 40;

/// A server of kind `K`, running or stopped, torn down on drop.
pub(crate) struct Server<K: Kind> {
    endpoint: Endpoint,
    instance: String,
    http: reqwest::Client,
    runtime: Runtime,
    kind: PhantomData<fn() -> K>,
}

enum Runtime {
    Process(LocalServer),
    Docker(Box<DockerServer>),
}

struct LocalServer {
    // Declared before `dir`: fields drop in order, so the server dies before its data dir
    // is deleted under it.
    process: Option<ServerProcess>,
    binary: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    own_logs: Vec<PathBuf>,
    dir: TempDir,
}

/// Why a start or restart failed.
enum Failure {
    Spawn(String),
    Container(String),
    Exited(String),
    Foreign(String),
    Timeout { after: Duration, last: String },
}

impl Failure {
    /// Whether fresh ports might fix it (see [`ATTEMPTS`]).
    fn is_port_clash(&self) -> bool {
        match self {
            Failure::Exited(_) | Failure::Foreign(_) => true,
            // Docker's wording for a published port that is taken; anything else (no
            // engine, failed pull) would fail again.
            Failure::Container(e) => {
                e.contains("port is already allocated") || e.contains("address already in use")
            }
            Failure::Spawn(_) | Failure::Timeout { .. } => false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Spawn(e) => write!(f, "cannot spawn: {e}"),
            Failure::Container(e) => write!(f, "{e}"),
            Failure::Exited(status) => write!(f, "server exited during startup ({status})"),
            Failure::Foreign(e) => write!(f, "another server answers on our port ({e})"),
            Failure::Timeout { after, last } => {
                write!(f, "not ready after {after:?}; last probe: {last}")
            }
        }
    }
}

impl<K: Kind> Server<K> {
    /// Starts a server on fresh ports and waits until it is ready.
    ///
    /// # Panics
    /// If the binary is missing (with the install command), or the server cannot be made
    /// ready (with the tail of its log).
    pub(crate) async fn start() -> Self {
        let backend = Backend::current();
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let (failure, log) = match Self::launch(backend).await {
                Ok(server) => match server.wait_ready().await {
                    Ok(probed) => {
                        server.announce("started", &probed, started);
                        return server;
                    }
                    // The failed server is dropped (killed, data dir removed) right here.
                    Err(failure) => (failure, server.log_tail().await),
                },
                Err(failure) => (failure, String::new()),
            };
            if !failure.is_port_clash() || attempt == ATTEMPTS {
                panic!(
                    "gatez-conformance: {} failed to start (attempt {attempt}/{ATTEMPTS}): {failure}\n{log}",
                    K::BINARY
                );
            }
            eprintln!(
                "gatez-conformance: {} failed to start ({failure}); retrying on other ports",
                K::BINARY
            );
            attempt += 1;
        }
    }

    /// Creates the server and sets it running, without waiting for readiness.
    async fn launch(backend: Backend) -> Result<Self, Failure> {
        let instance = instance_name();
        let ports = free_ports(K::PORTS);
        let (host, runtime) = match backend {
            Backend::Process => {
                let mut local = LocalServer::prepare::<K>(&ports, &instance);
                local.spawn()?;
                ("127.0.0.1".to_owned(), Runtime::Process(local))
            }
            Backend::Docker => {
                let docker = DockerServer::start(K::container(&instance), &ports)
                    .await
                    .map_err(Failure::Container)?;
                (docker.host().to_owned(), Runtime::Docker(Box::new(docker)))
            }
        };
        Ok(Self {
            endpoint: Endpoint { host, ports },
            instance,
            http: http_client(),
            runtime,
            kind: PhantomData,
        })
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A client with no proxy: a CI-wide `HTTP_PROXY` must not intercept loopback calls.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        match &self.runtime {
            Runtime::Process(local) => local.process.as_ref().map(ServerProcess::pid),
            Runtime::Docker(_) => None,
        }
    }

    pub(crate) fn data_dir(&self) -> Option<&Path> {
        match &self.runtime {
            Runtime::Process(local) => Some(local.dir.path()),
            Runtime::Docker(_) => None,
        }
    }

    pub(crate) async fn is_running(&self) -> bool {
        match &self.runtime {
            Runtime::Process(local) => local.exit_reason().is_none(),
            Runtime::Docker(docker) => docker.is_running().await,
        }
    }

    /// Kills the server at once (SIGKILL, like a crash); ports and data are kept.
    pub(crate) async fn stop(&mut self) {
        // Pooled keep-alive connections to the dead server would fail with "incomplete
        // message" rather than "connection refused", which is what a client sees after a crash.
        self.http = http_client();
        match &mut self.runtime {
            Runtime::Process(local) => local.process = None,
            Runtime::Docker(docker) => {
                if let Err(e) = docker.stop().await {
                    panic!("gatez-conformance: {}: {e}", K::BINARY);
                }
            }
        }
    }

    /// Stops the server if it runs, starts it again on the same ports and data, and waits
    /// until it is ready.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        let started = Instant::now();
        let launched = match &mut self.runtime {
            Runtime::Process(local) => local.spawn(),
            Runtime::Docker(docker) => docker.start_again().await.map_err(Failure::Container),
        };
        let result = match launched {
            Ok(()) => self.wait_ready().await,
            Err(failure) => Err(failure),
        };
        match result {
            Ok(probed) => self.announce("restarted", &probed, started),
            Err(failure) => panic!(
                "gatez-conformance: {} failed to restart on {}:{}: {failure}\n{}",
                K::BINARY,
                self.endpoint.host,
                self.endpoint.ports[0],
                self.log_tail().await
            ),
        }
    }

    async fn wait_ready(&self) -> Result<Probed, Failure> {
        // Docker publishes the ports itself, so a clash fails the container start instead.
        let expected = self.pid().map(|pid| K::identity(pid, &self.instance));
        let started = Instant::now();
        loop {
            if let Some(reason) = self.exit_reason().await {
                return Err(Failure::Exited(reason));
            }
            let last =
                match tokio::time::timeout(PROBE_TIMEOUT, K::probe(&self.endpoint, &self.http))
                    .await
                {
                    Ok(Ok(probed)) => {
                        return match expected {
                            Some(expected) if expected != probed.identity => {
                                Err(Failure::Foreign(format!(
                                    "expected identity {expected:?}, got {:?}",
                                    probed.identity
                                )))
                            }
                            _ => Ok(probed),
                        };
                    }
                    Ok(Err(e)) => e,
                    Err(_) => format!("probe timed out after {PROBE_TIMEOUT:?}"),
                };
            if started.elapsed() >= K::READY_TIMEOUT {
                return Err(Failure::Timeout {
                    after: K::READY_TIMEOUT,
                    last,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn exit_reason(&self) -> Option<String> {
        match &self.runtime {
            Runtime::Process(local) => local.exit_reason(),
            Runtime::Docker(docker) => (!docker.is_running().await)
                .then(|| format!("container {} is not running", docker.id())),
        }
    }

    /// The CI log must show that real servers ran, and where.
    fn announce(&self, what: &str, probed: &Probed, started: Instant) {
        let origin = match &self.runtime {
            Runtime::Process(local) => match &local.process {
                Some(process) => format!("pid {}", process.pid()),
                None => "no process".to_owned(),
            },
            Runtime::Docker(docker) => format!("docker container {:.12}", docker.id()),
        };
        eprintln!(
            "gatez-conformance: {what} {} {} on {}:{} ({origin}) in {} ms",
            K::BINARY,
            probed.version,
            self.endpoint.host,
            self.endpoint.ports[0],
            started.elapsed().as_millis()
        );
    }

    async fn log_tail(&self) -> String {
        match &self.runtime {
            Runtime::Process(local) => local.log_tail(),
            Runtime::Docker(docker) => docker.log_tail(LOG_LINES).await,
        }
    }
}

impl LocalServer {
    fn prepare<K: Kind>(ports: &[u16], instance: &str) -> Self {
        let binary = find_in_path(K::BINARY).unwrap_or_else(|| {
            panic!(
                "{} not found: install it with: apt-get install -y {}",
                K::BINARY,
                K::PACKAGES
            )
        });
        let dir = tempfile::Builder::new()
            .prefix(&format!("gatez-{}-", K::BINARY))
            .tempdir()
            .unwrap_or_else(|e| panic!("gatez-conformance: cannot create a temp dir: {e}"));
        let args = K::process_args(dir.path(), ports, instance).unwrap_or_else(|e| {
            panic!(
                "gatez-conformance: cannot write {} config into {}: {e}",
                K::BINARY,
                dir.path().display()
            )
        });
        Self {
            process: None,
            binary,
            args,
            log: dir.path().join("server.log"),
            own_logs: K::own_logs(dir.path()),
            dir,
        }
    }

    fn spawn(&mut self) -> Result<(), Failure> {
        let process = ServerProcess::spawn(&self.binary, &self.args, &self.log).map_err(|e| {
            Failure::Spawn(format!("{} {:?}: {e}", self.binary.display(), self.args))
        })?;
        self.process = Some(process);
        Ok(())
    }

    fn exit_reason(&self) -> Option<String> {
        match &self.process {
            None => Some("stopped".to_owned()),
            Some(process) => process.exit_status().map(|status| status.to_string()),
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        for path in std::iter::once(&self.log).chain(&self.own_logs) {
            let body = match std::fs::read(path) {
                Ok(bytes) => last_lines(&String::from_utf8_lossy(&bytes), LOG_LINES),
                Err(e) => format!("(cannot read: {e})"),
            };
            text.push_str(&format!(
                "--- last lines of {} ---\n{body}\n",
                path.display()
            ));
        }
        text
    }
}

/// A name unique across test processes, for servers that can report it back (etcd member
/// name, ClickHouse macro): pid plus a per-process counter.
fn instance_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "gatez-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("gatez-conformance: cannot build an HTTP client")
}

#[cfg(test)]
mod tests;
