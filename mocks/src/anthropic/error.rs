//! Anthropic's error shape: `{"type":"error","error":{"type","message"},"request_id"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ids::random_id;

pub fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({
        "type": "error",
        "error": { "type": kind, "message": message },
        "request_id": random_id("req_", 24),
    });
    (status, axum::Json(body)).into_response()
}

/// The error type Anthropic documents for each status.
pub fn for_status(status: StatusCode) -> Response {
    let (kind, message) = match status.as_u16() {
        400 => ("invalid_request_error", "Invalid request"),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        ),
        529 | 503 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    };
    error_response(status, kind, message)
}
