//! `POST /v1/chat/completions`, as a JSON `chat.completion` or an SSE stream of
//! `chat.completion.chunk` objects closed by `data: [DONE]`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{authorize, error};
use crate::deliver::{Delivery, SSE, deliver, sse_data};
use crate::ids::{random_id, unix_now};
use crate::provider::MockCore;
use crate::script::{Reply, Turn, plan};
use crate::tokens;

const FINGERPRINT: &str = "fp_mock0001";

#[derive(Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<Message>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Vec<ToolDef>,
    tool_choice: Option<Value>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: Option<Value>,
    name: Option<String>,
    tool_calls: Option<Vec<Value>>,
}

#[derive(Deserialize, serde::Serialize)]
struct ToolDef {
    function: Option<FunctionDef>,
}

#[derive(Deserialize, serde::Serialize)]
struct FunctionDef {
    name: String,
}

/// Text of a message's `content`: a string, or the text parts of a content array.
fn content_text(content: &Option<Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

struct Call {
    id: String,
    name: String,
    arguments: String,
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
    let req: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error::invalid_request(&format!("Invalid request body: {e}"), None),
    };
    if req.messages.is_empty() {
        return error::invalid_request("[] is too short - 'messages'", Some("messages"));
    }
    if !core.has_model(&req.model) {
        return error::model_not_found(&req.model);
    }

    let tool_names: Vec<String> = req
        .tools
        .iter()
        .filter_map(|t| t.function.as_ref().map(|f| f.name.clone()))
        .collect();
    let last = req.messages.last().expect("checked non-empty");
    let turn = Turn {
        last_user: req
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| content_text(&m.content))
            .unwrap_or_default(),
        tool_result: (last.role == "tool").then(|| content_text(&last.content)),
        forced_tool: match &req.tool_choice {
            Some(Value::String(s)) if s == "required" => tool_names.first().cloned(),
            Some(choice) => choice["function"]["name"].as_str().map(str::to_owned),
            None => None,
        },
        tools: tool_names,
    };

    let prompt_tokens = prompt_tokens(&req);
    let max = req.max_completion_tokens.or(req.max_tokens);
    let (text, calls, finish) = match plan(&turn, &headers) {
        Reply::Text(t) => {
            let (t, cut) = match max {
                Some(m) => tokens::truncate(&t, m),
                None => (t, false),
            };
            (Some(t), Vec::new(), if cut { "length" } else { "stop" })
        }
        Reply::ToolCalls(planned) => {
            let calls = planned
                .into_iter()
                .map(|p| Call {
                    id: random_id("call_", 24),
                    name: p.name,
                    arguments: p.arguments.to_string(),
                })
                .collect();
            (None, calls, "tool_calls")
        }
    };
    let completion_tokens = text.as_deref().map(tokens::count).unwrap_or(0)
        + calls
            .iter()
            .map(|c| tokens::count(&c.name) + tokens::count(&c.arguments))
            .sum::<u32>();
    let usage = usage(prompt_tokens, completion_tokens);
    let id = random_id("chatcmpl-", 29);
    let created = unix_now();

    let delivery = if req.stream.unwrap_or(false) {
        let include_usage = req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let frames = stream_frames(
            &Chunker {
                id: &id,
                created,
                model: &req.model,
                include_usage,
            },
            text.as_deref(),
            &calls,
            finish,
            usage,
        );
        Delivery::Stream {
            content_type: SSE,
            frames,
        }
    } else {
        let tool_calls: Vec<Value> = calls.iter().map(|c| call_json(c, None)).collect();
        let message = json!({
            "role": "assistant",
            "content": text,
            "refusal": null,
            "annotations": [],
            "tool_calls": if tool_calls.is_empty() { Value::Null } else { Value::Array(tool_calls) },
        });
        let mut message = message;
        if message["tool_calls"].is_null() {
            message
                .as_object_mut()
                .expect("object")
                .remove("tool_calls");
        }
        Delivery::Json {
            value: json!({
                "id": id,
                "object": "chat.completion",
                "created": created,
                "model": req.model,
                "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish }],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
            }),
            output_tokens: completion_tokens,
        }
    };
    deliver(fault, core.cancel.clone(), delivery, error::for_status).await
}

fn prompt_tokens(req: &ChatRequest) -> u32 {
    let texts: Vec<(String, String, Option<String>)> = req
        .messages
        .iter()
        .map(|m| {
            let mut content = content_text(&m.content);
            // An assistant turn that called tools is billed for the calls it made.
            if let Some(calls) = &m.tool_calls {
                content.push_str(&Value::Array(calls.clone()).to_string());
            }
            (m.role.clone(), content, m.name.clone())
        })
        .collect();
    let mut n = tokens::chat_prompt(
        texts
            .iter()
            .map(|(r, c, n)| (r.as_str(), c.as_str(), n.as_deref())),
    );
    if !req.tools.is_empty() {
        n += tokens::count(&serde_json::to_string(&req.tools).unwrap_or_default());
    }
    n
}

fn usage(prompt: u32, completion: u32) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": { "cached_tokens": 0, "audio_tokens": 0 },
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

/// A tool call as it appears in a message, or (with `index`) in a stream's first delta.
fn call_json(c: &Call, index: Option<usize>) -> Value {
    let mut v = json!({
        "id": c.id,
        "type": "function",
        "function": { "name": c.name, "arguments": c.arguments },
    });
    if let Some(i) = index {
        v["index"] = json!(i);
        v["function"]["arguments"] = json!("");
    }
    v
}

struct Chunker<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
    include_usage: bool,
}

impl Chunker<'_> {
    fn chunk(&self, choices: Value) -> Value {
        let mut v = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        });
        // With include_usage every chunk carries `usage`, null until the last one.
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        v
    }

    fn delta(&self, delta: Value, finish: Option<&str>) -> bytes::Bytes {
        sse_data(&self.chunk(json!([{
            "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish
        }])))
    }
}

fn stream_frames(
    c: &Chunker<'_>,
    text: Option<&str>,
    calls: &[Call],
    finish: &str,
    usage: Value,
) -> Vec<bytes::Bytes> {
    let mut frames = Vec::new();
    match text {
        Some(text) => {
            frames.push(c.delta(
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            ));
            for piece in tokens::split(text) {
                frames.push(c.delta(json!({ "content": piece }), None));
            }
        }
        None => {
            for (i, call) in calls.iter().enumerate() {
                let mut delta = json!({ "tool_calls": [call_json(call, Some(i))] });
                if i == 0 {
                    delta["role"] = json!("assistant");
                    delta["content"] = Value::Null;
                    delta["refusal"] = Value::Null;
                }
                frames.push(c.delta(delta, None));
                for piece in tokens::split(&call.arguments) {
                    frames.push(c.delta(
                        json!({ "tool_calls": [{ "index": i, "function": { "arguments": piece } }] }),
                        None,
                    ));
                }
            }
        }
    }
    frames.push(c.delta(json!({}), Some(finish)));
    if c.include_usage {
        let mut last = c.chunk(json!([]));
        last["usage"] = usage;
        frames.push(sse_data(&last));
    }
    frames.push(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}
