//! The issuer's HTTP endpoints and Keycloak's error bodies.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use super::{IssuerState, TokenBuilder};

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn no_realm() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "error": "Realm does not exist" })),
    )
        .into_response()
}

pub async fn discovery(
    State(state): State<Arc<IssuerState>>,
    Path(realm): Path<String>,
) -> Response {
    if state.realm(&realm).is_none() {
        return no_realm();
    }
    let iss = state.issuer_url(&realm);
    let oidc = format!("{iss}/protocol/openid-connect");
    axum::Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{oidc}/auth"),
        "token_endpoint": format!("{oidc}/token"),
        "userinfo_endpoint": format!("{oidc}/userinfo"),
        "end_session_endpoint": format!("{oidc}/logout"),
        "jwks_uri": format!("{oidc}/certs"),
        "grant_types_supported": ["client_credentials", "password"],
        "response_types_supported": ["code", "none", "id_token", "token", "id_token token", "code id_token", "code token", "code id_token token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "profile", "email"],
        "claims_supported": ["aud", "sub", "iss", "exp", "iat", "azp", "preferred_username", "scope"],
    }))
    .into_response()
}

pub async fn certs(State(state): State<Arc<IssuerState>>, Path(realm): Path<String>) -> Response {
    if state.realm(&realm).is_none() {
        return no_realm();
    }
    let jwks = state.keys.read().expect("keys lock").jwks();
    axum::Json(jwks).into_response()
}

/// `Authorization: Basic base64(id:secret)` (client_secret_basic), if present.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

pub async fn token(
    State(state): State<Arc<IssuerState>>,
    Path(realm_name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(realm) = state.realm(&realm_name) else {
        return no_realm();
    };
    let Some(grant) = form.get("grant_type") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing form parameter: grant_type",
        );
    };
    let (client_id, secret) = match basic_credentials(&headers) {
        Some((id, s)) => (Some(id), Some(s)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    let Some(client) = client_id.as_deref().and_then(|id| realm.client(id)) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    };
    if client.secret.is_some() && client.secret != secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Invalid client or Invalid client credentials",
        );
    }
    let (tenant, subject) = match grant.as_str() {
        "client_credentials" => {
            if client.secret.is_none() {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_client",
                    "Public client not allowed to retrieve service account",
                );
            }
            (
                client.tenant.clone(),
                format!("service-account-{}", client.id),
            )
        }
        "password" => match form.get("username").and_then(|u| realm.user(u)) {
            Some(u) if Some(&u.password) == form.get("password") => {
                (u.tenant.clone(), u.username.clone())
            }
            _ => {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_grant",
                    "Invalid user credentials",
                );
            }
        },
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant_type",
            );
        }
    };
    let builder = TokenBuilder::new(state.clone(), &realm.name, &tenant)
        .authorized_party(&client.id)
        .subject(&subject);
    match builder.sign() {
        Ok(access_token) => axum::Json(json!({
            "access_token": access_token,
            "expires_in": realm.token_ttl_secs,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }))
        .into_response(),
        Err(e) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &e.to_string(),
        ),
    }
}
