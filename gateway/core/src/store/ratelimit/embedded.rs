//! The in-process rate limiter: one node's buckets in a concurrent map, on a monotonic clock.
//!
//! Each bucket is a TAT behind its own mutex. A check locks the buckets it charges in key
//! order (so two checks over overlapping buckets cannot deadlock), decides, and writes all or
//! none. Buckets whose TAT has passed hold no information (a fresh bucket behaves the same),
//! so a periodic sweep drops them and memory stays proportional to the recently busy keys.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;

use crate::store::StoreError;
use crate::store::ratelimit::gcra::{self, Bucket};
use crate::store::ratelimit::{Decision, Limit, RateLimiter};
use crate::tenant::TenantId;

/// How often idle buckets are swept. Short enough that a burst of one-off keys (say, many
/// clients each seen once) is released quickly; long enough that the O(n) sweep is rare.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Cell {
    tat_us: u64,
    /// Set by the sweep when it removes the cell from the map: a check that fetched the cell
    /// just before must not write to it (the write would be lost), so it fetches again.
    retired: bool,
}

type Slot = Arc<Mutex<Cell>>;

/// In-process GCRA rate limiter. Limits hold per process; use the Redis backend to share them
/// across replicas.
#[derive(Debug)]
pub struct EmbeddedRateLimiter {
    cells: DashMap<String, Slot>,
    epoch: Instant,
    next_sweep_us: AtomicU64,
}

impl Default for EmbeddedRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedRateLimiter {
    pub fn new() -> Self {
        Self {
            cells: DashMap::new(),
            epoch: Instant::now(),
            next_sweep_us: AtomicU64::new(micros(SWEEP_INTERVAL)),
        }
    }

    /// Number of buckets currently held (busy ones, plus idle ones not yet swept).
    pub fn bucket_count(&self) -> usize {
        self.cells.len()
    }

    fn now_us(&self) -> u64 {
        micros(self.epoch.elapsed())
    }

    /// [`RateLimiter::check`] at an explicit instant (microseconds on this limiter's clock).
    fn check_at(
        &self,
        tenant: &TenantId,
        limits: &[Limit],
        cost: u32,
        now_us: u64,
    ) -> Result<Decision, StoreError> {
        let buckets = gcra::buckets(tenant, limits)?;
        self.maybe_sweep(now_us);
        let mut order: Vec<usize> = (0..buckets.len()).collect();
        order.sort_unstable_by(|&a, &b| buckets[a].key.cmp(&buckets[b].key));
        loop {
            // Fetch every slot before locking any: holding a cell lock while waiting for a map
            // shard could deadlock against the sweep, which holds a shard while try-locking.
            let slots: Vec<Slot> = order.iter().map(|&i| self.slot(&buckets[i])).collect();
            let mut cells: Vec<MutexGuard<'_, Cell>> = slots.iter().map(|s| lock(s)).collect();
            if cells.iter().any(|c| c.retired) {
                continue;
            }
            let outcomes: Vec<gcra::Outcome> = order
                .iter()
                .zip(&cells)
                .map(|(&i, cell)| gcra::evaluate(&buckets[i].params, cell.tat_us, now_us, cost))
                .collect();
            if outcomes.iter().all(|o| o.allowed) {
                for (cell, outcome) in cells.iter_mut().zip(&outcomes) {
                    cell.tat_us = outcome.new_tat_us;
                }
            }
            let decision = gcra::most_restrictive(outcomes)
                .expect("gcra::buckets refuses an empty list")
                .decision();
            return Ok(decision);
        }
    }

    fn slot(&self, bucket: &Bucket) -> Slot {
        if let Some(slot) = self.cells.get(&bucket.key) {
            return Arc::clone(&slot);
        }
        Arc::clone(&self.cells.entry(bucket.key.clone()).or_default())
    }

    /// Drops buckets whose TAT has passed, at most once per [`SWEEP_INTERVAL`]; the caller
    /// that wins the race to the due time does the work.
    fn maybe_sweep(&self, now_us: u64) {
        let due = self.next_sweep_us.load(Ordering::Relaxed);
        if now_us < due
            || self
                .next_sweep_us
                .compare_exchange(
                    due,
                    now_us.saturating_add(micros(SWEEP_INTERVAL)),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        self.cells.retain(|_, slot| {
            let mut cell = match slot.try_lock() {
                Ok(cell) => cell,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                // In use right now, so not idle.
                Err(TryLockError::WouldBlock) => return true,
            };
            if cell.tat_us <= now_us {
                cell.retired = true;
                false
            } else {
                true
            }
        });
    }
}

/// A cell's critical section cannot panic halfway through a write (it only assigns integers),
/// so a poisoned lock still guards a consistent value.
fn lock(slot: &Slot) -> MutexGuard<'_, Cell> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[async_trait]
impl RateLimiter for EmbeddedRateLimiter {
    async fn check(
        &self,
        tenant: &TenantId,
        limits: &[Limit],
        cost: u32,
    ) -> Result<Decision, StoreError> {
        self.check_at(tenant, limits, cost, self.now_us())
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ratelimit::Quota;

    const SEC: u64 = 1_000_000;

    fn tenant() -> TenantId {
        TenantId::new("acme").unwrap()
    }

    fn limit(bucket: &str, limit: u64, period: Duration) -> Limit {
        Limit {
            bucket: bucket.into(),
            quota: Quota::per(limit, period),
        }
    }

    #[test]
    fn idle_buckets_are_swept_and_busy_ones_kept() {
        let rl = EmbeddedRateLimiter::new();
        let t = tenant();
        let short = limit("short", 10, Duration::from_secs(1));
        let long = limit("long", 10, Duration::from_secs(3600));
        rl.check_at(&t, std::slice::from_ref(&short), 1, 0).unwrap();
        rl.check_at(&t, std::slice::from_ref(&long), 1, 0).unwrap();
        assert_eq!(rl.bucket_count(), 2);
        // Before the sweep is due nothing is dropped, even idle buckets.
        rl.check_at(&t, std::slice::from_ref(&long), 0, 5 * SEC)
            .unwrap();
        assert_eq!(rl.bucket_count(), 2);
        // At the due time the short bucket (TAT 0.1 s) is gone, the hour-long one stays.
        rl.check_at(&t, std::slice::from_ref(&long), 0, 11 * SEC)
            .unwrap();
        assert_eq!(rl.bucket_count(), 1);
        // The long bucket kept its charge: 11 s is less than one 6-minute interval.
        let d = rl
            .check_at(&t, std::slice::from_ref(&long), 0, 11 * SEC)
            .unwrap();
        assert_eq!(d.remaining, 9);
    }

    #[test]
    fn a_swept_bucket_starts_fresh_and_charges_still_count() {
        let rl = EmbeddedRateLimiter::new();
        let t = tenant();
        let l = limit("b", 2, Duration::from_secs(1));
        let slot = rl.slot(&gcra::buckets(&t, std::slice::from_ref(&l)).unwrap()[0]);
        rl.check_at(&t, std::slice::from_ref(&l), 2, 0).unwrap();
        rl.maybe_sweep(20 * SEC);
        assert_eq!(rl.bucket_count(), 0);
        assert!(
            lock(&slot).retired,
            "a holder of the old slot must see it is gone"
        );
        // The next check makes a new cell and charges it.
        assert!(
            rl.check_at(&t, std::slice::from_ref(&l), 2, 20 * SEC)
                .unwrap()
                .allowed
        );
        assert!(
            !rl.check_at(&t, std::slice::from_ref(&l), 1, 20 * SEC)
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn denial_leaves_every_bucket_untouched() {
        let rl = EmbeddedRateLimiter::new();
        let t = tenant();
        let wide = limit("wide", 100, Duration::from_secs(1));
        let narrow = limit("narrow", 1, Duration::from_secs(1));
        let both = [wide.clone(), narrow];
        assert!(rl.check_at(&t, &both, 1, 0).unwrap().allowed);
        let d = rl.check_at(&t, &both, 1, 0).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.limit, 1);
        let d = rl.check_at(&t, &[wide], 0, 0).unwrap();
        assert_eq!(d.remaining, 99, "only the admitted request was charged");
    }
}
