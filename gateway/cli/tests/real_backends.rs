//! `gatez serve` on real infrastructure: the config wires Redis and ClickHouse in, readiness
//! follows Redis, and the example configs shipped under deploy/ load.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GATEZ: &str = env!("CARGO_BIN_EXE_gatez");

async fn status_of(client: &reqwest::Client, url: &str) -> Option<u16> {
    client
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

async fn wait_status(client: &reqwest::Client, url: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = status_of(client, url).await;
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: wanted {want}, last got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readiness_follows_redis_and_stores_use_real_backends() {
    let mut redis = gatez_conformance::Redis::start().await;
    let clickhouse = gatez_conformance::ClickHouse::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = gatez_conformance::free_ports(1)[0];
    let config = dir.path().join("gatez.yaml");
    std::fs::write(
        &config,
        format!(
            "edge:\n  listen: 127.0.0.1:{port}\n\
             stores:\n  redis:\n    url: {redis}\n    response_timeout: 200ms\n\
             \x20 rate_limit: {{ backend: redis, resilience: {{ on_failure: local }} }}\n\
             \x20 budget: {{ backend: redis }}\n  cache: {{ backend: redis }}\n  records: {{ backend: redis }}\n\
             \x20 events:\n    backend: clickhouse\n    clickhouse:\n      url: {ch}\n      database: gatez_cli_test\n      spool_dir: {spool}\n",
            redis = redis.url(),
            ch = clickhouse.url(),
            spool = dir.path().join("spool").display(),
        ),
    )
    .unwrap();
    let mut child = Command::new(GATEZ)
        .args(["serve", "edge", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    wait_status(&client, &readyz, 200).await;
    // The event sink created its tables in the real ClickHouse at start.
    let tables = clickhouse.query("SHOW TABLES FROM gatez_cli_test").await;
    for table in ["request_log", "usage_log", "audit_log"] {
        assert!(tables.contains(table), "{tables}");
    }

    redis.stop().await;
    wait_status(&client, &readyz, 503).await;
    let body: serde_json::Value = client
        .get(&readyz)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "not_ready");
    assert!(body["checks"]["redis"].is_string());
    assert_ne!(body["checks"]["redis"], "ok");
    // Liveness is not readiness: the process is fine.
    wait_status(&client, &format!("http://127.0.0.1:{port}/healthz"), 200).await;

    redis.restart().await;
    wait_status(&client, &readyz, 200).await;

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 5 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}

#[test]
fn unreachable_redis_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let free = gatez_conformance::free_ports(2);
    let config = dir.path().join("gatez.yaml");
    std::fs::write(
        &config,
        format!(
            "edge:\n  listen: 127.0.0.1:{}\nstores:\n  redis:\n    url: redis://127.0.0.1:{}/\n  rate_limit: {{ backend: redis }}\n  events:\n    jsonl:\n      dir: {}\n",
            free[0],
            free[1],
            dir.path().join("events").display()
        ),
    )
    .unwrap();
    let out = Command::new(GATEZ)
        .args(["serve", "edge", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("redis"), "{stderr}");
}

#[test]
fn redis_backend_without_redis_section_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatez.yaml");
    std::fs::write(&config, "stores:\n  cache: { backend: redis }\n").unwrap();
    let out = Command::new(GATEZ)
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stores.cache.backend"), "{stderr}");
}

#[test]
fn shipped_example_config_is_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/gatez.yaml");
    let out = Command::new(GATEZ)
        .args(["check-config", "--config", root])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
