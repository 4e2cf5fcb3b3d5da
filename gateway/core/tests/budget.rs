//! Budget store: the contract suite against every backend (embedded, Redis, and Redis behind
//! the resilient wrapper), then what only a real server can show: shared counters between
//! replicas, key expiry, and behaviour when Redis is killed and restarted.

#[path = "budget/suite.rs"]
mod suite;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use gatez_conformance::Redis;
use gatez_core::TenantId;
use gatez_core::keys::{self, KeyKind};
use gatez_core::store::budget::embedded::EmbeddedBudgetStore;
use gatez_core::store::budget::period::Window;
use gatez_core::store::budget::redis::RedisBudgetStore;
use gatez_core::store::budget::resilient::ResilientBudgetStore;
use gatez_core::store::budget::{BudgetLimit, BudgetStore, Period, Reservation};
use gatez_core::store::redis_conn::{self, RedisTimeouts};
use gatez_core::store::{FailurePolicy, ResilienceConfig, StoreError};
use redis::aio::ConnectionManager;
use suite::{Store, budget, mid_month, tenant};

/// A backend under test, and the server it needs (kept alive for the test's duration).
struct Harness {
    store: Store,
    _redis: Option<Redis>,
}

async fn embedded_harness() -> Harness {
    Harness {
        store: Arc::new(EmbeddedBudgetStore::new()),
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
        store: Arc::new(RedisBudgetStore::new(connect(&server).await)),
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
        store: Arc::new(ResilientBudgetStore::redis(connect(&server).await, &config)),
        _redis: Some(server),
    }
}

macro_rules! contract_suite {
    ($module:ident => $harness:ident) => {
        mod $module {
            contract_suite!(@tests $harness:
                reserve_until_exceeded,
                all_or_none_across_budgets,
                adjust_up_down_and_clamp,
                adjust_lands_in_the_reservation_window,
                windows_roll_over_at_boundaries,
                concurrent_reservations_never_overshoot,
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
                crate::suite::$test(&harness.store).await;
            }
        )*
    };
}

contract_suite!(embedded => embedded_harness);
contract_suite!(real_redis => redis_harness);
contract_suite!(resilient_redis => resilient_harness);

fn granted(r: &Reservation) -> bool {
    matches!(r, Reservation::Granted { .. })
}

/// Two stores on separate connections (two replicas) share the counters.
#[tokio::test]
async fn redis_replicas_share_counters() {
    let server = Redis::start().await;
    let one = RedisBudgetStore::new(connect(&server).await);
    let two = RedisBudgetStore::new(connect(&server).await);
    let t = tenant("acme");
    let now = mid_month();
    let l = [budget("tokens", Period::Day, 100)];
    assert!(granted(&one.reserve(&t, &l, 60, now).await.unwrap()));
    assert!(!granted(&two.reserve(&t, &l, 60, now).await.unwrap()));
    two.adjust(&t, &l, -20, now).await.unwrap();
    assert_eq!(one.usage(&t, "tokens", Period::Day, now).await.unwrap(), 40);
}

/// A counter is one tenant-scoped key per budget and window, expiring an hour after the
/// window ends; a counter adjusted down to zero is deleted.
#[tokio::test]
async fn redis_counter_keys_are_tenant_scoped_and_expire_after_their_window() {
    let server = Redis::start().await;
    let mut conn = connect(&server).await;
    let store = RedisBudgetStore::new(conn.clone());
    let t = tenant("acme");
    let now = mid_month();
    let window = Window::containing(Period::Day, now).unwrap();
    let l = [budget("tokens", Period::Day, 100)];
    assert!(granted(&store.reserve(&t, &l, 30, now).await.unwrap()));

    let key = keys::tenant_key(
        &t,
        KeyKind::Budget,
        &["tokens", "day", &window.start_secs.to_string()],
    );
    let all: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        all,
        std::slice::from_ref(&key),
        "one key, under the tenant's prefix"
    );
    assert!(key.starts_with(&keys::tenant_prefix(&t, KeyKind::Budget)));
    let expires: i64 = ::redis::cmd("PEXPIRETIME")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(expires, (window.end_secs + 3600) * 1000);

    // A refused reservation writes nothing.
    assert!(!granted(&store.reserve(&t, &l, 71, now).await.unwrap()));
    let used: String = ::redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(used, "30");

    store.adjust(&t, &l, -30, now).await.unwrap();
    let exists: i64 = ::redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "a counter at zero is deleted");

    // A window whose grace period is over is not kept at all.
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
    assert!(granted(&store.reserve(&t, &l, 5, long_ago).await.unwrap()));
    let all: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(all.is_empty(), "{all:?}");
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

fn assert_backend_failure<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(e) if e.is_backend_failure() => {}
        other => panic!("expected Unavailable or Timeout, got {other:?}"),
    }
}

/// Killed Redis: every call fails fast with a backend failure instead of hanging; after a
/// restart the same store works again (from zero: Redis runs without persistence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_fails_fast_then_recovers() {
    let mut server = Redis::start().await;
    let store = RedisBudgetStore::new(connect(&server).await);
    let t = tenant("acme");
    let now = mid_month();
    let l = [budget("tokens", Period::Day, 100)];
    assert!(granted(&store.reserve(&t, &l, 100, now).await.unwrap()));

    server.stop().await;
    for _ in 0..3 {
        let started = Instant::now();
        assert_backend_failure(store.reserve(&t, &l, 1, now).await);
        assert_backend_failure(store.adjust(&t, &l, -1, now).await);
        assert_backend_failure(store.usage(&t, "tokens", Period::Day, now).await);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    server.restart().await;
    let (store, t, l) = (&store, &t, &l);
    let r = eventually(Duration::from_secs(10), move || async move {
        store.reserve(t, l, 100, now).await.ok()
    })
    .await;
    assert!(granted(&r), "the restarted Redis starts from zero: {r:?}");
    assert!(
        !granted(&store.reserve(t, l, 1, now).await.unwrap()),
        "and enforces again"
    );
}

/// A primary that counts the calls it answers, to see when the wrapper is back on it.
struct Counting {
    inner: RedisBudgetStore,
    answered: AtomicUsize,
}

impl Counting {
    fn note<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok() {
            self.answered.fetch_add(1, Ordering::SeqCst);
        }
        result
    }
}

#[async_trait]
impl BudgetStore for Counting {
    async fn reserve(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        amount: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        self.note(self.inner.reserve(tenant, limits, amount, now).await)
    }

    async fn adjust(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        delta: i64,
        reserved_at: SystemTime,
    ) -> Result<(), StoreError> {
        self.note(self.inner.adjust(tenant, limits, delta, reserved_at).await)
    }

    async fn usage(
        &self,
        tenant: &TenantId,
        name: &str,
        period: Period,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        self.note(self.inner.usage(tenant, name, period, now).await)
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// Starts Redis and a resilient store with `policy` (short cooldown) over a counting primary.
async fn resilient_setup(policy: FailurePolicy) -> (Redis, Arc<Counting>, ResilientBudgetStore) {
    let server = Redis::start().await;
    let primary = Arc::new(Counting {
        inner: RedisBudgetStore::new(connect(&server).await),
        answered: AtomicUsize::new(0),
    });
    let config = ResilienceConfig {
        on_failure: policy,
        cooldown: Duration::from_millis(200),
    };
    let store = ResilientBudgetStore::new(primary.clone(), &config);
    (server, primary, store)
}

/// Waits until the wrapper is back on the primary after a restart.
async fn until_primary_answers(primary: &Counting, store: &ResilientBudgetStore, t: &TenantId) {
    eventually(Duration::from_secs(10), move || async move {
        let before = primary.answered.load(Ordering::SeqCst);
        let _ = store.usage(t, "probe", Period::Day, mid_month()).await;
        (primary.answered.load(Ordering::SeqCst) > before).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_grants_while_redis_is_down() {
    let (mut server, primary, store) = resilient_setup(FailurePolicy::FailOpen).await;
    let t = tenant("acme");
    let now = mid_month();
    let l = [budget("tokens", Period::Day, 100)];
    assert!(granted(&store.reserve(&t, &l, 100, now).await.unwrap()));
    assert!(
        !granted(&store.reserve(&t, &l, 1, now).await.unwrap()),
        "enforced while healthy"
    );

    server.stop().await;
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(
            store.reserve(&t, &l, 50, now).await.unwrap(),
            Reservation::Granted { amount: 50 }
        );
        store
            .adjust(&t, &l, 10, now)
            .await
            .expect("dropped, not failed");
        assert_backend_failure(store.usage(&t, "tokens", Period::Day, now).await);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    assert!(matches!(
        store.reserve(&t, &[], 1, now).await,
        Err(StoreError::Invalid(_))
    ));

    server.restart().await;
    until_primary_answers(&primary, &store, &t).await;
    assert!(granted(&store.reserve(&t, &l, 100, now).await.unwrap()));
    assert!(
        !granted(&store.reserve(&t, &l, 1, now).await.unwrap()),
        "enforced again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_errors_while_redis_is_down() {
    let (mut server, primary, store) = resilient_setup(FailurePolicy::FailClosed).await;
    let t = tenant("acme");
    let now = mid_month();
    let l = [budget("tokens", Period::Day, 100)];
    assert!(granted(&store.reserve(&t, &l, 10, now).await.unwrap()));

    server.stop().await;
    for _ in 0..10 {
        let started = Instant::now();
        assert_backend_failure(store.reserve(&t, &l, 1, now).await);
        assert_backend_failure(store.adjust(&t, &l, 1, now).await);
        assert_backend_failure(store.usage(&t, "tokens", Period::Day, now).await);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    assert!(matches!(
        store.reserve(&t, &[], 1, now).await,
        Err(StoreError::Invalid(_))
    ));

    server.restart().await;
    until_primary_answers(&primary, &store, &t).await;
    assert!(granted(&store.reserve(&t, &l, 100, now).await.unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_policy_counts_per_node_while_redis_is_down() {
    let (mut server, primary, store) = resilient_setup(FailurePolicy::Local).await;
    let t = tenant("acme");
    let now = mid_month();
    let l = [budget("tokens", Period::Day, 100)];
    assert!(granted(&store.reserve(&t, &l, 90, now).await.unwrap()));

    server.stop().await;
    let started = Instant::now();
    // The local store starts from zero and enforces the limit.
    assert!(granted(&store.reserve(&t, &l, 60, now).await.unwrap()));
    assert!(!granted(&store.reserve(&t, &l, 60, now).await.unwrap()));
    store.adjust(&t, &l, -20, now).await.unwrap();
    assert_eq!(
        store.usage(&t, "tokens", Period::Day, now).await.unwrap(),
        40
    );
    assert!(granted(&store.reserve(&t, &l, 60, now).await.unwrap()));
    assert!(started.elapsed() < Duration::from_secs(3));
    // Tenants stay isolated locally too.
    assert_eq!(
        store
            .usage(&tenant("other"), "tokens", Period::Day, now)
            .await
            .unwrap(),
        0
    );

    server.restart().await;
    until_primary_answers(&primary, &store, &t).await;
    // Back on Redis (restarted empty): the local counts no longer apply.
    assert_eq!(
        store.usage(&t, "tokens", Period::Day, now).await.unwrap(),
        0
    );
    assert!(granted(&store.reserve(&t, &l, 100, now).await.unwrap()));
}
