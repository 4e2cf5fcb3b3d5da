//! A rate limiter that survives its real backend: [`ResilientRateLimiter`] sends checks to the
//! primary (Redis) and, when it fails, applies the configured [`FailurePolicy`].
//!
//! After a failure the primary is skipped for a cooldown, so an outage costs one timeout per
//! cooldown rather than one per request; then a single request probes it again while the
//! others keep using the fallback.
//!
//! [`ResilienceConfig`] and the cooldown logic are shared with the budget store's wrapper.

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus::{IntCounter, IntCounterVec, register_int_counter_vec};
use serde::Deserialize;

use crate::store::ratelimit::embedded::EmbeddedRateLimiter;
use crate::store::ratelimit::gcra;
use crate::store::ratelimit::redis::RedisRateLimiter;
use crate::store::ratelimit::{Decision, Limit, RateLimiter};
use crate::store::{FailurePolicy, StoreError};
use crate::tenant::TenantId;

/// Checks answered by the failure policy instead of the primary backend.
static FALLBACKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gatez_ratelimit_fallback_total",
        "Rate-limit checks answered by the failure policy because the primary backend failed",
        &["policy"]
    )
    .expect("gatez_ratelimit_fallback_total is registered once")
});

/// How a Redis-backed store behaves while Redis fails.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResilienceConfig {
    /// What a call gets while Redis is failing: `fail_open`, `fail_closed` (default) or
    /// `local`.
    pub on_failure: FailurePolicy,
    /// How long Redis is skipped after a failure before one call probes it again
    /// (default `1s`). Calls in between go straight to the failure policy.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self {
            on_failure: FailurePolicy::default(),
            cooldown: Duration::from_secs(1),
        }
    }
}

impl ResilienceConfig {
    /// Longest cooldown accepted: beyond this a recovered Redis would go unused for too long.
    pub const MAX_COOLDOWN: Duration = Duration::from_secs(300);

    /// Checks what serde cannot: the cooldown is positive and at most [`Self::MAX_COOLDOWN`].
    pub fn validate(&self) -> Result<(), String> {
        if self.cooldown.is_zero() || self.cooldown > Self::MAX_COOLDOWN {
            return Err(format!(
                "cooldown: must be between 1ms and {}s, got {:?}",
                Self::MAX_COOLDOWN.as_secs(),
                self.cooldown
            ));
        }
        Ok(())
    }
}

/// The metric label of a policy.
pub(crate) fn policy_label(policy: FailurePolicy) -> &'static str {
    match policy {
        FailurePolicy::FailOpen => "fail_open",
        FailurePolicy::FailClosed => "fail_closed",
        FailurePolicy::Local => "local",
    }
}

/// Least time between two "still falling back" warnings of one breaker.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// Decides whether a call goes to the primary backend or straight to the failure policy,
/// and counts and logs the calls that take the fallback.
#[derive(Debug)]
pub(crate) struct Breaker {
    /// `ratelimit` or `budget`, for logs.
    store: &'static str,
    policy: FailurePolicy,
    cooldown: Duration,
    epoch: Instant,
    /// 0 while the primary is trusted; otherwise the instant (µs since `epoch`, never 0)
    /// before which the primary is skipped.
    skip_until_us: AtomicU64,
    /// Fallbacks since the last warning, and when the next warning may be logged.
    unlogged: AtomicU64,
    next_log_us: AtomicU64,
    fallbacks: IntCounter,
}

impl Breaker {
    pub(crate) fn new(
        store: &'static str,
        config: &ResilienceConfig,
        fallbacks: &IntCounterVec,
    ) -> Self {
        Self {
            store,
            policy: config.on_failure,
            cooldown: config.cooldown,
            epoch: Instant::now(),
            skip_until_us: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
            next_log_us: AtomicU64::new(0),
            fallbacks: fallbacks.with_label_values(&[policy_label(config.on_failure)]),
        }
    }

    pub(crate) fn policy(&self) -> FailurePolicy {
        self.policy
    }

    /// Whether this call should go to the primary. While the cooldown runs, no; when it has
    /// run out, yes for exactly one caller (the probe), which pushes the cooldown forward so
    /// the others keep falling back until the probe reports.
    pub(crate) fn try_primary(&self) -> bool {
        self.try_primary_at(self.now_us())
    }

    fn try_primary_at(&self, now_us: u64) -> bool {
        let until = self.skip_until_us.load(Ordering::Acquire);
        until == 0
            || (now_us >= until
                && self
                    .skip_until_us
                    .compare_exchange(
                        until,
                        now_us + micros(self.cooldown),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok())
    }

    /// The primary answered: trust it again.
    pub(crate) fn on_success(&self, backend: &'static str) {
        // Read before writing: this runs on every healthy call, and a plain load keeps the
        // cache line shared between cores instead of bouncing it.
        if self.skip_until_us.load(Ordering::Relaxed) != 0
            && self.skip_until_us.swap(0, Ordering::AcqRel) != 0
        {
            tracing::info!(store = self.store, backend, "backend answers again");
        }
    }

    /// The primary failed as a backend (down or slow): skip it for the cooldown.
    pub(crate) fn on_failure(&self, backend: &'static str, error: &StoreError) {
        self.on_failure_at(backend, error, self.now_us());
    }

    fn on_failure_at(&self, backend: &'static str, error: &StoreError, now_us: u64) {
        let until = now_us + micros(self.cooldown);
        if self.skip_until_us.swap(until, Ordering::AcqRel) == 0 {
            tracing::warn!(
                store = self.store,
                backend,
                %error,
                policy = policy_label(self.policy),
                cooldown = ?self.cooldown,
                "backend failed; applying the failure policy"
            );
        } else {
            tracing::debug!(store = self.store, backend, %error, "backend still failing");
        }
    }

    /// Counts a call answered by the failure policy; warns at most every [`LOG_EVERY`].
    pub(crate) fn note_fallback(&self, backend: &'static str) {
        self.fallbacks.inc();
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        let now = self.now_us();
        let due = self.next_log_us.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_log_us
                .compare_exchange(
                    due,
                    now + micros(LOG_EVERY),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            let calls = self.unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                store = self.store,
                backend,
                policy = policy_label(self.policy),
                calls,
                "calls answered by the failure policy while the backend is failing"
            );
        }
    }

    /// The error a fail-closed call returns when the primary was skipped, not called.
    pub(crate) fn skipped_error(&self, backend: &'static str) -> StoreError {
        StoreError::Unavailable {
            backend,
            message: format!(
                "skipped after a recent failure; next attempt within {:?}",
                self.cooldown
            ),
        }
    }

    /// Microseconds since `epoch`, plus one so that 0 can mean "not skipping".
    fn now_us(&self) -> u64 {
        micros(self.epoch.elapsed()) + 1
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2)
}

/// A rate limiter over a primary backend (normally [`RedisRateLimiter`]) that applies a
/// [`FailurePolicy`] when the primary is down or slow:
/// - `fail_open`: the check is admitted as if every bucket were empty (a cost above a
///   bucket's burst is still denied: no state could ever admit it);
/// - `fail_closed`: the error is returned (the HTTP layer answers 503);
/// - `local`: this node's [`EmbeddedRateLimiter`] decides, so limits hold per node. Its state
///   is not carried over to the primary when that recovers.
///
/// Errors that are not backend failures (an invalid quota) are returned whatever the policy.
pub struct ResilientRateLimiter {
    primary: Arc<dyn RateLimiter>,
    local: Option<EmbeddedRateLimiter>,
    breaker: Breaker,
}

impl std::fmt::Debug for ResilientRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientRateLimiter")
            .field("primary", &self.primary.backend())
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl ResilientRateLimiter {
    pub fn new(primary: Arc<dyn RateLimiter>, config: &ResilienceConfig) -> Self {
        let local = (config.on_failure == FailurePolicy::Local).then(EmbeddedRateLimiter::new);
        Self {
            primary,
            local,
            breaker: Breaker::new("ratelimit", config, &FALLBACKS),
        }
    }

    /// The Redis limiter on `conn`, wrapped.
    pub fn redis(conn: redis::aio::ConnectionManager, config: &ResilienceConfig) -> Self {
        Self::new(Arc::new(RedisRateLimiter::new(conn)), config)
    }

    async fn fallback(
        &self,
        tenant: &TenantId,
        limits: &[Limit],
        cost: u32,
        error: StoreError,
    ) -> Result<Decision, StoreError> {
        self.breaker.note_fallback(self.primary.backend());
        if self.breaker.policy() == FailurePolicy::Local {
            let local = self.local.as_ref().expect("built for the local policy");
            return local.check(tenant, limits, cost).await;
        }
        // Whatever the backend's state, a malformed request is reported as such.
        let buckets = gcra::buckets(tenant, limits)?;
        if self.breaker.policy() == FailurePolicy::FailClosed {
            return Err(error);
        }
        let outcomes = buckets
            .iter()
            .map(|b| gcra::evaluate(&b.params, 0, 0, cost));
        Ok(gcra::most_restrictive(outcomes)
            .expect("gcra::buckets refuses an empty list")
            .decision())
    }
}

#[async_trait]
impl RateLimiter for ResilientRateLimiter {
    async fn check(
        &self,
        tenant: &TenantId,
        limits: &[Limit],
        cost: u32,
    ) -> Result<Decision, StoreError> {
        let backend = self.primary.backend();
        if !self.breaker.try_primary() {
            let error = self.breaker.skipped_error(backend);
            return self.fallback(tenant, limits, cost, error).await;
        }
        match self.primary.check(tenant, limits, cost).await {
            Ok(decision) => {
                self.breaker.on_success(backend);
                Ok(decision)
            }
            Err(error) if error.is_backend_failure() => {
                self.breaker.on_failure(backend, &error);
                self.fallback(tenant, limits, cost, error).await
            }
            Err(error) => Err(error),
        }
    }

    fn backend(&self) -> &'static str {
        self.primary.backend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(cooldown_ms: u64) -> ResilienceConfig {
        ResilienceConfig {
            on_failure: FailurePolicy::FailClosed,
            cooldown: Duration::from_millis(cooldown_ms),
        }
    }

    fn breaker(cooldown_ms: u64) -> Breaker {
        Breaker::new("test", &config(cooldown_ms), &FALLBACKS)
    }

    fn down() -> StoreError {
        StoreError::unavailable("redis", "connection refused")
    }

    #[test]
    fn healthy_breaker_always_tries_the_primary() {
        let b = breaker(1000);
        assert!((0..3).all(|_| b.try_primary()));
        b.on_success("redis");
        assert!(b.try_primary());
    }

    #[test]
    fn failure_skips_the_primary_until_the_cooldown_then_one_probe() {
        const MS: u64 = 1000;
        let b = breaker(1000);
        b.on_failure_at("redis", &down(), 10 * MS);
        assert!(!b.try_primary_at(10 * MS));
        assert!(!b.try_primary_at(1009 * MS), "still cooling down");
        assert!(
            b.try_primary_at(1010 * MS),
            "the first caller after it probes"
        );
        assert!(
            !b.try_primary_at(1011 * MS),
            "others wait for the probe's result"
        );
        // The probe failed: another full cooldown from then.
        b.on_failure_at("redis", &down(), 1015 * MS);
        assert!(!b.try_primary_at(2014 * MS));
        assert!(b.try_primary_at(2015 * MS));
        b.on_success("redis");
        assert!(b.try_primary_at(2016 * MS) && b.try_primary_at(2016 * MS));
    }

    #[test]
    fn within_the_cooldown_nobody_tries() {
        let b = breaker(60_000);
        b.on_failure("redis", &down());
        assert!((0..100).all(|_| !b.try_primary()));
    }

    #[test]
    fn fallbacks_are_counted_per_policy() {
        let b = breaker(1000);
        let counter = FALLBACKS.with_label_values(&["fail_closed"]);
        let before = counter.get();
        b.note_fallback("redis");
        b.note_fallback("redis");
        assert!(counter.get() >= before + 2);
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: ResilienceConfig = serde_yaml_ng::from_str("{}").unwrap();
        assert_eq!(c, ResilienceConfig::default());
        assert_eq!(c.on_failure, FailurePolicy::FailClosed);
        assert_eq!(c.cooldown, Duration::from_secs(1));
        let c: ResilienceConfig =
            serde_yaml_ng::from_str("on_failure: local\ncooldown: 250ms").unwrap();
        assert_eq!(c.on_failure, FailurePolicy::Local);
        assert_eq!(c.cooldown, Duration::from_millis(250));
        assert!(c.validate().is_ok());
        assert!(serde_yaml_ng::from_str::<ResilienceConfig>("cooldwn: 1s").is_err());
        assert!(config(0).validate().is_err());
        assert!(config(301_000).validate().is_err());
    }
}
