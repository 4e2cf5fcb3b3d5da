//! Record store (sessions, approvals): one contract suite run against the embedded and the
//! Redis backend, then what is particular to each (sweeping and per-scope caps; the Redis
//! index staying bounded, and Redis going away).

#[path = "records/suite.rs"]
mod suite;
#[path = "records/support.rs"]
mod support;

/// One `#[tokio::test]` per suite function, on the backend `$fixture` builds.
macro_rules! contract {
    ($fixture:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = $fixture().await;
                crate::suite::$name(fixture.store.clone()).await;
            }
        )+
    };
}

macro_rules! contract_suite {
    ($fixture:path) => {
        contract!($fixture;
            create_once,
            compare_and_swap,
            compare_and_swap_on_missing_record,
            concurrent_cas_has_exactly_one_winner,
            touch_extends_life,
            ttl_expiry,
            list_limit,
            delete,
            tenant_isolation,
            hostile_ids,
            request_limits,
        );
    };
}

mod embedded {
    use std::time::Duration;

    use gatez_core::keys::KeyKind;
    use gatez_core::store::StoreError;
    use gatez_core::store::records::RecordStore;
    use gatez_core::store::records::embedded::EmbeddedRecordConfig;

    use crate::support::{LONG, bytes, embedded_store, eventually, tenant};

    contract_suite!(crate::support::embedded);

    /// Expired records are removed in the background, so memory follows the live records
    /// even when nobody reads the expired ones again.
    #[tokio::test]
    async fn sweeper_removes_expired_records() {
        let store = embedded_store(EmbeddedRecordConfig {
            sweep_interval: Duration::from_millis(50),
            ..Default::default()
        });
        let t = tenant("acme");
        for i in 0..20 {
            let id = format!("s{i}");
            assert!(
                store
                    .create(
                        &t,
                        KeyKind::Session,
                        &id,
                        bytes("v"),
                        Duration::from_millis(100)
                    )
                    .await
                    .unwrap()
            );
        }
        assert!(
            store
                .create(&t, KeyKind::Session, "live", bytes("v"), LONG)
                .await
                .unwrap()
        );
        assert_eq!(store.stored_records(), 21);
        eventually(Duration::from_secs(5), "expired records swept", || async {
            store.stored_records() == 1
        })
        .await;
        assert!(
            store
                .get(&t, KeyKind::Session, "live")
                .await
                .unwrap()
                .is_some()
        );
    }

    /// One tenant cannot exhaust the process's memory with records; the cap is per tenant and
    /// kind, so it does not stop anyone else.
    #[tokio::test]
    async fn records_per_tenant_and_kind_are_capped() {
        let store = embedded_store(EmbeddedRecordConfig {
            max_records_per_scope: 3,
            ..Default::default()
        });
        let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
        let s = KeyKind::Session;
        for id in ["1", "2", "3"] {
            assert!(store.create(&a, s, id, bytes("v"), LONG).await.unwrap());
        }
        let err = store
            .create(&a, s, "4", bytes("v"), LONG)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert!(!store.create(&a, s, "1", bytes("v"), LONG).await.unwrap());
        assert!(store.create(&b, s, "4", bytes("v"), LONG).await.unwrap());
        assert!(
            store
                .create(&a, KeyKind::Approval, "4", bytes("v"), LONG)
                .await
                .unwrap()
        );
        assert!(store.delete(&a, s, "1").await.unwrap());
        assert!(store.create(&a, s, "4", bytes("v"), LONG).await.unwrap());
        // Expired records do not hold places.
        assert!(
            store
                .touch(&a, s, "2", Duration::from_millis(50))
                .await
                .unwrap()
        );
        eventually(Duration::from_secs(5), "a place frees up", || async {
            store.create(&a, s, "5", bytes("v"), LONG).await.is_ok()
        })
        .await;
    }
}

mod redis {
    use std::time::{Duration, Instant};

    use gatez_conformance::Redis;
    use gatez_core::keys::{self, KeyKind};
    use gatez_core::store::StoreError;
    use gatez_core::store::records::{CasOutcome, RecordStore};

    use crate::support::{LONG, bytes, eventually, redis_store, tenant};

    contract_suite!(crate::support::redis);

    async fn raw(redis: &Redis) -> ::redis::aio::MultiplexedConnection {
        ::redis::Client::open(redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Records are hashes at `keys::tenant_key` with a TTL, indexed at
    /// `keys::tenant_index_key`: nothing outside the key scheme.
    #[tokio::test]
    async fn layout_follows_the_key_scheme() {
        let redis = Redis::start().await;
        let store = redis_store(&redis).await;
        let mut conn = raw(&redis).await;
        let t = tenant("acme");
        assert!(
            store
                .create(&t, KeyKind::Session, "a/b", bytes("v"), LONG)
                .await
                .unwrap()
        );
        let record = keys::tenant_key(&t, KeyKind::Session, &["a/b"]);
        let index = keys::tenant_index_key(&t, KeyKind::Session);
        let mut all: Vec<String> = ::redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .unwrap();
        all.sort();
        let mut expected = vec![record.clone(), index.clone()];
        expected.sort();
        assert_eq!(all, expected);
        let (value, version): (Vec<u8>, u64) = ::redis::cmd("HMGET")
            .arg(&record)
            .arg("v")
            .arg("ver")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!((value.as_slice(), version), (&b"v"[..], 1));
        for key in [&record, &index] {
            let ttl: i64 = ::redis::cmd("PTTL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(ttl > 0 && ttl <= 600_000, "{key}: PTTL {ttl}");
        }
    }

    /// The index drops expired members on its own (no `list` needed) and disappears with
    /// the last record, so sessions created and never listed do not leak memory.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn index_stays_bounded_without_listing() {
        let redis = Redis::start().await;
        let store = redis_store(&redis).await;
        let mut conn = raw(&redis).await;
        let t = tenant("acme");
        let s = KeyKind::Session;
        let index = keys::tenant_index_key(&t, s);
        for i in 0..20 {
            let id = format!("old-{i}");
            store
                .create(&t, s, &id, bytes("v"), Duration::from_millis(100))
                .await
                .unwrap();
        }
        eventually(Duration::from_secs(5), "old records expire", || async {
            store.get(&t, s, "old-19").await.unwrap().is_none()
        })
        .await;
        // The next write prunes the expired members.
        store.create(&t, s, "new", bytes("v"), LONG).await.unwrap();
        let members: u64 = ::redis::cmd("ZCARD")
            .arg(&index)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(members, 1);
        assert!(store.delete(&t, s, "new").await.unwrap());
        let members: u64 = ::redis::cmd("ZCARD")
            .arg(&index)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(members, 0, "delete removes the index member");

        let a = KeyKind::Approval;
        store
            .create(&t, a, "short", bytes("v"), Duration::from_millis(100))
            .await
            .unwrap();
        let approvals = keys::tenant_index_key(&t, a);
        eventually(
            Duration::from_secs(5),
            "index expires with its records",
            || {
                let mut conn = conn.clone();
                let approvals = approvals.clone();
                async move {
                    let exists: u64 = ::redis::cmd("EXISTS")
                        .arg(&approvals)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    exists == 0
                }
            },
        )
        .await;
    }

    /// Records can vanish under the index (Redis evicting under memory pressure); `list`
    /// skips such members and still fills its limit from the live ones.
    #[tokio::test]
    async fn list_reads_past_members_whose_record_is_gone() {
        let redis = Redis::start().await;
        let store = redis_store(&redis).await;
        let mut conn = raw(&redis).await;
        let t = tenant("acme");
        let s = KeyKind::Session;
        for i in 0..10 {
            // Earlier expiry first, so the gone records sort before the live ones.
            let ttl = Duration::from_secs(100 + i);
            store
                .create(&t, s, &format!("id-{i}"), bytes("v"), ttl)
                .await
                .unwrap();
        }
        for i in 0..5 {
            let _: u64 = ::redis::cmd("DEL")
                .arg(keys::tenant_key(&t, s, &[&format!("id-{i}")]))
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        let listed = store.list(&t, s, 3).await.unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(store.list(&t, s, 100).await.unwrap().len(), 5);
    }

    /// Redis killed mid-test: every operation fails fast with a backend error (sessions and
    /// approvals fail closed: nothing is answered from nowhere), and the same store works
    /// again once Redis is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_killed_fails_fast_and_recovers() {
        let mut redis = Redis::start().await;
        let store = redis_store(&redis).await;
        let t = tenant("acme");
        let s = KeyKind::Session;
        assert!(store.create(&t, s, "s1", bytes("v"), LONG).await.unwrap());

        redis.stop().await;
        let check = |what: &str, started: Instant, result: Result<(), StoreError>| {
            let err = result.expect_err(what);
            assert!(err.is_backend_failure(), "{what}: {err:?}");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{what} took {:?}",
                started.elapsed()
            );
        };
        for _ in 0..3 {
            let now = Instant::now();
            check("get", now, store.get(&t, s, "s1").await.map(|_| ()));
            let now = Instant::now();
            check(
                "create",
                now,
                store
                    .create(&t, s, "s2", bytes("v"), LONG)
                    .await
                    .map(|_| ()),
            );
            let now = Instant::now();
            check(
                "cas",
                now,
                store
                    .compare_and_swap(&t, s, "s1", 1, bytes("w"), LONG)
                    .await
                    .map(|_| ()),
            );
            let now = Instant::now();
            check(
                "touch",
                now,
                store.touch(&t, s, "s1", LONG).await.map(|_| ()),
            );
            let now = Instant::now();
            check("delete", now, store.delete(&t, s, "s1").await.map(|_| ()));
            let now = Instant::now();
            check("list", now, store.list(&t, s, 10).await.map(|_| ()));
        }

        redis.restart().await;
        // Redis runs without persistence: the data is gone, the store is not.
        eventually(
            Duration::from_secs(10),
            "store works after restart",
            || async { store.create(&t, s, "s1", bytes("new"), LONG).await.is_ok() },
        )
        .await;
        assert_eq!(
            store
                .compare_and_swap(&t, s, "s1", 1, bytes("w"), LONG)
                .await
                .unwrap(),
            CasOutcome::Written { version: 2 }
        );
        assert_eq!(store.list(&t, s, 10).await.unwrap().len(), 1);
        assert!(store.touch(&t, s, "s1", LONG).await.unwrap());
        assert!(store.delete(&t, s, "s1").await.unwrap());
    }
}
