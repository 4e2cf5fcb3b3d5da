//! Received spans, with a notifier so waiting tests wake on arrival instead of polling.

use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::Notify;

use super::span::{SpanRecord, attributes};

/// Bounds memory when the binary collects through a long load test.
const CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
pub struct SpanStore {
    spans: Mutex<std::collections::VecDeque<SpanRecord>>,
    arrived: Notify,
}

impl SpanStore {
    pub fn ingest(&self, req: &ExportTraceServiceRequest) {
        let mut spans = self.spans.lock().expect("span lock");
        for rs in &req.resource_spans {
            let resource = rs
                .resource
                .as_ref()
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            let service = resource.get("service.name").and_then(|v| v.as_str());
            for ss in &rs.scope_spans {
                let scope = ss
                    .scope
                    .as_ref()
                    .map(|s| s.name.as_str())
                    .unwrap_or_default();
                for span in &ss.spans {
                    if spans.len() == CAPACITY {
                        spans.pop_front();
                    }
                    spans.push_back(SpanRecord::from_proto(span, service, scope));
                }
            }
        }
        drop(spans);
        self.arrived.notify_waiters();
    }

    pub fn by_trace(&self, trace_id: &str) -> Vec<SpanRecord> {
        let spans = self.spans.lock().expect("span lock");
        spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<SpanRecord> {
        self.spans
            .lock()
            .expect("span lock")
            .iter()
            .cloned()
            .collect()
    }

    pub fn clear(&self) {
        self.spans.lock().expect("span lock").clear();
    }

    /// Spans of `trace_id` once there are `count`, or whatever there is at `deadline`.
    pub async fn wait_for(
        &self,
        trace_id: &str,
        count: usize,
        deadline: tokio::time::Instant,
    ) -> Vec<SpanRecord> {
        loop {
            // Registered before the check, so an ingest in between still wakes us.
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let spans = self.by_trace(trace_id);
            if spans.len() >= count || tokio::time::Instant::now() >= deadline {
                return spans;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}
