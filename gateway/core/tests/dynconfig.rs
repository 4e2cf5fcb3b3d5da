//! Dynamic configuration: the contract suite against the file source and a real etcd, then
//! what only one of them has (files replaced, deleted, edited in place; etcd killed and
//! restarted).

#[path = "dynconfig/observe.rs"]
mod observe;
#[path = "dynconfig/suite.rs"]
mod suite;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gatez_conformance::Etcd;
use gatez_core::store::StoreError;
use gatez_core::store::dynconfig::ConfigSource;
use gatez_core::store::dynconfig::etcd::{EtcdSource, EtcdSourceConfig};
use gatez_core::store::dynconfig::file::{FileSource, FileSourceConfig};
use gatez_core::store::dynconfig::reload::ConfigLoadError;
use suite::{Backend, DEADLINE, eventually, valid, within};
use tempfile::TempDir;

/// A document in a temporary directory.
struct FileBackend {
    _dir: TempDir,
    path: PathBuf,
}

impl FileBackend {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatez.yaml");
        Self { _dir: dir, path }
    }

    /// Polling is slowed to an hour, so every change these tests see within their deadline
    /// came through filesystem events (polling has a test of its own).
    fn config(&self) -> FileSourceConfig {
        let mut config = FileSourceConfig::new(&self.path);
        config.poll_interval = Duration::from_secs(3600);
        config.validate().unwrap();
        config
    }
}

#[async_trait]
impl Backend for FileBackend {
    fn source(&self) -> Arc<dyn ConfigSource> {
        Arc::new(FileSource::from_config(self.config()))
    }
}

/// A key in a real etcd of its own.
struct EtcdBackend {
    etcd: Etcd,
    key: String,
}

impl EtcdBackend {
    async fn start() -> Self {
        Self {
            etcd: Etcd::start().await,
            key: "gatez/config/test".to_owned(),
        }
    }

    fn config(&self) -> EtcdSourceConfig {
        let mut config = EtcdSourceConfig::new(vec![self.etcd.url()], &self.key);
        config.connect_timeout = Duration::from_millis(500);
        config.request_timeout = Duration::from_secs(1);
        config.max_backoff = Duration::from_millis(500);
        config.validate().unwrap();
        config
    }

    fn etcd_source(&self) -> EtcdSource {
        EtcdSource::new(self.config()).unwrap()
    }

    async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.etcd.url()], None)
            .await
            .unwrap()
    }
}

#[async_trait]
impl Backend for EtcdBackend {
    fn source(&self) -> Arc<dyn ConfigSource> {
        Arc::new(self.etcd_source())
    }
}

macro_rules! contract {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            contract!(@tests $make;
                missing_document_fails_start,
                invalid_first_document_fails_start,
                loads_then_applies_updates,
                invalid_update_is_rejected_and_old_kept,
                independent_sources_converge,
            );
        }
    };
    (@tests $make:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                observe::install();
                let backend = $make;
                suite::$test(&backend).await;
            }
        )*
    };
}

contract!(file, FileBackend::new());
contract!(etcd, EtcdBackend::start().await);

mod file_only {
    use super::*;

    async fn started(backend: &FileBackend, test: &str) -> suite::Started {
        backend.write(&valid(1)).await;
        suite::Started::new(backend, suite::name("file", test)).await
    }

    #[tokio::test]
    async fn file_replaced_by_rename_is_applied() {
        observe::install();
        let backend = FileBackend::new();
        let s = started(&backend, "rename").await;
        // What `mv` and most editors do: a new inode takes the old name.
        let tmp = backend.path.with_extension("new");
        std::fs::write(&tmp, valid(2)).unwrap();
        std::fs::rename(&tmp, &backend.path).unwrap();
        eventually("the renamed-in file is applied", || {
            s.config.current().version == 2
        })
        .await;
        // And the watch still works on the new inode.
        std::fs::write(&tmp, valid(3)).unwrap();
        std::fs::rename(&tmp, &backend.path).unwrap();
        eventually("a second rename is applied", || {
            s.config.current().version == 3
        })
        .await;
        s.assert_increasing();
    }

    #[tokio::test]
    async fn file_edited_in_place_is_applied() {
        observe::install();
        let backend = FileBackend::new();
        let s = started(&backend, "in-place").await;
        std::fs::write(&backend.path, valid(2)).unwrap();
        eventually("the edited file is applied", || {
            s.config.current().version == 2
        })
        .await;
        s.assert_increasing();
    }

    #[tokio::test]
    async fn file_deleted_keeps_config_then_recreated_is_applied() {
        observe::install();
        let backend = FileBackend::new();
        let s = started(&backend, "deleted").await;
        std::fs::remove_file(&backend.path).unwrap();
        eventually("the source reports the document gone", || {
            s.documents.snapshot().last() == Some(&None)
        })
        .await;
        assert_eq!(s.config.current().version, 1, "the last good config stays");
        std::fs::write(&backend.path, valid(4)).unwrap();
        eventually("the recreated file is applied", || {
            s.config.current().version == 4
        })
        .await;
        s.assert_increasing();
    }

    /// Rewriting the same text, or text that is not UTF-8, publishes nothing: the next real
    /// change is exactly one revision on.
    #[tokio::test]
    async fn only_real_changes_are_new_revisions() {
        observe::install();
        let backend = FileBackend::new();
        backend.write(&valid(1)).await;
        let source = backend.source();
        let mut rx = source.watch().await.unwrap();
        let first = rx.borrow_and_update().clone().unwrap();
        assert_eq!(&*first.text, valid(1));

        backend.write(&valid(1)).await;
        std::fs::write(&backend.path, valid(1)).unwrap();
        std::fs::write(&backend.path, [0xff, 0xfe, b'\n']).unwrap();
        // Several debounce periods, so the writes above have been read before the next one.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(!rx.has_changed().unwrap(), "{:?}", rx.borrow());

        backend.write(&valid(2)).await;
        within("the real change is published", rx.changed())
            .await
            .unwrap();
        let next = rx.borrow_and_update().clone().unwrap();
        assert_eq!(next.revision, first.revision + 1);
        assert_eq!(&*next.text, valid(2));
    }

    /// Without filesystem events for the file (its directory does not exist yet when the
    /// watch starts), polling still finds it.
    #[tokio::test]
    async fn polling_finds_a_file_whose_directory_appears_later() {
        observe::install();
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("later").join("gatez.yaml");
        let mut config = FileSourceConfig::new(&path);
        config.poll_interval = Duration::from_millis(200);
        let source = FileSource::from_config(config);
        let mut rx = source.watch().await.unwrap();
        assert!(rx.borrow_and_update().is_none());
        std::fs::create_dir(path.parent().unwrap()).unwrap();
        std::fs::write(&path, valid(5)).unwrap();
        within("the file is found", rx.changed()).await.unwrap();
        assert_eq!(&*rx.borrow().as_ref().unwrap().text, valid(5));
        // Once the directory exists, later changes are seen too.
        source.put(&valid(6)).await.unwrap();
        within("the next change is seen", rx.changed())
            .await
            .unwrap();
        assert_eq!(&*rx.borrow().as_ref().unwrap().text, valid(6));
    }

    /// Readers racing `put` see the old or the new document, never a torn one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn put_never_exposes_a_partial_file() {
        let backend = FileBackend::new();
        let big = |c: char| c.to_string().repeat(512 * 1024);
        backend.write(&big('a')).await;
        let path = backend.path.clone();
        let reader = tokio::task::spawn_blocking(move || {
            let mut reads = 0;
            let deadline = Instant::now() + Duration::from_secs(30);
            while reads < 200 && Instant::now() < deadline {
                let text = std::fs::read_to_string(&path).unwrap();
                assert_eq!(text.len(), 512 * 1024, "torn read");
                let first = text.as_bytes()[0];
                assert!(text.bytes().all(|b| b == first), "mixed content");
                reads += 1;
            }
        });
        let source = backend.source();
        for i in 0..20 {
            source
                .put(&big(if i % 2 == 0 { 'b' } else { 'a' }))
                .await
                .unwrap();
        }
        reader.await.unwrap();
    }
}

mod etcd_only {
    use super::*;

    /// `put` until it succeeds: the first call after a restart may still hit the old
    /// connection, and a fresh one is made after that failure.
    async fn put_until_ok(source: &EtcdSource, text: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match source.put(text).await {
                Ok(()) => return,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    assert!(e.is_backend_failure(), "{e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("put still fails after {DEADLINE:?}: {e}"),
            }
        }
    }

    async fn mod_revision(backend: &EtcdBackend) -> u64 {
        let response = backend
            .client()
            .await
            .get(backend.key.as_str(), None)
            .await
            .unwrap();
        u64::try_from(response.kvs()[0].mod_revision()).unwrap()
    }

    #[tokio::test]
    async fn revision_is_the_keys_mod_revision() {
        observe::install();
        let backend = EtcdBackend::start().await;
        backend.write(&valid(1)).await;
        let s = suite::Started::new(&backend, suite::name("etcd", "mod-revision")).await;
        assert_eq!(s.config.revision(), mod_revision(&backend).await);
        // Writes to other keys move etcd's revision, not ours.
        let mut client = backend.client().await;
        for i in 0..3 {
            client.put(format!("other/{i}"), "x", None).await.unwrap();
        }
        backend.write(&valid(2)).await;
        eventually("the update is applied", || s.config.current().version == 2).await;
        assert_eq!(s.config.revision(), mod_revision(&backend).await);
    }

    #[tokio::test]
    async fn watch_resumes_after_etcd_restarts() {
        observe::install();
        let mut backend = EtcdBackend::start().await;
        backend.write(&valid(1)).await;
        let s = suite::Started::new(&backend, suite::name("etcd", "restart")).await;
        let writer = backend.etcd_source();

        backend.etcd.stop().await;
        let started = Instant::now();
        let err = within("put fails while etcd is down", writer.put(&valid(9)))
            .await
            .expect_err("etcd is down");
        assert!(err.is_backend_failure(), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(s.config.current().version, 1, "the config in force stays");

        backend.etcd.restart().await;
        put_until_ok(&writer, &valid(2)).await;
        eventually("a put after the restart is applied", || {
            s.config.current().version == 2
        })
        .await;
        assert_eq!(s.config.revision(), mod_revision(&backend).await);

        // A second outage: the resumed watch is itself resumable.
        backend.etcd.restart().await;
        put_until_ok(&writer, &valid(3)).await;
        eventually("a put after the second restart is applied", || {
            s.config.current().version == 3
        })
        .await;
        s.assert_increasing();
        // The watch really broke and was re-established (rather than, say, never noticing).
        assert!(observe::count_of("etcd config watch resumed") >= 2);
    }

    #[tokio::test]
    async fn deleted_key_keeps_config_then_recreated_is_applied() {
        observe::install();
        let backend = EtcdBackend::start().await;
        backend.write(&valid(1)).await;
        let s = suite::Started::new(&backend, suite::name("etcd", "deleted")).await;
        backend
            .client()
            .await
            .delete(backend.key.as_str(), None)
            .await
            .unwrap();
        eventually("the source reports the key gone", || {
            s.documents.snapshot().last() == Some(&None)
        })
        .await;
        assert_eq!(s.config.current().version, 1);
        backend.write(&valid(2)).await;
        eventually("the recreated key is applied", || {
            s.config.current().version == 2
        })
        .await;
        s.assert_increasing();
    }

    #[tokio::test]
    async fn unreachable_etcd_fails_start_fast() {
        let port = gatez_conformance::free_ports(1)[0];
        let mut config =
            EtcdSourceConfig::new(vec![format!("http://127.0.0.1:{port}")], "gatez/config");
        config.connect_timeout = Duration::from_millis(500);
        config.request_timeout = Duration::from_secs(1);
        let source: Arc<dyn ConfigSource> = Arc::new(EtcdSource::new(config).unwrap());
        let started = Instant::now();
        let result = within(
            "start gives up",
            suite::start_with(source, suite::name("etcd", "unreachable")),
        )
        .await;
        match result {
            Err(ConfigLoadError::Source {
                source: e @ (StoreError::Unavailable { .. } | StoreError::Timeout { .. }),
                ..
            }) => assert!(started.elapsed() < Duration::from_secs(4), "{e}"),
            other => panic!("expected a source failure, got {other:?}"),
        }
    }
}
