//! Rate limiting: GCRA buckets scoped to a tenant, several windows checked atomically.
//!
//! Backends: [`embedded::EmbeddedRateLimiter`] (in-process, one node) and
//! [`redis::RedisRateLimiter`] (one Lua script per check, so every replica shares the buckets).
//! Both run the same GCRA arithmetic ([`gcra`]), so they agree on every decision.

use std::time::Duration;

use async_trait::async_trait;

use crate::store::StoreError;
use crate::tenant::TenantId;

pub mod embedded;
pub mod gcra;
pub mod redis;
pub mod resilient;

/// A rate: `limit` units per `period`, with bursts of up to `burst` units (default: `limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub period: Duration,
    pub burst: Option<u64>,
}

impl Quota {
    pub fn per(limit: u64, period: Duration) -> Self {
        Self {
            limit,
            period,
            burst: None,
        }
    }

    /// Checks the quota is usable (non-zero limit and period).
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.limit == 0 || self.period.is_zero() || self.burst == Some(0) {
            return Err(StoreError::Invalid(format!(
                "quota needs a non-zero limit, period and burst: {self:?}"
            )));
        }
        Ok(())
    }
}

/// One bucket to charge: a name unique within the tenant (e.g. `tenant`, `route:/v1/chat`,
/// `consumer:alice`) and its quota. The same bucket name with a different quota is a
/// different bucket (the quota is part of its key), so a config change starts it fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub bucket: String,
    pub quota: Quota,
}

/// The outcome of a check, reported for the most restrictive of the limits checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The limit of the most restrictive bucket (`RateLimit-Limit`).
    pub limit: u64,
    /// Units left in that bucket right now (`RateLimit-Remaining`).
    pub remaining: u64,
    /// Time until that bucket is full again (`RateLimit-Reset`).
    pub reset_after: Duration,
    /// When denied: how long until the same request would be admitted (`Retry-After`).
    /// `None` on a denial means never: the cost exceeds the bucket's burst.
    pub retry_after: Option<Duration>,
}

/// A tenant-scoped rate limiter.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Charges `cost` units to every bucket in `limits`, all or none: the request is admitted
    /// only if every bucket has room, and then every bucket is charged. A denied check charges
    /// nothing. `limits` must not be empty.
    async fn check(
        &self,
        tenant: &TenantId,
        limits: &[Limit],
        cost: u32,
    ) -> Result<Decision, StoreError>;

    /// Short name for logs and metrics (`embedded`, `redis`).
    fn backend(&self) -> &'static str;
}
