//! What the store holds about a key (never the key), and what listings show.

use serde::{Deserialize, Serialize};

/// The record of one key, stored under the SHA-256 hex of the key in its tenant's scope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// SHA-256 hex of the key, compared in constant time with the presented key's.
    pub hash: String,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    #[serde(default)]
    pub revoked_at_ms: Option<u64>,
}

/// Maps a key id to its record (revocation is by id; the record is found by hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyIndex {
    pub hash: String,
}

/// A key as listings show it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyInfo {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub revoked_at_ms: Option<u64>,
}

impl From<StoredKey> for ApiKeyInfo {
    fn from(s: StoredKey) -> Self {
        Self {
            id: s.id,
            tenant: s.tenant,
            name: s.name,
            scopes: s.scopes,
            created_at_ms: s.created_at_ms,
            expires_at_ms: s.expires_at_ms,
            revoked_at_ms: s.revoked_at_ms,
        }
    }
}
