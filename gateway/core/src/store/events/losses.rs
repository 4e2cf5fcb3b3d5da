//! The ledger of lost events: counts them (metric and per-sink total) and logs them without
//! flooding the log when a full disk makes every emit fail.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{EventKind, metrics};

/// At most one "events dropped" log line per interval; the line carries the count since the
/// previous one, so nothing is hidden.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct LossLedger {
    total: AtomicU64,
    unreported: AtomicU64,
    /// Milliseconds after `origin` of the last log line, plus one (0 = never logged).
    last_log: AtomicU64,
    origin: Instant,
}

impl LossLedger {
    pub(crate) fn new() -> Self {
        Self {
            total: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            last_log: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    /// Records `rows` lost events of `kind` and why.
    pub(crate) fn record(&self, kind: EventKind, rows: u64, reason: &dyn std::fmt::Display) {
        if rows == 0 {
            return;
        }
        metrics::dropped(kind, rows);
        self.total.fetch_add(rows, Ordering::Relaxed);
        self.unreported.fetch_add(rows, Ordering::Relaxed);
        let now = self.origin.elapsed().as_millis() as u64 + 1;
        let last = self.last_log.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= LOG_INTERVAL.as_millis() as u64;
        // Only the caller that wins the exchange logs; the others' rows go into its count.
        if due
            && self
                .last_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let count = self.unreported.swap(0, Ordering::Relaxed);
            tracing::error!(
                dropped = count,
                kind = metrics::kind_label(kind),
                reason = %reason,
                "events dropped: neither the backend nor the disk spool could take them"
            );
        }
    }

    /// Events lost since the sink started.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}
