//! Prometheus metrics: the `/metrics` text, and the HTTP request metrics every layer shares.
//!
//! Labels are kept bounded so a scan of random URLs cannot blow up the series count: `route`
//! is the matched route *template* (never the raw path), `method` folds non-standard methods
//! into `OTHER`, and `status` is the three-digit code.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::MatchedPath;
use http::{Method, Request, Response, StatusCode};
use prometheus::{
    Encoder, HistogramVec, IntCounterVec, TextEncoder, histogram_opts, register_histogram_vec,
    register_int_counter_vec,
};

/// Request latency buckets, in seconds: sub-millisecond for cache hits and rejections up to
/// 10 s for slow upstreams and model calls.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `route` label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gatez_http_requests_total",
        "HTTP requests served, by layer, route template, method and status",
        &["layer", "route", "method", "status"]
    )
    .expect("metric gatez_http_requests_total registers once")
});

static HTTP_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        histogram_opts!(
            "gatez_http_request_duration_seconds",
            "Time from request to response head, by layer, route template and method",
            LATENCY_BUCKETS.to_vec()
        ),
        &["layer", "route", "method"]
    )
    .expect("metric gatez_http_request_duration_seconds registers once")
});

/// Everything in the default registry, in the Prometheus text format (for `/metrics`).
pub fn gather_text() -> String {
    let mut out = Vec::with_capacity(16 * 1024);
    // Encoding into a Vec only fails on a malformed metric family, which the registry's
    // own validation rules out.
    if let Err(e) = TextEncoder::new().encode(&prometheus::gather(), &mut out) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The `method` label: the standard methods by name, anything else as `OTHER`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Counts one request and observes its latency. `route` must be a route template or id
/// (e.g. `/v1/chat/completions`, `/users/{id}`) or [`UNMATCHED_ROUTE`], never a raw path.
pub fn record_http_request(
    layer: &str,
    route: &str,
    method: &Method,
    status: StatusCode,
    elapsed: Duration,
) {
    let method = method_label(method);
    HTTP_REQUESTS
        .with_label_values(&[layer, route, method, status.as_str()])
        .inc();
    HTTP_DURATION
        .with_label_values(&[layer, route, method])
        .observe(elapsed.as_secs_f64());
}

/// The route a handler matched, for services whose routes are not axum routes (the L1 proxy's
/// configured routes, L2 model aliases). Put it in the *response* extensions; it takes
/// precedence over axum's [`MatchedPath`].
#[derive(Debug, Clone)]
pub struct RouteLabel(pub Cow<'static, str>);

/// A tower layer recording [`record_http_request`] for every request, with the route from
/// the response's [`RouteLabel`], else axum's [`MatchedPath`] (add the layer with
/// `Router::layer`, so routing has run), else [`UNMATCHED_ROUTE`]. Latency is measured to the
/// response head; streamed bodies are not waited for.
#[derive(Debug, Clone, Copy)]
pub struct HttpMetricsLayer {
    layer: &'static str,
}

impl HttpMetricsLayer {
    /// `layer` is the `layer` label: `edge`, `ai`, `agent`, `control`.
    pub fn new(layer: &'static str) -> Self {
        Self { layer }
    }
}

impl<S> tower::Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics {
            inner,
            layer: self.layer,
        }
    }
}

/// The service made by [`HttpMetricsLayer`].
#[derive(Debug, Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    layer: &'static str,
}

impl<S, B, ResB> tower::Service<Request<B>> for HttpMetrics<S>
where
    S: tower::Service<Request<B>, Response = Response<ResB>>,
    S::Future: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let layer = self.layer;
        let method = request.method().clone();
        let matched = request.extensions().get::<MatchedPath>().cloned();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let route = match response.extensions().get::<RouteLabel>() {
                Some(label) => &*label.0,
                None => matched
                    .as_ref()
                    .map_or(UNMATCHED_ROUTE, MatchedPath::as_str),
            };
            record_http_request(layer, route, &method, response.status(), started.elapsed());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// The value of the sample line starting with `prefix` in the scrape.
    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn recorded_requests_appear_in_the_text_format() {
        let route = "/test/recorded/{id}";
        for _ in 0..3 {
            record_http_request(
                "test-a",
                route,
                &Method::GET,
                StatusCode::OK,
                Duration::from_millis(3),
            );
        }
        let text = gather_text();
        assert!(
            text.contains("# TYPE gatez_http_requests_total counter"),
            "{text}"
        );
        assert!(text.contains("# TYPE gatez_http_request_duration_seconds histogram"));
        let labels = format!("layer=\"test-a\",method=\"GET\",route=\"{route}\"");
        let count = format!("gatez_http_requests_total{{{labels},status=\"200\"}}");
        assert_eq!(sample(&text, &count), Some(3.0), "{text}");
        // 3 ms lands above the 2.5 ms bucket and within the 5 ms one.
        let bucket = |le: &str| {
            sample(
                &text,
                &format!("gatez_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("0.0005"), Some(0.0));
        assert_eq!(bucket("0.0025"), Some(0.0));
        assert_eq!(bucket("0.005"), Some(3.0));
        assert_eq!(bucket("10"), Some(3.0));
        assert_eq!(bucket("+Inf"), Some(3.0));
    }

    #[test]
    fn odd_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }

    #[tokio::test]
    async fn layer_labels_by_route_template_never_raw_path() {
        let app = Router::new()
            .route("/test/items/{id}", get(|| async { "ok" }))
            .route(
                "/test/proxy",
                get(|| async {
                    let mut response = Response::new(Body::from("proxied"));
                    response
                        .extensions_mut()
                        .insert(RouteLabel(Cow::Borrowed("route-42")));
                    response
                }),
            )
            .layer(HttpMetricsLayer::new("test-b"));
        for uri in ["/test/items/1", "/test/items/2", "/test/proxy", "/nope/xyz"] {
            let request = Request::get(uri).body(Body::empty()).unwrap();
            let _: Result<_, Infallible> = app.clone().oneshot(request).await;
        }
        let text = gather_text();
        let count = |route: &str, status: &str| {
            sample(
                &text,
                &format!(
                    "gatez_http_requests_total{{layer=\"test-b\",method=\"GET\",route=\"{route}\",status=\"{status}\"}}"
                ),
            )
        };
        assert_eq!(count("/test/items/{id}", "200"), Some(2.0), "{text}");
        assert_eq!(count("route-42", "200"), Some(1.0), "{text}");
        assert_eq!(count(UNMATCHED_ROUTE, "404"), Some(1.0), "{text}");
        assert!(!text.contains("/test/items/1"));
        assert!(!text.contains("/nope/xyz"));
    }
}
