//! Configuration of JWT verification: the trusted issuers and how their tokens are read.

use std::collections::HashSet;
use std::time::Duration;

use gatez_core::config::{Validate, Validator};
use jsonwebtoken::Algorithm;
use serde::Deserialize;

/// Longest clock-skew leeway accepted: more would keep expired tokens alive for long.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// JWT verification for the whole gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The trusted issuers. A token's `iss` picks one; a token from any other is refused.
    pub issuers: Vec<JwtIssuerConfig>,
    /// Most verified tokens remembered (each until its `exp`). Default 100 000.
    #[serde(default = "default_cache_capacity")]
    pub verified_cache_capacity: u64,
    /// Bound on each discovery or JWKS request to an issuer. Default 5 s.
    #[serde(default = "default_http_timeout", with = "humantime_serde")]
    pub http_timeout: Duration,
}

/// One trusted OIDC issuer (a Keycloak realm, an Auth0 tenant, ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuerConfig {
    /// Exactly the `iss` its tokens carry, e.g. `https://sso.example.com/realms/acme`.
    pub issuer: String,
    /// Where to find the JWKS URL: `true` (default) reads
    /// `{issuer}/.well-known/openid-configuration`, a URL reads that document, `false`
    /// requires `jwks_uri`.
    #[serde(default)]
    pub discovery: Discovery,
    /// The JWKS URL, bypassing discovery.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Accepted `aud` values; a token must name at least one.
    pub audiences: Vec<String>,
    /// Dotted path of the claim holding the tenant id (`org.tenant` reads
    /// `{"org":{"tenant":…}}`). Default `tenant_id`.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// Claim holding the caller's subject. Default `sub`.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// Claim holding the scopes: a space-separated string or an array. Default `scope`.
    #[serde(default = "default_scopes_claim")]
    pub scopes_claim: String,
    /// Signature algorithms accepted from this issuer. Default `[RS256, ES256, EdDSA]`.
    /// Symmetric (HS*) algorithms cannot be configured: a public JWKS never holds their key.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Clock-skew allowance on `exp` and `nbf`. Default 30 s, at most 5 min.
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
    /// A token with an unknown `kid` triggers a JWKS refresh at most this often, so a flood
    /// of made-up key ids cannot hammer the issuer. Default 10 s.
    #[serde(default = "default_refresh_min_interval", with = "humantime_serde")]
    pub jwks_refresh_min_interval: Duration,
    /// The key set is refreshed in the background before it is this old. Default 15 min.
    #[serde(default = "default_jwks_max_age", with = "humantime_serde")]
    pub jwks_max_age: Duration,
}

/// `discovery: true | false | "https://…/.well-known/openid-configuration"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Discovery {
    Enabled(bool),
    Url(String),
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery::Enabled(true)
    }
}

/// The asymmetric JWS algorithms a JWKS can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum JwtAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl JwtAlgorithm {
    pub fn jwt(self) -> Algorithm {
        match self {
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::RS384 => Algorithm::RS384,
            JwtAlgorithm::RS512 => Algorithm::RS512,
            JwtAlgorithm::PS256 => Algorithm::PS256,
            JwtAlgorithm::PS384 => Algorithm::PS384,
            JwtAlgorithm::PS512 => Algorithm::PS512,
            JwtAlgorithm::ES256 => Algorithm::ES256,
            JwtAlgorithm::ES384 => Algorithm::ES384,
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
        }
    }
}

impl JwtIssuerConfig {
    /// An issuer with every default, for programmatic config and tests.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        Self {
            issuer: issuer.into(),
            discovery: Discovery::default(),
            jwks_uri: None,
            audiences,
            tenant_claim: default_tenant_claim(),
            subject_claim: default_subject_claim(),
            scopes_claim: default_scopes_claim(),
            algorithms: default_algorithms(),
            leeway: default_leeway(),
            jwks_refresh_min_interval: default_refresh_min_interval(),
            jwks_max_age: default_jwks_max_age(),
        }
    }

    /// The discovery document's URL, or `None` when discovery is off or overridden by
    /// `jwks_uri`.
    pub fn discovery_url(&self) -> Option<String> {
        if self.jwks_uri.is_some() {
            return None;
        }
        match &self.discovery {
            Discovery::Enabled(false) => None,
            Discovery::Enabled(true) => Some(format!(
                "{}/.well-known/openid-configuration",
                self.issuer.trim_end_matches('/')
            )),
            Discovery::Url(url) => Some(url.clone()),
        }
    }
}

impl JwtConfig {
    pub fn new(issuers: Vec<JwtIssuerConfig>) -> Self {
        Self {
            issuers,
            verified_cache_capacity: default_cache_capacity(),
            http_timeout: default_http_timeout(),
        }
    }
}

impl Validate for JwtConfig {
    fn validate(&self, v: &mut Validator) {
        v.check(!self.issuers.is_empty(), "issuers", "at least one issuer");
        let mut seen = HashSet::new();
        for (i, issuer) in self.issuers.iter().enumerate() {
            v.section(&format!("issuers[{i}]"), issuer);
            v.check(
                seen.insert(issuer.issuer.as_str()),
                &format!("issuers[{i}].issuer"),
                "issuer is listed twice",
            );
        }
        v.check(
            self.verified_cache_capacity > 0,
            "verified_cache_capacity",
            "must be greater than 0",
        );
        v.check(
            !self.http_timeout.is_zero(),
            "http_timeout",
            "must be greater than 0",
        );
    }
}

impl Validate for JwtIssuerConfig {
    fn validate(&self, v: &mut Validator) {
        v.check(
            is_http_url(&self.issuer),
            "issuer",
            "must be an http(s) URL",
        );
        if let Some(uri) = &self.jwks_uri {
            v.check(is_http_url(uri), "jwks_uri", "must be an http(s) URL");
        }
        match &self.discovery {
            Discovery::Enabled(false) => v.check(
                self.jwks_uri.is_some(),
                "jwks_uri",
                "required when discovery is false",
            ),
            Discovery::Url(url) => {
                v.check(is_http_url(url), "discovery", "must be an http(s) URL");
                v.check(
                    self.jwks_uri.is_none(),
                    "jwks_uri",
                    "set either a discovery URL or jwks_uri, not both",
                );
            }
            Discovery::Enabled(true) => {}
        }
        v.check(
            !self.audiences.is_empty() && self.audiences.iter().all(|a| !a.is_empty()),
            "audiences",
            "at least one non-empty audience (a token for another service must not open this one)",
        );
        for (field, path) in [
            ("tenant_claim", &self.tenant_claim),
            ("subject_claim", &self.subject_claim),
            ("scopes_claim", &self.scopes_claim),
        ] {
            v.check(
                path.split('.').all(|part| !part.is_empty()),
                field,
                "must be a claim name or a dotted path without empty parts",
            );
        }
        v.check(
            !self.algorithms.is_empty(),
            "algorithms",
            "at least one algorithm",
        );
        v.check(
            self.leeway <= MAX_LEEWAY,
            "leeway",
            format!("must be at most {}s", MAX_LEEWAY.as_secs()),
        );
        v.check(
            !self.jwks_refresh_min_interval.is_zero(),
            "jwks_refresh_min_interval",
            "must be greater than 0",
        );
        v.check(
            self.jwks_max_age > self.jwks_refresh_min_interval,
            "jwks_max_age",
            "must be longer than jwks_refresh_min_interval",
        );
    }
}

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

fn default_cache_capacity() -> u64 {
    100_000
}
fn default_http_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_tenant_claim() -> String {
    "tenant_id".into()
}
fn default_subject_claim() -> String {
    "sub".into()
}
fn default_scopes_claim() -> String {
    "scope".into()
}
fn default_algorithms() -> Vec<JwtAlgorithm> {
    vec![
        JwtAlgorithm::RS256,
        JwtAlgorithm::ES256,
        JwtAlgorithm::EdDSA,
    ]
}
fn default_leeway() -> Duration {
    Duration::from_secs(30)
}
fn default_refresh_min_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_jwks_max_age() -> Duration {
    Duration::from_secs(15 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(c: &JwtConfig) -> Result<(), Vec<(String, String)>> {
        let mut v = Validator::default();
        c.validate(&mut v);
        v.finish()
    }

    #[test]
    fn minimal_yaml_gets_the_defaults() {
        let c: JwtConfig = serde_yaml_ng::from_str(
            "issuers:\n  - issuer: https://sso.example.com/realms/acme\n    audiences: [gatez]\n",
        )
        .unwrap();
        let i = &c.issuers[0];
        assert_eq!(i.tenant_claim, "tenant_id");
        assert_eq!(i.leeway, Duration::from_secs(30));
        assert_eq!(
            i.algorithms,
            [
                JwtAlgorithm::RS256,
                JwtAlgorithm::ES256,
                JwtAlgorithm::EdDSA
            ]
        );
        assert_eq!(
            i.discovery_url().as_deref(),
            Some("https://sso.example.com/realms/acme/.well-known/openid-configuration")
        );
        validate(&c).unwrap();
    }

    #[test]
    fn hmac_and_none_cannot_be_configured() {
        for alg in ["HS256", "none"] {
            let yaml = format!(
                "issuers:\n  - issuer: https://x/\n    audiences: [a]\n    algorithms: [{alg}]\n"
            );
            assert!(
                serde_yaml_ng::from_str::<JwtConfig>(&yaml).is_err(),
                "{alg}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let yaml = "issuers:\n  - issuer: https://x/\n    audiences: [a]\n    tenant: t\n";
        assert!(serde_yaml_ng::from_str::<JwtConfig>(yaml).is_err());
    }

    #[test]
    fn discovery_forms() {
        let yaml =
            "issuers:\n  - issuer: https://x/r\n    audiences: [a]\n    discovery: https://y/d\n";
        let c: JwtConfig = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(c.issuers[0].discovery_url().as_deref(), Some("https://y/d"));
        let mut i = JwtIssuerConfig::new("https://x/r", vec!["a".into()]);
        i.jwks_uri = Some("https://x/r/certs".into());
        assert_eq!(i.discovery_url(), None);
    }

    #[test]
    fn problems_name_their_field() {
        let mut bad = JwtIssuerConfig::new("sso.example.com", vec![]);
        bad.discovery = Discovery::Enabled(false);
        bad.tenant_claim = "org..tenant".into();
        bad.leeway = Duration::from_secs(3600);
        bad.jwks_max_age = Duration::from_secs(1);
        let mut c = JwtConfig::new(vec![bad.clone(), bad]);
        c.verified_cache_capacity = 0;
        let errors = validate(&c).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        for expected in [
            "issuers[0].issuer",
            "issuers[0].jwks_uri",
            "issuers[0].audiences",
            "issuers[0].tenant_claim",
            "issuers[0].leeway",
            "issuers[0].jwks_max_age",
            "issuers[1].issuer",
            "verified_cache_capacity",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing in {fields:?}"
            );
        }
        assert!(validate(&JwtConfig::new(vec![])).is_err());
    }
}
