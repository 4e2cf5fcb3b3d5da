//! Public behaviour of `gatez_edge::auth`: JWTs against the mock OIDC issuer (Keycloak URL
//! layout), API keys against the embedded record store and a real Redis, and the HTTP
//! answers (401/403/503, JSON body, `WWW-Authenticate`).

mod auth {
    mod api_keys;
    mod http;
    mod jwt;
    mod support;
}
