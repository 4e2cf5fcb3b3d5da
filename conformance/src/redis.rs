//! A real Redis server.

use std::io;
use std::path::Path;
use std::time::Duration;

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::{GenericImage, ImageExt};

use crate::docker::ContainerSpec;
use crate::kind::{Endpoint, Kind, Probed};
use crate::server::Server;

/// A real Redis server (redis-server 7 from the host, or `redis:7` in Docker mode), killed
/// and deleted when dropped, even if the test panics.
///
/// Runs without persistence (no RDB, no AOF): after [`Redis::restart`] the data is gone,
/// as in the gateway's production setup where Redis holds only counters and caches.
///
/// ```no_run
/// # async fn demo() {
/// let mut redis = gatez_conformance::Redis::start().await;
/// let client = redis::Client::open(redis.url()).unwrap();
/// redis.stop().await; // clients now get "connection refused"
/// redis.restart().await; // same port, empty data set
/// # }
/// ```
pub struct Redis {
    server: Server<RedisKind>,
}

impl Redis {
    /// Starts a Redis server on a free loopback port and waits until it answers `PING`.
    ///
    /// # Panics
    /// If `redis-server` is not installed (the message has the `apt-get` command), or the
    /// server is not ready within 30 s (the message has the tail of its log).
    pub async fn start() -> Self {
        Self {
            server: Server::start().await,
        }
    }

    /// `redis://127.0.0.1:PORT/`, for `redis::Client::open`.
    pub fn url(&self) -> String {
        let endpoint = self.server.endpoint();
        format!("redis://{}:{}/", endpoint.host, endpoint.ports[0])
    }

    /// Host the server is reachable on (`127.0.0.1` for local processes).
    pub fn host(&self) -> &str {
        &self.server.endpoint().host
    }

    /// The port clients connect to; it stays the same across [`Redis::restart`].
    pub fn port(&self) -> u16 {
        self.server.endpoint().ports[0]
    }

    /// Kills the server (SIGKILL, like a crash). The port stays reserved for
    /// [`Redis::restart`]. Does nothing if it is already stopped.
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }

    /// Starts the server again on the same port (stopping it first if it runs) and waits
    /// until it answers `PING`. Data does not survive: Redis runs without persistence.
    pub async fn restart(&mut self) {
        self.server.restart().await;
    }

    /// Whether the server process (or container) is alive.
    pub async fn is_running(&self) -> bool {
        self.server.is_running().await
    }

    /// The server's pid, when it runs as a local process; `None` when stopped or in Docker.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// The server's data directory (local processes only); it holds `server.log`.
    pub fn data_dir(&self) -> Option<&Path> {
        self.server.data_dir()
    }
}

pub(crate) struct RedisKind;

impl Kind for RedisKind {
    const BINARY: &'static str = "redis-server";
    const PACKAGES: &'static str = "redis-server";
    const PORTS: usize = 1;
    const READY_TIMEOUT: Duration = Duration::from_secs(30);

    fn process_args(dir: &Path, ports: &[u16], _instance: &str) -> io::Result<Vec<String>> {
        let dir = dir
            .to_str()
            .ok_or_else(|| io::Error::other("non-UTF-8 temp dir"))?;
        Ok([
            "--port",
            &ports[0].to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            dir,
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .map(String::from)
        .to_vec())
    }

    fn container(_instance: &str) -> ContainerSpec {
        let image = GenericImage::new("redis", "7")
            .with_exposed_port(6379.tcp())
            .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"));
        ContainerSpec {
            request: image.with_cmd(["redis-server", "--save", "", "--appendonly", "no"]),
            ports: vec![6379],
        }
    }

    async fn probe(endpoint: &Endpoint, _http: &reqwest::Client) -> Result<Probed, String> {
        let url = format!("redis://{}:{}/", endpoint.host, endpoint.ports[0]);
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("PING: {e}"))?;
        if pong != "PONG" {
            return Err(format!("PING answered {pong:?}"));
        }
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("INFO: {e}"))?;
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(|value| value.trim().to_owned())
                .ok_or_else(|| format!("INFO server has no {name}"))
        };
        Ok(Probed {
            version: field("redis_version")?,
            identity: field("process_id")?,
        })
    }

    fn identity(pid: u32, _instance: &str) -> String {
        pid.to_string()
    }
}
