//! The event sink contract, run against the JSONL backend and a real ClickHouse, plus the
//! ClickHouse failure scenarios (killed mid-stream, down at start) and JSONL rotation.
//!
//! Every count is exact: rows are counted in the backend after `flush`, never estimated.

#[path = "events/support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatez_core::store::events::{
    ClickHouseSink, Event, EventKind, EventSink, JsonlSink, JsonlSinkConfig, RequestEvent, ddl,
};
use gatez_core::store::events::{ClickHouseSinkConfig, SinkStatus};
use support::{
    Fixture, TENANTS, Tuning, audit, eventually, jsonl_files, jsonl_lines, request, spool_files,
    usage,
};

/// Generates one `#[tokio::test]` per backend for each contract function.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod jsonl {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Fixture::jsonl().await).await;
                }
            )*
        }
        mod clickhouse {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Fixture::clickhouse().await).await;
                }
            )*
        }
    };
}

contract!(
    counts_are_exact_and_rows_round_trip,
    flush_writes_a_partial_batch_at_once,
    rows_are_written_after_the_flush_interval_without_flush,
    parallel_emitters_lose_nothing,
    full_queue_overflows_to_the_spool_and_arrives,
    shutdown_writes_everything_and_later_events_are_replayed_by_the_next_sink,
    full_spool_drops_and_counts,
);

fn emit_all(sink: &dyn EventSink, run: &str, n: u64) {
    for i in 0..n {
        sink.emit(Event::Request(request(run, i)));
        sink.emit(Event::Usage(usage(run, i)));
        sink.emit(Event::Audit(audit(run, i)));
    }
}

async fn counts_are_exact_and_rows_round_trip(fx: Fixture) {
    let sink = fx.start(&Tuning::default()).await;
    const N: u64 = 2_500;
    emit_all(sink.as_ref(), "rt", N);
    sink.flush().await.unwrap();

    for kind in EventKind::ALL {
        assert_eq!(fx.count(kind).await, N, "{kind:?}");
    }
    let mut requests = fx.requests().await;
    requests.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    let expected: Vec<_> = (0..N).map(|i| request("rt", i)).collect();
    assert_eq!(requests, expected);
    let mut usages = fx.usages().await;
    usages.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    assert_eq!(usages, (0..N).map(|i| usage("rt", i)).collect::<Vec<_>>());
    let mut audits = fx.audits().await;
    audits.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    assert_eq!(audits, (0..N).map(|i| audit("rt", i)).collect::<Vec<_>>());

    // Every row names its tenant, and each tenant's rows are exactly its own.
    for tenant in TENANTS {
        let own = requests.iter().filter(|r| r.tenant_id == tenant).count() as u64;
        let emitted = (0..N)
            .filter(|i| TENANTS[(i % 3) as usize] == tenant)
            .count() as u64;
        assert_eq!(own, emitted, "{tenant}");
    }
    assert!(requests.iter().all(|r| !r.tenant_id.is_empty()));
    assert!(usages.iter().all(|r| !r.tenant_id.is_empty()));
    assert!(audits.iter().all(|r| !r.tenant_id.is_empty()));

    let status = sink.status();
    assert_eq!(status.dropped, 0);
    assert!(!status.degraded);
    assert_eq!(status.spool_bytes, 0, "nothing should have been spooled");
}

async fn flush_writes_a_partial_batch_at_once(fx: Fixture) {
    // Neither the batch size nor the interval would write these rows for an hour.
    let tuning = Tuning {
        batch_size: 100_000,
        flush_interval: Duration::from_secs(3600),
        ..Tuning::default()
    };
    let sink = fx.start(&tuning).await;
    emit_all(sink.as_ref(), "partial", 3);
    assert_eq!(fx.count(EventKind::Request).await, 0);
    sink.flush().await.unwrap();
    for kind in EventKind::ALL {
        assert_eq!(fx.count(kind).await, 3, "{kind:?}");
    }
    // A flush with nothing pending is fine too.
    sink.flush().await.unwrap();
}

async fn rows_are_written_after_the_flush_interval_without_flush(fx: Fixture) {
    let tuning = Tuning {
        batch_size: 100_000,
        flush_interval: Duration::from_millis(100),
        ..Tuning::default()
    };
    let sink = fx.start(&tuning).await;
    sink.emit(Event::Request(request("tick", 1)));
    eventually(
        Duration::from_secs(10),
        "the interval writes the row",
        || async { fx.count(EventKind::Request).await == 1 },
    )
    .await;
    drop(sink);
}

async fn parallel_emitters_lose_nothing(fx: Fixture) {
    let sink = fx.start(&Tuning::default()).await;
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 5_000;
    // OS threads, so emits really run at the same time (emit is synchronous).
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let sink = Arc::clone(&sink);
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    sink.emit(Event::Request(request(&format!("par{t}"), i)));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    sink.flush().await.unwrap();
    let total = THREADS * PER_THREAD;
    assert_eq!(fx.count(EventKind::Request).await, total);
    assert_eq!(fx.distinct_ids(EventKind::Request).await, total);
}

/// Runs on a current-thread runtime: the writer task cannot drain the queue while this loop
/// emits (no await in between), so a queue of 8 must overflow into the spool.
async fn full_queue_overflows_to_the_spool_and_arrives(fx: Fixture) {
    let tuning = Tuning {
        queue_capacity: 8,
        ..Tuning::default()
    };
    let sink = fx.start(&tuning).await;
    const N: u64 = 3_000;
    let started = Instant::now();
    emit_all(sink.as_ref(), "overflow", N);
    let elapsed = started.elapsed();
    let status = sink.status();
    assert!(
        status.spool_bytes > 0,
        "overflow must go to the spool: {status:?}"
    );
    assert_eq!(status.dropped, 0);
    assert!(elapsed < Duration::from_secs(10), "emit took {elapsed:?}");

    sink.flush().await.unwrap();
    for kind in EventKind::ALL {
        assert_eq!(fx.count(kind).await, N, "{kind:?}");
        assert_eq!(fx.distinct_ids(kind).await, N, "{kind:?}");
    }
    let status = sink.status();
    assert_eq!(
        status.spool_bytes, 0,
        "the spool is replayed and emptied: {status:?}"
    );
    assert_eq!(status.spool_segments, 0);
}

async fn shutdown_writes_everything_and_later_events_are_replayed_by_the_next_sink(fx: Fixture) {
    let tuning = Tuning {
        batch_size: 100_000,
        flush_interval: Duration::from_secs(3600),
        ..Tuning::default()
    };
    let sink = fx.start(&tuning).await;
    emit_all(sink.as_ref(), "before", 100);
    sink.shutdown().await.unwrap();
    for kind in EventKind::ALL {
        assert_eq!(fx.count(kind).await, 100, "{kind:?}");
    }

    // After shutdown nothing writes to the backend any more: events land in the spool.
    sink.emit(Event::Audit(audit("after", 1)));
    sink.emit(Event::Audit(audit("after", 2)));
    assert_eq!(sink.status().spool_segments, 2);
    sink.flush().await.unwrap();
    sink.shutdown().await.unwrap();
    assert_eq!(fx.count(EventKind::Audit).await, 100);
    drop(sink);

    // The next sink on the same spool replays them at start.
    let next = fx.start(&tuning).await;
    eventually(
        Duration::from_secs(10),
        "leftover segments replayed",
        || async { fx.count(EventKind::Audit).await == 102 },
    )
    .await;
    next.flush().await.unwrap();
    assert_eq!(next.status().spool_segments, 0);
    assert_eq!(fx.distinct_ids(EventKind::Audit).await, 102);
}

async fn full_spool_drops_and_counts(fx: Fixture) {
    // A queue of 1 on a current-thread runtime overflows at once, into a spool of 4 KiB.
    let tuning = Tuning {
        queue_capacity: 1,
        max_spool_bytes: 4096,
        ..Tuning::default()
    };
    let sink = fx.start(&tuning).await;
    const N: u64 = 200;
    for i in 0..N {
        sink.emit(Event::Request(request("drop", i)));
    }
    let dropped = sink.status().dropped;
    assert!(dropped > 0, "a 4 KiB spool cannot hold {N} rows");
    assert!(dropped < N);
    // The flush says that not everything emitted before it was kept...
    let err = sink.flush().await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("{dropped} events were dropped")),
        "{err}"
    );
    // ...and exactly what was not dropped arrived.
    assert_eq!(fx.count(EventKind::Request).await, N - dropped);
    // The loss is reported once; the next flush has nothing new to report.
    sink.flush().await.unwrap();
    assert_eq!(sink.status().dropped, dropped);
}

// ---------------------------------------------------------------------------------------
// ClickHouse: schema and failure behaviour.

#[tokio::test]
async fn clickhouse_schema_matches_the_rows() {
    let fx = Fixture::clickhouse().await;
    let sink = fx.start(&Tuning::default()).await;
    sink.emit(Event::Request(request("ddl", 1)));
    sink.flush().await.unwrap();
    let support::Backend::ClickHouse { server, database } = &fx.backend else {
        unreachable!()
    };
    for kind in EventKind::ALL {
        let described = server
            .query(&format!(
                "SELECT name, type, default_kind FROM system.columns \
                 WHERE database = '{database}' AND table = '{}' FORMAT TabSeparated",
                kind.table()
            ))
            .await;
        let mut expected: String = ddl::columns(kind)
            .iter()
            .map(|(name, ty)| format!("{name}\t{ty}\t\n"))
            .collect();
        expected.push_str("ts\tDateTime\tMATERIALIZED\n");
        assert_eq!(described, expected, "{kind:?}");
    }
    // `ts` is derived from `ts_ms` (seconds), and partitions are monthly.
    let row = server
        .query(&format!(
            "SELECT toUnixTimestamp(ts), ts_ms, _partition_id FROM {database}.request_log"
        ))
        .await;
    let fields: Vec<&str> = row.trim().split('\t').collect();
    assert_eq!(fields[0], "1700000000");
    assert_eq!(fields[1], "1700000000001");
    assert_eq!(fields[2], "202311");
}

#[tokio::test]
async fn clickhouse_killed_between_inserts_loses_and_duplicates_nothing() {
    let mut fx = Fixture::clickhouse().await;
    let sink = fx.start(&Tuning::default()).await;
    let mut emitted = 0;
    let mut emit = |sink: &dyn EventSink, n: u64| {
        for _ in 0..n {
            sink.emit(Event::Request(request("kill", emitted)));
            emitted += 1;
        }
    };

    emit(sink.as_ref(), 5_000);
    // Quiesce so no insert is in flight when the server dies: a kill during an insert's
    // commit is the at-least-once case, tested separately below.
    sink.flush().await.unwrap();
    assert_eq!(fx.count(EventKind::Request).await, 5_000);
    fx.clickhouse_server().stop().await;

    // Keep emitting while it is down: 20 000 rows over 20 batches.
    for _ in 0..20 {
        emit(sink.as_ref(), 1_000);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let flushed = tokio::time::timeout(Duration::from_secs(30), sink.flush())
        .await
        .expect("a flush while ClickHouse is down must not hang");
    flushed.unwrap();
    let status = sink.status();
    assert!(status.degraded, "{status:?}");
    assert!(status.spool_segments > 0, "{status:?}");
    assert_eq!(status.dropped, 0);

    fx.clickhouse_server().restart().await;
    emit(sink.as_ref(), 5_000);
    let sink_ref = &sink;
    let fx_ref = &fx;
    eventually(
        Duration::from_secs(30),
        "all 30 000 rows in ClickHouse",
        || async move {
            sink_ref.flush().await.unwrap();
            fx_ref.count(EventKind::Request).await >= 30_000
        },
    )
    .await;
    assert_eq!(fx.count(EventKind::Request).await, 30_000);
    assert_eq!(fx.distinct_ids(EventKind::Request).await, 30_000);
    let status = sink.status();
    assert_eq!(
        status,
        SinkStatus {
            degraded: false,
            spool_segments: 0,
            spool_bytes: 0,
            dropped: 0
        }
    );
    assert!(spool_files(&fx.spool_dir(), ".jsonl").is_empty());
}

/// A kill at any moment, inserts in flight included, while another task emits steadily:
/// every row arrives; a batch ClickHouse committed just before dying may arrive twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_killed_under_load_loses_nothing() {
    let mut fx = Fixture::clickhouse().await;
    let sink = fx.start(&Tuning::default()).await;
    const TOTAL: u64 = 40_000;
    let progress = Arc::new(AtomicU64::new(0));
    let emitter = {
        let sink = Arc::clone(&sink);
        let progress = Arc::clone(&progress);
        tokio::spawn(async move {
            for i in 0..TOTAL {
                sink.emit(Event::Request(request("load", i)));
                progress.store(i + 1, Ordering::Relaxed);
                if i % 500 == 499 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    let reached = |n: u64| {
        let progress = Arc::clone(&progress);
        move || {
            let progress = Arc::clone(&progress);
            async move { progress.load(Ordering::Relaxed) >= n }
        }
    };
    eventually(Duration::from_secs(30), "10k emitted", reached(10_000)).await;
    fx.clickhouse_server().stop().await;
    let sink_ref = &sink;
    eventually(Duration::from_secs(10), "the sink notices", || async move {
        sink_ref.status().degraded
    })
    .await;
    eventually(Duration::from_secs(30), "25k emitted", reached(25_000)).await;
    fx.clickhouse_server().restart().await;
    emitter.await.unwrap();

    let fx_ref = &fx;
    eventually(
        Duration::from_secs(30),
        "every row in ClickHouse",
        || async move {
            sink_ref.flush().await.unwrap();
            fx_ref.distinct_ids(EventKind::Request).await == TOTAL
        },
    )
    .await;
    assert!(fx.count(EventKind::Request).await >= TOTAL);
    assert_eq!(sink.status().dropped, 0);
    assert_eq!(sink.status().spool_segments, 0);
}

#[tokio::test]
async fn clickhouse_down_at_start_spools_then_replays() {
    let mut fx = Fixture::clickhouse().await;
    fx.clickhouse_server().stop().await;
    let started = Instant::now();
    let sink = fx.start(&Tuning::default()).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "start must not wait for ClickHouse"
    );
    assert!(sink.status().degraded);

    const N: u64 = 10_000;
    emit_all(sink.as_ref(), "late", N);
    sink.flush().await.unwrap();
    let status = sink.status();
    assert!(status.spool_segments >= 3, "{status:?}");
    assert_eq!(status.dropped, 0);

    // The database and tables did not exist before: the sink creates them on recovery.
    fx.clickhouse_server().restart().await;
    let sink_ref = &sink;
    let fx_ref = &fx;
    eventually(Duration::from_secs(30), "spool replayed", || async move {
        sink_ref.flush().await.unwrap();
        sink_ref.status().spool_segments == 0
    })
    .await;
    for kind in EventKind::ALL {
        assert_eq!(fx_ref.count(kind).await, N, "{kind:?}");
        assert_eq!(fx_ref.distinct_ids(kind).await, N, "{kind:?}");
    }
}

#[tokio::test]
async fn emit_never_blocks_while_clickhouse_is_down() {
    let mut fx = Fixture::clickhouse().await;
    let sink = fx.start(&Tuning::default()).await;
    fx.clickhouse_server().stop().await;

    const N: u64 = 100_000;
    let started = Instant::now();
    for i in 0..N {
        sink.emit(Event::Request(request("fast", i)));
    }
    let elapsed = started.elapsed();
    // ~1 µs each in practice; the bound only catches an emit that waits on I/O.
    assert!(
        elapsed < Duration::from_secs(5),
        "100k emits took {elapsed:?}"
    );

    fx.clickhouse_server().restart().await;
    let sink_ref = &sink;
    let fx_ref = &fx;
    eventually(Duration::from_secs(60), "all rows arrive", || async move {
        sink_ref.flush().await.unwrap();
        fx_ref.count(EventKind::Request).await >= N
    })
    .await;
    assert_eq!(fx.count(EventKind::Request).await, N);
    assert_eq!(fx.distinct_ids(EventKind::Request).await, N);
}

#[tokio::test]
async fn clickhouse_tables_dropped_while_running_are_recreated() {
    let fx = Fixture::clickhouse().await;
    let sink = fx.start(&Tuning::default()).await;
    emit_all(sink.as_ref(), "one", 10);
    sink.flush().await.unwrap();
    let support::Backend::ClickHouse { server, database } = &fx.backend else {
        unreachable!()
    };
    server.query(&format!("DROP DATABASE {database}")).await;

    emit_all(sink.as_ref(), "two", 20);
    let sink_ref = &sink;
    eventually(
        Duration::from_secs(30),
        "tables recreated and rows replayed",
        || async move {
            sink_ref.flush().await.unwrap();
            let status = sink_ref.status();
            !status.degraded && status.spool_segments == 0
        },
    )
    .await;
    for kind in EventKind::ALL {
        assert_eq!(fx.count(kind).await, 20, "{kind:?}");
    }
}

/// A segment ClickHouse keeps refusing while it otherwise answers is set aside, so the
/// rows behind it still arrive.
#[tokio::test]
async fn clickhouse_refused_segment_is_set_aside_and_the_rest_arrives() {
    let fx = Fixture::clickhouse().await;
    let support::Backend::ClickHouse { server, database } = &fx.backend else {
        unreachable!()
    };
    // A request_log of another shape: every request insert fails with a server error.
    server.create_database(database).await;
    server
        .query(&format!(
            "CREATE TABLE {database}.request_log (x UInt8) ENGINE = MergeTree ORDER BY x"
        ))
        .await;
    let tuning = Tuning {
        retry_interval: Duration::from_millis(10),
        max_retry_interval: Duration::from_millis(40),
        ..Tuning::default()
    };
    let sink = fx.start(&tuning).await;
    emit_all(sink.as_ref(), "bad", 50);
    let sink_ref = &sink;
    let fx_ref = &fx;
    eventually(
        Duration::from_secs(30),
        "usage and audit rows arrive",
        || async move {
            sink_ref.flush().await.unwrap();
            fx_ref.count(EventKind::Usage).await == 50 && fx_ref.count(EventKind::Audit).await == 50
        },
    )
    .await;
    let rejected = spool_files(&fx.spool_dir(), ".rejected");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let kept = std::fs::read_to_string(&rejected[0]).unwrap();
    assert_eq!(
        kept.lines().count(),
        50,
        "the refused rows are kept on disk"
    );
    assert_eq!(sink.status().spool_segments, 0);
}

#[tokio::test]
async fn clickhouse_config_is_validated_and_password_never_printed() {
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("ch-password");
    std::fs::write(&secret, "hunter2\n").unwrap();
    let yaml = format!(
        "url: http://127.0.0.1:8123\ndatabase: events\npassword: {{ file: {} }}\nflush_interval: 250ms\nretry_interval: 2s\n",
        secret.display()
    );
    let config: ClickHouseSinkConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(config.password.as_ref().unwrap().expose(), "hunter2");
    let literal = serde_yaml_ng::from_str::<ClickHouseSinkConfig>("password: hunter2\n");
    assert!(literal.is_err(), "a literal password in config is refused");
    assert_eq!(config.flush_interval, Duration::from_millis(250));
    assert_eq!(config.batch_size, 5_000);
    assert_eq!(config.queue_capacity, 100_000);
    config.validate().unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));

    let unknown = serde_yaml_ng::from_str::<ClickHouseSinkConfig>("databse: x\n");
    assert!(unknown.is_err(), "unknown fields are refused");
    for (bad, field) in [
        ("database: \"a-b; DROP\"\n", "database"),
        ("url: ftp://x\n", "url"),
        ("batch_size: 0\n", "batch_size"),
        ("queue_capacity: 0\n", "queue_capacity"),
        (
            "retry_interval: 5s\nmax_retry_interval: 1s\n",
            "max_retry_interval",
        ),
        ("request_timeout: 0s\n", "request_timeout"),
    ] {
        let config: ClickHouseSinkConfig = serde_yaml_ng::from_str(bad).unwrap();
        let err = config.validate().unwrap_err();
        assert!(err.contains(field), "{bad:?}: {err}");
    }
    let invalid = ClickHouseSinkConfig {
        batch_size: 0,
        ..ClickHouseSinkConfig::default()
    };
    assert!(matches!(
        ClickHouseSink::start(&invalid).await,
        Err(gatez_core::store::StoreError::Invalid(_))
    ));
}

// ---------------------------------------------------------------------------------------
// JSONL specifics.

#[tokio::test]
async fn jsonl_files_rotate_at_max_bytes() {
    let fx = Fixture::jsonl().await;
    let config = JsonlSinkConfig {
        max_file_bytes: 8192,
        batch_size: 64,
        ..fx.jsonl_config(&Tuning::default())
    };
    let sink = JsonlSink::start(&config).await.unwrap();
    const N: u64 = 500;
    for i in 0..N {
        sink.emit(Event::Request(request("rot", i)));
    }
    sink.shutdown().await.unwrap();

    let files = jsonl_files(&fx.events_dir(), EventKind::Request);
    assert!(files.len() > 5, "{files:?}");
    for file in &files {
        let len = std::fs::metadata(file).unwrap().len();
        assert!(len <= 8192, "{} has {len} bytes", file.display());
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            name == "request_log.jsonl"
                || name
                    .strip_prefix("request_log.")
                    .and_then(|rest| rest.strip_suffix(".jsonl"))
                    .is_some_and(|stamp| stamp.parse::<u64>().is_ok()),
            "{name}"
        );
    }
    // Every row once, whole lines only, in emit order across the rotated files.
    let rows: Vec<RequestEvent> = jsonl_lines(&fx.events_dir(), EventKind::Request)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows, (0..N).map(|i| request("rot", i)).collect::<Vec<_>>());
}

#[tokio::test]
async fn jsonl_lines_are_the_struct_fields_without_a_tag() {
    let fx = Fixture::jsonl().await;
    let sink = fx.start(&Tuning::default()).await;
    sink.emit(Event::Usage(support::usage("plain", 7)));
    sink.flush().await.unwrap();
    let lines = jsonl_lines(&fx.events_dir(), EventKind::Usage);
    assert_eq!(lines.len(), 1);
    let value: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert!(value.get("kind").is_none(), "{value}");
    assert_eq!(value["tenant_id"], "globex");
    assert_eq!(value["prompt_tokens"], 107);
    assert!(JsonlSink::file_path(&fx.events_dir(), EventKind::Usage).exists());
    assert_eq!(sink.backend(), "jsonl");
}

#[tokio::test]
async fn jsonl_config_is_validated() {
    let config: JsonlSinkConfig =
        serde_yaml_ng::from_str("dir: /tmp/x\nflush_interval: 2s\n").unwrap();
    assert_eq!(config.flush_interval, Duration::from_secs(2));
    assert_eq!(config.spool_dir(), std::path::Path::new("/tmp/x/spool"));
    config.validate().unwrap();
    assert!(serde_yaml_ng::from_str::<JsonlSinkConfig>("dri: x\n").is_err());
    let tiny: JsonlSinkConfig = serde_yaml_ng::from_str("max_file_bytes: 10\n").unwrap();
    assert!(tiny.validate().unwrap_err().contains("max_file_bytes"));
    let shared: JsonlSinkConfig =
        serde_yaml_ng::from_str("dir: /tmp/x\nspool_dir: /tmp/x\n").unwrap();
    assert!(shared.validate().unwrap_err().contains("spool_dir"));
    let zero: JsonlSinkConfig = serde_yaml_ng::from_str("batch_size: 0\n").unwrap();
    assert!(zero.validate().unwrap_err().contains("batch_size"));
    let invalid = JsonlSinkConfig {
        queue_capacity: 0,
        ..JsonlSinkConfig::default()
    };
    assert!(matches!(
        JsonlSink::start(&invalid).await,
        Err(gatez_core::store::StoreError::Invalid(_))
    ));
}

#[tokio::test]
async fn two_sinks_cannot_share_a_spool() {
    let fx = Fixture::jsonl().await;
    let _first = fx.start(&Tuning::default()).await;
    let second = JsonlSink::start(&fx.jsonl_config(&Tuning::default())).await;
    assert!(matches!(
        second,
        Err(gatez_core::store::StoreError::Invalid(_))
    ));
}

/// The sum of metric `name`'s series whose labels include all of `labels`.
fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    prometheus::gather()
        .iter()
        .filter(|family| family.name() == name)
        .flat_map(|family| {
            let counter = family.get_field_type() == prometheus::proto::MetricType::COUNTER;
            family.get_metric().iter().map(move |m| (counter, m))
        })
        .filter(|(_, m)| {
            labels.iter().all(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|pair| pair.name() == *k && pair.value() == *v)
            })
        })
        .map(|(counter, m)| {
            if counter {
                m.get_counter().get_value()
            } else {
                m.get_gauge().get_value()
            }
        })
        .sum()
}

/// Other tests of this binary may run in the same process, so counters are compared as
/// "grew by at least".
#[tokio::test]
async fn metrics_count_emitted_written_spooled_and_dropped() {
    let fx = Fixture::jsonl().await;
    let tuning = Tuning {
        queue_capacity: 1,
        max_spool_bytes: 8192,
        ..Tuning::default()
    };
    let sink = fx.start(&tuning).await;
    let emitted = metric("gatez_events_emitted_total", &[("kind", "usage")]);
    let written = metric(
        "gatez_events_written_total",
        &[("kind", "usage"), ("backend", "jsonl")],
    );
    let spooled = metric("gatez_events_spooled_total", &[("kind", "usage")]);
    let dropped = metric("gatez_events_dropped_total", &[("kind", "usage")]);

    const N: u64 = 100;
    for i in 0..N {
        sink.emit(Event::Usage(usage("metrics", i)));
    }
    assert!(metric("gatez_events_spool_bytes", &[]) > 0.0);
    let lost = sink.status().dropped;
    assert!(lost > 0);
    assert!(sink.flush().await.is_err(), "the flush reports the drops");

    let grew = |name: &str, labels: &[(&str, &str)], from: f64| metric(name, labels) - from;
    assert!(grew("gatez_events_emitted_total", &[("kind", "usage")], emitted) >= N as f64);
    assert!(
        grew(
            "gatez_events_written_total",
            &[("kind", "usage"), ("backend", "jsonl")],
            written
        ) >= (N - lost) as f64
    );
    assert!(grew("gatez_events_spooled_total", &[("kind", "usage")], spooled) >= 1.0);
    assert!(grew("gatez_events_dropped_total", &[("kind", "usage")], dropped) >= lost as f64);
    assert_eq!(fx.count(EventKind::Usage).await, N - lost);
}
