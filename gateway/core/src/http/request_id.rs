//! Request ids: every request gets one (a client's own `x-request-id` is kept when it is
//! sane), it is echoed in the response, and error bodies built anywhere during the request
//! include it without the handler passing it around.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;

/// The header carrying the request id, in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest client-supplied request id that is kept; longer ones are replaced.
const MAX_CLIENT_REQUEST_ID: usize = 128;

/// The request id, as a request extension for handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being served by this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Middleware: assigns the request id (use with `axum::middleware::from_fn`).
pub async fn request_id_layer(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| is_sane(s))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = CURRENT.scope(id.clone(), next.run(req)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Client ids end up in logs and headers: keep them short and printable.
fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanity_of_client_ids() {
        assert!(is_sane("abc-123_x.y:z"));
        assert!(!is_sane(""));
        assert!(!is_sane("has space"));
        assert!(!is_sane("new\nline"));
        assert!(!is_sane(&"a".repeat(129)));
    }
}
