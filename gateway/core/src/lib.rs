//! gatez-core: what every Gatez layer shares.
//!
//! - [`tenant`] and [`keys`]: the tenant id and the one place tenant-scoped keys are built.
//! - [`identity`]: who is calling, and the signed assertion one layer hands the next.
//! - [`config`]: typed YAML config with env overrides, validated at load.
//! - [`store`]: the store traits, each with an embedded and a real backend; [`stores`]
//!   picks the backends from config.
//! - [`runtime`]: what a process builds once and every layer shares.
//! - [`telemetry`]: logs, traces (OTLP), trace-context propagation, Prometheus metrics.
//! - [`http`]: health/readiness/metrics endpoints, the error body, and graceful serving.

pub mod config;
pub mod http;
pub mod identity;
pub mod keys;
pub mod runtime;
pub mod store;
pub mod stores;
pub mod telemetry;
pub mod tenant;

pub use tenant::TenantId;
