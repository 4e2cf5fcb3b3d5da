//! What clients see: the route's auth mode, statuses, JSON bodies and challenges.

use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use gatez_core::store::records::embedded::{EmbeddedRecordConfig, EmbeddedRecordStore};
use gatez_edge::auth::{ApiKeyConfig, ApiKeyStore, AuthMode, Authenticator};
use gatez_mocks::oidc::OidcIssuer;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;

use super::support::*;

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

async fn answer(
    a: &Authenticator,
    h: &HeaderMap,
    mode: AuthMode,
) -> (StatusCode, Value, Option<String>) {
    let e = a.authenticate(h, mode, "req-1").await.unwrap_err();
    let r = e.into_response();
    let status = r.status();
    let challenge = r
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap(), challenge)
}

#[tokio::test]
async fn statuses_bodies_and_challenges() {
    let issuer = OidcIssuer::start().await;
    let keys = Arc::new(ApiKeyStore::new(
        Arc::new(EmbeddedRecordStore::new(EmbeddedRecordConfig::default())),
        ApiKeyConfig::default(),
    ));
    let a = Authenticator::new(
        Some(Arc::new(verifier(issuer_config(&issuer)))),
        Some(keys.clone()),
    );

    let good = issuer.token("acme").sign().unwrap();
    let id = a
        .authenticate(&bearer(&good), AuthMode::Either, "req-7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (id.tenant, id.request_id),
        (tenant("acme"), "req-7".to_string())
    );

    let (status, body, challenge) = answer(&a, &HeaderMap::new(), AuthMode::Jwt).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "missing_credentials");
    assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="gatez""#));

    let (status, body, challenge) = answer(&a, &bearer("garbage"), AuthMode::Jwt).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_token");
    assert!(challenge.unwrap().contains(r#"error="invalid_token""#));

    let expired = issuer.token("acme").expired().sign().unwrap();
    let (status, body, _) = answer(&a, &bearer(&expired), AuthMode::Jwt).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "token_expired");
    // The message never echoes the token.
    assert!(!body.to_string().contains(&expired[..20]));

    let no_tenant = issuer
        .token("acme")
        .claim("tenant_id", Value::Null)
        .sign()
        .unwrap();
    let (status, body, challenge) = answer(&a, &bearer(&no_tenant), AuthMode::Either).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "missing_tenant");
    assert_eq!(challenge, None);

    let (_, key) = keys
        .create(&tenant("acme"), "k", vec![], Duration::from_secs(60))
        .await
        .unwrap();
    let (status, body, _) = answer(&a, &bearer(key.expose()), AuthMode::Jwt).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "credentials_not_accepted");
    let (status, body, _) = answer(&a, &bearer(&good), AuthMode::ApiKey).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "credentials_not_accepted");

    let mut both = bearer(&good);
    both.insert("x-api-key", HeaderValue::from_str(key.expose()).unwrap());
    let (status, body, _) = answer(&a, &both, AuthMode::Either).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_request");

    let wrong_key = format!("gzk_acme_{}", "A".repeat(43));
    let (status, body, _) = answer(&a, &bearer(&wrong_key), AuthMode::ApiKey).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_api_key");
}
