//! The `RecordStore` contract: every backend must pass each of these.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatez_core::keys::KeyKind;
use gatez_core::store::StoreError;
use gatez_core::store::records::{CasOutcome, RecordStore, Versioned};

use crate::support::{LONG, MAX_ID, MAX_VALUE, bytes, eventually, tenant};

type Store = Arc<dyn RecordStore>;

const S: KeyKind = KeyKind::Session;
const A: KeyKind = KeyKind::Approval;

fn v(value: &str, version: u64) -> Versioned {
    Versioned {
        value: bytes(value),
        version,
    }
}

pub async fn create_once(store: Store) {
    let t = tenant("acme");
    assert_eq!(store.get(&t, S, "s1").await.unwrap(), None);
    assert!(
        store
            .create(&t, S, "s1", bytes("first"), LONG)
            .await
            .unwrap()
    );
    assert!(
        !store
            .create(&t, S, "s1", bytes("second"), LONG)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&t, S, "s1").await.unwrap(), Some(v("first", 1)));

    // Values are bytes, not text.
    let binary = Bytes::from_static(&[0xff, 0x00, 0xc3, 0x28, 0x80]);
    assert!(
        store
            .create(&t, S, "bin", binary.clone(), LONG)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get(&t, S, "bin").await.unwrap().unwrap().value,
        binary
    );
    assert!(
        store
            .create(&t, S, "empty", Bytes::new(), LONG)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get(&t, S, "empty").await.unwrap(),
        Some(Versioned {
            value: Bytes::new(),
            version: 1
        })
    );
}

pub async fn compare_and_swap(store: Store) {
    let t = tenant("acme");
    assert!(
        store
            .create(&t, A, "ap", bytes("pending"), LONG)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .compare_and_swap(&t, A, "ap", 1, bytes("approved"), LONG)
            .await
            .unwrap(),
        CasOutcome::Written { version: 2 }
    );
    // A second writer holding the old version loses and learns the current record.
    assert_eq!(
        store
            .compare_and_swap(&t, A, "ap", 1, bytes("denied"), LONG)
            .await
            .unwrap(),
        CasOutcome::Conflict {
            current: Some(v("approved", 2))
        }
    );
    // A version from the future is a conflict too.
    assert!(matches!(
        store
            .compare_and_swap(&t, A, "ap", 7, bytes("x"), LONG)
            .await
            .unwrap(),
        CasOutcome::Conflict { current: Some(_) }
    ));
    for version in 2..10 {
        assert_eq!(
            store
                .compare_and_swap(&t, A, "ap", version, bytes(&format!("v{version}")), LONG)
                .await
                .unwrap(),
            CasOutcome::Written {
                version: version + 1
            }
        );
    }
    assert_eq!(store.get(&t, A, "ap").await.unwrap(), Some(v("v9", 10)));
}

pub async fn compare_and_swap_on_missing_record(store: Store) {
    let t = tenant("acme");
    assert_eq!(
        store
            .compare_and_swap(&t, A, "nope", 1, bytes("x"), LONG)
            .await
            .unwrap(),
        CasOutcome::Conflict { current: None }
    );
    // ...and it does not create one.
    assert_eq!(store.get(&t, A, "nope").await.unwrap(), None);
    assert!(store.list(&t, A, 10).await.unwrap().is_empty());
}

/// The guarantee approvals rest on: of many deciders racing from the same version, exactly
/// one wins and everyone else sees the winner's decision.
pub async fn concurrent_cas_has_exactly_one_winner(store: Store) {
    let t = tenant("acme");
    assert!(
        store
            .create(&t, A, "ap", bytes("pending"), LONG)
            .await
            .unwrap()
    );
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (store, t, barrier) = (store.clone(), t.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let decision = bytes(&format!("decided-by-{i}"));
                (
                    decision.clone(),
                    store
                        .compare_and_swap(&t, A, "ap", 1, decision, LONG)
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut seen_by_losers = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (decision, CasOutcome::Written { version }) => {
                assert_eq!(version, 2);
                winners.push(decision);
            }
            (_, CasOutcome::Conflict { current }) => {
                seen_by_losers.push(current.expect("record still exists"));
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one decision wins");
    assert_eq!(seen_by_losers.len(), 49);
    let winner = Versioned {
        value: winners[0].clone(),
        version: 2,
    };
    for current in seen_by_losers {
        assert_eq!(current, winner);
    }
    assert_eq!(store.get(&t, A, "ap").await.unwrap(), Some(winner));
}

pub async fn touch_extends_life(store: Store) {
    let t = tenant("acme");
    let short = Duration::from_millis(300);
    // Retried only if the machine stalled past the short TTL before the touch (then the
    // record legitimately expired first); every attempt checks that it did.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let id = format!("s{attempt}");
        let created = Instant::now();
        assert!(store.create(&t, S, &id, bytes("v"), short).await.unwrap());
        if !store.touch(&t, S, &id, LONG).await.unwrap() {
            assert!(created.elapsed() >= short, "touch missed a live record");
            assert!(attempt < 5, "machine too slow to touch within {short:?}");
            continue;
        }
        tokio::time::sleep(short * 2).await;
        assert_eq!(
            store.get(&t, S, &id).await.unwrap(),
            Some(v("v", 1)),
            "touch does not change the version, and the record outlived its first TTL"
        );
        assert!(
            store
                .list(&t, S, 10)
                .await
                .unwrap()
                .iter()
                .any(|(i, _)| *i == id)
        );
        break;
    }

    // Touch sets the TTL, so it can also shorten it.
    assert!(
        store
            .create(&t, S, "shorten", bytes("v"), LONG)
            .await
            .unwrap()
    );
    assert!(store.touch(&t, S, "shorten", short).await.unwrap());
    eventually(
        Duration::from_secs(5),
        "shortened record expires",
        || async { store.get(&t, S, "shorten").await.unwrap().is_none() },
    )
    .await;
    assert!(
        !store.touch(&t, S, "shorten", LONG).await.unwrap(),
        "expired"
    );
    assert!(!store.touch(&t, S, "never", LONG).await.unwrap(), "missing");
    assert_eq!(store.get(&t, S, "never").await.unwrap(), None);
}

pub async fn ttl_expiry(store: Store) {
    let t = tenant("acme");
    let ttl = Duration::from_millis(200);
    let created = Instant::now();
    assert!(store.create(&t, S, "short", bytes("s"), ttl).await.unwrap());
    assert!(store.create(&t, S, "long", bytes("l"), LONG).await.unwrap());
    eventually(Duration::from_secs(5), "record expires", || async {
        store.get(&t, S, "short").await.unwrap().is_none()
    })
    .await;
    assert!(created.elapsed() >= ttl, "record expired before its TTL");
    let listed = store.list(&t, S, 10).await.unwrap();
    assert_eq!(listed, vec![("long".to_owned(), v("l", 1))]);
    assert_eq!(
        store
            .compare_and_swap(&t, S, "short", 1, bytes("x"), LONG)
            .await
            .unwrap(),
        CasOutcome::Conflict { current: None }
    );
    assert!(!store.delete(&t, S, "short").await.unwrap());
    // The id is free again, and starts over at version 1.
    assert!(
        store
            .create(&t, S, "short", bytes("again"), LONG)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get(&t, S, "short").await.unwrap(),
        Some(v("again", 1))
    );

    // CAS sets the TTL it is given.
    assert!(store.create(&t, S, "cas", bytes("v"), LONG).await.unwrap());
    assert!(matches!(
        store
            .compare_and_swap(&t, S, "cas", 1, bytes("w"), ttl)
            .await
            .unwrap(),
        CasOutcome::Written { version: 2 }
    ));
    eventually(Duration::from_secs(5), "CAS TTL applies", || async {
        store.get(&t, S, "cas").await.unwrap().is_none()
    })
    .await;
}

pub async fn list_limit(store: Store) {
    let t = tenant("acme");
    let expected: HashMap<String, Versioned> = (0..10)
        .map(|i| (format!("id-{i}"), v(&format!("value-{i}"), 1)))
        .collect();
    for (id, record) in &expected {
        assert!(
            store
                .create(&t, S, id, record.value.clone(), LONG)
                .await
                .unwrap()
        );
    }
    let some = store.list(&t, S, 3).await.unwrap();
    assert_eq!(some.len(), 3);
    let ids: HashSet<&String> = some.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 3, "no duplicates");
    for (id, record) in &some {
        assert_eq!(expected.get(id), Some(record));
    }
    let all: HashMap<String, Versioned> =
        store.list(&t, S, 100).await.unwrap().into_iter().collect();
    assert_eq!(all, expected);
    assert_eq!(store.list(&t, S, 10).await.unwrap().len(), 10);
    assert!(store.list(&t, S, 0).await.unwrap().is_empty());
    assert!(
        store.list(&t, A, 100).await.unwrap().is_empty(),
        "other kind"
    );
    assert_eq!(store.list(&t, S, usize::MAX).await.unwrap().len(), 10);
}

pub async fn delete(store: Store) {
    let t = tenant("acme");
    assert!(store.create(&t, S, "s", bytes("v"), LONG).await.unwrap());
    assert!(store.create(&t, S, "keep", bytes("k"), LONG).await.unwrap());
    assert!(store.delete(&t, S, "s").await.unwrap());
    assert_eq!(store.get(&t, S, "s").await.unwrap(), None);
    assert!(!store.delete(&t, S, "s").await.unwrap(), "second delete");
    assert!(!store.touch(&t, S, "s", LONG).await.unwrap());
    assert_eq!(
        store.list(&t, S, 10).await.unwrap(),
        vec![("keep".to_owned(), v("k", 1))]
    );
    assert!(store.create(&t, S, "s", bytes("new"), LONG).await.unwrap());
    assert_eq!(store.get(&t, S, "s").await.unwrap(), Some(v("new", 1)));
}

pub async fn tenant_isolation(store: Store) {
    let a = tenant("tenant-a");
    let b = tenant("tenant-b");
    assert!(store.create(&a, S, "x", bytes("a"), LONG).await.unwrap());
    assert!(store.create(&b, S, "x", bytes("b"), LONG).await.unwrap());
    assert!(
        store
            .create(&b, S, "only-b", bytes("b"), LONG)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&a, S, "x").await.unwrap(), Some(v("a", 1)));
    assert_eq!(store.get(&b, S, "x").await.unwrap(), Some(v("b", 1)));

    // A cannot read, list, write, extend or delete B's records.
    assert_eq!(store.get(&a, S, "only-b").await.unwrap(), None);
    assert_eq!(
        store.list(&a, S, 100).await.unwrap(),
        vec![("x".to_owned(), v("a", 1))]
    );
    assert_eq!(
        store
            .compare_and_swap(&a, S, "only-b", 1, bytes("evil"), LONG)
            .await
            .unwrap(),
        CasOutcome::Conflict { current: None }
    );
    assert!(
        !store
            .touch(&a, S, "only-b", Duration::from_millis(1))
            .await
            .unwrap()
    );
    assert!(!store.delete(&a, S, "only-b").await.unwrap());
    assert_eq!(store.get(&b, S, "only-b").await.unwrap(), Some(v("b", 1)));

    // Writes to one tenant's record leave the other's same id alone.
    assert_eq!(
        store
            .compare_and_swap(&b, S, "x", 1, bytes("b2"), LONG)
            .await
            .unwrap(),
        CasOutcome::Written { version: 2 }
    );
    assert_eq!(store.get(&a, S, "x").await.unwrap(), Some(v("a", 1)));
    assert!(store.delete(&a, S, "x").await.unwrap());
    assert_eq!(store.get(&b, S, "x").await.unwrap(), Some(v("b2", 2)));
    assert_eq!(store.list(&b, S, 100).await.unwrap().len(), 2);

    // Kinds are separate namespaces too.
    assert!(
        store
            .create(&a, A, "x", bytes("approval"), LONG)
            .await
            .unwrap()
    );
    assert!(
        store
            .create(&a, S, "x", bytes("session"), LONG)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&a, A, "x").await.unwrap(), Some(v("approval", 1)));
    assert_eq!(store.get(&a, S, "x").await.unwrap(), Some(v("session", 1)));
}

pub async fn hostile_ids(store: Store) {
    let a = tenant("tenant-a");
    let b = tenant("tenant-b");
    let ids = [
        "a/b",
        "a",
        "b",
        "a%2Fb",
        "a%2fb",
        "*",
        "?",
        "[a]",
        "..",
        "../..",
        "../tenant-b/session/x",
        "../../tenant-b/session/x",
        "ünïcødé-🔑",
        "",
        "%",
        "a b",
        "#index",
        "%23index",
        "index",
        "x\ny\0z",
    ];
    for (i, id) in ids.iter().enumerate() {
        assert!(
            store
                .create(&a, S, id, bytes(&format!("value-{i}")), LONG)
                .await
                .unwrap(),
            "id {id:?} collided with an earlier one"
        );
    }
    assert!(store.create(&b, S, "x", bytes("b"), LONG).await.unwrap());
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            store.get(&a, S, id).await.unwrap(),
            Some(v(&format!("value-{i}"), 1)),
            "id {id:?}"
        );
    }
    let listed: HashMap<String, Versioned> =
        store.list(&a, S, 100).await.unwrap().into_iter().collect();
    let expected: HashMap<String, Versioned> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.to_string(), v(&format!("value-{i}"), 1)))
        .collect();
    assert_eq!(listed, expected, "list returns every id exactly as given");

    assert!(store.delete(&a, S, "a/b").await.unwrap());
    for id in ["a", "b", "a%2Fb", "a%2fb"] {
        assert!(store.get(&a, S, id).await.unwrap().is_some(), "{id:?}");
    }
    assert!(store.delete(&a, S, "*").await.unwrap());
    assert!(store.get(&a, S, "?").await.unwrap().is_some());
    assert_eq!(store.get(&b, S, "x").await.unwrap(), Some(v("b", 1)));
    assert_eq!(store.list(&b, S, 100).await.unwrap().len(), 1);
}

fn invalid<T>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Invalid(_)))
}

pub async fn request_limits(store: Store) {
    let t = tenant("acme");
    let long_id = "i".repeat(MAX_ID + 1);
    let big = Bytes::from(vec![0u8; MAX_VALUE + 1]);
    let max_id = "i".repeat(MAX_ID);
    let max_value = Bytes::from(vec![1u8; MAX_VALUE]);

    assert!(
        store
            .create(&t, S, &max_id, max_value.clone(), LONG)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get(&t, S, &max_id).await.unwrap().unwrap().value,
        max_value
    );

    assert!(invalid(
        store.create(&t, S, &long_id, bytes("v"), LONG).await
    ));
    assert!(invalid(store.get(&t, S, &long_id).await));
    assert!(invalid(store.touch(&t, S, &long_id, LONG).await));
    assert!(invalid(store.delete(&t, S, &long_id).await));
    assert!(invalid(store.create(&t, S, "big", big.clone(), LONG).await));
    assert!(invalid(
        store
            .create(&t, S, "zero", bytes("v"), Duration::ZERO)
            .await
    ));
    assert!(invalid(
        store.compare_and_swap(&t, S, &max_id, 1, big, LONG).await
    ));
    assert!(invalid(
        store
            .compare_and_swap(&t, S, &max_id, 1, bytes("v"), Duration::ZERO)
            .await
    ));
    assert!(invalid(store.touch(&t, S, &max_id, Duration::ZERO).await));
    // Nothing above changed the stored record or created one.
    assert_eq!(store.get(&t, S, &max_id).await.unwrap().unwrap().version, 1);
    assert_eq!(store.list(&t, S, 10).await.unwrap().len(), 1);
}
