//! Google's error shape: `{"error":{"code","message","status"}}`, with the canonical
//! status name for each HTTP code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

fn canonical(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

pub fn error_response(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "error": { "code": status.as_u16(), "message": message, "status": canonical(status) }
    });
    (status, axum::Json(body)).into_response()
}

pub fn for_status(status: StatusCode) -> Response {
    let message = match status.as_u16() {
        429 => "Resource has been exhausted (e.g. check quota).",
        503 => "The model is overloaded. Please try again later.",
        500..=599 => {
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
        }
        _ => "Request contains an invalid argument.",
    };
    error_response(status, message)
}
