//! A real ClickHouse server, and running SQL on it over HTTP.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::{GenericImage, ImageExt};

use crate::docker::ContainerSpec;
use crate::kind::{Endpoint, Kind, Probed};
use crate::server::Server;

/// A real ClickHouse server (Debian's clickhouse-server 18.16 from the host, or
/// `clickhouse/clickhouse-server:24.8` in Docker mode), killed and deleted when dropped.
///
/// Tables survive [`ClickHouse::stop`] + [`ClickHouse::restart`], as on a real crash.
/// See `/work/shared/INFRA.md` for what 18.16 does not support (DateTime64, Map, TTL, …).
///
/// ```no_run
/// # async fn demo() {
/// let clickhouse = gatez_conformance::ClickHouse::start().await;
/// clickhouse.create_database("analytics").await;
/// clickhouse.query("CREATE TABLE analytics.t (x UInt32) ENGINE = MergeTree ORDER BY x").await;
/// clickhouse.query("INSERT INTO analytics.t VALUES (1), (2)").await;
/// assert_eq!(clickhouse.query("SELECT count() FROM analytics.t").await.trim(), "2");
/// # }
/// ```
pub struct ClickHouse {
    server: Server<ClickHouseKind>,
}

/// A SQL statement ClickHouse did not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The server could not be reached (e.g. it is stopped).
    #[error("cannot reach ClickHouse: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server answered with an error.
    #[error("ClickHouse answered {status}: {body}")]
    Server {
        /// HTTP status of the answer.
        status: u16,
        /// ClickHouse's error text.
        body: String,
    },
}

impl ClickHouse {
    /// Starts a ClickHouse server on free loopback ports and waits until `GET /ping` says
    /// `Ok.` and a query runs.
    ///
    /// # Panics
    /// If `clickhouse-server` is not installed (the message has the `apt-get` command), or
    /// the server is not ready within 60 s (the message has the tail of its logs).
    pub async fn start() -> Self {
        Self {
            server: Server::start().await,
        }
    }

    /// The HTTP interface, `http://127.0.0.1:PORT` (no trailing slash), for the
    /// `clickhouse` crate's `Client::with_url`.
    pub fn url(&self) -> String {
        self.server.endpoint().http_url(0)
    }

    /// Host the server is reachable on (`127.0.0.1` for local processes).
    pub fn host(&self) -> &str {
        &self.server.endpoint().host
    }

    /// The HTTP port; it stays the same across [`ClickHouse::restart`].
    pub fn port(&self) -> u16 {
        self.server.endpoint().ports[0]
    }

    /// The native TCP protocol port (for `clickhouse-client --port`).
    pub fn tcp_port(&self) -> u16 {
        self.server.endpoint().ports[1]
    }

    /// Runs one SQL statement over HTTP and returns the response body (TabSeparated unless
    /// the statement says `FORMAT …`), e.g. `"3\n"` for `SELECT count() …`.
    ///
    /// # Panics
    /// With ClickHouse's error text if the statement fails or the server is unreachable;
    /// use [`ClickHouse::try_query`] to test failures.
    pub async fn query(&self, sql: &str) -> String {
        self.try_query(sql)
            .await
            .unwrap_or_else(|e| panic!("gatez-conformance: query failed: {sql}\n{e}"))
    }

    /// Like [`ClickHouse::query`], but returns failures instead of panicking.
    pub async fn try_query(&self, sql: &str) -> Result<String, QueryError> {
        run_query(self.server.http(), &self.url(), sql).await
    }

    /// Creates database `name` (if it does not exist yet).
    pub async fn create_database(&self, name: &str) {
        self.query(&format!("CREATE DATABASE IF NOT EXISTS {name}"))
            .await;
    }

    /// Kills the server (SIGKILL, like a crash). Ports and data stay for
    /// [`ClickHouse::restart`]. Does nothing if it is already stopped.
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }

    /// Starts the server again on the same ports and data (stopping it first if it runs)
    /// and waits until it is ready. Tables and their rows are kept.
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

    /// The server's data directory (local processes only); logs are in it too.
    pub fn data_dir(&self) -> Option<&Path> {
        self.server.data_dir()
    }
}

async fn run_query(http: &reqwest::Client, url: &str, sql: &str) -> Result<String, QueryError> {
    let response = http.post(url).body(sql.to_owned()).send().await?;
    let status = response.status();
    let body = response.text().await?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(QueryError::Server {
            status: status.as_u16(),
            body,
        })
    }
}

pub(crate) struct ClickHouseKind;

/// The macro each local server reports back, so we know it is ours (see `Kind::identity`).
const INSTANCE_MACRO: &str = "gatez_instance";

impl Kind for ClickHouseKind {
    const BINARY: &'static str = "clickhouse-server";
    const PACKAGES: &'static str = "clickhouse-server clickhouse-client";
    // HTTP, then native TCP.
    const PORTS: usize = 2;
    const READY_TIMEOUT: Duration = Duration::from_secs(60);

    fn process_args(dir: &Path, ports: &[u16], instance: &str) -> io::Result<Vec<String>> {
        let config = dir.join("config.xml");
        std::fs::write(&config, config_xml(dir, ports, instance)?)?;
        std::fs::write(dir.join("users.xml"), USERS_XML)?;
        Ok(vec![format!("--config-file={}", utf8(&config)?)])
    }

    fn own_logs(dir: &Path) -> Vec<PathBuf> {
        vec![dir.join("clickhouse-server.err.log")]
    }

    fn container(_instance: &str) -> ContainerSpec {
        let image = GenericImage::new("clickhouse/clickhouse-server", "24.8")
            .with_exposed_port(8123.tcp())
            .with_exposed_port(9000.tcp())
            .with_wait_for(WaitFor::message_on_either_std("Ready for connections"));
        ContainerSpec {
            // Newer images lock the passwordless `default` user to the container's own
            // loopback; the tests connect from the host, as they do to a local server.
            request: image.with_env_var("CLICKHOUSE_SKIP_USER_SETUP", "1"),
            ports: vec![8123, 9000],
        }
    }

    async fn probe(endpoint: &Endpoint, http: &reqwest::Client) -> Result<Probed, String> {
        let url = endpoint.http_url(0);
        let ping = http
            .get(format!("{url}/ping"))
            .send()
            .await
            .map_err(|e| format!("GET /ping: {e}"))?
            .text()
            .await
            .map_err(|e| format!("GET /ping: {e}"))?;
        if ping.trim() != "Ok." {
            return Err(format!("GET /ping answered {ping:?}"));
        }
        // /ping answers before the server can run queries; a real SELECT proves it can.
        let sql = format!(
            "SELECT version(), arrayStringConcat(groupArray(substitution)) \
             FROM system.macros WHERE macro = '{INSTANCE_MACRO}'"
        );
        let answer = run_query(http, &url, &sql)
            .await
            .map_err(|e| e.to_string())?;
        let (version, identity) = answer
            .trim_end_matches('\n')
            .split_once('\t')
            .ok_or_else(|| format!("unexpected answer {answer:?}"))?;
        Ok(Probed {
            version: version.to_owned(),
            identity: identity.to_owned(),
        })
    }

    fn identity(_pid: u32, instance: &str) -> String {
        instance.to_owned()
    }
}

fn utf8(path: &Path) -> io::Result<&str> {
    path.to_str()
        .ok_or_else(|| io::Error::other(format!("non-UTF-8 path {}", path.display())))
}

/// A minimal config for 18.16 (which newer servers also accept): loopback only, everything
/// under `dir`, small caches since many servers may run at once, no system log tables
/// (they are only created when configured) to keep background work down.
/// `max_server_memory_usage` does not exist in 18.16, so memory is capped per query in
/// users.xml instead.
fn config_xml(dir: &Path, ports: &[u16], instance: &str) -> io::Result<String> {
    let dir = utf8(dir)?;
    let (http_port, tcp_port) = (ports[0], ports[1]);
    Ok(format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{dir}/clickhouse-server.log</log>
        <errorlog>{dir}/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>{dir}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <max_concurrent_queries>64</max_concurrent_queries>
    <macros><{INSTANCE_MACRO}>{instance}</{INSTANCE_MACRO}></macros>
</yandex>
"#
    ))
}

/// Without users.xml the server does not start. The `default` user has no password and is
/// reachable from loopback only.
const USERS_XML: &str = r#"<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"#;
