//! Minting access tokens shaped like Keycloak's, including the broken ones tests need:
//! expired, wrong issuer, signed by a key the JWKS does not hold.

use std::sync::Arc;

use jsonwebtoken::Header;
use serde_json::{Map, Value, json};

use super::IssuerState;
use super::keys::{KeyAlg, SigningKey};
use crate::error::MockError;
use crate::ids::{random_id, unix_now};

#[must_use = "a token builder does nothing until `sign`"]
pub struct TokenBuilder {
    state: Arc<IssuerState>,
    realm: String,
    tenant: String,
    subject: String,
    alg: KeyAlg,
    ttl_secs: Option<i64>,
    issuer: Option<String>,
    audience: Option<String>,
    azp: String,
    wrong_key: bool,
    extra: Map<String, Value>,
}

impl TokenBuilder {
    pub(super) fn new(state: Arc<IssuerState>, realm: &str, tenant: &str) -> Self {
        Self {
            state,
            realm: realm.into(),
            tenant: tenant.into(),
            subject: random_id("", 8).to_lowercase(),
            alg: KeyAlg::Rs256,
            ttl_secs: None,
            issuer: None,
            audience: None,
            azp: "gatez-tests".into(),
            wrong_key: false,
            extra: Map::new(),
        }
    }

    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = realm.into();
        self
    }

    pub fn subject(mut self, sub: &str) -> Self {
        self.subject = sub.into();
        self
    }

    pub fn alg(mut self, alg: KeyAlg) -> Self {
        self.alg = alg;
        self
    }

    /// Lifetime from now; negative gives a token that expired that long ago.
    pub fn ttl_secs(mut self, secs: i64) -> Self {
        self.ttl_secs = Some(secs);
        self
    }

    /// Expired an hour ago (well past any clock-skew leeway).
    pub fn expired(self) -> Self {
        self.ttl_secs(-3600)
    }

    /// `iss` other than this issuer's realm URL.
    pub fn issuer(mut self, iss: &str) -> Self {
        self.issuer = Some(iss.into());
        self
    }

    pub fn audience(mut self, aud: &str) -> Self {
        self.audience = Some(aud.into());
        self
    }

    pub fn authorized_party(mut self, azp: &str) -> Self {
        self.azp = azp.into();
        self
    }

    /// Signed by a key the JWKS never published, under the current key's `kid`.
    pub fn wrong_key(mut self) -> Self {
        self.wrong_key = true;
        self
    }

    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    pub fn sign(self) -> Result<String, MockError> {
        let realm = self
            .state
            .realm(&self.realm)
            .ok_or_else(|| MockError::UnknownRealm(self.realm.clone()))?;
        let now = unix_now() as i64;
        let ttl = self.ttl_secs.unwrap_or(realm.token_ttl_secs);
        let mut claims = json!({
            "exp": now + ttl,
            "iat": now.min(now + ttl - 60),
            "jti": uuid::Uuid::new_v4().to_string(),
            "iss": self.issuer.unwrap_or_else(|| self.state.issuer_url(&self.realm)),
            "aud": self.audience.unwrap_or(realm.audience.clone()),
            "sub": self.subject,
            "typ": "Bearer",
            "azp": self.azp,
            "scope": "profile email",
            "preferred_username": self.subject,
        });
        set_path(&mut claims, &realm.tenant_claim, Value::String(self.tenant));
        for (k, v) in self.extra {
            claims[k] = v;
        }
        let current = self.state.current_key(self.alg);
        let key = if self.wrong_key {
            SigningKey {
                kid: current.kid.clone(),
                ..self.state.stranger_key(self.alg)?
            }
        } else {
            current
        };
        let mut header = Header::new(key.alg.jwt());
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &key.encoding)?)
    }
}

/// Sets `value` at a dotted `path`, creating nested objects on the way.
pub(super) fn set_path(target: &mut Value, path: &str, value: Value) {
    let mut node = target;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            node[part] = value;
            return;
        }
        if !node[part].is_object() {
            node[part] = json!({});
        }
        node = &mut node[part];
    }
}
