//! Log lines: which ones are written (the filter) and how (text or JSON).

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

use super::{LogFormat, TelemetryError};

/// Whether stdout is a terminal that wants colours (`NO_COLOR` unset).
pub fn stdout_wants_colors() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The filter from `RUST_LOG` when it is set and non-empty (an operator's override while
/// debugging), else from the configured directive.
pub fn env_filter(configured: &str) -> Result<EnvFilter, TelemetryError> {
    filter_from(std::env::var(EnvFilter::DEFAULT_ENV).ok(), configured)
}

fn filter_from(env: Option<String>, configured: &str) -> Result<EnvFilter, TelemetryError> {
    match env {
        Some(directive) if !directive.trim().is_empty() => EnvFilter::try_new(&directive)
            .map_err(|e| TelemetryError::Config(format!("{}: {e}", EnvFilter::DEFAULT_ENV))),
        _ => EnvFilter::try_new(configured)
            .map_err(|e| TelemetryError::Config(format!("log_level: {e}"))),
    }
}

/// The formatting layer writing to `writer`: human-readable text, or one JSON object per line
/// with the event's fields at the top level and the current span's fields under `span`.
/// `colors` adds ANSI colours to text (only for a terminal: in files they are noise).
pub fn fmt_layer<S, W>(
    format: LogFormat,
    writer: W,
    colors: bool,
) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(colors && format == LogFormat::Text);
    match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Collects what the layer writes.
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

    fn capture(format: LogFormat, colors: bool, emit: impl FnOnce()) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry().with(
            fmt_layer(format, move || writer.clone(), colors).with_filter(EnvFilter::new("info")),
        );
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_are_objects_with_flat_fields_and_span() {
        // Colours asked for, yet JSON must stay parseable.
        let out = capture(LogFormat::Json, true, || {
            let span = tracing::info_span!("request", tenant = "acme");
            let _entered = span.enter();
            tracing::info!(status = 200, "served");
            tracing::debug!("filtered out");
        });
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let row: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(row["message"], "served");
        assert_eq!(row["status"], 200);
        assert_eq!(row["level"], "INFO");
        assert_eq!(row["span"]["tenant"], "acme");
    }

    #[test]
    fn text_lines_are_plain_unless_colored() {
        let out = capture(LogFormat::Text, false, || {
            tracing::info!(status = 200, "served")
        });
        assert!(
            out.contains("INFO") && out.contains("served status=200"),
            "{out}"
        );
        assert!(!out.contains('\x1b'), "{out:?}");
        let colored = capture(LogFormat::Text, true, || tracing::info!("served"));
        assert!(colored.contains('\x1b'), "{colored:?}");
    }

    fn config_error(result: Result<EnvFilter, TelemetryError>) -> String {
        match result {
            Err(TelemetryError::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn rust_log_overrides_the_configured_directive() {
        let filter = filter_from(None, "warn,gatez_core=debug").unwrap();
        assert_eq!(filter.to_string(), "gatez_core=debug,warn");
        let filter = filter_from(Some("trace".to_owned()), "info").unwrap();
        assert_eq!(filter.to_string(), "trace");
        // An empty RUST_LOG is no override.
        let filter = filter_from(Some(" ".to_owned()), "info").unwrap();
        assert_eq!(filter.to_string(), "info");
        assert!(config_error(filter_from(None, "info,[")).starts_with("log_level"));
        assert!(
            config_error(filter_from(Some("info,[".to_owned()), "info")).starts_with("RUST_LOG")
        );
    }
}
