//! Ed25519 key material for identity assertions: generated, or read from PEM (PKCS#8 for the
//! private key, SPKI for public keys) as `openssl genpkey -algorithm ed25519` writes them.

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Why key material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 private key in PKCS#8 PEM: {0}")]
    BadPrivateKey(String),
    #[error("not an Ed25519 public key in SPKI PEM: {0}")]
    BadPublicKey(String),
}

/// A signing key pair and its key id.
#[derive(Clone)]
pub struct KeyPair {
    pub(crate) signing: SigningKey,
    pub kid: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A fresh random key pair (for `gatez up`, where all layers share one process, and tests).
    pub fn generate() -> Self {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        Self::from_signing(signing)
    }

    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let signing =
            SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        Ok(Self::from_signing(signing))
    }

    fn from_signing(signing: SigningKey) -> Self {
        let kid = key_id(&signing.verifying_key());
        Self { signing, kid }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: self.signing.verifying_key(),
            kid: self.kid.clone(),
        }
    }

    /// PKCS#8 PEM of the private key (for `gatez keygen`).
    pub fn to_pkcs8_pem(&self) -> String {
        self.signing
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .unwrap_or_default()
    }

    pub(crate) fn pkcs8_der(&self) -> Vec<u8> {
        self.signing
            .to_pkcs8_der()
            .map(|doc| doc.as_bytes().to_vec())
            .unwrap_or_default()
    }
}

/// A verification key and its key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub(crate) key: VerifyingKey,
    pub kid: String,
}

impl PublicKey {
    pub fn from_spki_pem(pem: &str) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem)
            .map_err(|e| KeyError::BadPublicKey(e.to_string()))?;
        Ok(Self {
            kid: key_id(&key),
            key,
        })
    }

    pub fn to_spki_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }
}

/// The key id is derived from the public key, so signer and verifiers agree on it without
/// configuring it twice.
fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}
