//! Exact-match response cache, tenant-scoped, with a TTL per entry.
//!
//! Backends: [`embedded::EmbeddedCache`] (in-process, bounded per tenant so one tenant's
//! traffic cannot evict another's entries) and [`redis::RedisCache`]; wrap either in
//! [`resilient::ResilientCache`] so a failing backend degrades to misses instead of errors.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::store::StoreError;
use crate::tenant::TenantId;

pub mod embedded;
mod limits;
pub mod redis;
pub mod resilient;

pub use limits::{MAX_KEY_BYTES, MAX_TTL};

/// A tenant-scoped byte cache. `key` is chosen by the caller (typically a hash of the request);
/// the tenant is always part of the stored key, so equal keys of two tenants never meet.
#[async_trait]
pub trait ExactCache: Send + Sync + 'static {
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// Stores `value` for `ttl` (which must be non-zero), replacing any previous value.
    async fn put(
        &self,
        tenant: &TenantId,
        key: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Removes one entry; returns whether it existed.
    async fn delete(&self, tenant: &TenantId, key: &str) -> Result<bool, StoreError>;

    /// Removes every entry of this tenant (and only this tenant); returns how many.
    async fn purge(&self, tenant: &TenantId) -> Result<u64, StoreError>;

    fn backend(&self) -> &'static str;
}
