//! Tokens already verified, so a client reusing its token does not pay for a signature check
//! on every request. Keyed by the SHA-256 of the token (the token itself is never kept), each
//! entry lives until the token's `exp` (plus leeway), and a hit re-checks that against the
//! clock, since eviction is not instantaneous.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::Expiry;
use moka::sync::Cache;
use sha2::{Digest, Sha256};

use super::claims::Principal;

pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// A verified principal and the instant (Unix seconds) after which it is no longer valid.
pub struct Entry {
    pub principal: Principal,
    pub valid_until: u64,
}

impl Entry {
    pub fn is_valid_at(&self, now: u64) -> bool {
        now <= self.valid_until
    }
}

struct UntilExpiry;

impl Expiry<TokenDigest, Arc<Entry>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenDigest,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            value
                .valid_until
                .saturating_sub(unix_now())
                .saturating_add(1),
        ))
    }
}

pub struct VerifiedCache {
    cache: Cache<TokenDigest, Arc<Entry>>,
}

impl VerifiedCache {
    pub fn new(capacity: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExpiry)
                .build(),
        }
    }

    pub fn get(&self, key: &TokenDigest) -> Option<Arc<Entry>> {
        self.cache.get(key)
    }

    pub fn insert(&self, key: TokenDigest, entry: Entry) {
        self.cache.insert(key, Arc::new(entry));
    }

    pub fn remove(&self, key: &TokenDigest) {
        self.cache.invalidate(key);
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use gatez_core::TenantId;

    use super::*;

    fn entry(valid_until: u64) -> Entry {
        Entry {
            principal: Principal {
                tenant: TenantId::new("t").unwrap(),
                subject: "s".into(),
                scopes: vec![],
                exp: valid_until,
            },
            valid_until,
        }
    }

    #[test]
    fn entries_are_keyed_by_digest_and_checked_against_the_clock() {
        let cache = VerifiedCache::new(10);
        let now = unix_now();
        cache.insert(digest("a"), entry(now + 60));
        assert!(cache.get(&digest("a")).unwrap().is_valid_at(now));
        assert!(!cache.get(&digest("a")).unwrap().is_valid_at(now + 61));
        assert!(cache.get(&digest("b")).is_none());
        cache.remove(&digest("a"));
        assert!(cache.get(&digest("a")).is_none());
    }

    #[test]
    fn an_entry_past_its_expiry_is_evicted() {
        let cache = VerifiedCache::new(10);
        cache.insert(digest("old"), entry(unix_now().saturating_sub(5)));
        // Per-entry expiry is 1 s for an already-expired entry.
        std::thread::sleep(Duration::from_millis(1100));
        assert!(cache.get(&digest("old")).is_none());
    }
}
