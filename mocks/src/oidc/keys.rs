//! Signing keys (RS256, ES256) generated at run time with RustCrypto, published as JWKs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::error::MockError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
pub enum KeyAlg {
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
}

impl KeyAlg {
    pub fn jwt(self) -> Algorithm {
        match self {
            KeyAlg::Rs256 => Algorithm::RS256,
            KeyAlg::Es256 => Algorithm::ES256,
        }
    }
}

#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: KeyAlg,
    pub encoding: EncodingKey,
    /// The public half, as a JWK.
    pub jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    pub fn generate(alg: KeyAlg) -> Result<Self, MockError> {
        match alg {
            KeyAlg::Rs256 => Self::rsa(),
            KeyAlg::Es256 => Self::ec(),
        }
    }

    /// An RS256 key for `slot`, reused from the temp dir when an earlier process made one.
    ///
    /// A 2048-bit RSA key takes seconds to generate in an unoptimised build, and every test
    /// process starts an issuer; sharing the start-up keys across processes keeps the suites
    /// fast. Only start-up and wrong-key keys come from here: `rotate` always generates.
    pub fn cached_rsa(slot: &str) -> Result<Self, MockError> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let dir = std::env::temp_dir().join("gatez-mocks-keys-v1");
        let path = dir.join(format!("{slot}.pem"));
        if let Some(key) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|pem| rsa::RsaPrivateKey::from_pkcs1_pem(&pem).ok())
        {
            return Self::from_rsa(&key);
        }
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
            .map_err(|e| MockError::KeyGen(e.to_string()))?;
        // Write-then-rename so a concurrent process never reads half a key.
        let pem = Self::rsa_pem(&key)?;
        let tmp = dir.join(format!("{slot}.{}.tmp", std::process::id()));
        let stored = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&tmp, pem.as_bytes()))
            .and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = stored {
            tracing::debug!(error = %e, "could not cache an RSA key; generating next time too");
        }
        Self::from_rsa(&key)
    }

    fn rsa_pem(key: &rsa::RsaPrivateKey) -> Result<String, MockError> {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .map(|p| p.to_string())
            .map_err(|e| MockError::KeyGen(e.to_string()))
    }

    fn rsa() -> Result<Self, MockError> {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
            .map_err(|e| MockError::KeyGen(e.to_string()))?;
        Self::from_rsa(&key)
    }

    fn from_rsa(key: &rsa::RsaPrivateKey) -> Result<Self, MockError> {
        use rsa::traits::PublicKeyParts;
        let pem = Self::rsa_pem(key)?;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let kid = crate::ids::random_id("rsa-", 16);
        let jwk = json!({
            "kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
        });
        Ok(Self {
            kid,
            alg: KeyAlg::Rs256,
            encoding,
            jwk,
        })
    }

    fn ec() -> Result<Self, MockError> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let pem = secret
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .map_err(|e| MockError::KeyGen(e.to_string()))?;
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes())?;
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(MockError::KeyGen("P-256 point has no coordinates".into()));
        };
        let kid = crate::ids::random_id("ec-", 16);
        let jwk = json!({
            "kid": kid, "kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256",
            "x": b64(x), "y": b64(y),
        });
        Ok(Self {
            kid,
            alg: KeyAlg::Es256,
            encoding,
            jwk,
        })
    }
}

/// The published keys; the newest of each algorithm signs, older ones stay published (as
/// Keycloak keeps passive keys) until retired, so tokens signed before a rotation verify.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<SigningKey>,
}

impl KeySet {
    pub fn add(&mut self, key: SigningKey) {
        self.keys.push(key);
    }

    pub fn current(&self, alg: KeyAlg) -> Option<&SigningKey> {
        self.keys.iter().rev().find(|k| k.alg == alg)
    }

    /// Removes key `kid` from the JWKS; false if unknown.
    pub fn retire(&mut self, kid: &str) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| k.kid != kid);
        self.keys.len() != before
    }

    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }
}
