//! gatez-edge: the L1 API gateway.
//!
//! This crate owns the layer's request path; the shared pieces (identity, stores, telemetry,
//! health and serving) come from gatez-core.

pub mod auth;
pub mod limits;
pub mod proxy;
pub mod route;

use std::sync::Arc;

use axum::Router;
use gatez_core::config::GatezConfig;
use gatez_core::http::{ApiError, Readiness, Server};
use gatez_core::runtime::Runtime;

/// The layer's name in logs, metrics and health answers.
pub const LAYER: &str = "edge";

/// Builds and binds the layer's server from the process config and the shared runtime.
pub async fn bind(config: &GatezConfig, runtime: Arc<Runtime>) -> std::io::Result<Server> {
    let readiness = Readiness::new(runtime.readiness_checks());
    Server::bind(
        LAYER,
        config.edge.server.listen,
        app(runtime),
        readiness,
        config.shutdown.drain_timeout,
    )
    .await
}

/// The layer's routes. Anything not routed is a JSON 404 in the layer's error shape.
pub fn app(_runtime: Arc<Runtime>) -> Router {
    Router::new().fallback(|| async { ApiError::not_found("no route for this path") })
}
