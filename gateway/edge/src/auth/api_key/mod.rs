//! API keys: random, shown once, stored hashed, scoped to one tenant, with expiry and
//! revocation.
//!
//! # Storage
//! Two records per key in the tenant's scope of a [`RecordStore`]: the key's record under
//! the SHA-256 hex of the key (`apikey` kind; verification looks it up by hashing what the
//! client sent), and an index from the key id to that hash (`apikey-id` kind; revocation is
//! by id). Neither holds the key: a store dump does not let anyone call the gateway.
//!
//! # Revocation latency
//! A node that verified a key trusts it for [`ApiKeyConfig::revocation_latency`] (default
//! 5 s) before reading the store again. With a shared store (Redis), a revocation made on
//! any node therefore takes effect on every node within that bound; on the node that
//! revoked, at once. Refusals (unknown, revoked, expired) are remembered for
//! [`ApiKeyConfig::negative_cache_ttl`], never longer.

mod config;
mod format;
mod record;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gatez_core::TenantId;
use gatez_core::identity::Identity;
use gatez_core::keys::KeyKind;
use gatez_core::store::StoreError;
use gatez_core::store::records::{CasOutcome, MAX_TTL, RecordStore};
use moka::sync::Cache;
use rand::RngCore;
use subtle::ConstantTimeEq;

pub use config::ApiKeyConfig;
pub use format::{PREFIX, PlaintextKey};
pub use record::ApiKeyInfo;

use self::record::{KeyIndex, StoredKey};
use crate::auth::AuthError;

const KEYS: KeyKind = KeyKind::Other("apikey");
const INDEX: KeyKind = KeyKind::Other("apikey-id");

/// Most keys one listing returns.
pub const MAX_LIST: usize = 10_000;
const MAX_NAME_BYTES: usize = 128;
const MAX_SCOPES: usize = 64;
const MAX_SCOPE_BYTES: usize = 128;
/// Attempts at a compare-and-swap or an id allocation before giving up.
const ATTEMPTS: usize = 5;

/// A key that verified, as cached on this node.
struct ValidKey {
    tenant: TenantId,
    subject: String,
    scopes: Vec<String>,
    expires_at_ms: u64,
}

#[derive(Debug, Clone, Copy)]
enum Refusal {
    Invalid,
    Revoked,
    Expired,
}

impl From<Refusal> for AuthError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Invalid => AuthError::InvalidApiKey,
            Refusal::Revoked => AuthError::ApiKeyRevoked,
            Refusal::Expired => AuthError::ApiKeyExpired,
        }
    }
}

/// Creates, lists, revokes and verifies API keys on a [`RecordStore`].
pub struct ApiKeyStore {
    store: Arc<dyn RecordStore>,
    config: ApiKeyConfig,
    valid: Cache<[u8; 32], Arc<ValidKey>>,
    refused: Cache<[u8; 32], Refusal>,
}

impl ApiKeyStore {
    /// The config should have passed validation.
    pub fn new(store: Arc<dyn RecordStore>, config: ApiKeyConfig) -> Self {
        let valid = Cache::builder()
            .max_capacity(config.cache_capacity)
            .time_to_live(config.revocation_latency)
            .build();
        let refused = Cache::builder()
            .max_capacity(config.cache_capacity)
            .time_to_live(config.negative_cache_ttl)
            .build();
        Self {
            store,
            config,
            valid,
            refused,
        }
    }

    /// Creates a key for `tenant` living `ttl`. The plaintext is returned here only: it is
    /// not stored and cannot be recovered.
    pub async fn create(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: Vec<String>,
        ttl: Duration,
    ) -> Result<(ApiKeyInfo, PlaintextKey), AuthError> {
        self.check_request(name, &scopes, ttl)?;
        let created_at_ms = now_ms();
        let expires_at_ms = created_at_ms.saturating_add(millis(ttl));
        let record_ttl = (ttl + self.config.expired_retention).min(MAX_TTL);
        for _ in 0..ATTEMPTS {
            let key = format::generate(tenant);
            let hash = hex::encode(format::hash(key.expose()));
            let stored = StoredKey {
                id: new_key_id(),
                tenant: tenant.as_str().to_owned(),
                name: name.to_owned(),
                scopes: scopes.clone(),
                hash: hash.clone(),
                created_at_ms,
                expires_at_ms,
                revoked_at_ms: None,
            };
            // Hash collisions of 256-bit random keys do not happen; an id collision (128
            // bits) neither, but both are handled rather than assumed away.
            if !self
                .store
                .create(tenant, KEYS, &hash, encode(&stored)?, record_ttl)
                .await?
            {
                continue;
            }
            let index = KeyIndex { hash: hash.clone() };
            let indexed = self
                .store
                .create(tenant, INDEX, &stored.id, encode(&index)?, record_ttl)
                .await;
            match indexed {
                Ok(true) => return Ok((stored.into(), key)),
                Ok(false) => {
                    self.store.delete(tenant, KEYS, &hash).await?;
                }
                Err(e) => {
                    // Without its index the key could not be revoked: do not leave it usable.
                    if let Err(cleanup) = self.store.delete(tenant, KEYS, &hash).await {
                        tracing::error!(error = %cleanup, "could not remove an unindexed API key record");
                    }
                    return Err(e.into());
                }
            }
        }
        Err(AuthError::Store(StoreError::Invalid(
            "could not allocate a unique API key id".into(),
        )))
    }

    /// Revokes key `key_id` of `tenant`. Idempotent. A key of another tenant is
    /// [`AuthError::ApiKeyNotFound`], exactly like a key that does not exist.
    pub async fn revoke(&self, tenant: &TenantId, key_id: &str) -> Result<(), AuthError> {
        if !is_key_id(key_id) {
            return Err(AuthError::ApiKeyNotFound);
        }
        let index = self
            .store
            .get(tenant, INDEX, key_id)
            .await?
            .ok_or(AuthError::ApiKeyNotFound)?;
        let index: KeyIndex = decode(&index.value).ok_or(AuthError::ApiKeyNotFound)?;
        for _ in 0..ATTEMPTS {
            let Some(current) = self.store.get(tenant, KEYS, &index.hash).await? else {
                return Err(AuthError::ApiKeyNotFound);
            };
            let mut stored: StoredKey = decode(&current.value).ok_or(AuthError::ApiKeyNotFound)?;
            if stored.id != key_id {
                return Err(AuthError::ApiKeyNotFound);
            }
            if stored.revoked_at_ms.is_none() {
                stored.revoked_at_ms = Some(now_ms());
                let outcome = self
                    .store
                    .compare_and_swap(
                        tenant,
                        KEYS,
                        &index.hash,
                        current.version,
                        encode(&stored)?,
                        self.remaining_record_ttl(&stored),
                    )
                    .await?;
                if matches!(outcome, CasOutcome::Conflict { .. }) {
                    continue;
                }
            }
            if let Ok(bytes) = hex::decode(&index.hash)
                && let Ok(digest) = <[u8; 32]>::try_from(bytes.as_slice())
            {
                self.valid.invalidate(&digest);
                self.refused.insert(digest, Refusal::Revoked);
            }
            return Ok(());
        }
        Err(AuthError::Store(StoreError::Invalid(
            "API key changed concurrently too often; try again".into(),
        )))
    }

    /// `tenant`'s keys (live, revoked, and recently expired), newest first, without secrets.
    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<ApiKeyInfo>, AuthError> {
        let records = self.store.list(tenant, KEYS, MAX_LIST).await?;
        let mut keys: Vec<ApiKeyInfo> = records
            .into_iter()
            .filter_map(|(_, r)| decode::<StoredKey>(&r.value))
            .filter(|k| k.tenant == tenant.as_str())
            .map(ApiKeyInfo::from)
            .collect();
        keys.sort_by(|a, b| {
            b.created_at_ms
                .cmp(&a.created_at_ms)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(keys)
    }

    /// Verifies a presented key and returns the identity it stands for, tagged with
    /// `request_id`. The subject is `apikey:<key id>`.
    pub async fn verify(&self, presented: &str, request_id: &str) -> Result<Identity, AuthError> {
        let tenant = format::parse(presented).ok_or(AuthError::InvalidApiKey)?;
        let digest = format::hash(presented);
        if let Some(hit) = self.valid.get(&digest) {
            if now_ms() >= hit.expires_at_ms {
                self.valid.invalidate(&digest);
                return Err(AuthError::ApiKeyExpired);
            }
            return Ok(Identity {
                tenant: hit.tenant.clone(),
                subject: hit.subject.clone(),
                scopes: hit.scopes.clone(),
                request_id: request_id.to_owned(),
            });
        }
        if let Some(refusal) = self.refused.get(&digest) {
            return Err(refusal.into());
        }
        let hash = hex::encode(digest);
        let valid = match self.store.get(&tenant, KEYS, &hash).await? {
            None => Err(Refusal::Invalid),
            Some(record) => check(&tenant, &hash, decode(&record.value)),
        };
        match valid {
            Ok(key) => {
                let identity = Identity {
                    tenant: key.tenant.clone(),
                    subject: key.subject.clone(),
                    scopes: key.scopes.clone(),
                    request_id: request_id.to_owned(),
                };
                self.valid.insert(digest, Arc::new(key));
                Ok(identity)
            }
            Err(refusal) => {
                self.refused.insert(digest, refusal);
                Err(refusal.into())
            }
        }
    }

    fn check_request(&self, name: &str, scopes: &[String], ttl: Duration) -> Result<(), AuthError> {
        let invalid = |m: String| Err(AuthError::InvalidRequest(m));
        if name.is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
            return invalid(format!(
                "name must be 1 to {MAX_NAME_BYTES} bytes without control characters"
            ));
        }
        if scopes.len() > MAX_SCOPES {
            return invalid(format!("at most {MAX_SCOPES} scopes"));
        }
        if scopes.iter().any(|s| {
            s.is_empty()
                || s.len() > MAX_SCOPE_BYTES
                || s.chars().any(|c| c.is_whitespace() || c.is_control())
        }) {
            return invalid(format!(
                "each scope must be 1 to {MAX_SCOPE_BYTES} bytes without spaces"
            ));
        }
        if ttl < Duration::from_secs(1) || ttl > self.config.max_ttl {
            return invalid(format!(
                "ttl must be between 1s and {}s",
                self.config.max_ttl.as_secs()
            ));
        }
        Ok(())
    }

    /// The TTL a record keeps when rewritten: its expiry plus the retention, from now.
    fn remaining_record_ttl(&self, stored: &StoredKey) -> Duration {
        let until = stored
            .expires_at_ms
            .saturating_add(millis(self.config.expired_retention));
        Duration::from_millis(until.saturating_sub(now_ms())).clamp(Duration::from_secs(1), MAX_TTL)
    }
}

/// Decides a stored record against the presented key's tenant and hash.
fn check(tenant: &TenantId, hash: &str, stored: Option<StoredKey>) -> Result<ValidKey, Refusal> {
    let Some(stored) = stored else {
        tracing::warn!(tenant = %tenant, "unreadable API key record");
        return Err(Refusal::Invalid);
    };
    // The store found the record by this hash; comparing again, in constant time, guards
    // against a record filed under the wrong id without leaking how much of it matched.
    let same_hash: bool = stored.hash.as_bytes().ct_eq(hash.as_bytes()).into();
    if !same_hash || stored.tenant != tenant.as_str() {
        return Err(Refusal::Invalid);
    }
    if stored.revoked_at_ms.is_some() {
        return Err(Refusal::Revoked);
    }
    if now_ms() >= stored.expires_at_ms {
        return Err(Refusal::Expired);
    }
    Ok(ValidKey {
        tenant: tenant.clone(),
        subject: format!("apikey:{}", stored.id),
        scopes: stored.scopes,
        expires_at_ms: stored.expires_at_ms,
    })
}

fn new_key_id() -> String {
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    hex::encode(id)
}

fn is_key_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Bytes, AuthError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| AuthError::Store(StoreError::Invalid(e.to_string())))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use gatez_core::store::records::embedded::{EmbeddedRecordConfig, EmbeddedRecordStore};

    use super::*;

    fn t(id: &str) -> TenantId {
        TenantId::new(id).unwrap()
    }

    fn store() -> ApiKeyStore {
        ApiKeyStore::new(
            Arc::new(EmbeddedRecordStore::new(EmbeddedRecordConfig::default())),
            ApiKeyConfig::default(),
        )
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[tokio::test]
    async fn create_then_verify() {
        let s = store();
        let (info, key) = s
            .create(&t("acme"), "ci", vec!["read".into()], DAY)
            .await
            .unwrap();
        let id = s.verify(key.expose(), "r1").await.unwrap();
        assert_eq!(id.tenant, t("acme"));
        assert_eq!(id.subject, format!("apikey:{}", info.id));
        assert_eq!(id.scopes, ["read"]);
        assert_eq!(id.request_id, "r1");
        // Served from the cache the second time, same answer.
        assert_eq!(
            s.verify(key.expose(), "r2").await.unwrap().tenant,
            t("acme")
        );
    }

    #[tokio::test]
    async fn a_key_moved_to_another_tenant_is_invalid() {
        let s = store();
        let (_, key) = s.create(&t("acme"), "ci", vec![], DAY).await.unwrap();
        let forged = key.expose().replacen("gzk_acme_", "gzk_evil_", 1);
        assert!(matches!(
            s.verify(&forged, "r").await,
            Err(AuthError::InvalidApiKey)
        ));
    }

    #[tokio::test]
    async fn bad_requests_are_refused() {
        let s = store();
        for (name, scopes, ttl) in [
            ("", vec![], DAY),
            ("n\n", vec![], DAY),
            ("n", vec!["a b".to_string()], DAY),
            ("n", vec![String::new()], DAY),
            ("n", vec![], Duration::ZERO),
            ("n", vec![], DAY * 400),
        ] {
            assert!(matches!(
                s.create(&t("a"), name, scopes, ttl).await,
                Err(AuthError::InvalidRequest(_))
            ));
        }
    }

    #[tokio::test]
    async fn revoking_takes_effect_at_once_on_this_node_and_is_idempotent() {
        let s = store();
        let (info, key) = s.create(&t("acme"), "ci", vec![], DAY).await.unwrap();
        s.verify(key.expose(), "r").await.unwrap();
        s.revoke(&t("acme"), &info.id).await.unwrap();
        s.revoke(&t("acme"), &info.id).await.unwrap();
        assert!(matches!(
            s.verify(key.expose(), "r").await,
            Err(AuthError::ApiKeyRevoked)
        ));
        let listed = s.list(&t("acme")).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked_at_ms.is_some());
    }

    #[tokio::test]
    async fn unknown_ids_are_not_found() {
        let s = store();
        for id in ["", "zz", &"0".repeat(32), "../x"] {
            assert!(matches!(
                s.revoke(&t("acme"), id).await,
                Err(AuthError::ApiKeyNotFound)
            ));
        }
    }
}
