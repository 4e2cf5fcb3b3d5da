//! A cache whose failures never fail a request.
//!
//! The exact cache is an optimisation: when its backend is down, the right answer to `get` is
//! a miss and the right answer to `put`/`delete` is to skip. [`ResilientCache`] wraps any
//! [`ExactCache`] to do exactly that, counting each fallback in
//! `gatez_cache_fallback_total{op,reason}` and logging at most one warning per interval.
//!
//! After a backend failure it stops calling the backend for a cooldown, so that while Redis is
//! down requests do not each pay the connection timeout; once the cooldown is over a single
//! call probes the backend (the others keep falling back) and its success closes the circuit.
//! That is the store-wide [`breaker`], with a fixed `fail_open` policy.
//!
//! A deleted entry may therefore survive an outage (the delete was skipped) until its TTL ends;
//! callers that need invalidation to be certain should use `purge` or short TTLs.

use std::future::Future;
use std::sync::Arc;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use prometheus::{IntCounterVec, register_int_counter_vec};
use serde::Deserialize;

use crate::store::breaker::{self, Attempt, Breaker};
use crate::store::cache::ExactCache;
use crate::store::{FailurePolicy, StoreError};
use crate::tenant::TenantId;

static FALLBACKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gatez_cache_fallback_total",
        "Exact-cache operations answered without the backend (get as a miss, put/delete as a \
         no-op), by operation and reason (unavailable, timeout, corrupt, cooldown)",
        &["op", "reason"]
    )
    .expect("gatez_cache_fallback_total is registered once")
});

/// Configuration of [`ResilientCache`]. Unlike [`ResilienceConfig`](crate::store::ResilienceConfig)
/// it has no failure policy: a failing cache is always a miss.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResilientCacheConfig {
    /// How long to leave the backend alone after it failed. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// At most one warning per this interval while the backend keeps failing (the others are
    /// counted in the next warning). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub warn_interval: Duration,
}

impl Default for ResilientCacheConfig {
    fn default() -> Self {
        Self {
            cooldown: breaker::DEFAULT_COOLDOWN,
            warn_interval: breaker::DEFAULT_WARN_INTERVAL,
        }
    }
}

impl ResilientCacheConfig {
    /// Checks what serde cannot: a positive cooldown, short enough that a recovered backend
    /// is used again soon (see [`breaker::validate_cooldown`]).
    pub fn validate(&self) -> Result<(), String> {
        breaker::validate_cooldown(self.cooldown)
    }
}

/// Wraps an [`ExactCache`] so backend failures become misses and skipped writes.
///
/// Only backend failures are absorbed: [`StoreError::Invalid`] (an oversized value, a zero
/// TTL) is the caller's bug and is returned as is. [`StoreError::Corrupt`] is a miss but does
/// not start a cooldown: the backend answered. `purge` is an operator's request, not part of
/// serving traffic, so its errors are returned too and it ignores the cooldown.
pub struct ResilientCache {
    inner: Arc<dyn ExactCache>,
    breaker: Breaker,
}

impl std::fmt::Debug for ResilientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientCache")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Op {
    Get,
    Put,
    Delete,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Delete => "delete",
        }
    }
}

impl ResilientCache {
    /// Wraps `inner`. The config should have passed [`ResilientCacheConfig::validate`].
    pub fn new(inner: Arc<dyn ExactCache>, config: ResilientCacheConfig) -> Self {
        let breaker = Breaker::new(
            "cache",
            inner.backend(),
            // What a failing cache does, whatever the config: serve without it.
            FailurePolicy::FailOpen,
            config.cooldown,
            config.warn_interval,
        );
        Self { inner, breaker }
    }

    /// Whether the backend is currently being left alone after a failure.
    pub fn is_cooling_down(&self) -> bool {
        self.breaker.is_cooling_down()
    }

    /// Runs `call` through the breaker; when the backend fails, is skipped or answers with
    /// unreadable data, counts the fallback and answers `fallback` instead. Caller errors are
    /// returned.
    async fn guarded<T, F>(
        &self,
        op: Op,
        call: impl FnOnce() -> F,
        fallback: T,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>>,
    {
        let (reason, error) = match self.breaker.attempt(call).await {
            Attempt::Answered(Err(error @ StoreError::Corrupt { .. })) => ("corrupt", Some(error)),
            Attempt::Answered(answer) => return answer,
            Attempt::Skipped => ("cooldown", None),
            Attempt::Failed(error) => {
                let reason = match error {
                    StoreError::Timeout { .. } => "timeout",
                    _ => "unavailable",
                };
                (reason, Some(error))
            }
        };
        self.breaker.note_fallback(
            &FALLBACKS.with_label_values(&[op.as_str(), reason]),
            error.as_ref(),
        );
        Ok(fallback)
    }
}

#[async_trait]
impl ExactCache for ResilientCache {
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.guarded(Op::Get, || self.inner.get(tenant, key), None)
            .await
    }

    async fn put(
        &self,
        tenant: &TenantId,
        key: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.guarded(Op::Put, || self.inner.put(tenant, key, value, ttl), ())
            .await
    }

    async fn delete(&self, tenant: &TenantId, key: &str) -> Result<bool, StoreError> {
        self.guarded(Op::Delete, || self.inner.delete(tenant, key), false)
            .await
    }

    async fn purge(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let purged = self.inner.purge(tenant).await?;
        self.breaker.on_success();
        Ok(purged)
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_durations_and_validates() {
        let config: ResilientCacheConfig =
            serde_json::from_str(r#"{"cooldown": "250ms"}"#).unwrap();
        assert_eq!(config.cooldown, Duration::from_millis(250));
        assert_eq!(config.warn_interval, Duration::from_secs(30));
        assert_eq!(config.validate(), Ok(()));
        let too_long: ResilientCacheConfig = serde_json::from_str(r#"{"cooldown": "1h"}"#).unwrap();
        assert!(too_long.validate().is_err());
        let zero: ResilientCacheConfig = serde_json::from_str(r#"{"cooldown": "0s"}"#).unwrap();
        assert!(
            zero.validate().is_err(),
            "zero would send every call to a failing backend"
        );
        assert!(serde_json::from_str::<ResilientCacheConfig>(r#"{"cool": "1s"}"#).is_err());
    }
}
