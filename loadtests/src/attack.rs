//! Running one goose attack and turning its metrics into report rows.

use goose::config::GooseConfiguration;
use goose::metrics::{GooseMetrics, GooseRequestMetricTimingData};
use goose::prelude::*;
use goose::test_plan::TestPlanStepAction;

use crate::config::Load;

/// One named request's figures over the measured window.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Goose's key: method and request name, e.g. `GET edge /healthz`.
    pub name: String,
    pub requests: usize,
    pub errors: usize,
    pub rps: f64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Row {
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

#[derive(Debug, Clone)]
pub struct Measured {
    /// Sorted by name.
    pub rows: Vec<Row>,
    /// Every request together: for reading, not judged.
    pub total: Row,
    /// Length of the window the rows cover, in seconds.
    pub window_secs: f64,
}

/// Runs `scenarios` together with the given load shape and returns the figures of the
/// window after every user started (goose resets its metrics then, so the ramp-up is out).
pub async fn run(scenarios: Vec<Scenario>, load: &Load) -> anyhow::Result<Measured> {
    anyhow::ensure!(
        !scenarios.is_empty(),
        "the scenario registered no goose scenario"
    );
    anyhow::ensure!(
        load.users.is_multiple_of(scenarios.len()),
        "load.users ({}) must be a multiple of the {} goose scenarios, so each gets the same share",
        load.users,
        scenarios.len()
    );
    let args = [
        "--users".to_owned(),
        load.users.to_string(),
        "--increase-rate".to_owned(),
        load.hatch_rate.to_string(),
        "--run-time".to_owned(),
        format!("{}s", load.run_time.as_secs()),
        "--timeout".to_owned(),
        load.request_timeout.as_secs().to_string(),
        // The telnet controller would listen on a fixed port: two gates at once would clash.
        "--no-telnet".to_owned(),
        // We print our own table.
        "--no-print-metrics".to_owned(),
        "--quiet".to_owned(),
    ];
    let configuration = GooseConfiguration::parse_args_default(&args)
        .map_err(|e| anyhow::anyhow!("goose configuration: {e}"))?;
    let mut attack = GooseAttack::initialize_with_config(configuration)?;
    for scenario in scenarios {
        attack = attack.register_scenario(scenario);
    }
    let metrics = attack.execute().await?;
    if goose::is_killswitch_triggered() {
        anyhow::bail!("the attack was interrupted; nothing recorded");
    }
    Ok(measure(&metrics))
}

fn measure(metrics: &GooseMetrics) -> Measured {
    let window_secs = window_secs(metrics);
    let mut total = GooseRequestMetricTimingData::default();
    let (mut total_ok, mut total_failed) = (0, 0);
    let mut rows: Vec<Row> = metrics
        .requests
        .iter()
        .map(|(name, aggregate)| {
            merge(&mut total, &aggregate.raw_data);
            total_ok += aggregate.success_count;
            total_failed += aggregate.fail_count;
            row(
                name,
                &aggregate.raw_data,
                aggregate.success_count,
                aggregate.fail_count,
                window_secs,
            )
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Measured {
        total: row("all", &total, total_ok, total_failed, window_secs),
        rows,
        window_secs,
    }
}

/// Goose's own merge is crate-private; this is the same through the public fields.
fn merge(into: &mut GooseRequestMetricTimingData, from: &GooseRequestMetricTimingData) {
    if from.counter == 0 {
        return;
    }
    for (&bucket, &count) in from.times_us.iter() {
        let had = into.times_us.get(&bucket).copied().unwrap_or(0);
        into.times_us.insert(bucket, had + count);
    }
    if into.counter == 0 || from.minimum_time_us < into.minimum_time_us {
        into.minimum_time_us = from.minimum_time_us;
    }
    into.maximum_time_us = into.maximum_time_us.max(from.maximum_time_us);
    into.total_time_us += from.total_time_us;
    into.counter += from.counter;
}

fn row(
    name: &str,
    times: &GooseRequestMetricTimingData,
    ok: usize,
    failed: usize,
    secs: f64,
) -> Row {
    let requests = ok + failed;
    Row {
        name: name.to_owned(),
        requests,
        errors: failed,
        rps: if secs > 0.0 {
            requests as f64 / secs
        } else {
            0.0
        },
        p50_us: times.percentile_us(0.50),
        p95_us: times.percentile_us(0.95),
        p99_us: times.percentile_us(0.99),
        max_us: times.maximum_time_us,
    }
}

/// The measured window from goose's own step history (the Maintaining step up to the next
/// step), to the millisecond; goose's `duration` is rounded to whole seconds, which would
/// skew rps by up to 2.5% on a 20 s run.
fn window_secs(metrics: &GooseMetrics) -> f64 {
    let history = &metrics.history;
    history
        .iter()
        .position(|step| matches!(step.action, TestPlanStepAction::Maintaining))
        .and_then(|i| {
            let next = history.get(i + 1)?;
            let micros = (next.timestamp - history[i].timestamp).num_microseconds()?;
            Some(micros as f64 / 1e6)
        })
        .filter(|secs| *secs > 0.0)
        .unwrap_or(metrics.duration as f64)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::scenarios::{Endpoints, health};

    /// A stand-in layer on an ephemeral loopback port answering `/healthz` with `body`.
    async fn layer(body: &'static str) -> SocketAddr {
        let app =
            axum::Router::new().route("/healthz", axum::routing::get(move || async move { body }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    /// The whole goose side for one second: per-layer rows, and a layer whose body is wrong
    /// counts as errors on its own row only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_scenario_reports_each_layer() {
        let endpoints = Endpoints {
            edge: layer(r#"{"status":"ok","layer":"edge"}"#).await,
            ai: layer(r#"{"status":"ok","layer":"ai"}"#).await,
            agent: layer(r#"{"status":"starting"}"#).await,
        };
        let load = Load {
            users: 3,
            hatch_rate: 100.0,
            run_time: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
        };
        let measured = run((health::DEF.build)(&endpoints).unwrap(), &load)
            .await
            .unwrap();

        let names: Vec<&str> = measured.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["GET agent /healthz", "GET ai /healthz", "GET edge /healthz"]
        );
        let [agent, ai, edge] = &measured.rows[..] else {
            unreachable!()
        };
        for ok in [ai, edge] {
            assert!(ok.requests > 0 && ok.errors == 0, "{ok:?}");
            assert!(
                ok.rps > 0.0 && ok.p50_us > 0 && ok.p50_us <= ok.p99_us && ok.p99_us <= ok.max_us,
                "{ok:?}"
            );
        }
        assert!(
            agent.requests > 0 && agent.errors == agent.requests,
            "{agent:?}"
        );
        assert_eq!(
            measured.total.requests,
            agent.requests + ai.requests + edge.requests
        );
        assert!(
            measured.window_secs > 0.5 && measured.window_secs < 3.0,
            "{}",
            measured.window_secs
        );
    }
}
