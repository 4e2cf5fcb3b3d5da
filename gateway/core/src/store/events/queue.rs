//! The batching front every event backend shares: a bounded in-memory queue, one writer task
//! that turns it into batches, and the spool for whatever the backend cannot take.
//!
//! ```text
//! emit ──try_send──► queue ──► writer task ──batch──► backend (JSONL files, ClickHouse)
//!   │ (queue full)                  │ (backend failed, or older rows still spooled)
//!   └──append──► spool ◄────────────┘
//!                  └──replay, oldest first, once the backend answers──► backend
//! ```
//!
//! - `emit` never waits: a full queue sends the event to the spool (a buffered append), and
//!   only when the spool refuses too (full, disk error) is the event dropped and counted.
//! - The writer dispatches a batch (rows of one kind) when it holds `batch_size` rows, and
//!   whatever it holds every `flush_interval`. Memory is bounded by `queue_capacity` events
//!   in the queue plus up to `batch_size` rows per kind in the writer.
//! - `flush` returns once everything emitted before it is written to the backend, or to the
//!   spool if the backend is down (it probes at once and replays the spool if it answers).
//!   `shutdown` does the same without the replay, so stopping never waits on a long
//!   backlog: the spool is replayed by the next start.
//! - When a write fails the sink is *degraded*: batches go to the spool while the backend is
//!   probed with exponential backoff; once it answers, the spool is replayed oldest first and
//!   each segment deleted only after its write succeeded. While any segment waits, new
//!   batches are spooled behind it, so rows reach the backend in the order they were batched.
//! - A segment the backend keeps refusing while it otherwise answers is set aside (see
//!   [`Spool::reject`]) so that one bad segment cannot block everything behind it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::Event;
use super::metrics;
use super::rows::{Batch, Rows};
use super::spool::{Segment, Spool};
use crate::store::StoreError;

/// Refusals of one segment (the backend answered, with an error that is not an outage or a
/// timeout) before it is set aside. With the backoff between attempts this spans minutes, so
/// a backend that is merely overloaded (too many parts, memory limit) gets time to recover.
const MAX_SEGMENT_ATTEMPTS: u32 = 10;
/// Segments replayed per turn of the writer loop before it looks at the queue again.
const REPLAY_TURN: usize = 4;

/// A backend the writer task hands batches to.
#[async_trait]
pub(crate) trait BatchWriter: Send + 'static {
    /// Label of the backend in metrics and logs.
    fn name(&self) -> &'static str;

    /// Writes rows of one kind in one go (all or nothing as far as the backend allows).
    async fn write(&mut self, rows: &Rows) -> Result<(), StoreError>;

    /// Makes written rows durable (fsync for files; nothing for a database that acknowledged).
    async fn sync(&mut self) -> Result<(), StoreError>;

    /// Checks that the backend answers again and is ready for writes (reopens files, creates
    /// missing tables).
    async fn probe(&mut self) -> Result<(), StoreError>;
}

/// Batching and retry settings, taken from a backend's config.
#[derive(Debug, Clone)]
pub(crate) struct QueueSettings {
    pub(crate) batch_size: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) retry_interval: Duration,
    pub(crate) max_retry_interval: Duration,
}

/// A snapshot of a sink's state, e.g. for readiness checks and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStatus {
    /// The last write or probe failed; batches go to the spool until the backend answers.
    pub degraded: bool,
    /// Sealed spool segments waiting for replay.
    pub spool_segments: usize,
    /// Bytes held by the spool.
    pub spool_bytes: u64,
    /// Events lost since the sink started.
    pub dropped: u64,
}

// `Event` is what nearly every message carries; boxing it to shrink the rare control
// messages would cost an allocation per emit.
#[allow(clippy::large_enum_variant)]
enum Command {
    Event(Event),
    Flush(oneshot::Sender<Result<(), StoreError>>),
    Shutdown(oneshot::Sender<Result<(), StoreError>>),
}

/// The front half of a sink: what `emit`, `flush` and `shutdown` talk to.
pub(crate) struct BatchingSink {
    tx: mpsc::Sender<Command>,
    spool: Arc<Spool>,
    degraded: Arc<AtomicBool>,
    /// Drop total already reported by a flush.
    dropped_reported: AtomicU64,
    writer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl BatchingSink {
    /// Spawns the writer task on the current tokio runtime. `degraded` says whether the
    /// backend is already known to be down (its first probe waits a retry interval).
    pub(crate) fn start<W: BatchWriter>(
        backend: W,
        spool: Spool,
        settings: QueueSettings,
        degraded: bool,
    ) -> Self {
        let (tx, rx) = mpsc::channel(settings.queue_capacity);
        let spool = Arc::new(spool);
        let degraded_flag = Arc::new(AtomicBool::new(degraded));
        let writer = Writer {
            backend,
            spool: Arc::clone(&spool),
            batch: Batch::new(),
            degraded: Arc::clone(&degraded_flag),
            backoff: settings.retry_interval,
            next_probe: if degraded {
                Instant::now() + settings.retry_interval
            } else {
                Instant::now()
            },
            segment_attempts: None,
            settings,
        };
        let handle = tokio::spawn(writer.run(rx));
        Self {
            tx,
            spool,
            degraded: degraded_flag,
            dropped_reported: AtomicU64::new(0),
            writer: tokio::sync::Mutex::new(Some(handle)),
        }
    }

    pub(crate) fn emit(&self, event: Event) {
        let kind = event.kind();
        metrics::emitted(kind);
        match self.tx.try_send(Command::Event(event)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Command::Event(event))) => {
                if let Err(e) = self.spool.append(&event) {
                    self.spool.losses().record(kind, 1, &e);
                }
            }
            // The writer has stopped (after shutdown): nothing will seal an open segment, so
            // the event becomes a sealed segment of its own.
            Err(mpsc::error::TrySendError::Closed(Command::Event(event))) => {
                let mut rows = Rows::empty(kind);
                let _ = rows.push(event);
                if let Err(e) = self.spool.write_segment(&rows) {
                    self.spool.losses().record(kind, 1, &e);
                }
            }
            Err(_) => unreachable!("try_send returns the command it was given"),
        }
    }

    /// Waits for the writer to write (or spool) everything emitted before the call. Fails if
    /// events were dropped since the previous flush: then not everything emitted was kept.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let (reply, done) = oneshot::channel();
        let result = match self.tx.send(Command::Flush(reply)).await {
            Ok(()) => done.await.unwrap_or_else(|_| Err(writer_gone())),
            // After shutdown everything went to sealed segments already; make sure of it.
            Err(_) => seal_spool(Arc::clone(&self.spool)).await,
        };
        result?;
        let dropped = self.spool.dropped();
        let reported = self.dropped_reported.swap(dropped, Ordering::Relaxed);
        if dropped > reported {
            return Err(StoreError::Unavailable {
                backend: "event spool",
                message: format!(
                    "{} events were dropped since the previous flush (queue and spool full, or \
                     spool unwritable)",
                    dropped - reported
                ),
            });
        }
        Ok(())
    }

    pub(crate) async fn shutdown(&self) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().await;
        let Some(handle) = writer.take() else {
            return seal_spool(Arc::clone(&self.spool)).await;
        };
        let (reply, done) = oneshot::channel();
        let result = match self.tx.send(Command::Shutdown(reply)).await {
            Ok(()) => done.await.unwrap_or_else(|_| Err(writer_gone())),
            Err(_) => seal_spool(Arc::clone(&self.spool)).await,
        };
        if let Err(e) = handle.await {
            tracing::error!(error = %e, "event writer task failed");
        }
        result
    }

    pub(crate) fn status(&self) -> SinkStatus {
        SinkStatus {
            degraded: self.degraded.load(Ordering::Relaxed),
            spool_segments: self.spool.segment_count(),
            spool_bytes: self.spool.bytes(),
            dropped: self.spool.dropped(),
        }
    }
}

fn writer_gone() -> StoreError {
    StoreError::unavailable("event sink", "the writer task stopped")
}

async fn seal_spool(spool: Arc<Spool>) -> Result<(), StoreError> {
    blocking(move || spool.seal_open()).await
}

/// Runs blocking spool I/O off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError::unavailable("event spool", e)))
}

/// The writer task's state.
struct Writer<W> {
    backend: W,
    spool: Arc<Spool>,
    settings: QueueSettings,
    batch: Batch,
    degraded: Arc<AtomicBool>,
    /// Wait before the next probe while degraded; doubles per failure up to the maximum.
    backoff: Duration,
    /// When the next replay turn may run (a probe first, if degraded).
    next_probe: Instant,
    /// Failed replays of the oldest segment, `(seq, attempts)`.
    segment_attempts: Option<(u64, u32)>,
}

impl<W: BatchWriter> Writer<W> {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval_at(
            Instant::now() + self.settings.flush_interval,
            self.settings.flush_interval,
        );
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let replay_due = self.is_degraded() || self.spool.has_segments();
            tokio::select! {
                command = rx.recv() => match command {
                    Some(Command::Event(event)) => {
                        let kind = event.kind();
                        if self.batch.push(event) >= self.settings.batch_size {
                            let rows = self.batch.take_kind(kind);
                            self.dispatch_rows(rows).await;
                        }
                    }
                    Some(Command::Flush(reply)) => {
                        let _ = reply.send(self.flush(true).await);
                    }
                    Some(Command::Shutdown(reply)) => {
                        // Events already queued are still this sink's to write, and flushes
                        // queued behind them get the final flush's outcome.
                        rx.close();
                        let mut late_flushes = Vec::new();
                        while let Some(command) = rx.recv().await {
                            match command {
                                Command::Event(event) => {
                                    self.batch.push(event);
                                }
                                Command::Flush(late) | Command::Shutdown(late) => {
                                    late_flushes.push(late);
                                }
                            }
                        }
                        let result = self.flush(false).await;
                        for late in late_flushes {
                            let _ = late.send(match &result {
                                Ok(()) => Ok(()),
                                Err(e) => Err(StoreError::unavailable("event sink", e)),
                            });
                        }
                        let _ = reply.send(result);
                        return;
                    }
                    None => {
                        // Every handle is gone without a shutdown: keep what we hold.
                        if let Err(e) = self.flush(false).await {
                            tracing::error!(error = %e, "final flush of the event sink failed");
                        }
                        return;
                    }
                },
                _ = tick.tick() => {
                    self.dispatch().await;
                    self.seal_overflow().await;
                }
                _ = tokio::time::sleep_until(self.next_probe), if replay_due => {
                    self.replay_turn(Some(REPLAY_TURN)).await;
                }
            }
        }
    }

    fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// Writes everything emitted so far. With `deliver`, also replays the spool if the backend
    /// answers (probing it at once, whatever the backoff); without it (shutdown) spooled rows
    /// stay on disk for the next start, so stopping never waits on a long replay.
    async fn flush(&mut self, deliver: bool) -> Result<(), StoreError> {
        self.dispatch().await;
        let mut result = seal_spool(Arc::clone(&self.spool)).await;
        if deliver {
            self.next_probe = Instant::now();
            self.replay_turn(None).await;
        }
        if let Err(e) = self.backend.sync().await {
            result = result.and(Err(e));
        }
        result
    }

    /// Sends the current batch to the backend (or the spool, see [`Writer::dispatch_rows`]).
    async fn dispatch(&mut self) {
        for rows in self.batch.take() {
            self.dispatch_rows(rows).await;
        }
    }

    /// Writes `rows` to the backend, or to the spool when the backend is down or older rows
    /// still wait there.
    async fn dispatch_rows(&mut self, rows: Rows) {
        if !self.is_degraded() && !self.spool.has_segments() {
            match self.backend.write(&rows).await {
                Ok(()) => {
                    metrics::written(rows.kind(), self.backend.name(), rows.len());
                    return;
                }
                Err(e) => self.enter_degraded(&e),
            }
        }
        self.spool_rows(rows).await;
    }

    async fn spool_rows(&mut self, rows: Rows) {
        let spool = Arc::clone(&self.spool);
        let kind = rows.kind();
        let len = rows.len() as u64;
        if let Err(e) = blocking(move || spool.write_segment(&rows)).await {
            self.spool.losses().record(kind, len, &e);
        }
    }

    async fn seal_overflow(&mut self) {
        if let Err(e) = seal_spool(Arc::clone(&self.spool)).await {
            tracing::error!(error = %e, "cannot seal spooled overflow events");
        }
    }

    /// Probes the backend if degraded, then replays up to `limit` segments (all if `None`).
    async fn replay_turn(&mut self, limit: Option<usize>) {
        if self.is_degraded() {
            if let Err(e) = self.backend.probe().await {
                self.schedule_retry(&e);
                return;
            }
            tracing::info!(
                backend = self.backend.name(),
                "event backend answers again; replaying the spool"
            );
            self.degraded.store(false, Ordering::Relaxed);
        }
        let mut replayed = 0;
        while limit.is_none_or(|limit| replayed < limit) {
            let Some(segment) = self.spool.oldest() else {
                self.backoff = self.settings.retry_interval;
                return;
            };
            if !self.replay(segment).await {
                return;
            }
            replayed += 1;
        }
        // More segments wait: come back right after looking at the queue.
        self.next_probe = Instant::now();
    }

    /// Replays one segment; false when the backend failed (the sink is degraded again).
    async fn replay(&mut self, segment: Segment) -> bool {
        let spool = Arc::clone(&self.spool);
        let to_read = segment.clone();
        let rows = match blocking(move || spool.read(&to_read)).await {
            Ok(rows) => rows,
            Err(e) => {
                self.set_aside(&segment, &e).await;
                return true;
            }
        };
        if let Err(e) = self.backend.write(&rows).await {
            // Only refusals count against the segment; an outage is nobody's fault.
            if !e.is_backend_failure() {
                let attempts = match self.segment_attempts {
                    Some((seq, attempts)) if seq == segment.seq => attempts + 1,
                    _ => 1,
                };
                self.segment_attempts = Some((segment.seq, attempts));
                if attempts >= MAX_SEGMENT_ATTEMPTS {
                    self.set_aside(&segment, &e).await;
                    return true;
                }
            }
            self.enter_degraded(&e);
            return false;
        }
        metrics::written(rows.kind(), self.backend.name(), rows.len());
        tracing::debug!(
            seq = segment.seq,
            rows = rows.len(),
            "replayed a spool segment"
        );
        self.segment_attempts = None;
        let spool = Arc::clone(&self.spool);
        if let Err(e) = blocking(move || spool.remove(&segment)).await {
            // Left on disk it would be replayed twice; nothing better to do than say so.
            tracing::error!(error = %e, "cannot delete a replayed spool segment");
        }
        true
    }

    async fn set_aside(&mut self, segment: &Segment, reason: &StoreError) {
        self.segment_attempts = None;
        let spool = Arc::clone(&self.spool);
        let to_reject = segment.clone();
        let reason = reason.to_string();
        let result = blocking(move || spool.reject(&to_reject, &reason)).await;
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot set aside a spool segment");
        }
    }

    fn enter_degraded(&mut self, error: &StoreError) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                backend = self.backend.name(),
                error = %error,
                "event backend failed; spooling events to disk until it answers"
            );
        }
        self.schedule_retry(error);
    }

    fn schedule_retry(&mut self, error: &StoreError) {
        tracing::debug!(backend = self.backend.name(), error = %error, retry_in = ?self.backoff, "event backend still down");
        self.next_probe = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.settings.max_retry_interval);
    }
}

/// Validation shared by the backends' configs.
pub(crate) fn validate_settings(s: &QueueSettings, max_spool_bytes: u64) -> Result<(), String> {
    if s.batch_size == 0 || s.batch_size > 1_000_000 {
        // Above ClickHouse's max_insert_block_size one insert may be split into blocks that
        // commit separately, and a retried batch could then be half duplicated.
        return Err("batch_size must be between 1 and 1000000".into());
    }
    if s.queue_capacity == 0 {
        return Err("queue_capacity must be at least 1".into());
    }
    if s.flush_interval.is_zero() {
        return Err("flush_interval must be positive".into());
    }
    if s.retry_interval.is_zero() {
        return Err("retry_interval must be positive".into());
    }
    if s.max_retry_interval < s.retry_interval {
        return Err("max_retry_interval must be at least retry_interval".into());
    }
    if max_spool_bytes == 0 {
        return Err("max_spool_bytes must be positive".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The writer's decisions against a scripted backend: order across an outage, backoff,
    //! and which failures may set a segment aside.

    use std::sync::Mutex;

    use super::*;
    use crate::store::events::RequestEvent;

    /// How the fake backend answers.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Mode {
        Up,
        /// Probes and writes fail as if the server were gone.
        Down,
        /// Probes answer but writes fail as if the connection dropped each time.
        Flapping,
        /// Probes answer; writes with an event id starting with "bad" are refused.
        RefuseBad,
    }

    #[derive(Debug)]
    struct Script {
        mode: Mode,
        written: Vec<String>,
        probes: u32,
    }

    #[derive(Clone)]
    struct Fake(Arc<Mutex<Script>>);

    impl Fake {
        fn new(mode: Mode) -> Self {
            Self(Arc::new(Mutex::new(Script {
                mode,
                written: Vec::new(),
                probes: 0,
            })))
        }

        fn set(&self, mode: Mode) {
            self.0.lock().unwrap().mode = mode;
        }

        fn written(&self) -> Vec<String> {
            self.0.lock().unwrap().written.clone()
        }

        fn probes(&self) -> u32 {
            self.0.lock().unwrap().probes
        }
    }

    fn down() -> StoreError {
        StoreError::unavailable("fake", "connection refused")
    }

    #[async_trait]
    impl BatchWriter for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }

        async fn write(&mut self, rows: &Rows) -> Result<(), StoreError> {
            let Rows::Request(rows) = rows else {
                panic!("the tests only emit requests")
            };
            let mut script = self.0.lock().unwrap();
            match script.mode {
                Mode::Down | Mode::Flapping => return Err(down()),
                Mode::RefuseBad if rows.iter().any(|r| r.event_id.starts_with("bad")) => {
                    return Err(StoreError::Invalid("refused".into()));
                }
                _ => {}
            }
            script
                .written
                .extend(rows.iter().map(|r| r.event_id.clone()));
            Ok(())
        }

        async fn sync(&mut self) -> Result<(), StoreError> {
            Ok(())
        }

        async fn probe(&mut self) -> Result<(), StoreError> {
            let mut script = self.0.lock().unwrap();
            script.probes += 1;
            match script.mode {
                Mode::Down => Err(down()),
                _ => Ok(()),
            }
        }
    }

    fn settings() -> QueueSettings {
        QueueSettings {
            batch_size: 10,
            flush_interval: Duration::from_secs(3600),
            queue_capacity: 10_000,
            retry_interval: Duration::from_millis(5),
            max_retry_interval: Duration::from_millis(20),
        }
    }

    fn start(fake: &Fake, dir: &tempfile::TempDir) -> BatchingSink {
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        BatchingSink::start(fake.clone(), spool, settings(), false)
    }

    fn emit(sink: &BatchingSink, ids: impl IntoIterator<Item = String>) {
        for event_id in ids {
            sink.emit(Event::Request(RequestEvent {
                event_id,
                tenant_id: "acme".into(),
                ..Default::default()
            }));
        }
    }

    fn ids(prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|i| format!("{prefix}{i:04}")).collect()
    }

    async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn rows_keep_their_order_across_an_outage() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(Mode::Up);
        let sink = start(&fake, &dir);
        emit(&sink, ids("a", 0..25));
        sink.flush().await.unwrap();

        fake.set(Mode::Down);
        emit(&sink, ids("a", 25..60));
        // Down: the flush still succeeds, because everything is in the spool.
        sink.flush().await.unwrap();
        assert!(sink.status().degraded);
        assert!(sink.status().spool_segments >= 3);

        fake.set(Mode::Up);
        // Rows emitted after recovery queue up behind the spooled ones.
        emit(&sink, ids("a", 60..80));
        sink.flush().await.unwrap();
        assert_eq!(fake.written(), ids("a", 0..80));
        assert_eq!(
            sink.status(),
            SinkStatus {
                degraded: false,
                spool_segments: 0,
                spool_bytes: 0,
                dropped: 0
            }
        );
    }

    /// Segments left by an earlier run are written before anything new. (The writer picks
    /// among ready events at random, so a writer that skipped this rule would still pass
    /// sometimes; with 60 segments to replay in turns of 4 it fails ~9 runs in 10.)
    #[tokio::test]
    async fn new_rows_wait_behind_spooled_ones() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = Spool::open(dir.path(), u64::MAX).unwrap();
            for id in ids("old", 0..60) {
                let rows = Rows::Request(vec![RequestEvent {
                    event_id: id,
                    ..Default::default()
                }]);
                spool.write_segment(&rows).unwrap();
            }
        }
        let fake = Fake::new(Mode::Up);
        let sink = start(&fake, &dir);
        emit(&sink, ids("new", 0..1));
        sink.flush().await.unwrap();
        let mut expected = ids("old", 0..60);
        expected.extend(ids("new", 0..1));
        assert_eq!(fake.written(), expected);
    }

    #[tokio::test]
    async fn recovers_without_a_flush_and_backs_off_while_down() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(Mode::Down);
        let sink = start(&fake, &dir);
        emit(&sink, ids("b", 0..10));
        wait_until("the batch is spooled", || sink.status().spool_segments == 1).await;

        let probes_at = fake.probes();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let probes = fake.probes() - probes_at;
        // Every 5 ms would be ~60 probes; doubling up to 20 ms gives at most ~16.
        assert!((1..=20).contains(&probes), "{probes} probes in 300 ms");

        fake.set(Mode::Up);
        wait_until("the replay task delivers", || fake.written().len() == 10).await;
        wait_until("the spool is empty", || sink.status().spool_segments == 0).await;
        assert!(!sink.status().degraded);
        sink.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_refused_segment_is_set_aside_and_the_rest_follows() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(Mode::RefuseBad);
        let sink = start(&fake, &dir);
        emit(&sink, ids("bad", 0..10));
        emit(&sink, ids("ok", 0..10));
        wait_until("the good rows arrive", || {
            fake.written() == ids("ok", 0..10)
        })
        .await;
        wait_until("the spool is empty", || sink.status().spool_segments == 0).await;
        let rejected: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".rejected"))
            .collect();
        assert_eq!(rejected.len(), 1, "{rejected:?}");
    }

    #[tokio::test]
    async fn outages_never_set_a_segment_aside() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(Mode::Flapping);
        let sink = start(&fake, &dir);
        emit(&sink, ids("f", 0..10));
        // Far more failed replays than MAX_SEGMENT_ATTEMPTS.
        let needed = fake.probes() + 3 * MAX_SEGMENT_ATTEMPTS;
        wait_until("many probe/replay rounds", || fake.probes() >= needed).await;
        assert_eq!(sink.status().spool_segments, 1);

        fake.set(Mode::Up);
        sink.flush().await.unwrap();
        assert_eq!(fake.written(), ids("f", 0..10));
    }

    #[tokio::test]
    async fn shutdown_spools_while_down_and_later_emits_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(Mode::Down);
        let sink = start(&fake, &dir);
        emit(&sink, ids("s", 0..3));
        sink.shutdown().await.unwrap();
        emit(&sink, ids("s", 3..4));
        assert_eq!(sink.status().spool_segments, 2);
        drop(sink);

        // The next sink replays both segments, in order.
        let fake = Fake::new(Mode::Up);
        let sink = start(&fake, &dir);
        sink.flush().await.unwrap();
        assert_eq!(fake.written(), ids("s", 0..4));
    }
}
