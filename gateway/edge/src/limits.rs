//! Which rate-limit buckets a request charges, and the headers that report the outcome.
//!
//! A request is charged, all or none, against every window of: its tenant (the tenant's own
//! windows, or the default ones), its tenant on this route (the route's windows), and its
//! consumer (the subject or API key, within the tenant). Bucket names are per tenant (the store
//! prefixes the tenant), so two tenants never share a bucket.

use std::collections::HashMap;
use std::time::Duration;

use gatez_core::TenantId;
use gatez_core::config::Validator;
use gatez_core::store::ratelimit::{Decision, Limit, Quota};
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;

/// One window: `limit` requests `per` period, with bursts up to `burst` (default `limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    pub limit: u64,
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    #[serde(default)]
    pub burst: Option<u64>,
}

impl QuotaConfig {
    pub fn quota(&self) -> Quota {
        Quota {
            limit: self.limit,
            period: self.per,
            burst: self.burst,
        }
    }

    pub fn validate(&self, v: &mut Validator, field: &str) {
        v.check(
            self.limit > 0,
            &format!("{field}.limit"),
            "must be positive",
        );
        v.check(
            self.per >= Duration::from_millis(1),
            &format!("{field}.per"),
            "must be at least 1ms",
        );
        v.check(
            self.burst != Some(0),
            &format!("{field}.burst"),
            "must be positive",
        );
        // GCRA works in whole microseconds per request.
        v.check(
            self.per.as_micros() >= u128::from(self.limit),
            field,
            "is finer than one request per microsecond",
        );
    }
}

/// The `rate_limits` section of the edge's dynamic config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    /// Windows for every tenant without its own entry in `tenants`.
    pub tenant_default: Vec<QuotaConfig>,
    /// Per-tenant windows, replacing `tenant_default` for that tenant.
    pub tenants: HashMap<TenantId, Vec<QuotaConfig>>,
    /// Windows per consumer (JWT subject or API key) within a tenant.
    pub consumer: Vec<QuotaConfig>,
}

impl RateLimitsConfig {
    pub fn validate(&self, v: &mut Validator) {
        for (i, q) in self.tenant_default.iter().enumerate() {
            q.validate(v, &format!("tenant_default[{i}]"));
        }
        for (tenant, quotas) in &self.tenants {
            for (i, q) in quotas.iter().enumerate() {
                q.validate(v, &format!("tenants.{tenant}[{i}]"));
            }
        }
        for (i, q) in self.consumer.iter().enumerate() {
            q.validate(v, &format!("consumer[{i}]"));
        }
    }
}

/// The compiled policy: quotas resolved once per config revision, so a request only builds
/// its bucket list.
#[derive(Debug, Clone, Default)]
pub struct RateLimitPolicy {
    tenant_default: Vec<Quota>,
    tenants: HashMap<TenantId, Vec<Quota>>,
    consumer: Vec<Quota>,
}

impl RateLimitPolicy {
    pub fn new(cfg: &RateLimitsConfig) -> Self {
        let quotas = |qs: &[QuotaConfig]| qs.iter().map(QuotaConfig::quota).collect::<Vec<_>>();
        Self {
            tenant_default: quotas(&cfg.tenant_default),
            tenants: cfg
                .tenants
                .iter()
                .map(|(t, qs)| (t.clone(), quotas(qs)))
                .collect(),
            consumer: quotas(&cfg.consumer),
        }
    }

    /// The buckets one request charges. Empty when nothing limits it.
    pub fn limits_for(
        &self,
        tenant: &TenantId,
        route_id: &str,
        route_quotas: &[Quota],
        consumer: &str,
    ) -> Vec<Limit> {
        let tenant_quotas = self.tenants.get(tenant).unwrap_or(&self.tenant_default);
        let mut limits =
            Vec::with_capacity(tenant_quotas.len() + route_quotas.len() + self.consumer.len());
        let bucket = |name: String, quotas: &[Quota], out: &mut Vec<Limit>| {
            out.extend(quotas.iter().map(|q| Limit {
                bucket: name.clone(),
                quota: *q,
            }));
        };
        bucket("tenant".to_owned(), tenant_quotas, &mut limits);
        bucket(format!("route:{route_id}"), route_quotas, &mut limits);
        bucket(format!("consumer:{consumer}"), &self.consumer, &mut limits);
        limits
    }
}

/// Sets `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds, rounded up)
/// from the most restrictive bucket, as the IETF RateLimit header fields draft and most
/// gateways do.
pub fn set_headers(headers: &mut HeaderMap, decision: &Decision) {
    let reset = decision.reset_after.as_secs() + u64::from(decision.reset_after.subsec_nanos() > 0);
    headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(reset));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str) -> TenantId {
        TenantId::new(id).unwrap()
    }

    fn cfg(yaml: &str) -> RateLimitsConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn tenant_override_replaces_default_and_all_levels_apply() {
        let policy = RateLimitPolicy::new(&cfg(
            "tenant_default: [{limit: 100, per: 1s}, {limit: 10000, per: 1day}]\n\
             tenants:\n  acme: [{limit: 5, per: 1s, burst: 10}]\n\
             consumer: [{limit: 20, per: 1s}]\n",
        ));
        let route = [Quota::per(50, Duration::from_secs(1))];
        let other = policy.limits_for(&t("other"), "chat", &route, "alice");
        let names: Vec<&str> = other.iter().map(|l| l.bucket.as_str()).collect();
        assert_eq!(
            names,
            ["tenant", "tenant", "route:chat", "consumer:alice"],
            "two tenant windows, the route's, the consumer's"
        );
        let acme = policy.limits_for(&t("acme"), "chat", &[], "bob");
        assert_eq!(acme.len(), 2);
        assert_eq!(acme[0].quota.limit, 5);
        assert_eq!(acme[0].quota.burst, Some(10));
        assert_eq!(acme[1].bucket, "consumer:bob");
    }

    #[test]
    fn nothing_configured_limits_nothing() {
        let policy = RateLimitPolicy::new(&RateLimitsConfig::default());
        assert!(policy.limits_for(&t("a"), "r", &[], "s").is_empty());
    }

    #[test]
    fn bad_quotas_are_reported_with_paths() {
        let c =
            cfg("tenant_default: [{limit: 0, per: 1s}]\nconsumer: [{limit: 5000000, per: 1s}]\n");
        let mut v = Validator::default();
        c.validate(&mut v);
        let errors = v.finish().unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.contains(&"tenant_default[0].limit"), "{paths:?}");
        assert!(paths.contains(&"consumer[0]"), "{paths:?}");
        assert!(serde_yaml_ng::from_str::<RateLimitsConfig>("tenants: {'bad/id': []}").is_err());
        assert!(serde_yaml_ng::from_str::<RateLimitsConfig>("consumers: []").is_err());
    }

    #[test]
    fn headers_round_reset_up() {
        let mut h = HeaderMap::new();
        set_headers(
            &mut h,
            &Decision {
                allowed: true,
                limit: 100,
                remaining: 42,
                reset_after: Duration::from_millis(1200),
                retry_after: None,
            },
        );
        assert_eq!(h["ratelimit-limit"], "100");
        assert_eq!(h["ratelimit-remaining"], "42");
        assert_eq!(h["ratelimit-reset"], "2");
    }
}
