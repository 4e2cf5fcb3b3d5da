//! The dynamic-config contract: what every source must do, as async fns over a backend, run
//! through `DynamicConfig` the way a gateway uses it.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gatez_core::store::dynconfig::reload::{Applied, ConfigLoadError, DynamicConfig, parse_yaml};
use gatez_core::store::dynconfig::{ConfigDocument, ConfigSource};
use serde::Deserialize;
use tokio::sync::watch;

use super::observe;

/// How long a change may take to be applied. Generous: the machine may be loaded; a healthy
/// run takes well under a second.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A place config documents live, seen through fresh sources.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A new source on the same document (as a second gateway process would have).
    fn source(&self) -> Arc<dyn ConfigSource>;

    /// Writes the document the way an operator would (the control plane's `put`).
    async fn write(&self, text: &str) {
        self.source().put(text).await.expect("write the document");
    }
}

/// The typed config of these tests: a version and weighted upstreams.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TestConfig {
    pub version: u32,
    pub upstreams: Vec<Upstream>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub name: String,
    pub weight: u32,
}

/// Parse, then validate what types cannot say, naming the field path either way.
pub fn parse(text: &str) -> Result<TestConfig, String> {
    let config: TestConfig = parse_yaml(text)?;
    for (i, upstream) in config.upstreams.iter().enumerate() {
        if upstream.weight == 0 {
            return Err(format!("upstreams[{i}].weight: must be greater than 0"));
        }
    }
    Ok(config)
}

pub fn valid(version: u32) -> String {
    format!("version: {version}\nupstreams:\n  - name: a\n    weight: 1\n")
}

/// Fails to parse: a string where a number belongs.
pub const BAD_TYPE: &str = "version: 90\nupstreams:\n  - name: a\n    weight: heavy\n";
/// Parses but fails validation.
pub const BAD_VALUE: &str = "version: 91\nupstreams:\n  - name: a\n    weight: 0\n";

/// Polls `check` until it holds, failing the test after [`DEADLINE`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits `f`, failing the test if it takes longer than [`DEADLINE`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("not within {DEADLINE:?}: {what}"))
}

/// Test-unique metric/log name (the `config` label), so parallel tests do not mix.
pub fn name(backend: &str, test: &str) -> &'static str {
    Box::leak(format!("{backend}-{test}").into_boxed_str())
}

pub async fn start(
    backend: &dyn Backend,
    name: &'static str,
) -> Result<DynamicConfig<TestConfig>, ConfigLoadError> {
    start_with(backend.source(), name).await
}

pub async fn start_with(
    source: Arc<dyn ConfigSource>,
    name: &'static str,
) -> Result<DynamicConfig<TestConfig>, ConfigLoadError> {
    DynamicConfig::start_named(name, source, parse).await
}

/// A running config, with the history of what it applied and of what a second watch on
/// the same document saw.
pub struct Started {
    pub config: DynamicConfig<TestConfig>,
    pub applied: Revisions,
    pub documents: Revisions,
    _watched: Arc<dyn ConfigSource>,
}

impl Started {
    /// Starts from the document already written.
    pub async fn new(backend: &dyn Backend, name: &'static str) -> Self {
        let config = start(backend, name).await.expect("start");
        let applied = Revisions::of_applied(config.subscribe());
        let watched = backend.source();
        let documents = Revisions::of_documents(watched.watch().await.expect("watch"));
        Self {
            config,
            applied,
            documents,
            _watched: watched,
        }
    }

    pub fn assert_increasing(&self) {
        self.applied.assert_increasing();
        self.documents.assert_increasing();
    }
}

/// Every revision a receiver shows, recorded in the background (a watch channel shows the
/// latest value, so some may be skipped, but the order of those seen is the order sent).
pub struct Revisions(Arc<Mutex<Vec<Option<u64>>>>);

impl Revisions {
    pub fn of_documents(mut rx: watch::Receiver<Option<ConfigDocument>>) -> Self {
        let seen = Arc::new(Mutex::new(vec![
            rx.borrow_and_update().as_ref().map(|d| d.revision),
        ]));
        let sink = seen.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let revision = rx.borrow_and_update().as_ref().map(|d| d.revision);
                sink.lock().unwrap().push(revision);
            }
        });
        Self(seen)
    }

    pub fn of_applied(mut rx: watch::Receiver<Applied<TestConfig>>) -> Self {
        let seen = Arc::new(Mutex::new(vec![Some(rx.borrow_and_update().revision)]));
        let sink = seen.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let revision = rx.borrow_and_update().revision;
                sink.lock().unwrap().push(Some(revision));
            }
        });
        Self(seen)
    }

    pub fn snapshot(&self) -> Vec<Option<u64>> {
        self.0.lock().unwrap().clone()
    }

    /// The revisions of published documents never go back (a `None` — no document — may
    /// come between them).
    pub fn assert_increasing(&self) {
        let seen = self.snapshot();
        let documents: Vec<u64> = seen.iter().flatten().copied().collect();
        assert!(
            documents.windows(2).all(|w| w[0] < w[1]),
            "revisions went back or repeated: {seen:?}"
        );
    }
}

/// No document, no start.
pub async fn missing_document_fails_start(backend: &dyn Backend) {
    match start(backend, name("any", "missing")).await {
        Err(ConfigLoadError::Missing { backend: b }) => assert_eq!(b, backend.source().backend()),
        other => panic!("expected Missing, got {other:?}"),
    }
}

/// An invalid first document stops the start, naming the revision and the field.
pub async fn invalid_first_document_fails_start(backend: &dyn Backend) {
    backend.write(BAD_TYPE).await;
    match start(backend, name("any", "invalid-first")).await {
        Err(ConfigLoadError::Invalid {
            revision, message, ..
        }) => {
            assert!(revision > 0);
            assert!(message.starts_with("upstreams[0].weight: "), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    backend.write(BAD_VALUE).await;
    let err = start(backend, name("any", "invalid-first"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("upstreams[0].weight: must be greater than 0"),
        "{err}"
    );
}

/// The first document is served; a change is applied within the deadline, seen by
/// subscribers, with a higher revision.
pub async fn loads_then_applies_updates(backend: &dyn Backend) {
    backend.write(&valid(1)).await;
    let config = start(backend, name(backend.source().backend(), "updates"))
        .await
        .expect("start");
    assert_eq!(config.current().version, 1);
    let first_revision = config.revision();
    let mut updates = config.subscribe();
    let history = Revisions::of_applied(config.subscribe());

    backend.write(&valid(2)).await;
    within("the subscriber sees the update", updates.changed())
        .await
        .unwrap();
    let applied = updates.borrow_and_update().clone();
    assert_eq!(applied.config.version, 2);
    assert!(applied.revision > first_revision);
    assert_eq!(config.current().version, 2);
    assert_eq!(config.revision(), applied.revision);

    for version in 3..=6 {
        backend.write(&valid(version)).await;
    }
    eventually("the last of several quick updates wins", || {
        config.current().version == 6
    })
    .await;
    history.assert_increasing();
}

/// An invalid revision is refused with one error line naming it and the field, the old
/// config keeps serving, and the next valid revision is applied.
pub async fn invalid_update_is_rejected_and_old_kept(backend: &dyn Backend) {
    let name = name(backend.source().backend(), "rejects");
    backend.write(&valid(1)).await;
    let config = start(backend, name).await.expect("start");
    let in_force = config.revision();
    let source = backend.source();
    let documents = Revisions::of_documents(source.watch().await.unwrap());

    backend.write(BAD_TYPE).await;
    eventually("the invalid revision is counted as rejected", || {
        observe::reloads(name, "rejected") == 1
    })
    .await;
    assert_eq!(config.current().version, 1, "the old config keeps serving");
    let errors = observe::errors_of(name);
    assert_eq!(errors.len(), 1, "exactly one error line: {errors:#?}");
    let line = &errors[0];
    let rejected_revision = line["revision"]
        .as_u64()
        .expect("the line names the revision");
    assert!(rejected_revision > in_force, "{line}");
    assert_eq!(line["in_force"], in_force, "{line}");
    let error = line["error"].as_str().unwrap();
    assert!(error.starts_with("upstreams[0].weight: "), "{line}");

    backend.write(BAD_VALUE).await;
    eventually("the second invalid revision is rejected", || {
        observe::reloads(name, "rejected") == 2
    })
    .await;
    assert_eq!(config.current().version, 1);
    assert_eq!(observe::errors_of(name).len(), 2);

    backend.write(&valid(3)).await;
    eventually("a valid revision after invalid ones is applied", || {
        config.current().version == 3
    })
    .await;
    // The start counts as applied too.
    assert_eq!(observe::reloads(name, "applied"), 2);
    assert_eq!(observe::revision_gauge(name), config.revision());
    assert!(config.revision() > rejected_revision);
    documents.assert_increasing();
}

/// Two followers of one document converge, and `put` is seen by watchers of other sources.
pub async fn independent_sources_converge(backend: &dyn Backend) {
    backend.write(&valid(1)).await;
    let a = start(backend, name(backend.source().backend(), "converge-a"))
        .await
        .unwrap();
    let b = start(backend, name(backend.source().backend(), "converge-b"))
        .await
        .unwrap();
    backend.write(&valid(7)).await;
    eventually("both followers apply the update", || {
        a.current().version == 7 && b.current().version == 7
    })
    .await;
}
