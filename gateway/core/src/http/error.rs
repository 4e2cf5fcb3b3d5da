//! The one place errors become HTTP responses for L1 and L3 (and for every layer's operational
//! endpoints): `{"error":{"code","message","request_id"}}` with the status users expect.
//! L2 maps the same errors to OpenAI's error object in its own crate.

use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::identity::assertion::AssertionError;
use crate::store::StoreError;

/// An error as the client sees it. `message` must never contain secrets or another tenant's
/// data: build it from what the client sent or from a fixed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable: clients switch on it.
    pub code: &'static str,
    pub message: String,
    /// For 429 and 503: when to try again.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "rate limit exceeded",
        )
        .with_retry_after(retry_after)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                request_id: super::request_id::current(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(after) = self.retry_after {
            // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(message) => ApiError::bad_request("invalid_request", message),
            // The backend's own message may name hosts or keys: log it, don't send it.
            other => {
                tracing::warn!(error = %other, "store failure surfaced to a client");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "a backing store is unavailable; try again shortly",
                )
                .with_retry_after(Duration::from_secs(1))
            }
        }
    }
}

impl From<AssertionError> for ApiError {
    fn from(e: AssertionError) -> Self {
        match e {
            AssertionError::Signing(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "could not issue identity",
            ),
            AssertionError::Expired => ApiError::unauthorized("identity_expired", e.to_string()),
            other => ApiError::unauthorized("invalid_identity", other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(r: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn error_shape_and_retry_after() {
        let r = ApiError::rate_limited(Duration::from_millis(1500)).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let body = body_json(r).await;
        assert_eq!(body["error"]["code"], "rate_limited");
        assert!(body["error"]["message"].is_string());
    }

    #[tokio::test]
    async fn store_failures_do_not_leak_backend_details() {
        let e = StoreError::unavailable("redis", "connect to 10.1.2.3:6379 refused");
        let r = ApiError::from(e).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = body_json(r).await.to_string();
        assert!(!body.contains("10.1.2.3"), "{body}");
    }

    #[tokio::test]
    async fn assertion_failures_are_401() {
        let r = ApiError::from(AssertionError::WrongAudience).into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_json(r).await["error"]["code"], "invalid_identity");
    }
}
