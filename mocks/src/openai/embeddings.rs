//! `POST /v1/embeddings`: deterministic vectors, `float` or `base64` encoded.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{authorize, error};
use crate::deliver::{Delivery, deliver};
use crate::embedding::{embed, to_base64};
use crate::provider::MockCore;
use crate::tokens;

#[derive(Deserialize)]
struct EmbeddingRequest {
    model: String,
    input: Value,
    encoding_format: Option<String>,
    dimensions: Option<usize>,
}

/// The model's native width, as OpenAI documents it.
fn native_dims(model: &str) -> usize {
    if model.contains("large") { 3072 } else { 1536 }
}

/// `input` is a string, an array of strings, an array of token ids, or an array of those.
fn inputs(input: &Value) -> Option<Vec<String>> {
    let decode = |ids: &[Value]| -> Option<String> {
        let ids: Option<Vec<u32>> = ids.iter().map(|v| v.as_u64().map(|n| n as u32)).collect();
        tiktoken_rs::o200k_base_singleton().decode(&ids?).ok()
    };
    match input {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) if items.iter().all(Value::is_number) && !items.is_empty() => {
            Some(vec![decode(items)?])
        }
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Array(ids) => decode(ids),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

pub async fn handle(
    State(core): State<Arc<MockCore>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = authorize(&core, &headers) {
        return r;
    }
    let fault = match core.fault_for(&headers) {
        Ok(f) => f,
        Err(e) => return error::invalid_request(&e.to_string(), None),
    };
    let req: EmbeddingRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error::invalid_request(&format!("Invalid request body: {e}"), None),
    };
    if !core.has_model(&req.model) {
        return error::model_not_found(&req.model);
    }
    let Some(texts) = inputs(&req.input).filter(|t| t.iter().all(|s| !s.is_empty())) else {
        return error::invalid_request(
            "'$.input' is invalid. Please check the API reference.",
            Some("input"),
        );
    };
    let dims = req.dimensions.unwrap_or_else(|| native_dims(&req.model));
    if dims == 0 || dims > native_dims(&req.model) {
        return error::invalid_request(
            &format!("This model does not support specifying dimensions of {dims}."),
            Some("dimensions"),
        );
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return error::invalid_request(
                &format!("'{other}' is not one of ['float', 'base64'] - 'encoding_format'"),
                Some("encoding_format"),
            );
        }
    };
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let v = embed(t, dims);
            let embedding = if base64 {
                json!(to_base64(&v))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": i, "embedding": embedding })
        })
        .collect();
    let prompt_tokens: u32 = texts.iter().map(|t| tokens::count(t)).sum();
    let value = json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": { "prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens },
    });
    deliver(
        fault,
        core.cancel.clone(),
        Delivery::Json {
            value,
            output_tokens: 0,
        },
        error::for_status,
    )
    .await
}
