//! Fixtures for the event sink tests: one backend (JSONL files or a real ClickHouse) with its
//! own directories and database, a way to start sinks on it, and readers that count and
//! fetch what reached the backend.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatez_conformance::ClickHouse;
use gatez_core::store::events::{
    AuditEvent, ClickHouseSink, ClickHouseSinkConfig, EventKind, EventSink, JsonlSink,
    JsonlSinkConfig, RequestEvent, SinkStatus, UsageEvent,
};
use tempfile::TempDir;

/// What the tests tune; everything else keeps the backend's defaults.
#[derive(Debug, Clone)]
pub struct Tuning {
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub queue_capacity: usize,
    pub max_spool_bytes: u64,
    pub retry_interval: Duration,
    pub max_retry_interval: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            flush_interval: Duration::from_millis(200),
            queue_capacity: 100_000,
            max_spool_bytes: 1 << 30,
            retry_interval: Duration::from_millis(50),
            max_retry_interval: Duration::from_millis(400),
        }
    }
}

/// A sink of either backend, with its status.
pub trait TestSink: EventSink {
    fn status(&self) -> SinkStatus;
}

impl TestSink for JsonlSink {
    fn status(&self) -> SinkStatus {
        JsonlSink::status(self)
    }
}

impl TestSink for ClickHouseSink {
    fn status(&self) -> SinkStatus {
        ClickHouseSink::status(self)
    }
}

pub enum Backend {
    Jsonl,
    ClickHouse {
        server: Box<ClickHouse>,
        database: String,
    },
}

pub struct Fixture {
    pub backend: Backend,
    /// JSONL files (JSONL) and the spool (both).
    pub dir: TempDir,
}

impl Fixture {
    pub async fn jsonl() -> Self {
        Self {
            backend: Backend::Jsonl,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub async fn clickhouse() -> Self {
        let server = Box::new(ClickHouse::start().await);
        Self {
            backend: Backend::ClickHouse {
                server,
                database: unique_database(),
            },
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn events_dir(&self) -> PathBuf {
        self.dir.path().join("events")
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    pub fn clickhouse_server(&mut self) -> &mut ClickHouse {
        match &mut self.backend {
            Backend::ClickHouse { server, .. } => server,
            Backend::Jsonl => panic!("not a ClickHouse fixture"),
        }
    }

    pub fn clickhouse_config(&self, tuning: &Tuning) -> ClickHouseSinkConfig {
        let Backend::ClickHouse { server, database } = &self.backend else {
            panic!("not a ClickHouse fixture");
        };
        ClickHouseSinkConfig {
            url: server.url(),
            database: database.clone(),
            batch_size: tuning.batch_size,
            flush_interval: tuning.flush_interval,
            queue_capacity: tuning.queue_capacity,
            spool_dir: self.spool_dir(),
            max_spool_bytes: tuning.max_spool_bytes,
            retry_interval: tuning.retry_interval,
            max_retry_interval: tuning.max_retry_interval,
            request_timeout: Duration::from_secs(5),
            ..ClickHouseSinkConfig::default()
        }
    }

    pub fn jsonl_config(&self, tuning: &Tuning) -> JsonlSinkConfig {
        JsonlSinkConfig {
            dir: self.events_dir(),
            batch_size: tuning.batch_size,
            flush_interval: tuning.flush_interval,
            queue_capacity: tuning.queue_capacity,
            spool_dir: Some(self.spool_dir()),
            max_spool_bytes: tuning.max_spool_bytes,
            retry_interval: tuning.retry_interval,
            max_retry_interval: tuning.max_retry_interval,
            ..JsonlSinkConfig::default()
        }
    }

    pub async fn start(&self, tuning: &Tuning) -> Arc<dyn TestSink> {
        match &self.backend {
            Backend::Jsonl => Arc::new(JsonlSink::start(&self.jsonl_config(tuning)).await.unwrap()),
            Backend::ClickHouse { .. } => Arc::new(
                ClickHouseSink::start(&self.clickhouse_config(tuning))
                    .await
                    .unwrap(),
            ),
        }
    }

    /// Rows of `kind` in the backend.
    pub async fn count(&self, kind: EventKind) -> u64 {
        match &self.backend {
            Backend::Jsonl => jsonl_lines(&self.events_dir(), kind).len() as u64,
            Backend::ClickHouse { server, database } => server
                .query(&format!("SELECT count() FROM {database}.{}", kind.table()))
                .await
                .trim()
                .parse()
                .unwrap(),
        }
    }

    /// Distinct `event_id`s of `kind` in the backend.
    pub async fn distinct_ids(&self, kind: EventKind) -> u64 {
        match &self.backend {
            Backend::Jsonl => {
                let mut ids: Vec<String> = jsonl_lines(&self.events_dir(), kind)
                    .iter()
                    .map(|line| {
                        let value: serde_json::Value = serde_json::from_str(line).unwrap();
                        value["event_id"].as_str().unwrap().to_owned()
                    })
                    .collect();
                ids.sort();
                ids.dedup();
                ids.len() as u64
            }
            Backend::ClickHouse { server, database } => server
                .query(&format!(
                    "SELECT uniqExact(event_id) FROM {database}.{}",
                    kind.table()
                ))
                .await
                .trim()
                .parse()
                .unwrap(),
        }
    }

    pub async fn requests(&self) -> Vec<RequestEvent> {
        self.rows(EventKind::Request).await
    }

    pub async fn usages(&self) -> Vec<UsageEvent> {
        self.rows(EventKind::Usage).await
    }

    pub async fn audits(&self) -> Vec<AuditEvent> {
        self.rows(EventKind::Audit).await
    }

    /// All rows of `kind`, read back typed: JSON lines, or a RowBinary fetch from ClickHouse.
    async fn rows<T>(&self, kind: EventKind) -> Vec<T>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        match &self.backend {
            Backend::Jsonl => jsonl_lines(&self.events_dir(), kind)
                .iter()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect(),
            Backend::ClickHouse { .. } => {
                let config = self.clickhouse_config(&Tuning::default());
                config
                    .client()
                    .query(&format!(
                        "SELECT ?fields FROM {}.{} ORDER BY event_id",
                        config.database,
                        kind.table()
                    ))
                    .fetch_all::<T>()
                    .await
                    .unwrap()
            }
        }
    }
}

/// Lines of the live and rotated JSONL files of `kind`.
pub fn jsonl_lines(dir: &Path, kind: EventKind) -> Vec<String> {
    jsonl_files(dir, kind)
        .iter()
        .flat_map(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `<table>.jsonl` and `<table>.<unix_ms>.jsonl` under `dir`.
pub fn jsonl_files(dir: &Path, kind: EventKind) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{}.", kind.table());
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            path.is_file() && name.starts_with(&prefix) && name.ends_with(".jsonl")
        })
        .collect();
    files.sort();
    files
}

/// Files in the spool directory whose name ends with `suffix`.
pub fn spool_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.to_str().unwrap().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default()
}

/// A database name no other test uses.
pub fn unique_database() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "events_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` until it returns true; panics with `what` after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Distinct tenants the generators spread rows over.
pub const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

/// A request row with every field set (quotes, unicode and a large integer included, to
/// catch escaping and width mistakes); `run` keeps ids unique across sinks of one test.
pub fn request(run: &str, i: u64) -> RequestEvent {
    RequestEvent {
        event_id: format!("{run}-req-{i:08}"),
        ts_ms: 1_700_000_000_000 + i,
        tenant_id: TENANTS[(i % 3) as usize].into(),
        request_id: format!("rq-{i}"),
        trace_id: format!("{i:032x}"),
        route: "orders".into(),
        method: "POST".into(),
        path: format!("/v1/orders/{i}?q=\"x\"&ü=ß"),
        status: 200 + (i % 300) as u16,
        latency_us: 1_000 + i,
        upstream_latency_us: 900 + i,
        bytes_in: u64::MAX - i,
        bytes_out: i * 7,
        upstream: "http://orders:8080".into(),
        subject: format!("user-{i}"),
        client_ip: "10.0.0.1".into(),
        user_agent: "curl/8.0 \\ \t tab".into(),
        rate_limit: "allowed".into(),
    }
}

pub fn usage(run: &str, i: u64) -> UsageEvent {
    UsageEvent {
        event_id: format!("{run}-use-{i:08}"),
        ts_ms: 1_700_000_000_000 + i,
        tenant_id: TENANTS[(i % 3) as usize].into(),
        request_id: format!("rq-{i}"),
        trace_id: format!("{i:032x}"),
        subject: format!("user-{i}"),
        model_alias: "gpt-fast".into(),
        deployment: "openai-eu".into(),
        provider: "openai".into(),
        prompt_tokens: 100 + i,
        completion_tokens: 50 + i,
        cost_micros: 1_234 * i,
        latency_us: 20_000 + i,
        ttft_us: 3_000 + i,
        attempts: 1 + (i % 3) as u32,
        status: 200,
        cache: "miss".into(),
    }
}

pub fn audit(run: &str, i: u64) -> AuditEvent {
    AuditEvent {
        event_id: format!("{run}-aud-{i:08}"),
        ts_ms: 1_700_000_000_000 + i,
        tenant_id: TENANTS[(i % 3) as usize].into(),
        request_id: format!("rq-{i}"),
        trace_id: format!("{i:032x}"),
        session_id: format!("s-{}", i / 10),
        subject: format!("agent-{i}"),
        action: "tools/call".into(),
        server: "search".into(),
        tool: "web_search".into(),
        arguments: format!("{{\"q\":\"item {i}\",\"n\":[1,2]}}"),
        decision: "allow".into(),
        reason: "policy: allowlist".into(),
        latency_us: 5_000 + i,
        result_status: "ok".into(),
        result_bytes: 4096 + i,
    }
}
