//! The real dynamic-config source: one etcd key, watched.
//!
//! `watch()` reads the key, publishes it, and watches from the revision after the read. When
//! the watch stream breaks (etcd restarted, network cut, history compacted), a background task
//! reconnects with exponential backoff and resynchronises the same way: read, then watch from
//! the read's revision. The published revision is etcd's `mod_revision` of the key, and it
//! only ever grows: an event or read older than what was published is dropped.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Client, ConnectOptions, EventType, GetResponse, WatchOptions, WatchStream};
use prometheus::{IntCounterVec, register_int_counter_vec};
use serde::Deserialize;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use super::{ConfigDocument, ConfigSource};
use crate::store::StoreError;

const BACKEND: &str = "etcd";
/// First pause before a resync attempt; doubles up to [`EtcdSourceConfig::max_backoff`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

static WATCH_RESYNCS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gatez_config_watch_resyncs_total",
        "Times a config source's watch broke and was re-established, by outcome of the attempt",
        &["backend", "result"]
    )
    .expect("metric gatez_config_watch_resyncs_total registers once")
});

/// How to reach the etcd key holding the configuration document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdSourceConfig {
    /// Client URLs, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// The key holding the YAML document.
    pub key: String,
    /// Bound on establishing a connection. Default 2 s.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Bound on one request (get, put, opening a watch). Default 3 s.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// HTTP/2 keep-alive ping interval, which is what notices a silently dead connection
    /// under an idle watch. Default 10 s (the ping timeout is the same).
    #[serde(default = "default_keep_alive", with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Longest pause between reconnection attempts. Default 5 s.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
    /// User for etcd authentication (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<crate::config::Secret>,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(3)
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(10)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(5)
}

impl EtcdSourceConfig {
    /// A config for `key` on `endpoints` with default timeouts and no authentication.
    pub fn new(endpoints: Vec<String>, key: impl Into<String>) -> Self {
        Self {
            endpoints,
            key: key.into(),
            connect_timeout: default_connect_timeout(),
            request_timeout: default_request_timeout(),
            keep_alive: default_keep_alive(),
            max_backoff: default_max_backoff(),
            username: None,
            password: None,
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.endpoints.is_empty() {
            return Err("endpoints: at least one etcd endpoint is required".to_owned());
        }
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let uri: http::Uri = endpoint
                .parse()
                .map_err(|e| format!("endpoints[{i}]: {endpoint:?} is not a URL: {e}"))?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                // TLS needs an etcd-client feature this build does not enable.
                return Err(format!(
                    "endpoints[{i}]: {endpoint:?} must be an http://host:port URL"
                ));
            }
        }
        if self.key.is_empty() {
            return Err("key: must not be empty".to_owned());
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
            ("keep_alive", self.keep_alive),
            ("max_backoff", self.max_backoff),
        ] {
            if value.is_zero() {
                return Err(format!("{field}: must be greater than zero"));
            }
        }
        if self.max_backoff < INITIAL_BACKOFF {
            return Err(format!(
                "max_backoff: must be at least {}ms",
                INITIAL_BACKOFF.as_millis()
            ));
        }
        match (&self.username, &self.password) {
            (Some(user), Some(_)) if user.is_empty() => {
                Err("username: must not be empty".to_owned())
            }
            (Some(_), None) => Err("password: required when username is set".to_owned()),
            (None, Some(_)) => Err("username: required when password is set".to_owned()),
            _ => Ok(()),
        }
    }

    fn connect_options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_keep_alive(self.keep_alive, self.keep_alive)
            .with_keep_alive_while_idle(true);
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            options = options
                .with_user(user.clone(), password.expose().to_owned())
                .with_auto_token_refresh(true);
        }
        options
    }
}

/// A [`ConfigSource`] backed by one etcd key.
pub struct EtcdSource {
    config: EtcdSourceConfig,
    /// The client for `put`, made on first use and dropped after a failure so the next call
    /// starts from a fresh connection.
    client: Mutex<Option<Client>>,
    /// Ends the watch tasks when the source is dropped.
    shutdown: CancellationToken,
}

impl std::fmt::Debug for EtcdSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSource")
            .field("endpoints", &self.config.endpoints)
            .field("key", &self.config.key)
            .finish_non_exhaustive()
    }
}

impl EtcdSource {
    /// A source from a config; connects lazily, so this cannot fail on a down etcd.
    pub fn new(config: EtcdSourceConfig) -> Result<Self, StoreError> {
        config.validate().map_err(StoreError::Invalid)?;
        Ok(Self {
            config,
            client: Mutex::new(None),
            shutdown: CancellationToken::new(),
        })
    }

    pub fn config(&self) -> &EtcdSourceConfig {
        &self.config
    }

    async fn put_client(&self) -> Result<Client, StoreError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = connect(&self.config).await?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

impl Drop for EtcdSource {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[async_trait]
impl ConfigSource for EtcdSource {
    async fn watch(&self) -> Result<watch::Receiver<Option<ConfigDocument>>, StoreError> {
        let mut client = connect(&self.config).await?;
        let response = get(&mut client, &self.config).await?;
        let mut state = Published::default();
        let (_, next_revision) = state.apply_get(&self.config.key, response);
        let (tx, rx) = watch::channel(state.current.clone());
        let task = WatchTask {
            config: self.config.clone(),
            state,
        };
        tokio::spawn(task.run(client, next_revision, tx, self.shutdown.clone()));
        Ok(rx)
    }

    async fn put(&self, text: &str) -> Result<(), StoreError> {
        let mut client = self.put_client().await?;
        let result = with_timeout(
            self.config.request_timeout,
            client.put(self.config.key.as_bytes(), text.as_bytes(), None),
        )
        .await;
        if result.is_err() {
            *self.client.lock().await = None;
        }
        result.map(drop)
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}

/// What was published, and the etcd revision it reflects.
#[derive(Default)]
struct Published {
    current: Option<ConfigDocument>,
    /// Highest etcd revision reflected in `current` (the put's mod revision, or the revision
    /// at which the key was seen deleted). Anything at or below it is old news.
    revision: i64,
}

/// What `Published` should do with a change.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    Published,
    Stale,
    Unchanged,
}

impl Published {
    /// Takes a read of the key; returns what changed and the revision to watch from.
    fn apply_get(&mut self, key: &str, mut response: GetResponse) -> (Change, i64) {
        let read_at = response.header().map_or(0, |h| h.revision());
        let change = match response.take_kvs().into_iter().next() {
            Some(kv) => self.apply_put(key, kv.mod_revision(), kv.value()),
            None => self.apply_delete(key, read_at),
        };
        (change, read_at.max(self.revision) + 1)
    }

    fn apply_put(&mut self, key: &str, revision: i64, value: &[u8]) -> Change {
        if revision <= self.revision {
            return if revision == self.revision {
                Change::Unchanged
            } else {
                tracing::warn!(
                    key,
                    revision,
                    published = self.revision,
                    "etcd returned an older revision of the config than already published; ignored"
                );
                Change::Stale
            };
        }
        self.revision = revision;
        match std::str::from_utf8(value) {
            Ok(text) => {
                self.current = Some(ConfigDocument {
                    revision: u64::try_from(revision).unwrap_or(0),
                    text: text.into(),
                });
                Change::Published
            }
            Err(e) => {
                tracing::error!(
                    key,
                    revision,
                    error = %e,
                    "config revision in etcd is not valid UTF-8; ignored"
                );
                Change::Unchanged
            }
        }
    }

    fn apply_delete(&mut self, key: &str, revision: i64) -> Change {
        if revision <= self.revision {
            return Change::Unchanged;
        }
        self.revision = revision;
        if self.current.take().is_some() {
            tracing::warn!(
                key,
                revision,
                "config key deleted from etcd; the last good configuration stays in force"
            );
            Change::Published
        } else {
            Change::Unchanged
        }
    }
}

struct WatchTask {
    config: EtcdSourceConfig,
    state: Published,
}

/// Why a watch ended.
enum WatchEnd {
    /// The stream failed or closed: reconnect.
    Broken(String),
    /// The history we asked for is compacted away: read afresh.
    Compacted(i64),
}

impl WatchTask {
    async fn run(
        mut self,
        client: Client,
        from_revision: i64,
        tx: watch::Sender<Option<ConfigDocument>>,
        shutdown: CancellationToken,
    ) {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tx.closed() => {}
            _ = self.follow(client, from_revision, &tx) => {}
        }
    }

    /// Watches, and re-establishes the watch whenever it ends. Never returns.
    async fn follow(
        &mut self,
        mut client: Client,
        mut from_revision: i64,
        tx: &watch::Sender<Option<ConfigDocument>>,
    ) {
        let key = self.config.key.clone();
        loop {
            let end = self.watch_once(&mut client, from_revision, tx).await;
            match &end {
                WatchEnd::Broken(reason) => {
                    tracing::warn!(key, error = %reason, "etcd config watch broke; reconnecting");
                }
                WatchEnd::Compacted(at) => {
                    tracing::warn!(
                        key,
                        compacted = at,
                        "etcd config watch fell behind compaction; re-reading"
                    );
                }
            }
            (client, from_revision) = self.resync(tx).await;
        }
    }

    /// Reconnects and re-reads the key until both work, with exponential backoff; publishes
    /// the read if it is newer. Returns the client and the revision to watch from.
    async fn resync(&mut self, tx: &watch::Sender<Option<ConfigDocument>>) -> (Client, i64) {
        let key = self.config.key.clone();
        let mut backoff = INITIAL_BACKOFF;
        let mut attempts: u32 = 0;
        loop {
            tokio::time::sleep(backoff).await;
            attempts += 1;
            let read = async {
                let mut client = connect(&self.config).await?;
                let response = get(&mut client, &self.config).await?;
                Ok::<_, StoreError>((client, response))
            };
            match read.await {
                Ok((client, response)) => {
                    WATCH_RESYNCS.with_label_values(&[BACKEND, "ok"]).inc();
                    let (change, from_revision) = self.state.apply_get(&key, response);
                    if change == Change::Published {
                        tx.send_replace(self.state.current.clone());
                    }
                    tracing::info!(
                        key,
                        attempts,
                        revision = self.state.revision,
                        "etcd config watch resumed"
                    );
                    return (client, from_revision);
                }
                Err(e) => {
                    WATCH_RESYNCS.with_label_values(&[BACKEND, "error"]).inc();
                    tracing::debug!(key, attempts, error = %e, "etcd still unreachable");
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// Follows one watch stream until it ends.
    async fn watch_once(
        &mut self,
        client: &mut Client,
        from_revision: i64,
        tx: &watch::Sender<Option<ConfigDocument>>,
    ) -> WatchEnd {
        let options = WatchOptions::new().with_start_revision(from_revision);
        let opened = with_timeout(
            self.config.request_timeout,
            client.watch(self.config.key.as_bytes(), Some(options)),
        )
        .await;
        let mut stream: WatchStream = match opened {
            Ok(stream) => stream,
            Err(e) => return WatchEnd::Broken(e.to_string()),
        };
        loop {
            let response = match stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) => return WatchEnd::Broken("the watch stream closed".to_owned()),
                Err(e) => return WatchEnd::Broken(e.to_string()),
            };
            if response.compact_revision() > 0 {
                return WatchEnd::Compacted(response.compact_revision());
            }
            if response.canceled() {
                return WatchEnd::Broken(format!(
                    "etcd cancelled the watch: {}",
                    response.cancel_reason()
                ));
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let change = match event.event_type() {
                    EventType::Put => {
                        self.state
                            .apply_put(&self.config.key, kv.mod_revision(), kv.value())
                    }
                    EventType::Delete => {
                        self.state.apply_delete(&self.config.key, kv.mod_revision())
                    }
                };
                if change == Change::Published {
                    tx.send_replace(self.state.current.clone());
                }
            }
        }
    }
}

async fn connect(config: &EtcdSourceConfig) -> Result<Client, StoreError> {
    // With authentication, connecting makes a request; without, it only sets up the channel.
    with_timeout(
        config.connect_timeout + config.request_timeout,
        Client::connect(&config.endpoints, Some(config.connect_options())),
    )
    .await
}

async fn get(client: &mut Client, config: &EtcdSourceConfig) -> Result<GetResponse, StoreError> {
    with_timeout(
        config.request_timeout,
        client.get(config.key.as_bytes(), None),
    )
    .await
}

/// Runs an etcd call with a deadline. etcd-client's balanced channel waits for a ready
/// endpoint, so without this a call made while etcd is down would hang.
async fn with_timeout<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(store_error),
        Err(_) => Err(StoreError::timeout(BACKEND, timeout)),
    }
}

fn store_error(e: etcd_client::Error) -> StoreError {
    match e {
        etcd_client::Error::InvalidArgs(_) | etcd_client::Error::InvalidUri(_) => {
            StoreError::Invalid(format!("etcd: {e}"))
        }
        e => StoreError::unavailable(BACKEND, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Result<EtcdSourceConfig, String> {
        let config: EtcdSourceConfig = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn config_defaults() {
        let c = config("endpoints: [\"http://127.0.0.1:2379\"]\nkey: gatez/config/edge").unwrap();
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.request_timeout, Duration::from_secs(3));
        assert_eq!(c.max_backoff, Duration::from_secs(5));
        assert!(c.username.is_none() && c.password.is_none());
    }

    #[test]
    fn config_rejects_bad_values() {
        let err = config("endpoints: []\nkey: k").unwrap_err();
        assert!(err.starts_with("endpoints"), "{err}");
        let err = config("endpoints: [\"127.0.0.1:2379\"]\nkey: k").unwrap_err();
        assert!(err.starts_with("endpoints[0]"), "{err}");
        let err = config("endpoints: [\"http://h:1\"]\nkey: \"\"").unwrap_err();
        assert!(err.starts_with("key"), "{err}");
        let err = config("endpoints: [\"http://h:1\"]\nkey: k\nusername: u").unwrap_err();
        assert!(err.starts_with("password"), "{err}");
        let err = config("endpoints: [\"http://h:1\"]\nkey: k\nrequest_timeout: 0s").unwrap_err();
        assert!(err.starts_with("request_timeout"), "{err}");
        assert!(config("endpoints: [\"http://h:1\"]\nkey: k\nextra: 1").is_err());
    }

    #[test]
    fn password_is_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pw");
        std::fs::write(&secret, "hunter2-secret").unwrap();
        let c = config(&format!(
            "endpoints: [\"http://h:1\"]\nkey: k\nusername: u\npassword: {{ file: {} }}",
            secret.display()
        ))
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(
            config("endpoints: [\"http://h:1\"]\nkey: k\nusername: u\npassword: hunter2").is_err(),
            "a literal password is refused"
        );
    }

    #[test]
    fn published_revision_never_goes_back() {
        let mut state = Published::default();
        assert_eq!(state.apply_put("k", 5, b"a"), Change::Published);
        assert_eq!(state.apply_put("k", 5, b"a"), Change::Unchanged);
        assert_eq!(state.apply_put("k", 3, b"old"), Change::Stale);
        assert_eq!(state.current.as_ref().unwrap().revision, 5);
        assert_eq!(&*state.current.as_ref().unwrap().text, "a");
        assert_eq!(state.apply_delete("k", 4), Change::Unchanged);
        assert_eq!(state.apply_delete("k", 6), Change::Published);
        assert!(state.current.is_none());
        assert_eq!(state.apply_put("k", 6, b"b"), Change::Unchanged);
        assert_eq!(state.apply_put("k", 7, b"b"), Change::Published);
        // Invalid UTF-8 is skipped but still counts as seen.
        assert_eq!(state.apply_put("k", 8, &[0xff, 0xfe]), Change::Unchanged);
        assert_eq!(state.current.as_ref().unwrap().revision, 7);
        assert_eq!(state.revision, 8);
    }
}
