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
    #[error("{backend} did not answer within {timeout_ms} ms")]
    Timeout {
        backend: &'static str,
        timeout_ms: u64,
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

    /// Whether the error says the backend is down or slow (as opposed to a bad request),
    /// i.e. whether a failure policy applies.
    pub fn is_backend_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Timeout { .. }
        )
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_timeout() {
            StoreError::Timeout {
                backend: "redis",
                timeout_ms: 0,
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
