//! Why a request was not authenticated, and how that reads to the client.
//!
//! Statuses follow what users expect: anything wrong with the credential itself is 401 with a
//! `WWW-Authenticate: Bearer` challenge (RFC 6750); a valid credential that cannot be used
//! (no tenant in the token) is 403; an issuer or key store we cannot reach is 503, because
//! the client did nothing wrong. Messages are fixed texts: they never echo a token, a key, or
//! a claim value.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use gatez_core::http::ApiError;
use gatez_core::store::StoreError;
use http::{HeaderValue, StatusCode, header};

/// An authentication failure. Map it to HTTP with [`IntoResponse`] (JSON body plus the
/// `WWW-Authenticate` challenge) or, where only the body shape matters, [`ApiError::from`].
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials: send `Authorization: Bearer <token>` or `x-api-key`")]
    MissingCredentials,
    #[error("more than one credential was sent; send exactly one")]
    AmbiguousCredentials,
    #[error("this route does not accept {0}")]
    CredentialNotAccepted(&'static str),
    #[error("{0} is not configured on this gateway")]
    NotConfigured(&'static str),

    #[error("token is malformed")]
    MalformedToken,
    #[error("unsigned tokens (alg: none) are refused")]
    AlgorithmNone,
    #[error("token algorithm {0} is not allowed for this issuer")]
    AlgorithmNotAllowed(&'static str),
    #[error("token algorithm does not match the type of its signing key")]
    AlgorithmMismatch,
    #[error("token issuer is not trusted")]
    UnknownIssuer,
    #[error("token is signed by a key the issuer does not publish")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    TokenExpired,
    #[error("token is not valid yet")]
    TokenNotYetValid,
    #[error("token is not meant for this audience")]
    WrongAudience,
    #[error("token lacks the required claim `{0}`")]
    MissingClaim(&'static str),
    #[error("token has no subject")]
    MissingSubject,
    #[error("token carries no tenant")]
    MissingTenant,
    #[error("token names an invalid tenant")]
    InvalidTenant,
    #[error("the token issuer cannot be reached to fetch its keys")]
    IssuerUnavailable,

    #[error("API key is invalid")]
    InvalidApiKey,
    #[error("API key has been revoked")]
    ApiKeyRevoked,
    #[error("API key has expired")]
    ApiKeyExpired,
    #[error("no API key with this id")]
    ApiKeyNotFound,
    #[error("invalid API key request: {0}")]
    InvalidRequest(String),
    /// The key store failed; the request fails closed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::AmbiguousCredentials | AuthError::InvalidRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            AuthError::MissingTenant | AuthError::InvalidTenant => StatusCode::FORBIDDEN,
            AuthError::ApiKeyNotFound => StatusCode::NOT_FOUND,
            AuthError::NotConfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AuthError::IssuerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Store(e) if !matches!(e, StoreError::Invalid(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AuthError::Store(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The stable, machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "missing_credentials",
            AuthError::AmbiguousCredentials | AuthError::InvalidRequest(_) => "invalid_request",
            AuthError::CredentialNotAccepted(_) => "credentials_not_accepted",
            AuthError::NotConfigured(_) => "auth_not_configured",
            AuthError::TokenExpired => "token_expired",
            AuthError::MalformedToken
            | AuthError::AlgorithmNone
            | AuthError::AlgorithmNotAllowed(_)
            | AuthError::AlgorithmMismatch
            | AuthError::UnknownIssuer
            | AuthError::UnknownKey
            | AuthError::BadSignature
            | AuthError::TokenNotYetValid
            | AuthError::WrongAudience
            | AuthError::MissingClaim(_)
            | AuthError::MissingSubject => "invalid_token",
            AuthError::MissingTenant => "missing_tenant",
            AuthError::InvalidTenant => "invalid_tenant",
            AuthError::IssuerUnavailable => "auth_unavailable",
            AuthError::InvalidApiKey => "invalid_api_key",
            AuthError::ApiKeyRevoked => "api_key_revoked",
            AuthError::ApiKeyExpired => "api_key_expired",
            AuthError::ApiKeyNotFound => "not_found",
            AuthError::Store(_) => "store_unavailable",
        }
    }

    /// The RFC 6750 challenge for a 401: `error="invalid_token"` when a credential was sent
    /// and refused, a bare challenge when none was sent (the RFC's advice: do not tell a
    /// client that sent nothing about errors).
    fn challenge(&self) -> Option<&'static str> {
        if self.status() != StatusCode::UNAUTHORIZED {
            return None;
        }
        Some(match self {
            AuthError::MissingCredentials | AuthError::CredentialNotAccepted(_) => {
                r#"Bearer realm="gatez""#
            }
            _ => r#"Bearer realm="gatez", error="invalid_token""#,
        })
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            // The store's own mapping keeps backend details (hosts, keys) out of the body.
            AuthError::Store(store) => ApiError::from(store),
            AuthError::IssuerUnavailable => {
                tracing::debug!("token issuer unavailable surfaced to a client");
                ApiError::new(e.status(), e.code(), e.to_string())
                    .with_retry_after(Duration::from_secs(1))
            }
            other => ApiError::new(other.status(), other.code(), other.to_string()),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let challenge = self.challenge();
        let mut response = ApiError::from(self).into_response();
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn token_problems_are_401_with_an_invalid_token_challenge() {
        let r = AuthError::BadSignature.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="gatez", error="invalid_token""#
        );
        assert_eq!(body(r).await["error"]["code"], "invalid_token");
    }

    #[tokio::test]
    async fn no_credentials_is_a_bare_challenge() {
        let r = AuthError::MissingCredentials.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="gatez""#
        );
    }

    #[tokio::test]
    async fn a_token_without_tenant_is_403_without_challenge() {
        let r = AuthError::MissingTenant.into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(body(r).await["error"]["code"], "missing_tenant");
    }

    #[tokio::test]
    async fn store_and_issuer_outages_are_503_and_do_not_leak() {
        let r = AuthError::Store(StoreError::unavailable("redis", "10.0.0.7:6379 refused"))
            .into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body(r).await.to_string().contains("10.0.0.7"));
        let r = AuthError::IssuerUnavailable.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn expired_has_its_own_code() {
        assert_eq!(AuthError::TokenExpired.code(), "token_expired");
        assert_eq!(AuthError::ApiKeyRevoked.code(), "api_key_revoked");
        assert_eq!(AuthError::ApiKeyRevoked.status(), StatusCode::UNAUTHORIZED);
    }
}
