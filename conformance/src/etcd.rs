//! A real etcd server.

use std::io;
use std::path::Path;
use std::time::Duration;

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::{GenericImage, ImageExt};

use crate::docker::ContainerSpec;
use crate::kind::{Endpoint, Kind, Probed};
use crate::server::Server;

/// A real single-member etcd cluster (Debian's etcd 3.4 from the host, or
/// `quay.io/coreos/etcd:v3.5.17` in Docker mode), killed and deleted when dropped.
///
/// Keys survive [`Etcd::stop`] + [`Etcd::restart`] (etcd persists every write).
///
/// ```no_run
/// # async fn demo() {
/// let etcd = gatez_conformance::Etcd::start().await;
/// // etcd_client::Client::connect([etcd.url()], None).await
/// # }
/// ```
pub struct Etcd {
    server: Server<EtcdKind>,
}

impl Etcd {
    /// Starts etcd on free loopback ports and waits until `GET /health` reports healthy.
    ///
    /// # Panics
    /// If `etcd` is not installed (the message has the `apt-get` command), or the server is
    /// not healthy within 30 s (the message has the tail of its log).
    pub async fn start() -> Self {
        Self {
            server: Server::start().await,
        }
    }

    /// The client URL, `http://127.0.0.1:PORT`: an endpoint for `etcd_client::Client::connect`
    /// and the base of the HTTP/JSON gateway (`/v3/kv/put`, …).
    pub fn url(&self) -> String {
        self.server.endpoint().http_url(0)
    }

    /// Host the server is reachable on (`127.0.0.1` for local processes).
    pub fn host(&self) -> &str {
        &self.server.endpoint().host
    }

    /// The client port; it stays the same across [`Etcd::restart`].
    pub fn port(&self) -> u16 {
        self.server.endpoint().ports[0]
    }

    /// Kills the server (SIGKILL, like a crash). Ports and data stay for [`Etcd::restart`].
    /// Does nothing if it is already stopped.
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }

    /// Starts the server again on the same ports and data (stopping it first if it runs)
    /// and waits until it is healthy. Keys are kept.
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

pub(crate) struct EtcdKind;

impl Kind for EtcdKind {
    const BINARY: &'static str = "etcd";
    const PACKAGES: &'static str = "etcd-server etcd-client";
    // Client, then peer.
    const PORTS: usize = 2;
    const READY_TIMEOUT: Duration = Duration::from_secs(30);

    fn process_args(dir: &Path, ports: &[u16], instance: &str) -> io::Result<Vec<String>> {
        let data = dir.join("data");
        let data = data
            .to_str()
            .ok_or_else(|| io::Error::other("non-UTF-8 temp dir"))?;
        let client = format!("http://127.0.0.1:{}", ports[0]);
        let peer = format!("http://127.0.0.1:{}", ports[1]);
        Ok(member_args(instance, data, &client, &client, &peer, &peer))
    }

    fn container(instance: &str) -> ContainerSpec {
        let image = GenericImage::new("quay.io/coreos/etcd", "v3.5.17")
            .with_exposed_port(2379.tcp())
            .with_exposed_port(2380.tcp())
            .with_wait_for(WaitFor::message_on_stderr("ready to serve client requests"));
        let mut cmd = vec!["/usr/local/bin/etcd".to_owned()];
        cmd.extend(member_args(
            instance,
            "/etcd-data",
            "http://0.0.0.0:2379",
            "http://127.0.0.1:2379",
            "http://0.0.0.0:2380",
            "http://127.0.0.1:2380",
        ));
        ContainerSpec {
            request: image.with_cmd(cmd),
            ports: vec![2379, 2380],
        }
    }

    async fn probe(endpoint: &Endpoint, http: &reqwest::Client) -> Result<Probed, String> {
        let url = endpoint.http_url(0);
        let get = |path: &'static str| {
            let request = http.get(format!("{url}{path}"));
            async move { json(request, path).await }
        };
        let health = get("/health").await?;
        // etcd 3.4 and 3.5 both report a string here.
        if health["health"] != "true" {
            return Err(format!("GET /health answered {health}"));
        }
        let version = get("/version").await?;
        let members = json(
            http.post(format!("{url}/v3/cluster/member/list"))
                .body("{}"),
            "/v3/cluster/member/list",
        )
        .await?;
        Ok(Probed {
            version: version["etcdserver"].as_str().unwrap_or("?").to_owned(),
            identity: members["members"][0]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
    }

    fn identity(_pid: u32, instance: &str) -> String {
        instance.to_owned()
    }
}

/// Flags for a single-member cluster named `name` (the name is also its identity).
/// On restart etcd ignores the `--initial-*` flags and recovers from `data_dir`.
fn member_args(
    name: &str,
    data_dir: &str,
    listen_client: &str,
    advertise_client: &str,
    listen_peer: &str,
    advertise_peer: &str,
) -> Vec<String> {
    [
        "--name",
        name,
        "--data-dir",
        data_dir,
        "--listen-client-urls",
        listen_client,
        "--advertise-client-urls",
        advertise_client,
        "--listen-peer-urls",
        listen_peer,
        "--initial-advertise-peer-urls",
        advertise_peer,
        "--initial-cluster",
        &format!("{name}={advertise_peer}"),
        // A lone member still waits one election timeout (default 1 s) before it leads and
        // serves; it has no peer to lose contact with, so a short one is safe and makes
        // start and restart several times faster.
        "--heartbeat-interval",
        "25",
        "--election-timeout",
        "250",
    ]
    .map(String::from)
    .to_vec()
}

async fn json(request: reqwest::RequestBuilder, what: &str) -> Result<serde_json::Value, String> {
    let response = request.send().await.map_err(|e| format!("{what}: {e}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("{what}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{what} answered {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("{what} answered non-JSON {body:?}: {e}"))
}
