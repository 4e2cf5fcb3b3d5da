//! The event rows. One struct serves JSONL (serde JSON) and ClickHouse (RowBinary via
//! `clickhouse::Row`), so fields are restricted to types both handle on ClickHouse 18.16 and
//! current releases: integers, floats and strings. Time is `ts_ms` (Unix milliseconds); the
//! ClickHouse tables derive a `DateTime` column from it for partitioning, because
//! `DateTime64` does not exist on 18.16.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// One row per request through L1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Row, Default)]
pub struct RequestEvent {
    /// Unique per row (UUIDv7); lets a replayed batch be told from a new one.
    pub event_id: String,
    pub ts_ms: u64,
    pub tenant_id: String,
    pub request_id: String,
    pub trace_id: String,
    pub route: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub latency_us: u64,
    pub upstream_latency_us: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub upstream: String,
    pub subject: String,
    pub client_ip: String,
    pub user_agent: String,
    /// `allowed`, `limited`, `fail_open`, `none`.
    pub rate_limit: String,
}

/// One row per model call through L2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Row, Default)]
pub struct UsageEvent {
    pub event_id: String,
    pub ts_ms: u64,
    pub tenant_id: String,
    pub request_id: String,
    pub trace_id: String,
    pub subject: String,
    pub model_alias: String,
    pub deployment: String,
    pub provider: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Cost in micro-units of the price table's currency (integer, so sums are exact).
    pub cost_micros: u64,
    pub latency_us: u64,
    pub ttft_us: u64,
    pub attempts: u32,
    pub status: u16,
    pub cache: String,
}

/// One row per agent decision or tool call through L3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Row, Default)]
pub struct AuditEvent {
    pub event_id: String,
    pub ts_ms: u64,
    pub tenant_id: String,
    pub request_id: String,
    pub trace_id: String,
    pub session_id: String,
    pub subject: String,
    pub action: String,
    pub server: String,
    pub tool: String,
    /// JSON of the arguments, PII-redacted before it gets here.
    pub arguments: String,
    pub decision: String,
    pub reason: String,
    pub latency_us: u64,
    pub result_status: String,
    pub result_bytes: u64,
}

/// Milliseconds since the Unix epoch, for `ts_ms`.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A fresh, time-ordered event id.
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
