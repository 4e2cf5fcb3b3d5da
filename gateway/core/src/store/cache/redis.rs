//! The Redis exact cache: one string key per entry with a millisecond TTL, shared by every
//! replica. Keys come from [`keys::tenant_key`], so a tenant's entries are exactly the keys
//! under its cache prefix, which is what `purge` scans.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::ConnectionManager;
use serde::Deserialize;

use crate::keys::{self, KeyKind};
use crate::store::StoreError;
use crate::store::cache::ExactCache;
use crate::store::cache::limits;
use crate::tenant::TenantId;

/// Configuration of [`RedisCache`] (the connection itself is shared and configured apart).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisCacheConfig {
    /// Largest value accepted; larger puts fail with [`StoreError::Invalid`]. Default 1 MiB.
    pub max_entry_bytes: u64,
    /// Keys asked for per `SCAN` step (and so removed per `UNLINK`) while purging a tenant.
    /// Default 500: large enough for few round trips, small enough that no single command
    /// blocks Redis noticeably.
    pub purge_batch: u32,
}

impl Default for RedisCacheConfig {
    fn default() -> Self {
        Self {
            max_entry_bytes: 1024 * 1024,
            purge_batch: 500,
        }
    }
}

impl RedisCacheConfig {
    /// Checks what serde cannot: non-zero sizes, and a value under Redis's 512 MB string limit.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_entry_bytes == 0 {
            return Err("max_entry_bytes must be greater than 0".into());
        }
        if self.max_entry_bytes > 512 * 1024 * 1024 {
            return Err("max_entry_bytes must be at most 512 MiB (the Redis string limit)".into());
        }
        if self.purge_batch == 0 {
            return Err("purge_batch must be greater than 0".into());
        }
        Ok(())
    }
}

/// [`ExactCache`] on Redis, on a clone of the shared multiplexed connection. Every call is
/// bounded by the connection's response timeout, so a dead Redis makes calls fail fast with
/// [`StoreError::Unavailable`] or [`StoreError::Timeout`]; wrap the cache in
/// [`super::resilient::ResilientCache`] so that such failures become misses.
pub struct RedisCache {
    conn: ConnectionManager,
    config: RedisCacheConfig,
}

impl RedisCache {
    /// Builds the cache on a shared connection (see [`crate::store::redis_conn::connect`]).
    /// The config should have passed [`RedisCacheConfig::validate`].
    pub fn new(conn: ConnectionManager, config: RedisCacheConfig) -> Self {
        Self { conn, config }
    }

    fn key(tenant: &TenantId, key: &str) -> String {
        keys::tenant_key(tenant, KeyKind::Cache, &[key])
    }
}

/// A TTL in whole milliseconds, rounded up so a sub-millisecond TTL does not become `PX 0`
/// (which Redis refuses).
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

#[async_trait]
impl ExactCache for RedisCache {
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<Bytes>, StoreError> {
        limits::check_key(key)?;
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(Self::key(tenant, key))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(value.map(Bytes::from))
    }

    async fn put(
        &self,
        tenant: &TenantId,
        key: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        limits::check_put(key, value.len(), ttl, self.config.max_entry_bytes)?;
        let () = redis::cmd("SET")
            .arg(Self::key(tenant, key))
            .arg(value.as_ref())
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn delete(&self, tenant: &TenantId, key: &str) -> Result<bool, StoreError> {
        limits::check_key(key)?;
        // UNLINK frees a large value off Redis's main thread.
        let removed: u64 = redis::cmd("UNLINK")
            .arg(Self::key(tenant, key))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(removed > 0)
    }

    async fn purge(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        // The prefix holds no glob characters (tenant ids are [A-Za-z0-9._-] and the rest is
        // fixed), so the pattern matches this tenant's cache keys and nothing else.
        let mut pattern = keys::tenant_prefix(tenant, KeyKind::Cache);
        debug_assert!(!pattern.contains(['*', '?', '[', ']', '\\']));
        pattern.push('*');
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut removed: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(self.config.purge_batch)
                .query_async(&mut conn)
                .await?;
            if !batch.is_empty() {
                // SCAN may return a key twice; UNLINK counts only keys it actually removed, so
                // the total stays exact.
                let n: u64 = redis::cmd("UNLINK")
                    .arg(&batch)
                    .query_async(&mut conn)
                    .await?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_milliseconds() {
        assert_eq!(ttl_millis(Duration::from_micros(1)), 1);
        assert_eq!(ttl_millis(Duration::from_millis(200)), 200);
        assert_eq!(ttl_millis(Duration::from_micros(200_001)), 201);
    }

    #[test]
    fn config_defaults_validate() {
        assert_eq!(RedisCacheConfig::default().validate(), Ok(()));
        let bad = RedisCacheConfig {
            purge_batch: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
