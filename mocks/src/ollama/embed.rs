//! `POST /api/embed`: `input` is a string or an array of strings.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{error_response, for_status, not_found, resolve};
use crate::deliver::{Delivery, deliver};
use crate::embedding::embed;
use crate::provider::MockCore;
use crate::tokens;

#[derive(Deserialize)]
struct EmbedRequest {
    model: String,
    input: Value,
    dimensions: Option<usize>,
}

fn native_dims(model: &str) -> usize {
    if model.starts_with("all-minilm") {
        384
    } else {
        768
    }
}

pub async fn handle(
    State(core): State<Arc<MockCore>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = match core.fault_for(&headers) {
        Ok(f) => f,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let req: EmbedRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Some(model) = resolve(&core, &req.model) else {
        return not_found(&req.model);
    };
    let inputs: Vec<String> = match &req.input {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => return error_response(StatusCode::BAD_REQUEST, "invalid input type"),
    };
    let dims = req.dimensions.unwrap_or_else(|| native_dims(&model));
    let embeddings: Vec<Vec<f32>> = inputs.iter().map(|t| embed(t, dims)).collect();
    let prompt_eval_count: u32 = inputs.iter().map(|t| tokens::count(t)).sum();
    let value = json!({
        "model": req.model,
        "embeddings": embeddings,
        "total_duration": 14_143_917u64,
        "load_duration": 1_019_500u64,
        "prompt_eval_count": prompt_eval_count,
    });
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
