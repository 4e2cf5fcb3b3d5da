//! The key itself: `gzk_<tenant>_<secret>`, where the secret is 32 random bytes in unpadded
//! base64url (43 characters). The tenant is in the clear so the key's record is looked up in
//! that tenant's scope; the secret is what makes it unguessable. Since tenant ids and
//! base64url both allow `_`, the secret is found by its fixed length from the end.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatez_core::TenantId;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "gzk_";
const SECRET_BYTES: usize = 32;
const SECRET_CHARS: usize = 43;

/// A new key's plaintext: shown to its creator once and never stored.
pub struct PlaintextKey(String);

impl PlaintextKey {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for PlaintextKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlaintextKey(***)")
    }
}

pub fn generate(tenant: &TenantId) -> PlaintextKey {
    let mut secret = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let mut key = String::with_capacity(PREFIX.len() + tenant.as_str().len() + 1 + SECRET_CHARS);
    key.push_str(PREFIX);
    key.push_str(tenant.as_str());
    key.push('_');
    URL_SAFE_NO_PAD.encode_string(secret, &mut key);
    PlaintextKey(key)
}

/// The tenant a presented key claims, if it is shaped like one of our keys.
pub fn parse(presented: &str) -> Option<TenantId> {
    let rest = presented.strip_prefix(PREFIX)?;
    let split = rest.len().checked_sub(SECRET_CHARS + 1)?;
    let (tenant, secret) = (rest.get(..split)?, rest.get(split + 1..)?);
    if rest.as_bytes()[split] != b'_'
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    TenantId::new(tenant).ok()
}

/// What the store knows a key by.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_to_their_tenant() {
        for id in ["acme", "my_tenant-1", "a.b", &"t".repeat(64)] {
            let tenant = TenantId::new(id).unwrap();
            let key = generate(&tenant);
            assert!(key.expose().starts_with(&format!("gzk_{id}_")));
            assert_eq!(key.expose().len(), 4 + id.len() + 1 + 43);
            assert_eq!(parse(key.expose()), Some(tenant));
        }
    }

    #[test]
    fn keys_are_random() {
        let t = TenantId::new("t").unwrap();
        assert_ne!(generate(&t).expose(), generate(&t).expose());
    }

    #[test]
    fn malformed_keys_are_refused() {
        let secret = "A".repeat(43);
        for bad in [
            String::new(),
            "gzk_".into(),
            format!("gzk_{secret}"),
            format!("gzk__{secret}"),
            format!("gzk_acme-{secret}"),
            format!("gzk_a/b_{secret}"),
            format!("gzk_acme_{}", "A".repeat(42)),
            format!("gzk_acme_{}!", "A".repeat(42)),
            format!("xyz_acme_{secret}"),
            "gzk_é_".to_string() + &secret,
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
        assert_eq!(
            parse(&format!("gzk_acme_{secret}")).unwrap().as_str(),
            "acme"
        );
    }

    #[test]
    fn plaintext_is_not_printed() {
        let key = generate(&TenantId::new("t").unwrap());
        assert_eq!(format!("{key:?}"), "PlaintextKey(***)");
    }
}
