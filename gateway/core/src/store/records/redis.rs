//! The Redis record store, shared by every replica.
//!
//! Layout, per tenant and kind:
//! - each record is a hash `{v: value, ver: version}` at [`keys::tenant_key`]`(tenant, kind,
//!   [id])`, expiring with the record (`PEXPIRE`);
//! - an index sorted set at [`keys::tenant_index_key`]`(tenant, kind)`: member = id, score =
//!   the record's expiry time in ms. Expired members are dropped whenever the index is written
//!   or listed, and the index itself expires with its longest-lived record, so it never grows
//!   past the live records of recently active tenants.
//!
//! Every write is one Lua script, so check-and-write is atomic across replicas (two gateways
//! cannot both decide one approval). Expiry times come from the Redis server's clock (`TIME`)
//! so replicas with skewed clocks agree on them.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::Script;
use redis::aio::ConnectionManager;
use serde::Deserialize;

use crate::keys::{self, KeyKind};
use crate::store::StoreError;
use crate::store::records::limits::{self, Limits};
use crate::store::records::{CasOutcome, RecordStore, Versioned};
use crate::tenant::TenantId;

/// Most ids asked of the index (and hashes fetched in one pipeline) per round trip of `list`.
const LIST_PAGE: usize = 1000;

/// Lua shared by the scripts: the server clock in ms, and keeping the index in step with a
/// record whose TTL was just set. A macro, not a const, so `concat!` can prepend it.
macro_rules! lua_prelude {
    () => {
        r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function index(key, id, ttl)
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now))
  redis.call('ZADD', key, string.format('%.0f', now + ttl), id)
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
"#
    };
}

/// KEYS: record, index. ARGV: value, ttl ms, id. Returns 1 if created, 0 if the id exists.
const CREATE_LUA: &str = concat!(
    lua_prelude!(),
    r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local ttl = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', 1)
redis.call('PEXPIRE', KEYS[1], ttl)
index(KEYS[2], ARGV[3], ttl)
return 1
"#
);

/// KEYS: record, index. ARGV: expected version, value, ttl ms, id.
/// Returns {0, nil, nil} if missing, {1, value, version} on conflict, {2, nil, new version}.
/// Versions are compared as the decimal strings both sides write, so no float rounding.
const CAS_LUA: &str = concat!(
    lua_prelude!(),
    r#"
local cur = redis.call('HMGET', KEYS[1], 'v', 'ver')
if not cur[2] then
  return {0, false, false}
end
if cur[2] ~= ARGV[1] then
  return {1, cur[1], cur[2]}
end
local ttl = tonumber(ARGV[3])
local version = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('HSET', KEYS[1], 'v', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
index(KEYS[2], ARGV[4], ttl)
return {2, false, version}
"#
);

/// KEYS: record, index. ARGV: ttl ms, id. Returns 1 if the record exists (TTL set), else 0.
const TOUCH_LUA: &str = concat!(
    lua_prelude!(),
    r#"
local ttl = tonumber(ARGV[1])
if redis.call('PEXPIRE', KEYS[1], ttl) == 0 then
  return 0
end
index(KEYS[2], ARGV[2], ttl)
return 1
"#
);

/// KEYS: index. ARGV: offset, count. Drops expired members, returns live ids.
const LIST_LUA: &str = concat!(
    lua_prelude!(),
    r#"
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
return redis.call('ZRANGEBYSCORE', KEYS[1], string.format('(%.0f', now), '+inf',
  'LIMIT', ARGV[1], ARGV[2])
"#
);

/// The scripts, hashed once per process; invocations use `EVALSHA` and load on `NOSCRIPT`.
struct Scripts {
    create: Script,
    cas: Script,
    touch: Script,
    list: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create: Script::new(CREATE_LUA),
    cas: Script::new(CAS_LUA),
    touch: Script::new(TOUCH_LUA),
    list: Script::new(LIST_LUA),
});

/// Configuration of [`RedisRecordStore`] (the connection itself is shared and configured
/// apart).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisRecordConfig {
    /// Longest record id accepted, in bytes. Default 512.
    pub max_id_bytes: usize,
    /// Largest record value accepted. Default 1 MiB.
    pub max_value_bytes: usize,
}

impl Default for RedisRecordConfig {
    fn default() -> Self {
        Self {
            max_id_bytes: 512,
            max_value_bytes: 1024 * 1024,
        }
    }
}

impl RedisRecordConfig {
    /// Checks what serde cannot: non-zero limits, values within Redis's string limit.
    pub fn validate(&self) -> Result<(), String> {
        limits::validate_sizes(self.max_id_bytes, self.max_value_bytes)
    }
}

/// [`RecordStore`] on Redis. Every call is bounded by the connection's response timeout, so a
/// dead Redis makes calls fail fast with [`StoreError::Unavailable`] or
/// [`StoreError::Timeout`]; there is no fallback (sessions and approvals fail closed).
pub struct RedisRecordStore {
    conn: ConnectionManager,
    limits: Limits,
}

impl RedisRecordStore {
    /// Builds the store on a shared connection (see [`crate::store::redis_conn::connect`]).
    /// The config should have passed [`RedisRecordConfig::validate`].
    pub fn new(conn: ConnectionManager, config: RedisRecordConfig) -> Self {
        Self {
            conn,
            limits: Limits {
                max_id_bytes: config.max_id_bytes,
                max_value_bytes: config.max_value_bytes,
            },
        }
    }

    /// Fetches the hashes of `ids` in one pipeline; ids whose record is gone come back `None`.
    async fn fetch(
        &self,
        conn: &mut ConnectionManager,
        tenant: &TenantId,
        kind: KeyKind,
        ids: &[String],
    ) -> Result<Vec<Option<Versioned>>, StoreError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(keys::tenant_key(tenant, kind, &[id]))
                .arg("v")
                .arg("ver");
        }
        let rows: Vec<(Option<Vec<u8>>, Option<u64>)> = pipe.query_async(conn).await?;
        rows.into_iter().map(versioned).collect()
    }
}

/// A TTL in whole milliseconds, rounded up so a sub-millisecond TTL does not become 0 (which
/// would delete the record at once). TTLs are capped by [`limits::MAX_TTL`], so this fits.
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// A record from its `v` and `ver` fields; one without the other means something else wrote
/// the key.
fn versioned(fields: (Option<Vec<u8>>, Option<u64>)) -> Result<Option<Versioned>, StoreError> {
    match fields {
        (Some(value), Some(version)) => Ok(Some(Versioned {
            value: Bytes::from(value),
            version,
        })),
        (None, None) => Ok(None),
        _ => Err(StoreError::Corrupt {
            backend: "redis",
            message: "record hash lacks its value or its version".into(),
        }),
    }
}

#[async_trait]
impl RecordStore for RedisRecordStore {
    async fn create(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        id: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.limits.check_write(id, value.len(), ttl)?;
        let created: i64 = SCRIPTS
            .create
            .key(keys::tenant_key(tenant, kind, &[id]))
            .key(keys::tenant_index_key(tenant, kind))
            .arg(value.as_ref())
            .arg(ttl_millis(ttl))
            .arg(id)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(created == 1)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        id: &str,
    ) -> Result<Option<Versioned>, StoreError> {
        self.limits.check_id(id)?;
        let fields: (Option<Vec<u8>>, Option<u64>) = redis::cmd("HMGET")
            .arg(keys::tenant_key(tenant, kind, &[id]))
            .arg("v")
            .arg("ver")
            .query_async(&mut self.conn.clone())
            .await?;
        versioned(fields)
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
        self.limits.check_write(id, value.len(), ttl)?;
        let (status, current, version): (i64, Option<Vec<u8>>, Option<u64>) = SCRIPTS
            .cas
            .key(keys::tenant_key(tenant, kind, &[id]))
            .key(keys::tenant_index_key(tenant, kind))
            .arg(expected_version)
            .arg(value.as_ref())
            .arg(ttl_millis(ttl))
            .arg(id)
            .invoke_async(&mut self.conn.clone())
            .await?;
        match (status, version) {
            (0, _) => Ok(CasOutcome::Conflict { current: None }),
            (1, version) => Ok(CasOutcome::Conflict {
                current: versioned((current, version))?,
            }),
            (2, Some(version)) => Ok(CasOutcome::Written { version }),
            _ => Err(StoreError::Corrupt {
                backend: "redis",
                message: format!("compare-and-swap script answered status {status}"),
            }),
        }
    }

    async fn touch(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        id: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.limits.check_id(id)?;
        limits::check_ttl(ttl)?;
        let touched: i64 = SCRIPTS
            .touch
            .key(keys::tenant_key(tenant, kind, &[id]))
            .key(keys::tenant_index_key(tenant, kind))
            .arg(ttl_millis(ttl))
            .arg(id)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(touched == 1)
    }

    async fn delete(&self, tenant: &TenantId, kind: KeyKind, id: &str) -> Result<bool, StoreError> {
        self.limits.check_id(id)?;
        // MULTI/EXEC: the record and its index entry go together.
        let (removed, _unindexed): (u64, u64) = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(keys::tenant_key(tenant, kind, &[id]))
            .cmd("ZREM")
            .arg(keys::tenant_index_key(tenant, kind))
            .arg(id)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(removed > 0)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        kind: KeyKind,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let mut conn = self.conn.clone();
        let index = keys::tenant_index_key(tenant, kind);
        let mut out: Vec<(String, Versioned)> = Vec::with_capacity(limit.min(LIST_PAGE));
        // Only needed past the first page, when the index may have shifted under us.
        let mut seen: Option<HashSet<String>> = None;
        let mut offset = 0usize;
        while out.len() < limit {
            let want = (limit - out.len()).min(LIST_PAGE);
            let ids: Vec<String> = SCRIPTS
                .list
                .key(&index)
                .arg(offset)
                .arg(want)
                .invoke_async(&mut conn)
                .await?;
            let fetched = ids.len();
            if fetched == 0 {
                break;
            }
            let records = self.fetch(&mut conn, tenant, kind, &ids).await?;
            for (id, record) in ids.into_iter().zip(records) {
                // A member whose hash is gone expired an instant ago or was evicted by Redis.
                let Some(record) = record else { continue };
                if let Some(seen) = &mut seen
                    && !seen.insert(id.clone())
                {
                    continue;
                }
                out.push((id, record));
            }
            if fetched < want {
                break;
            }
            // Some members had no record: read on, past them, to fill the limit.
            offset += fetched;
            if seen.is_none() {
                seen = Some(out.iter().map(|(id, _)| id.clone()).collect());
            }
        }
        Ok(out)
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_and_max_ttl_fits_a_lua_number() {
        assert_eq!(ttl_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_millis(Duration::from_millis(1500)), 1500);
        // Scores are now + ttl in ms as Lua doubles: exact below 2^53.
        assert!(ttl_millis(limits::MAX_TTL) < (1 << 53) / 2);
    }

    #[test]
    fn versioned_needs_both_fields() {
        assert_eq!(versioned((None, None)).unwrap(), None);
        assert_eq!(
            versioned((Some(b"x".to_vec()), Some(3))).unwrap(),
            Some(Versioned {
                value: Bytes::from_static(b"x"),
                version: 3
            })
        );
        assert!(versioned((Some(b"x".to_vec()), None)).is_err());
        assert!(versioned((None, Some(1))).is_err());
    }

    #[test]
    fn config_defaults_validate() {
        assert_eq!(RedisRecordConfig::default().validate(), Ok(()));
        assert!(serde_json::from_str::<RedisRecordConfig>(r#"{"max_ids": 1}"#).is_err());
    }
}
