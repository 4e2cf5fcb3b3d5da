//! The `ExactCache` contract: every backend must pass each of these.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatez_core::store::StoreError;
use gatez_core::store::cache::{ExactCache, MAX_KEY_BYTES};

use crate::support::{LONG, MAX_ENTRY, bytes, eventually, tenant};

type Cache = Arc<dyn ExactCache>;

pub async fn get_put_overwrite(cache: Cache) {
    let t = tenant("acme");
    assert_eq!(cache.get(&t, "k").await.unwrap(), None);
    cache.put(&t, "k", bytes("one"), LONG).await.unwrap();
    cache.put(&t, "other", bytes("x"), LONG).await.unwrap();
    assert_eq!(cache.get(&t, "k").await.unwrap(), Some(bytes("one")));
    cache.put(&t, "k", bytes("two"), LONG).await.unwrap();
    assert_eq!(cache.get(&t, "k").await.unwrap(), Some(bytes("two")));
    assert_eq!(cache.get(&t, "other").await.unwrap(), Some(bytes("x")));
    assert_eq!(
        cache.get(&t, "K").await.unwrap(),
        None,
        "keys are case-sensitive"
    );
}

pub async fn ttl_expiry(cache: Cache) {
    let t = tenant("acme");
    let ttl = Duration::from_millis(200);
    let written = Instant::now();
    cache.put(&t, "short", bytes("s"), ttl).await.unwrap();
    cache.put(&t, "long", bytes("l"), LONG).await.unwrap();
    // Right after the put it must be there, unless the machine stalled past the TTL.
    match cache.get(&t, "short").await.unwrap() {
        Some(value) => assert_eq!(value, bytes("s")),
        None => assert!(written.elapsed() >= ttl, "entry vanished before its TTL"),
    }
    eventually(
        Duration::from_secs(5),
        "short-lived entry expires",
        || async { cache.get(&t, "short").await.unwrap().is_none() },
    )
    .await;
    assert!(written.elapsed() >= ttl, "entry expired before its TTL");
    assert_eq!(cache.get(&t, "long").await.unwrap(), Some(bytes("l")));

    // Overwriting restarts the clock with the new TTL.
    cache.put(&t, "re", bytes("1"), ttl).await.unwrap();
    cache.put(&t, "re", bytes("2"), LONG).await.unwrap();
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(cache.get(&t, "re").await.unwrap(), Some(bytes("2")));

    // Sub-millisecond TTLs are accepted (and expire).
    cache
        .put(&t, "tiny", bytes("t"), Duration::from_micros(10))
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "tiny TTL expires", || async {
        cache.get(&t, "tiny").await.unwrap().is_none()
    })
    .await;
}

pub async fn delete(cache: Cache) {
    let t = tenant("acme");
    cache.put(&t, "k", bytes("v"), LONG).await.unwrap();
    cache.put(&t, "keep", bytes("v"), LONG).await.unwrap();
    assert!(cache.delete(&t, "k").await.unwrap());
    assert_eq!(cache.get(&t, "k").await.unwrap(), None);
    assert!(!cache.delete(&t, "k").await.unwrap(), "second delete");
    assert!(!cache.delete(&t, "never").await.unwrap());
    assert_eq!(cache.get(&t, "keep").await.unwrap(), Some(bytes("v")));

    // An expired entry does not exist, even if the backend has not evicted it yet.
    cache
        .put(&t, "old", bytes("v"), Duration::from_millis(50))
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "entry expires", || async {
        cache.get(&t, "old").await.unwrap().is_none()
    })
    .await;
    assert!(!cache.delete(&t, "old").await.unwrap());
}

pub async fn purge_touches_one_tenant(cache: Cache) {
    // Tenant ids that share a prefix: a purge pattern must not reach across them.
    let a = tenant("acme");
    let b = tenant("acme-eu");
    let c = tenant("acm");
    for i in 0..30 {
        cache
            .put(&a, &format!("a{i}"), bytes("a"), LONG)
            .await
            .unwrap();
    }
    for t in [&b, &c] {
        cache.put(t, "a0", bytes("other"), LONG).await.unwrap();
        cache.put(t, "b", bytes("other"), LONG).await.unwrap();
    }
    assert_eq!(cache.purge(&a).await.unwrap(), 30);
    for i in 0..30 {
        assert_eq!(cache.get(&a, &format!("a{i}")).await.unwrap(), None);
    }
    for t in [&b, &c] {
        assert_eq!(cache.get(t, "a0").await.unwrap(), Some(bytes("other")));
        assert_eq!(cache.get(t, "b").await.unwrap(), Some(bytes("other")));
    }
    assert_eq!(cache.purge(&a).await.unwrap(), 0, "nothing left to purge");
    cache.put(&a, "again", bytes("v"), LONG).await.unwrap();
    assert_eq!(cache.get(&a, "again").await.unwrap(), Some(bytes("v")));
    assert_eq!(cache.purge(&tenant("nobody")).await.unwrap(), 0);
}

pub async fn tenant_isolation(cache: Cache) {
    let a = tenant("tenant-a");
    let b = tenant("tenant-b");
    cache.put(&a, "k", bytes("from-a"), LONG).await.unwrap();
    cache.put(&b, "k", bytes("from-b"), LONG).await.unwrap();
    assert_eq!(cache.get(&a, "k").await.unwrap(), Some(bytes("from-a")));
    assert_eq!(cache.get(&b, "k").await.unwrap(), Some(bytes("from-b")));

    cache.put(&b, "only-b", bytes("b"), LONG).await.unwrap();
    assert_eq!(cache.get(&a, "only-b").await.unwrap(), None);
    assert!(!cache.delete(&a, "only-b").await.unwrap());
    assert_eq!(cache.get(&b, "only-b").await.unwrap(), Some(bytes("b")));

    // Keys crafted to climb out of A's namespace or widen a pattern stay A's own.
    for hostile in [
        "../tenant-b/cache/k",
        "../../tenant-b/cache/k",
        "*",
        "k*",
        "?",
        "[k]",
    ] {
        cache
            .put(&a, hostile, bytes("hostile"), LONG)
            .await
            .unwrap();
        assert_eq!(
            cache.get(&a, hostile).await.unwrap(),
            Some(bytes("hostile"))
        );
    }
    assert_eq!(cache.get(&b, "k").await.unwrap(), Some(bytes("from-b")));
    assert!(cache.delete(&a, "*").await.unwrap());
    assert_eq!(cache.get(&a, "k*").await.unwrap(), Some(bytes("hostile")));

    assert!(cache.delete(&a, "k").await.unwrap());
    assert_eq!(cache.get(&b, "k").await.unwrap(), Some(bytes("from-b")));
    assert_eq!(cache.purge(&a).await.unwrap(), 5);
    assert_eq!(cache.get(&b, "k").await.unwrap(), Some(bytes("from-b")));
    assert_eq!(cache.get(&b, "only-b").await.unwrap(), Some(bytes("b")));
}

pub async fn binary_values_and_keys(cache: Cache) {
    let t = tenant("acme");
    let all_bytes: Bytes = (0..=255u8).collect::<Vec<_>>().into();
    let invalid_utf8 = Bytes::from_static(&[0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]);
    let cases = [
        ("all-bytes", all_bytes),
        ("invalid-utf8", invalid_utf8),
        ("empty", Bytes::new()),
        ("ключ/🔑", bytes("unicode key")),
        ("", bytes("empty key")),
        ("a b\r\n\t", bytes("whitespace key")),
    ];
    for (key, value) in &cases {
        cache.put(&t, key, value.clone(), LONG).await.unwrap();
    }
    for (key, value) in &cases {
        assert_eq!(
            cache.get(&t, key).await.unwrap().as_ref(),
            Some(value),
            "key {key:?}"
        );
    }
}

pub async fn size_and_request_limits(cache: Cache) {
    let t = tenant("acme");
    let max = usize::try_from(MAX_ENTRY).unwrap();
    let largest = Bytes::from(vec![7u8; max]);
    cache.put(&t, "max", largest.clone(), LONG).await.unwrap();
    assert_eq!(cache.get(&t, "max").await.unwrap(), Some(largest));

    let too_big = Bytes::from(vec![7u8; max + 1]);
    let err = cache.put(&t, "big", too_big, LONG).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(cache.get(&t, "big").await.unwrap(), None);

    let err = cache
        .put(&t, "zero", bytes("v"), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");

    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    let err = cache
        .put(&t, &long_key, bytes("v"), LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(matches!(
        cache.get(&t, &long_key).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn concurrent_puts_and_gets(cache: Cache) {
    let t = tenant("acme");
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let cache = cache.clone();
            let t = t.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let own = format!("own-{i}");
                let value = bytes(&format!("value-{i}"));
                cache.put(&t, &own, value.clone(), LONG).await.unwrap();
                cache.put(&t, "shared", value.clone(), LONG).await.unwrap();
                for _ in 0..5 {
                    assert_eq!(cache.get(&t, &own).await.unwrap(), Some(value.clone()));
                    if let Some(shared) = cache.get(&t, "shared").await.unwrap() {
                        assert!(shared.starts_with(b"value-"), "torn value {shared:?}");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let written: HashSet<Bytes> = (0..50).map(|i| bytes(&format!("value-{i}"))).collect();
    let shared = cache.get(&t, "shared").await.unwrap().expect("shared key");
    assert!(written.contains(&shared), "last write is one of the writes");
    for i in 0..50 {
        assert_eq!(
            cache.get(&t, &format!("own-{i}")).await.unwrap(),
            Some(bytes(&format!("value-{i}")))
        );
    }
}
