//! `POST /v1/messages`: a `message` object, or with `stream: true` the documented event
//! sequence: message_start, content_block_start, ping, content_block_delta…,
//! content_block_stop, message_delta, message_stop.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{authorize, error};
use crate::deliver::{Delivery, SSE, deliver, sse_event};
use crate::ids::random_id;
use crate::provider::MockCore;
use crate::script::{Reply, Turn, plan};
use crate::tokens;

#[derive(Deserialize)]
struct MessagesRequest {
    model: String,
    max_tokens: u32,
    messages: Vec<Message>,
    system: Option<Value>,
    #[serde(default)]
    tools: Vec<Value>,
    tool_choice: Option<Value>,
    stream: Option<bool>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: Value,
}

/// Text of a content value: a string, or the text (and tool_result text) of its blocks.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match b["type"].as_str() {
                Some("text") => b["text"].as_str().unwrap_or_default().to_owned(),
                Some("tool_result") => text_of(&b["content"]),
                Some("tool_use") => b["input"].to_string(),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn bad_request(message: &str) -> Response {
    error::error_response(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

struct Block {
    id: String,
    name: String,
    input: Value,
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
        Err(e) => return bad_request(&e.to_string()),
    };
    let req: MessagesRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&e.to_string()),
    };
    let Some(last) = req.messages.last() else {
        return bad_request("messages: at least one message is required");
    };
    if req.messages[0].role != "user" {
        return bad_request("messages: first message must use the \"user\" role");
    }
    if !core.has_model(&req.model) {
        return error::error_response(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("model: {}", req.model),
        );
    }
    let tool_names: Vec<String> = req
        .tools
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    let ends_on_tool_result = last.role == "user"
        && last
            .content
            .as_array()
            .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"));
    let turn = Turn {
        last_user: req
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| text_of(&m.content))
            .unwrap_or_default(),
        tool_result: ends_on_tool_result.then(|| text_of(&last.content)),
        forced_tool: match &req.tool_choice {
            Some(c) if c["type"] == "tool" => c["name"].as_str().map(str::to_owned),
            Some(c) if c["type"] == "any" => tool_names.first().cloned(),
            _ => None,
        },
        tools: tool_names,
    };

    let input_tokens = {
        let mut n = req
            .system
            .as_ref()
            .map(|s| tokens::count(&text_of(s)))
            .unwrap_or(0);
        for m in &req.messages {
            n += 3 + tokens::count(&text_of(&m.content));
        }
        if !req.tools.is_empty() {
            n += tokens::count(&Value::Array(req.tools.clone()).to_string());
        }
        n
    };
    let (text, blocks, stop_reason) = match plan(&turn, &headers) {
        Reply::Text(t) => {
            let (t, cut) = tokens::truncate(&t, req.max_tokens);
            (
                Some(t),
                Vec::new(),
                if cut { "max_tokens" } else { "end_turn" },
            )
        }
        Reply::ToolCalls(calls) => (
            None,
            calls
                .into_iter()
                .map(|c| Block {
                    id: random_id("toolu_", 24),
                    name: c.name,
                    input: c.arguments,
                })
                .collect(),
            "tool_use",
        ),
    };
    let output_tokens = text.as_deref().map(tokens::count).unwrap_or(0)
        + blocks
            .iter()
            .map(|b| tokens::count(&b.name) + tokens::count(&b.input.to_string()))
            .sum::<u32>();
    let id = random_id("msg_", 24);

    let delivery = if req.stream.unwrap_or(false) {
        Delivery::Stream {
            content_type: SSE,
            frames: events(
                &id,
                &req.model,
                text.as_deref(),
                &blocks,
                stop_reason,
                input_tokens,
                output_tokens,
            ),
        }
    } else {
        let content: Vec<Value> = match &text {
            Some(t) => vec![json!({ "type": "text", "text": t })],
            None => blocks
                .iter()
                .map(
                    |b| json!({ "type": "tool_use", "id": b.id, "name": b.name, "input": b.input }),
                )
                .collect(),
        };
        Delivery::Json {
            value: json!({
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": req.model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": null,
                "usage": usage(input_tokens, output_tokens),
            }),
            output_tokens,
        }
    };
    deliver(fault, core.cancel.clone(), delivery, error::for_status).await
}

fn usage(input: u32, output: u32) -> Value {
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
    })
}

fn events(
    id: &str,
    model: &str,
    text: Option<&str>,
    blocks: &[Block],
    stop_reason: &str,
    input_tokens: u32,
    output_tokens: u32,
) -> Vec<Bytes> {
    let mut frames = vec![sse_event(
        "message_start",
        &json!({ "type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": usage(input_tokens, 1),
        }}),
    )];
    let block_stop = |index: usize| {
        sse_event(
            "content_block_stop",
            &json!({ "type": "content_block_stop", "index": index }),
        )
    };
    let delta = |index: usize, delta: Value| {
        sse_event(
            "content_block_delta",
            &json!({ "type": "content_block_delta", "index": index, "delta": delta }),
        )
    };
    let ping = sse_event("ping", &json!({ "type": "ping" }));
    match text {
        Some(text) => {
            frames.push(sse_event(
                "content_block_start",
                &json!({ "type": "content_block_start", "index": 0,
                         "content_block": { "type": "text", "text": "" } }),
            ));
            frames.push(ping);
            for piece in tokens::split(text) {
                frames.push(delta(0, json!({ "type": "text_delta", "text": piece })));
            }
            frames.push(block_stop(0));
        }
        None => {
            for (i, b) in blocks.iter().enumerate() {
                frames.push(sse_event(
                    "content_block_start",
                    &json!({ "type": "content_block_start", "index": i, "content_block": {
                        "type": "tool_use", "id": b.id, "name": b.name, "input": {} } }),
                ));
                if i == 0 {
                    frames.push(ping.clone());
                }
                for piece in tokens::split(&b.input.to_string()) {
                    frames.push(delta(
                        i,
                        json!({ "type": "input_json_delta", "partial_json": piece }),
                    ));
                }
                frames.push(block_stop(i));
            }
        }
    }
    frames.push(sse_event(
        "message_delta",
        &json!({ "type": "message_delta",
                 "delta": { "stop_reason": stop_reason, "stop_sequence": null },
                 "usage": { "output_tokens": output_tokens } }),
    ));
    frames.push(sse_event(
        "message_stop",
        &json!({ "type": "message_stop" }),
    ));
    frames
}
