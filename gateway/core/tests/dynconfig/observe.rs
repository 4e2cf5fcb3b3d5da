//! What an operator sees of reloads: the log lines (captured as JSON from a global subscriber,
//! since reloads log from background tasks) and the Prometheus metrics.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use gatez_core::telemetry::LogFormat;
use gatez_core::telemetry::logging::fmt_layer;
use gatez_core::telemetry::metrics::gather_text;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<Captured> = OnceLock::new();

/// Installs the capturing subscriber once per process.
pub fn install() {
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::new("info"))
            .with(fmt_layer(LogFormat::Json, move || writer.clone(), false));
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
        captured
    });
}

fn rows() -> Vec<serde_json::Value> {
    let captured = LOGS.get().expect("observe::install() was called");
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .collect()
}

/// The ERROR lines logged for the config named `name`.
pub fn errors_of(name: &str) -> Vec<serde_json::Value> {
    rows()
        .into_iter()
        .filter(|row| row["level"] == "ERROR" && row["config"] == name)
        .collect()
}

/// How many lines with this message were logged (by any test of this process: use only
/// for messages that no other test of the binary produces).
pub fn count_of(message: &str) -> usize {
    rows()
        .iter()
        .filter(|row| row["message"] == message)
        .count()
}

/// A sample of the scrape, 0 when absent.
fn sample(series: &str) -> f64 {
    gather_text()
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// `gatez_config_reloads_total{config=name,result}`.
pub fn reloads(name: &str, result: &str) -> u64 {
    sample(&format!(
        "gatez_config_reloads_total{{config=\"{name}\",result=\"{result}\"}}"
    )) as u64
}

/// `gatez_config_revision{config=name}`.
pub fn revision_gauge(name: &str) -> u64 {
    sample(&format!("gatez_config_revision{{config=\"{name}\"}}")) as u64
}
