//! The internal identity assertion: a short-lived EdDSA-signed JWT that L1 issues for each
//! request it forwards, and that L2 and L3 verify instead of trusting any tenant header.
//!
//! Only `EdDSA` is accepted: the algorithm is checked before anything else, so `alg: none`,
//! HMAC-with-the-public-key confusion and every other algorithm are refused up front.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Identity;
use super::keys::{KeyPair, PublicKey};
use crate::tenant::{InvalidTenantId, TenantId};

/// The header that carries the assertion between layers. L1 strips any client-sent copy.
pub const IDENTITY_HEADER: &str = "x-gatez-identity";

/// Audiences: the layer an assertion is meant for. A token for L2 does not open L3.
pub const AUDIENCE_AI: &str = "gatez-ai";
pub const AUDIENCE_AGENT: &str = "gatez-agent";
pub const AUDIENCE_EDGE: &str = "gatez-edge";

/// Tokens larger than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why an assertion was refused (or could not be made).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssertionError {
    #[error("identity assertion is malformed")]
    Malformed,
    #[error("identity assertion is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("identity assertion algorithm {0:?} is not allowed (only EdDSA)")]
    AlgorithmNotAllowed(String),
    #[error("identity assertion is signed by an unknown key")]
    UnknownKey,
    #[error("identity assertion signature is invalid")]
    BadSignature,
    #[error("identity assertion has expired")]
    Expired,
    #[error("identity assertion is not valid yet")]
    NotYetValid,
    #[error("identity assertion is for another audience")]
    WrongAudience,
    #[error("identity assertion is from an untrusted issuer")]
    WrongIssuer,
    #[error("identity assertion lives longer than the allowed {0:?}")]
    TooLongLived(Duration),
    #[error("identity assertion names an invalid tenant: {0}")]
    InvalidTenant(#[from] InvalidTenantId),
    #[error("could not sign identity assertion: {0}")]
    Signing(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    /// Tenant id.
    tid: String,
    /// Space-separated scopes, as in OAuth.
    #[serde(default)]
    scope: String,
    /// Request id.
    rid: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// Issues assertions (L1, or any layer that authenticated a client itself).
#[derive(Clone)]
pub struct AssertionSigner {
    key: EncodingKey,
    kid: String,
    issuer: String,
    ttl: Duration,
}

impl AssertionSigner {
    pub fn new(pair: &KeyPair, issuer: impl Into<String>, ttl: Duration) -> Self {
        Self {
            key: EncodingKey::from_ed_der(&pair.pkcs8_der()),
            kid: pair.kid.clone(),
            issuer: issuer.into(),
            ttl,
        }
    }

    /// Signs `identity` for `audience`, valid from now for the signer's TTL.
    pub fn sign(&self, identity: &Identity, audience: &str) -> Result<String, AssertionError> {
        self.sign_at(identity, audience, SystemTime::now())
    }

    /// As [`sign`](Self::sign), as of `now` (tests use it to mint expired tokens).
    pub fn sign_at(
        &self,
        identity: &Identity,
        audience: &str,
        now: SystemTime,
    ) -> Result<String, AssertionError> {
        let iat = unix_secs(now);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: audience.to_owned(),
            sub: identity.subject.clone(),
            tid: identity.tenant.as_str().to_owned(),
            scope: identity.scopes.join(" "),
            rid: identity.request_id.clone(),
            iat,
            nbf: iat,
            exp: iat + self.ttl.as_secs().max(1),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| AssertionError::Signing(e.to_string()))
    }
}

/// Verifies assertions (L2, L3).
#[derive(Clone)]
pub struct AssertionVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
    max_ttl: Duration,
}

impl AssertionVerifier {
    /// Trusts tokens signed by any of `keys` (several during a key rotation), issued by
    /// `issuer`, for `audience`, living at most `max_ttl`.
    pub fn new(keys: &[PublicKey], issuer: &str, audience: &str, max_ttl: Duration) -> Self {
        let keys = keys
            .iter()
            .map(|k| (k.kid.clone(), DecodingKey::from_ed_der(k.key.as_bytes())))
            .collect();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        // Layers run on hosts whose clocks may differ slightly; the TTL is short, so the
        // leeway is too.
        validation.leeway = 5;
        Self {
            keys,
            validation,
            max_ttl,
        }
    }

    pub fn verify(&self, token: &str) -> Result<Identity, AssertionError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AssertionError::TooLarge);
        }
        let kid = check_header(token)?;
        let key = self.keys.get(&kid).ok_or(AssertionError::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| map_jwt_error(e.kind()))?;
        let claims = data.claims;
        if claims.exp.saturating_sub(claims.iat) > self.max_ttl.as_secs() {
            return Err(AssertionError::TooLongLived(self.max_ttl));
        }
        Ok(Identity {
            tenant: TenantId::new(&claims.tid)?,
            subject: claims.sub,
            scopes: claims
                .scope
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect(),
            request_id: claims.rid,
        })
    }
}

/// Reads the JOSE header ourselves, so the algorithm is refused with a precise error before
/// any key is chosen, and returns the key id.
fn check_header(token: &str) -> Result<String, AssertionError> {
    #[derive(Deserialize)]
    struct RawHeader {
        alg: String,
        kid: Option<String>,
    }
    let encoded = token.split('.').next().ok_or(AssertionError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| AssertionError::Malformed)?;
    let header: RawHeader =
        serde_json::from_slice(&bytes).map_err(|_| AssertionError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(AssertionError::AlgorithmNotAllowed(header.alg));
    }
    header.kid.ok_or(AssertionError::UnknownKey)
}

fn map_jwt_error(kind: &ErrorKind) -> AssertionError {
    match kind {
        ErrorKind::ExpiredSignature => AssertionError::Expired,
        ErrorKind::ImmatureSignature => AssertionError::NotYetValid,
        ErrorKind::InvalidAudience => AssertionError::WrongAudience,
        ErrorKind::InvalidIssuer => AssertionError::WrongIssuer,
        ErrorKind::InvalidSignature => AssertionError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AssertionError::AlgorithmNotAllowed("?".into())
        }
        _ => AssertionError::Malformed,
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "gatez-edge";
    const TTL: Duration = Duration::from_secs(60);

    fn identity() -> Identity {
        Identity {
            tenant: TenantId::new("acme").unwrap(),
            subject: "alice".into(),
            scopes: vec!["chat".into(), "tools".into()],
            request_id: "req-1".into(),
        }
    }

    fn setup() -> (AssertionSigner, AssertionVerifier, KeyPair) {
        let pair = KeyPair::generate();
        let signer = AssertionSigner::new(&pair, ISS, TTL);
        let verifier = AssertionVerifier::new(&[pair.public()], ISS, AUDIENCE_AI, TTL);
        (signer, verifier, pair)
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn round_trip() {
        let (signer, verifier, _) = setup();
        let token = signer.sign(&identity(), AUDIENCE_AI).unwrap();
        assert_eq!(verifier.verify(&token).unwrap(), identity());
    }

    #[test]
    fn expired_is_refused() {
        let (signer, verifier, _) = setup();
        let past = SystemTime::now() - Duration::from_secs(3600);
        let token = signer.sign_at(&identity(), AUDIENCE_AI, past).unwrap();
        assert_eq!(verifier.verify(&token), Err(AssertionError::Expired));
    }

    #[test]
    fn future_is_refused() {
        let (signer, verifier, _) = setup();
        let future = SystemTime::now() + Duration::from_secs(3600);
        let token = signer.sign_at(&identity(), AUDIENCE_AI, future).unwrap();
        assert_eq!(verifier.verify(&token), Err(AssertionError::NotYetValid));
    }

    #[test]
    fn wrong_audience_is_refused() {
        let (signer, verifier, _) = setup();
        let token = signer.sign(&identity(), AUDIENCE_AGENT).unwrap();
        assert_eq!(verifier.verify(&token), Err(AssertionError::WrongAudience));
    }

    #[test]
    fn wrong_issuer_is_refused() {
        let (_, verifier, pair) = setup();
        let other = AssertionSigner::new(&pair, "someone-else", TTL);
        let token = other.sign(&identity(), AUDIENCE_AI).unwrap();
        assert_eq!(verifier.verify(&token), Err(AssertionError::WrongIssuer));
    }

    #[test]
    fn wrong_key_is_refused() {
        let (_, verifier, _) = setup();
        let stranger = AssertionSigner::new(&KeyPair::generate(), ISS, TTL);
        let token = stranger.sign(&identity(), AUDIENCE_AI).unwrap();
        assert_eq!(verifier.verify(&token), Err(AssertionError::UnknownKey));
    }

    #[test]
    fn wrong_key_with_trusted_kid_is_refused() {
        // An attacker who copies a trusted kid into a token signed with their own key.
        let (signer, verifier, pair) = setup();
        let stranger = KeyPair::generate();
        let forged = AssertionSigner {
            kid: pair.kid.clone(),
            ..AssertionSigner::new(&stranger, ISS, TTL)
        };
        let token = forged.sign(&identity(), AUDIENCE_AI).unwrap();
        assert_eq!(verifier.verify(&token), Err(AssertionError::BadSignature));
        drop(signer);
    }

    #[test]
    fn alg_none_is_refused() {
        let (signer, verifier, pair) = setup();
        let good = signer.sign(&identity(), AUDIENCE_AI).unwrap();
        let payload = good.split('.').nth(1).unwrap();
        let header = b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": pair.kid}));
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert_eq!(
                verifier.verify(&token),
                Err(AssertionError::AlgorithmNotAllowed("none".into()))
            );
        }
    }

    #[test]
    fn hmac_confusion_is_refused() {
        // HS256 "signed" with the public key, the classic algorithm-confusion attack.
        let (_, verifier, pair) = setup();
        let key = EncodingKey::from_secret(pair.public().to_spki_pem().as_bytes());
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(pair.kid.clone());
        let now = unix_secs(SystemTime::now());
        let claims = Claims {
            iss: ISS.into(),
            aud: AUDIENCE_AI.into(),
            sub: "mallory".into(),
            tid: "acme".into(),
            scope: String::new(),
            rid: "r".into(),
            iat: now,
            nbf: now,
            exp: now + 30,
        };
        let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        assert_eq!(
            verifier.verify(&token),
            Err(AssertionError::AlgorithmNotAllowed("HS256".into()))
        );
    }

    #[test]
    fn tampered_payload_is_refused() {
        let (signer, verifier, _) = setup();
        let token = signer.sign(&identity(), AUDIENCE_AI).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_claims = b64(&serde_json::json!({
            "iss": ISS, "aud": AUDIENCE_AI, "sub": "alice", "tid": "other-tenant",
            "scope": "", "rid": "req-1", "iat": 0, "nbf": 0, "exp": u32::MAX,
        }));
        parts[1] = &forged_claims;
        assert_eq!(
            verifier.verify(&parts.join(".")),
            Err(AssertionError::BadSignature)
        );
    }

    #[test]
    fn long_lived_tokens_are_refused() {
        let pair = KeyPair::generate();
        let signer = AssertionSigner::new(&pair, ISS, Duration::from_secs(86_400));
        let verifier = AssertionVerifier::new(&[pair.public()], ISS, AUDIENCE_AI, TTL);
        let token = signer.sign(&identity(), AUDIENCE_AI).unwrap();
        assert_eq!(
            verifier.verify(&token),
            Err(AssertionError::TooLongLived(TTL))
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let (_, verifier, _) = setup();
        for token in [
            "",
            ".",
            "..",
            "a.b.c",
            "!!!.???.***",
            "eyJhbGciOiJFZERTQSJ9",
        ] {
            assert!(verifier.verify(token).is_err(), "{token:?}");
        }
        assert_eq!(
            verifier.verify(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(AssertionError::TooLarge)
        );
    }

    #[test]
    fn rotation_accepts_both_keys() {
        let old = KeyPair::generate();
        let new = KeyPair::generate();
        let verifier = AssertionVerifier::new(&[old.public(), new.public()], ISS, AUDIENCE_AI, TTL);
        for pair in [&old, &new] {
            let token = AssertionSigner::new(pair, ISS, TTL)
                .sign(&identity(), AUDIENCE_AI)
                .unwrap();
            assert!(verifier.verify(&token).is_ok());
        }
    }

    #[test]
    fn pem_round_trip_keeps_kid() {
        let pair = KeyPair::generate();
        let again = KeyPair::from_pkcs8_pem(&pair.to_pkcs8_pem()).unwrap();
        assert_eq!(again.kid, pair.kid);
        let public = PublicKey::from_spki_pem(&pair.public().to_spki_pem()).unwrap();
        assert_eq!(public, pair.public());
        assert!(KeyPair::from_pkcs8_pem("not a key").is_err());
    }
}
