//! An issuer's published keys, parsed once per fetch into ready-to-use verification keys.
//!
//! Each key remembers what it may verify, from its `alg` when the JWK names one, else from its
//! type and curve, so a token can only be checked with a key of the algorithm it claims: an
//! RSA key never verifies an HS256 token (algorithm confusion), an EC key never an RS256 one.

use std::collections::HashMap;
use std::time::Instant;

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// A key that verifies signatures of exactly the algorithms it accepts.
pub struct VerifyKey {
    pub key: DecodingKey,
    kind: KeyKind,
    /// The JWK's own `alg`, when it names one: then only that algorithm.
    alg: Option<Algorithm>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl VerifyKey {
    /// Whether a token claiming `alg` may be verified with this key.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        let by_type = match self.kind {
            KeyKind::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyKind::P256 => alg == Algorithm::ES256,
            KeyKind::P384 => alg == Algorithm::ES384,
            KeyKind::Ed25519 => alg == Algorithm::EdDSA,
        };
        by_type && self.alg.is_none_or(|a| a == alg)
    }
}

/// The usable signing keys of one fetch of a JWKS.
pub struct KeySet {
    by_kid: HashMap<String, VerifyKey>,
    /// Keys published without a `kid` (rare; some issuers with a single key).
    anonymous: Vec<VerifyKey>,
    pub fetched_at: Instant,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// Why a JWKS document could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS is not a JSON object with a `keys` array: {0}")]
    NotJwks(serde_json::Error),
    #[error("JWKS holds no usable signing key")]
    NoUsableKey,
}

impl KeySet {
    /// An empty set: nothing fetched yet.
    pub fn empty() -> Self {
        Self {
            by_kid: HashMap::new(),
            anonymous: Vec::new(),
            fetched_at: Instant::now(),
        }
    }

    /// Parses a JWKS document. Keys we cannot use (encryption keys, symmetric keys, curves
    /// or types we do not support, malformed entries) are skipped one by one, so one odd key
    /// (Keycloak publishes an `RSA-OAEP` encryption key beside its signing keys) does not
    /// hide the others.
    pub fn parse(body: &[u8]) -> Result<Self, JwksError> {
        let raw: RawSet = serde_json::from_slice(body).map_err(JwksError::NotJwks)?;
        let mut set = Self::empty();
        for value in raw.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            let Some(key) = usable(&jwk) else {
                continue;
            };
            match jwk.common.key_id {
                Some(kid) => {
                    set.by_kid.insert(kid, key);
                }
                None => set.anonymous.push(key),
            }
        }
        if set.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty() && self.anonymous.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_kid.len() + self.anonymous.len()
    }

    /// The key for a token's `kid`, or for a token without one the single key that accepts
    /// its algorithm (several would make the choice a guess).
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        match kid {
            Some(kid) => match self.by_kid.get(kid) {
                Some(key) if key.accepts(alg) => Lookup::Found(key),
                Some(_) => Lookup::Mismatch,
                None => Lookup::Unknown,
            },
            None => {
                let mut candidates = self
                    .by_kid
                    .values()
                    .chain(&self.anonymous)
                    .filter(|k| k.accepts(alg));
                match (candidates.next(), candidates.next()) {
                    (Some(key), None) => Lookup::Found(key),
                    _ => Lookup::Unknown,
                }
            }
        }
    }
}

/// Result of looking a key up.
pub enum Lookup<'a> {
    Found(&'a VerifyKey),
    /// The kid names a key of another type or algorithm than the token claims.
    Mismatch,
    Unknown,
}

fn usable(jwk: &Jwk) -> Option<VerifyKey> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return None;
    }
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => KeyKind::P256,
            EllipticCurve::P384 => KeyKind::P384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            KeyKind::Ed25519
        }
        // Symmetric (`oct`) keys never verify anything here, and other types are unknown.
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(named) => Some(signing_alg(named)?),
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyKey { key, kind, alg })
}

/// The signing algorithm a JWK's `alg` names; `None` for encryption and HMAC algorithms,
/// which make the key unusable for us.
fn signing_alg(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // A real 2048-bit modulus is not needed to parse: any base64url works for n/e.
    fn rsa(kid: &str) -> serde_json::Value {
        json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"})
    }

    fn ec(kid: &str) -> serde_json::Value {
        json!({"kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    fn set(keys: Vec<serde_json::Value>) -> Result<KeySet, JwksError> {
        KeySet::parse(&serde_json::to_vec(&json!({ "keys": keys })).unwrap())
    }

    #[test]
    fn keys_verify_only_their_own_algorithm() {
        let s = set(vec![rsa("r"), ec("e")]).unwrap();
        assert!(matches!(
            s.find(Some("r"), Algorithm::RS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            s.find(Some("e"), Algorithm::ES256),
            Lookup::Found(_)
        ));
        // The JWK says RS256: not RS512 even though the type would allow it.
        assert!(matches!(
            s.find(Some("r"), Algorithm::RS512),
            Lookup::Mismatch
        ));
        assert!(matches!(
            s.find(Some("r"), Algorithm::HS256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            s.find(Some("r"), Algorithm::ES256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            s.find(Some("e"), Algorithm::RS256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            s.find(Some("x"), Algorithm::RS256),
            Lookup::Unknown
        ));
    }

    #[test]
    fn key_without_alg_is_bound_by_its_type() {
        let mut k = rsa("r");
        k.as_object_mut().unwrap().remove("alg");
        let s = set(vec![k]).unwrap();
        assert!(matches!(
            s.find(Some("r"), Algorithm::PS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            s.find(Some("r"), Algorithm::HS256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            s.find(Some("r"), Algorithm::EdDSA),
            Lookup::Mismatch
        ));
    }

    #[test]
    fn unusable_keys_are_skipped_not_fatal() {
        let mut enc = rsa("enc");
        enc["use"] = json!("enc");
        enc["alg"] = json!("RSA-OAEP");
        let oct = json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"});
        let broken = json!({"kty": "RSA", "kid": "broken"});
        let s = set(vec![enc, oct, broken, json!("junk"), ec("e")]).unwrap();
        assert_eq!(s.len(), 1);
        assert!(matches!(
            s.find(Some("hmac"), Algorithm::HS256),
            Lookup::Unknown
        ));
        assert!(matches!(
            s.find(Some("enc"), Algorithm::RS256),
            Lookup::Unknown
        ));
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        assert!(matches!(set(vec![]), Err(JwksError::NoUsableKey)));
        assert!(matches!(
            KeySet::parse(b"{\"not\":1}"),
            Err(JwksError::NotJwks(_))
        ));
    }

    #[test]
    fn tokens_without_kid_use_the_only_matching_key() {
        let s = set(vec![rsa("r"), ec("e")]).unwrap();
        assert!(matches!(s.find(None, Algorithm::ES256), Lookup::Found(_)));
        let s = set(vec![rsa("r1"), rsa("r2")]).unwrap();
        assert!(matches!(s.find(None, Algorithm::RS256), Lookup::Unknown));
    }
}
