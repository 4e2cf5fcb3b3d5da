//! Per-route authentication: which credentials a route accepts, and checking them.

use std::sync::Arc;

use gatez_core::identity::Identity;
use http::HeaderMap;
use serde::Deserialize;

use super::AuthError;
use super::api_key::ApiKeyStore;
use super::credentials::{self, Credential};
use super::jwt::JwtVerifier;

/// What a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// A JWT from a trusted issuer.
    Jwt,
    /// A gateway-issued API key.
    ApiKey,
    /// Either of them.
    Either,
    /// No authentication: credentials, if any, are not looked at.
    None,
}

/// Authenticates requests with whichever verifiers this gateway has configured.
#[derive(Clone, Default)]
pub struct Authenticator {
    jwt: Option<Arc<JwtVerifier>>,
    api_keys: Option<Arc<ApiKeyStore>>,
}

impl Authenticator {
    pub fn new(jwt: Option<Arc<JwtVerifier>>, api_keys: Option<Arc<ApiKeyStore>>) -> Self {
        Self { jwt, api_keys }
    }

    /// Whether a route with `mode` can ever succeed here; check it when loading routes, so
    /// a route that needs JWTs on a gateway without issuers is a config error, not a 500.
    pub fn supports(&self, mode: AuthMode) -> bool {
        match mode {
            AuthMode::Jwt => self.jwt.is_some(),
            AuthMode::ApiKey => self.api_keys.is_some(),
            AuthMode::Either => self.jwt.is_some() || self.api_keys.is_some(),
            AuthMode::None => true,
        }
    }

    /// The caller's identity, `None` only for [`AuthMode::None`].
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        mode: AuthMode,
        request_id: &str,
    ) -> Result<Option<Identity>, AuthError> {
        if mode == AuthMode::None {
            return Ok(None);
        }
        let credential = credentials::extract(headers)?.ok_or(AuthError::MissingCredentials)?;
        let identity = match credential {
            Credential::Jwt(token) => {
                if mode == AuthMode::ApiKey {
                    return Err(AuthError::CredentialNotAccepted("JWT bearer tokens"));
                }
                let jwt = self.jwt.as_ref().ok_or(match mode {
                    AuthMode::Jwt => AuthError::NotConfigured("JWT verification"),
                    _ => AuthError::CredentialNotAccepted("JWT bearer tokens"),
                })?;
                jwt.verify(token, request_id).await?
            }
            Credential::ApiKey(key) => {
                if mode == AuthMode::Jwt {
                    return Err(AuthError::CredentialNotAccepted("API keys"));
                }
                let keys = self.api_keys.as_ref().ok_or(match mode {
                    AuthMode::ApiKey => AuthError::NotConfigured("API key verification"),
                    _ => AuthError::CredentialNotAccepted("API keys"),
                })?;
                keys.verify(key, request_id).await?
            }
        };
        Ok(Some(identity))
    }
}

#[cfg(test)]
mod tests {
    use gatez_core::store::records::embedded::{EmbeddedRecordConfig, EmbeddedRecordStore};
    use http::HeaderValue;

    use super::*;
    use crate::auth::api_key::ApiKeyConfig;

    fn keys() -> Arc<ApiKeyStore> {
        Arc::new(ApiKeyStore::new(
            Arc::new(EmbeddedRecordStore::new(EmbeddedRecordConfig::default())),
            ApiKeyConfig::default(),
        ))
    }

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[tokio::test]
    async fn mode_none_ignores_everything() {
        let a = Authenticator::default();
        let h = with("authorization", "Bearer garbage");
        assert_eq!(a.authenticate(&h, AuthMode::None, "r").await.unwrap(), None);
    }

    #[tokio::test]
    async fn missing_credentials() {
        let a = Authenticator::new(None, Some(keys()));
        for mode in [AuthMode::ApiKey, AuthMode::Either] {
            assert!(matches!(
                a.authenticate(&HeaderMap::new(), mode, "r").await,
                Err(AuthError::MissingCredentials)
            ));
        }
    }

    #[tokio::test]
    async fn api_keys_by_either_header_and_mode_gating() {
        let store = keys();
        let tenant = gatez_core::TenantId::new("acme").unwrap();
        let (_, key) = store
            .create(&tenant, "k", vec![], std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let a = Authenticator::new(None, Some(store));
        let bearer = with("authorization", &format!("Bearer {}", key.expose()));
        let header = with("x-api-key", key.expose());
        for (h, mode) in [
            (&bearer, AuthMode::ApiKey),
            (&header, AuthMode::ApiKey),
            (&header, AuthMode::Either),
        ] {
            let id = a.authenticate(h, mode, "req-9").await.unwrap().unwrap();
            assert_eq!(id.tenant, tenant);
            assert_eq!(id.request_id, "req-9");
        }
        assert!(matches!(
            a.authenticate(&header, AuthMode::Jwt, "r").await,
            Err(AuthError::CredentialNotAccepted("API keys"))
        ));
        // A JWT on a gateway without issuers: refused on an `either` route, a config
        // error on a `jwt` route.
        let jwt = with("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig");
        assert!(matches!(
            a.authenticate(&jwt, AuthMode::Either, "r").await,
            Err(AuthError::CredentialNotAccepted(_))
        ));
        assert!(matches!(
            a.authenticate(&jwt, AuthMode::Jwt, "r").await,
            Err(AuthError::NotConfigured(_))
        ));
        assert!(matches!(
            a.authenticate(&jwt, AuthMode::ApiKey, "r").await,
            Err(AuthError::CredentialNotAccepted(_))
        ));
        assert!(a.supports(AuthMode::ApiKey) && !a.supports(AuthMode::Jwt));
    }

    #[test]
    fn modes_parse_from_config() {
        let m: Vec<AuthMode> = serde_yaml_ng::from_str("[jwt, api_key, either, none]").unwrap();
        assert_eq!(
            m,
            [
                AuthMode::Jwt,
                AuthMode::ApiKey,
                AuthMode::Either,
                AuthMode::None
            ]
        );
    }
}
