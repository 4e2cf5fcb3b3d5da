//! `GET /v1/models` and `GET /v1/models/{model}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{authorize, error};
use crate::provider::MockCore;

/// A fixed creation time: the list must not change between calls.
const CREATED: u64 = 1_715_367_049;

fn model_object(id: &str) -> Value {
    json!({ "id": id, "object": "model", "created": CREATED, "owned_by": "system" })
}

pub async fn list(State(core): State<Arc<MockCore>>, headers: HeaderMap) -> Response {
    if let Some(r) = authorize(&core, &headers) {
        return r;
    }
    let data: Vec<Value> = core.models().iter().map(|m| model_object(m)).collect();
    axum::Json(json!({ "object": "list", "data": data })).into_response()
}

pub async fn retrieve(
    State(core): State<Arc<MockCore>>,
    headers: HeaderMap,
    Path(model): Path<String>,
) -> Response {
    if let Some(r) = authorize(&core, &headers) {
        return r;
    }
    if !core.has_model(&model) {
        return error::model_not_found(&model);
    }
    axum::Json(model_object(&model)).into_response()
}
