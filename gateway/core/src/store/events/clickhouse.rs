//! The ClickHouse event backend: batched RowBinary inserts into one table per kind, with the
//! disk spool covering any time ClickHouse does not answer.
//!
//! Works with ClickHouse 18.16 and current releases: the client runs without schema
//! validation (18.16 knows neither `RowBinaryWithNamesAndTypes` nor the setting validation
//! sends), and the tables use only types 18.16 has (see [`super::ddl`]).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use clickhouse::{Client, RowOwned, RowWrite};
use serde::Deserialize;

use super::ddl;
use super::queue::{BatchWriter, BatchingSink, QueueSettings, SinkStatus, validate_settings};
use super::rows::Rows;
use super::spool::Spool;
use super::{Event, EventKind, EventSink};
use crate::store::StoreError;

const BACKEND: &str = "clickhouse";

/// Config of [`ClickHouseSink`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseSinkConfig {
    /// HTTP endpoint. Default `http://127.0.0.1:8123`.
    pub url: String,
    /// Database of the event tables (created if missing). Default `gatez`.
    pub database: String,
    /// Default `default`.
    pub user: String,
    pub password: Option<crate::config::Secret>,
    /// Rows per insert. Default 5000: large enough for ClickHouse (few parts), small enough
    /// that a batch fills within the flush interval under moderate load.
    pub batch_size: usize,
    /// Longest time a row waits in memory before it is inserted. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Events held in memory before `emit` spools to disk instead. Default 100 000.
    pub queue_capacity: usize,
    /// Where batches wait while ClickHouse is down. Default `data/spool/clickhouse`.
    pub spool_dir: PathBuf,
    /// Spool size beyond which events are dropped (and counted). Default 2 GiB.
    pub max_spool_bytes: u64,
    /// First wait before probing a ClickHouse that failed. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
    /// Longest wait between probes (the wait doubles per failure). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub max_retry_interval: Duration,
    /// Limit for one insert or query, connection included. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for ClickHouseSinkConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "gatez".into(),
            user: "default".into(),
            password: None,
            batch_size: 5000,
            flush_interval: Duration::from_secs(1),
            queue_capacity: 100_000,
            spool_dir: PathBuf::from("data/spool/clickhouse"),
            max_spool_bytes: 2 * 1024 * 1024 * 1024,
            retry_interval: Duration::from_secs(1),
            max_retry_interval: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl ClickHouseSinkConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!("url must be an http(s) URL, got {:?}", self.url));
        }
        if !ddl::is_valid_identifier(&self.database) {
            return Err(format!(
                "database must be letters, digits and '_' (not starting with a digit), got {:?}",
                self.database
            ));
        }
        if self.user.is_empty() {
            return Err("user must not be empty".into());
        }
        if self.spool_dir.as_os_str().is_empty() {
            return Err("spool_dir must not be empty".into());
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be positive".into());
        }
        validate_settings(&self.settings(), self.max_spool_bytes)
    }

    fn settings(&self) -> QueueSettings {
        QueueSettings {
            batch_size: self.batch_size,
            flush_interval: self.flush_interval,
            queue_capacity: self.queue_capacity,
            retry_interval: self.retry_interval,
            max_retry_interval: self.max_retry_interval,
        }
    }

    /// A client for this config: no schema validation (required by ClickHouse 18.16).
    pub fn client(&self) -> Client {
        let client = Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_validation(false);
        match &self.password {
            Some(password) => client.with_password(password.expose()),
            None => client,
        }
    }
}

/// Events to ClickHouse tables `request_log`, `usage_log` and `audit_log` in the configured
/// database (created at start, and again after an outage, if missing).
///
/// Delivery is at least once: when an insert fails its batch is spooled to disk and replayed
/// once ClickHouse answers, oldest first; a segment is deleted only after its insert
/// succeeded. A crash (or a timeout) between ClickHouse committing an insert and the sink
/// learning of it therefore writes that batch twice. Every row carries a UUIDv7 `event_id`,
/// so exact queries deduplicate, e.g. `SELECT uniqExact(event_id) ...` or `... LIMIT 1 BY
/// event_id`. In the normal path (including outages the sink notices) there are no
/// duplicates.
pub struct ClickHouseSink {
    front: BatchingSink,
}

impl ClickHouseSink {
    /// Validates `config`, opens the spool (replaying what an earlier run left there) and
    /// starts the writer task on the current tokio runtime. Creates the database and tables
    /// if ClickHouse answers; if it does not (within `request_timeout`), the sink starts
    /// degraded and spools until it does, so a ClickHouse outage never keeps the gateway from
    /// starting.
    pub async fn start(config: &ClickHouseSinkConfig) -> Result<Self, StoreError> {
        config.validate().map_err(StoreError::Invalid)?;
        let spool = Spool::open(config.spool_dir.clone(), config.max_spool_bytes)?;
        let mut writer = ClickHouseWriter {
            client: config.client(),
            database: config.database.clone(),
            timeout: config.request_timeout,
            schema_ready: false,
        };
        let degraded = match writer.probe().await {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    url = %config.url,
                    "ClickHouse does not answer at start; spooling events until it does"
                );
                true
            }
        };
        Ok(Self {
            front: BatchingSink::start(writer, spool, config.settings(), degraded),
        })
    }

    pub fn status(&self) -> SinkStatus {
        self.front.status()
    }
}

#[async_trait]
impl EventSink for ClickHouseSink {
    fn emit(&self, event: Event) {
        self.front.emit(event);
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.front.flush().await
    }

    async fn shutdown(&self) -> Result<(), StoreError> {
        self.front.shutdown().await
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}

struct ClickHouseWriter {
    client: Client,
    database: String,
    timeout: Duration,
    /// Whether the tables were created (if missing) since start. Not reset later: an insert
    /// into a table that vanished fails, and the probe that follows every failure creates the
    /// tables again.
    schema_ready: bool,
}

impl ClickHouseWriter {
    async fn ensure_schema(&mut self) -> Result<(), StoreError> {
        self.execute(&ddl::create_database(&self.database)).await?;
        for kind in EventKind::ALL {
            self.execute(&ddl::create_table(&self.database, kind))
                .await?;
        }
        self.schema_ready = true;
        Ok(())
    }

    async fn execute(&self, sql: &str) -> Result<(), StoreError> {
        self.bounded(self.client.query(sql).execute()).await
    }

    async fn insert<R: RowOwned + RowWrite>(
        &self,
        kind: EventKind,
        rows: &[R],
    ) -> Result<(), StoreError> {
        let table = ddl::qualified_table(&self.database, kind);
        self.bounded(async {
            // The table name is already quoted; `insert` would quote it again as one name.
            let mut insert = self.client.insert_unescaped::<R>(&table).await?;
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await
        })
        .await
    }

    /// Bounds a whole request, connecting included (the HTTP client has no connect timeout).
    /// A timed-out insert is aborted mid-body, so ClickHouse discards it.
    async fn bounded(
        &self,
        request: impl Future<Output = clickhouse::error::Result<()>>,
    ) -> Result<(), StoreError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(result) => result.map_err(map_error),
            Err(_) => Err(StoreError::timeout(BACKEND, self.timeout)),
        }
    }
}

#[async_trait]
impl BatchWriter for ClickHouseWriter {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn write(&mut self, rows: &Rows) -> Result<(), StoreError> {
        if !self.schema_ready {
            self.ensure_schema().await?;
        }
        match rows {
            Rows::Request(rows) => self.insert(EventKind::Request, rows).await,
            Rows::Usage(rows) => self.insert(EventKind::Usage, rows).await,
            Rows::Audit(rows) => self.insert(EventKind::Audit, rows).await,
        }
    }

    /// An acknowledged insert is ClickHouse's to keep.
    async fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn probe(&mut self) -> Result<(), StoreError> {
        self.execute("SELECT 1").await?;
        // A ClickHouse that came back empty (new volume) needs its tables again.
        self.ensure_schema().await
    }
}

/// ClickHouse answering with an error is a refusal ([`StoreError::Invalid`]: retried a few
/// times, then the rows are set aside); anything else means it is down or slow.
fn map_error(e: clickhouse::error::Error) -> StoreError {
    use clickhouse::error::Error;
    match e {
        Error::TimedOut => StoreError::Timeout {
            backend: BACKEND,
            timeout_ms: None,
        },
        Error::BadResponse(message) => {
            StoreError::Invalid(format!("ClickHouse refused the request: {message}"))
        }
        other => StoreError::unavailable(BACKEND, other),
    }
}
