//! Telemetry: logs (text or JSON), traces exported over OTLP/HTTP, W3C trace-context
//! propagation, and Prometheus metrics.
//!
//! A binary calls [`init`] once at start-up and keeps the returned [`TelemetryGuard`] until it
//! exits; dropping the guard flushes the spans still buffered.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub mod logging;
pub mod metrics;
pub mod propagation;
pub mod tracing_otel;

/// Logging and tracing settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `text` (default) for people, `json` (one object per line) for log shippers.
    #[serde(default)]
    pub log_format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `info,gatez_edge=debug`. Default `info`.
    /// A non-empty `RUST_LOG` replaces it.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Span export; off when absent.
    #[serde(default)]
    pub otlp: Option<OtlpConfig>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::default(),
            log_level: default_log_level(),
            otlp: None,
        }
    }
}

fn default_log_level() -> String {
    "info".to_owned()
}

/// How log lines are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where and how spans are exported (OTLP over HTTP, protobuf).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's base URL, e.g. `http://otel-collector:4318`; spans go to
    /// `{endpoint}/v1/traces`.
    pub endpoint: String,
    /// Replaces the service name the binary passes to [`init`] (e.g. `gatez-edge`).
    #[serde(default)]
    pub service_name: Option<String>,
    /// Fraction of new traces recorded, 0 to 1. Default 1. A request that arrives with a
    /// sampled `traceparent` is recorded regardless, so traces stay whole across layers.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
    /// Extra request headers, typically the collector's credentials (kept secret).
    #[serde(default)]
    pub headers: BTreeMap<String, crate::config::Secret>,
    /// Bound on one export request. Default 5 s.
    #[serde(default = "default_export_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_sample_ratio() -> f64 {
    1.0
}

fn default_export_timeout() -> Duration {
    Duration::from_secs(5)
}

impl OtlpConfig {
    /// An export config for `endpoint` with default settings.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            service_name: None,
            sample_ratio: default_sample_ratio(),
            headers: BTreeMap::new(),
            timeout: default_export_timeout(),
        }
    }

    /// `{endpoint}/v1/traces`.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint.trim_end_matches('/'))
    }
}

impl TelemetryConfig {
    /// Checks what serde cannot; errors name the field.
    pub fn validate(&self) -> Result<(), String> {
        EnvFilter::try_new(&self.log_level).map_err(|e| format!("log_level: {e}"))?;
        if let Some(otlp) = &self.otlp {
            otlp.validate().map_err(|e| format!("otlp.{e}"))?;
        }
        Ok(())
    }
}

impl OtlpConfig {
    fn validate(&self) -> Result<(), String> {
        let uri: http::Uri = self
            .endpoint
            .parse()
            .map_err(|e| format!("endpoint: {:?} is not a URL: {e}", self.endpoint))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!(
                "endpoint: {:?} must be an http(s)://host:port URL",
                self.endpoint
            ));
        }
        if uri.path().trim_end_matches('/').ends_with("/v1/traces") {
            return Err(format!(
                "endpoint: {:?} must be the collector's base URL, without /v1/traces",
                self.endpoint
            ));
        }
        if let Some(name) = &self.service_name
            && name.trim().is_empty()
        {
            return Err("service_name: must not be empty".to_owned());
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(format!(
                "sample_ratio: {} is not between 0 and 1",
                self.sample_ratio
            ));
        }
        for (name, value) in &self.headers {
            http::HeaderName::try_from(name.as_str())
                .map_err(|_| format!("headers.{name}: not a valid header name"))?;
            // The value is never echoed: it is usually a credential.
            http::HeaderValue::try_from(value.expose())
                .map_err(|_| format!("headers.{name}: not a valid header value"))?;
        }
        if self.timeout.is_zero() {
            return Err("timeout: must be greater than zero".to_owned());
        }
        Ok(())
    }
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid telemetry config: {0}")]
    Config(String),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialized,
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(String),
    #[error("flushing spans at shutdown failed: {0}")]
    Shutdown(String),
}

/// Keeps span export running; flushes and stops it on [`shutdown`](Self::shutdown) or drop.
///
/// Shutting down blocks the calling thread while buffered spans are sent (bounded by the
/// export timeout); from async code call it inside `spawn_blocking`, or drop the guard after
/// the runtime has stopped.
#[must_use = "dropping the guard stops span export"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    exports_spans: bool,
}

impl TelemetryGuard {
    /// Whether spans are exported (`otlp` was configured).
    pub fn exports_spans(&self) -> bool {
        self.exports_spans
    }

    /// Sends buffered spans and stops the exporter. Idempotent.
    pub fn shutdown(&mut self) -> Result<(), TelemetryError> {
        match self.provider.take() {
            Some(provider) => provider
                .shutdown()
                .map_err(|e| TelemetryError::Shutdown(e.to_string())),
            None => Ok(()),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            // The subscriber may already be half torn down at exit; stderr always works.
            eprintln!("gatez: {e}");
        }
    }
}

/// Installs the global subscriber: an `EnvFilter`, the log formatter and the OpenTelemetry
/// layer; installs the W3C trace-context propagator globally.
///
/// The OpenTelemetry layer is installed even without `cfg.otlp`, only without export: spans
/// then still carry trace ids (for log rows) and continue the caller's trace, so a trace stays
/// whole across layers when only some of them export.
///
/// `service_name` names this binary in traces unless `cfg.otlp.service_name` overrides it.
/// A second call returns [`TelemetryError::AlreadyInitialized`] and changes nothing.
pub fn init(service_name: &str, cfg: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    cfg.validate().map_err(TelemetryError::Config)?;
    let filter = logging::env_filter(&cfg.log_level)?;
    let provider = match &cfg.otlp {
        Some(otlp) => tracing_otel::tracer_provider(service_name, otlp)?,
        None => tracing_otel::local_tracer_provider(),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(logging::fmt_layer(
            cfg.log_format,
            std::io::stdout,
            logging::stdout_wants_colors(),
        ))
        .with(tracing_otel::layer(&provider))
        .try_init();
    if installed.is_err() {
        // Stop the export thread just started; nothing went through it.
        let _ = provider.shutdown();
        return Err(TelemetryError::AlreadyInitialized);
    }
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard {
        provider: Some(provider),
        exports_spans: cfg.otlp.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<TelemetryConfig, String> {
        let cfg: TelemetryConfig = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    #[test]
    fn defaults() {
        let cfg = parse("{}").unwrap();
        assert_eq!(cfg.log_format, LogFormat::Text);
        assert_eq!(cfg.log_level, "info");
        assert!(cfg.otlp.is_none());
        let cfg = parse("otlp: {endpoint: \"http://collector:4318/\"}").unwrap();
        let otlp = cfg.otlp.unwrap();
        assert_eq!(otlp.sample_ratio, 1.0);
        assert_eq!(otlp.timeout, Duration::from_secs(5));
        assert_eq!(otlp.traces_url(), "http://collector:4318/v1/traces");
    }

    #[test]
    fn rejects_bad_values_naming_the_field() {
        let err = parse("log_level: \"info,[\"").unwrap_err();
        assert!(err.starts_with("log_level"), "{err}");
        let err = parse("otlp: {endpoint: \"collector:4318\"}").unwrap_err();
        assert!(err.starts_with("otlp.endpoint"), "{err}");
        let err = parse("otlp: {endpoint: \"http://c:4318/v1/traces\"}").unwrap_err();
        assert!(err.starts_with("otlp.endpoint"), "{err}");
        let err = parse("otlp: {endpoint: \"http://c:4318\", sample_ratio: 1.5}").unwrap_err();
        assert!(err.starts_with("otlp.sample_ratio"), "{err}");
        let err = parse(
            "otlp: {endpoint: \"http://c:4318\", headers: {\"bad name\": {file: /dev/null}}}",
        )
        .unwrap_err();
        assert!(err.starts_with("otlp.headers.bad name"), "{err}");
        assert!(parse("log_format: xml").is_err());
        assert!(parse("unknown: 1").is_err());
    }

    #[test]
    fn header_values_are_not_printed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("token");
        std::fs::write(&secret, "Bearer s3cr3t").unwrap();
        let cfg = parse(&format!(
            "otlp: {{endpoint: \"http://c:4318\", headers: {{authorization: {{file: {}}}}}}}",
            secret.display()
        ))
        .unwrap();
        assert!(!format!("{cfg:?}").contains("s3cr3t"));
        assert!(
            parse(
                "otlp: {endpoint: \"http://c:4318\", headers: {authorization: \"Bearer s3cr3t\"}}"
            )
            .is_err(),
            "a literal header value is refused"
        );
    }
}
