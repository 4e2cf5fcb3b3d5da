//! The harness against real servers: each one is started, used for real, killed,
//! restarted and torn down.

use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gatez_conformance::{ClickHouse, Etcd, QueryError, Redis};
use redis::AsyncCommands;
use serde_json::{Value, json};

async fn redis_connection(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
}

/// Whether `err` was caused by a refused TCP connection (and not, say, a timeout).
fn refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cause = err.source();
    }
    false
}

/// Whether `pid` is a live process. A killed server whose parent died is a zombie until
/// init reaps it (and in containers, init may never do so): that counts as gone.
fn process_exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may contain spaces.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

async fn etcd_put(etcd: &Etcd, key: &str, value: &str) -> Result<(), reqwest::Error> {
    reqwest::Client::new()
        .post(format!("{}/v3/kv/put", etcd.url()))
        .json(&json!({ "key": BASE64.encode(key), "value": BASE64.encode(value) }))
        .send()
        .await?
        .error_for_status()
        .map(drop)
}

async fn etcd_get(etcd: &Etcd, key: &str) -> Result<Option<String>, reqwest::Error> {
    let body: Value = reqwest::Client::new()
        .post(format!("{}/v3/kv/range", etcd.url()))
        .json(&json!({ "key": BASE64.encode(key) }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["kvs"][0]["value"].as_str().map(|value| {
        String::from_utf8(BASE64.decode(value).expect("etcd sends base64")).expect("UTF-8 value")
    }))
}

#[tokio::test]
async fn redis_set_get_stop_restart() {
    let mut redis = Redis::start().await;
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/", redis.port()));
    let mut conn = redis_connection(&redis.url()).await.unwrap();
    let _: () = conn.set("greeting", "hello").await.unwrap();
    let value: String = conn.get("greeting").await.unwrap();
    assert_eq!(value, "hello");

    redis.stop().await;
    assert!(!redis.is_running().await);
    assert_eq!(redis.pid(), None);
    let err = redis_connection(&redis.url()).await.unwrap_err();
    assert!(
        err.is_connection_refusal(),
        "expected connection refused, got {err}"
    );
    redis.stop().await; // stopping twice is harmless

    let port = redis.port();
    redis.restart().await;
    assert!(redis.is_running().await);
    assert_eq!(redis.port(), port);
    let mut conn = redis_connection(&redis.url()).await.unwrap();
    // No persistence: the key is gone, but the server works again.
    let value: Option<String> = conn.get("greeting").await.unwrap();
    assert_eq!(value, None);
    let _: () = conn.set("greeting", "again").await.unwrap();
    let value: String = conn.get("greeting").await.unwrap();
    assert_eq!(value, "again");
}

#[tokio::test]
async fn clickhouse_rows_survive_a_crash() {
    let mut clickhouse = ClickHouse::start().await;
    assert_eq!(
        clickhouse.url(),
        format!("http://127.0.0.1:{}", clickhouse.port())
    );
    assert_ne!(clickhouse.port(), clickhouse.tcp_port());
    clickhouse.create_database("gatez_test").await;
    clickhouse
        .query(
            "CREATE TABLE gatez_test.events (id UInt64, tenant String) \
             ENGINE = MergeTree ORDER BY id",
        )
        .await;
    clickhouse
        .query("INSERT INTO gatez_test.events VALUES (1, 'a'), (2, 'b'), (3, 'a')")
        .await;
    let count = "SELECT count() FROM gatez_test.events WHERE tenant = 'a'";
    assert_eq!(clickhouse.query(count).await, "2\n");

    let pid = clickhouse.pid().expect("local process");
    clickhouse.stop().await;
    assert!(!clickhouse.is_running().await);
    assert!(!process_exists(pid), "pid {pid} still exists after stop");
    match clickhouse.try_query("SELECT 1").await {
        Err(QueryError::Transport(err)) => assert!(refused(&err), "not refused: {err:?}"),
        other => panic!("expected connection refused, got {other:?}"),
    }

    let port = clickhouse.port();
    clickhouse.restart().await;
    assert_eq!(clickhouse.port(), port);
    assert_ne!(clickhouse.pid(), Some(pid));
    assert_eq!(clickhouse.query(count).await, "2\n");
}

#[tokio::test]
async fn clickhouse_reports_sql_errors() {
    let clickhouse = ClickHouse::start().await;
    match clickhouse.try_query("SELECT * FROM no_such_table").await {
        Err(QueryError::Server { status, body }) => {
            assert_eq!(status, 404, "{body}");
            assert!(body.contains("no_such_table"), "{body}");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
#[should_panic(expected = "Unknown identifier: nonsense")]
async fn clickhouse_query_panics_with_the_server_error() {
    let clickhouse = ClickHouse::start().await;
    clickhouse.query("SELECT nonsense").await;
}

#[tokio::test]
async fn etcd_keys_survive_a_crash() {
    let mut etcd = Etcd::start().await;
    assert_eq!(etcd.url(), format!("http://127.0.0.1:{}", etcd.port()));
    etcd_put(&etcd, "/gatez/routes/1", "v1").await.unwrap();
    assert_eq!(
        etcd_get(&etcd, "/gatez/routes/1").await.unwrap().as_deref(),
        Some("v1")
    );
    assert_eq!(etcd_get(&etcd, "/gatez/missing").await.unwrap(), None);

    etcd.stop().await;
    assert!(!etcd.is_running().await);
    let err = etcd_get(&etcd, "/gatez/routes/1").await.unwrap_err();
    assert!(refused(&err), "expected connection refused, got {err:?}");

    etcd.restart().await;
    assert!(etcd.is_running().await);
    assert_eq!(
        etcd_get(&etcd, "/gatez/routes/1").await.unwrap().as_deref(),
        Some("v1")
    );

    // Restarting a running server bounces it.
    let pid = etcd.pid().expect("local process");
    etcd.restart().await;
    assert_ne!(etcd.pid(), Some(pid));
    assert!(!process_exists(pid));
    etcd_put(&etcd, "/gatez/routes/2", "v2").await.unwrap();
    assert_eq!(
        etcd_get(&etcd, "/gatez/routes/2").await.unwrap().as_deref(),
        Some("v2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_start_concurrently() {
    let (redis_a, redis_b, clickhouse, etcd) = tokio::join!(
        Redis::start(),
        Redis::start(),
        ClickHouse::start(),
        Etcd::start()
    );
    let mut ports = vec![
        redis_a.port(),
        redis_b.port(),
        clickhouse.port(),
        clickhouse.tcp_port(),
        etcd.port(),
    ];
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 5, "ports must be distinct");

    // Each Redis is its own server: a key set in one is absent from the other.
    let mut a = redis_connection(&redis_a.url()).await.unwrap();
    let mut b = redis_connection(&redis_b.url()).await.unwrap();
    let _: () = a.set("only-in-a", 1).await.unwrap();
    let in_b: Option<i64> = b.get("only-in-a").await.unwrap();
    assert_eq!(in_b, None);
    assert_eq!(clickhouse.query("SELECT 1 + 1").await, "2\n");
    etcd_put(&etcd, "k", "v").await.unwrap();
}

#[tokio::test]
async fn drop_kills_the_servers_and_removes_their_data() {
    let redis = Redis::start().await;
    let clickhouse = ClickHouse::start().await;
    let etcd = Etcd::start().await;
    let started: Vec<(u32, PathBuf)> = [
        (redis.pid(), redis.data_dir()),
        (clickhouse.pid(), clickhouse.data_dir()),
        (etcd.pid(), etcd.data_dir()),
    ]
    .into_iter()
    .map(|(pid, dir)| {
        (
            pid.expect("local process"),
            dir.expect("data dir").to_owned(),
        )
    })
    .collect();
    for (pid, dir) in &started {
        assert!(process_exists(*pid), "pid {pid} should run");
        assert!(dir.exists(), "{} should exist", dir.display());
    }
    drop((redis, clickhouse, etcd));
    for (pid, dir) in &started {
        assert!(!process_exists(*pid), "pid {pid} survived drop");
        assert!(!dir.exists(), "{} survived drop", dir.display());
    }
}

#[tokio::test]
async fn a_panicking_test_leaves_no_server_behind() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let test = tokio::spawn(async move {
        let redis = Redis::start().await;
        tx.send(redis.pid().expect("local process")).unwrap();
        panic!("the test failed");
    });
    let err = test.await.unwrap_err();
    assert!(err.is_panic());
    let pid = rx.await.unwrap();
    assert!(!process_exists(pid), "pid {pid} survived the panic");
}

const HANG_HELPER: &str = "helper_start_redis_and_hang";

/// Not a test on its own: `a_killed_test_process_leaves_no_server_behind` runs it in a
/// child process and kills that process.
#[tokio::test]
#[ignore = "helper, run in a child process by a_killed_test_process_leaves_no_server_behind"]
async fn helper_start_redis_and_hang() {
    let redis = Redis::start().await;
    println!("REDIS_PID={}", redis.pid().expect("local process"));
    tokio::time::sleep(Duration::from_secs(60)).await;
}

/// A test runner's timeout SIGKILLs the test process: no destructor runs, yet the server
/// must die with it.
#[test]
fn a_killed_test_process_leaves_no_server_behind() {
    let mut test = Command::new(std::env::current_exe().unwrap())
        .args([HANG_HELPER, "--exact", "--ignored", "--nocapture"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(test.stdout.take().unwrap());
    let pid: u32 = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("REDIS_PID=")?.parse().ok())
        .expect("the helper test printed no REDIS_PID");
    assert!(process_exists(pid), "redis {pid} should run");
    test.kill().unwrap();
    test.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(5);
    while process_exists(pid) {
        assert!(
            Instant::now() < deadline,
            "redis {pid} outlived its test process"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
