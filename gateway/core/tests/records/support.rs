//! Fixtures and helpers of the record-store tests.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatez_conformance::Redis;
use gatez_core::TenantId;
use gatez_core::store::records::RecordStore;
use gatez_core::store::records::embedded::{EmbeddedRecordConfig, EmbeddedRecordStore};
use gatez_core::store::records::redis::{RedisRecordConfig, RedisRecordStore};
use gatez_core::store::redis_conn::{self, RedisTimeouts};

/// Longest id both fixtures accept.
pub const MAX_ID: usize = 256;
/// Largest value both fixtures accept.
pub const MAX_VALUE: usize = 16 * 1024;

/// A TTL no test outlives.
pub const LONG: Duration = Duration::from_secs(600);

/// A store under test, and the server behind it (kept alive, and killed on drop, with the
/// fixture).
pub struct Fixture {
    pub store: Arc<dyn RecordStore>,
    _server: Option<Redis>,
}

pub async fn embedded() -> Fixture {
    Fixture {
        store: Arc::new(embedded_store(EmbeddedRecordConfig::default())),
        _server: None,
    }
}

/// An embedded store with the fixture's size limits and whatever else `config` says.
pub fn embedded_store(config: EmbeddedRecordConfig) -> EmbeddedRecordStore {
    let config = EmbeddedRecordConfig {
        max_id_bytes: MAX_ID,
        max_value_bytes: MAX_VALUE,
        ..config
    };
    config.validate().expect("test config is valid");
    EmbeddedRecordStore::new(config)
}

pub async fn redis() -> Fixture {
    let redis = Redis::start().await;
    let store = redis_store(&redis).await;
    Fixture {
        store: Arc::new(store),
        _server: Some(redis),
    }
}

pub async fn redis_store(redis: &Redis) -> RedisRecordStore {
    let conn = redis_conn::connect(&redis.url(), RedisTimeouts::default())
        .await
        .expect("connect to the test Redis");
    let config = RedisRecordConfig {
        max_id_bytes: MAX_ID,
        max_value_bytes: MAX_VALUE,
    };
    config.validate().expect("test config is valid");
    RedisRecordStore::new(conn, config)
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
