//! Gemini (Generative Language API v1beta): `models/{model}:generateContent`,
//! `:streamGenerateContent` (`?alt=sse`, or a JSON array without it), `:embedContent`,
//! `:batchEmbedContents`, `GET models`; key in `x-goog-api-key` or `?key=`; Google's error shape.

mod embed;
mod error;
mod generate;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::error::MockError;
use crate::provider::{MockCore, ProviderMock, provider_handle};

pub use error::error_response;

pub const DEFAULT_MODELS: &[&str] = &[
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-1.5-pro",
    "gemini-1.5-flash",
    "text-embedding-004",
    "gemini-embedding-001",
];

#[derive(Debug)]
pub struct GeminiMock {
    inner: ProviderMock,
}

provider_handle!(GeminiMock);

impl GeminiMock {
    pub async fn start() -> Self {
        Self::bind(crate::server::ephemeral())
            .await
            .expect("bind an ephemeral port for the Gemini mock")
    }

    pub async fn bind(addr: SocketAddr) -> Result<Self, MockError> {
        crate::tokens::warm_up();
        let inner = ProviderMock::spawn(addr, router(), DEFAULT_MODELS).await?;
        Ok(Self { inner })
    }

    /// The origin; Google SDKs append `/v1beta/models/...` themselves.
    pub fn base_url(&self) -> String {
        self.origin()
    }
}

fn router() -> Router<Arc<MockCore>> {
    Router::new()
        .route("/v1beta/models", get(list_models))
        // One path segment holds `{model}:{method}`, e.g. `gemini-2.0-flash:generateContent`.
        .route("/v1beta/models/{target}", post(dispatch))
        .fallback(|| async {
            error_response(StatusCode::NOT_FOUND, "Requested entity was not found.")
        })
}

#[derive(serde::Deserialize)]
struct KeyQuery {
    key: Option<String>,
    alt: Option<String>,
}

fn authorize(core: &MockCore, headers: &HeaderMap, query: &KeyQuery) -> Option<Response> {
    let key = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .or(query.key.as_deref());
    if core.key_ok(key) {
        return None;
    }
    Some(match key {
        None => error_response(
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        ),
        Some(_) => error_response(
            StatusCode::BAD_REQUEST,
            "API key not valid. Please pass a valid API key.",
        ),
    })
}

async fn dispatch(
    State(core): State<Arc<MockCore>>,
    Path(target): Path<String>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = authorize(&core, &headers, &query) {
        return r;
    }
    let Some((model, method)) = target.split_once(':') else {
        return error_response(StatusCode::NOT_FOUND, "Requested entity was not found.");
    };
    if !core.has_model(model) {
        return error_response(
            StatusCode::NOT_FOUND,
            &format!(
                "models/{model} is not found for API version v1beta, or is not supported for \
                 {method}. Call ListModels to see the list of available models and their \
                 supported methods."
            ),
        );
    }
    match method {
        "generateContent" => {
            generate::handle(&core, model, &headers, &body, generate::Mode::Unary).await
        }
        "streamGenerateContent" => {
            let mode = if query.alt.as_deref() == Some("sse") {
                generate::Mode::Sse
            } else {
                generate::Mode::JsonArray
            };
            generate::handle(&core, model, &headers, &body, mode).await
        }
        "embedContent" => embed::single(&core, model, &headers, &body).await,
        "batchEmbedContents" => embed::batch(&core, model, &headers, &body).await,
        other => error_response(
            StatusCode::NOT_FOUND,
            &format!("Method {other} is not supported by this mock."),
        ),
    }
}

async fn list_models(
    State(core): State<Arc<MockCore>>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = authorize(&core, &headers, &query) {
        return r;
    }
    let models: Vec<_> = core
        .models()
        .iter()
        .map(|m| {
            let methods = if m.contains("embedding") {
                json!(["embedContent", "batchEmbedContents"])
            } else {
                json!(["generateContent", "streamGenerateContent", "countTokens"])
            };
            json!({ "name": format!("models/{m}"), "version": "001", "displayName": m,
                    "supportedGenerationMethods": methods })
        })
        .collect();
    axum::Json(json!({ "models": models })).into_response()
}
