//! The in-process budget store: one node's counters behind one mutex.
//!
//! One lock makes a reservation across several budgets trivially all-or-none; the critical
//! section is a few hash lookups, far shorter than the LLM call a reservation precedes.
//! Counters expire like Redis keys: at their window's end plus [`GRACE`](super::period::GRACE)
//! in wall-clock time, and a periodic sweep drops them.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::store::StoreError;
use crate::store::budget::period::{self, Window, exceeded};
use crate::store::budget::{BudgetLimit, BudgetStore, Period, Reservation};
use crate::tenant::TenantId;

/// How often expired counters are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Count {
    used: u64,
    expires_at: SystemTime,
}

#[derive(Debug)]
struct State {
    counts: HashMap<String, Count>,
    next_sweep: SystemTime,
}

impl State {
    /// Usage of a counter as of `wall` (an expired counter reads as zero, as in Redis).
    fn used(&self, key: &str, wall: SystemTime) -> u64 {
        self.counts
            .get(key)
            .filter(|c| c.expires_at > wall)
            .map_or(0, |c| c.used)
    }

    fn sweep_if_due(&mut self, wall: SystemTime) {
        if wall < self.next_sweep {
            return;
        }
        self.counts.retain(|_, c| c.expires_at > wall);
        self.next_sweep = wall + SWEEP_INTERVAL;
    }
}

/// In-process budget store. Budgets hold per process; use the Redis backend to share them
/// across replicas.
#[derive(Debug)]
pub struct EmbeddedBudgetStore {
    state: Mutex<State>,
}

impl Default for EmbeddedBudgetStore {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedBudgetStore {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                counts: HashMap::new(),
                next_sweep: SystemTime::UNIX_EPOCH,
            }),
        }
    }

    /// Number of counters currently held (live ones, plus expired ones not yet swept).
    pub fn counter_count(&self) -> usize {
        self.lock().counts.len()
    }

    /// Every critical section leaves the map consistent (no panics between related writes),
    /// so a poisoned lock still guards valid data.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`BudgetStore::reserve`] with `wall` as the wall clock that expires counters.
    fn reserve_at(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        amount: u64,
        now: SystemTime,
        wall: SystemTime,
    ) -> Result<Reservation, StoreError> {
        period::check_amount(amount)?;
        let counters = period::counters(tenant, limits, now)?;
        let mut state = self.lock();
        state.sweep_if_due(wall);
        for (limit, counter) in limits.iter().zip(&counters) {
            let used = state.used(&counter.key, wall);
            if used.saturating_add(amount) > limit.limit {
                return Ok(exceeded(limit, used, &counter.window));
            }
        }
        if amount > 0 {
            for counter in counters {
                let expires_at = counter.window.expires_at();
                if expires_at <= wall {
                    // Like PEXPIREAT in the past: the counter is gone at once.
                    continue;
                }
                let count = state.counts.entry(counter.key).or_insert(Count {
                    used: 0,
                    expires_at,
                });
                if count.expires_at <= wall {
                    count.used = 0;
                }
                count.used += amount;
                count.expires_at = expires_at;
            }
        }
        Ok(Reservation::Granted { amount })
    }

    /// [`BudgetStore::adjust`] with `wall` as the wall clock that expires counters.
    fn adjust_at(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        delta: i64,
        reserved_at: SystemTime,
        wall: SystemTime,
    ) -> Result<(), StoreError> {
        period::check_delta(delta)?;
        let counters = period::counters(tenant, limits, reserved_at)?;
        if delta == 0 {
            return Ok(());
        }
        let mut state = self.lock();
        state.sweep_if_due(wall);
        for counter in counters {
            let used = state.used(&counter.key, wall).saturating_add_signed(delta);
            let expires_at = counter.window.expires_at();
            if used == 0 || expires_at <= wall {
                state.counts.remove(&counter.key);
            } else {
                state.counts.insert(counter.key, Count { used, expires_at });
            }
        }
        Ok(())
    }

    fn usage_at(
        &self,
        tenant: &TenantId,
        name: &str,
        period: Period,
        now: SystemTime,
        wall: SystemTime,
    ) -> Result<u64, StoreError> {
        let window = Window::containing(period, now)?;
        let key = period::counter_key(tenant, name, &window);
        Ok(self.lock().used(&key, wall))
    }
}

#[async_trait]
impl BudgetStore for EmbeddedBudgetStore {
    async fn reserve(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        amount: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        self.reserve_at(tenant, limits, amount, now, SystemTime::now())
    }

    async fn adjust(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        delta: i64,
        reserved_at: SystemTime,
    ) -> Result<(), StoreError> {
        self.adjust_at(tenant, limits, delta, reserved_at, SystemTime::now())
    }

    async fn usage(
        &self,
        tenant: &TenantId,
        name: &str,
        period: Period,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        self.usage_at(tenant, name, period, now, SystemTime::now())
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn tenant() -> TenantId {
        TenantId::new("acme").unwrap()
    }

    fn hourly(limit: u64) -> BudgetLimit {
        BudgetLimit {
            name: "tokens".into(),
            period: Period::Hour,
            limit,
        }
    }

    /// 2024-03-10 13:00 UTC, the start of an hour.
    fn hour_start() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_710_075_600)
    }

    #[test]
    fn counters_expire_an_hour_after_their_window() {
        let store = EmbeddedBudgetStore::new();
        let t = tenant();
        let now = hour_start();
        let limits = [hourly(100)];
        store.reserve_at(&t, &limits, 10, now, now).unwrap();
        let read = |wall| {
            store
                .usage_at(&t, "tokens", Period::Hour, now, wall)
                .unwrap()
        };
        // Still readable through the grace period after the window's end...
        assert_eq!(read(now + 2 * HOUR - Duration::from_secs(1)), 10);
        // ...and gone after it, even before the sweep removes it.
        assert_eq!(read(now + 2 * HOUR), 0);
        assert_eq!(store.counter_count(), 1);
        // The sweep runs on the next write and releases the memory.
        store
            .reserve_at(&t, &limits, 0, now + 3 * HOUR, now + 3 * HOUR)
            .unwrap();
        assert_eq!(store.counter_count(), 0);
    }

    #[test]
    fn an_expired_counter_is_not_revived_by_a_late_write() {
        let store = EmbeddedBudgetStore::new();
        let t = tenant();
        let now = hour_start();
        let limits = [hourly(100)];
        store.reserve_at(&t, &limits, 10, now, now).unwrap();
        let late = now + 5 * HOUR;
        // Reconciling long after the window is gone keeps nothing (as PEXPIREAT in the past).
        store.adjust_at(&t, &limits, 5, now, late).unwrap();
        assert_eq!(
            store
                .usage_at(&t, "tokens", Period::Hour, now, late)
                .unwrap(),
            0
        );
        // A reservation dated in a long-gone window is checked against zero, kept nowhere.
        assert_eq!(
            store.reserve_at(&t, &limits, 100, now, late).unwrap(),
            Reservation::Granted { amount: 100 }
        );
        assert_eq!(
            store
                .usage_at(&t, "tokens", Period::Hour, now, late)
                .unwrap(),
            0
        );
    }
}
