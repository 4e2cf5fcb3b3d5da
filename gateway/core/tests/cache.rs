//! Exact cache: one contract suite run against the embedded and the Redis backend, then what
//! is particular to each (per-tenant byte budgets; Redis going away), and the resilient
//! wrapper that turns backend failures into misses.

#[path = "cache/suite.rs"]
mod suite;
#[path = "cache/support.rs"]
mod support;

/// One `#[tokio::test]` per suite function, on the backend `$fixture` builds.
macro_rules! contract {
    ($fixture:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = $fixture().await;
                crate::suite::$name(fixture.cache.clone()).await;
            }
        )+
    };
}

macro_rules! contract_suite {
    ($fixture:path) => {
        contract!($fixture;
            get_put_overwrite,
            ttl_expiry,
            delete,
            purge_touches_one_tenant,
            tenant_isolation,
            binary_values_and_keys,
            size_and_request_limits,
            concurrent_puts_and_gets,
        );
    };
}

mod embedded {
    use std::time::Duration;

    use bytes::Bytes;
    use gatez_core::store::cache::ExactCache;
    use gatez_core::store::cache::embedded::EmbeddedCacheConfig;

    use crate::support::{LONG, bytes, embedded_cache, eventually, tenant};

    contract_suite!(crate::support::embedded);

    /// The property per-tenant caches exist for: a tenant writing far past its budget evicts
    /// its own entries, never another tenant's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_filling_its_budget_cannot_evict_another() {
        let budget = 64 * 1024;
        let cache = embedded_cache(EmbeddedCacheConfig {
            max_bytes_per_tenant: budget,
            max_entry_bytes: 4 * 1024,
            max_tenants: 8,
        });
        let (a, b) = (tenant("noisy"), tenant("quiet"));
        let kib = Bytes::from(vec![1u8; 1024]);
        for i in 0..10 {
            cache
                .put(&b, &format!("b{i}"), kib.clone(), LONG)
                .await
                .unwrap();
        }
        // 1 MiB into a 64 KiB budget.
        for i in 0..1024 {
            cache
                .put(&a, &format!("a{i}"), kib.clone(), LONG)
                .await
                .unwrap();
        }
        let usage = cache.tenant_usage(&a).await.unwrap();
        assert!(usage.bytes <= budget, "{usage:?} exceeds the budget");
        assert!(usage.entries < 1024, "nothing was evicted: {usage:?}");
        for i in 0..10 {
            assert_eq!(
                cache.get(&b, &format!("b{i}")).await.unwrap(),
                Some(kib.clone()),
                "quiet tenant lost entry b{i}"
            );
        }
        assert_eq!(cache.tenant_usage(&b).await.unwrap().entries, 10);
    }

    /// Past `max_tenants`, a new tenant is simply not cached (no other tenant is evicted to
    /// make room), until a tenant cache empties out and is reclaimed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tenant_cap_refuses_new_tenants_until_a_cache_empties() {
        let cache = embedded_cache(EmbeddedCacheConfig {
            max_tenants: 2,
            ..Default::default()
        });
        let (one, two, three) = (tenant("one"), tenant("two"), tenant("three"));
        cache
            .put(&one, "k", bytes("1"), Duration::from_millis(200))
            .await
            .unwrap();
        cache.put(&two, "k", bytes("2"), LONG).await.unwrap();
        cache.put(&three, "k", bytes("3"), LONG).await.unwrap();
        assert_eq!(cache.get(&three, "k").await.unwrap(), None);
        assert_eq!(cache.tenant_count(), 2);

        // Once tenant one's only entry has expired, its slot is reclaimed for tenant three.
        eventually(
            Duration::from_secs(10),
            "tenant three gets a cache",
            || async {
                cache.put(&three, "k", bytes("3"), LONG).await.unwrap();
                cache.get(&three, "k").await.unwrap().is_some()
            },
        )
        .await;
        assert_eq!(cache.tenant_count(), 2);
        assert_eq!(cache.get(&two, "k").await.unwrap(), Some(bytes("2")));
    }

    #[tokio::test]
    async fn purge_frees_the_tenant_slot() {
        let cache = embedded_cache(EmbeddedCacheConfig {
            max_tenants: 1,
            ..Default::default()
        });
        let (one, two) = (tenant("one"), tenant("two"));
        cache.put(&one, "k", bytes("1"), LONG).await.unwrap();
        cache.put(&two, "k", bytes("2"), LONG).await.unwrap();
        assert_eq!(cache.get(&two, "k").await.unwrap(), None);
        assert_eq!(cache.purge(&one).await.unwrap(), 1);
        cache.put(&two, "k", bytes("2"), LONG).await.unwrap();
        assert_eq!(cache.get(&two, "k").await.unwrap(), Some(bytes("2")));
    }
}

mod redis {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use gatez_conformance::Redis;
    use gatez_core::store::cache::ExactCache;
    use gatez_core::store::cache::resilient::{ResilientCache, ResilientCacheConfig};

    use crate::support::{LONG, bytes, eventually, fallback_count, redis_cache, tenant};

    contract_suite!(crate::support::redis);

    /// Entries are plain Redis keys under the tenant's prefix, with a TTL: nothing outside
    /// the key scheme of `keys.rs`.
    #[tokio::test]
    async fn entries_live_under_the_tenant_prefix() {
        let redis = Redis::start().await;
        let cache = redis_cache(&redis).await;
        let t = tenant("acme");
        cache.put(&t, "a/b", bytes("v"), LONG).await.unwrap();
        let client = ::redis::Client::open(redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .unwrap();
        let expected = gatez_core::keys::tenant_key(&t, gatez_core::keys::KeyKind::Cache, &["a/b"]);
        assert_eq!(keys, vec![expected.clone()]);
        let ttl_ms: i64 = ::redis::cmd("PTTL")
            .arg(&expected)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl_ms > 0 && ttl_ms <= 600_000, "PTTL {ttl_ms}");
    }

    /// Redis killed: the bare backend fails fast with a backend error; the resilient wrapper
    /// turns that into misses and skipped writes, stops calling Redis for its cooldown, and
    /// uses Redis again once it is back, without being rebuilt.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_killed_degrades_to_misses_and_recovers() {
        let mut redis = Redis::start().await;
        let bare: Arc<dyn ExactCache> = Arc::new(redis_cache(&redis).await);
        let cache = ResilientCache::new(
            bare.clone(),
            ResilientCacheConfig {
                cooldown: Duration::from_millis(300),
                ..Default::default()
            },
        );
        let t = tenant("acme");
        cache.put(&t, "k", bytes("v"), LONG).await.unwrap();
        assert_eq!(cache.get(&t, "k").await.unwrap(), Some(bytes("v")));

        redis.stop().await;
        let failed_before = fallback_count("get", "unavailable") + fallback_count("get", "timeout");

        let started = Instant::now();
        let err = bare.get(&t, "k").await.unwrap_err();
        assert!(err.is_backend_failure(), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "bare get hung");

        let started = Instant::now();
        assert_eq!(cache.get(&t, "k").await.unwrap(), None);
        cache.put(&t, "k2", bytes("v"), LONG).await.unwrap();
        assert!(!cache.delete(&t, "k").await.unwrap());
        for _ in 0..100 {
            assert_eq!(cache.get(&t, "k").await.unwrap(), None);
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "calls while Redis is down took {:?}",
            started.elapsed()
        );
        let failed_after = fallback_count("get", "unavailable") + fallback_count("get", "timeout");
        assert!(failed_after > failed_before, "failure not counted");
        assert!(
            fallback_count("get", "cooldown") > 0,
            "cooldown not counted"
        );
        // An operator's purge is not silently skipped.
        assert!(cache.purge(&t).await.is_err());

        redis.restart().await;
        // Data is gone (no persistence), but the same wrapper works again after its cooldown.
        eventually(
            Duration::from_secs(10),
            "cache works after restart",
            || async {
                cache.put(&t, "back", bytes("v"), LONG).await.unwrap();
                cache.get(&t, "back").await.unwrap() == Some(bytes("v"))
            },
        )
        .await;
        assert!(!cache.is_cooling_down());
        assert_eq!(cache.purge(&t).await.unwrap(), 1);
    }
}

/// The resilient wrapper's decisions, against a backend whose failures the test controls.
mod resilient {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use bytes::Bytes;
    use gatez_core::TenantId;
    use gatez_core::store::StoreError;
    use gatez_core::store::cache::ExactCache;
    use gatez_core::store::cache::embedded::EmbeddedCacheConfig;
    use gatez_core::store::cache::resilient::{ResilientCache, ResilientCacheConfig};
    use tokio::sync::Semaphore;

    use crate::support::{
        LONG, MAX_ENTRY, bytes, embedded_cache, eventually, fallback_count, tenant,
    };

    /// What the controlled backend answers.
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        Healthy,
        Down,
        Corrupt,
    }

    /// An embedded cache that fails on command, counts the calls that reach it, and can hold
    /// calls at a gate until the test opens it.
    struct Controlled {
        inner: gatez_core::store::cache::embedded::EmbeddedCache,
        mode: std::sync::Mutex<Mode>,
        calls: AtomicUsize,
        gated: AtomicBool,
        gate: Semaphore,
    }

    impl Controlled {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                inner: embedded_cache(EmbeddedCacheConfig {
                    max_entry_bytes: MAX_ENTRY,
                    ..Default::default()
                }),
                mode: std::sync::Mutex::new(Mode::Healthy),
                calls: AtomicUsize::new(0),
                gated: AtomicBool::new(false),
                gate: Semaphore::new(0),
            })
        }

        fn set(&self, mode: Mode) {
            *self.mode.lock().unwrap() = mode;
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        async fn enter(&self) -> Result<(), StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.gated.load(Ordering::SeqCst) {
                self.gate.acquire().await.unwrap().forget();
            }
            match *self.mode.lock().unwrap() {
                Mode::Healthy => Ok(()),
                Mode::Down => Err(StoreError::unavailable("controlled", "down")),
                Mode::Corrupt => Err(StoreError::Corrupt {
                    backend: "controlled",
                    message: "garbled".into(),
                }),
            }
        }
    }

    #[async_trait]
    impl ExactCache for Controlled {
        async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<Bytes>, StoreError> {
            self.enter().await?;
            self.inner.get(tenant, key).await
        }
        async fn put(
            &self,
            tenant: &TenantId,
            key: &str,
            value: Bytes,
            ttl: Duration,
        ) -> Result<(), StoreError> {
            self.enter().await?;
            self.inner.put(tenant, key, value, ttl).await
        }
        async fn delete(&self, tenant: &TenantId, key: &str) -> Result<bool, StoreError> {
            self.enter().await?;
            self.inner.delete(tenant, key).await
        }
        async fn purge(&self, tenant: &TenantId) -> Result<u64, StoreError> {
            self.enter().await?;
            self.inner.purge(tenant).await
        }
        fn backend(&self) -> &'static str {
            "controlled"
        }
    }

    fn wrap(backend: &Arc<Controlled>, cooldown: Duration) -> ResilientCache {
        ResilientCache::new(
            backend.clone(),
            ResilientCacheConfig {
                cooldown,
                ..Default::default()
            },
        )
    }

    #[tokio::test]
    async fn failures_become_misses_and_no_ops_then_the_backend_is_left_alone() {
        let backend = Controlled::new();
        let cache = wrap(&backend, LONG);
        let t = tenant("acme");
        cache.put(&t, "k", bytes("v"), LONG).await.unwrap();
        assert_eq!(backend.calls(), 1);

        backend.set(Mode::Down);
        let (unavailable, cooldown) = (
            fallback_count("get", "unavailable"),
            fallback_count("put", "cooldown"),
        );
        assert_eq!(cache.get(&t, "k").await.unwrap(), None);
        assert_eq!(backend.calls(), 2);
        assert!(cache.is_cooling_down());
        // During the cooldown nothing reaches the backend.
        cache.put(&t, "k", bytes("new"), LONG).await.unwrap();
        assert!(!cache.delete(&t, "k").await.unwrap());
        assert_eq!(cache.get(&t, "k").await.unwrap(), None);
        assert_eq!(backend.calls(), 2);
        assert!(fallback_count("get", "unavailable") > unavailable);
        assert!(fallback_count("put", "cooldown") > cooldown);
        // The skipped put really was skipped.
        backend.set(Mode::Healthy);
        assert_eq!(
            backend.inner.get(&t, "k").await.unwrap(),
            Some(bytes("v")),
            "put during cooldown reached the backend"
        );
    }

    /// After the cooldown, exactly one call probes the backend while the others keep falling
    /// back; the probe's success brings every call back to the backend.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_probe_after_the_cooldown_closes_the_circuit() {
        let backend = Controlled::new();
        let cache = Arc::new(wrap(&backend, Duration::from_millis(100)));
        let t = tenant("acme");
        cache.put(&t, "k", bytes("v"), LONG).await.unwrap();
        backend.set(Mode::Down);
        assert_eq!(cache.get(&t, "k").await.unwrap(), None);
        let calls = backend.calls();

        tokio::time::sleep(Duration::from_millis(150)).await;
        backend.set(Mode::Healthy);
        backend.gated.store(true, Ordering::SeqCst);
        let probe = {
            let (cache, t) = (cache.clone(), t.clone());
            tokio::spawn(async move { cache.get(&t, "k").await })
        };
        eventually(
            Duration::from_secs(5),
            "the probe reaches the backend",
            || async { backend.calls() > calls },
        )
        .await;
        // The probe is held inside the backend: everyone else is answered without it.
        for _ in 0..10 {
            let answer = tokio::time::timeout(Duration::from_secs(2), cache.get(&t, "k"))
                .await
                .expect("a call waited on the backend while the probe was in flight");
            assert_eq!(answer.unwrap(), None);
        }
        assert_eq!(backend.calls(), calls + 1);
        backend.gate.add_permits(1);
        assert_eq!(probe.await.unwrap().unwrap(), Some(bytes("v")));
        backend.gated.store(false, Ordering::SeqCst);
        assert!(!cache.is_cooling_down());
        assert_eq!(cache.get(&t, "k").await.unwrap(), Some(bytes("v")));
        assert_eq!(backend.calls(), calls + 2);
    }

    #[tokio::test]
    async fn caller_errors_pass_through_without_a_cooldown() {
        let backend = Controlled::new();
        let cache = wrap(&backend, LONG);
        let t = tenant("acme");
        let too_big = Bytes::from(vec![0u8; usize::try_from(MAX_ENTRY).unwrap() + 1]);
        let err = cache.put(&t, "k", too_big, LONG).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert!(!cache.is_cooling_down());
        cache.put(&t, "k", bytes("v"), LONG).await.unwrap();
        assert_eq!(cache.get(&t, "k").await.unwrap(), Some(bytes("v")));
    }

    #[tokio::test]
    async fn unreadable_data_is_a_miss_but_the_backend_stays_in_use() {
        let backend = Controlled::new();
        let cache = wrap(&backend, LONG);
        let t = tenant("acme");
        let corrupt = fallback_count("get", "corrupt");
        backend.set(Mode::Corrupt);
        assert_eq!(cache.get(&t, "k").await.unwrap(), None);
        assert!(fallback_count("get", "corrupt") > corrupt);
        assert!(!cache.is_cooling_down());
        let calls = backend.calls();
        assert_eq!(cache.get(&t, "k").await.unwrap(), None);
        assert_eq!(backend.calls(), calls + 1);
    }

    #[tokio::test]
    async fn purge_reports_failures() {
        let backend = Controlled::new();
        let cache = wrap(&backend, LONG);
        let t = tenant("acme");
        backend.set(Mode::Down);
        assert!(cache.purge(&t).await.unwrap_err().is_backend_failure());
        // Purge neither starts nor heeds the cooldown.
        assert!(!cache.is_cooling_down());
        backend.set(Mode::Healthy);
        assert_eq!(cache.purge(&t).await.unwrap(), 0);
    }
}
