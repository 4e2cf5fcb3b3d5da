//! The OIDC issuer, checked with an independent JWT verifier (`jsonwebtoken` decoding
//! against the served JWKS), as the gateway will check it.

mod common;

use common::client;
use gatez_mocks::oidc::{Client, KeyAlg, OidcIssuer, Realm, User};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

async fn jwks(issuer: &OidcIssuer) -> JwkSet {
    let doc: Value = client()
        .get(format!(
            "{}/.well-known/openid-configuration",
            issuer.issuer_url("gatez")
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    client()
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies `token` the way a relying party does: key by `kid` from the JWKS, then
/// signature, expiry, issuer and audience.
async fn verify(issuer: &OidcIssuer, token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = decode_header(token)?;
    let set = jwks(issuer).await;
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer.issuer_url("gatez")]);
    validation.set_audience(&["account"]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation).map(|d| d.claims)
}

#[tokio::test]
async fn discovery_uses_keycloak_layout_and_unknown_realms_are_404() {
    let issuer = OidcIssuer::start().await;
    let doc: Value = client()
        .get(format!(
            "{}/realms/gatez/.well-known/openid-configuration",
            issuer.origin()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], issuer.issuer_url("gatez"));
    assert_eq!(doc["jwks_uri"], issuer.jwks_url("gatez"));
    assert_eq!(doc["token_endpoint"], issuer.token_url("gatez"));
    let resp = client()
        .get(format!(
            "{}/realms/nope/protocol/openid-connect/certs",
            issuer.origin()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // The served JWKS holds one RSA and one EC key with the JWK members verifiers need.
    let raw: Value = client()
        .get(issuer.jwks_url("gatez"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = raw["keys"].as_array().unwrap();
    assert!(
        keys.iter()
            .any(|k| k["kty"] == "RSA" && k["n"].is_string() && k["e"] == "AQAB")
    );
    assert!(
        keys.iter()
            .any(|k| k["kty"] == "EC" && k["crv"] == "P-256" && k["x"].is_string())
    );
}

#[tokio::test]
async fn minted_tokens_verify_with_both_algorithms_and_carry_the_tenant() {
    let issuer = OidcIssuer::start().await;
    for alg in [KeyAlg::Rs256, KeyAlg::Es256] {
        let token = issuer
            .token("acme")
            .subject("alice")
            .alg(alg)
            .sign()
            .unwrap();
        assert_eq!(decode_header(&token).unwrap().alg, alg.jwt());
        let claims = verify(&issuer, &token).await.unwrap();
        assert_eq!(claims["tenant_id"], "acme");
        assert_eq!(claims["sub"], "alice");
    }
    issuer.set_tenant_claim("gatez", "org.tenant").unwrap();
    let claims = verify(&issuer, &issuer.token("globex").sign().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["org"]["tenant"], "globex");
    assert!(claims.get("tenant_id").is_none());
}

#[tokio::test]
async fn expired_wrong_issuer_and_wrong_key_tokens_fail_verification() {
    use jsonwebtoken::errors::ErrorKind;
    let issuer = OidcIssuer::start().await;
    let expired = issuer.token("acme").expired().sign().unwrap();
    assert_eq!(
        verify(&issuer, &expired).await.unwrap_err().kind(),
        &ErrorKind::ExpiredSignature
    );
    let wrong_iss = issuer
        .token("acme")
        .issuer("https://evil.example/realms/gatez")
        .sign()
        .unwrap();
    assert_eq!(
        verify(&issuer, &wrong_iss).await.unwrap_err().kind(),
        &ErrorKind::InvalidIssuer
    );
    for alg in [KeyAlg::Rs256, KeyAlg::Es256] {
        let forged = issuer.token("acme").alg(alg).wrong_key().sign().unwrap();
        // The kid is a published one: only the signature gives the forgery away.
        assert_eq!(
            decode_header(&forged).unwrap().kid.unwrap(),
            issuer.current_kid(alg)
        );
        assert_eq!(
            verify(&issuer, &forged).await.unwrap_err().kind(),
            &ErrorKind::InvalidSignature
        );
    }
}

/// Form fields of one token request.
type Form<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn token_endpoint_grants_and_keycloak_errors() {
    let issuer = OidcIssuer::start().await;
    issuer
        .add_client(
            "gatez",
            Client {
                id: "svc".into(),
                secret: Some("s3cret".into()),
                tenant: "acme".into(),
            },
        )
        .unwrap();
    issuer
        .add_user(
            "gatez",
            User {
                username: "bob".into(),
                password: "pw".into(),
                tenant: "globex".into(),
            },
        )
        .unwrap();
    let url = issuer.token_url("gatez");
    let form = |pairs: &[(&str, &str)]| {
        client().post(&url).form(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    };

    // client_credentials via client_secret_post and client_secret_basic.
    for req in [
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "s3cret"),
        ]),
        form(&[("grant_type", "client_credentials")]).basic_auth("svc", Some("s3cret")),
    ] {
        let body: Value = req.send().await.unwrap().json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 300);
        let claims = verify(&issuer, body["access_token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(claims["tenant_id"], "acme");
        assert_eq!(claims["azp"], "svc");
    }
    // password grant takes the user's tenant.
    let body: Value = form(&[
        ("grant_type", "password"),
        ("client_id", "svc"),
        ("client_secret", "s3cret"),
        ("username", "bob"),
        ("password", "pw"),
    ])
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let claims = verify(&issuer, body["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (claims["tenant_id"].as_str(), claims["sub"].as_str()),
        (Some("globex"), Some("bob"))
    );

    let cases: [(Form, u16, &str); 4] = [
        (
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", "nope"),
            ],
            401,
            "unauthorized_client",
        ),
        (
            &[("grant_type", "client_credentials"), ("client_id", "ghost")],
            401,
            "invalid_client",
        ),
        (
            &[
                ("grant_type", "password"),
                ("client_id", "svc"),
                ("client_secret", "s3cret"),
                ("username", "bob"),
                ("password", "bad"),
            ],
            401,
            "invalid_grant",
        ),
        (
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "svc"),
                ("client_secret", "s3cret"),
            ],
            400,
            "unsupported_grant_type",
        ),
    ];
    for (pairs, status, error) in cases {
        let resp = form(pairs).send().await.unwrap();
        assert_eq!(resp.status(), status, "{pairs:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], error, "{pairs:?}");
        assert!(body["error_description"].is_string());
    }
}

#[tokio::test]
async fn rotation_publishes_the_new_key_and_retiring_invalidates_old_tokens() {
    let issuer = OidcIssuer::start().await;
    let old_kid = issuer.current_kid(KeyAlg::Es256);
    let old_token = issuer.token("acme").alg(KeyAlg::Es256).sign().unwrap();
    let new_kid = issuer.rotate(KeyAlg::Es256).await.unwrap();
    assert_ne!(old_kid, new_kid);
    let new_token = issuer.token("acme").alg(KeyAlg::Es256).sign().unwrap();
    assert_eq!(
        decode_header(&new_token).unwrap().kid.as_deref(),
        Some(new_kid.as_str())
    );
    assert!(verify(&issuer, &new_token).await.is_ok());
    assert!(
        verify(&issuer, &old_token).await.is_ok(),
        "old key stays published"
    );
    assert!(
        !issuer.retire(&new_kid),
        "the signing key cannot be retired"
    );
    assert!(issuer.retire(&old_kid));
    assert!(jwks(&issuer).await.find(&old_kid).is_none());
    assert!(verify(&issuer, &old_token).await.is_err());
    // The JWKS fetches were recorded, so a test can assert a verifier re-fetched after rotation.
    assert!(issuer.received().iter().any(|r| r.path.ends_with("/certs")));
}

#[tokio::test]
async fn realms_are_isolated_and_configurable() {
    let issuer = OidcIssuer::start().await;
    let mut realm = Realm::new("other");
    realm.tenant_claim = "tid".into();
    issuer.add_realm(realm);
    let token = issuer.token("t1").realm("other").sign().unwrap();
    // Valid signature, but `iss` names the other realm, so the gatez realm rejects it.
    assert_eq!(
        verify(&issuer, &token).await.unwrap_err().kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidIssuer
    );
    assert!(issuer.token("t").realm("missing").sign().is_err());
}
