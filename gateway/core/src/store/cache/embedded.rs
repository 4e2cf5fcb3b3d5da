//! The in-process exact cache: one moka cache per tenant, each bounded in bytes, with a TTL
//! per entry.
//!
//! Isolation is structural: a tenant's entries live in a cache of their own, so when one
//! tenant fills its budget moka evicts that tenant's entries and nobody else's. The number of
//! tenant caches is capped too (`max_tenants`), which makes the worst-case memory
//! `max_tenants × max_bytes_per_tenant`. A shared byte budget across tenants would bound
//! memory more tightly, but then a busy tenant could push out a quiet tenant's entries,
//! which is the one thing this cache must not allow. When the cap is reached, caches whose
//! entries have all expired are dropped to make room; if none can be dropped, the new
//! tenant's writes are not stored (a cache may always decline to keep a value) and counted in
//! `gatez_cache_tenant_cap_skips_total`.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use moka::Expiry;
use moka::future::Cache;
use prometheus::{IntCounter, register_int_counter};
use serde::Deserialize;

use crate::store::StoreError;
use crate::store::cache::ExactCache;
use crate::store::cache::limits;
use crate::tenant::TenantId;

/// Bytes charged per entry on top of its key and value: moka's own bookkeeping (entry node,
/// deque links, timer wheel node, key `Arc`) is of this order, and counting it keeps a flood
/// of tiny entries from exceeding the byte budget in real memory.
const ENTRY_OVERHEAD_BYTES: usize = 128;

/// Dropping expired tenant caches walks every tenant; when the cap is reached, do it at most
/// this often, so a stream of writes from a refused tenant cannot make every write pay it.
const RECLAIM_INTERVAL: Duration = Duration::from_secs(1);

static TENANT_CAP_SKIPS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "gatez_cache_tenant_cap_skips_total",
        "Embedded exact-cache writes not stored because max_tenants tenant caches are in use"
    )
    .expect("gatez_cache_tenant_cap_skips_total is registered once")
});

/// Configuration of [`EmbeddedCache`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedCacheConfig {
    /// Byte budget of one tenant's cache (keys + values + a fixed per-entry overhead). Past
    /// it, that tenant's least valuable entries are evicted. Default 64 MiB.
    pub max_bytes_per_tenant: u64,
    /// Largest value accepted; larger puts fail with [`StoreError::Invalid`]. Default 1 MiB.
    pub max_entry_bytes: u64,
    /// Most tenant caches held at once. Default 64 (so at most 4 GiB with the default budget).
    pub max_tenants: usize,
}

impl Default for EmbeddedCacheConfig {
    fn default() -> Self {
        Self {
            max_bytes_per_tenant: 64 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            max_tenants: 64,
        }
    }
}

impl EmbeddedCacheConfig {
    /// Checks what serde cannot: non-zero sizes, and that one entry fits a tenant's budget.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_bytes_per_tenant == 0 {
            return Err("max_bytes_per_tenant must be greater than 0".into());
        }
        if self.max_entry_bytes == 0 {
            return Err("max_entry_bytes must be greater than 0".into());
        }
        // moka weighs entries in u32.
        let largest_weight =
            self.max_entry_bytes + (limits::MAX_KEY_BYTES + ENTRY_OVERHEAD_BYTES) as u64;
        if largest_weight > u64::from(u32::MAX) {
            return Err(format!(
                "max_entry_bytes must be below {} bytes",
                u64::from(u32::MAX) - (limits::MAX_KEY_BYTES + ENTRY_OVERHEAD_BYTES) as u64
            ));
        }
        if largest_weight > self.max_bytes_per_tenant {
            return Err(format!(
                "max_entry_bytes ({}) plus key and overhead must fit in max_bytes_per_tenant ({})",
                self.max_entry_bytes, self.max_bytes_per_tenant
            ));
        }
        if self.max_tenants == 0 {
            return Err("max_tenants must be greater than 0".into());
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Entry {
    value: Bytes,
    ttl: Duration,
    /// Kept beside moka's own expiry because `remove` hands back entries that have expired
    /// but not yet been evicted, and `delete` must not report those as existing.
    expires_at: Instant,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at > now
    }
}

/// Each entry expires after the TTL it was written with; overwriting restarts the clock.
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

type TenantCache = Cache<String, Entry>;

/// How much one tenant's cache holds, as of the last maintenance run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantUsage {
    pub entries: u64,
    /// Weighted size in bytes (keys + values + per-entry overhead).
    pub bytes: u64,
}

/// In-process [`ExactCache`]: per-tenant moka caches bounded in bytes. Entries live in this
/// process only; use the Redis backend to share them across replicas.
pub struct EmbeddedCache {
    config: EmbeddedCacheConfig,
    tenants: DashMap<TenantId, TenantCache>,
    /// Serialises creating and dropping tenant caches (rare), so the tenant cap holds exactly
    /// under concurrent first writes. Holds the time of the last reclaim pass.
    admission: tokio::sync::Mutex<Option<Instant>>,
}

impl EmbeddedCache {
    /// Builds the cache. The config should have passed [`EmbeddedCacheConfig::validate`].
    pub fn new(config: EmbeddedCacheConfig) -> Self {
        Self {
            config,
            tenants: DashMap::new(),
            admission: tokio::sync::Mutex::new(None),
        }
    }

    /// How much `tenant`'s cache holds, after running pending evictions and expiries; `None`
    /// if the tenant has no cache.
    pub async fn tenant_usage(&self, tenant: &TenantId) -> Option<TenantUsage> {
        let cache = self.tenant_cache(tenant)?;
        cache.run_pending_tasks().await;
        Some(TenantUsage {
            entries: cache.entry_count(),
            bytes: cache.weighted_size(),
        })
    }

    /// Number of tenant caches currently held.
    pub fn tenant_count(&self) -> usize {
        self.tenants.len()
    }

    /// A clone of the tenant's cache handle (an `Arc`), so no map guard is held across awaits.
    fn tenant_cache(&self, tenant: &TenantId) -> Option<TenantCache> {
        self.tenants.get(tenant).map(|c| c.value().clone())
    }

    /// The tenant's cache, created if the tenant cap allows; `None` means "do not store".
    async fn cache_for_write(&self, tenant: &TenantId) -> Option<TenantCache> {
        if let Some(cache) = self.tenant_cache(tenant) {
            return Some(cache);
        }
        let mut last_reclaim = self.admission.lock().await;
        if let Some(cache) = self.tenant_cache(tenant) {
            return Some(cache);
        }
        if self.tenants.len() >= self.config.max_tenants {
            let now = Instant::now();
            if last_reclaim.is_none_or(|at| now.duration_since(at) >= RECLAIM_INTERVAL) {
                *last_reclaim = Some(now);
                self.reclaim_empty_caches().await;
            }
        }
        if self.tenants.len() >= self.config.max_tenants {
            TENANT_CAP_SKIPS.inc();
            tracing::debug!(
                %tenant,
                max_tenants = self.config.max_tenants,
                "embedded cache: tenant cap reached, not caching"
            );
            return None;
        }
        let cache = self.build_tenant_cache(tenant);
        self.tenants.insert(tenant.clone(), cache.clone());
        Some(cache)
    }

    /// Drops tenant caches whose entries have all expired or been deleted. Called with the
    /// admission lock held.
    async fn reclaim_empty_caches(&self) {
        let caches: Vec<(TenantId, TenantCache)> = self
            .tenants
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        let mut dropped = 0usize;
        for (tenant, cache) in caches {
            cache.run_pending_tasks().await;
            // A write racing with this removal lands in the dropped cache and is lost: a
            // cache miss later, never wrong data.
            if self
                .tenants
                .remove_if(&tenant, |_, c| c.entry_count() == 0)
                .is_some()
            {
                dropped += 1;
            }
        }
        if dropped == 0 {
            tracing::warn!(
                max_tenants = self.config.max_tenants,
                "embedded cache: all tenant caches hold live entries; new tenants are not cached \
                 (raise cache max_tenants, or lower max_bytes_per_tenant to afford it)"
            );
        }
    }

    fn build_tenant_cache(&self, tenant: &TenantId) -> TenantCache {
        Cache::builder()
            .name(&format!("gatez-cache-{tenant}"))
            .max_capacity(self.config.max_bytes_per_tenant)
            .weigher(|key: &String, entry: &Entry| {
                let weight = key.len() + entry.value.len() + ENTRY_OVERHEAD_BYTES;
                u32::try_from(weight).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build()
    }
}

#[async_trait]
impl ExactCache for EmbeddedCache {
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<Bytes>, StoreError> {
        limits::check_key(key)?;
        let Some(cache) = self.tenant_cache(tenant) else {
            return Ok(None);
        };
        Ok(cache.get(key).await.map(|entry| entry.value))
    }

    async fn put(
        &self,
        tenant: &TenantId,
        key: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        limits::check_put(key, value.len(), ttl, self.config.max_entry_bytes)?;
        let Some(cache) = self.cache_for_write(tenant).await else {
            return Ok(());
        };
        let expires_at = Instant::now()
            .checked_add(ttl)
            .ok_or_else(|| StoreError::Invalid(format!("cache TTL {ttl:?} overflows")))?;
        cache
            .insert(
                key.to_owned(),
                Entry {
                    value,
                    ttl,
                    expires_at,
                },
            )
            .await;
        Ok(())
    }

    async fn delete(&self, tenant: &TenantId, key: &str) -> Result<bool, StoreError> {
        limits::check_key(key)?;
        let Some(cache) = self.tenant_cache(tenant) else {
            return Ok(false);
        };
        Ok(cache
            .remove(key)
            .await
            .is_some_and(|entry| entry.is_live(Instant::now())))
    }

    async fn purge(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        // Detaching the whole cache also frees the tenant's slot under `max_tenants`; writes
        // from now on go to a fresh cache.
        let Some((_, cache)) = self.tenants.remove(tenant) else {
            return Ok(0);
        };
        let now = Instant::now();
        let live = cache.iter().filter(|(_, entry)| entry.is_live(now)).count();
        // Another task may still hold a clone of the handle; empty it so memory is released
        // now rather than when the last clone goes.
        cache.invalidate_all();
        Ok(live as u64)
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(EmbeddedCacheConfig::default().validate(), Ok(()));
    }

    #[test]
    fn validate_rejects_entries_larger_than_a_tenant_budget() {
        let config = EmbeddedCacheConfig {
            max_bytes_per_tenant: 1024,
            max_entry_bytes: 1024,
            ..Default::default()
        };
        assert!(config.validate().is_err());
        let zero_tenants = EmbeddedCacheConfig {
            max_tenants: 0,
            ..Default::default()
        };
        assert!(zero_tenants.validate().is_err());
        let huge_entry = EmbeddedCacheConfig {
            max_bytes_per_tenant: u64::MAX,
            max_entry_bytes: u64::from(u32::MAX),
            ..Default::default()
        };
        assert!(huge_entry.validate().is_err());
    }

    #[test]
    fn config_parses_with_defaults_and_refuses_unknown_fields() {
        let config: EmbeddedCacheConfig = serde_json::from_str(r#"{"max_tenants": 3}"#).unwrap();
        assert_eq!(config.max_tenants, 3);
        assert_eq!(config.max_entry_bytes, 1024 * 1024);
        assert!(serde_json::from_str::<EmbeddedCacheConfig>(r#"{"max_tenant": 3}"#).is_err());
    }
}
