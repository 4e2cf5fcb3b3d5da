//! What a Gatez process builds once at start and every layer shares: the identity kit and the
//! stores, built from config.

use std::sync::Arc;

use crate::config::{GatezConfig, IdentityConfig};
use crate::http::ReadinessCheck;
use crate::identity::assertion::{
    AUDIENCE_AGENT, AUDIENCE_AI, AUDIENCE_EDGE, AssertionSigner, AssertionVerifier,
};
use crate::identity::keys::{KeyError, KeyPair, PublicKey};
use crate::store::StoreError;
use crate::stores::Stores;

/// Why the runtime could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("identity key: {0}")]
    Key(#[from] KeyError),
    #[error("cannot read trusted key {path}: {source}")]
    ReadKey {
        path: String,
        source: std::io::Error,
    },
    #[error("stores: {0}")]
    Store(#[from] StoreError),
}

/// Signs assertions for the next layer and verifies the ones this process receives.
#[derive(Clone)]
pub struct IdentityKit {
    pub signer: AssertionSigner,
    /// Verifier for each audience, so a token minted for one layer never opens another.
    pub edge: AssertionVerifier,
    pub ai: AssertionVerifier,
    pub agent: AssertionVerifier,
}

impl IdentityKit {
    pub fn from_config(cfg: &IdentityConfig) -> Result<Self, RuntimeError> {
        let pair = match &cfg.signing_key {
            Some(pem) => KeyPair::from_pkcs8_pem(pem.expose())?,
            None => {
                tracing::warn!(
                    "identity.signing_key is not set: using a key generated for this process; \
                     layers running in other processes will not trust its assertions"
                );
                KeyPair::generate()
            }
        };
        let mut trusted = vec![pair.public()];
        for path in &cfg.trusted_keys {
            let pem = std::fs::read_to_string(path).map_err(|source| RuntimeError::ReadKey {
                path: path.display().to_string(),
                source,
            })?;
            trusted.push(PublicKey::from_spki_pem(&pem)?);
        }
        let verifier = |aud| AssertionVerifier::new(&trusted, &cfg.issuer, aud, cfg.ttl);
        Ok(Self {
            signer: AssertionSigner::new(&pair, cfg.issuer.clone(), cfg.ttl),
            edge: verifier(AUDIENCE_EDGE),
            ai: verifier(AUDIENCE_AI),
            agent: verifier(AUDIENCE_AGENT),
        })
    }
}

/// The shared state of a process.
pub struct Runtime {
    pub identity: IdentityKit,
    pub stores: Stores,
}

impl Runtime {
    pub async fn build(config: &GatezConfig) -> Result<Arc<Self>, RuntimeError> {
        Ok(Arc::new(Self {
            identity: IdentityKit::from_config(&config.identity)?,
            stores: Stores::build(&config.stores).await?,
        }))
    }

    /// Readiness of the stores this process depends on.
    pub fn readiness_checks(&self) -> Vec<Arc<dyn ReadinessCheck>> {
        self.stores.readiness_checks()
    }

    /// Flushes what must not be lost (the event sink) before the process exits.
    pub async fn shutdown(&self) {
        if let Err(e) = self.stores.events.shutdown().await {
            tracing::error!(error = %e, "event sink did not shut down cleanly");
        }
    }
}
