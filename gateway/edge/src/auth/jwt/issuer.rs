//! One trusted issuer: its cached key set, and the refresh policy that keeps it current
//! without letting clients drive traffic to the issuer.
//!
//! Refreshes happen (a) when a token names a key id we do not hold, (b) in the background
//! before the set reaches `jwks_max_age`. Both go through one async mutex, so concurrent
//! misses cause one fetch (single flight), and every attempt, failed or not, starts the
//! `jwks_refresh_min_interval` during which no other is made: a flood of made-up key ids,
//! or an issuer that is down, costs the issuer at most one request per interval.
//!
//! A failed refresh keeps the previous keys: an issuer outage must not become a gateway
//! outage for tokens signed with keys we already hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::config::JwtIssuerConfig;
use super::fetch::{self, FetchError};
use super::header::{TokenHeader, alg_name};
use super::jwks::{KeySet, Lookup};
use crate::auth::AuthError;

pub type Claims = Map<String, Value>;

pub struct Issuer {
    config: JwtIssuerConfig,
    /// One prepared validation per allowed algorithm: nothing to build per request.
    validations: Vec<(Algorithm, Validation)>,
    client: reqwest::Client,
    keys: ArcSwap<KeySet>,
    /// Whether a key set was ever fetched (an empty set before that is not "no such key").
    loaded: AtomicBool,
    /// Bumped by each successful fetch, so a request that queued behind another's refresh
    /// sees that it need not fetch again.
    generation: AtomicU64,
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    /// The JWKS URL found by discovery; forgotten when a fetch from it fails, so an issuer
    /// that moves its keys is followed.
    discovered_jwks: Option<String>,
}

impl Issuer {
    pub fn new(config: JwtIssuerConfig, client: reqwest::Client) -> Self {
        let validations = config
            .algorithms
            .iter()
            .map(|alg| {
                let alg = alg.jwt();
                let mut v = Validation::new(alg);
                v.set_issuer(&[&config.issuer]);
                v.set_audience(&config.audiences);
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                v.validate_nbf = true;
                v.leeway = config.leeway.as_secs();
                (alg, v)
            })
            .collect();
        Self {
            config,
            validations,
            client,
            keys: ArcSwap::from_pointee(KeySet::empty()),
            loaded: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        }
    }

    pub fn config(&self) -> &JwtIssuerConfig {
        &self.config
    }

    /// Verifies the signature and the registered claims (`iss`, `aud`, `exp`, `nbf`) of a
    /// token whose header was already read, and returns its claims.
    pub async fn verify(&self, token: &str, header: &TokenHeader) -> Result<Claims, AuthError> {
        let validation = self
            .validations
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .map(|(_, v)| v)
            .ok_or(AuthError::AlgorithmNotAllowed(alg_name(header.alg)))?;
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(result) = self.try_verify(token, header, validation) {
            return result;
        }
        self.refresh(Some(generation)).await;
        if !self.loaded.load(Ordering::Acquire) {
            return Err(AuthError::IssuerUnavailable);
        }
        self.try_verify(token, header, validation)
            .unwrap_or(Err(AuthError::UnknownKey))
    }

    /// `None` when we hold no key for the token.
    fn try_verify(
        &self,
        token: &str,
        header: &TokenHeader,
        validation: &Validation,
    ) -> Option<Result<Claims, AuthError>> {
        let keys = self.keys.load();
        let key = match keys.find(header.kid.as_deref(), header.alg) {
            Lookup::Found(key) => key,
            Lookup::Mismatch => return Some(Err(AuthError::AlgorithmMismatch)),
            Lookup::Unknown => return None,
        };
        Some(
            jsonwebtoken::decode::<Claims>(token, &key.key, validation)
                .map(|data| data.claims)
                .map_err(|e| map_error(e.kind())),
        )
    }

    /// Whether the background task should refresh now: never loaded, or nearing max age.
    pub fn refresh_due(&self) -> bool {
        if !self.loaded.load(Ordering::Acquire) {
            return true;
        }
        let age = self.keys.load().fetched_at.elapsed();
        age >= self.config.jwks_max_age.mul_f32(0.75)
    }

    /// Fetches the key set unless another request did since `seen_generation` or an attempt
    /// was made within the minimum interval.
    pub async fn refresh(&self, seen_generation: Option<u64>) {
        let mut state = self.refresh.lock().await;
        if seen_generation.is_some_and(|seen| seen != self.generation.load(Ordering::Acquire)) {
            return;
        }
        if state
            .last_attempt
            .is_some_and(|last| last.elapsed() < self.config.jwks_refresh_min_interval)
        {
            return;
        }
        state.last_attempt = Some(Instant::now());
        match self.fetch(&mut state).await {
            Ok(set) => {
                tracing::debug!(issuer = %self.config.issuer, keys = set.len(), "JWKS refreshed");
                self.keys.store(Arc::new(set));
                self.loaded.store(true, Ordering::Release);
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            Err(e) => tracing::warn!(
                issuer = %self.config.issuer,
                error = %e,
                "could not refresh the issuer's keys; keeping the previous ones"
            ),
        }
    }

    async fn fetch(&self, state: &mut RefreshState) -> Result<KeySet, FetchError> {
        let url = match (&self.config.jwks_uri, &state.discovered_jwks) {
            (Some(url), _) | (None, Some(url)) => url.clone(),
            (None, None) => {
                let Some(discovery) = self.config.discovery_url() else {
                    return Err(FetchError::Discovery {
                        url: String::new(),
                        message: "discovery is off and no jwks_uri is configured".into(),
                    });
                };
                let url = fetch::discover(&self.client, &discovery, &self.config.issuer).await?;
                state.discovered_jwks = Some(url.clone());
                url
            }
        };
        let result = fetch::jwks(&self.client, &url).await;
        if result.is_err() {
            state.discovered_jwks = None;
        }
        result
    }
}

fn map_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::TokenExpired,
        ErrorKind::ImmatureSignature => AuthError::TokenNotYetValid,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::UnknownIssuer,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::AlgorithmMismatch
        }
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => AuthError::MissingClaim("exp"),
            "aud" => AuthError::MissingClaim("aud"),
            _ => AuthError::MissingClaim("iss"),
        },
        _ => AuthError::MalformedToken,
    }
}
