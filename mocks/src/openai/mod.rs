//! OpenAI: `POST /v1/chat/completions` (JSON and SSE), `POST /v1/embeddings`,
//! `GET /v1/models[/{model}]`, with OpenAI's error object and bearer-key auth.

mod chat;
mod embeddings;
mod error;
mod models;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};

use crate::error::MockError;
use crate::provider::{MockCore, ProviderMock, provider_handle};

pub use error::error_response;

pub const DEFAULT_MODELS: &[&str] = &[
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4-turbo",
    "gpt-3.5-turbo",
    "o3-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
];

#[derive(Debug)]
pub struct OpenAiMock {
    inner: ProviderMock,
}

provider_handle!(OpenAiMock);

impl OpenAiMock {
    /// Starts on an ephemeral loopback port; panics if the OS refuses one.
    pub async fn start() -> Self {
        Self::bind(crate::server::ephemeral())
            .await
            .expect("bind an ephemeral port for the OpenAI mock")
    }

    pub async fn bind(addr: SocketAddr) -> Result<Self, MockError> {
        crate::tokens::warm_up();
        let inner = ProviderMock::spawn(addr, router(), DEFAULT_MODELS).await?;
        Ok(Self { inner })
    }

    /// What an OpenAI SDK takes as its base URL: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.origin())
    }
}

fn router() -> Router<Arc<MockCore>> {
    Router::new()
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/embeddings", post(embeddings::handle))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{model}", get(models::retrieve))
        .fallback(error::unknown_route)
}

/// OpenAI's bearer-key check: `Some` is the 401 to send instead of serving the request.
fn authorize(core: &MockCore, headers: &HeaderMap) -> Option<Response> {
    let key = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if core.key_ok(key) {
        return None;
    }
    let message = match key {
        None | Some("") => "You didn't provide an API key. You need to provide your API key in an \
                            Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            .to_owned(),
        Some(k) => format!(
            "Incorrect API key provided: {}. You can find your API key at \
             https://platform.openai.com/account/api-keys.",
            error::redact_key(k)
        ),
    };
    Some(error_response(
        axum::http::StatusCode::UNAUTHORIZED,
        &message,
        "invalid_request_error",
        Some("invalid_api_key"),
        None,
    ))
}
