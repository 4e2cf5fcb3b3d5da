//! GCRA (generic cell rate algorithm): the arithmetic every rate-limiter backend runs, as pure
//! functions over integer microseconds, plus the bucket parameters and keys derived from a
//! [`Quota`].
//!
//! A bucket is one number, its TAT (theoretical arrival time): the instant at which the bucket
//! would be empty again if no more requests came. Each unit of cost pushes the TAT forward by
//! the emission interval `T = period / limit`; a request is admitted while the TAT it would
//! produce stays within the tolerance `tau = T * burst` of now. From an empty bucket exactly
//! `burst` units pass at once, and afterwards one unit per `T`.
//!
//! Microseconds (not nanoseconds) because the Redis backend runs the same comparison in Lua,
//! whose numbers are doubles: every value here stays below 2^53 and is therefore exact there.

use std::time::Duration;

use crate::keys::{self, KeyKind};
use crate::store::StoreError;
use crate::store::ratelimit::{Decision, Limit, Quota};
use crate::tenant::TenantId;

/// Longest emission interval or tolerance accepted, in microseconds (2^52 µs ≈ 142 years).
/// Keeps `now + tolerance` and every intermediate value exact as a Lua double.
pub const MAX_SPAN_US: u64 = 1 << 52;

/// The GCRA parameters of one quota, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The quota's `limit` (reported as `RateLimit-Limit`).
    pub limit: u64,
    /// The quota's period.
    pub period_us: u64,
    /// The quota's burst (its `burst`, or `limit` when unset).
    pub burst: u64,
    /// Emission interval `T`: how far one unit of cost moves the TAT.
    pub interval_us: u64,
    /// Tolerance `tau = T * burst`: how far ahead of now the TAT may run after a charge.
    pub tolerance_us: u64,
}

impl Params {
    /// Derives the parameters of `quota`, refusing quotas that cannot be represented: zero
    /// values, a rate finer than one unit per microsecond, or spans beyond [`MAX_SPAN_US`].
    pub fn new(quota: &Quota) -> Result<Self, StoreError> {
        quota.validate()?;
        let invalid = |why: &str| StoreError::Invalid(format!("quota {quota:?} {why}"));
        let period_us = u64::try_from(quota.period.as_micros())
            .ok()
            .filter(|p| *p <= MAX_SPAN_US)
            .ok_or_else(|| invalid("has a period longer than the supported 142 years"))?;
        let burst = quota.burst.unwrap_or(quota.limit);
        let interval_us = period_us / quota.limit;
        if interval_us == 0 {
            return Err(invalid(
                "is finer than one unit per microsecond: use a longer period",
            ));
        }
        let tolerance_us = interval_us
            .checked_mul(burst)
            .filter(|t| *t <= MAX_SPAN_US)
            .ok_or_else(|| invalid("has a burst spanning more than the supported 142 years"))?;
        Ok(Self {
            limit: quota.limit,
            period_us,
            burst,
            interval_us,
            tolerance_us,
        })
    }

    /// Identifies the quota inside a bucket key (`100/1000000us/b100`), so the same bucket
    /// name under a changed quota starts from a fresh TAT instead of an incompatible one.
    pub fn fingerprint(&self) -> String {
        format!("{}/{}us/b{}", self.limit, self.period_us, self.burst)
    }
}

/// What one bucket says about a request of some cost at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// The TAT to store if every bucket admits the request (the old TAT when denied).
    pub new_tat_us: u64,
    pub limit: u64,
    /// Units left after this request (before it, when denied).
    pub remaining: u64,
    /// Time until the bucket is full again.
    pub reset_after_us: u64,
    /// When denied: time until the same request would be admitted; `None` when it never
    /// can (its cost exceeds the burst). Always `None` when allowed.
    pub retry_after_us: Option<u64>,
}

impl Outcome {
    /// The outcome as the trait reports it.
    pub fn decision(&self) -> Decision {
        Decision {
            allowed: self.allowed,
            limit: self.limit,
            remaining: self.remaining,
            reset_after: Duration::from_micros(self.reset_after_us),
            retry_after: self.retry_after_us.map(Duration::from_micros),
        }
    }
}

/// Evaluates a request of `cost` units at `now_us` against a bucket whose TAT is `tat_us`
/// (0 for a bucket never used). A cost of 0 is always admitted and only reports the state.
pub fn evaluate(params: &Params, tat_us: u64, now_us: u64, cost: u32) -> Outcome {
    let interval = u128::from(params.interval_us);
    let tolerance = u128::from(params.tolerance_us);
    // A TAT in the past means an empty bucket: credit does not accumulate beyond the burst.
    let base = tat_us.max(now_us);
    let backlog = u128::from(base - now_us);
    let charge = u128::from(cost) * interval;
    // How far ahead of now the TAT would be after this request: `new_tat - now`.
    let ahead = backlog + charge;
    let units_left = |used: u128| saturate(tolerance.saturating_sub(used) / interval);
    if ahead <= tolerance {
        Outcome {
            allowed: true,
            // `ahead <= tolerance <= MAX_SPAN_US`, so this cannot overflow.
            new_tat_us: now_us + saturate(ahead),
            limit: params.limit,
            remaining: units_left(ahead),
            reset_after_us: saturate(ahead),
            retry_after_us: None,
        }
    } else {
        Outcome {
            allowed: false,
            new_tat_us: tat_us,
            limit: params.limit,
            remaining: units_left(backlog),
            reset_after_us: saturate(backlog),
            // Admitted once the TAT has drained to `tolerance - charge` ahead of now.
            retry_after_us: (charge <= tolerance).then(|| saturate(ahead - tolerance)),
        }
    }
}

fn saturate(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// The outcome to report for a check of several buckets (all or none): when any bucket
/// denies, the denying one with the longest wait (never admitted counts as longest), ties
/// broken by fewer remaining units; when all admit, the one with the fewest remaining units,
/// ties broken by the longest reset. `None` only for an empty list.
pub fn most_restrictive(outcomes: impl IntoIterator<Item = Outcome>) -> Option<Outcome> {
    outcomes.into_iter().reduce(|best, next| {
        if more_restrictive(&next, &best) {
            next
        } else {
            best
        }
    })
}

fn more_restrictive(a: &Outcome, b: &Outcome) -> bool {
    match (a.allowed, b.allowed) {
        (false, true) => true,
        (true, false) => false,
        (false, false) => {
            // `None` (never) waits longer than any `Some`.
            let wait = |o: &Outcome| o.retry_after_us.map_or(u128::MAX, u128::from);
            (wait(a), std::cmp::Reverse(a.remaining)) > (wait(b), std::cmp::Reverse(b.remaining))
        }
        (true, true) => {
            (std::cmp::Reverse(a.remaining), a.reset_after_us)
                > (std::cmp::Reverse(b.remaining), b.reset_after_us)
        }
    }
}

/// One bucket of a check: its store key and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub key: String,
    pub params: Params,
}

/// Validates `limits` and derives each bucket's key and parameters. Refuses an empty list and
/// a bucket listed twice (same name and quota): charging it twice in one check is surely a
/// configuration mistake, and refusing it keeps every backend's all-or-none logic simple.
pub fn buckets(tenant: &TenantId, limits: &[Limit]) -> Result<Vec<Bucket>, StoreError> {
    if limits.is_empty() {
        return Err(StoreError::Invalid(
            "a rate-limit check needs at least one limit".into(),
        ));
    }
    let mut out: Vec<Bucket> = Vec::with_capacity(limits.len());
    for limit in limits {
        let params = Params::new(&limit.quota)?;
        let key = keys::tenant_key(
            tenant,
            KeyKind::RateLimit,
            &[&limit.bucket, &params.fingerprint()],
        );
        if out.iter().any(|b| b.key == key) {
            return Err(StoreError::Invalid(format!(
                "bucket {:?} with quota {:?} is listed twice in one check",
                limit.bucket, limit.quota
            )));
        }
        out.push(Bucket { key, params });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000;

    fn params(limit: u64, period: Duration, burst: Option<u64>) -> Params {
        Params::new(&Quota {
            limit,
            period,
            burst,
        })
        .unwrap()
    }

    /// Runs `n` requests of `cost` at `now`, returning the final TAT and each outcome.
    fn run(p: &Params, mut tat: u64, now: u64, cost: u32, n: usize) -> (u64, Vec<Outcome>) {
        let mut outs = Vec::new();
        for _ in 0..n {
            let o = evaluate(p, tat, now, cost);
            if o.allowed {
                tat = o.new_tat_us;
            }
            outs.push(o);
        }
        (tat, outs)
    }

    #[test]
    fn exactly_burst_requests_pass_from_empty() {
        let p = params(10, Duration::from_secs(1), None);
        assert_eq!((p.interval_us, p.tolerance_us), (100_000, SEC));
        let now = 5 * SEC;
        let (tat, outs) = run(&p, 0, now, 1, 11);
        for (i, o) in outs[..10].iter().enumerate() {
            assert!(o.allowed, "request {i} should pass");
            assert_eq!(o.remaining, 9 - i as u64);
            assert_eq!(o.reset_after_us, (i as u64 + 1) * 100_000);
        }
        let denied = outs[10];
        assert!(!denied.allowed);
        assert_eq!(denied.remaining, 0);
        assert_eq!(denied.reset_after_us, SEC);
        assert_eq!(denied.retry_after_us, Some(100_000));
        assert_eq!(denied.new_tat_us, tat, "a denial does not move the TAT");
        assert_eq!(tat, now + SEC);
    }

    #[test]
    fn explicit_burst_differs_from_limit() {
        let p = params(10, Duration::from_secs(1), Some(3));
        let (_, outs) = run(&p, 0, SEC, 1, 4);
        assert_eq!(
            outs.iter().map(|o| o.allowed).collect::<Vec<_>>(),
            [true, true, true, false]
        );
        assert_eq!(outs[0].remaining, 2);
        assert_eq!(outs[3].retry_after_us, Some(100_000));
    }

    #[test]
    fn units_come_back_one_interval_at_a_time() {
        let p = params(10, Duration::from_secs(1), None);
        let now = 7 * SEC;
        let (tat, _) = run(&p, 0, now, 1, 10);
        // Just before one interval has passed: still nothing.
        assert!(!evaluate(&p, tat, now + 99_999, 1).allowed);
        let o = evaluate(&p, tat, now + 100_000, 1);
        assert!(o.allowed);
        assert_eq!(o.remaining, 0);
        // After the full period the bucket is empty again: a whole burst passes.
        let (_, outs) = run(&p, tat, now + SEC, 1, 11);
        assert_eq!(outs.iter().filter(|o| o.allowed).count(), 10);
    }

    #[test]
    fn idle_time_does_not_accumulate_beyond_the_burst() {
        let p = params(5, Duration::from_secs(1), None);
        let (tat, _) = run(&p, 0, SEC, 1, 5);
        let (_, outs) = run(&p, tat, 1_000 * SEC, 1, 6);
        assert_eq!(outs.iter().filter(|o| o.allowed).count(), 5);
    }

    #[test]
    fn cost_above_one() {
        let p = params(10, Duration::from_secs(1), None);
        let o = evaluate(&p, 0, SEC, 4);
        assert!(o.allowed);
        assert_eq!(o.remaining, 6);
        let (tat, outs) = run(&p, 0, SEC, 4, 3);
        assert!(outs[0].allowed && outs[1].allowed);
        let denied = outs[2];
        assert!(!denied.allowed);
        assert_eq!(
            denied.remaining, 2,
            "two units are still there, just not four"
        );
        // Needs 2 more units: 2 intervals.
        assert_eq!(denied.retry_after_us, Some(200_000));
        assert!(evaluate(&p, tat, SEC + 200_000, 4).allowed);
        assert!(!evaluate(&p, tat, SEC + 199_999, 4).allowed);
    }

    #[test]
    fn cost_equal_to_burst_passes_only_when_empty() {
        let p = params(10, Duration::from_secs(1), None);
        assert!(evaluate(&p, 0, SEC, 10).allowed);
        let tat = evaluate(&p, 0, SEC, 1).new_tat_us;
        let o = evaluate(&p, tat, SEC, 10);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_us, Some(100_000));
    }

    #[test]
    fn cost_above_burst_is_never_admitted() {
        let p = params(10, Duration::from_secs(1), None);
        for tat in [0, SEC + 500_000] {
            let o = evaluate(&p, tat, SEC, 11);
            assert!(!o.allowed);
            assert_eq!(o.retry_after_us, None, "no wait makes it pass");
        }
        // Even the largest cost does not overflow.
        let huge = params(1, Duration::from_secs(86_400 * 365 * 100), None);
        let o = evaluate(&huge, 0, SEC, u32::MAX);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_us, None);
        assert_eq!(o.remaining, 1);
    }

    #[test]
    fn zero_cost_reports_without_charging() {
        let p = params(10, Duration::from_secs(1), None);
        let (tat, _) = run(&p, 0, SEC, 1, 10);
        let o = evaluate(&p, tat, SEC, 0);
        assert!(o.allowed);
        assert_eq!(o.remaining, 0);
        assert_eq!(o.new_tat_us, tat);
    }

    #[test]
    fn large_periods() {
        // 10k per day: one unit every 8.64 s.
        let p = params(10_000, Duration::from_secs(86_400), None);
        assert_eq!(p.interval_us, 8_640_000);
        let now = 1_700_000_000 * SEC;
        let (tat, outs) = run(&p, 0, now, 1, 10_001);
        assert_eq!(outs.iter().filter(|o| o.allowed).count(), 10_000);
        let denied = outs[10_000];
        assert_eq!(denied.retry_after_us, Some(8_640_000));
        assert_eq!(denied.reset_after_us, 86_400 * SEC);
        assert!(evaluate(&p, tat, now + 8_640_000, 1).allowed);
        // Values stay exact in a Lua double.
        assert!(tat < (1 << 53));
    }

    #[test]
    fn rates_that_do_not_divide_evenly() {
        // 3 per second: T = 333_333 µs, tolerance 999_999 µs.
        let p = params(3, Duration::from_secs(1), None);
        let (tat, outs) = run(&p, 0, SEC, 1, 4);
        assert_eq!(outs.iter().filter(|o| o.allowed).count(), 3);
        assert!(evaluate(&p, tat, SEC + 333_333, 1).allowed);
    }

    #[test]
    fn unrepresentable_quotas_are_refused() {
        let bad = [
            Quota::per(0, Duration::from_secs(1)),
            Quota::per(1, Duration::ZERO),
            Quota {
                burst: Some(0),
                ..Quota::per(1, Duration::from_secs(1))
            },
            // Finer than 1 µs per unit.
            Quota::per(2_000_000, Duration::from_secs(1)),
            Quota::per(1, Duration::from_secs(u64::MAX / 2)),
            Quota {
                burst: Some(u64::MAX),
                ..Quota::per(1, Duration::from_secs(1))
            },
        ];
        for q in bad {
            assert!(
                matches!(Params::new(&q), Err(StoreError::Invalid(_))),
                "{q:?} should be refused"
            );
        }
        assert!(Params::new(&Quota::per(1_000_000, Duration::from_secs(1))).is_ok());
    }

    #[test]
    fn fingerprint_names_the_quota() {
        assert_eq!(
            params(100, Duration::from_secs(1), None).fingerprint(),
            "100/1000000us/b100"
        );
        assert_eq!(
            params(100, Duration::from_millis(1500), Some(7)).fingerprint(),
            "100/1500000us/b7"
        );
    }

    fn outcome(allowed: bool, remaining: u64, reset: u64, retry: Option<u64>) -> Outcome {
        Outcome {
            allowed,
            new_tat_us: 0,
            limit: 10,
            remaining,
            reset_after_us: reset,
            retry_after_us: retry,
        }
    }

    #[test]
    fn most_restrictive_prefers_denials_with_the_longest_wait() {
        let allowed = outcome(true, 0, 9, None);
        let short = outcome(false, 3, 5, Some(10));
        let long = outcome(false, 0, 5, Some(20));
        let never = outcome(false, 5, 5, None);
        assert_eq!(most_restrictive([allowed, short, long]), Some(long));
        assert_eq!(most_restrictive([long, never, short]), Some(never));
        let tie_fewer = outcome(false, 1, 5, Some(20));
        assert_eq!(most_restrictive([tie_fewer, long]), Some(long));
        assert_eq!(most_restrictive([]), None);
    }

    #[test]
    fn most_restrictive_among_admissions_has_fewest_remaining() {
        let a = outcome(true, 5, 100, None);
        let b = outcome(true, 2, 10, None);
        let c = outcome(true, 2, 50, None);
        assert_eq!(most_restrictive([a, b, c]), Some(c));
    }

    #[test]
    fn buckets_build_tenant_keys_and_refuse_duplicates() {
        let t = TenantId::new("acme").unwrap();
        let q = Quota::per(100, Duration::from_secs(1));
        let limit = |bucket: &str, quota| Limit {
            bucket: bucket.into(),
            quota,
        };
        let b = buckets(&t, &[limit("route:/v1", q)]).unwrap();
        assert_eq!(
            b[0].key,
            "gatez:tenant/acme/rl/route%3A%2Fv1/100%2F1000000us%2Fb100"
        );
        // Same name, different quota: two buckets.
        let hourly = Quota::per(1000, Duration::from_secs(3600));
        assert_eq!(
            buckets(&t, &[limit("x", q), limit("x", hourly)])
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(
            buckets(&t, &[limit("x", q), limit("x", q)]),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(buckets(&t, &[]), Err(StoreError::Invalid(_))));
    }
}
