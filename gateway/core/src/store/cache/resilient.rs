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
//!
//! A deleted entry may therefore survive an outage (the delete was skipped) until its TTL ends;
//! callers that need invalidation to be certain should use `purge` or short TTLs.

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use prometheus::{IntCounterVec, register_int_counter_vec};
use serde::Deserialize;

use crate::store::StoreError;
use crate::store::cache::ExactCache;
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

/// Configuration of [`ResilientCache`].
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
            cooldown: Duration::from_secs(1),
            warn_interval: Duration::from_secs(30),
        }
    }
}

impl ResilientCacheConfig {
    /// Checks what serde cannot: a cooldown short enough that a recovered backend is used
    /// again soon.
    pub fn validate(&self) -> Result<(), String> {
        if self.cooldown > Duration::from_secs(300) {
            return Err("cooldown must be at most 5m".into());
        }
        Ok(())
    }
}

/// Wraps an [`ExactCache`] so backend failures become misses and skipped writes.
///
/// Only backend failures are absorbed: [`StoreError::Invalid`] (an oversized value, a zero
/// TTL) is the caller's bug and is returned as is. `purge` is an operator's request, not part
/// of serving traffic, so its errors are returned too and it ignores the cooldown.
pub struct ResilientCache {
    inner: Arc<dyn ExactCache>,
    config: ResilientCacheConfig,
    /// Reference point of the millisecond clocks below.
    epoch: Instant,
    /// 0 while the backend is healthy; otherwise the time (ms since `epoch`) until which the
    /// backend is left alone.
    open_until_ms: AtomicU64,
    /// Earliest time (ms since `epoch`) the next warning may be logged.
    next_warn_ms: AtomicU64,
    /// Failures not logged since the last warning.
    unlogged: AtomicU64,
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
        Self {
            inner,
            config,
            epoch: Instant::now(),
            open_until_ms: AtomicU64::new(0),
            next_warn_ms: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        }
    }

    /// Whether the backend is currently being left alone after a failure.
    pub fn is_cooling_down(&self) -> bool {
        let until = self.open_until_ms.load(Ordering::Acquire);
        until != 0 && self.now_ms() < until
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn cooldown_end(&self, now_ms: u64) -> u64 {
        let cooldown = u64::try_from(self.config.cooldown.as_millis()).unwrap_or(u64::MAX);
        // Never 0, which means "healthy".
        now_ms.saturating_add(cooldown).max(1)
    }

    /// Whether this call may use the backend. After a failure: no until the cooldown is over,
    /// then yes for exactly one caller (the probe), which pushes the cooldown on for the rest.
    fn admit(&self) -> bool {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        if now < until {
            return false;
        }
        self.open_until_ms
            .compare_exchange(
                until,
                self.cooldown_end(now),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    fn succeeded(&self) {
        // Load first: the healthy path must not write a shared cache line on every call.
        if self.open_until_ms.load(Ordering::Relaxed) != 0 {
            self.open_until_ms.store(0, Ordering::Release);
        }
    }

    fn skipped(&self, op: Op) {
        FALLBACKS
            .with_label_values(&[op.as_str(), "cooldown"])
            .inc();
    }

    /// Turns a backend error into a fallback (`Ok`), or hands back a caller error.
    fn absorb(&self, op: Op, err: StoreError) -> Result<(), StoreError> {
        let reason = match &err {
            StoreError::Invalid(_) => return Err(err),
            // The backend answered, with something unreadable: a miss, but no reason to stop
            // asking it.
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::Unavailable { .. } => "unavailable",
            StoreError::Timeout { .. } => "timeout",
        };
        if err.is_backend_failure() {
            self.open_until_ms
                .store(self.cooldown_end(self.now_ms()), Ordering::Release);
        }
        FALLBACKS.with_label_values(&[op.as_str(), reason]).inc();
        self.warn(op, &err);
        Ok(())
    }

    fn warn(&self, op: Op, err: &StoreError) {
        let now = self.now_ms();
        let next = self.next_warn_ms.load(Ordering::Acquire);
        let interval = u64::try_from(self.config.warn_interval.as_millis()).unwrap_or(u64::MAX);
        if now >= next
            && self
                .next_warn_ms
                .compare_exchange(
                    next,
                    now.saturating_add(interval),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            let unlogged = self.unlogged.swap(0, Ordering::AcqRel);
            tracing::warn!(
                backend = self.inner.backend(),
                op = op.as_str(),
                error = %err,
                unlogged_failures = unlogged,
                cooldown = ?self.config.cooldown,
                "exact cache backend failed; serving without it"
            );
        } else {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[async_trait]
impl ExactCache for ResilientCache {
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<Bytes>, StoreError> {
        if !self.admit() {
            self.skipped(Op::Get);
            return Ok(None);
        }
        match self.inner.get(tenant, key).await {
            Ok(value) => {
                self.succeeded();
                Ok(value)
            }
            Err(err) => self.absorb(Op::Get, err).map(|()| None),
        }
    }

    async fn put(
        &self,
        tenant: &TenantId,
        key: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        if !self.admit() {
            self.skipped(Op::Put);
            return Ok(());
        }
        match self.inner.put(tenant, key, value, ttl).await {
            Ok(()) => {
                self.succeeded();
                Ok(())
            }
            Err(err) => self.absorb(Op::Put, err),
        }
    }

    async fn delete(&self, tenant: &TenantId, key: &str) -> Result<bool, StoreError> {
        if !self.admit() {
            self.skipped(Op::Delete);
            return Ok(false);
        }
        match self.inner.delete(tenant, key).await {
            Ok(existed) => {
                self.succeeded();
                Ok(existed)
            }
            Err(err) => self.absorb(Op::Delete, err).map(|()| false),
        }
    }

    async fn purge(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let purged = self.inner.purge(tenant).await?;
        self.succeeded();
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
        assert!(serde_json::from_str::<ResilientCacheConfig>(r#"{"cool": "1s"}"#).is_err());
    }
}
