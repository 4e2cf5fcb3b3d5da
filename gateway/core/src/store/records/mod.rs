//! Versioned records with a TTL: agent sessions, approval requests. Tenant-scoped, listable,
//! and updated with compare-and-swap so two replicas cannot both decide the same approval.
//!
//! Backends: [`embedded::EmbeddedRecordStore`] and [`redis::RedisRecordStore`] (any replica
//! can serve any session).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::keys::KeyKind;
use crate::store::StoreError;
use crate::tenant::TenantId;

pub mod embedded;
mod limits;
pub mod redis;

pub use limits::MAX_TTL;

/// A stored record and its version. Versions start at 1 and grow by one on every write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Bytes,
    pub version: u64,
}

/// Result of a compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// Written; the record now has this version.
    Written { version: u64 },
    /// Not written: the record is at another version (or gone: `current` is `None`).
    Conflict { current: Option<Versioned> },
}

/// A tenant-scoped store of versioned records, grouped by kind (sessions, approvals, ...).
#[async_trait]
pub trait RecordStore: Send + Sync + 'static {
    /// Creates a record only if none exists under this id; returns false if one does.
    async fn create(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        id: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    async fn get(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        id: &str,
    ) -> Result<Option<Versioned>, StoreError>;

    /// Writes `value` only if the record is at `expected_version`, and sets its TTL.
    async fn compare_and_swap(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        id: &str,
        expected_version: u64,
        value: Bytes,
        ttl: Duration,
    ) -> Result<CasOutcome, StoreError>;

    /// Extends a record's TTL (idle expiry of sessions); returns false if it does not exist.
    async fn touch(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        id: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    async fn delete(&self, tenant: &TenantId, kind: KeyKind, id: &str) -> Result<bool, StoreError>;

    /// Up to `limit` live records of one kind of this tenant, as `(id, record)`, in no
    /// particular order.
    async fn list(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError>;

    fn backend(&self) -> &'static str;
}
