//! HTTP plumbing every layer shares: the error body, request ids, health/readiness/metrics
//! endpoints, and serving with graceful shutdown.

pub mod error;
pub mod health;
pub mod request_id;
pub mod server;

pub use error::ApiError;
pub use health::{Readiness, ReadinessCheck, ops_router};
pub use request_id::{REQUEST_ID_HEADER, RequestId, request_id_layer};
pub use server::{Server, shutdown_signal};
