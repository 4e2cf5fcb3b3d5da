//! Who is calling: the [`Identity`] every layer acts for, and the signed [`assertion`] that
//! carries it from L1 to L2 and L3.

use serde::{Deserialize, Serialize};

use crate::tenant::TenantId;

pub mod assertion;
pub mod keys;

/// An authenticated caller. Built only by an authenticator (JWT, API key) or by verifying a
/// signed assertion: never from a client-supplied header such as `x-tenant-id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub tenant: TenantId,
    /// The user, service account or API key the tenant's caller authenticated as.
    pub subject: String,
    pub scopes: Vec<String>,
    /// The request id L1 assigned, so every layer's log rows join on it.
    pub request_id: String,
}

impl Identity {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}
