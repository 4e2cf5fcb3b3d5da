//! W3C trace context (`traceparent`, `tracestate`) across HTTP hops, so one trace shows
//! L1 → L2 → provider → L3 → tool.
//!
//! The W3C propagator is used directly rather than the global one, so propagation does not
//! depend on [`init`](super::init) having run (tests, embedded use). A malformed incoming
//! header is ignored: the request simply starts a new trace.

use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The remote parent carried by `headers`; a context without a valid span when there is none
/// or it is malformed.
pub fn extract_context(headers: &HeaderMap) -> Context {
    let traceparent = headers
        .get(TRACEPARENT)
        .map(|v| v.to_str().map(well_formed).unwrap_or(false));
    if traceparent == Some(false) {
        return Context::new();
    }
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

const TRACEPARENT: &str = "traceparent";

/// The W3C `traceparent` shape: `vv-<32 hex>-<16 hex>-ff`, lowercase, exactly 55 characters
/// for version 00 (later versions may append `-...`; version ff is invalid). The SDK's
/// parser is more lenient (it takes a 31-digit trace id, say), and the spec requires a
/// malformed header to be ignored, not repaired.
fn well_formed(traceparent: &str) -> bool {
    let b = traceparent.as_bytes();
    let hex = |range: std::ops::Range<usize>| {
        b[range]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return false;
    }
    if !(hex(0..2) && hex(3..35) && hex(36..52) && hex(53..55)) || b.starts_with(b"ff") {
        return false;
    }
    match &b[0..2] {
        b"00" => b.len() == 55,
        _ => b.len() == 55 || b[55] == b'-',
    }
}

/// Makes the caller's trace (from `headers`) the parent of `span`. Call it right after
/// creating the span, before entering it. Returns whether a valid parent was found; without
/// one the span stays the root of a new trace.
pub fn set_parent_from_headers(span: &Span, headers: &HeaderMap) -> bool {
    let parent = extract_context(headers);
    if !parent.span().span_context().is_valid() {
        return false;
    }
    // Fails only without the OpenTelemetry layer or once the span started; either way the
    // span keeps its own trace, which is the right fallback.
    span.set_parent(parent).is_ok()
}

/// Writes `cx`'s span as `traceparent` (and `tracestate`) into outgoing `headers`, replacing
/// any the client sent.
pub fn inject_context(cx: &Context, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

/// Writes the current span's trace context into outgoing `headers`.
pub fn inject_current_span(headers: &mut HeaderMap) {
    inject_context(&Span::current().context(), headers);
}

/// The current span's trace id as 32 lowercase hex digits, for log rows; `None` outside a
/// span (or without the OpenTelemetry layer).
pub fn trace_id_of_current_span() -> Option<String> {
    let cx = Span::current().context();
    let span = cx.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// Runs `f` under a subscriber with the OpenTelemetry layer (no export).
    fn with_otel<R>(f: impl FnOnce() -> R) -> R {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn extract_then_inject_keeps_the_trace() {
        let incoming = headers(&[("traceparent", PARENT), ("tracestate", "vendor=abc")]);
        let (outgoing, logged) = with_otel(|| {
            let span = tracing::info_span!("request");
            assert!(set_parent_from_headers(&span, &incoming));
            let _entered = span.enter();
            let mut outgoing = HeaderMap::new();
            inject_current_span(&mut outgoing);
            (outgoing, trace_id_of_current_span())
        });
        assert_eq!(logged.as_deref(), Some(TRACE_ID));
        let traceparent = outgoing["traceparent"].to_str().unwrap();
        let parts: Vec<_> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[1], TRACE_ID);
        // A new span id (ours), and the caller's sampling decision kept.
        assert_ne!(parts[2], "00f067aa0ba902b7");
        assert_eq!(parts[3], "01");
        assert_eq!(outgoing["tracestate"], "vendor=abc");
    }

    #[test]
    fn extracted_context_injects_unchanged() {
        let cx = extract_context(&headers(&[("traceparent", PARENT)]));
        let mut out = HeaderMap::new();
        inject_context(&cx, &mut out);
        assert_eq!(out["traceparent"], PARENT);
    }

    #[test]
    fn malformed_traceparent_starts_a_new_trace() {
        for bad in [
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            let incoming = headers(&[("traceparent", bad)]);
            assert!(!extract_context(&incoming).span().span_context().is_valid());
            let trace_id = with_otel(|| {
                let span = tracing::info_span!("request");
                assert!(!set_parent_from_headers(&span, &incoming));
                let _entered = span.enter();
                trace_id_of_current_span()
            })
            .expect("the span is the root of a new, valid trace");
            assert_eq!(trace_id.len(), 32);
            assert!(trace_id.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_ne!(trace_id, TRACE_ID);
            assert_ne!(trace_id, "0".repeat(32));
        }
    }

    #[test]
    fn traceparent_shape() {
        assert!(well_formed(PARENT));
        assert!(well_formed(&PARENT.replace("-01", "-00")));
        // A later version may carry more fields.
        assert!(well_formed(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
        ));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn no_span_no_trace_id() {
        assert_eq!(with_otel(trace_id_of_current_span), None);
        let mut out = HeaderMap::new();
        with_otel(|| inject_current_span(&mut out));
        assert!(out.is_empty());
    }
}
