//! Stores: one trait per kind of state, each with an embedded backend (one process, no
//! dependencies) and a real one (Redis, ClickHouse, etcd). Backends are chosen by config
//! ([`crate::stores::StoresConfig`]), never by feature flags, so tests exercise both.

pub mod breaker;
pub mod budget;
pub mod cache;
pub mod dynconfig;
pub mod error;
pub mod events;
pub mod policy;
pub mod ratelimit;
pub mod records;
pub mod redis_conn;

pub use error::StoreError;
pub use policy::{FailurePolicy, ResilienceConfig};
