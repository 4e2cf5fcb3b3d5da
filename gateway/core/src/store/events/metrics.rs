//! Prometheus metrics of the event sinks.
//!
//! `emit` runs on every request, so its counters are resolved once per kind here instead of
//! looking up label values on each call.

use std::sync::LazyLock;

use prometheus::{
    IntCounter, IntCounterVec, IntGauge, register_int_counter_vec, register_int_gauge,
};

use super::EventKind;

static EMITTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gatez_events_emitted_total",
        "Events handed to an event sink.",
        &["kind"]
    )
    .expect("gatez_events_emitted_total registers once")
});

static WRITTEN: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gatez_events_written_total",
        "Events written to the sink's backend (directly or replayed from the spool).",
        &["kind", "backend"]
    )
    .expect("gatez_events_written_total registers once")
});

static SPOOLED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gatez_events_spooled_total",
        "Events written to the disk spool (backend down or in-memory queue full).",
        &["kind"]
    )
    .expect("gatez_events_spooled_total registers once")
});

static DROPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gatez_events_dropped_total",
        "Events lost because neither the backend nor the disk spool could take them.",
        &["kind"]
    )
    .expect("gatez_events_dropped_total registers once")
});

static SPOOL_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "gatez_events_spool_bytes",
        "Bytes of events waiting in the disk spools of this process."
    )
    .expect("gatez_events_spool_bytes registers once")
});

/// One counter per kind, resolved once.
struct PerKind([IntCounter; 3]);

impl PerKind {
    fn new(vec: &IntCounterVec) -> Self {
        Self(EventKind::ALL.map(|kind| vec.with_label_values(&[kind_label(kind)])))
    }

    fn get(&self, kind: EventKind) -> &IntCounter {
        &self.0[kind_index(kind)]
    }
}

static EMITTED_BY_KIND: LazyLock<PerKind> = LazyLock::new(|| PerKind::new(&EMITTED));
static SPOOLED_BY_KIND: LazyLock<PerKind> = LazyLock::new(|| PerKind::new(&SPOOLED));
static DROPPED_BY_KIND: LazyLock<PerKind> = LazyLock::new(|| PerKind::new(&DROPPED));

/// The `kind` label value.
pub(crate) fn kind_label(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Request => "request",
        EventKind::Usage => "usage",
        EventKind::Audit => "audit",
    }
}

/// Position of `kind` in [`EventKind::ALL`], for per-kind arrays.
pub(crate) fn kind_index(kind: EventKind) -> usize {
    match kind {
        EventKind::Request => 0,
        EventKind::Usage => 1,
        EventKind::Audit => 2,
    }
}

pub(crate) fn emitted(kind: EventKind) {
    EMITTED_BY_KIND.get(kind).inc();
}

pub(crate) fn written(kind: EventKind, backend: &'static str, rows: usize) {
    WRITTEN
        .with_label_values(&[kind_label(kind), backend])
        .inc_by(rows as u64);
}

pub(crate) fn spooled(kind: EventKind, rows: u64) {
    SPOOLED_BY_KIND.get(kind).inc_by(rows);
}

pub(crate) fn dropped(kind: EventKind, rows: u64) {
    DROPPED_BY_KIND.get(kind).inc_by(rows);
}

/// Spool size changes are deltas: several sinks (and tests) in one process share the gauge.
pub(crate) fn spool_bytes_add(delta: i64) {
    SPOOL_BYTES.add(delta);
}
