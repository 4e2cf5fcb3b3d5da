//! Configuration of API keys.

use std::time::Duration;

use gatez_core::config::{Validate, Validator};
use gatez_core::store::records::MAX_TTL;
use serde::Deserialize;

/// How API keys are verified and how long they may live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeyConfig {
    /// How long a node trusts a key it has verified before asking the store again: the
    /// bound on how long a revoked key keeps working on a node that saw it recently.
    /// Default 5 s.
    #[serde(with = "humantime_serde")]
    pub revocation_latency: Duration,
    /// How long a node remembers that a key is unknown, revoked or expired, so a client
    /// retrying a bad key does not cost a store round trip each time. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub negative_cache_ttl: Duration,
    /// Most keys each of the two caches holds. Default 100 000.
    pub cache_capacity: u64,
    /// Longest lifetime a key may be created with. Default 365 days.
    #[serde(with = "humantime_serde")]
    pub max_ttl: Duration,
    /// How long a revoked or expired key's record is kept after its expiry, so its holder
    /// is told "revoked"/"expired" rather than "invalid" and listings show it. Default 1 day.
    #[serde(with = "humantime_serde")]
    pub expired_retention: Duration,
}

impl Default for ApiKeyConfig {
    fn default() -> Self {
        Self {
            revocation_latency: Duration::from_secs(5),
            negative_cache_ttl: Duration::from_secs(5),
            cache_capacity: 100_000,
            max_ttl: Duration::from_secs(365 * 24 * 3600),
            expired_retention: Duration::from_secs(24 * 3600),
        }
    }
}

impl Validate for ApiKeyConfig {
    fn validate(&self, v: &mut Validator) {
        v.check(
            !self.revocation_latency.is_zero()
                && self.revocation_latency <= Duration::from_secs(300),
            "revocation_latency",
            "must be between 1ms and 5m",
        );
        v.check(
            !self.negative_cache_ttl.is_zero()
                && self.negative_cache_ttl <= Duration::from_secs(300),
            "negative_cache_ttl",
            "must be between 1ms and 5m",
        );
        v.check(
            self.cache_capacity > 0,
            "cache_capacity",
            "must be greater than 0",
        );
        v.check(
            !self.max_ttl.is_zero() && self.max_ttl <= MAX_TTL,
            "max_ttl",
            format!("must be between 1s and {} days", MAX_TTL.as_secs() / 86_400),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_field() {
        let mut v = Validator::default();
        ApiKeyConfig::default().validate(&mut v);
        v.finish().unwrap();
        let bad = ApiKeyConfig {
            revocation_latency: Duration::ZERO,
            max_ttl: MAX_TTL * 2,
            ..ApiKeyConfig::default()
        };
        let mut v = Validator::default();
        bad.validate(&mut v);
        let fields: Vec<String> = v
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(fields, ["revocation_latency", "max_ttl"]);
    }

    #[test]
    fn yaml_with_humantime_and_unknown_fields() {
        let c: ApiKeyConfig = serde_yaml_ng::from_str("revocation_latency: 2s\n").unwrap();
        assert_eq!(c.revocation_latency, Duration::from_secs(2));
        assert!(serde_yaml_ng::from_str::<ApiKeyConfig>("latency: 2s\n").is_err());
    }
}
