//! Rate limiter: the contract suite against every backend (embedded, Redis, and Redis behind
//! the resilient wrapper), then what only a real server can show: shared state between
//! replicas, key expiry, and behaviour when Redis is killed and restarted.

#[path = "ratelimit/suite.rs"]
mod suite;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gatez_conformance::Redis;
use gatez_core::TenantId;
use gatez_core::keys::{self, KeyKind};
use gatez_core::store::ratelimit::embedded::EmbeddedRateLimiter;
use gatez_core::store::ratelimit::redis::RedisRateLimiter;
use gatez_core::store::ratelimit::resilient::ResilientRateLimiter;
use gatez_core::store::ratelimit::{Decision, Limit, RateLimiter};
use gatez_core::store::redis_conn::{self, RedisTimeouts};
use gatez_core::store::{FailurePolicy, ResilienceConfig, StoreError};
use redis::aio::ConnectionManager;
use suite::{Limiter, limit, tenant};

/// A backend under test, and the server it needs (kept alive for the test's duration).
struct Harness {
    limiter: Limiter,
    _redis: Option<Redis>,
}

async fn embedded_harness() -> Harness {
    Harness {
        limiter: Arc::new(EmbeddedRateLimiter::new()),
        _redis: None,
    }
}

async fn connect(redis: &Redis) -> ConnectionManager {
    redis_conn::connect(&redis.url(), RedisTimeouts::default())
        .await
        .expect("connect to the test Redis")
}

async fn redis_harness() -> Harness {
    let server = Redis::start().await;
    Harness {
        limiter: Arc::new(RedisRateLimiter::new(connect(&server).await)),
        _redis: Some(server),
    }
}

/// Redis behind the resilient wrapper: while Redis is healthy it must be indistinguishable
/// from Redis alone.
async fn resilient_harness() -> Harness {
    let server = Redis::start().await;
    let config = ResilienceConfig {
        on_failure: FailurePolicy::Local,
        ..ResilienceConfig::default()
    };
    Harness {
        limiter: Arc::new(ResilientRateLimiter::redis(connect(&server).await, &config)),
        _redis: Some(server),
    }
}

macro_rules! contract_suite {
    ($module:ident => $harness:ident) => {
        mod $module {
            contract_suite!(@tests $harness:
                burst_then_deny,
                explicit_burst,
                cost_above_one,
                zero_cost_only_reports,
                all_or_none_across_limits,
                denial_reports_the_longest_wait,
                refills_after_retry_after,
                quota_change_starts_a_fresh_bucket,
                concurrent_checks_admit_exactly_the_burst,
                tenants_are_isolated,
                invalid_requests_are_refused,
            );
        }
    };
    (@tests $harness:ident: $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let harness = super::$harness().await;
                crate::suite::$test(&harness.limiter).await;
            }
        )*
    };
}

contract_suite!(embedded => embedded_harness);
contract_suite!(real_redis => redis_harness);
contract_suite!(resilient_redis => resilient_harness);

const MINUTE: Duration = Duration::from_secs(60);

/// Two limiters on separate connections (two replicas) share the buckets.
#[tokio::test]
async fn redis_replicas_share_buckets() {
    let server = Redis::start().await;
    let one = RedisRateLimiter::new(connect(&server).await);
    let two = RedisRateLimiter::new(connect(&server).await);
    let t = tenant("acme");
    let l = [limit("tenant", 4, MINUTE)];
    assert!(one.check(&t, &l, 2).await.unwrap().allowed);
    assert!(two.check(&t, &l, 2).await.unwrap().allowed);
    assert!(!one.check(&t, &l, 1).await.unwrap().allowed);
    assert!(!two.check(&t, &l, 1).await.unwrap().allowed);
}

/// A bucket is one tenant-scoped key that expires when its TAT passes (it then holds no
/// information), and a denial writes nothing.
#[tokio::test]
async fn redis_bucket_keys_are_tenant_scoped_and_expire() {
    let server = Redis::start().await;
    let mut conn = connect(&server).await;
    let rl = RedisRateLimiter::new(conn.clone());
    let t = tenant("acme");
    let key = keys::tenant_key(&t, KeyKind::RateLimit, &["b", "10/60000000us/b10"]);

    assert!(
        rl.check(&t, &[limit("b", 10, MINUTE)], 3)
            .await
            .unwrap()
            .allowed
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    // 3 units of 6 s: the TAT is 18 s ahead.
    assert!(ttl > 15_000 && ttl <= 18_000, "PTTL {ttl}");
    let all: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        all,
        std::slice::from_ref(&key),
        "one key, under the tenant's prefix"
    );
    assert!(all[0].starts_with(&keys::tenant_prefix(&t, KeyKind::RateLimit)));

    // A denial does not touch the key.
    let tat: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        !rl.check(&t, &[limit("b", 10, MINUTE)], 8)
            .await
            .unwrap()
            .allowed
    );
    let after: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(tat, after);

    // A short bucket's key is gone once its TAT passes.
    let short = [limit("short", 1, Duration::from_millis(100))];
    assert!(rl.check(&t, &short, 1).await.unwrap().allowed);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let all: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(all, [key]);
}

/// Polls `f` until it returns `Some`, for at most `within`.
async fn eventually<T, F, Fut>(within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts `result` is a backend failure (what a failure policy applies to).
fn assert_backend_failure(result: Result<Decision, StoreError>) {
    match result {
        Err(e) if e.is_backend_failure() => {}
        other => panic!("expected Unavailable or Timeout, got {other:?}"),
    }
}

/// Killed Redis: calls fail fast with a backend failure instead of hanging; after a restart
/// the same limiter works again (with empty buckets: Redis runs without persistence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_fails_fast_then_recovers() {
    let mut server = Redis::start().await;
    let rl = RedisRateLimiter::new(connect(&server).await);
    let t = tenant("acme");
    let l = [limit("b", 1, MINUTE)];
    assert!(rl.check(&t, &l, 1).await.unwrap().allowed);

    server.stop().await;
    for _ in 0..3 {
        let started = Instant::now();
        assert_backend_failure(rl.check(&t, &l, 1).await);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    server.restart().await;
    let (rl, t, l) = (&rl, &t, &l);
    let d = eventually(Duration::from_secs(10), move || async move {
        rl.check(t, l, 1).await.ok()
    })
    .await;
    assert!(d.allowed, "the restarted Redis starts with empty buckets");
    assert!(
        !rl.check(t, l, 1).await.unwrap().allowed,
        "and enforces again"
    );
}

/// A primary that counts the calls it receives and answers, to observe the cooldown.
struct Counting {
    inner: RedisRateLimiter,
    calls: AtomicUsize,
    answered: AtomicUsize,
}

#[async_trait]
impl RateLimiter for Counting {
    async fn check(
        &self,
        tenant: &TenantId,
        limits: &[Limit],
        cost: u32,
    ) -> Result<Decision, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let result = self.inner.check(tenant, limits, cost).await;
        if result.is_ok() {
            self.answered.fetch_add(1, Ordering::SeqCst);
        }
        result
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// Starts Redis and a resilient limiter with `policy` over a counting Redis primary.
async fn resilient_setup(
    policy: FailurePolicy,
    cooldown: Duration,
) -> (Redis, Arc<Counting>, ResilientRateLimiter) {
    let server = Redis::start().await;
    let primary = Arc::new(Counting {
        inner: RedisRateLimiter::new(connect(&server).await),
        calls: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
    });
    let config = ResilienceConfig {
        on_failure: policy,
        cooldown,
    };
    let rl = ResilientRateLimiter::new(primary.clone(), &config);
    (server, primary, rl)
}

/// Waits until the wrapper is back on the primary after a restart: the cooldown has to run
/// out and the connection manager has to reconnect.
async fn until_primary_answers(primary: &Counting, rl: &ResilientRateLimiter, t: &TenantId) {
    let probe = &[limit("probe", 1_000_000, Duration::from_secs(3600))];
    eventually(Duration::from_secs(10), move || async move {
        let before = primary.answered.load(Ordering::SeqCst);
        let _ = rl.check(t, probe, 1).await;
        (primary.answered.load(Ordering::SeqCst) > before).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_admits_while_redis_is_down() {
    let (mut server, primary, rl) =
        resilient_setup(FailurePolicy::FailOpen, Duration::from_millis(200)).await;
    let t = tenant("acme");
    let l = [limit("b", 2, MINUTE)];
    assert!(rl.check(&t, &l, 2).await.unwrap().allowed);
    assert!(
        !rl.check(&t, &l, 1).await.unwrap().allowed,
        "enforced while healthy"
    );

    server.stop().await;
    for _ in 0..20 {
        let started = Instant::now();
        let d = rl.check(&t, &l, 1).await.expect("fail open answers");
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.limit, 2);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // A cost no bucket could ever admit is still denied, and bad quotas still refused.
    assert!(!rl.check(&t, &l, 3).await.unwrap().allowed);
    assert!(matches!(
        rl.check(&t, &[limit("z", 0, MINUTE)], 1).await,
        Err(StoreError::Invalid(_))
    ));

    server.restart().await;
    until_primary_answers(&primary, &rl, &t).await;
    assert!(rl.check(&t, &l, 2).await.unwrap().allowed);
    assert!(
        !rl.check(&t, &l, 1).await.unwrap().allowed,
        "enforced again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_errors_while_redis_is_down_and_skips_it_during_the_cooldown() {
    let (mut server, primary, rl) =
        resilient_setup(FailurePolicy::FailClosed, Duration::from_secs(3600)).await;
    let t = tenant("acme");
    let l = [limit("b", 2, MINUTE)];
    assert!(rl.check(&t, &l, 1).await.unwrap().allowed);

    server.stop().await;
    let calls_before = primary.calls.load(Ordering::SeqCst);
    for _ in 0..20 {
        let started = Instant::now();
        assert_backend_failure(rl.check(&t, &l, 1).await);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    assert_eq!(
        primary.calls.load(Ordering::SeqCst) - calls_before,
        1,
        "after the first failure the primary is skipped for the cooldown"
    );
    // Invalid requests are the caller's fault, not the backend's: reported as such.
    assert!(matches!(
        rl.check(&t, &[], 1).await,
        Err(StoreError::Invalid(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_probes_again_after_the_cooldown() {
    let (mut server, primary, rl) =
        resilient_setup(FailurePolicy::FailClosed, Duration::from_millis(200)).await;
    let t = tenant("acme");
    let l = [limit("b", 2, MINUTE)];
    assert!(rl.check(&t, &l, 1).await.unwrap().allowed);
    server.stop().await;
    assert_backend_failure(rl.check(&t, &l, 1).await);
    server.restart().await;
    until_primary_answers(&primary, &rl, &t).await;
    let d = rl.check(&t, &l, 2).await.unwrap();
    assert!(d.allowed, "a fresh Redis: full burst");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_policy_enforces_per_node_while_redis_is_down() {
    let (mut server, primary, rl) =
        resilient_setup(FailurePolicy::Local, Duration::from_millis(200)).await;
    let t = tenant("acme");
    let l = [limit("b", 3, MINUTE)];
    assert!(rl.check(&t, &l, 1).await.unwrap().allowed);

    server.stop().await;
    // The local limiter starts empty: a full burst, then denials.
    let started = Instant::now();
    let allowed: Vec<bool> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(rl.check(&t, &l, 1).await.expect("local answers").allowed);
        }
        v
    };
    assert_eq!(allowed, [true, true, true, false, false]);
    assert!(started.elapsed() < Duration::from_secs(3));
    // Tenants stay isolated locally too.
    assert!(rl.check(&tenant("other"), &l, 3).await.unwrap().allowed);

    server.restart().await;
    until_primary_answers(&primary, &rl, &t).await;
    // Back on Redis (restarted empty): the local denials no longer apply.
    assert!(rl.check(&t, &l, 3).await.unwrap().allowed);
    assert!(!rl.check(&t, &l, 1).await.unwrap().allowed);
}
