//! Ollama: `POST /api/chat` (NDJSON stream by default, or one object with
//! `"stream": false`), `POST /api/embed`, `GET /api/tags`, errors as `{"error": "..."}`.
//! Ollama has no auth; model names default to the `:latest` tag.

mod chat;
mod embed;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::error::MockError;
use crate::provider::{MockCore, ProviderMock, provider_handle};

pub const DEFAULT_MODELS: &[&str] = &[
    "llama3.2:latest",
    "llama3.1:8b",
    "qwen2.5:7b",
    "mistral:latest",
    "nomic-embed-text:latest",
    "all-minilm:latest",
];

#[derive(Debug)]
pub struct OllamaMock {
    inner: ProviderMock,
}

provider_handle!(OllamaMock);

impl OllamaMock {
    pub async fn start() -> Self {
        Self::bind(crate::server::ephemeral())
            .await
            .expect("bind an ephemeral port for the Ollama mock")
    }

    pub async fn bind(addr: SocketAddr) -> Result<Self, MockError> {
        crate::tokens::warm_up();
        let inner = ProviderMock::spawn(addr, router(), DEFAULT_MODELS).await?;
        Ok(Self { inner })
    }

    pub fn base_url(&self) -> String {
        self.origin()
    }
}

fn router() -> Router<Arc<MockCore>> {
    Router::new()
        .route("/api/chat", post(chat::handle))
        .route("/api/embed", post(embed::handle))
        .route("/api/tags", get(tags))
        .route("/", get(|| async { "Ollama is running" }))
}

pub fn error_response(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn for_status(status: StatusCode) -> Response {
    error_response(status, status.canonical_reason().unwrap_or("error"))
}

/// `llama3.2` and `llama3.2:latest` name the same model.
fn resolve(core: &MockCore, model: &str) -> Option<String> {
    let full = if model.contains(':') {
        model.to_owned()
    } else {
        format!("{model}:latest")
    };
    core.has_model(&full).then_some(full)
}

fn not_found(model: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &format!("model \"{model}\" not found, try pulling it first"),
    )
}

fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn tags(State(core): State<Arc<MockCore>>) -> Response {
    let models: Vec<_> = core
        .models()
        .iter()
        .map(|m| {
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(m.as_bytes()));
            let family = m.split([':', '.']).next().unwrap_or(m).to_owned();
            json!({
                "name": m, "model": m, "modified_at": "2025-01-01T00:00:00Z",
                "size": 2_019_393_189u64, "digest": digest,
                "details": { "parent_model": "", "format": "gguf", "family": family,
                             "families": [family], "parameter_size": "3.2B",
                             "quantization_level": "Q4_K_M" }
            })
        })
        .collect();
    axum::Json(json!({ "models": models })).into_response()
}
