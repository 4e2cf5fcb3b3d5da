//! Events: the request log (L1), usage records (L2) and the audit log (L3).
//!
//! Emitting never blocks or fails a request: [`EventSink::emit`] hands the event to a bounded
//! queue and returns. Backends: [`jsonl::JsonlSink`] (files, the embedded default) and
//! [`clickhouse::ClickHouseSink`] (batched inserts; batches that cannot be written are spooled
//! to disk and replayed when ClickHouse answers again, so no row is lost).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

pub mod clickhouse;
pub mod ddl;
pub mod jsonl;
mod losses;
mod metrics;
mod queue;
mod rows;
pub mod schema;
pub mod spool;

pub use clickhouse::{ClickHouseSink, ClickHouseSinkConfig};
pub use jsonl::{JsonlSink, JsonlSinkConfig};
pub use queue::SinkStatus;
pub use rows::Rows;
pub use schema::{AuditEvent, RequestEvent, UsageEvent};

/// One event row. Every variant carries `tenant_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Request(RequestEvent),
    Usage(UsageEvent),
    Audit(AuditEvent),
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Request(_) => EventKind::Request,
            Event::Usage(_) => EventKind::Usage,
            Event::Audit(_) => EventKind::Audit,
        }
    }

    pub fn tenant_id(&self) -> &str {
        match self {
            Event::Request(e) => &e.tenant_id,
            Event::Usage(e) => &e.tenant_id,
            Event::Audit(e) => &e.tenant_id,
        }
    }
}

/// The three event streams; each is one table (ClickHouse) or one file (JSONL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Request,
    Usage,
    Audit,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::Request, EventKind::Usage, EventKind::Audit];

    /// Table (ClickHouse) or file stem (JSONL).
    pub fn table(self) -> &'static str {
        match self {
            EventKind::Request => "request_log",
            EventKind::Usage => "usage_log",
            EventKind::Audit => "audit_log",
        }
    }
}

/// Where events go. Cheap to call from request handlers.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Queues an event without waiting. Never fails the caller's request: when the in-memory
    /// queue is full the event goes to the disk spool instead, and only if that also fails is it
    /// counted as dropped (metric `gatez_events_dropped_total`).
    fn emit(&self, event: Event);

    /// Waits until every event emitted before this call is written to the backend or, if the
    /// backend is down, to the spool.
    async fn flush(&self) -> Result<(), StoreError>;

    /// Flushes and stops the background writer. Events emitted afterwards are spooled.
    async fn shutdown(&self) -> Result<(), StoreError>;

    fn backend(&self) -> &'static str;
}
