//! JWT verification against the mock OIDC issuer: the success paths and every failure path.

use std::sync::Arc;
use std::time::Duration;

use gatez_edge::auth::jwt::Discovery;
use gatez_edge::auth::{AuthError, JwtIssuerConfig};
use gatez_mocks::oidc::{DEFAULT_REALM, KeyAlg, OidcIssuer, Realm};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::support::*;

#[tokio::test]
async fn rs256_and_es256_tokens_verify() {
    let issuer = OidcIssuer::start().await;
    let v = verifier(issuer_config(&issuer));
    for alg in [KeyAlg::Rs256, KeyAlg::Es256] {
        let token = issuer
            .token("acme")
            .alg(alg)
            .subject("alice")
            .sign()
            .unwrap();
        let id = v.verify(&token, "req-1").await.unwrap();
        assert_eq!(id.tenant, tenant("acme"));
        assert_eq!(id.subject, "alice");
        assert_eq!(id.scopes, ["profile", "email"]);
        assert_eq!(id.request_id, "req-1");
    }
    // Discovery then JWKS, once: later tokens use the cached keys.
    let discovery = issuer
        .received()
        .iter()
        .filter(|r| r.path.ends_with("/.well-known/openid-configuration"))
        .count();
    assert_eq!((discovery, jwks_fetches(&issuer)), (1, 1));
}

#[tokio::test]
async fn tenant_comes_from_the_configured_claim() {
    let issuer = OidcIssuer::start().await;
    issuer
        .set_tenant_claim(DEFAULT_REALM, "org.tenant")
        .unwrap();
    let mut config = issuer_config(&issuer);
    config.tenant_claim = "org.tenant".into();
    let v = verifier(config);
    let token = issuer.token("globex").sign().unwrap();
    assert_eq!(
        v.verify(&token, "r").await.unwrap().tenant,
        tenant("globex")
    );
}

#[tokio::test]
async fn a_token_without_tenant_is_refused() {
    let issuer = OidcIssuer::start().await;
    let v = verifier(issuer_config(&issuer));
    let token = issuer
        .token("acme")
        .claim("tenant_id", Value::Null)
        .sign()
        .unwrap();
    assert!(matches!(
        v.verify(&token, "r").await,
        Err(AuthError::MissingTenant)
    ));
    let token = issuer.token("a/b").sign().unwrap();
    assert!(matches!(
        v.verify(&token, "r").await,
        Err(AuthError::InvalidTenant)
    ));
}

#[tokio::test]
async fn expired_tokens_are_refused_beyond_the_leeway() {
    let issuer = OidcIssuer::start().await;
    let v = verifier(issuer_config(&issuer));
    let token = issuer.token("acme").expired().sign().unwrap();
    assert!(matches!(
        v.verify(&token, "r").await,
        Err(AuthError::TokenExpired)
    ));
    // Ten seconds past `exp` is within the default 30 s clock-skew leeway.
    let token = issuer.token("acme").ttl_secs(-10).sign().unwrap();
    v.verify(&token, "r").await.unwrap();
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let issuer = OidcIssuer::start().await;
    let mut config = issuer_config(&issuer);
    config.leeway = Duration::ZERO;
    let v = verifier(config);
    let token = issuer.token("acme").ttl_secs(2).sign().unwrap();
    v.verify(&token, "r").await.unwrap();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(matches!(
        v.verify(&token, "r").await,
        Err(AuthError::TokenExpired)
    ));
}

#[tokio::test]
async fn not_yet_valid_tokens_are_refused() {
    let issuer = OidcIssuer::start().await;
    let v = verifier(issuer_config(&issuer));
    let token = issuer
        .token("acme")
        .claim("nbf", json!(unix_now() + 3600))
        .sign()
        .unwrap();
    assert!(matches!(
        v.verify(&token, "r").await,
        Err(AuthError::TokenNotYetValid)
    ));
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let issuer = OidcIssuer::start().await;
    issuer.add_realm(Realm::new("other"));
    let v = verifier(issuer_config(&issuer));
    let token = issuer
        .token("acme")
        .issuer("https://evil.example/realms/gatez")
        .sign()
        .unwrap();
    assert!(matches!(
        v.verify(&token, "r").await,
        Err(AuthError::UnknownIssuer)
    ));
    // Same server, same keys, another realm: still another issuer.
    let token = issuer.token("acme").realm("other").sign().unwrap();
    assert!(matches!(
        v.verify(&token, "r").await,
        Err(AuthError::UnknownIssuer)
    ));
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let issuer = OidcIssuer::start().await;
    let v = verifier(issuer_config(&issuer));
    let token = issuer
        .token("acme")
        .audience("another-service")
        .sign()
        .unwrap();
    assert!(matches!(
        v.verify(&token, "r").await,
        Err(AuthError::WrongAudience)
    ));
}

#[tokio::test]
async fn a_token_signed_by_a_stranger_under_a_known_kid_is_refused() {
    let issuer = OidcIssuer::start().await;
    let v = verifier(issuer_config(&issuer));
    for alg in [KeyAlg::Rs256, KeyAlg::Es256] {
        let token = issuer.token("acme").alg(alg).wrong_key().sign().unwrap();
        assert!(matches!(
            v.verify(&token, "r").await,
            Err(AuthError::BadSignature)
        ));
    }
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let issuer = OidcIssuer::start().await;
    let v = verifier(issuer_config(&issuer));
    let token = issuer.token("acme").sign().unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut claims = decode_part(parts[1]);
    claims["tenant_id"] = json!("victim");
    let forged = b64_json(&claims);
    parts[1] = &forged;
    assert!(matches!(
        v.verify(&parts.join("."), "r").await,
        Err(AuthError::BadSignature)
    ));
}

#[tokio::test]
async fn alg_none_is_refused() {
    let issuer = OidcIssuer::start().await;
    let v = verifier(issuer_config(&issuer));
    let token = issuer.token("acme").sign().unwrap();
    let kid = decode_part(token.split('.').next().unwrap())["kid"].clone();
    let unsigned = with_header(&token, json!({"alg": "none", "typ": "JWT", "kid": kid}));
    let (head_and_body, _) = unsigned.rsplit_once('.').unwrap();
    for t in [unsigned.clone(), format!("{head_and_body}.")] {
        assert!(
            matches!(v.verify(&t, "r").await, Err(AuthError::AlgorithmNone)),
            "{t}"
        );
    }
    // Refused before any key lookup: the issuer was never asked for its keys.
    assert_eq!(jwks_fetches(&issuer), 0);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let issuer = OidcIssuer::start().await;
    let v = verifier(issuer_config(&issuer));
    // Warm the key set, so the refusal is not merely "keys not loaded yet".
    v.verify(&issuer.token("acme").sign().unwrap(), "r")
        .await
        .unwrap();
    let jwks: Value = reqwest::get(issuer.jwks_url(DEFAULT_REALM))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "RSA")
        .unwrap()
        .clone();
    let claims = decode_part(
        issuer
            .token("acme")
            .sign()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap(),
    );
    // The classic attack: the public key material as an HMAC secret, under the RSA kid.
    for secret in [rsa.to_string(), rsa["n"].as_str().unwrap().to_owned()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = rsa["kid"].as_str().map(str::to_owned);
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        assert!(matches!(
            v.verify(&token, "r").await,
            Err(AuthError::AlgorithmNotAllowed("HS256"))
        ));
    }
}

#[tokio::test]
async fn a_token_claiming_another_algorithm_than_its_key_is_refused() {
    let issuer = OidcIssuer::start().await;
    let v = verifier(issuer_config(&issuer));
    let token = issuer.token("acme").alg(KeyAlg::Rs256).sign().unwrap();
    let kid = decode_part(token.split('.').next().unwrap())["kid"].clone();
    // ES256 is allowed for the issuer, but the kid names an RSA key.
    let confused = with_header(&token, json!({"alg": "ES256", "kid": kid}));
    assert!(matches!(
        v.verify(&confused, "r").await,
        Err(AuthError::AlgorithmMismatch)
    ));
    // An algorithm the issuer config does not allow, though the key type would fit.
    let confused = with_header(&token, json!({"alg": "RS512", "kid": kid}));
    assert!(matches!(
        v.verify(&confused, "r").await,
        Err(AuthError::AlgorithmNotAllowed("RS512"))
    ));
}

#[tokio::test]
async fn garbage_is_malformed() {
    let issuer = OidcIssuer::start().await;
    let v = verifier(issuer_config(&issuer));
    let good = issuer.token("acme").sign().unwrap();
    let (_, payload_and_sig) = good.split_once('.').unwrap();
    for t in [
        "garbage".to_string(),
        "a.b".into(),
        "a.b.c".into(),
        format!("%%%.{payload_and_sig}"),
        format!("{}.{payload_and_sig}", b64_json(&json!("just a string"))),
        format!("{good}.extra"),
    ] {
        assert!(
            matches!(v.verify(&t, "r").await, Err(AuthError::MalformedToken)),
            "{t}"
        );
    }
}

fn random_kid_token(good: &str, n: usize) -> String {
    with_header(good, json!({"alg": "RS256", "kid": format!("made-up-{n}")}))
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_the_issuer_at_most_one_fetch_per_interval() {
    let issuer = OidcIssuer::start().await;
    let mut config = issuer_config(&issuer);
    config.jwks_refresh_min_interval = Duration::from_millis(500);
    let v = Arc::new(verifier(config));
    let good = issuer.token("acme").sign().unwrap();
    v.verify(&good, "r").await.unwrap();
    assert_eq!(jwks_fetches(&issuer), 1);

    // Within the interval of the first fetch: no fetch at all.
    for n in 0..20 {
        let r = v.verify(&random_kid_token(&good, n), "r").await;
        assert!(matches!(r, Err(AuthError::UnknownKey)), "{r:?}");
    }
    assert_eq!(jwks_fetches(&issuer), 1);

    // After it: 50 concurrent misses share one fetch (single flight), and the next 50
    // fall inside the new interval.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for round in 0..2 {
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..50 {
            let (v, token) = (v.clone(), random_kid_token(&good, round * 100 + n));
            tasks.spawn(async move { v.verify(&token, "r").await });
        }
        for r in tasks.join_all().await {
            assert!(matches!(r, Err(AuthError::UnknownKey)), "{r:?}");
        }
        assert_eq!(jwks_fetches(&issuer), 2, "round {round}");
    }
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_on_first_sight() {
    let issuer = OidcIssuer::start().await;
    let mut config = issuer_config(&issuer);
    config.jwks_refresh_min_interval = Duration::from_millis(200);
    let v = verifier(config);
    let old = issuer.token("acme").sign().unwrap();
    v.verify(&old, "r").await.unwrap();
    let old_kid = issuer.current_kid(KeyAlg::Rs256);

    let new_kid = issuer.rotate(KeyAlg::Rs256).await.unwrap();
    assert_ne!(new_kid, old_kid);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let new = issuer.token("acme").sign().unwrap();
    v.verify(&new, "r").await.unwrap();
    assert_eq!(jwks_fetches(&issuer), 2);

    // Once the issuer retires the old key and we next refresh (here: prompted by an
    // unknown kid), tokens under it fail, while the token we already verified is served
    // from the verified-token cache until it expires.
    assert!(issuer.retire(&old_kid));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let fresh_old = issuer.token("acme").subject("x").sign().unwrap();
    assert!(matches!(
        v.verify(&random_kid_token(&fresh_old, 0), "r").await,
        Err(AuthError::UnknownKey)
    ));
    assert_eq!(jwks_fetches(&issuer), 3);
    let fresh_old = with_header(&fresh_old, json!({"alg": "RS256", "kid": old_kid}));
    assert!(matches!(
        v.verify(&fresh_old, "r").await,
        Err(AuthError::UnknownKey)
    ));
    v.verify(&old, "r").await.unwrap();
}

#[tokio::test]
async fn keys_are_refreshed_in_the_background_before_max_age() {
    let issuer = OidcIssuer::start().await;
    let mut config = issuer_config(&issuer);
    config.jwks_refresh_min_interval = Duration::from_millis(100);
    config.jwks_max_age = Duration::from_millis(800);
    let v = verifier(config);
    v.prefetch().await;
    let first = jwks_fetches(&issuer);
    assert_eq!(first, 1);
    eventually(
        Duration::from_secs(5),
        "a background JWKS refresh",
        || async { jwks_fetches(&issuer) > first },
    )
    .await;
    // A key rotated meanwhile is known without any token having asked for it.
    issuer.rotate(KeyAlg::Es256).await.unwrap();
    let before = jwks_fetches(&issuer);
    eventually(Duration::from_secs(5), "another refresh", || async {
        jwks_fetches(&issuer) > before
    })
    .await;
    let after = jwks_fetches(&issuer);
    v.verify(
        &issuer.token("acme").alg(KeyAlg::Es256).sign().unwrap(),
        "r",
    )
    .await
    .unwrap();
    assert!(jwks_fetches(&issuer) <= after + 1);
}

#[tokio::test]
async fn an_unreachable_issuer_is_503_not_401() {
    let issuer = OidcIssuer::start().await;
    let token = issuer.token("acme").sign().unwrap();
    let mut config = issuer_config(&issuer);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    config.jwks_uri = Some(format!("http://127.0.0.1:{port}/certs"));
    config.discovery = Discovery::Enabled(false);
    let v = verifier(config);
    assert!(matches!(
        v.verify(&token, "r").await,
        Err(AuthError::IssuerUnavailable)
    ));
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_not_trusted() {
    let issuer = OidcIssuer::start().await;
    issuer.add_realm(Realm::new("other"));
    let mut config = issuer_config(&issuer);
    config.discovery = Discovery::Url(format!(
        "{}/.well-known/openid-configuration",
        issuer.issuer_url("other")
    ));
    let v = verifier(config);
    let token = issuer.token("acme").sign().unwrap();
    assert!(matches!(
        v.verify(&token, "r").await,
        Err(AuthError::IssuerUnavailable)
    ));
    assert_eq!(jwks_fetches(&issuer), 0);
}

#[tokio::test]
async fn eddsa_tokens_verify_against_an_okp_jwks() {
    use axum::routing::get;
    use base64::Engine;
    use ed25519_dalek::pkcs8::EncodePrivateKey;

    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let x =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
    let jwks =
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": "ed-1", "x": x}]});
    let app = axum::Router::new().route("/certs", get(move || async move { axum::Json(jwks) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let iss = format!("http://{addr}");
    let mut config = JwtIssuerConfig::new(&iss, vec!["gatez".into()]);
    config.discovery = Discovery::Enabled(false);
    config.jwks_uri = Some(format!("{iss}/certs"));
    let v = verifier(config);

    let der = signing.to_pkcs8_der().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("ed-1".into());
    let now = unix_now();
    let claims = json!({"iss": iss, "aud": ["gatez", "other"], "sub": "svc", "tenant_id": "acme",
                        "scope": ["a", "b"], "exp": now + 60, "iat": now});
    let token =
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap();
    let id = v.verify(&token, "r").await.unwrap();
    assert_eq!((id.tenant, id.subject), (tenant("acme"), "svc".to_string()));
    assert_eq!(id.scopes, ["a", "b"]);
}
