//! JWT bearer tokens from any OIDC issuer (Keycloak first).
//!
//! The order of checks matters and is deliberate: the header is read first, so `alg: none`
//! and unknown algorithms are refused before anything else; then the verified-token cache;
//! then the unverified `iss` picks the issuer (an unknown one is refused); the issuer's
//! allowed algorithms and the key's own type must both match the header's `alg`
//! (no algorithm confusion); then signature, `iss`, `aud`, `exp` and `nbf` (with leeway);
//! last the tenant, subject and scopes claims.

mod cache;
mod claims;
mod config;
mod fetch;
mod header;
mod issuer;
mod jwks;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use gatez_core::identity::Identity;
use tokio::task::JoinHandle;

pub use config::{Discovery, JwtAlgorithm, JwtConfig, JwtIssuerConfig};
pub use header::MAX_TOKEN_BYTES;

use self::cache::{Entry, VerifiedCache, digest, unix_now};
use self::issuer::Issuer;
use crate::auth::AuthError;

/// The HTTP client for discovery and JWKS could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for JWKS fetches: {0}")]
pub struct JwtSetupError(#[from] reqwest::Error);

/// Verifies JWTs from the configured issuers. Keys are fetched lazily (first token) or by
/// [`prefetch`](Self::prefetch), and refreshed in the background before they reach
/// `jwks_max_age`. Cheap to share behind an `Arc`.
pub struct JwtVerifier {
    inner: Arc<Inner>,
    refresher: JoinHandle<()>,
}

struct Inner {
    issuers: HashMap<String, Arc<Issuer>>,
    cache: VerifiedCache,
}

impl JwtVerifier {
    /// Builds the verifier and starts its background refresher. The config should have
    /// passed validation.
    ///
    /// # Panics
    /// Outside a Tokio runtime (the refresher is a Tokio task).
    pub fn new(config: JwtConfig) -> Result<Self, JwtSetupError> {
        let client = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("gatez-edge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let tick = config
            .issuers
            .iter()
            .map(|i| (i.jwks_max_age / 8).min(i.jwks_refresh_min_interval))
            .min()
            .unwrap_or(Duration::from_secs(30))
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        let issuers = config
            .issuers
            .into_iter()
            .map(|c| (c.issuer.clone(), Arc::new(Issuer::new(c, client.clone()))))
            .collect();
        let inner = Arc::new(Inner {
            issuers,
            cache: VerifiedCache::new(config.verified_cache_capacity),
        });
        let refresher = tokio::spawn(refresh_until_dropped(Arc::downgrade(&inner), tick));
        Ok(Self { inner, refresher })
    }

    /// Fetches every issuer's keys now (at start-up, so the first requests do not wait).
    /// Failures are logged and retried in the background; they do not fail start-up, so
    /// an issuer outage does not keep the gateway down.
    pub async fn prefetch(&self) {
        let mut all = tokio::task::JoinSet::new();
        for issuer in self.inner.issuers.values() {
            let issuer = Arc::clone(issuer);
            all.spawn(async move { issuer.refresh(None).await });
        }
        all.join_all().await;
    }

    /// Verifies `token` and returns the caller's identity, tagged with `request_id`.
    pub async fn verify(&self, token: &str, request_id: &str) -> Result<Identity, AuthError> {
        let parts = header::split(token)?;
        let token_header = header::parse_header(parts.header)?;
        let key = digest(token);
        if let Some(hit) = self.inner.cache.get(&key) {
            if !hit.is_valid_at(unix_now()) {
                self.inner.cache.remove(&key);
                return Err(AuthError::TokenExpired);
            }
            return Ok(identity(&hit.principal, request_id));
        }
        let iss = header::unverified_issuer(parts.payload)?;
        let issuer = self
            .inner
            .issuers
            .get(&iss)
            .ok_or(AuthError::UnknownIssuer)?;
        let claims = issuer.verify(token, &token_header).await?;
        let principal = claims::principal(&claims, issuer.config())?;
        let out = identity(&principal, request_id);
        let valid_until = principal
            .exp
            .saturating_add(issuer.config().leeway.as_secs());
        self.inner.cache.insert(
            key,
            Entry {
                principal,
                valid_until,
            },
        );
        Ok(out)
    }
}

impl Drop for JwtVerifier {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

fn identity(p: &claims::Principal, request_id: &str) -> Identity {
    Identity {
        tenant: p.tenant.clone(),
        subject: p.subject.clone(),
        scopes: p.scopes.clone(),
        request_id: request_id.to_owned(),
    }
}

async fn refresh_until_dropped(inner: Weak<Inner>, tick: Duration) {
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let due: Vec<_> = inner
            .issuers
            .values()
            .filter(|i| i.refresh_due())
            .cloned()
            .collect();
        drop(inner);
        for issuer in due {
            issuer.refresh(None).await;
        }
    }
}
