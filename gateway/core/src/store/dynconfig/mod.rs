//! Dynamic configuration: a document (YAML text) that can change while the gateway runs.
//!
//! Sources: [`file::FileSource`] (watches a file) and [`etcd::EtcdSource`] (watches a key).
//! A source only delivers text; [`DynamicConfig`](reload::DynamicConfig) parses and validates
//! each revision and keeps serving the last good one when a new one is invalid.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::store::StoreError;

pub mod etcd;
pub mod file;
pub mod reload;

/// One revision of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDocument {
    /// Monotonic within one source (etcd mod revision; a counter for files).
    pub revision: u64,
    pub text: Arc<str>,
}

/// A source of a configuration document.
#[async_trait]
pub trait ConfigSource: Send + Sync + 'static {
    /// Reads the current document, then keeps the returned receiver updated with every new
    /// revision until the source is dropped. `None` while the document does not exist.
    async fn watch(&self) -> Result<watch::Receiver<Option<ConfigDocument>>, StoreError>;

    /// Writes a new document (etcd put, or atomic file replace). Used by the control plane.
    async fn put(&self, text: &str) -> Result<(), StoreError>;

    fn backend(&self) -> &'static str;
}
