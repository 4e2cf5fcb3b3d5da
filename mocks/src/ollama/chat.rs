//! `POST /api/chat`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{error_response, for_status, not_found, resolve, rfc3339_now};
use crate::deliver::{Delivery, NDJSON, deliver, ndjson};
use crate::provider::MockCore;
use crate::script::{Reply, Turn, plan};
use crate::tokens;

#[derive(Deserialize)]
struct ChatRequest {
    model: String,
    #[serde(default)]
    messages: Vec<Message>,
    stream: Option<bool>,
    #[serde(default)]
    tools: Vec<Value>,
    options: Option<Options>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: String,
}

#[derive(Deserialize)]
struct Options {
    num_predict: Option<i64>,
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
    let req: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Some(model) = resolve(&core, &req.model) else {
        return not_found(&req.model);
    };
    let model = if req.model.contains(':') {
        model
    } else {
        req.model.clone()
    };
    let tool_names: Vec<String> = req
        .tools
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect();
    let last = req.messages.last();
    let turn = Turn {
        last_user: req
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.clone())
            .unwrap_or_default(),
        tool_result: last.filter(|m| m.role == "tool").map(|m| m.content.clone()),
        forced_tool: None,
        tools: tool_names,
    };
    let prompt_eval_count = tokens::chat_prompt(
        req.messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str(), None)),
    );
    let max = req
        .options
        .as_ref()
        .and_then(|o| o.num_predict)
        .filter(|n| *n >= 0)
        .map(|n| n as u32);

    let line = |message: Value, done: bool| json!({ "model": model, "created_at": rfc3339_now(), "message": message, "done": done });
    let (text, tool_calls, done_reason) = match plan(&turn, &headers) {
        Reply::Text(t) => {
            let (t, cut) = match max {
                Some(m) => tokens::truncate(&t, m),
                None => (t, false),
            };
            (t, Vec::new(), if cut { "length" } else { "stop" })
        }
        Reply::ToolCalls(calls) => (
            String::new(),
            calls
                .into_iter()
                .map(|c| json!({ "function": { "name": c.name, "arguments": c.arguments } }))
                .collect::<Vec<_>>(),
            "stop",
        ),
    };
    let eval_count = tokens::count(&text)
        + tool_calls
            .iter()
            .map(|c| tokens::count(&c.to_string()))
            .sum::<u32>();
    // Durations are nanoseconds, as Ollama reports them; plausible, not measured.
    let finish = |mut v: Value| {
        v["done_reason"] = json!(done_reason);
        v["total_duration"] =
            json!(u64::from(eval_count + prompt_eval_count) * 2_000_000 + 5_000_000);
        v["load_duration"] = json!(5_000_000u64);
        v["prompt_eval_count"] = json!(prompt_eval_count);
        v["prompt_eval_duration"] = json!(u64::from(prompt_eval_count) * 1_000_000);
        v["eval_count"] = json!(eval_count);
        v["eval_duration"] = json!(u64::from(eval_count) * 20_000_000);
        v
    };
    let assistant = |content: &str| json!({ "role": "assistant", "content": content });

    let delivery = if req.stream.unwrap_or(true) {
        let mut frames = Vec::new();
        if tool_calls.is_empty() {
            for piece in tokens::split(&text) {
                frames.push(ndjson(&line(assistant(&piece), false)));
            }
        } else {
            let mut msg = assistant("");
            msg["tool_calls"] = Value::Array(tool_calls.clone());
            frames.push(ndjson(&line(msg, false)));
        }
        frames.push(ndjson(&finish(line(assistant(""), true))));
        Delivery::Stream {
            content_type: NDJSON,
            frames,
        }
    } else {
        let mut msg = assistant(&text);
        if !tool_calls.is_empty() {
            msg["tool_calls"] = Value::Array(tool_calls);
        }
        Delivery::Json {
            value: finish(line(msg, true)),
            output_tokens: eval_count,
        }
    };
    deliver(fault, core.cancel.clone(), delivery, for_status).await
}
