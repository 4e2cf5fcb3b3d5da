//! A budget store that survives its real backend: [`ResilientBudgetStore`] sends calls to the
//! primary (Redis) and, when it fails, applies the configured [`FailurePolicy`], skipping the
//! primary for a cooldown after each failure (see
//! [`ratelimit::resilient`](crate::store::ratelimit::resilient), whose config and breaker it
//! shares).

use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use async_trait::async_trait;
use futures::future::BoxFuture;
use prometheus::{IntCounterVec, register_int_counter_vec};

use crate::store::budget::embedded::EmbeddedBudgetStore;
use crate::store::budget::period::{self, Window};
use crate::store::budget::redis::RedisBudgetStore;
use crate::store::budget::{BudgetLimit, BudgetStore, Period, Reservation};
use crate::store::ratelimit::resilient::{Breaker, ResilienceConfig};
use crate::store::{FailurePolicy, StoreError};
use crate::tenant::TenantId;

/// Budget calls answered by the failure policy instead of the primary backend.
static FALLBACKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gatez_budget_fallback_total",
        "Budget calls answered by the failure policy because the primary backend failed",
        &["policy"]
    )
    .expect("gatez_budget_fallback_total is registered once")
});

/// A budget store over a primary backend (normally [`RedisBudgetStore`]) that applies a
/// [`FailurePolicy`] when the primary is down or slow:
/// - `fail_open`: reservations are granted and adjustments dropped; `usage` still returns the
///   error, since there is no usage to report;
/// - `fail_closed`: the error is returned (the HTTP layer answers 503);
/// - `local`: this node's [`EmbeddedBudgetStore`] counts instead, so budgets hold per node
///   and start from zero there. Local counts are not carried over to the primary when it
///   recovers, and adjustments of reservations made on the primary are applied locally.
///
/// Errors that are not backend failures (an invalid limit) are returned whatever the policy.
pub struct ResilientBudgetStore {
    primary: Arc<dyn BudgetStore>,
    local: Option<EmbeddedBudgetStore>,
    breaker: Breaker,
}

impl std::fmt::Debug for ResilientBudgetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientBudgetStore")
            .field("primary", &self.primary.backend())
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl ResilientBudgetStore {
    pub fn new(primary: Arc<dyn BudgetStore>, config: &ResilienceConfig) -> Self {
        let local = (config.on_failure == FailurePolicy::Local).then(EmbeddedBudgetStore::new);
        Self {
            primary,
            local,
            breaker: Breaker::new("budget", config, &FALLBACKS),
        }
    }

    /// The Redis store on `conn`, wrapped.
    pub fn redis(conn: redis::aio::ConnectionManager, config: &ResilienceConfig) -> Self {
        Self::new(Arc::new(RedisBudgetStore::new(conn)), config)
    }

    /// Runs `op` on the primary, or, when the primary fails or is cooling down, applies the
    /// failure policy: `local` runs `op` on the local store; the others first `validate` the
    /// request (a malformed one is reported as such whatever the backend's state), then
    /// `fail_closed` returns the error and `fail_open` answers with `open(error)`.
    async fn run<'a, T>(
        &'a self,
        op: impl Fn(&'a dyn BudgetStore) -> BoxFuture<'a, Result<T, StoreError>>,
        validate: impl FnOnce() -> Result<(), StoreError>,
        open: impl FnOnce(StoreError) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let backend = self.primary.backend();
        let error = if self.breaker.try_primary() {
            match op(&*self.primary).await {
                Ok(answer) => {
                    self.breaker.on_success(backend);
                    return Ok(answer);
                }
                Err(error) if error.is_backend_failure() => {
                    self.breaker.on_failure(backend, &error);
                    error
                }
                Err(error) => return Err(error),
            }
        } else {
            self.breaker.skipped_error(backend)
        };
        self.breaker.note_fallback(backend);
        match self.breaker.policy() {
            FailurePolicy::Local => {
                let local = self.local.as_ref().expect("built for the local policy");
                op(local).await
            }
            FailurePolicy::FailClosed => validate().and(Err(error)),
            FailurePolicy::FailOpen => validate().and_then(|()| open(error)),
        }
    }
}

#[async_trait]
impl BudgetStore for ResilientBudgetStore {
    async fn reserve(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        amount: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        self.run(
            |store| store.reserve(tenant, limits, amount, now),
            || {
                period::check_amount(amount)?;
                period::counters(tenant, limits, now).map(drop)
            },
            |_| Ok(Reservation::Granted { amount }),
        )
        .await
    }

    async fn adjust(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        delta: i64,
        reserved_at: SystemTime,
    ) -> Result<(), StoreError> {
        self.run(
            |store| store.adjust(tenant, limits, delta, reserved_at),
            || {
                period::check_delta(delta)?;
                period::counters(tenant, limits, reserved_at).map(drop)
            },
            // The correction is lost; the usage it belonged to was granted open anyway.
            |_| Ok(()),
        )
        .await
    }

    async fn usage(
        &self,
        tenant: &TenantId,
        name: &str,
        period: Period,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        self.run(
            |store| store.usage(tenant, name, period, now),
            || Window::containing(period, now).map(drop),
            // There is no usage to report.
            Err,
        )
        .await
    }

    fn backend(&self) -> &'static str {
        self.primary.backend()
    }
}
