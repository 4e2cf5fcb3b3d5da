//! Hot reload: turns a [`ConfigSource`]'s revisions into a validated, typed config that request
//! handlers read without locking.
//!
//! Each revision is parsed and validated by the caller's function. A valid one replaces the
//! current config atomically; an invalid one is refused with one error line and the previous
//! config keeps serving, so a typo pushed to etcd never takes the gateway down. A config that
//! is missing or invalid at start-up, though, stops the start: there is nothing safe to serve.

use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use prometheus::{IntCounterVec, IntGaugeVec, register_int_counter_vec, register_int_gauge_vec};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ConfigDocument, ConfigSource};
use crate::store::StoreError;

static RELOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gatez_config_reloads_total",
        "Configuration revisions taken (applied) or refused as invalid (rejected)",
        &["config", "result"]
    )
    .expect("metric gatez_config_reloads_total registers once")
});

static REVISION: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "gatez_config_revision",
        "Revision of the configuration currently in force",
        &["config"]
    )
    .expect("metric gatez_config_revision registers once")
});

/// The name used by [`DynamicConfig::start`] for the `config` metric label.
pub const DEFAULT_CONFIG_NAME: &str = "gateway";

/// Parses and validates one revision's text. The error should name the offending field's path
/// (see [`parse_yaml`]).
pub trait ParseConfig<T>: Fn(&str) -> Result<T, String> + Send + Sync + 'static {}
impl<T, F: Fn(&str) -> Result<T, String> + Send + Sync + 'static> ParseConfig<T> for F {}

/// A config in force, with the source revision it came from.
#[derive(Debug)]
pub struct Applied<T> {
    pub revision: u64,
    pub config: Arc<T>,
}

impl<T> Clone for Applied<T> {
    fn clone(&self) -> Self {
        Self {
            revision: self.revision,
            config: self.config.clone(),
        }
    }
}

/// Why the configuration could not be loaded at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigLoadError {
    #[error("cannot read the configuration from {backend}: {source}")]
    Source {
        backend: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("no configuration document in {backend}")]
    Missing { backend: &'static str },
    #[error("configuration revision {revision} from {backend} is invalid: {message}")]
    Invalid {
        backend: &'static str,
        revision: u64,
        message: String,
    },
}

/// A typed configuration kept up to date from a [`ConfigSource`].
///
/// Share it behind an `Arc`; dropping it stops following the source.
pub struct DynamicConfig<T> {
    current: Arc<ArcSwap<T>>,
    applied: watch::Receiver<Applied<T>>,
    task: JoinHandle<()>,
    /// Kept alive: the source's watch ends when the source is dropped.
    _source: Arc<dyn ConfigSource>,
}

impl<T: Send + Sync + 'static> DynamicConfig<T> {
    /// Loads the first revision from `source` and follows it. Fails if the source cannot be
    /// read, has no document, or the document does not `parse`.
    pub async fn start(
        source: Arc<dyn ConfigSource>,
        parse: impl ParseConfig<T>,
    ) -> Result<Self, ConfigLoadError> {
        Self::start_named(DEFAULT_CONFIG_NAME, source, parse).await
    }

    /// Like [`start`](Self::start), with `name` as the `config` label of the reload metrics, for
    /// processes that follow several documents.
    pub async fn start_named(
        name: &'static str,
        source: Arc<dyn ConfigSource>,
        parse: impl ParseConfig<T>,
    ) -> Result<Self, ConfigLoadError> {
        let backend = source.backend();
        let mut documents = source
            .watch()
            .await
            .map_err(|source| ConfigLoadError::Source { backend, source })?;
        let first = documents
            .borrow_and_update()
            .clone()
            .ok_or(ConfigLoadError::Missing { backend })?;
        let reloader = Reloader {
            name,
            backend,
            parse,
        };
        let config = reloader
            .parse(&first)
            .map_err(|message| ConfigLoadError::Invalid {
                backend,
                revision: first.revision,
                message,
            })?;
        tracing::info!(
            config = name,
            backend,
            revision = first.revision,
            "configuration loaded"
        );
        let config = Arc::new(config);
        let current = Arc::new(ArcSwap::new(config.clone()));
        let (applied_tx, applied) = watch::channel(Applied {
            revision: first.revision,
            config,
        });
        let task = tokio::spawn(reloader.follow(documents, current.clone(), applied_tx));
        Ok(Self {
            current,
            applied,
            task,
            _source: source,
        })
    }

    /// The config in force. Lock-free; meant for every request.
    pub fn current(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// The source revision of the config in force.
    pub fn revision(&self) -> u64 {
        self.applied.borrow().revision
    }

    /// Every config applied from now on (the receiver starts marked as seen).
    pub fn subscribe(&self) -> watch::Receiver<Applied<T>> {
        let mut rx = self.applied.clone();
        rx.mark_unchanged();
        rx
    }
}

impl<T> Drop for DynamicConfig<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T> std::fmt::Debug for DynamicConfig<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicConfig")
            .field("backend", &self._source.backend())
            .field("revision", &self.applied.borrow().revision)
            .finish_non_exhaustive()
    }
}

struct Reloader<F> {
    name: &'static str,
    backend: &'static str,
    parse: F,
}

impl<F> Reloader<F> {
    /// Parses one revision and counts the outcome.
    fn parse<T>(&self, document: &ConfigDocument) -> Result<T, String>
    where
        F: ParseConfig<T>,
    {
        let result = (self.parse)(&document.text);
        let outcome = if result.is_ok() {
            "applied"
        } else {
            "rejected"
        };
        RELOADS.with_label_values(&[self.name, outcome]).inc();
        if result.is_ok() {
            REVISION
                .with_label_values(&[self.name])
                .set(i64::try_from(document.revision).unwrap_or(i64::MAX));
        }
        result
    }

    async fn follow<T>(
        self,
        mut documents: watch::Receiver<Option<ConfigDocument>>,
        current: Arc<ArcSwap<T>>,
        applied: watch::Sender<Applied<T>>,
    ) where
        F: ParseConfig<T>,
    {
        let mut last_seen = applied.borrow().revision;
        while documents.changed().await.is_ok() {
            let Some(document) = documents.borrow_and_update().clone() else {
                tracing::warn!(
                    config = self.name,
                    backend = self.backend,
                    revision = applied.borrow().revision,
                    "configuration document disappeared; keeping the one in force"
                );
                continue;
            };
            if document.revision <= last_seen {
                continue;
            }
            last_seen = document.revision;
            let in_force = applied.borrow().revision;
            match self.parse(&document) {
                Ok(config) => {
                    let config = Arc::new(config);
                    current.store(config.clone());
                    applied.send_replace(Applied {
                        revision: document.revision,
                        config,
                    });
                    tracing::info!(
                        config = self.name,
                        backend = self.backend,
                        revision = document.revision,
                        previous = in_force,
                        "configuration reloaded"
                    );
                }
                Err(error) => {
                    tracing::error!(
                        config = self.name,
                        backend = self.backend,
                        revision = document.revision,
                        in_force,
                        %error,
                        "configuration revision rejected; the revision in force stays"
                    );
                }
            }
        }
        tracing::warn!(
            config = self.name,
            backend = self.backend,
            "configuration source stopped; the configuration in force will no longer change"
        );
    }
}

/// Parses YAML into `T`; errors name the path of the offending field, e.g.
/// ``routes[2].upstream: invalid type: integer `3`, expected a string at line 9 column 15``
/// (the YAML deserializer tracks the path itself).
pub fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[allow(dead_code)]
        routes: Vec<Route>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Route {
        #[allow(dead_code)]
        upstream: String,
    }

    #[test]
    fn yaml_errors_name_the_field_path() {
        let err = parse_yaml::<Doc>("routes:\n  - upstream: a\n  - upstream: [1]\n").unwrap_err();
        assert!(err.starts_with("routes[1].upstream: "), "{err}");
        let err = parse_yaml::<Doc>("routes:\n  - upstream: a\n    extra: 1\n").unwrap_err();
        assert!(err.starts_with("routes[0]: unknown field `extra`"), "{err}");
        let err = parse_yaml::<Doc>("routes:\n  - {}\n").unwrap_err();
        assert!(
            err.starts_with("routes[0]: missing field `upstream`"),
            "{err}"
        );
        let err = parse_yaml::<Doc>(": : :").unwrap_err();
        assert!(!err.is_empty());
        assert_eq!(parse_yaml::<Doc>("routes: []").unwrap().routes.len(), 0);
    }
}
