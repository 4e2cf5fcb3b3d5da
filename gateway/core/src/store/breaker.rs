//! The circuit breaker in front of every Redis-backed store (rate limits, budgets, the exact
//! cache).
//!
//! After a backend failure the backend is skipped for a cooldown, so an outage costs one
//! timeout per cooldown rather than one per call; when the cooldown has run out a single call
//! probes the backend while the others keep falling back, and the probe's success trusts the
//! backend again.
//!
//! `Breaker` decides whether a call goes to the backend, remembers its failures, and counts
//! and logs the calls answered without it. What such a call gets is the wrapper's business:
//! its [`FailurePolicy`] (see [`crate::store::policy`]) or, for the exact cache, a miss.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::IntCounter;

use crate::store::{FailurePolicy, StoreError};

/// Cooldown used when the config names none.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(1);

/// Longest cooldown accepted: beyond this a recovered backend would go unused for too long.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(300);

/// Least time between two "calls answered without the backend" warnings of one breaker,
/// unless the config says otherwise: an outage is visible in the logs without flooding them
/// (every such call is counted in a metric anyway).
pub const DEFAULT_WARN_INTERVAL: Duration = Duration::from_secs(30);

/// Checks a configured cooldown: positive (zero would send every call of an outage to the
/// backend, each paying its timeout) and at most [`MAX_COOLDOWN`].
pub fn validate_cooldown(cooldown: Duration) -> Result<(), String> {
    if cooldown.is_zero() || cooldown > MAX_COOLDOWN {
        return Err(format!(
            "cooldown: must be between 1ms and {}s, got {cooldown:?}",
            MAX_COOLDOWN.as_secs(),
        ));
    }
    Ok(())
}

/// What became of a call made through [`Breaker::attempt`].
#[derive(Debug)]
pub(crate) enum Attempt<T> {
    /// The backend answered: its answer, or an error no failure policy covers (an invalid
    /// request, unreadable data), which leaves the breaker as it was.
    Answered(Result<T, StoreError>),
    /// The backend was not called: it failed recently and the cooldown runs.
    Skipped,
    /// The backend failed as a backend (down or slow); the breaker now skips it.
    Failed(StoreError),
}

/// Decides whether a call goes to the backend or straight to the fallback, and counts and
/// logs the calls that take the fallback. Lock-free: every decision is one or two atomics.
#[derive(Debug)]
pub(crate) struct Breaker {
    /// The store (`ratelimit`, `budget`, `cache`) and its backend (`redis`), for logs.
    store: &'static str,
    backend: &'static str,
    /// What the fallback does, for logs and for the wrappers that dispatch on it.
    policy: FailurePolicy,
    cooldown: Duration,
    warn_interval: Duration,
    epoch: Instant,
    /// 0 while the backend is trusted; otherwise the instant (µs since `epoch`, never 0)
    /// before which the backend is skipped.
    skip_until_us: AtomicU64,
    /// Fallbacks since the last warning, and when the next warning may be logged.
    unlogged: AtomicU64,
    next_log_us: AtomicU64,
}

impl Breaker {
    /// A breaker for `store` over `backend`, trusting the backend until it first fails.
    pub(crate) fn new(
        store: &'static str,
        backend: &'static str,
        policy: FailurePolicy,
        cooldown: Duration,
        warn_interval: Duration,
    ) -> Self {
        Self {
            store,
            backend,
            policy,
            cooldown,
            warn_interval,
            epoch: Instant::now(),
            skip_until_us: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
            next_log_us: AtomicU64::new(0),
        }
    }

    pub(crate) fn policy(&self) -> FailurePolicy {
        self.policy
    }

    pub(crate) fn backend(&self) -> &'static str {
        self.backend
    }

    /// Runs `call` on the backend unless the breaker skips it, and records how it went.
    /// `call` is only invoked when the backend is tried, so a skipped call costs nothing.
    pub(crate) async fn attempt<T, F>(&self, call: impl FnOnce() -> F) -> Attempt<T>
    where
        F: Future<Output = Result<T, StoreError>>,
    {
        if !self.try_primary() {
            return Attempt::Skipped;
        }
        match call().await {
            Ok(answer) => {
                self.on_success();
                Attempt::Answered(Ok(answer))
            }
            Err(error) if error.is_backend_failure() => {
                self.on_failure(&error);
                Attempt::Failed(error)
            }
            Err(error) => Attempt::Answered(Err(error)),
        }
    }

    /// Whether the backend is being skipped right now (a failure's cooldown runs, or a probe
    /// is in flight).
    pub(crate) fn is_cooling_down(&self) -> bool {
        let until = self.skip_until_us.load(Ordering::Acquire);
        until != 0 && self.now_us() < until
    }

    /// Whether this call should go to the backend. While the cooldown runs, no; when it has
    /// run out, yes for exactly one caller (the probe), which pushes the cooldown forward so
    /// the others keep falling back until the probe reports.
    fn try_primary(&self) -> bool {
        self.try_primary_at(self.now_us())
    }

    fn try_primary_at(&self, now_us: u64) -> bool {
        let until = self.skip_until_us.load(Ordering::Acquire);
        until == 0
            || (now_us >= until
                && self
                    .skip_until_us
                    .compare_exchange(
                        until,
                        now_us + micros(self.cooldown),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok())
    }

    /// The backend answered: trust it again. Public to the wrappers for calls made outside
    /// [`Self::attempt`] (an operator's purge, which ignores the cooldown).
    pub(crate) fn on_success(&self) {
        // Read before writing: this runs on every healthy call, and a plain load keeps the
        // cache line shared between cores instead of bouncing it.
        if self.skip_until_us.load(Ordering::Relaxed) != 0
            && self.skip_until_us.swap(0, Ordering::AcqRel) != 0
        {
            tracing::info!(
                store = self.store,
                backend = self.backend,
                "backend answers again"
            );
        }
    }

    /// The backend failed as a backend (down or slow): skip it for the cooldown.
    fn on_failure(&self, error: &StoreError) {
        self.on_failure_at(error, self.now_us());
    }

    fn on_failure_at(&self, error: &StoreError, now_us: u64) {
        let until = now_us + micros(self.cooldown);
        if self.skip_until_us.swap(until, Ordering::AcqRel) == 0 {
            tracing::warn!(
                store = self.store,
                backend = self.backend,
                %error,
                policy = self.policy.as_str(),
                cooldown = ?self.cooldown,
                "backend failed; applying the failure policy"
            );
        } else {
            tracing::debug!(
                store = self.store,
                backend = self.backend,
                %error,
                "backend still failing"
            );
        }
    }

    /// Counts a call answered without the backend on `counter` (the store's own metric and
    /// labels); warns at most once per warn interval, with the number of such calls since the
    /// last warning and `error`, the one that made this call fall back (none when skipped).
    pub(crate) fn note_fallback(&self, counter: &IntCounter, error: Option<&StoreError>) {
        counter.inc();
        if let Some(calls) = self.take_unlogged_at(self.now_us()) {
            tracing::warn!(
                store = self.store,
                backend = self.backend,
                policy = self.policy.as_str(),
                calls,
                error = error.map(tracing::field::display),
                "calls answered without the backend"
            );
        }
    }

    /// Adds one fallback; when a warning is due, claims it and returns the fallbacks it
    /// reports (this one included).
    fn take_unlogged_at(&self, now_us: u64) -> Option<u64> {
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        let due = self.next_log_us.load(Ordering::Relaxed);
        let claimed = now_us >= due
            && self
                .next_log_us
                .compare_exchange(
                    due,
                    now_us.saturating_add(micros(self.warn_interval)),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok();
        claimed.then(|| self.unlogged.swap(0, Ordering::Relaxed))
    }

    /// The error a fail-closed call returns when the backend was skipped, not called.
    pub(crate) fn skipped_error(&self) -> StoreError {
        StoreError::Unavailable {
            backend: self.backend,
            message: format!(
                "skipped after a recent failure; next attempt within {:?}",
                self.cooldown
            ),
        }
    }

    /// Microseconds since `epoch`, plus one so that 0 can mean "not skipping".
    fn now_us(&self) -> u64 {
        micros(self.epoch.elapsed()) + 1
    }
}

/// A duration in µs; absurd ones (centuries) saturate well below overflow of the sums above.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    fn breaker(cooldown_ms: u64) -> Breaker {
        Breaker::new(
            "test",
            "redis",
            FailurePolicy::FailClosed,
            Duration::from_millis(cooldown_ms),
            DEFAULT_WARN_INTERVAL,
        )
    }

    fn down() -> StoreError {
        StoreError::unavailable("redis", "connection refused")
    }

    #[test]
    fn healthy_breaker_always_tries_the_primary() {
        let b = breaker(1000);
        assert!((0..3).all(|_| b.try_primary()));
        b.on_success();
        assert!(b.try_primary());
        assert!(!b.is_cooling_down());
    }

    #[test]
    fn failure_skips_the_primary_until_the_cooldown_then_one_probe() {
        let b = breaker(1000);
        b.on_failure_at(&down(), 10 * MS);
        assert!(!b.try_primary_at(10 * MS));
        assert!(!b.try_primary_at(1009 * MS), "still cooling down");
        assert!(
            b.try_primary_at(1010 * MS),
            "the first caller after it probes"
        );
        assert!(
            !b.try_primary_at(1011 * MS),
            "others wait for the probe's result"
        );
        // The probe failed: another full cooldown from then.
        b.on_failure_at(&down(), 1015 * MS);
        assert!(!b.try_primary_at(2014 * MS));
        assert!(b.try_primary_at(2015 * MS));
        b.on_success();
        assert!(b.try_primary_at(2016 * MS) && b.try_primary_at(2016 * MS));
    }

    #[test]
    fn within_the_cooldown_nobody_tries() {
        let b = breaker(60_000);
        b.on_failure(&down());
        assert!(b.is_cooling_down());
        assert!((0..100).all(|_| !b.try_primary()));
    }

    #[tokio::test]
    async fn attempt_sorts_answers_failures_and_skips() {
        let b = breaker(60_000);
        let answered = b.attempt(|| async { Ok::<_, StoreError>(7) }).await;
        assert!(matches!(answered, Attempt::Answered(Ok(7))), "{answered:?}");

        // A caller error is the backend's answer: passed back, and the backend stays trusted.
        let invalid = b
            .attempt(|| async { Err::<u8, _>(StoreError::Invalid("bad".into())) })
            .await;
        assert!(
            matches!(invalid, Attempt::Answered(Err(StoreError::Invalid(_)))),
            "{invalid:?}"
        );
        assert!(!b.is_cooling_down());

        let failed = b.attempt(|| async { Err::<u8, _>(down()) }).await;
        assert!(matches!(failed, Attempt::Failed(_)), "{failed:?}");
        assert!(b.is_cooling_down());

        let mut called = false;
        let skipped = b
            .attempt(|| {
                called = true;
                async { Ok::<_, StoreError>(1) }
            })
            .await;
        assert!(matches!(skipped, Attempt::Skipped), "{skipped:?}");
        assert!(!called, "a skipped call must not reach the backend");
    }

    #[test]
    fn fallbacks_are_counted_on_the_given_counter() {
        let b = breaker(1000);
        let counter = IntCounter::new("test_fallbacks", "test").unwrap();
        b.note_fallback(&counter, None);
        b.note_fallback(&counter, Some(&down()));
        assert_eq!(counter.get(), 2);
    }

    #[test]
    fn warnings_are_rate_limited_and_report_the_calls_in_between() {
        let b = breaker(1000);
        let every = micros(DEFAULT_WARN_INTERVAL);
        assert_eq!(b.take_unlogged_at(MS), Some(1), "the first fallback warns");
        assert_eq!(b.take_unlogged_at(2 * MS), None);
        assert_eq!(b.take_unlogged_at(MS + every - 1), None);
        assert_eq!(
            b.take_unlogged_at(MS + every),
            Some(3),
            "the next warning counts the silent ones"
        );
        assert_eq!(b.take_unlogged_at(MS + every + 1), None);
    }

    #[test]
    fn skipped_calls_report_an_unavailable_backend() {
        let error = breaker(1000).skipped_error();
        assert!(error.is_backend_failure());
        assert!(
            matches!(
                error,
                StoreError::Unavailable {
                    backend: "redis",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn cooldown_bounds() {
        assert!(validate_cooldown(Duration::from_millis(1)).is_ok());
        assert!(validate_cooldown(MAX_COOLDOWN).is_ok());
        assert!(validate_cooldown(Duration::ZERO).is_err());
        assert!(validate_cooldown(MAX_COOLDOWN + Duration::from_millis(1)).is_err());
    }
}
