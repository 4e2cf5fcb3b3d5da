//! What a store does when its real backend fails: a deliberate, configured choice
//! ([`FailurePolicy`], configured with [`ResilienceConfig`]), and `PolicyGuard`, which applies
//! it for the stores that enforce something (rate limits, budgets).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus::{IntCounter, IntCounterVec};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;
use crate::store::breaker::{self, Attempt, Breaker};

/// Behaviour when a real backend (Redis, ClickHouse, etcd) fails or times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Let the request through as if the store had said yes (availability over enforcement).
    FailOpen,
    /// Refuse the request with 503 (enforcement over availability).
    #[default]
    FailClosed,
    /// Enforce with this node's embedded backend until the real one answers again: limits hold
    /// per node instead of across the cluster.
    Local,
}

impl FailurePolicy {
    /// The policy as spelled in config, for metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::FailOpen => "fail_open",
            FailurePolicy::FailClosed => "fail_closed",
            FailurePolicy::Local => "local",
        }
    }
}

/// How a Redis-backed store that enforces something (rate limits, budgets) behaves while
/// Redis fails.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResilienceConfig {
    /// What a call gets while Redis is failing: `fail_open`, `fail_closed` (default) or
    /// `local`.
    pub on_failure: FailurePolicy,
    /// How long Redis is skipped after a failure before one call probes it again
    /// (default `1s`). Calls in between go straight to the failure policy.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self {
            on_failure: FailurePolicy::default(),
            cooldown: breaker::DEFAULT_COOLDOWN,
        }
    }
}

impl ResilienceConfig {
    /// Longest cooldown accepted: beyond this a recovered Redis would go unused for too long.
    pub const MAX_COOLDOWN: Duration = breaker::MAX_COOLDOWN;

    /// Checks what serde cannot: the cooldown is positive and at most [`Self::MAX_COOLDOWN`].
    pub fn validate(&self) -> Result<(), String> {
        breaker::validate_cooldown(self.cooldown)
    }

    /// The breaker this config asks for, in front of `backend` of `store`.
    fn breaker(&self, store: &'static str, backend: &'static str) -> Breaker {
        Breaker::new(
            store,
            backend,
            self.on_failure,
            self.cooldown,
            breaker::DEFAULT_WARN_INTERVAL,
        )
    }
}

/// A primary store behind a [`Breaker`], with the [`FailurePolicy`] applied to the calls the
/// primary cannot answer: what the resilient rate limiter and budget store share. `S` is the
/// store's trait object (`dyn RateLimiter`, `dyn BudgetStore`).
pub(crate) struct PolicyGuard<S: ?Sized> {
    primary: Arc<S>,
    /// This node's embedded store; present exactly when the policy is `local`.
    local: Option<Box<S>>,
    breaker: Breaker,
    /// The store's fallback counter, labelled with the policy.
    fallbacks: IntCounter,
}

impl<S: ?Sized> std::fmt::Debug for PolicyGuard<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyGuard")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<S: ?Sized> PolicyGuard<S> {
    /// Guards `primary` of `store` (whose backend is `backend`) as `config` says. `local`
    /// builds the embedded fallback, only for the `local` policy; fallbacks are counted in
    /// `fallbacks`, a counter vector labelled by `policy`.
    pub(crate) fn new(
        store: &'static str,
        primary: Arc<S>,
        backend: &'static str,
        local: impl FnOnce() -> Box<S>,
        config: &ResilienceConfig,
        fallbacks: &IntCounterVec,
    ) -> Self {
        Self {
            primary,
            local: (config.on_failure == FailurePolicy::Local).then(local),
            breaker: config.breaker(store, backend),
            fallbacks: fallbacks.with_label_values(&[config.on_failure.as_str()]),
        }
    }

    /// The primary's backend name.
    pub(crate) fn backend(&self) -> &'static str {
        self.breaker.backend()
    }

    /// Runs `op` on the primary, or, when the primary fails as a backend or is being skipped,
    /// applies the failure policy: `local` runs `op` on the local store; the others first
    /// `validate` the request (a malformed one is reported as such whatever the backend's
    /// state), then `fail_closed` returns the backend's error and `fail_open` answers with
    /// `open(validated, error)`. Errors that are not backend failures are returned as they are.
    pub(crate) async fn run<'a, T, V>(
        &'a self,
        op: impl Fn(&'a S) -> BoxFuture<'a, Result<T, StoreError>>,
        validate: impl FnOnce() -> Result<V, StoreError>,
        open: impl FnOnce(V, StoreError) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let failure = match self.breaker.attempt(|| op(&*self.primary)).await {
            Attempt::Answered(answer) => return answer,
            Attempt::Failed(error) => Some(error),
            Attempt::Skipped => None,
        };
        self.breaker
            .note_fallback(&self.fallbacks, failure.as_ref());
        let error = || failure.unwrap_or_else(|| self.breaker.skipped_error());
        match self.breaker.policy() {
            FailurePolicy::Local => {
                let local = self.local.as_deref().expect("built for the local policy");
                op(local).await
            }
            FailurePolicy::FailClosed => validate().and_then(|_| Err(error())),
            FailurePolicy::FailOpen => validate().and_then(|validated| open(validated, error())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::FutureExt;

    use super::*;

    #[test]
    fn config_defaults_and_validation() {
        let c: ResilienceConfig = serde_yaml_ng::from_str("{}").unwrap();
        assert_eq!(c, ResilienceConfig::default());
        assert_eq!(c.on_failure, FailurePolicy::FailClosed);
        assert_eq!(c.cooldown, Duration::from_secs(1));
        let c: ResilienceConfig =
            serde_yaml_ng::from_str("on_failure: local\ncooldown: 250ms").unwrap();
        assert_eq!(c.on_failure, FailurePolicy::Local);
        assert_eq!(c.cooldown, Duration::from_millis(250));
        assert!(c.validate().is_ok());
        assert!(serde_yaml_ng::from_str::<ResilienceConfig>("cooldwn: 1s").is_err());
        let with_cooldown = |ms| ResilienceConfig {
            cooldown: Duration::from_millis(ms),
            ..ResilienceConfig::default()
        };
        assert!(with_cooldown(0).validate().is_err());
        assert!(with_cooldown(301_000).validate().is_err());
    }

    #[test]
    fn policy_labels_are_the_config_spelling() {
        for policy in [
            FailurePolicy::FailOpen,
            FailurePolicy::FailClosed,
            FailurePolicy::Local,
        ] {
            let parsed: FailurePolicy = serde_yaml_ng::from_str(policy.as_str()).unwrap();
            assert_eq!(parsed, policy);
        }
    }

    /// A toy store: answers its name, or fails as a backend, and counts its calls.
    struct Toy {
        name: &'static str,
        down: bool,
        calls: AtomicUsize,
    }

    impl Toy {
        fn new(name: &'static str, down: bool) -> Self {
            Self {
                name,
                down,
                calls: AtomicUsize::new(0),
            }
        }

        fn call(&self) -> BoxFuture<'_, Result<&'static str, StoreError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let answer = if self.down {
                Err(StoreError::unavailable("toy", "down"))
            } else {
                Ok(self.name)
            };
            async move { answer }.boxed()
        }
    }

    fn make_guard(policy: FailurePolicy, primary: &Arc<Toy>) -> PolicyGuard<Toy> {
        let config = ResilienceConfig {
            on_failure: policy,
            cooldown: Duration::from_secs(60),
        };
        let fallbacks = IntCounterVec::new(
            prometheus::Opts::new("test_policy_fallbacks", "test"),
            &["policy"],
        )
        .unwrap();
        PolicyGuard::new(
            "test",
            primary.clone(),
            "toy",
            || Box::new(Toy::new("local", false)),
            &config,
            &fallbacks,
        )
    }

    async fn run(guard: &PolicyGuard<Toy>, valid: bool) -> Result<&'static str, StoreError> {
        guard
            .run(
                Toy::call,
                || {
                    valid
                        .then_some(())
                        .ok_or_else(|| StoreError::Invalid("malformed".into()))
                },
                |(), _| Ok("open"),
            )
            .await
    }

    #[tokio::test]
    async fn each_policy_answers_for_a_failed_or_skipped_primary() {
        for (policy, expected) in [
            (FailurePolicy::Local, Some("local")),
            (FailurePolicy::FailOpen, Some("open")),
            (FailurePolicy::FailClosed, None),
        ] {
            let primary = Arc::new(Toy::new("primary", true));
            let guard = make_guard(policy, &primary);
            // The first call fails on the primary, the second skips it (cooldown).
            for _ in 0..2 {
                let answer = run(&guard, true).await;
                assert_eq!(answer.as_ref().ok().copied(), expected, "{policy:?}");
                if let Err(error) = answer {
                    assert!(error.is_backend_failure(), "{error:?}");
                }
            }
            assert_eq!(primary.calls.load(Ordering::SeqCst), 1, "{policy:?}");
        }
    }

    #[tokio::test]
    async fn a_healthy_primary_answers_and_malformed_requests_stay_errors() {
        let primary = Arc::new(Toy::new("primary", false));
        let guard = make_guard(FailurePolicy::FailOpen, &primary);
        assert_eq!(run(&guard, true).await.unwrap(), "primary");

        let primary = Arc::new(Toy::new("primary", true));
        for policy in [FailurePolicy::FailOpen, FailurePolicy::FailClosed] {
            let guard = make_guard(policy, &primary);
            let error = run(&guard, false).await.unwrap_err();
            assert!(
                matches!(error, StoreError::Invalid(_)),
                "{policy:?}: {error:?}"
            );
        }
    }
}
