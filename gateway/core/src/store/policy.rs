//! What a store does when its real backend fails: a deliberate, configured choice.

use serde::{Deserialize, Serialize};

/// Behaviour when a real backend (Redis, ClickHouse, etcd) fails or times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Let the request through as if the store had said yes (availability over enforcement).
    FailOpen,
    /// Refuse the request with 503 (enforcement over availability).
    #[default]
    FailClosed,
    /// Enforce with this node's embedded backend until the real one answers again: limits hold
    /// per node instead of across the cluster.
    Local,
}
