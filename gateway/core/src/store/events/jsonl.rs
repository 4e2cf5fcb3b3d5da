//! The embedded event backend: append-only JSONL files, one per kind.
//!
//! `<dir>/<table>.jsonl` (e.g. `request_log.jsonl`) holds one JSON object per line, the row
//! struct's fields (the file names the kind, so no tag). Writes are buffered and flushed per
//! batch, and fsynced on [`EventSink::flush`] and [`EventSink::shutdown`]. When a file would
//! grow beyond `max_file_bytes` it is renamed to `<table>.<unix_ms>.jsonl` and a new one
//! started. Batching, the overflow spool and replay come from the shared front
//! ([`super::queue`]); delivery is at least once (a batch whose write failed half way is
//! truncated back when possible, otherwise replayed whole; `event_id` tells the copies apart).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::metrics::kind_index;
use super::queue::{BatchWriter, BatchingSink, QueueSettings, SinkStatus, validate_settings};
use super::rows::Rows;
use super::spool::Spool;
use super::{Event, EventKind, EventSink};
use crate::store::StoreError;

const BACKEND: &str = "jsonl";
const WRITE_BUFFER: usize = 256 * 1024;

/// Config of [`JsonlSink`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonlSinkConfig {
    /// Directory of the JSONL files (created if missing). Default `data/events`.
    pub dir: PathBuf,
    /// Size at which a file is rotated. Default 256 MiB.
    pub max_file_bytes: u64,
    /// Rows per write. Default 1000.
    pub batch_size: usize,
    /// Longest time a row waits in memory before it is written. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Events held in memory before `emit` spools to disk instead. Default 100 000.
    pub queue_capacity: usize,
    /// Spool directory. Default `<dir>/spool`.
    pub spool_dir: Option<PathBuf>,
    /// Spool size beyond which events are dropped (and counted). Default 1 GiB.
    pub max_spool_bytes: u64,
    /// First wait before retrying after a write failed (e.g. disk full). Default 1 s.
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
    /// Longest wait between retries (the wait doubles per failure). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub max_retry_interval: Duration,
}

impl Default for JsonlSinkConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/events"),
            max_file_bytes: 256 * 1024 * 1024,
            batch_size: 1000,
            flush_interval: Duration::from_secs(1),
            queue_capacity: 100_000,
            spool_dir: None,
            max_spool_bytes: 1024 * 1024 * 1024,
            retry_interval: Duration::from_secs(1),
            max_retry_interval: Duration::from_secs(30),
        }
    }
}

impl JsonlSinkConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.dir.as_os_str().is_empty() {
            return Err("dir must not be empty".into());
        }
        if self.spool_dir() == self.dir {
            return Err("spool_dir must differ from dir".into());
        }
        if self.max_file_bytes < 4096 {
            return Err("max_file_bytes must be at least 4096".into());
        }
        validate_settings(&self.settings(), self.max_spool_bytes)
    }

    /// The spool directory in effect.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| self.dir.join("spool"))
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
}

/// Events to JSONL files; the embedded default.
pub struct JsonlSink {
    front: BatchingSink,
}

impl JsonlSink {
    /// Validates `config`, opens the files and the spool (replaying what an earlier run left
    /// there) and starts the writer task on the current tokio runtime.
    pub async fn start(config: &JsonlSinkConfig) -> Result<Self, StoreError> {
        config.validate().map_err(StoreError::Invalid)?;
        let files = JsonlFiles::open(config.dir.clone(), config.max_file_bytes)?;
        let spool = Spool::open(config.spool_dir(), config.max_spool_bytes)?;
        let writer = JsonlWriter {
            files: Arc::new(Mutex::new(files)),
        };
        Ok(Self {
            front: BatchingSink::start(writer, spool, config.settings(), false),
        })
    }

    /// The live file of `kind` under `dir`.
    pub fn file_path(dir: &Path, kind: EventKind) -> PathBuf {
        dir.join(format!("{}.jsonl", kind.table()))
    }

    pub fn status(&self) -> SinkStatus {
        self.front.status()
    }
}

#[async_trait]
impl EventSink for JsonlSink {
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

struct JsonlWriter {
    files: Arc<Mutex<JsonlFiles>>,
}

impl JsonlWriter {
    /// Runs file I/O off the async workers.
    async fn with_files<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut JsonlFiles) -> io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let files = Arc::clone(&self.files);
        tokio::task::spawn_blocking(move || {
            let mut files = files.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut files)
        })
        .await
        .map_err(|e| StoreError::unavailable(BACKEND, e))?
        .map_err(|e| StoreError::unavailable(BACKEND, e))
    }
}

#[async_trait]
impl BatchWriter for JsonlWriter {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn write(&mut self, rows: &Rows) -> Result<(), StoreError> {
        // Serialize here (CPU only) and hand the bytes to the blocking pool.
        let mut body = Vec::with_capacity(rows.len() * 320);
        let mut line_ends = Vec::with_capacity(rows.len());
        serialize_lines(rows, &mut body, &mut line_ends)
            .map_err(|e| StoreError::Invalid(format!("cannot serialize events: {e}")))?;
        let kind = rows.kind();
        self.with_files(move |files| files.append(kind, &body, &line_ends))
            .await
    }

    async fn sync(&mut self) -> Result<(), StoreError> {
        self.with_files(JsonlFiles::sync).await
    }

    async fn probe(&mut self) -> Result<(), StoreError> {
        self.with_files(JsonlFiles::reopen).await
    }
}

fn serialize_lines(
    rows: &Rows,
    body: &mut Vec<u8>,
    line_ends: &mut Vec<usize>,
) -> Result<(), serde_json::Error> {
    fn each<T: serde::Serialize>(
        rows: &[T],
        body: &mut Vec<u8>,
        line_ends: &mut Vec<usize>,
    ) -> Result<(), serde_json::Error> {
        for row in rows {
            serde_json::to_writer(&mut *body, row)?;
            body.push(b'\n');
            line_ends.push(body.len());
        }
        Ok(())
    }
    match rows {
        Rows::Request(rows) => each(rows, body, line_ends),
        Rows::Usage(rows) => each(rows, body, line_ends),
        Rows::Audit(rows) => each(rows, body, line_ends),
    }
}

/// The open files, one per kind, opened on first use.
struct JsonlFiles {
    dir: PathBuf,
    max_file_bytes: u64,
    open: [Option<OpenFile>; 3],
}

struct OpenFile {
    file: BufWriter<File>,
    size: u64,
}

impl JsonlFiles {
    fn open(dir: PathBuf, max_file_bytes: u64) -> Result<Self, StoreError> {
        fs::create_dir_all(&dir).map_err(|e| {
            StoreError::unavailable(BACKEND, format!("cannot create {}: {e}", dir.display()))
        })?;
        Ok(Self {
            dir,
            max_file_bytes,
            open: Default::default(),
        })
    }

    /// Appends whole lines (`body` split at `line_ends`), rotating between lines as needed.
    /// On failure, the file is cut back to where this batch began when no rotation happened,
    /// so a retried batch is not half duplicated.
    fn append(&mut self, kind: EventKind, body: &[u8], line_ends: &[usize]) -> io::Result<()> {
        let path = JsonlSink::file_path(&self.dir, kind);
        let slot = &mut self.open[kind_index(kind)];
        if slot.is_none() {
            *slot = Some(OpenFile::open(&path)?);
        }
        let open = slot.as_mut().expect("opened above");
        let start_size = open.size;
        let mut rotated = false;
        let result = (|| {
            let mut chunk_start = 0;
            let mut line_start = 0;
            for &line_end in line_ends {
                let line_len = (line_end - line_start) as u64;
                let pending = (line_start - chunk_start) as u64;
                if open.size + pending > 0 && open.size + pending + line_len > self.max_file_bytes {
                    open.file.write_all(&body[chunk_start..line_start])?;
                    open.size += pending;
                    open.rotate(&path)?;
                    rotated = true;
                    chunk_start = line_start;
                }
                line_start = line_end;
            }
            open.file.write_all(&body[chunk_start..])?;
            open.file.flush()?;
            open.size += (body.len() - chunk_start) as u64;
            Ok(())
        })();
        if let Err(e) = result {
            let broken = slot.take().expect("opened above");
            // Drop the unwritten buffer instead of flushing it, then cut the partial batch.
            let (file, _unwritten) = broken.file.into_parts();
            if !rotated {
                let _ = file.set_len(start_size);
            }
            return Err(e);
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        for open in self.open.iter_mut().flatten() {
            open.file.flush()?;
            open.file.get_ref().sync_data()?;
        }
        Ok(())
    }

    /// After a failure: make sure the directory exists and start from fresh handles.
    fn reopen(&mut self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        // Buffers are empty between batches (each append ends with a flush), so nothing is
        // lost by dropping the handles.
        self.open = Default::default();
        Ok(())
    }
}

impl OpenFile {
    fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            size,
        })
    }

    /// Moves the full file aside as `<table>.<unix_ms>.jsonl` and continues in a new one.
    fn rotate(&mut self, path: &Path) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("events");
        let mut stamp = super::schema::now_ms();
        let target = loop {
            let candidate = path.with_file_name(format!("{stem}.{stamp}.jsonl"));
            if !candidate.exists() {
                break candidate;
            }
            // Two rotations within one millisecond: take the next free name.
            stamp += 1;
        };
        fs::rename(path, &target)?;
        *self = OpenFile::open(path)?;
        Ok(())
    }
}

impl Drop for JsonlFiles {
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::error!(error = %e, "cannot flush JSONL event files");
        }
    }
}
