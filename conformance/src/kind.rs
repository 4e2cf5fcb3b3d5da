//! What distinguishes one kind of server (Redis, ClickHouse, etcd) from another.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::docker::ContainerSpec;

/// Where a server listens: `ports[0]` is the one clients use, the others are the kind's
/// secondary ports (ClickHouse native TCP, etcd peer).
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) ports: Vec<u16>,
}

impl Endpoint {
    /// `http://host:port` for `ports[index]`.
    pub(crate) fn http_url(&self, index: usize) -> String {
        format!("http://{}:{}", self.host, self.ports[index])
    }
}

/// What a successful readiness probe learned.
pub(crate) struct Probed {
    /// Server version, for the "started" log line.
    pub(crate) version: String,
    /// Something only *our* server can answer (pid, unique name), to notice when another
    /// test's server owns the port we picked.
    pub(crate) identity: String,
}

pub(crate) trait Kind {
    /// Binary name, e.g. `redis-server`; also used in log lines.
    const BINARY: &'static str;
    /// Debian packages to install when the binary is missing.
    const PACKAGES: &'static str;
    /// Number of ports an instance listens on.
    const PORTS: usize;
    /// How long a start may take before it counts as failed. Generous, because tests run
    /// many servers at once on small CI machines; it only matters when something is wrong.
    const READY_TIMEOUT: Duration;

    /// Writes any config files into `dir` and returns the server's arguments.
    fn process_args(dir: &Path, ports: &[u16], instance: &str) -> io::Result<Vec<String>>;

    /// Log files the server writes itself (beyond stdout/stderr), shown on failure.
    fn own_logs(_dir: &Path) -> Vec<PathBuf> {
        Vec::new()
    }

    /// The container to run in Docker mode.
    fn container(instance: &str) -> ContainerSpec;

    /// One readiness check: `Ok` only when the server does real work.
    fn probe(
        endpoint: &Endpoint,
        http: &reqwest::Client,
    ) -> impl Future<Output = Result<Probed, String>> + Send;

    /// The [`Probed::identity`] our own process (pid `pid`, started as `instance`) reports.
    fn identity(pid: u32, instance: &str) -> String;
}
