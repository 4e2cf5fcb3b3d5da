//! Serving a layer: bind, serve with request ids and the ops endpoints, and on shutdown stop
//! accepting, report not-ready, let in-flight requests finish within the drain timeout.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::health::{Readiness, ops_router};
use super::request_id::{RequestId, request_id_layer};
use crate::telemetry::metrics::HttpMetricsLayer;
use crate::telemetry::propagation::set_parent_from_headers;

/// One layer's HTTP server.
pub struct Server {
    name: &'static str,
    listener: TcpListener,
    app: Router,
    readiness: Readiness,
    drain_timeout: Duration,
}

impl Server {
    /// Binds `addr` now, so a port conflict fails start-up with a clear error.
    pub async fn bind(
        name: &'static str,
        addr: SocketAddr,
        app: Router,
        readiness: Readiness,
        drain_timeout: Duration,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("{name}: cannot listen on {addr}: {e}"))
        })?;
        Ok(Self {
            name,
            listener,
            app,
            readiness,
            drain_timeout,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled, then drains. Returns once every connection is
    /// closed or the drain timeout has passed.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let Server {
            name,
            listener,
            app,
            readiness,
            drain_timeout,
        } = self;
        let addr = listener.local_addr()?;
        // Outermost first: request id, then the request span (which logs carry), then metrics
        // (after routing, so the route template is the label, never the raw path).
        let app = app
            .merge(ops_router(name, readiness.clone()))
            .layer(HttpMetricsLayer::new(name))
            .layer(axum::middleware::from_fn(trace_request))
            .layer(axum::middleware::from_fn(request_id_layer));
        tracing::info!(layer = name, %addr, "listening");
        let signal = shutdown.clone();
        let draining = readiness.clone();
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            signal.cancelled().await;
            draining.start_draining();
            tracing::info!(layer = name, "draining: no new connections");
        });
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(drain_timeout).await;
        };
        tokio::select! {
            result = serve => {
                tracing::info!(layer = name, "stopped");
                result
            }
            () = deadline => {
                tracing::warn!(layer = name, ?drain_timeout, "drain timeout: closing remaining connections");
                Ok(())
            }
        }
    }
}

/// One span per request, continuing the caller's trace when it sent a valid `traceparent`.
async fn trace_request(req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.as_str())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http.request",
        http.request.method = %req.method(),
        url.path = %req.uri().path(),
        request_id,
    );
    set_parent_from_headers(&span, req.headers());
    next.run(req).instrument(span).await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
