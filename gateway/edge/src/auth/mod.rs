//! Authentication at the edge: JWTs from OIDC issuers ([`jwt`]), gateway-issued API keys
//! ([`api_key`]), and the per-route choice between them ([`AuthMode`], [`Authenticator`]).
//!
//! The result is a [`gatez_core::identity::Identity`]: the tenant always comes from a
//! verified credential (a token claim or the key's record), never from a request header.
//! Failures are [`AuthError`]s, which answer 401 (with a `WWW-Authenticate` challenge), 403,
//! or 503 in the gateway's JSON error shape.

pub mod api_key;
mod authenticator;
mod config;
mod credentials;
mod error;
pub mod jwt;

pub use api_key::{ApiKeyConfig, ApiKeyInfo, ApiKeyStore, PlaintextKey};
pub use authenticator::{AuthMode, Authenticator};
pub use config::AuthConfig;
pub use credentials::{API_KEY_HEADER, Credential};
pub use error::AuthError;
pub use jwt::{JwtConfig, JwtIssuerConfig, JwtVerifier};
