//! Token/cost budgets per tenant over calendar periods, reserved before a call and
//! reconciled after it.
//!
//! Backends: [`embedded::EmbeddedBudgetStore`] and [`redis::RedisBudgetStore`] (Lua, atomic
//! across replicas). Amounts are integers: tokens, or cost in micro-units of currency.

use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;
use crate::tenant::TenantId;

pub mod embedded;
pub mod period;
pub mod redis;
pub mod resilient;

/// A calendar period in UTC. A budget's window is the period containing "now"; usage starts
/// from zero when the next one begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Minute,
    Hour,
    Day,
    Month,
}

/// One budget to charge: a name unique within the tenant (e.g. `tokens`, `cost`,
/// `tokens:key:abc`), its period and its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetLimit {
    pub name: String,
    pub period: Period,
    pub limit: u64,
}

/// The answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Every budget had room; `amount` is now counted against each of them until reconciled.
    Granted { amount: u64 },
    /// The named budget would go over its limit; nothing was reserved in any budget.
    Exceeded {
        name: String,
        period: Period,
        limit: u64,
        used: u64,
        /// Start of the next period, when the budget starts from zero again.
        resets_at: SystemTime,
    },
}

/// A tenant-scoped budget counter.
#[async_trait]
pub trait BudgetStore: Send + Sync + 'static {
    /// Reserves `amount` in every budget of `limits`, all or none, in the periods containing
    /// `now`. Concurrent reservations can never together exceed a limit.
    async fn reserve(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        amount: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError>;

    /// Corrects the usage of every budget in `limits` by `delta` (actual minus reserved; may be
    /// negative to release an over-estimate) in the periods containing `reserved_at`. Usage
    /// never goes below zero. Reconciling may take a budget over its limit: the tokens were
    /// spent, so they are counted.
    async fn adjust(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        delta: i64,
        reserved_at: SystemTime,
    ) -> Result<(), StoreError>;

    /// Current usage of one budget in the period containing `now`.
    async fn usage(
        &self,
        tenant: &TenantId,
        name: &str,
        period: Period,
        now: SystemTime,
    ) -> Result<u64, StoreError>;

    fn backend(&self) -> &'static str;
}
