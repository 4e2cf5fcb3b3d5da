//! gatez-ai: the L2 AI gateway (OpenAI-compatible API in front of every provider).
//!
//! This crate owns the layer's request path; the shared pieces (identity, stores, telemetry,
//! health and serving) come from gatez-core.

use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use gatez_core::config::GatezConfig;
use gatez_core::http::{Readiness, Server};
use gatez_core::runtime::Runtime;
use http::StatusCode;

/// The layer's name in logs, metrics and health answers.
pub const LAYER: &str = "ai";

/// Builds and binds the layer's server from the process config and the shared runtime.
pub async fn bind(config: &GatezConfig, runtime: Arc<Runtime>) -> std::io::Result<Server> {
    let readiness = Readiness::new(runtime.readiness_checks());
    Server::bind(
        LAYER,
        config.ai.server.listen,
        app(runtime),
        readiness,
        config.shutdown.drain_timeout,
    )
    .await
}

/// The layer's routes. L2 speaks OpenAI's error object, so OpenAI clients parse its errors.
pub fn app(_runtime: Arc<Runtime>) -> Router {
    Router::new().fallback(|| async { not_found() })
}

fn not_found() -> Response {
    let body = serde_json::json!({
        "error": {
            "message": "Unknown request URL. See the Gatez README for the supported endpoints.",
            "type": "invalid_request_error",
            "param": null,
            "code": "unknown_url",
        }
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
