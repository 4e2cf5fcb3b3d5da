//! The `auth` section of the edge config.

use gatez_core::config::{Validate, Validator};
use serde::Deserialize;

use super::api_key::ApiKeyConfig;
use super::jwt::JwtConfig;

/// Which credentials this gateway can verify. A section left out disables that kind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
    #[serde(default)]
    pub api_keys: Option<ApiKeyConfig>,
}

impl Validate for AuthConfig {
    fn validate(&self, v: &mut Validator) {
        if let Some(jwt) = &self.jwt {
            v.section("jwt", jwt);
        }
        if let Some(keys) = &self.api_keys {
            v.section("api_keys", keys);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_errors_carry_the_full_path() {
        let c: AuthConfig = serde_yaml_ng::from_str(
            "jwt:\n  issuers:\n    - issuer: https://i/r\n      audiences: []\napi_keys:\n  cache_capacity: 0\n",
        )
        .unwrap();
        let mut v = Validator::default();
        c.validate(&mut v);
        let fields: Vec<String> = v
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            ["jwt.issuers[0].audiences", "api_keys.cache_capacity"]
        );
    }
}
