//! `embedContent` and `batchEmbedContents`.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{error_response, for_status};
use crate::deliver::{Delivery, deliver};
use crate::embedding::embed;
use crate::provider::MockCore;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbedRequest {
    content: Content,
    output_dimensionality: Option<usize>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Value>,
}

#[derive(Deserialize)]
struct BatchRequest {
    requests: Vec<EmbedRequest>,
}

fn native_dims(model: &str) -> usize {
    if model.starts_with("gemini-embedding") {
        3072
    } else {
        768
    }
}

fn values(model: &str, req: &EmbedRequest) -> Value {
    let text: String = req
        .content
        .parts
        .iter()
        .filter_map(|p| p["text"].as_str())
        .collect();
    json!({ "values": embed(&text, req.output_dimensionality.unwrap_or_else(|| native_dims(model))) })
}

async fn send(core: &MockCore, headers: &HeaderMap, value: Value) -> Response {
    match core.fault_for(headers) {
        Ok(fault) => {
            deliver(
                fault,
                core.cancel.clone(),
                Delivery::Json {
                    value,
                    output_tokens: 0,
                },
                for_status,
            )
            .await
        }
        Err(e) => error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

pub async fn single(core: &MockCore, model: &str, headers: &HeaderMap, body: &Bytes) -> Response {
    match serde_json::from_slice::<EmbedRequest>(body) {
        Ok(req) => send(core, headers, json!({ "embedding": values(model, &req) })).await,
        Err(e) => error_response(
            StatusCode::BAD_REQUEST,
            &format!("Invalid JSON payload received. {e}"),
        ),
    }
}

pub async fn batch(core: &MockCore, model: &str, headers: &HeaderMap, body: &Bytes) -> Response {
    match serde_json::from_slice::<BatchRequest>(body) {
        Ok(req) => {
            let embeddings: Vec<Value> = req.requests.iter().map(|r| values(model, r)).collect();
            send(core, headers, json!({ "embeddings": embeddings })).await
        }
        Err(e) => error_response(
            StatusCode::BAD_REQUEST,
            &format!("Invalid JSON payload received. {e}"),
        ),
    }
}
