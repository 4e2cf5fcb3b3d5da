//! The Redis rate limiter: every replica shares the buckets, and one Lua script per check
//! makes the all-or-none decision atomic.
//!
//! The script reads the clock with `TIME`, so replicas with skewed clocks still agree, and
//! returns that clock and the old TATs; the decision reported to the caller is then computed
//! in Rust by [`gcra`], the same code the embedded backend runs. The script only repeats the
//! admission comparison, which it needs in order to write all buckets or none.

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use crate::store::StoreError;
use crate::store::ratelimit::gcra;
use crate::store::ratelimit::{Decision, Limit, RateLimiter};
use crate::tenant::TenantId;

/// KEYS: the buckets. ARGV[1]: cost; then per bucket i, ARGV[2i]: emission interval and
/// ARGV[2i+1]: tolerance, both in µs. Returns `{now_us, admitted (0/1), tat_1, ..., tat_n}`
/// with the TATs as they were before this check (0 for an absent bucket).
///
/// A bucket's key expires when its TAT passes: from then on it holds no information. TATs
/// are written with `%.0f` because `tostring` would print large numbers in exponent form
/// and lose digits.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local n = #KEYS
local out = {now, 1}
local new_tats = {}
for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local new_tat = math.max(tat, now) + cost * interval
  if new_tat - now > tolerance then
    out[2] = 0
  end
  new_tats[i] = new_tat
  out[i + 2] = tat
end
if out[2] == 1 and cost > 0 then
  for i = 1, n do
    local ttl_ms = math.max(1, math.ceil((new_tats[i] - now) / 1000))
    redis.call('SET', KEYS[i], string.format('%.0f', new_tats[i]), 'PX', ttl_ms)
  end
end
return out
";

/// Rate limiter whose buckets live in Redis, shared by every replica.
#[derive(Clone)]
pub struct RedisRateLimiter {
    conn: ConnectionManager,
    script: Script,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter").finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// A limiter on the shared connection (see [`crate::store::redis_conn::connect`]).
    pub fn new(conn: ConnectionManager) -> Self {
        Self {
            conn,
            script: Script::new(GCRA_SCRIPT),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(
        &self,
        tenant: &TenantId,
        limits: &[Limit],
        cost: u32,
    ) -> Result<Decision, StoreError> {
        let buckets = gcra::buckets(tenant, limits)?;
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(cost);
        for bucket in &buckets {
            invocation
                .key(&bucket.key)
                .arg(bucket.params.interval_us)
                .arg(bucket.params.tolerance_us);
        }
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        decide(&buckets, cost, &reply)
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// Turns the script's reply into the decision, checking that Rust and Lua agree on it.
fn decide(buckets: &[gcra::Bucket], cost: u32, reply: &[i64]) -> Result<Decision, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        backend: "redis",
        message,
    };
    let [now, admitted, tats @ ..] = reply else {
        return Err(corrupt(format!("rate-limit script returned {reply:?}")));
    };
    if tats.len() != buckets.len() {
        return Err(corrupt(format!(
            "rate-limit script returned {} TATs for {} buckets",
            tats.len(),
            buckets.len()
        )));
    }
    let micros = |v: i64| {
        u64::try_from(v).map_err(|_| corrupt(format!("negative time {v} from rate-limit script")))
    };
    let now = micros(*now)?;
    let outcomes = buckets
        .iter()
        .zip(tats)
        .map(|(bucket, &tat)| Ok(gcra::evaluate(&bucket.params, micros(tat)?, now, cost)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let allowed = outcomes.iter().all(|o| o.allowed);
    if allowed != (*admitted == 1) {
        return Err(corrupt(format!(
            "rate-limit script decided {admitted} where gcra decided {allowed}"
        )));
    }
    Ok(gcra::most_restrictive(outcomes)
        .expect("gcra::buckets refuses an empty list")
        .decision())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::ratelimit::Quota;

    fn buckets() -> Vec<gcra::Bucket> {
        let t = TenantId::new("acme").unwrap();
        let q = Quota::per(10, Duration::from_secs(1));
        gcra::buckets(
            &t,
            &[
                Limit {
                    bucket: "a".into(),
                    quota: q,
                },
                Limit {
                    bucket: "b".into(),
                    quota: q,
                },
            ],
        )
        .unwrap()
    }

    #[test]
    fn reply_is_decoded_with_gcra() {
        let now = 1_700_000_000_000_000_i64;
        // Bucket b is 0.5 s ahead: 5 units left before this request, 4 after.
        let d = decide(&buckets(), 1, &[now, 1, 0, now + 500_000]).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 4);
        assert_eq!(d.reset_after, Duration::from_millis(600));
    }

    #[test]
    fn malformed_or_disagreeing_replies_are_corrupt() {
        let now = 1_700_000_000_000_000_i64;
        for reply in [
            vec![],
            vec![now, 1],
            vec![now, 1, 0],
            vec![now, 1, 0, 0, 0],
            vec![-1, 1, 0, 0],
            // Lua says no where the arithmetic says yes.
            vec![now, 0, 0, 0],
        ] {
            assert!(
                matches!(
                    decide(&buckets(), 1, &reply),
                    Err(StoreError::Corrupt { .. })
                ),
                "{reply:?}"
            );
        }
    }
}
