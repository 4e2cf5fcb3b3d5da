//! Operational endpoints every layer serves: `/healthz` (the process is alive), `/readyz`
//! (it should get traffic: its dependencies answer and it is not draining) and `/metrics`
//! (Prometheus text format).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{StatusCode, header};
use serde_json::json;

/// A dependency whose health decides readiness (a Redis connection, a ClickHouse sink...).
#[async_trait]
pub trait ReadinessCheck: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// `Err` with a short reason when not ready. Must answer quickly.
    async fn check(&self) -> Result<(), String>;
}

/// The readiness state of one layer.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Vec<Arc<dyn ReadinessCheck>>>,
    draining: Arc<AtomicBool>,
}

/// A check that takes longer than this counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl Readiness {
    pub fn new(checks: Vec<Arc<dyn ReadinessCheck>>) -> Self {
        Self {
            checks: Arc::new(checks),
            draining: Arc::default(),
        }
    }

    /// From now on `/readyz` says 503, so load balancers stop sending new requests while
    /// in-flight ones finish.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    async fn report(&self) -> (bool, serde_json::Value) {
        let mut ok = !self.is_draining();
        let mut checks = serde_json::Map::new();
        for check in self.checks.iter() {
            let result = tokio::time::timeout(CHECK_TIMEOUT, check.check())
                .await
                .unwrap_or_else(|_| Err("timed out".into()));
            ok &= result.is_ok();
            checks.insert(
                check.name().to_owned(),
                match result {
                    Ok(()) => json!("ok"),
                    Err(reason) => json!(reason),
                },
            );
        }
        (
            ok,
            json!({
                "status": if ok { "ready" } else { "not_ready" },
                "draining": self.is_draining(),
                "checks": checks,
            }),
        )
    }
}

/// `/healthz`, `/readyz` and `/metrics` for a layer.
pub fn ops_router(layer: &'static str, readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(move || async move { Json(json!({"status": "ok", "layer": layer})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(readiness)
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    let (ok, body) = readiness.report().await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::metrics::gather_text(),
    )
        .into_response()
}
