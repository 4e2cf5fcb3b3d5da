//! API keys on the embedded store and on a real Redis: the same behaviour on both, plus
//! what only a shared store shows (revocation reaching another node, nothing in plaintext).

use std::sync::Arc;
use std::time::Duration;

use gatez_edge::auth::{ApiKeyConfig, ApiKeyStore, AuthError};

use super::support::*;

const HOUR: Duration = Duration::from_secs(3600);
const LATENCY: Duration = Duration::from_millis(500);

fn node(store: &Arc<dyn gatez_core::store::records::RecordStore>) -> ApiKeyStore {
    ApiKeyStore::new(
        store.clone(),
        ApiKeyConfig {
            revocation_latency: LATENCY,
            negative_cache_ttl: LATENCY,
            ..ApiKeyConfig::default()
        },
    )
}

async fn both() -> [Stores; 2] {
    [embedded().await, redis().await]
}

#[tokio::test]
async fn create_list_and_verify() {
    for s in both().await {
        let a = node(&s.node_a);
        let (info, key) = a
            .create(&tenant("acme"), "ci deploy", vec!["deploy".into()], HOUR)
            .await
            .unwrap();
        assert!(key.expose().starts_with("gzk_acme_"), "{}", s.name);
        let id = a.verify(key.expose(), "req-1").await.unwrap();
        assert_eq!(id.tenant, tenant("acme"));
        assert_eq!(id.subject, format!("apikey:{}", info.id));
        assert_eq!(id.scopes, ["deploy"]);
        // Another node, which never saw the key, verifies it from the store.
        let b = node(&s.node_b);
        assert_eq!(
            b.verify(key.expose(), "r").await.unwrap().tenant,
            tenant("acme")
        );
        let listed = a.list(&tenant("acme")).await.unwrap();
        assert_eq!(listed, std::slice::from_ref(&info), "{}", s.name);
        assert!(info.expires_at_ms > info.created_at_ms);
        assert!(a.list(&tenant("globex")).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_wrong_key_is_refused() {
    for s in both().await {
        let a = node(&s.node_a);
        let (_, key) = a.create(&tenant("acme"), "k", vec![], HOUR).await.unwrap();
        let mut wrong = key.expose().to_owned();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        for bad in [wrong.as_str(), "gzk_acme_short", "not-a-key", ""] {
            assert!(
                matches!(a.verify(bad, "r").await, Err(AuthError::InvalidApiKey)),
                "{} {bad}",
                s.name
            );
        }
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_every_node_within_the_latency_bound() {
    for s in both().await {
        let a = node(&s.node_a);
        let b = node(&s.node_b);
        let (info, key) = a.create(&tenant("acme"), "k", vec![], HOUR).await.unwrap();
        // Node A has it cached as valid.
        a.verify(key.expose(), "r").await.unwrap();
        b.revoke(&tenant("acme"), &info.id).await.unwrap();
        // On the revoking node: at once.
        assert!(matches!(
            b.verify(key.expose(), "r").await,
            Err(AuthError::ApiKeyRevoked)
        ));
        // On the other node: within the configured latency (plus polling slack).
        let took = eventually(LATENCY + Duration::from_secs(1), s.name, || async {
            matches!(
                a.verify(key.expose(), "r").await,
                Err(AuthError::ApiKeyRevoked)
            )
        })
        .await;
        assert!(
            took <= LATENCY + Duration::from_millis(200),
            "{}: {took:?}",
            s.name
        );
        // And for good: past the negative cache too.
        tokio::time::sleep(LATENCY * 2).await;
        assert!(matches!(
            a.verify(key.expose(), "r").await,
            Err(AuthError::ApiKeyRevoked)
        ));
        let listed = a.list(&tenant("acme")).await.unwrap();
        assert!(listed[0].revoked_at_ms.is_some(), "{}", s.name);
    }
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    for s in both().await {
        let a = node(&s.node_a);
        let (_, key) = a
            .create(&tenant("acme"), "short", vec![], Duration::from_secs(1))
            .await
            .unwrap();
        a.verify(key.expose(), "r").await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // From the cache of a node that verified it, and from the store on one that did not.
        assert!(matches!(
            a.verify(key.expose(), "r").await,
            Err(AuthError::ApiKeyExpired)
        ));
        let b = node(&s.node_b);
        assert!(
            matches!(
                b.verify(key.expose(), "r").await,
                Err(AuthError::ApiKeyExpired)
            ),
            "{}",
            s.name
        );
    }
}

#[tokio::test]
async fn a_tenant_cannot_revoke_or_see_another_tenants_key() {
    for s in both().await {
        let a = node(&s.node_a);
        let (info, key) = a.create(&tenant("acme"), "k", vec![], HOUR).await.unwrap();
        assert!(matches!(
            a.revoke(&tenant("globex"), &info.id).await,
            Err(AuthError::ApiKeyNotFound)
        ));
        assert!(a.list(&tenant("globex")).await.unwrap().is_empty());
        // Still valid, as seen by a node with an empty cache.
        let b = node(&s.node_b);
        assert_eq!(
            b.verify(key.expose(), "r").await.unwrap().tenant,
            tenant("acme")
        );
    }
}

#[tokio::test]
async fn redis_never_holds_the_key_in_plaintext() {
    let s = redis().await;
    let a = node(&s.node_a);
    let (info, key) = a.create(&tenant("acme"), "k", vec![], HOUR).await.unwrap();
    a.verify(key.expose(), "r").await.unwrap();
    a.revoke(&tenant("acme"), &info.id).await.unwrap();
    let secret = key.expose().rsplit_once('_').unwrap().1.to_owned();

    let client = redis::Client::open(s.redis.as_ref().unwrap().url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let mut everything = keys.join("\n");
    for k in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "hash" => redis::cmd("HGETALL")
                .arg(k)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(k)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "string" => vec![
                redis::cmd("GET")
                    .arg(k)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            ],
            other => panic!("unexpected Redis type {other} at {k}"),
        };
        for v in values {
            everything.push('\n');
            everything.push_str(&String::from_utf8_lossy(&v));
        }
    }
    assert!(
        everything.contains(&info.id),
        "the dump should hold the key's records"
    );
    assert!(!everything.contains(key.expose()));
    assert!(!everything.contains(&secret));
}
