//! The budget-store contract: what every backend must do, as async fns over a backend.
//!
//! Instants are passed explicitly, so window rollover needs no sleeping. They lie in the
//! future (whole months ahead): counters expire by the wall clock an hour after their window
//! ends, as they do in Redis, so windows in the past would already be gone.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gatez_core::TenantId;
use gatez_core::store::StoreError;
use gatez_core::store::budget::period::{MAX_AMOUNT, Window};
use gatez_core::store::budget::{BudgetLimit, BudgetStore, Period, Reservation};

pub type Store = Arc<dyn BudgetStore>;

pub fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

pub fn budget(name: &str, period: Period, limit: u64) -> BudgetLimit {
    BudgetLimit {
        name: name.into(),
        period,
        limit,
    }
}

/// The start of the month `months` months after the current one.
pub fn month_start(months: u32) -> SystemTime {
    let mut at = SystemTime::now();
    for _ in 0..months {
        at = Window::containing(Period::Month, at).unwrap().end();
    }
    Window::containing(Period::Month, at).unwrap().start()
}

/// An ordinary instant in the middle of a future month (the 10th, 13:45:30.25).
pub fn mid_month() -> SystemTime {
    month_start(2)
        + Duration::from_secs(9 * 86_400 + 13 * 3600 + 45 * 60 + 30)
        + Duration::from_millis(250)
}

async fn reserve(
    s: &Store,
    t: &TenantId,
    limits: &[BudgetLimit],
    amount: u64,
    now: SystemTime,
) -> Reservation {
    s.reserve(t, limits, amount, now).await.expect("reserve")
}

async fn usage(s: &Store, t: &TenantId, name: &str, period: Period, now: SystemTime) -> u64 {
    s.usage(t, name, period, now).await.expect("usage")
}

fn granted(r: &Reservation) -> bool {
    matches!(r, Reservation::Granted { .. })
}

/// Reservations count until the limit; the one that would go over is refused with the
/// budget's state and when it resets, and counts nothing.
pub async fn reserve_until_exceeded(s: &Store) {
    let t = tenant("acme");
    let now = mid_month();
    let day = [budget("tokens", Period::Day, 1000)];
    assert_eq!(usage(s, &t, "tokens", Period::Day, now).await, 0);
    assert_eq!(
        reserve(s, &t, &day, 600, now).await,
        Reservation::Granted { amount: 600 }
    );
    assert_eq!(
        reserve(s, &t, &day, 400, now).await,
        Reservation::Granted { amount: 400 }
    );
    assert_eq!(usage(s, &t, "tokens", Period::Day, now).await, 1000);
    let r = reserve(s, &t, &day, 1, now).await;
    assert_eq!(
        r,
        Reservation::Exceeded {
            name: "tokens".into(),
            period: Period::Day,
            limit: 1000,
            used: 1000,
            resets_at: Window::containing(Period::Day, now).unwrap().end(),
        }
    );
    assert_eq!(usage(s, &t, "tokens", Period::Day, now).await, 1000);
    // A zero reservation fits exactly at the limit.
    assert!(granted(&reserve(s, &t, &day, 0, now).await));
    // Other budgets of the tenant and other periods of the same name are untouched.
    assert_eq!(usage(s, &t, "tokens", Period::Month, now).await, 0);
    assert_eq!(usage(s, &t, "cost", Period::Day, now).await, 0);
}

/// Several budgets: all have room and all are charged, or none is.
pub async fn all_or_none_across_budgets(s: &Store) {
    let t = tenant("acme");
    let now = mid_month();
    let limits = [
        budget("tokens", Period::Month, 10_000),
        budget("tokens", Period::Minute, 100),
        budget("cost", Period::Day, 5_000),
    ];
    assert!(granted(&reserve(s, &t, &limits, 60, now).await));
    let r = reserve(s, &t, &limits, 60, now).await;
    match r {
        Reservation::Exceeded {
            name, period, used, ..
        } => assert_eq!(
            (name.as_str(), period, used),
            ("tokens", Period::Minute, 60)
        ),
        other => panic!("expected the minute budget to refuse: {other:?}"),
    }
    assert_eq!(usage(s, &t, "tokens", Period::Month, now).await, 60);
    assert_eq!(usage(s, &t, "tokens", Period::Minute, now).await, 60);
    assert_eq!(usage(s, &t, "cost", Period::Day, now).await, 60);
    // The next minute has room again; the month and day keep counting.
    let next_minute = now + Duration::from_secs(60);
    assert!(granted(&reserve(s, &t, &limits, 60, next_minute).await));
    assert_eq!(usage(s, &t, "tokens", Period::Month, now).await, 120);
    assert_eq!(usage(s, &t, "cost", Period::Day, next_minute).await, 120);
}

/// Adjustments correct usage up and down, never below zero, and may go over the limit
/// (spent tokens are counted), which then refuses new reservations.
pub async fn adjust_up_down_and_clamp(s: &Store) {
    let t = tenant("acme");
    let now = mid_month();
    let limits = [
        budget("tokens", Period::Hour, 1000),
        budget("cost", Period::Day, 10_000),
    ];
    assert!(granted(&reserve(s, &t, &limits, 100, now).await));
    s.adjust(&t, &limits, 50, now).await.unwrap();
    assert_eq!(usage(s, &t, "tokens", Period::Hour, now).await, 150);
    assert_eq!(usage(s, &t, "cost", Period::Day, now).await, 150);
    s.adjust(&t, &limits, -30, now).await.unwrap();
    assert_eq!(usage(s, &t, "tokens", Period::Hour, now).await, 120);
    s.adjust(&t, &limits, 0, now).await.unwrap();
    assert_eq!(usage(s, &t, "tokens", Period::Hour, now).await, 120);
    s.adjust(&t, &limits, -1000, now).await.unwrap();
    assert_eq!(
        usage(s, &t, "tokens", Period::Hour, now).await,
        0,
        "clamped at zero"
    );
    assert_eq!(usage(s, &t, "cost", Period::Day, now).await, 0);
    // Clamped means really zero, not negative: a full reservation fits again.
    assert!(granted(&reserve(s, &t, &limits, 1000, now).await));
    s.adjust(&t, &limits, 500, now).await.unwrap();
    assert_eq!(
        usage(s, &t, "tokens", Period::Hour, now).await,
        1500,
        "over the limit"
    );
    let r = reserve(s, &t, &limits, 0, now).await;
    assert!(
        matches!(r, Reservation::Exceeded { used: 1500, .. }),
        "over the limit even a zero reservation is refused: {r:?}"
    );
    // A negative adjustment of a budget never used leaves it at zero.
    s.adjust(&t, &[budget("fresh", Period::Day, 10)], -5, now)
        .await
        .unwrap();
    assert_eq!(usage(s, &t, "fresh", Period::Day, now).await, 0);
    assert!(granted(
        &reserve(s, &t, &[budget("fresh", Period::Day, 10)], 10, now).await
    ));
}

/// An adjustment lands in the window of the reservation, even after that window has ended.
pub async fn adjust_lands_in_the_reservation_window(s: &Store) {
    let t = tenant("acme");
    let reserved_at = mid_month();
    let later = reserved_at + Duration::from_secs(120);
    let minute = [budget("tokens", Period::Minute, 1000)];
    assert!(granted(&reserve(s, &t, &minute, 100, reserved_at).await));
    assert!(granted(&reserve(s, &t, &minute, 7, later).await));
    s.adjust(&t, &minute, 40, reserved_at).await.unwrap();
    assert_eq!(
        usage(s, &t, "tokens", Period::Minute, reserved_at).await,
        140
    );
    assert_eq!(usage(s, &t, "tokens", Period::Minute, later).await, 7);
}

/// At each period's boundary usage starts from zero, and the last instant before it still
/// belongs to the old window. Covers a month end and a year end.
pub async fn windows_roll_over_at_boundaries(s: &Store) {
    let t = tenant("acme");
    let boundaries = [
        (
            Period::Minute,
            Window::containing(Period::Minute, mid_month())
                .unwrap()
                .end(),
        ),
        (
            Period::Hour,
            Window::containing(Period::Hour, mid_month()).unwrap().end(),
        ),
        (
            Period::Day,
            Window::containing(Period::Day, mid_month()).unwrap().end(),
        ),
        (Period::Month, month_start(3)),
        // The first instant of a January: the year end, for every period at once.
        (Period::Month, first_january()),
        (Period::Day, first_january()),
    ];
    for (i, (period, boundary)) in boundaries.into_iter().enumerate() {
        let name = format!("b{i}");
        let limits = [budget(&name, period, 100)];
        let last = boundary - Duration::from_nanos(1);
        assert!(granted(&reserve(s, &t, &limits, 100, last).await));
        let r = reserve(s, &t, &limits, 1, last).await;
        assert!(
            matches!(r, Reservation::Exceeded { resets_at, .. } if resets_at == boundary),
            "{period:?} at {boundary:?}: {r:?}"
        );
        assert_eq!(usage(s, &t, &name, period, boundary).await, 0);
        assert!(
            granted(&reserve(s, &t, &limits, 100, boundary).await),
            "{period:?}"
        );
        assert_eq!(usage(s, &t, &name, period, last).await, 100);
        assert_eq!(usage(s, &t, &name, period, boundary).await, 100);
    }
}

/// The next January 1st, 00:00 UTC.
fn first_january() -> SystemTime {
    let next_year = time::OffsetDateTime::now_utc().year() + 1;
    time::Date::from_calendar_date(next_year, time::Month::January, 1)
        .unwrap()
        .midnight()
        .assume_utc()
        .into()
}

/// Concurrent reservations never overshoot: exactly the ones that fit are granted.
pub async fn concurrent_reservations_never_overshoot(s: &Store) {
    let t = tenant("acme");
    let now = mid_month();
    let single = vec![budget("tokens", Period::Day, 500)];
    let pair = vec![
        budget("pair", Period::Month, 1000),
        budget("pair", Period::Hour, 300),
    ];
    for (limits, expect_granted) in [(single, 50), (pair, 30)] {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (s, t, limits) = (Arc::clone(s), t.clone(), limits.clone());
                tokio::spawn(
                    async move { granted(&s.reserve(&t, &limits, 10, now).await.unwrap()) },
                )
            })
            .collect();
        let mut count = 0;
        for task in tasks {
            count += usize::from(task.await.unwrap());
        }
        assert_eq!(count, expect_granted, "{limits:?}");
        for l in &limits {
            assert_eq!(
                usage(s, &t, &l.name, l.period, now).await,
                10 * expect_granted as u64
            );
        }
    }
    // Concurrent adjustments all count too.
    let day = vec![budget("tokens", Period::Day, 500)];
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (s, t, day) = (Arc::clone(s), t.clone(), day.clone());
            let delta = if i % 2 == 0 { 3 } else { -1 };
            tokio::spawn(async move { s.adjust(&t, &day, delta, now).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        usage(s, &t, "tokens", Period::Day, now).await,
        500 + 25 * 3 - 25
    );
}

/// Tenant B can neither read, count against, nor release tenant A's budget of the same name.
pub async fn tenants_are_isolated(s: &Store) {
    let a = tenant("tenant-a");
    let b = tenant("tenant-b");
    let now = mid_month();
    let limits = [budget("tokens", Period::Day, 100)];
    assert!(granted(&reserve(s, &a, &limits, 100, now).await));
    assert!(!granted(&reserve(s, &a, &limits, 1, now).await));
    assert_eq!(
        usage(s, &b, "tokens", Period::Day, now).await,
        0,
        "B cannot read A"
    );
    assert!(
        granted(&reserve(s, &b, &limits, 100, now).await),
        "A's usage does not count for B"
    );
    s.adjust(&b, &limits, -100, now).await.unwrap();
    assert_eq!(usage(s, &b, "tokens", Period::Day, now).await, 0);
    assert_eq!(
        usage(s, &a, "tokens", Period::Day, now).await,
        100,
        "B cannot release A's"
    );
    s.adjust(&b, &limits, 1000, now).await.unwrap();
    assert_eq!(
        usage(s, &a, "tokens", Period::Day, now).await,
        100,
        "nor add to it"
    );
}

/// Requests no counter can describe are refused as invalid and count nothing.
pub async fn invalid_requests_are_refused(s: &Store) {
    let t = tenant("acme");
    let now = mid_month();
    let ok = budget("tokens", Period::Day, 100);
    let invalid = |r: Result<Reservation, StoreError>| matches!(r, Err(StoreError::Invalid(_)));
    assert!(invalid(s.reserve(&t, &[], 1, now).await), "no budgets");
    assert!(
        invalid(s.reserve(&t, &[ok.clone(), ok.clone()], 1, now).await),
        "twice"
    );
    assert!(invalid(
        s.reserve(&t, std::slice::from_ref(&ok), MAX_AMOUNT + 1, now)
            .await
    ));
    assert!(invalid(
        s.reserve(
            &t,
            &[ok.clone(), budget("x", Period::Day, MAX_AMOUNT + 1)],
            1,
            now
        )
        .await
    ));
    assert!(matches!(
        s.adjust(&t, std::slice::from_ref(&ok), i64::MIN, now).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.adjust(&t, &[], 1, now).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(usage(s, &t, "tokens", Period::Day, now).await, 0);
}
