//! The error every store backend returns.

/// A store operation failed. Callers decide by variant whether to fail open, fail closed or
/// fall back locally (see [`crate::store::FailurePolicy`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or refused the operation (connection refused, reset,
    /// server error). Transient by nature.
    #[error("{backend} is unavailable: {message}")]
    Unavailable {
        backend: &'static str,
        message: String,
    },
    /// The backend did not answer within the configured time.
    #[error("{backend} did not answer {}", Within(*.timeout_ms))]
    Timeout {
        backend: &'static str,
        /// The deadline that ran out, when the code that gave up knows it (a client library's
        /// own timeout error does not say which).
        timeout_ms: Option<u64>,
    },
    /// The backend returned data this version cannot read.
    #[error("{backend} returned unreadable data: {message}")]
    Corrupt {
        backend: &'static str,
        message: String,
    },
    /// The caller asked for something the store cannot do (bad quota, oversized value, ...).
    #[error("invalid store request: {0}")]
    Invalid(String),
}

impl StoreError {
    pub fn unavailable(backend: &'static str, err: impl std::fmt::Display) -> Self {
        StoreError::Unavailable {
            backend,
            message: err.to_string(),
        }
    }

    /// The backend did not answer within `timeout`.
    pub fn timeout(backend: &'static str, timeout: std::time::Duration) -> Self {
        StoreError::Timeout {
            backend,
            timeout_ms: Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// Whether the error says the backend is down or slow (as opposed to a bad request),
    /// i.e. whether a failure policy applies.
    pub fn is_backend_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Timeout { .. }
        )
    }
}

/// The end of a timeout's message: the deadline when known, never a made-up one.
struct Within(Option<u64>);

impl std::fmt::Display for Within {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ms) => write!(f, "within {ms} ms"),
            None => f.write_str("in time"),
        }
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_timeout() {
            // The connection's response timeout, which the error does not carry.
            StoreError::Timeout {
                backend: "redis",
                timeout_ms: None,
            }
        } else if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            StoreError::unavailable("redis", e)
        } else {
            match e.kind() {
                redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType => {
                    StoreError::Corrupt {
                        backend: "redis",
                        message: e.to_string(),
                    }
                }
                _ => StoreError::unavailable("redis", e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timeout_messages_state_only_a_known_deadline() {
        let known = StoreError::timeout("etcd", Duration::from_millis(1500));
        assert_eq!(known.to_string(), "etcd did not answer within 1500 ms");
        let unknown = StoreError::Timeout {
            backend: "redis",
            timeout_ms: None,
        };
        assert_eq!(unknown.to_string(), "redis did not answer in time");
        assert!(known.is_backend_failure() && unknown.is_backend_failure());
    }

    #[test]
    fn a_redis_timeout_does_not_invent_a_deadline() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let error = StoreError::from(redis::RedisError::from(io));
        assert!(
            matches!(
                error,
                StoreError::Timeout {
                    backend: "redis",
                    timeout_ms: None
                }
            ),
            "{error:?}"
        );
        assert!(!error.to_string().contains("0 ms"), "{error}");
    }
}
