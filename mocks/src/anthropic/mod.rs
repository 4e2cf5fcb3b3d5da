//! Anthropic: `POST /v1/messages` (JSON and the SSE event sequence), `GET /v1/models`,
//! `x-api-key` + `anthropic-version` headers, and Anthropic's error shape.

mod error;
mod messages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::error::MockError;
use crate::provider::{MockCore, ProviderMock, provider_handle};

pub use error::error_response;

pub const DEFAULT_MODELS: &[&str] = &[
    "claude-opus-4-1",
    "claude-sonnet-4-5",
    "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-latest",
    "claude-3-5-haiku-latest",
    "claude-3-5-sonnet-20241022",
    "claude-3-haiku-20240307",
];

#[derive(Debug)]
pub struct AnthropicMock {
    inner: ProviderMock,
}

provider_handle!(AnthropicMock);

impl AnthropicMock {
    pub async fn start() -> Self {
        Self::bind(crate::server::ephemeral())
            .await
            .expect("bind an ephemeral port for the Anthropic mock")
    }

    pub async fn bind(addr: SocketAddr) -> Result<Self, MockError> {
        crate::tokens::warm_up();
        let inner = ProviderMock::spawn(addr, router(), DEFAULT_MODELS).await?;
        Ok(Self { inner })
    }

    /// What Anthropic SDKs take as base URL (they append `/v1/messages`).
    pub fn base_url(&self) -> String {
        self.origin()
    }
}

fn router() -> Router<Arc<MockCore>> {
    Router::new()
        .route("/v1/messages", post(messages::handle))
        .route("/v1/models", get(list_models))
        .fallback(|| async {
            error_response(StatusCode::NOT_FOUND, "not_found_error", "Not found")
        })
}

/// Anthropic's header checks (`Some` is the error to send): a valid key, then an `anthropic-version`. The key comes in
/// `x-api-key` or, as current official SDKs send it, `Authorization: Bearer`.
fn authorize(core: &MockCore, headers: &HeaderMap) -> Option<Response> {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    if !core.key_ok(key) {
        let msg = if key.is_none() {
            "x-api-key header is required"
        } else {
            "invalid x-api-key"
        };
        return Some(error_response(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            msg,
        ));
    }
    if headers.get("anthropic-version").is_none() {
        return Some(error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        ));
    }
    None
}

async fn list_models(State(core): State<Arc<MockCore>>, headers: HeaderMap) -> Response {
    if let Some(r) = authorize(&core, &headers) {
        return r;
    }
    let models = core.models();
    let data: Vec<_> = models
        .iter()
        .map(|m| json!({ "type": "model", "id": m, "display_name": m, "created_at": "2025-02-19T00:00:00Z" }))
        .collect();
    axum::Json(json!({
        "data": data,
        "has_more": false,
        "first_id": models.first(),
        "last_id": models.last(),
    }))
    .into_response()
}
