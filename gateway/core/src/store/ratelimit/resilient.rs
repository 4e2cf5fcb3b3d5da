//! A rate limiter that survives its real backend: [`ResilientRateLimiter`] sends checks to the
//! primary (Redis) and, when it fails, applies the configured
//! [`FailurePolicy`](crate::store::FailurePolicy).
//!
//! The cooldown after a failure (one timeout per cooldown rather than one per request, then a
//! single probe) is the store-wide [`breaker`](crate::store::breaker); the policy is applied by
//! `PolicyGuard`, shared with the budget store's wrapper.

use std::sync::Arc;
use std::sync::LazyLock;

use async_trait::async_trait;
use prometheus::{IntCounterVec, register_int_counter_vec};

use crate::store::ResilienceConfig;
use crate::store::StoreError;
use crate::store::policy::PolicyGuard;
use crate::store::ratelimit::embedded::EmbeddedRateLimiter;
use crate::store::ratelimit::gcra;
use crate::store::ratelimit::redis::RedisRateLimiter;
use crate::store::ratelimit::{Decision, Limit, RateLimiter};
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

/// A rate limiter over a primary backend (normally [`RedisRateLimiter`]) that applies a
/// [`FailurePolicy`](crate::store::FailurePolicy) when the primary is down or slow:
/// - `fail_open`: the check is admitted as if every bucket were empty (a cost above a
///   bucket's burst is still denied: no state could ever admit it);
/// - `fail_closed`: the error is returned (the HTTP layer answers 503);
/// - `local`: this node's [`EmbeddedRateLimiter`] decides, so limits hold per node. Its state
///   is not carried over to the primary when that recovers.
///
/// Errors that are not backend failures (an invalid quota) are returned whatever the policy.
#[derive(Debug)]
pub struct ResilientRateLimiter {
    guard: PolicyGuard<dyn RateLimiter>,
}

impl ResilientRateLimiter {
    /// Wraps `primary`; with the `local` policy, also builds this node's embedded limiter.
    pub fn new(primary: Arc<dyn RateLimiter>, config: &ResilienceConfig) -> Self {
        let backend = primary.backend();
        Self {
            guard: PolicyGuard::new(
                "ratelimit",
                primary,
                backend,
                || Box::new(EmbeddedRateLimiter::new()),
                config,
                &FALLBACKS,
            ),
        }
    }

    /// The Redis limiter on `conn`, wrapped.
    pub fn redis(conn: redis::aio::ConnectionManager, config: &ResilienceConfig) -> Self {
        Self::new(Arc::new(RedisRateLimiter::new(conn)), config)
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
        self.guard
            .run(
                |limiter| limiter.check(tenant, limits, cost),
                || gcra::buckets(tenant, limits),
                // As if every bucket were empty.
                |buckets, _| {
                    let outcomes = buckets
                        .iter()
                        .map(|b| gcra::evaluate(&b.params, 0, 0, cost));
                    Ok(gcra::most_restrictive(outcomes)
                        .expect("gcra::buckets refuses an empty list")
                        .decision())
                },
            )
            .await
    }

    fn backend(&self) -> &'static str {
        self.guard.backend()
    }
}
