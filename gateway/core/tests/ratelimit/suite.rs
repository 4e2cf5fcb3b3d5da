//! The rate-limiter contract: what every backend must do, as async fns over a backend.

use std::sync::Arc;
use std::time::Duration;

use gatez_core::TenantId;
use gatez_core::store::StoreError;
use gatez_core::store::ratelimit::{Decision, Limit, Quota, RateLimiter};

pub type Limiter = Arc<dyn RateLimiter>;

pub fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

pub fn limit(bucket: &str, limit: u64, period: Duration) -> Limit {
    Limit {
        bucket: bucket.into(),
        quota: Quota::per(limit, period),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

async fn check(rl: &Limiter, t: &TenantId, limits: &[Limit], cost: u32) -> Decision {
    rl.check(t, limits, cost).await.expect("check")
}

/// Exactly `burst` requests pass from empty, each reporting one unit fewer; the next is
/// denied with the wait for one emission interval.
pub async fn burst_then_deny(rl: &Limiter) {
    let t = tenant("acme");
    let l = [limit("route:/v1/chat", 5, MINUTE)];
    for expected_remaining in (0..5).rev() {
        let d = check(rl, &t, &l, 1).await;
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.limit, 5);
        assert_eq!(d.remaining, expected_remaining);
        assert!(d.reset_after <= MINUTE && d.reset_after > Duration::ZERO);
        assert_eq!(d.retry_after, None);
    }
    let d = check(rl, &t, &l, 1).await;
    assert!(!d.allowed, "the sixth request must be denied: {d:?}");
    assert_eq!(d.remaining, 0);
    // One unit comes back every 12 s; a little of that has passed since the burst.
    let retry = d.retry_after.expect("a cost-1 request is admissible later");
    assert!(
        retry > Duration::from_secs(10) && retry <= Duration::from_secs(12),
        "{retry:?}"
    );
    assert!(d.reset_after > Duration::from_secs(58), "{d:?}");
}

/// A burst different from the limit: the burst decides how many pass at once, the limit is
/// what is reported.
pub async fn explicit_burst(rl: &Limiter) {
    let t = tenant("acme");
    let l = [Limit {
        bucket: "b".into(),
        quota: Quota {
            limit: 100,
            period: MINUTE,
            burst: Some(3),
        },
    }];
    let allowed = [
        check(rl, &t, &l, 1).await,
        check(rl, &t, &l, 1).await,
        check(rl, &t, &l, 1).await,
        check(rl, &t, &l, 1).await,
    ]
    .map(|d| d.allowed);
    assert_eq!(allowed, [true, true, true, false]);
    assert_eq!(check(rl, &t, &l, 0).await.limit, 100);
}

/// Costs above one charge that many units; a denied cost charges nothing; a cost above the
/// burst is denied with no retry time, however empty the bucket.
pub async fn cost_above_one(rl: &Limiter) {
    let t = tenant("acme");
    let l = [limit("tokens", 10, MINUTE)];
    let d = check(rl, &t, &l, 4).await;
    assert!(d.allowed);
    assert_eq!(d.remaining, 6);
    assert!(check(rl, &t, &l, 4).await.allowed);
    let d = check(rl, &t, &l, 4).await;
    assert!(!d.allowed);
    assert_eq!(d.remaining, 2, "the denied request charged nothing");
    // Two more units needed: two 6 s intervals, minus the little time elapsed.
    let retry = d.retry_after.unwrap();
    assert!(
        retry > Duration::from_secs(10) && retry <= Duration::from_secs(12),
        "{retry:?}"
    );
    assert!(
        check(rl, &t, &l, 2).await.allowed,
        "the last two units pass"
    );

    let fresh = [limit("fresh", 10, MINUTE)];
    let d = check(rl, &t, &fresh, 11).await;
    assert!(!d.allowed);
    assert_eq!(
        d.retry_after, None,
        "no wait makes 11 units fit in a burst of 10"
    );
    assert_eq!(d.remaining, 10);
    assert!(check(rl, &t, &fresh, 10).await.allowed);
}

/// Cost 0 reports the state without charging.
pub async fn zero_cost_only_reports(rl: &Limiter) {
    let t = tenant("acme");
    let l = [limit("b", 3, MINUTE)];
    for _ in 0..5 {
        let d = check(rl, &t, &l, 0).await;
        assert!(d.allowed);
        assert_eq!(d.remaining, 3);
    }
    assert!(check(rl, &t, &l, 3).await.allowed);
    let d = check(rl, &t, &l, 0).await;
    assert!(d.allowed);
    assert_eq!(d.remaining, 0);
}

/// Several limits: a request passes only if every bucket has room, and then charges every
/// bucket; a denial charges none. The decision describes the most restrictive bucket.
pub async fn all_or_none_across_limits(rl: &Limiter) {
    let t = tenant("acme");
    let wide = limit("tenant", 100, MINUTE);
    let narrow = limit("route:/slow", 2, MINUTE);
    let both = [wide.clone(), narrow.clone()];

    let d = check(rl, &t, &both, 1).await;
    assert!(d.allowed);
    assert_eq!(
        (d.limit, d.remaining),
        (2, 1),
        "reported for the narrow bucket"
    );
    assert!(check(rl, &t, &both, 1).await.allowed);
    for _ in 0..3 {
        let d = check(rl, &t, &both, 1).await;
        assert!(!d.allowed);
        assert_eq!(d.limit, 2);
    }
    let d = check(rl, &t, std::slice::from_ref(&wide), 0).await;
    assert_eq!(
        d.remaining, 98,
        "denied checks charged the wide bucket nothing"
    );

    // The wide bucket alone still has room.
    assert!(check(rl, &t, &[wide], 1).await.allowed);
}

/// When several buckets deny, the decision is the one with the longest wait.
pub async fn denial_reports_the_longest_wait(rl: &Limiter) {
    let t = tenant("acme");
    let per_10s = limit("a", 1, Duration::from_secs(10));
    let per_hour = limit("b", 1, Duration::from_secs(3600));
    let both = [per_10s, per_hour];
    assert!(check(rl, &t, &both, 1).await.allowed);
    let d = check(rl, &t, &both, 1).await;
    assert!(!d.allowed);
    let retry = d.retry_after.unwrap();
    assert!(retry > Duration::from_secs(3000), "{retry:?}");
    // A bucket that can never admit the cost beats any finite wait.
    let never = [
        limit("c", 5, MINUTE),
        limit("d", 1, Duration::from_secs(3600)),
    ];
    let d = check(rl, &t, &never, 2).await;
    assert!(!d.allowed);
    assert_eq!((d.limit, d.retry_after), (1, None));
}

/// Waiting the announced `retry_after` is enough for the request to pass.
pub async fn refills_after_retry_after(rl: &Limiter) {
    let t = tenant("acme");
    let l = [limit("fast", 2, Duration::from_millis(300))];
    // Drain the bucket; on a slow machine a unit may come back meanwhile, hence the loop.
    let mut denial = None;
    for _ in 0..100 {
        let d = check(rl, &t, &l, 1).await;
        if !d.allowed {
            denial = Some(d);
            break;
        }
    }
    let denial = denial.expect("the bucket never ran dry");
    let retry = denial.retry_after.unwrap();
    assert!(retry <= Duration::from_millis(150), "{retry:?}");
    tokio::time::sleep(retry + Duration::from_millis(5)).await;
    assert!(check(rl, &t, &l, 1).await.allowed);
    // After a whole period of idleness, the full burst is back (and no more).
    tokio::time::sleep(Duration::from_millis(310)).await;
    let d = check(rl, &t, &l, 2).await;
    assert!(d.allowed, "{d:?}");
}

/// The quota is part of the bucket: the same name under another quota is another bucket.
pub async fn quota_change_starts_a_fresh_bucket(rl: &Limiter) {
    let t = tenant("acme");
    let old = [limit("tenant", 1, MINUTE)];
    let new = [limit("tenant", 2, MINUTE)];
    assert!(check(rl, &t, &old, 1).await.allowed);
    assert!(!check(rl, &t, &old, 1).await.allowed);
    assert!(check(rl, &t, &new, 2).await.allowed);
}

/// Concurrent checks never admit more than the burst, on one bucket or several.
pub async fn concurrent_checks_admit_exactly_the_burst(rl: &Limiter) {
    let t = tenant("acme");
    let single = [limit("single", 20, MINUTE)];
    let pair = [limit("p1", 20, MINUTE), limit("p2", 30, MINUTE)];
    for limits in [&single[..], &pair[..]] {
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (rl, t, limits) = (Arc::clone(rl), t.clone(), limits.to_vec());
                tokio::spawn(async move { rl.check(&t, &limits, 1).await.unwrap().allowed })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            allowed += usize::from(task.await.unwrap());
        }
        assert_eq!(allowed, 20, "{limits:?}");
    }
    let d = check(rl, &t, &[limit("p2", 30, MINUTE)], 0).await;
    assert_eq!(
        d.remaining, 10,
        "the wider bucket was charged for admitted checks only"
    );
}

/// Tenant B can neither see nor consume tenant A's buckets of the same name.
pub async fn tenants_are_isolated(rl: &Limiter) {
    let a = tenant("tenant-a");
    let b = tenant("tenant-b");
    let l = [limit("shared-name", 3, MINUTE)];
    assert!(check(rl, &a, &l, 3).await.allowed);
    assert!(!check(rl, &a, &l, 1).await.allowed);
    let d = check(rl, &b, &l, 0).await;
    assert_eq!(d.remaining, 3, "B does not see A's usage");
    assert!(check(rl, &b, &l, 3).await.allowed);
    assert!(!check(rl, &b, &l, 1).await.allowed);
    // B draining its bucket gave A nothing back and took nothing more.
    let d = check(rl, &a, &l, 0).await;
    assert_eq!(d.remaining, 0);
}

/// Requests that no bucket can describe are refused as invalid, charging nothing.
pub async fn invalid_requests_are_refused(rl: &Limiter) {
    let t = tenant("acme");
    let ok = limit("ok", 5, MINUTE);
    let invalid = |r: Result<Decision, StoreError>| matches!(r, Err(StoreError::Invalid(_)));
    assert!(invalid(rl.check(&t, &[], 1).await), "no limits");
    assert!(invalid(
        rl.check(&t, &[ok.clone(), limit("zero", 0, MINUTE)], 1)
            .await
    ));
    assert!(invalid(
        rl.check(&t, &[ok.clone(), limit("p", 1, Duration::ZERO)], 1)
            .await
    ));
    assert!(
        invalid(rl.check(&t, &[ok.clone(), ok.clone()], 1).await),
        "a bucket twice"
    );
    let d = check(rl, &t, &[ok], 0).await;
    assert_eq!(d.remaining, 5, "refused checks charged nothing");
}
