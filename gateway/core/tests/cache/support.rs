//! Fixtures and helpers of the exact-cache tests.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatez_conformance::Redis;
use gatez_core::TenantId;
use gatez_core::store::cache::ExactCache;
use gatez_core::store::cache::embedded::{EmbeddedCache, EmbeddedCacheConfig};
use gatez_core::store::cache::redis::{RedisCache, RedisCacheConfig};
use gatez_core::store::redis_conn::{self, RedisTimeouts};

/// Largest value both fixtures accept (kept small so the size tests stay fast).
pub const MAX_ENTRY: u64 = 64 * 1024;

/// A TTL no test outlives.
pub const LONG: Duration = Duration::from_secs(600);

/// A cache under test, and the server behind it (kept alive, and killed on drop, with the
/// fixture).
pub struct Fixture {
    pub cache: Arc<dyn ExactCache>,
    _server: Option<Redis>,
}

pub async fn embedded() -> Fixture {
    Fixture {
        cache: Arc::new(embedded_cache(EmbeddedCacheConfig {
            max_entry_bytes: MAX_ENTRY,
            ..Default::default()
        })),
        _server: None,
    }
}

pub fn embedded_cache(config: EmbeddedCacheConfig) -> EmbeddedCache {
    config.validate().expect("test config is valid");
    EmbeddedCache::new(config)
}

pub async fn redis() -> Fixture {
    let redis = Redis::start().await;
    let cache = redis_cache(&redis).await;
    Fixture {
        cache: Arc::new(cache),
        _server: Some(redis),
    }
}

pub async fn redis_cache(redis: &Redis) -> RedisCache {
    let conn = redis_conn::connect(&redis.url(), RedisTimeouts::default())
        .await
        .expect("connect to the test Redis");
    let config = RedisCacheConfig {
        max_entry_bytes: MAX_ENTRY,
        // Small, so purging a few dozen keys takes several SCAN steps.
        purge_batch: 7,
    };
    config.validate().expect("test config is valid");
    RedisCache::new(conn, config)
}

pub fn tenant(id: &str) -> TenantId {
    TenantId::new(id).expect("valid tenant id")
}

pub fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Polls `check` until it holds, failing the test if it does not within `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Current value of `gatez_cache_fallback_total{op,reason}` in the default registry.
pub fn fallback_count(op: &str, reason: &str) -> u64 {
    prometheus::gather()
        .iter()
        .filter(|family| family.name() == "gatez_cache_fallback_total")
        .flat_map(|family| family.get_metric())
        .filter(|metric| {
            let label = |name: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_owned())
            };
            label("op").as_deref() == Some(op) && label("reason").as_deref() == Some(reason)
        })
        .map(|metric| metric.get_counter().get_value() as u64)
        .sum()
}
