//! The in-process record store: one map of records per (tenant, kind), behind a concurrent
//! map, on a monotonic clock.
//!
//! Every operation on a record runs under its scope's shard lock and never awaits, so
//! create/compare-and-swap are atomic. Expired records are invisible at once (each read checks
//! the expiry) and removed by a background sweep, so memory follows the live records.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::keys::KeyKind;
use crate::store::StoreError;
use crate::store::records::limits::{self, Limits};
use crate::store::records::{CasOutcome, RecordStore, Versioned};
use crate::tenant::TenantId;

/// Configuration of [`EmbeddedRecordStore`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedRecordConfig {
    /// Most live records of one kind one tenant may hold; `create` past it fails with
    /// [`StoreError::Invalid`], so one tenant cannot exhaust the process's memory. Default
    /// 100 000.
    pub max_records_per_scope: usize,
    /// Longest record id accepted, in bytes. Default 512.
    pub max_id_bytes: usize,
    /// Largest record value accepted. Default 1 MiB.
    pub max_value_bytes: usize,
    /// How often expired records are removed. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
}

impl Default for EmbeddedRecordConfig {
    fn default() -> Self {
        Self {
            max_records_per_scope: 100_000,
            max_id_bytes: 512,
            max_value_bytes: 1024 * 1024,
            sweep_interval: Duration::from_secs(30),
        }
    }
}

impl EmbeddedRecordConfig {
    /// Checks what serde cannot: non-zero limits and interval.
    pub fn validate(&self) -> Result<(), String> {
        limits::validate_sizes(self.max_id_bytes, self.max_value_bytes)?;
        if self.max_records_per_scope == 0 {
            return Err("max_records_per_scope must be greater than 0".into());
        }
        if self.sweep_interval.is_zero() {
            return Err("sweep_interval must be greater than 0".into());
        }
        Ok(())
    }

    fn limits(&self) -> Limits {
        Limits {
            max_id_bytes: self.max_id_bytes,
            max_value_bytes: self.max_value_bytes,
        }
    }
}

/// One tenant's records of one kind. The kind is held as its key string, so that
/// `KeyKind::Other("session")` and `KeyKind::Session` name the same records, as they do in
/// Redis.
type Scope = (TenantId, &'static str);

struct Record {
    value: Bytes,
    version: u64,
    expires_at: Instant,
}

impl Record {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at > now
    }

    fn versioned(&self) -> Versioned {
        Versioned {
            value: self.value.clone(),
            version: self.version,
        }
    }
}

struct Inner {
    scopes: DashMap<Scope, HashMap<String, Record>>,
    config: EmbeddedRecordConfig,
    limits: Limits,
}

impl Inner {
    fn sweep(&self) {
        let now = Instant::now();
        self.scopes.retain(|_, records| {
            records.retain(|_, record| record.is_live(now));
            !records.is_empty()
        });
    }
}

/// In-process [`RecordStore`]. Records live in this process only: use the Redis backend when
/// several replicas must see the same sessions and approvals.
pub struct EmbeddedRecordStore {
    inner: Arc<Inner>,
    sweeper: JoinHandle<()>,
}

impl EmbeddedRecordStore {
    /// Builds the store and starts its sweeper task. The config should have passed
    /// [`EmbeddedRecordConfig::validate`].
    ///
    /// # Panics
    /// Outside a Tokio runtime (the sweeper is a Tokio task).
    pub fn new(config: EmbeddedRecordConfig) -> Self {
        let limits = config.limits();
        let interval = config.sweep_interval;
        let inner = Arc::new(Inner {
            scopes: DashMap::new(),
            config,
            limits,
        });
        let sweeper = tokio::spawn(sweep_until_dropped(Arc::downgrade(&inner), interval));
        Self { inner, sweeper }
    }

    /// Records held, including expired ones the sweeper has not removed yet.
    pub fn stored_records(&self) -> usize {
        self.inner.scopes.iter().map(|scope| scope.len()).sum()
    }

    fn scope(tenant: &TenantId, kind: KeyKind) -> Scope {
        (tenant.clone(), kind.as_str())
    }

    fn expiry(ttl: Duration) -> Result<Instant, StoreError> {
        limits::check_ttl(ttl)?;
        Instant::now()
            .checked_add(ttl)
            .ok_or_else(|| StoreError::Invalid(format!("record TTL {ttl:?} overflows")))
    }
}

impl Drop for EmbeddedRecordStore {
    fn drop(&mut self) {
        self.sweeper.abort();
    }
}

async fn sweep_until_dropped(inner: Weak<Inner>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate and there is nothing to sweep yet.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.sweep();
    }
}

#[async_trait]
impl RecordStore for EmbeddedRecordStore {
    async fn create(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        id: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.inner.limits.check_write(id, value.len(), ttl)?;
        let expires_at = Self::expiry(ttl)?;
        let now = Instant::now();
        let mut records = self
            .inner
            .scopes
            .entry(Self::scope(tenant, kind))
            .or_default();
        if records.get(id).is_some_and(|r| r.is_live(now)) {
            return Ok(false);
        }
        let cap = self.inner.config.max_records_per_scope;
        if records.len() >= cap && !records.contains_key(id) {
            // Expired records still count until swept; drop them before refusing.
            records.retain(|_, record| record.is_live(now));
            if records.len() >= cap {
                return Err(StoreError::Invalid(format!(
                    "tenant {tenant} already holds {cap} {} records",
                    kind.as_str()
                )));
            }
        }
        records.insert(
            id.to_owned(),
            Record {
                value,
                version: 1,
                expires_at,
            },
        );
        Ok(true)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        id: &str,
    ) -> Result<Option<Versioned>, StoreError> {
        self.inner.limits.check_id(id)?;
        let now = Instant::now();
        let Some(records) = self.inner.scopes.get(&Self::scope(tenant, kind)) else {
            return Ok(None);
        };
        Ok(records
            .get(id)
            .filter(|r| r.is_live(now))
            .map(Record::versioned))
    }

    async fn compare_and_swap(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        id: &str,
        expected_version: u64,
        value: Bytes,
        ttl: Duration,
    ) -> Result<CasOutcome, StoreError> {
        self.inner.limits.check_write(id, value.len(), ttl)?;
        let expires_at = Self::expiry(ttl)?;
        let now = Instant::now();
        let Some(mut records) = self.inner.scopes.get_mut(&Self::scope(tenant, kind)) else {
            return Ok(CasOutcome::Conflict { current: None });
        };
        match records.get_mut(id) {
            None => return Ok(CasOutcome::Conflict { current: None }),
            Some(record) if record.is_live(now) => {
                if record.version != expected_version {
                    return Ok(CasOutcome::Conflict {
                        current: Some(record.versioned()),
                    });
                }
                record.version += 1;
                record.value = value;
                record.expires_at = expires_at;
                return Ok(CasOutcome::Written {
                    version: record.version,
                });
            }
            Some(_) => {}
        }
        // Expired but not swept yet: it is gone for every caller, so drop it now.
        records.remove(id);
        Ok(CasOutcome::Conflict { current: None })
    }

    async fn touch(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        id: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.inner.limits.check_id(id)?;
        let expires_at = Self::expiry(ttl)?;
        let now = Instant::now();
        let Some(mut records) = self.inner.scopes.get_mut(&Self::scope(tenant, kind)) else {
            return Ok(false);
        };
        match records.get_mut(id) {
            Some(record) if record.is_live(now) => {
                record.expires_at = expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete(&self, tenant: &TenantId, kind: KeyKind, id: &str) -> Result<bool, StoreError> {
        self.inner.limits.check_id(id)?;
        let now = Instant::now();
        let Some(mut records) = self.inner.scopes.get_mut(&Self::scope(tenant, kind)) else {
            return Ok(false);
        };
        Ok(records.remove(id).is_some_and(|r| r.is_live(now)))
    }

    async fn list(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let now = Instant::now();
        let Some(records) = self.inner.scopes.get(&Self::scope(tenant, kind)) else {
            return Ok(Vec::new());
        };
        Ok(records
            .iter()
            .filter(|(_, record)| record.is_live(now))
            .take(limit)
            .map(|(id, record)| (id.clone(), record.versioned()))
            .collect())
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_validate_and_unknown_fields_are_refused() {
        assert_eq!(EmbeddedRecordConfig::default().validate(), Ok(()));
        let config: EmbeddedRecordConfig =
            serde_json::from_str(r#"{"sweep_interval": "100ms"}"#).unwrap();
        assert_eq!(config.sweep_interval, Duration::from_millis(100));
        let zero: EmbeddedRecordConfig =
            serde_json::from_str(r#"{"sweep_interval": "0s"}"#).unwrap();
        assert!(zero.validate().is_err());
        assert!(serde_json::from_str::<EmbeddedRecordConfig>(r#"{"max_records": 1}"#).is_err());
    }
}
