//! Fixtures shared by the auth tests.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatez_conformance::Redis;
use gatez_core::TenantId;
use gatez_core::store::records::RecordStore;
use gatez_core::store::records::embedded::{EmbeddedRecordConfig, EmbeddedRecordStore};
use gatez_core::store::records::redis::{RedisRecordConfig, RedisRecordStore};
use gatez_core::store::redis_conn::{self, RedisTimeouts};
use gatez_edge::auth::{JwtConfig, JwtIssuerConfig, JwtVerifier};
use gatez_mocks::oidc::{DEFAULT_REALM, OidcIssuer};

/// The audience the mock realm puts in its tokens.
pub const AUDIENCE: &str = "account";

pub fn tenant(id: &str) -> TenantId {
    TenantId::new(id).expect("valid tenant id")
}

pub fn issuer_config(issuer: &OidcIssuer) -> JwtIssuerConfig {
    JwtIssuerConfig::new(issuer.issuer_url(DEFAULT_REALM), vec![AUDIENCE.into()])
}

pub fn verifier(config: JwtIssuerConfig) -> JwtVerifier {
    let config = JwtConfig::new(vec![config]);
    let mut v = gatez_core::config::Validator::default();
    gatez_core::config::Validate::validate(&config, &mut v);
    v.finish().expect("test config is valid");
    JwtVerifier::new(config).expect("build the verifier")
}

/// JWKS requests the issuer has received so far.
pub fn jwks_fetches(issuer: &OidcIssuer) -> usize {
    issuer
        .received()
        .iter()
        .filter(|r| r.path.ends_with("/protocol/openid-connect/certs"))
        .count()
}

pub fn b64_json(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

pub fn decode_part(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// `token` with its header replaced (signature kept).
pub fn with_header(token: &str, header: serde_json::Value) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    let header = b64_json(&header);
    parts[0] = &header;
    parts.join(".")
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A record store under test, and the Redis behind it (kept alive with the fixture).
pub struct Stores {
    pub name: &'static str,
    /// What one node uses.
    pub node_a: Arc<dyn RecordStore>,
    /// What another node uses: the same data, through its own connection when the
    /// backend is shared.
    pub node_b: Arc<dyn RecordStore>,
    pub redis: Option<Redis>,
}

pub async fn embedded() -> Stores {
    let store: Arc<dyn RecordStore> =
        Arc::new(EmbeddedRecordStore::new(EmbeddedRecordConfig::default()));
    Stores {
        name: "embedded",
        node_a: store.clone(),
        node_b: store,
        redis: None,
    }
}

pub async fn redis() -> Stores {
    let redis = Redis::start().await;
    let node_a = redis_store(&redis).await;
    let node_b = redis_store(&redis).await;
    Stores {
        name: "redis",
        node_a,
        node_b,
        redis: Some(redis),
    }
}

async fn redis_store(redis: &Redis) -> Arc<dyn RecordStore> {
    let conn = redis_conn::connect(&redis.url(), RedisTimeouts::default())
        .await
        .expect("connect to the test Redis");
    Arc::new(RedisRecordStore::new(conn, RedisRecordConfig::default()))
}

/// Polls `check` until it holds; returns how long that took, or panics after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
