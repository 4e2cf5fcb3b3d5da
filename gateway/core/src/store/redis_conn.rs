//! The shared Redis connection: one multiplexed, auto-reconnecting connection per process,
//! with bounded timeouts so a dead Redis makes calls fail fast instead of hanging requests.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::store::StoreError;

/// Timeouts for the Redis connection.
#[derive(Debug, Clone, Copy)]
pub struct RedisTimeouts {
    pub connect: Duration,
    pub response: Duration,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(500),
            response: Duration::from_millis(250),
        }
    }
}

/// Connects to Redis at `url`. Fails if the first connection cannot be made; afterwards the
/// manager reconnects by itself, and calls made while Redis is down fail within the timeouts.
pub async fn connect(url: &str, timeouts: RedisTimeouts) -> Result<ConnectionManager, StoreError> {
    let client = redis::Client::open(url).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.response))
        // Reconnect attempts are made in the background; a request never waits for more than
        // one of them.
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(StoreError::from)
}
