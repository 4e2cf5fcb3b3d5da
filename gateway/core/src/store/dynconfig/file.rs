//! The embedded dynamic-config source: a YAML file on local disk, watched for changes.
//!
//! The watch is on the file's *parent directory*, not on the file: editors and `mv` replace a
//! file by renaming a new one over it, and a watch on the old inode would never see the new
//! content. Bursts of events (an editor writes, truncates, renames) are debounced, and a slow
//! poll compares the content as a fallback for filesystems without inotify (network mounts,
//! some container overlays) or when the kernel's watch limit is exhausted.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{ConfigDocument, ConfigSource};
use crate::store::StoreError;

const BACKEND: &str = "file";

/// Where the file source reads its document, and how it notices changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// The YAML document.
    pub path: PathBuf,
    /// Quiet time after the last filesystem event before the file is re-read, so an editor's
    /// write-truncate-rename burst yields one reload. Default 100 ms.
    #[serde(default = "default_debounce", with = "humantime_serde")]
    pub debounce: Duration,
    /// How often the file is re-read regardless of events (the fallback when filesystem events
    /// are unavailable). Default 2 s.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
}

fn default_debounce() -> Duration {
    Duration::from_millis(100)
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(2)
}

impl FileSourceConfig {
    /// A config for `path` with the default debounce and poll interval.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            debounce: default_debounce(),
            poll_interval: default_poll_interval(),
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.path.file_name().is_none() {
            return Err(format!(
                "path: {:?} does not name a file",
                self.path.display()
            ));
        }
        if self.debounce > Duration::from_secs(10) {
            return Err("debounce: must be at most 10s".to_owned());
        }
        if self.poll_interval < Duration::from_millis(50) {
            return Err("poll_interval: must be at least 50ms".to_owned());
        }
        Ok(())
    }
}

/// A [`ConfigSource`] backed by a file. Revisions are a counter starting at 1 that grows by
/// one each time the file's text changes.
#[derive(Debug)]
pub struct FileSource {
    config: FileSourceConfig,
    /// Ends the watch tasks when the source is dropped.
    shutdown: CancellationToken,
}

impl FileSource {
    /// A source for `path` with the default debounce and poll interval.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::from_config(FileSourceConfig::new(path))
    }

    /// A source from a (validated) config.
    pub fn from_config(config: FileSourceConfig) -> Self {
        Self {
            config,
            shutdown: CancellationToken::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.config.path
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[async_trait]
impl ConfigSource for FileSource {
    async fn watch(&self) -> Result<watch::Receiver<Option<ConfigDocument>>, StoreError> {
        let path = self.config.path.clone();
        let file_name = path
            .file_name()
            .ok_or_else(|| StoreError::Invalid(format!("{} does not name a file", path.display())))?
            .to_owned();
        // The watcher is set up before the first read, so a change made in between is seen.
        let (signal_tx, signal_rx) = mpsc::channel(1);
        let mut events = EventWatch {
            dir: parent_dir(&path).to_owned(),
            file_name,
            signal: signal_tx,
            watcher: None,
            warned: false,
        };
        events.ensure_watching();

        let text = read_document(&path)
            .await
            .map_err(|problem| problem.into_store_error(&path))?;
        let mut state = Published {
            text: None,
            revision: 0,
        };
        let initial = text.map(|text| state.next(text));
        let (tx, rx) = watch::channel(initial);

        let task = WatchTask {
            path,
            debounce: self.config.debounce,
            poll_interval: self.config.poll_interval,
            events,
            signals: signal_rx,
            state,
            last_problem: None,
        };
        tokio::spawn(task.run(tx, self.shutdown.clone()));
        Ok(rx)
    }

    async fn put(&self, text: &str) -> Result<(), StoreError> {
        let path = self.config.path.clone();
        let bytes = text.as_bytes().to_vec();
        tokio::task::spawn_blocking(move || {
            write_atomically(&path, &bytes).map_err(|e| {
                StoreError::unavailable(BACKEND, format!("cannot write {}: {e}", path.display()))
            })
        })
        .await
        .map_err(|e| StoreError::unavailable(BACKEND, format!("write task failed: {e}")))?
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}

/// What the source has published so far.
struct Published {
    text: Option<Arc<str>>,
    revision: u64,
}

impl Published {
    fn next(&mut self, text: Arc<str>) -> ConfigDocument {
        self.revision += 1;
        self.text = Some(text.clone());
        ConfigDocument {
            revision: self.revision,
            text,
        }
    }
}

/// The filesystem watch on the parent directory, which forwards "something happened to our
/// file" as a unit signal; the task re-reads the file, so the event details do not matter.
struct EventWatch {
    dir: PathBuf,
    file_name: std::ffi::OsString,
    signal: mpsc::Sender<()>,
    watcher: Option<RecommendedWatcher>,
    /// Whether the "falling back to polling" warning was logged, so a host without inotify
    /// does not get one line per poll.
    warned: bool,
}

impl EventWatch {
    /// Starts the watch if it is not running. Retried on every poll tick, so a directory that
    /// appears later (or a freed inotify slot) is picked up.
    fn ensure_watching(&mut self) {
        if self.watcher.is_some() {
            return;
        }
        let signal = self.signal.clone();
        let file_name = self.file_name.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            let relevant = match &event {
                Ok(event) => {
                    is_content_change(event.kind)
                        && (event.need_rescan()
                            || event.paths.is_empty()
                            || event
                                .paths
                                .iter()
                                .any(|p| p.file_name() == Some(file_name.as_os_str())))
                }
                // An error may mean lost events; a re-read costs little.
                Err(_) => true,
            };
            if relevant {
                // Full means a signal is already pending, which is all we need.
                let _ = signal.try_send(());
            }
        };
        let started = notify::recommended_watcher(handler).and_then(|mut watcher| {
            watcher.watch(&self.dir, RecursiveMode::NonRecursive)?;
            Ok(watcher)
        });
        match started {
            Ok(watcher) => {
                if self.warned {
                    tracing::info!(dir = %self.dir.display(), "config directory watch started");
                }
                self.watcher = Some(watcher);
                self.warned = false;
            }
            Err(e) if !self.warned => {
                tracing::warn!(
                    dir = %self.dir.display(),
                    error = %e,
                    "cannot watch the config directory; relying on polling"
                );
                self.warned = true;
            }
            Err(_) => {}
        }
    }
}

/// Whether an event kind can mean new content. Opening or reading the file (our own reads
/// included) must not trigger a re-read, or each read would cause the next.
fn is_content_change(kind: EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

struct WatchTask {
    path: PathBuf,
    debounce: Duration,
    poll_interval: Duration,
    events: EventWatch,
    signals: mpsc::Receiver<()>,
    state: Published,
    /// The last read failure logged, so a persistent one is logged once.
    last_problem: Option<String>,
}

impl WatchTask {
    async fn run(mut self, tx: watch::Sender<Option<ConfigDocument>>, shutdown: CancellationToken) {
        let mut poll =
            tokio::time::interval_at(Instant::now() + self.poll_interval, self.poll_interval);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tx.closed() => break,
                Some(()) = self.signals.recv() => self.settle().await,
                _ = poll.tick() => self.events.ensure_watching(),
            }
            self.refresh(&tx).await;
        }
    }

    /// Waits until no event has arrived for `debounce` (bounded, so a file rewritten
    /// continuously is still read now and then).
    async fn settle(&mut self) {
        let deadline = Instant::now() + self.debounce * 10;
        loop {
            let quiet_until = (Instant::now() + self.debounce).min(deadline);
            match tokio::time::timeout_at(quiet_until, self.signals.recv()).await {
                Ok(Some(())) if Instant::now() < deadline => continue,
                _ => return,
            }
        }
    }

    /// Re-reads the file and publishes it if its text changed.
    async fn refresh(&mut self, tx: &watch::Sender<Option<ConfigDocument>>) {
        match read_document(&self.path).await {
            Ok(text) => {
                if self.last_problem.take().is_some() {
                    tracing::info!(path = %self.path.display(), "config file readable again");
                }
                if text.as_deref() == self.state.text.as_deref() {
                    return;
                }
                match text {
                    Some(text) => {
                        let document = self.state.next(text);
                        tracing::debug!(
                            path = %self.path.display(),
                            revision = document.revision,
                            "config file changed"
                        );
                        tx.send_replace(Some(document));
                    }
                    None => {
                        tracing::warn!(
                            path = %self.path.display(),
                            "config file removed; the last good configuration stays in force"
                        );
                        self.state.text = None;
                        tx.send_replace(None);
                    }
                }
            }
            Err(problem) => {
                let message = problem.to_string();
                if self.last_problem.as_deref() != Some(message.as_str()) {
                    tracing::warn!(
                        path = %self.path.display(),
                        error = %message,
                        "cannot read the config file; keeping the last version"
                    );
                    self.last_problem = Some(message);
                }
            }
        }
    }
}

/// Why the file's content could not be taken.
#[derive(Debug, thiserror::Error)]
enum ReadProblem {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the file is not valid UTF-8: {0}")]
    NotUtf8(#[from] std::string::FromUtf8Error),
}

impl ReadProblem {
    fn into_store_error(self, path: &Path) -> StoreError {
        match self {
            ReadProblem::Io(e) => {
                StoreError::unavailable(BACKEND, format!("cannot read {}: {e}", path.display()))
            }
            ReadProblem::NotUtf8(e) => StoreError::Corrupt {
                backend: BACKEND,
                message: format!("{} is not valid UTF-8: {e}", path.display()),
            },
        }
    }
}

/// The file's text, or `None` when it does not exist.
async fn read_document(path: &Path) -> Result<Option<Arc<str>>, ReadProblem> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(Arc::from(String::from_utf8(bytes)?))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Replaces `path` so that readers see either the old or the new content, never a partial
/// file, and the new content survives a crash once this returns: write a temporary file in
/// the same directory (rename is only atomic within one filesystem), fsync it, rename it over
/// the target, fsync the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = parent_dir(path);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    // A dot name that differs from the target's, so the watcher ignores it.
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        // Keep the target's permissions (an operator may have restricted them).
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for fsync here; the rename is still atomic.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_validation() {
        let config: FileSourceConfig =
            serde_yaml_ng::from_str("path: /etc/gatez/dynamic.yaml").unwrap();
        assert_eq!(config.debounce, Duration::from_millis(100));
        assert_eq!(config.poll_interval, Duration::from_secs(2));
        config.validate().unwrap();

        let config: FileSourceConfig =
            serde_yaml_ng::from_str("path: /x.yaml\npoll_interval: 10ms").unwrap();
        assert!(config.validate().unwrap_err().starts_with("poll_interval"));
        assert!(FileSourceConfig::new("/").validate().is_err());
        assert!(serde_yaml_ng::from_str::<FileSourceConfig>("path: /x\nbogus: 1").is_err());
    }

    #[test]
    fn own_reads_are_not_changes() {
        assert!(!is_content_change(EventKind::Access(AccessKind::Open(
            notify::event::AccessMode::Any
        ))));
        assert!(is_content_change(EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_content_change(EventKind::Create(
            notify::event::CreateKind::File
        )));
    }

    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        write_atomically(&path, b"a: 1\n").unwrap();
        write_atomically(&path, b"a: 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a: 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("c.yaml")]);
    }
}
