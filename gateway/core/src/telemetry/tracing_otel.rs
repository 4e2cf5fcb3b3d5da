//! Span export: `tracing` spans become OpenTelemetry spans, batched and sent to an OTLP/HTTP
//! collector as protobuf.
//!
//! The SDK's batch processor exports from its own thread, outside any tokio runtime, so the
//! exporter uses reqwest's blocking client (which brings its own runtime). An async client
//! there would fail for want of a reactor, and an exporter on the application's runtime could
//! deadlock at shutdown when that runtime is single-threaded.

use std::collections::HashMap;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

use super::{OtlpConfig, TelemetryError};

/// Instrumentation scope named on every exported span.
const SCOPE: &str = "gatez";

/// A tracer provider exporting to `otlp.endpoint`, with a batch processor, the configured
/// head sampling (respecting a caller's sampling decision) and `service.name` set.
pub fn tracer_provider(
    service_name: &str,
    otlp: &OtlpConfig,
) -> Result<SdkTracerProvider, TelemetryError> {
    let headers: HashMap<String, String> = otlp
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.expose().to_owned()))
        .collect();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(blocking_client(otlp)?)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(otlp.traces_url())
        .with_timeout(otlp.timeout)
        .with_headers(headers)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let service_name = otlp.service_name.as_deref().unwrap_or(service_name);
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(otlp.sample_ratio)));
    Ok(SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_sampler(sampler)
        .with_resource(resource)
        .build())
}

/// A tracer provider that exports nothing: spans get trace ids and propagate context, and a
/// caller's sampling decision is passed on (new traces are marked sampled, so a downstream
/// layer that exports records its part).
pub fn local_tracer_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .build()
}

/// The `tracing` layer feeding spans to `provider`.
pub fn layer<S>(provider: &SdkTracerProvider) -> OpenTelemetryLayer<S, SdkTracer>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SCOPE))
        .with_tracked_inactivity(false)
}

/// Builds reqwest's blocking client on a plain thread: building it inside an async context
/// panics, and `init` may well be called from one.
fn blocking_client(otlp: &OtlpConfig) -> Result<reqwest::blocking::Client, TelemetryError> {
    let timeout = otlp.timeout;
    std::thread::Builder::new()
        .name("gatez-otlp-init".to_owned())
        .spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .build()
        })
        .map_err(|e| TelemetryError::Exporter(format!("cannot spawn a thread: {e}")))?
        .join()
        .map_err(|_| TelemetryError::Exporter("building the HTTP client panicked".to_owned()))?
        .map_err(|e| TelemetryError::Exporter(e.to_string()))
}
