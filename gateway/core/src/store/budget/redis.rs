//! The Redis budget store: counters shared by every replica, one Lua script per reservation
//! or adjustment so the all-or-none check across budgets is atomic.
//!
//! Each counter is an integer key per budget and window, expiring ([`PEXPIREAT`]) an hour
//! after its window ends.
//!
//! [`PEXPIREAT`]: https://redis.io/docs/latest/commands/pexpireat/

use std::time::SystemTime;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use crate::store::StoreError;
use crate::store::budget::period::{self, Window, exceeded};
use crate::store::budget::{BudgetLimit, BudgetStore, Period, Reservation};
use crate::tenant::TenantId;

/// KEYS: the counters. ARGV[1]: amount; ARGV[1+i]: limit of counter i; ARGV[1+n+i]: its
/// expiry in Unix ms. Returns `{1, 0, 0}` when granted, or `{0, i, used}` for the first
/// counter i without room (nothing is written then).
const RESERVE_SCRIPT: &str = r"
local amount = tonumber(ARGV[1])
local n = #KEYS
for i = 1, n do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used + amount > tonumber(ARGV[1 + i]) then
    return {0, i, used}
  end
end
if amount > 0 then
  for i = 1, n do
    redis.call('INCRBY', KEYS[i], ARGV[1])
    redis.call('PEXPIREAT', KEYS[i], ARGV[1 + n + i])
  end
end
return {1, 0, 0}
";

/// KEYS: the counters. ARGV[1]: delta (may be negative); ARGV[1+i]: expiry of counter i in
/// Unix ms. A counter that would drop to zero or below is deleted, which reads as zero.
const ADJUST_SCRIPT: &str = r"
for i = 1, #KEYS do
  local used = redis.call('INCRBY', KEYS[i], ARGV[1])
  if used <= 0 then
    redis.call('DEL', KEYS[i])
  else
    redis.call('PEXPIREAT', KEYS[i], ARGV[1 + i])
  end
end
return 0
";

/// Budget store whose counters live in Redis, shared by every replica.
#[derive(Clone)]
pub struct RedisBudgetStore {
    conn: ConnectionManager,
    reserve: Script,
    adjust: Script,
}

impl std::fmt::Debug for RedisBudgetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBudgetStore").finish_non_exhaustive()
    }
}

impl RedisBudgetStore {
    /// A store on the shared connection (see [`crate::store::redis_conn::connect`]).
    pub fn new(conn: ConnectionManager) -> Self {
        Self {
            conn,
            reserve: Script::new(RESERVE_SCRIPT),
            adjust: Script::new(ADJUST_SCRIPT),
        }
    }
}

fn corrupt(message: String) -> StoreError {
    StoreError::Corrupt {
        backend: "redis",
        message,
    }
}

fn usage_from(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(format!("negative budget usage {value}")))
}

#[async_trait]
impl BudgetStore for RedisBudgetStore {
    async fn reserve(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        amount: u64,
        now: SystemTime,
    ) -> Result<Reservation, StoreError> {
        period::check_amount(amount)?;
        let counters = period::counters(tenant, limits, now)?;
        let mut invocation = self.reserve.prepare_invoke();
        invocation.arg(amount);
        for (limit, counter) in limits.iter().zip(&counters) {
            invocation.key(&counter.key).arg(limit.limit);
        }
        for counter in &counters {
            invocation.arg(counter.window.expires_at_ms());
        }
        let mut conn = self.conn.clone();
        let reply: (i64, usize, i64) = invocation.invoke_async(&mut conn).await?;
        match reply {
            (1, _, _) => Ok(Reservation::Granted { amount }),
            (0, i, used) if (1..=limits.len()).contains(&i) => Ok(exceeded(
                &limits[i - 1],
                usage_from(used)?,
                &counters[i - 1].window,
            )),
            other => Err(corrupt(format!("budget script returned {other:?}"))),
        }
    }

    async fn adjust(
        &self,
        tenant: &TenantId,
        limits: &[BudgetLimit],
        delta: i64,
        reserved_at: SystemTime,
    ) -> Result<(), StoreError> {
        period::check_delta(delta)?;
        let counters = period::counters(tenant, limits, reserved_at)?;
        if delta == 0 {
            return Ok(());
        }
        let mut invocation = self.adjust.prepare_invoke();
        invocation.arg(delta);
        for counter in &counters {
            invocation
                .key(&counter.key)
                .arg(counter.window.expires_at_ms());
        }
        let mut conn = self.conn.clone();
        let _: i64 = invocation.invoke_async(&mut conn).await?;
        Ok(())
    }

    async fn usage(
        &self,
        tenant: &TenantId,
        name: &str,
        period: Period,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        let window = Window::containing(period, now)?;
        let key = period::counter_key(tenant, name, &window);
        let mut conn = self.conn.clone();
        let used: Option<i64> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
        used.map_or(Ok(0), usage_from)
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
