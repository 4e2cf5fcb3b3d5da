//! A budget store that survives its real backend: [`ResilientBudgetStore`] sends calls to the
//! primary (Redis) and, when it fails, applies the configured
//! [`FailurePolicy`](crate::store::FailurePolicy), skipping the primary for a cooldown after
//! each failure. The cooldown is the store-wide [`breaker`](crate::store::breaker) and the
//! policy is applied by `PolicyGuard`, as for the rate limiter.

use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use async_trait::async_trait;
use prometheus::{IntCounterVec, register_int_counter_vec};

use crate::store::budget::embedded::EmbeddedBudgetStore;
use crate::store::budget::period::{self, Window};
use crate::store::budget::redis::RedisBudgetStore;
use crate::store::budget::{BudgetLimit, BudgetStore, Period, Reservation};
use crate::store::policy::PolicyGuard;
use crate::store::{ResilienceConfig, StoreError};
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
/// [`FailurePolicy`](crate::store::FailurePolicy) when the primary is down or slow:
/// - `fail_open`: reservations are granted and adjustments dropped; `usage` still returns the
///   error, since there is no usage to report;
/// - `fail_closed`: the error is returned (the HTTP layer answers 503);
/// - `local`: this node's [`EmbeddedBudgetStore`] counts instead, so budgets hold per node
///   and start from zero there. Local counts are not carried over to the primary when it
///   recovers, and adjustments of reservations made on the primary are applied locally.
///
/// Errors that are not backend failures (an invalid limit) are returned whatever the policy.
#[derive(Debug)]
pub struct ResilientBudgetStore {
    guard: PolicyGuard<dyn BudgetStore>,
}

impl ResilientBudgetStore {
    /// Wraps `primary`; with the `local` policy, also builds this node's embedded store.
    pub fn new(primary: Arc<dyn BudgetStore>, config: &ResilienceConfig) -> Self {
        let backend = primary.backend();
        Self {
            guard: PolicyGuard::new(
                "budget",
                primary,
                backend,
                || Box::new(EmbeddedBudgetStore::new()),
                config,
                &FALLBACKS,
            ),
        }
    }

    /// The Redis store on `conn`, wrapped.
    pub fn redis(conn: redis::aio::ConnectionManager, config: &ResilienceConfig) -> Self {
        Self::new(Arc::new(RedisBudgetStore::new(conn)), config)
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
        self.guard
            .run(
                |store| store.reserve(tenant, limits, amount, now),
                || {
                    period::check_amount(amount)?;
                    period::counters(tenant, limits, now).map(drop)
                },
                |(), _| Ok(Reservation::Granted { amount }),
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
        self.guard
            .run(
                |store| store.adjust(tenant, limits, delta, reserved_at),
                || {
                    period::check_delta(delta)?;
                    period::counters(tenant, limits, reserved_at).map(drop)
                },
                // The correction is lost; the usage it belonged to was granted open anyway.
                |(), _| Ok(()),
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
        self.guard
            .run(
                |store| store.usage(tenant, name, period, now),
                || Window::containing(period, now).map(drop),
                // There is no usage to report.
                |(), error| Err(error),
            )
            .await
    }

    fn backend(&self) -> &'static str {
        self.guard.backend()
    }
}
