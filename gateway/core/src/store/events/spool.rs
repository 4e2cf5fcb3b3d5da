//! The disk spool: events that could not reach the backend yet, kept in segment files until
//! they are replayed.
//!
//! A segment holds rows of one kind (so one insert replays it and one delete retires it) as
//! JSONL of the tagged [`Event`] (`{"kind":"request",...}`). Segments are named
//! `{seq:020}.{table}.jsonl` and replayed in `seq` order, oldest first.
//!
//! Crash safety: a segment is written under a `.tmp` name, fsynced, then renamed (and the
//! directory fsynced), so a segment under its final name is always complete. Leftover `.tmp`
//! files are partial writes of a crashed process and are deleted on [`Spool::open`]; complete
//! segments from before the crash are replayed like any other.
//!
//! Two ways in:
//! - [`Spool::write_segment`]: a whole batch the backend could not take, sealed at once.
//! - [`Spool::append`]: single events when the in-memory queue is full. They go to an open
//!   `.tmp` segment per kind (buffered, no fsync on the request path) that the writer task
//!   seals with [`Spool::seal_open`] every flush interval.
//!
//! The spool is bounded by `max_bytes` (sealed and open segments together); beyond that it
//! refuses and the caller counts the events as dropped. Methods do blocking file I/O: call
//! them from `spawn_blocking`, except `append`, whose buffered write is cheap enough for the
//! overload path it serves.
//!
//! One spool directory belongs to one sink: [`Spool::open`] refuses a directory another live
//! spool of this process uses. Separate processes must be given separate directories.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use super::losses::LossLedger;
use super::metrics::{self, kind_index};
use super::rows::{EventRef, Rows};
use super::{Event, EventKind};
use crate::store::StoreError;

const BACKEND: &str = "event spool";
const SEGMENT_EXT: &str = "jsonl";
const TMP_SUFFIX: &str = ".tmp";
const REJECTED_SUFFIX: &str = ".rejected";
/// An open overflow segment is handed over for sealing once it reaches this size, so a long
/// overload produces several replayable segments instead of one huge one.
const OPEN_SEGMENT_ROLL_BYTES: u64 = 4 * 1024 * 1024;
const OPEN_SEGMENT_BUFFER: usize = 64 * 1024;

/// A sealed segment waiting for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Replay order: lower first.
    pub seq: u64,
    pub kind: EventKind,
    pub bytes: u64,
    /// Rows in the segment; 0 when unknown (a segment found on disk at [`Spool::open`]).
    pub rows: u64,
    path: PathBuf,
}

impl Segment {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Directory of segment files; see the module docs.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Bytes of sealed and open segments, reserved before writing.
    bytes: AtomicU64,
    next_seq: AtomicU64,
    sealed: Mutex<BTreeMap<u64, Segment>>,
    open: Mutex<OpenSegments>,
    losses: LossLedger,
    _claim: DirClaim,
}

#[derive(Debug, Default)]
struct OpenSegments {
    /// The segment `append` writes to, per kind.
    current: [Option<OpenSegment>; 3],
    /// Rolled segments waiting for [`Spool::seal_open`].
    full: Vec<OpenSegment>,
}

#[derive(Debug)]
struct OpenSegment {
    seq: u64,
    kind: EventKind,
    file: BufWriter<File>,
    bytes: u64,
    rows: u64,
}

impl Spool {
    /// Opens (creating it if needed) the spool in `dir`: deletes partial `.tmp` files left by a
    /// crash and indexes the complete segments, which are then replayed like new ones.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| io_error("create", &dir, e))?;
        let claim = DirClaim::take(&dir)?;
        let mut sealed = BTreeMap::new();
        let mut max_seq = 0;
        let mut bytes = 0;
        let mut rejected = 0;
        for entry in fs::read_dir(&dir).map_err(|e| io_error("list", &dir, e))? {
            let entry = entry.map_err(|e| io_error("list", &dir, e))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(stem) = name.strip_suffix(TMP_SUFFIX) {
                if let Some((seq, _)) = parse_segment_name(stem) {
                    max_seq = max_seq.max(seq);
                }
                tracing::warn!(file = %path.display(), "deleting a partial spool segment left by a crash");
                fs::remove_file(&path).map_err(|e| io_error("delete", &path, e))?;
            } else if let Some(stem) = name.strip_suffix(REJECTED_SUFFIX) {
                if let Some((seq, _)) = parse_segment_name(stem) {
                    max_seq = max_seq.max(seq);
                }
                rejected += 1;
            } else if let Some((seq, kind)) = parse_segment_name(name) {
                let len = entry
                    .metadata()
                    .map_err(|e| io_error("stat", &path, e))?
                    .len();
                max_seq = max_seq.max(seq);
                bytes += len;
                sealed.insert(
                    seq,
                    Segment {
                        seq,
                        kind,
                        bytes: len,
                        rows: 0,
                        path,
                    },
                );
            }
        }
        if rejected > 0 {
            tracing::error!(
                dir = %dir.display(),
                segments = rejected,
                "spool holds segments the backend rejected; they are not replayed (rename them \
                 without the .rejected suffix to retry)"
            );
        }
        if !sealed.is_empty() {
            tracing::info!(
                dir = %dir.display(),
                segments = sealed.len(),
                bytes,
                "spool holds segments from an earlier run; they will be replayed"
            );
        }
        metrics::spool_bytes_add(bytes as i64);
        Ok(Self {
            dir,
            max_bytes,
            bytes: AtomicU64::new(bytes),
            next_seq: AtomicU64::new(max_seq + 1),
            sealed: Mutex::new(sealed),
            open: Mutex::new(OpenSegments::default()),
            losses: LossLedger::new(),
            _claim: claim,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes held (sealed and open segments).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Sealed segments waiting for replay.
    pub fn segment_count(&self) -> usize {
        lock(&self.sealed).len()
    }

    /// Whether sealed segments wait for replay.
    pub fn has_segments(&self) -> bool {
        !lock(&self.sealed).is_empty()
    }

    /// Events lost by this spool's sink since it started (refused when full, failed writes).
    pub fn dropped(&self) -> u64 {
        self.losses.total()
    }

    pub(crate) fn losses(&self) -> &LossLedger {
        &self.losses
    }

    /// Writes `rows` as one sealed segment (durable when this returns).
    pub fn write_segment(&self, rows: &Rows) -> Result<Segment, StoreError> {
        let mut body = Vec::with_capacity(rows.len() * 256);
        rows.write_tagged_jsonl(&mut body)
            .map_err(|e| StoreError::Invalid(format!("cannot serialize events: {e}")))?;
        let len = body.len() as u64;
        self.reserve(len)?;
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let path = self.segment_path(seq, rows.kind());
        let tmp = tmp_path(&path);
        let written = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(&body)?;
            file.sync_data()?;
            fs::rename(&tmp, &path)?;
            sync_dir(&self.dir)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            self.release(len);
            return Err(io_error("write", &path, e));
        }
        let segment = Segment {
            seq,
            kind: rows.kind(),
            bytes: len,
            rows: rows.len() as u64,
            path,
        };
        lock(&self.sealed).insert(seq, segment.clone());
        metrics::spooled(rows.kind(), rows.len() as u64);
        Ok(segment)
    }

    /// Appends one event to the open segment of its kind (buffered, not yet durable: see
    /// [`Spool::seal_open`]).
    pub fn append(&self, event: &Event) -> Result<(), StoreError> {
        let mut line = Vec::with_capacity(512);
        serde_json::to_writer(&mut line, &EventRef::from(event))
            .map_err(|e| StoreError::Invalid(format!("cannot serialize an event: {e}")))?;
        line.push(b'\n');
        let len = line.len() as u64;
        self.reserve(len)?;
        let kind = event.kind();
        let mut open = lock(&self.open);
        let slot = &mut open.current[kind_index(kind)];
        if slot.is_none() {
            match self.create_open(kind) {
                Ok(segment) => *slot = Some(segment),
                Err(e) => {
                    self.release(len);
                    return Err(io_error("create a segment in", &self.dir, e));
                }
            }
        }
        let segment = slot.as_mut().expect("the slot was filled above");
        if let Err(e) = segment.file.write_all(&line) {
            // A segment whose write failed may be torn: give it up whole rather than seal it.
            self.release(len);
            if let Some(broken) = slot.take() {
                self.discard_open(broken, &e);
            }
            return Err(io_error("append to", &self.dir, e));
        }
        segment.bytes += len;
        segment.rows += 1;
        if segment.bytes >= OPEN_SEGMENT_ROLL_BYTES {
            let full = slot.take().expect("checked above");
            open.full.push(full);
        }
        drop(open);
        metrics::spooled(kind, 1);
        Ok(())
    }

    /// Makes the events given to [`Spool::append`] so far durable segments. Segments that
    /// cannot be sealed are counted as dropped; the first error is returned.
    pub fn seal_open(&self) -> Result<(), StoreError> {
        let segments: Vec<OpenSegment> = {
            let mut open = lock(&self.open);
            let mut taken = std::mem::take(&mut open.full);
            taken.extend(open.current.iter_mut().filter_map(Option::take));
            taken
        };
        let mut first_error = None;
        for segment in segments {
            if let Err(e) = self.seal(segment) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn seal(&self, mut open: OpenSegment) -> Result<(), StoreError> {
        let path = self.segment_path(open.seq, open.kind);
        let tmp = tmp_path(&path);
        let sealed = (|| {
            open.file.flush()?;
            open.file.get_ref().sync_data()?;
            fs::rename(&tmp, &path)?;
            sync_dir(&self.dir)
        })();
        if let Err(e) = sealed {
            let error = io_error("seal", &path, e);
            self.discard_open(open, &error);
            return Err(error);
        }
        let segment = Segment {
            seq: open.seq,
            kind: open.kind,
            bytes: open.bytes,
            rows: open.rows,
            path,
        };
        lock(&self.sealed).insert(open.seq, segment);
        Ok(())
    }

    /// The next segment to replay.
    pub fn oldest(&self) -> Option<Segment> {
        lock(&self.sealed).values().next().cloned()
    }

    /// Reads a segment's rows. A segment that cannot be parsed is [`StoreError::Corrupt`].
    pub fn read(&self, segment: &Segment) -> Result<Rows, StoreError> {
        let body = fs::read(&segment.path).map_err(|e| StoreError::Corrupt {
            backend: BACKEND,
            message: format!("cannot read {}: {e}", segment.path.display()),
        })?;
        let mut rows = Rows::empty(segment.kind);
        for (number, line) in body.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let corrupt = |message: String| StoreError::Corrupt {
                backend: BACKEND,
                message: format!("{} line {}: {message}", segment.path.display(), number + 1),
            };
            let event: Event = serde_json::from_slice(line).map_err(|e| corrupt(e.to_string()))?;
            rows.push(event).map_err(|other| {
                corrupt(format!("a {other:?} event in a {:?} segment", segment.kind))
            })?;
        }
        Ok(rows)
    }

    /// Deletes a replayed segment.
    pub fn remove(&self, segment: &Segment) -> Result<(), StoreError> {
        match fs::remove_file(&segment.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("delete", &segment.path, e)),
        }
        self.forget(segment);
        Ok(())
    }

    /// Sets aside a segment the backend keeps refusing (or that cannot be read), renamed with
    /// a `.rejected` suffix: kept for an operator, no longer replayed or counted.
    pub fn reject(
        &self,
        segment: &Segment,
        reason: &dyn std::fmt::Display,
    ) -> Result<(), StoreError> {
        let mut target = segment.path.clone().into_os_string();
        target.push(REJECTED_SUFFIX);
        match fs::rename(&segment.path, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("set aside", &segment.path, e)),
        }
        tracing::error!(
            file = %PathBuf::from(&target).display(),
            rows = segment.rows,
            error = %reason,
            "spool segment set aside: the backend keeps refusing it (rename it without the \
             .rejected suffix to retry)"
        );
        self.forget(segment);
        Ok(())
    }

    fn forget(&self, segment: &Segment) {
        if lock(&self.sealed).remove(&segment.seq).is_some() {
            self.release(segment.bytes);
        }
    }

    fn create_open(&self, kind: EventKind) -> io::Result<OpenSegment> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = tmp_path(&self.segment_path(seq, kind));
        let file = File::create(tmp)?;
        Ok(OpenSegment {
            seq,
            kind,
            file: BufWriter::with_capacity(OPEN_SEGMENT_BUFFER, file),
            bytes: 0,
            rows: 0,
        })
    }

    fn discard_open(&self, open: OpenSegment, reason: &dyn std::fmt::Display) {
        let tmp = tmp_path(&self.segment_path(open.seq, open.kind));
        drop(open.file);
        let _ = fs::remove_file(tmp);
        self.release(open.bytes);
        self.losses.record(open.kind, open.rows, reason);
    }

    fn reserve(&self, len: u64) -> Result<(), StoreError> {
        let max = self.max_bytes;
        self.bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(len).filter(|&total| total <= max)
            })
            .map_err(|held| StoreError::Unavailable {
                backend: BACKEND,
                message: format!(
                    "spool {} is full ({held} of {max} bytes held, {len} more refused)",
                    self.dir.display()
                ),
            })?;
        metrics::spool_bytes_add(len as i64);
        Ok(())
    }

    fn release(&self, len: u64) {
        self.bytes.fetch_sub(len, Ordering::Relaxed);
        metrics::spool_bytes_add(-(len as i64));
    }

    fn segment_path(&self, seq: u64, kind: EventKind) -> PathBuf {
        self.dir
            .join(format!("{seq:020}.{}.{SEGMENT_EXT}", kind.table()))
    }
}

impl Drop for Spool {
    /// A sink dropped without `shutdown` must not lose what overflowed into open segments.
    fn drop(&mut self) {
        if let Err(e) = self.seal_open() {
            tracing::error!(error = %e, "cannot seal open spool segments on drop");
        }
        metrics::spool_bytes_add(-(self.bytes() as i64));
    }
}

/// `{seq:020}.{table}.jsonl` → (seq, kind).
fn parse_segment_name(name: &str) -> Option<(u64, EventKind)> {
    let mut parts = name.split('.');
    let seq = parts.next()?;
    let table = parts.next()?;
    let ext = parts.next()?;
    if parts.next().is_some() || ext != SEGMENT_EXT || seq.len() != 20 {
        return None;
    }
    let seq = seq.parse().ok()?;
    let kind = EventKind::ALL.into_iter().find(|k| k.table() == table)?;
    Some((seq, kind))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.to_path_buf().into_os_string();
    tmp.push(TMP_SUFFIX);
    tmp.into()
}

/// A rename is durable only once the directory entry is.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn io_error(action: &str, path: &Path, e: io::Error) -> StoreError {
    StoreError::unavailable(BACKEND, format!("cannot {action} {}: {e}", path.display()))
}

/// A poisoned lock only means another thread panicked mid-update of plain data that stays
/// consistent (every update is a single insert/remove), so keep going.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Directories claimed by live spools of this process: two spools on one directory would
/// reuse sequence numbers and replay each other's segments.
static CLAIMED: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(Default::default);

#[derive(Debug)]
struct DirClaim(PathBuf);

impl DirClaim {
    fn take(dir: &Path) -> Result<Self, StoreError> {
        let canonical = dir
            .canonicalize()
            .map_err(|e| io_error("resolve", dir, e))?;
        if !lock(&CLAIMED).insert(canonical.clone()) {
            return Err(StoreError::Invalid(format!(
                "spool directory {} is already used by another event sink",
                dir.display()
            )));
        }
        Ok(Self(canonical))
    }
}

impl Drop for DirClaim {
    fn drop(&mut self) {
        lock(&CLAIMED).remove(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::{AuditEvent, RequestEvent, UsageEvent};

    fn request(i: u64) -> RequestEvent {
        RequestEvent {
            event_id: format!("r{i}"),
            ts_ms: 1_700_000_000_000 + i,
            tenant_id: "acme".into(),
            path: format!("/v1/items/{i}"),
            status: 200,
            ..Default::default()
        }
    }

    fn requests(range: std::ops::Range<u64>) -> Rows {
        Rows::Request(range.map(request).collect())
    }

    #[test]
    fn segments_round_trip_in_order_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let first = spool.write_segment(&requests(0..3)).unwrap();
        let usage = Rows::Usage(vec![UsageEvent {
            tenant_id: "acme".into(),
            prompt_tokens: 7,
            ..Default::default()
        }]);
        let second = spool.write_segment(&usage).unwrap();
        assert!(first.seq < second.seq);
        assert_eq!(spool.segment_count(), 2);
        assert_eq!(spool.bytes(), first.bytes + second.bytes);
        assert_eq!(
            spool.bytes(),
            fs::metadata(first.path()).unwrap().len() + fs::metadata(second.path()).unwrap().len()
        );

        let oldest = spool.oldest().unwrap();
        assert_eq!(oldest, first);
        assert_eq!(spool.read(&oldest).unwrap(), requests(0..3));
        spool.remove(&oldest).unwrap();
        assert!(!first.path().exists());

        let next = spool.oldest().unwrap();
        assert_eq!(spool.read(&next).unwrap(), usage);
        spool.remove(&next).unwrap();
        assert!(spool.oldest().is_none());
        assert_eq!(spool.bytes(), 0);
    }

    #[test]
    fn reopening_replays_complete_segments_and_deletes_partial_ones() {
        let dir = tempfile::tempdir().unwrap();
        let kept = {
            let spool = Spool::open(dir.path(), u64::MAX).unwrap();
            spool.write_segment(&requests(0..2)).unwrap()
        };
        // A crash while writing a segment leaves a torn .tmp file.
        let torn = dir
            .path()
            .join(format!("{:020}.request_log.jsonl.tmp", kept.seq + 1));
        fs::write(&torn, b"{\"kind\":\"request\",\"event_id\":\"x\",\"ts_").unwrap();

        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        assert!(!torn.exists(), "partial segment must be deleted");
        assert_eq!(spool.segment_count(), 1);
        let oldest = spool.oldest().unwrap();
        assert_eq!(oldest.seq, kept.seq);
        assert_eq!(spool.read(&oldest).unwrap(), requests(0..2));
        // New segments sort after everything already on disk, torn ones included.
        let newer = spool.write_segment(&requests(5..6)).unwrap();
        assert!(newer.seq > kept.seq + 1);
    }

    #[test]
    fn refuses_beyond_max_bytes_and_frees_on_remove() {
        let dir = tempfile::tempdir().unwrap();
        let mut probe = Vec::new();
        requests(0..10).write_tagged_jsonl(&mut probe).unwrap();
        // Room for one such segment, not two.
        let limit = probe.len() as u64 * 3 / 2;
        let spool = Spool::open(dir.path(), limit).unwrap();

        let segment = spool.write_segment(&requests(0..10)).unwrap();
        let refused = spool.write_segment(&requests(10..20)).unwrap_err();
        assert!(
            matches!(refused, StoreError::Unavailable { .. }),
            "{refused}"
        );
        let big = RequestEvent {
            user_agent: "x".repeat(limit as usize),
            ..request(99)
        };
        let refused = spool.append(&Event::Request(big)).unwrap_err();
        assert!(refused.to_string().contains("full"), "{refused}");
        assert_eq!(spool.segment_count(), 1);
        assert_eq!(spool.bytes(), segment.bytes);

        spool.remove(&segment).unwrap();
        spool.write_segment(&requests(10..20)).unwrap();
    }

    #[test]
    fn appended_events_become_a_segment_when_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        for i in 0..5 {
            spool.append(&Event::Request(request(i))).unwrap();
        }
        spool
            .append(&Event::Audit(AuditEvent {
                tenant_id: "acme".into(),
                tool: "search".into(),
                ..Default::default()
            }))
            .unwrap();
        assert_eq!(
            spool.segment_count(),
            0,
            "open segments are not replayable yet"
        );
        assert!(spool.bytes() > 0);

        spool.seal_open().unwrap();
        assert_eq!(spool.segment_count(), 2);
        let first = spool.oldest().unwrap();
        assert_eq!(first.rows, 5);
        assert_eq!(spool.read(&first).unwrap(), requests(0..5));
        spool.remove(&first).unwrap();
        let audit = spool.oldest().unwrap();
        assert_eq!(audit.kind, EventKind::Audit);
        assert_eq!(spool.read(&audit).unwrap().len(), 1);
    }

    #[test]
    fn dropping_the_spool_seals_open_segments() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = Spool::open(dir.path(), u64::MAX).unwrap();
            spool.append(&Event::Request(request(1))).unwrap();
        }
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let segment = spool.oldest().expect("the appended event survived");
        assert_eq!(spool.read(&segment).unwrap(), requests(1..2));
    }

    #[test]
    fn one_directory_one_spool() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let second = Spool::open(dir.path().join("."), u64::MAX).unwrap_err();
        assert!(matches!(second, StoreError::Invalid(_)), "{second}");
        drop(spool);
        Spool::open(dir.path(), u64::MAX).unwrap();
    }

    #[test]
    fn corrupt_segment_is_reported_and_can_be_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let segment = spool.write_segment(&requests(0..2)).unwrap();
        fs::write(segment.path(), b"not json\n").unwrap();
        let err = spool.read(&segment).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        spool.reject(&segment, &err).unwrap();
        assert!(spool.oldest().is_none());
        assert_eq!(spool.bytes(), 0);
        drop(spool);
        // Set-aside segments stay on disk but are not replayed after a restart.
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        assert!(spool.oldest().is_none());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
