//! Choosing and building each store's backend from config. Backends are picked here, by
//! config, and nowhere else: layers only ever see the store traits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use serde::Deserialize;

use crate::config::{Validate, Validator};
use crate::http::ReadinessCheck;
use crate::store::ResilienceConfig;
use crate::store::StoreError;
use crate::store::budget::BudgetStore;
use crate::store::budget::embedded::EmbeddedBudgetStore;
use crate::store::budget::resilient::ResilientBudgetStore;
use crate::store::cache::ExactCache;
use crate::store::cache::embedded::{EmbeddedCache, EmbeddedCacheConfig};
use crate::store::cache::redis::{RedisCache, RedisCacheConfig};
use crate::store::cache::resilient::{ResilientCache, ResilientCacheConfig};
use crate::store::events::{
    ClickHouseSink, ClickHouseSinkConfig, EventSink, JsonlSink, JsonlSinkConfig,
};
use crate::store::ratelimit::RateLimiter;
use crate::store::ratelimit::embedded::EmbeddedRateLimiter;
use crate::store::ratelimit::resilient::ResilientRateLimiter;
use crate::store::records::RecordStore;
use crate::store::records::embedded::{EmbeddedRecordConfig, EmbeddedRecordStore};
use crate::store::records::redis::{RedisRecordConfig, RedisRecordStore};
use crate::store::redis_conn::{self, RedisTimeouts};

/// Where a key-value store keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvBackend {
    /// In this process: state is per node and lost on restart.
    #[default]
    Embedded,
    /// In Redis (`stores.redis`): shared by every replica.
    Redis,
}

/// Where events (request log, usage, audit) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventsBackend {
    #[default]
    Jsonl,
    Clickhouse,
}

/// The `stores` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoresConfig {
    /// The Redis server, required when any store uses `backend: redis`.
    pub redis: Option<RedisConfig>,
    pub rate_limit: ResilientKvConfig,
    pub budget: ResilientKvConfig,
    pub cache: CacheConfig,
    pub records: RecordsConfig,
    pub events: EventsConfig,
}

/// Connection to Redis. The URL may carry a password (`redis://:pw@host/`), so it is read like
/// a secret when given as `url_secret`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db` (no credentials: use `url_secret` for a URL that has them).
    #[serde(default)]
    pub url: Option<String>,
    /// The URL from an environment variable or file, for URLs with credentials.
    #[serde(default)]
    pub url_secret: Option<crate::config::Secret>,
    #[serde(default = "RedisConfig::default_connect", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long one command may take before it counts as a failure (and the store's failure
    /// policy applies). Keep it well under your request latency budget.
    #[serde(default = "RedisConfig::default_response", with = "humantime_serde")]
    pub response_timeout: Duration,
}

impl RedisConfig {
    fn default_connect() -> Duration {
        RedisTimeouts::default().connect
    }
    fn default_response() -> Duration {
        RedisTimeouts::default().response
    }
    fn url(&self) -> Option<&str> {
        self.url
            .as_deref()
            .or(self.url_secret.as_ref().map(|s| s.expose()))
    }
}

/// A store with a Redis backend and a failure policy (rate limits, budgets).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResilientKvConfig {
    pub backend: KvBackend,
    /// What happens while Redis fails (only with `backend: redis`).
    pub resilience: ResilienceConfig,
}

/// The exact cache.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub backend: KvBackend,
    pub embedded: EmbeddedCacheConfig,
    pub redis: RedisCacheConfig,
    /// A cache failure is a miss, never an error; this tunes how Redis is retried.
    pub resilience: ResilientCacheConfig,
}

/// Sessions and approvals. They fail closed: a session that cannot be read is not guessed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsConfig {
    pub backend: KvBackend,
    pub embedded: EmbeddedRecordConfig,
    pub redis: RedisRecordConfig,
}

/// The event sink.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    pub backend: EventsBackend,
    pub jsonl: JsonlSinkConfig,
    pub clickhouse: ClickHouseSinkConfig,
}

impl Validate for StoresConfig {
    fn validate(&self, v: &mut Validator) {
        let uses_redis = [
            ("rate_limit.backend", self.rate_limit.backend),
            ("budget.backend", self.budget.backend),
            ("cache.backend", self.cache.backend),
            ("records.backend", self.records.backend),
        ];
        for (field, backend) in uses_redis {
            if backend == KvBackend::Redis && self.redis.is_none() {
                v.error(
                    field,
                    "is `redis` but the `stores.redis` section is missing",
                );
            }
        }
        if let Some(redis) = &self.redis {
            match (&redis.url, &redis.url_secret) {
                (Some(_), Some(_)) => v.error("redis", "set `url` or `url_secret`, not both"),
                (None, None) => v.error("redis.url", "is required"),
                _ => {}
            }
            if let Some(url) = redis.url()
                && let Err(e) = redis::Client::open(url)
            {
                // The parser's message does not echo the URL, so no credential leaks here.
                v.error(
                    if redis.url.is_some() {
                        "redis.url"
                    } else {
                        "redis.url_secret"
                    },
                    format!("not a Redis URL ({:?})", e.kind()),
                );
            }
            v.check(
                !redis.response_timeout.is_zero(),
                "redis.response_timeout",
                "must be positive",
            );
            v.check(
                !redis.connect_timeout.is_zero(),
                "redis.connect_timeout",
                "must be positive",
            );
        }
        v.adopt(
            "rate_limit.resilience",
            self.rate_limit.resilience.validate(),
        );
        v.adopt("budget.resilience", self.budget.resilience.validate());
        v.adopt("cache.embedded", self.cache.embedded.validate());
        v.adopt("cache.redis", self.cache.redis.validate());
        v.adopt("cache.resilience", self.cache.resilience.validate());
        v.adopt("records.embedded", self.records.embedded.validate());
        v.adopt("records.redis", self.records.redis.validate());
        match self.events.backend {
            EventsBackend::Jsonl => v.adopt("events.jsonl", self.events.jsonl.validate()),
            EventsBackend::Clickhouse => {
                v.adopt("events.clickhouse", self.events.clickhouse.validate())
            }
        }
    }
}

/// Every store a layer may use, behind its trait.
pub struct Stores {
    pub rate_limiter: Arc<dyn RateLimiter>,
    pub budgets: Arc<dyn BudgetStore>,
    pub cache: Arc<dyn ExactCache>,
    pub records: Arc<dyn RecordStore>,
    pub events: Arc<dyn EventSink>,
    redis: Option<ConnectionManager>,
}

impl Stores {
    /// Connects the real backends the config names. Redis must answer at start (a typo in
    /// its URL should stop the deploy, not surface as 503s); ClickHouse may be down (events are
    /// spooled until it answers).
    pub async fn build(cfg: &StoresConfig) -> Result<Self, StoreError> {
        let redis = match &cfg.redis {
            Some(r) => {
                let url = r
                    .url()
                    .ok_or_else(|| StoreError::Invalid("stores.redis.url is required".into()))?;
                let timeouts = RedisTimeouts {
                    connect: r.connect_timeout,
                    response: r.response_timeout,
                };
                Some(redis_conn::connect(url, timeouts).await?)
            }
            None => None,
        };
        let conn = |what: &str| {
            redis.clone().ok_or_else(|| {
                StoreError::Invalid(format!("{what} uses redis but stores.redis is not set"))
            })
        };

        let rate_limiter: Arc<dyn RateLimiter> = match cfg.rate_limit.backend {
            KvBackend::Embedded => Arc::new(EmbeddedRateLimiter::new()),
            KvBackend::Redis => Arc::new(ResilientRateLimiter::redis(
                conn("rate_limit")?,
                &cfg.rate_limit.resilience,
            )),
        };
        let budgets: Arc<dyn BudgetStore> = match cfg.budget.backend {
            KvBackend::Embedded => Arc::new(EmbeddedBudgetStore::new()),
            KvBackend::Redis => Arc::new(ResilientBudgetStore::redis(
                conn("budget")?,
                &cfg.budget.resilience,
            )),
        };
        let cache: Arc<dyn ExactCache> = match cfg.cache.backend {
            KvBackend::Embedded => Arc::new(EmbeddedCache::new(cfg.cache.embedded.clone())),
            KvBackend::Redis => Arc::new(ResilientCache::new(
                Arc::new(RedisCache::new(conn("cache")?, cfg.cache.redis.clone())),
                cfg.cache.resilience.clone(),
            )),
        };
        let records: Arc<dyn RecordStore> = match cfg.records.backend {
            KvBackend::Embedded => Arc::new(EmbeddedRecordStore::new(cfg.records.embedded.clone())),
            KvBackend::Redis => Arc::new(RedisRecordStore::new(
                conn("records")?,
                cfg.records.redis.clone(),
            )),
        };
        let events: Arc<dyn EventSink> = match cfg.events.backend {
            EventsBackend::Jsonl => Arc::new(JsonlSink::start(&cfg.events.jsonl).await?),
            EventsBackend::Clickhouse => {
                Arc::new(ClickHouseSink::start(&cfg.events.clickhouse).await?)
            }
        };
        tracing::info!(
            rate_limit = rate_limiter.backend(),
            budget = budgets.backend(),
            cache = cache.backend(),
            records = records.backend(),
            events = events.backend(),
            "stores ready"
        );
        Ok(Self {
            rate_limiter,
            budgets,
            cache,
            records,
            events,
            redis,
        })
    }

    /// Readiness: Redis answers, when a store uses it. The event sink is not a readiness
    /// condition: while ClickHouse is down events are spooled and traffic can go on.
    pub fn readiness_checks(&self) -> Vec<Arc<dyn ReadinessCheck>> {
        let mut checks: Vec<Arc<dyn ReadinessCheck>> = Vec::new();
        if let Some(conn) = &self.redis {
            checks.push(Arc::new(RedisPing(conn.clone())));
        }
        checks
    }
}

struct RedisPing(ConnectionManager);

#[async_trait]
impl ReadinessCheck for RedisPing {
    fn name(&self) -> &str {
        "redis"
    }

    async fn check(&self) -> Result<(), String> {
        let mut conn = self.0.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| StoreError::from(e).to_string())
    }
}
