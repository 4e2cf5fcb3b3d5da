//! Telemetry set-up end to end: `init` installs the global subscriber and exporter, and a span
//! reaches an OTLP/HTTP collector (a tiny in-test server) once the guard shuts down.
//!
//! `init` installs process-wide state, so this binary holds a single test (nextest runs each
//! test in its own process anyway).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use gatez_core::telemetry::propagation::trace_id_of_current_span;
use gatez_core::telemetry::{OtlpConfig, TelemetryConfig, TelemetryError, init};
use http::{HeaderMap, StatusCode};

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn collect(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    received.lock().unwrap().push((headers, body));
    StatusCode::OK
}

/// Starts the collector on an ephemeral port; returns its base URL.
async fn collector(received: Received) -> String {
    let app = Router::new()
        .route("/v1/traces", post(collect))
        .with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_is_exported_over_otlp_http_at_shutdown() {
    let received = Received::default();
    let endpoint = collector(received.clone()).await;
    let mut otlp = OtlpConfig::new(endpoint);
    otlp.headers = BTreeMap::from([(
        "x-collector-token".to_owned(),
        gatez_core::config::Secret::from_value("t0k3n"),
    )]);
    let cfg = TelemetryConfig {
        otlp: Some(otlp),
        ..TelemetryConfig::default()
    };

    let mut guard = init("gatez-telemetry-test", &cfg).expect("first init");
    assert!(guard.exports_spans());
    // A second init is refused without panicking and without replacing the first.
    assert!(matches!(
        init("other", &TelemetryConfig::default()),
        Err(TelemetryError::AlreadyInitialized)
    ));

    let (trace_id, propagated) = {
        let span = tracing::info_span!("otlp-export-test-span", tenant = "acme");
        let _entered = span.enter();
        tracing::info!("inside the exported span");
        // The global propagator is W3C trace context.
        let mut headers = HeaderMap::new();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(
                &tracing_opentelemetry::OpenTelemetrySpanExt::context(&tracing::Span::current()),
                &mut opentelemetry_http::HeaderInjector(&mut headers),
            )
        });
        (
            trace_id_of_current_span().expect("the span has a trace id"),
            headers,
        )
    };
    let traceparent = propagated["traceparent"].to_str().unwrap();
    assert!(traceparent.contains(&trace_id), "{traceparent}");

    // Shutdown blocks while the batch is sent, so it must not hold up the collector's runtime.
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap()
        .expect("flush at shutdown");

    let requests = received.lock().unwrap();
    assert!(!requests.is_empty(), "the collector received nothing");
    let (headers, body) = &requests[0];
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert_eq!(headers["x-collector-token"], "t0k3n");
    assert!(!body.is_empty());
    // Protobuf carries strings and ids as raw bytes, so these show up verbatim.
    assert!(contains(body, b"otlp-export-test-span"));
    assert!(
        contains(body, b"gatez-telemetry-test"),
        "service.name is set"
    );
    assert!(
        contains(body, &hex::decode(&trace_id).unwrap()),
        "the span's trace id"
    );
}
