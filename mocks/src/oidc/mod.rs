//! An OIDC issuer with Keycloak's URL layout:
//! `/realms/{realm}/.well-known/openid-configuration`,
//! `/realms/{realm}/protocol/openid-connect/certs` and `.../token` (client_credentials and
//! password grants). RS256 and ES256 keys, rotation on demand, a configurable tenant claim.
//! One key set serves every realm of the issuer.

mod endpoints;
pub mod keys;
pub mod realm;
mod token;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::error::MockError;
use crate::record::{RecordedRequest, Recorder, record};
use crate::server::ServerHandle;

pub use keys::{KeyAlg, SigningKey};
pub use realm::{Client, Realm, User};
pub use token::TokenBuilder;

pub const DEFAULT_REALM: &str = "gatez";

#[derive(Debug)]
pub struct IssuerState {
    public_url: RwLock<String>,
    realms: RwLock<realm::Realms>,
    keys: RwLock<keys::KeySet>,
    /// Keys never published, for wrong-key tokens; made on first use.
    strangers: Mutex<HashMap<KeyAlg, SigningKey>>,
    recorder: Recorder,
}

impl IssuerState {
    pub fn issuer_url(&self, realm: &str) -> String {
        format!(
            "{}/realms/{realm}",
            self.public_url.read().expect("url lock")
        )
    }

    fn realm(&self, name: &str) -> Option<realm::Realm> {
        self.realms.read().expect("realms lock").get(name).cloned()
    }

    fn current_key(&self, alg: KeyAlg) -> SigningKey {
        self.keys
            .read()
            .expect("keys lock")
            .current(alg)
            .cloned()
            .expect("the issuer always holds a key of each algorithm")
    }

    fn stranger_key(&self, alg: KeyAlg) -> Result<SigningKey, MockError> {
        let mut strangers = self.strangers.lock().expect("stranger lock");
        if let Some(k) = strangers.get(&alg) {
            return Ok(k.clone());
        }
        let k = match alg {
            KeyAlg::Rs256 => SigningKey::cached_rsa("stranger")?,
            KeyAlg::Es256 => SigningKey::generate(alg)?,
        };
        strangers.insert(alg, k.clone());
        Ok(k)
    }
}

#[derive(Debug)]
pub struct OidcIssuer {
    server: ServerHandle,
    state: Arc<IssuerState>,
}

impl OidcIssuer {
    /// Starts on an ephemeral port with the realm `gatez` (no clients or users yet).
    pub async fn start() -> Self {
        Self::bind(
            crate::server::ephemeral(),
            None,
            vec![Realm::new(DEFAULT_REALM)],
        )
        .await
        .expect("start the OIDC issuer")
    }

    /// `public_url` is the origin tokens name in `iss` (default: `http://ADDR`), for when
    /// the issuer is reached through another name than its listening address.
    pub async fn bind(
        addr: SocketAddr,
        public_url: Option<String>,
        realms: Vec<Realm>,
    ) -> Result<Self, MockError> {
        // RSA generation is CPU-bound (seconds in a debug build): keep it off the runtime.
        let (rs, es) = tokio::task::spawn_blocking(|| {
            Ok::<_, MockError>((
                SigningKey::cached_rsa("initial")?,
                SigningKey::generate(KeyAlg::Es256)?,
            ))
        })
        .await
        .map_err(|e| MockError::KeyGen(e.to_string()))??;
        let mut key_set = keys::KeySet::default();
        key_set.add(rs);
        key_set.add(es);
        let state = Arc::new(IssuerState {
            public_url: RwLock::new(String::new()),
            realms: RwLock::new(realms.into_iter().map(|r| (r.name.clone(), r)).collect()),
            keys: RwLock::new(key_set),
            strangers: Mutex::default(),
            recorder: Recorder::default(),
        });
        let router = Router::new()
            .route(
                "/realms/{realm}/.well-known/openid-configuration",
                get(endpoints::discovery),
            )
            .route(
                "/realms/{realm}/protocol/openid-connect/certs",
                get(endpoints::certs),
            )
            .route(
                "/realms/{realm}/protocol/openid-connect/token",
                post(endpoints::token),
            )
            .layer(axum::middleware::from_fn_with_state(
                state.recorder.clone(),
                record,
            ))
            .with_state(state.clone());
        let server = ServerHandle::serve(addr, router, CancellationToken::new()).await?;
        *state.public_url.write().expect("url lock") = public_url
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| server.origin());
        Ok(Self { server, state })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// `{public url}/realms/{realm}`: the `iss` of the realm's tokens.
    pub fn issuer_url(&self, realm: &str) -> String {
        self.state.issuer_url(realm)
    }

    pub fn jwks_url(&self, realm: &str) -> String {
        format!("{}/protocol/openid-connect/certs", self.issuer_url(realm))
    }

    pub fn token_url(&self, realm: &str) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer_url(realm))
    }

    pub fn add_realm(&self, realm: Realm) {
        self.state
            .realms
            .write()
            .expect("realms lock")
            .insert(realm.name.clone(), realm);
    }

    pub fn add_client(&self, realm: &str, client: Client) -> Result<(), MockError> {
        self.edit_realm(realm, |r| r.clients.push(client))
    }

    pub fn add_user(&self, realm: &str, user: User) -> Result<(), MockError> {
        self.edit_realm(realm, |r| r.users.push(user))
    }

    /// Changes which claim carries the tenant in `realm`'s tokens.
    pub fn set_tenant_claim(&self, realm: &str, claim: &str) -> Result<(), MockError> {
        self.edit_realm(realm, |r| r.tenant_claim = claim.into())
    }

    fn edit_realm(&self, realm: &str, f: impl FnOnce(&mut Realm)) -> Result<(), MockError> {
        let mut realms = self.state.realms.write().expect("realms lock");
        let r = realms
            .get_mut(realm)
            .ok_or_else(|| MockError::UnknownRealm(realm.into()))?;
        f(r);
        Ok(())
    }

    /// A token for `tenant` in the default realm; see [`TokenBuilder`] for the variants.
    pub fn token(&self, tenant: &str) -> TokenBuilder {
        TokenBuilder::new(self.state.clone(), DEFAULT_REALM, tenant)
    }

    /// Makes a new `alg` key the signing key; the old one stays published until retired.
    pub async fn rotate(&self, alg: KeyAlg) -> Result<String, MockError> {
        let key = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
            .await
            .map_err(|e| MockError::KeyGen(e.to_string()))??;
        let kid = key.kid.clone();
        self.state.keys.write().expect("keys lock").add(key);
        Ok(kid)
    }

    /// Removes a key from the JWKS: tokens it signed stop verifying. Refuses the current
    /// key of an algorithm, which the issuer needs to keep signing.
    pub fn retire(&self, kid: &str) -> bool {
        let mut keys = self.state.keys.write().expect("keys lock");
        let current = [KeyAlg::Rs256, KeyAlg::Es256]
            .iter()
            .filter_map(|a| keys.current(*a).map(|k| k.kid.clone()))
            .any(|k| k == kid);
        !current && keys.retire(kid)
    }

    pub fn current_kid(&self, alg: KeyAlg) -> String {
        self.state.current_key(alg).kid
    }

    /// Every published key id, oldest first.
    pub fn kids(&self) -> Vec<String> {
        self.state.keys.read().expect("keys lock").kids()
    }

    pub fn received(&self) -> Vec<RecordedRequest> {
        self.state.recorder.all()
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
