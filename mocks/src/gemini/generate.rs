//! `generateContent` and `streamGenerateContent`.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{error_response, for_status};
use crate::deliver::{Delivery, SSE, deliver};
use crate::ids::random_id;
use crate::provider::MockCore;
use crate::script::{Reply, Turn, plan};
use crate::tokens;

pub enum Mode {
    Unary,
    /// `?alt=sse`: one `data:` frame per `GenerateContentResponse`.
    Sse,
    /// No `alt`: the responses as one JSON array.
    JsonArray,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest {
    contents: Vec<Content>,
    system_instruction: Option<Content>,
    #[serde(default)]
    tools: Vec<Value>,
    tool_config: Option<Value>,
    generation_config: Option<GenerationConfig>,
}

#[derive(Deserialize)]
struct Content {
    role: Option<String>,
    #[serde(default)]
    parts: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    max_output_tokens: Option<u32>,
}

fn text_of(c: &Content) -> String {
    c.parts
        .iter()
        .map(|p| {
            if let Some(t) = p["text"].as_str() {
                t.to_owned()
            } else if !p["functionResponse"].is_null() {
                p["functionResponse"]["response"].to_string()
            } else if !p["functionCall"].is_null() {
                p["functionCall"].to_string()
            } else {
                String::new()
            }
        })
        .collect()
}

pub async fn handle(
    core: &MockCore,
    model: &str,
    headers: &HeaderMap,
    body: &Bytes,
    mode: Mode,
) -> Response {
    let fault = match core.fault_for(headers) {
        Ok(f) => f,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let req: GenerateRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON payload received. {e}"),
            );
        }
    };
    let Some(last) = req.contents.last() else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "* GenerateContentRequest.contents: contents is not specified",
        );
    };
    let tool_names: Vec<String> = req
        .tools
        .iter()
        .flat_map(|t| {
            t["functionDeclarations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|f| f["name"].as_str().map(str::to_owned))
        .collect();
    let calling = req
        .tool_config
        .as_ref()
        .map(|c| &c["functionCallingConfig"]);
    let forced = calling.filter(|c| c["mode"] == "ANY").and_then(|c| {
        c["allowedFunctionNames"][0]
            .as_str()
            .map(str::to_owned)
            .or_else(|| tool_names.first().cloned())
    });
    let turn = Turn {
        last_user: req
            .contents
            .iter()
            .rev()
            .find(|c| {
                c.role.as_deref().unwrap_or("user") == "user"
                    && c.parts.iter().any(|p| p["text"].is_string())
            })
            .map(text_of)
            .unwrap_or_default(),
        tool_result: last
            .parts
            .iter()
            .any(|p| !p["functionResponse"].is_null())
            .then(|| text_of(last)),
        forced_tool: forced,
        tools: tool_names,
    };
    let prompt_tokens = req
        .system_instruction
        .as_ref()
        .map(|s| tokens::count(&text_of(s)))
        .unwrap_or(0)
        + req
            .contents
            .iter()
            .map(|c| tokens::count(&text_of(c)))
            .sum::<u32>()
        + if req.tools.is_empty() {
            0
        } else {
            tokens::count(&Value::Array(req.tools.clone()).to_string())
        };
    let max = req
        .generation_config
        .as_ref()
        .and_then(|g| g.max_output_tokens);

    let response_id = random_id("", 22);
    let respond = |parts: Value, finish: Option<&str>, candidates_tokens: u32| {
        let mut candidate = json!({ "content": { "parts": parts, "role": "model" }, "index": 0 });
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        json!({
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": candidates_tokens,
                "totalTokenCount": prompt_tokens + candidates_tokens,
            },
            "modelVersion": model,
            "responseId": response_id,
        })
    };
    // Each element is one GenerateContentResponse of the (possibly one-element) stream.
    let (responses, output_tokens): (Vec<Value>, u32) = match plan(&turn, headers) {
        Reply::Text(text) => {
            let (text, cut) = match max {
                Some(m) => tokens::truncate(&text, m),
                None => (text, false),
            };
            let finish = if cut { "MAX_TOKENS" } else { "STOP" };
            let total = tokens::count(&text);
            match mode {
                Mode::Unary => (
                    vec![respond(json!([{ "text": text }]), Some(finish), total)],
                    total,
                ),
                Mode::Sse | Mode::JsonArray => {
                    let pieces = tokens::split(&text);
                    let n = pieces.len();
                    let mut so_far = 0;
                    let responses = pieces
                        .into_iter()
                        .enumerate()
                        .map(|(i, p)| {
                            so_far += tokens::count(&p);
                            respond(
                                json!([{ "text": p }]),
                                (i + 1 == n).then_some(finish),
                                so_far,
                            )
                        })
                        .collect::<Vec<_>>();
                    if responses.is_empty() {
                        (vec![respond(json!([{ "text": "" }]), Some(finish), 0)], 0)
                    } else {
                        (responses, total)
                    }
                }
            }
        }
        // Gemini sends function calls whole, never as partial arguments.
        Reply::ToolCalls(calls) => {
            let out: u32 = calls
                .iter()
                .map(|c| tokens::count(&c.name) + tokens::count(&c.arguments.to_string()))
                .sum();
            let parts: Vec<Value> = calls
                .into_iter()
                .map(|c| json!({ "functionCall": { "name": c.name, "args": c.arguments } }))
                .collect();
            (vec![respond(Value::Array(parts), Some("STOP"), out)], out)
        }
    };
    let delivery = match mode {
        Mode::Unary => Delivery::Json {
            value: responses.into_iter().next().unwrap_or_default(),
            output_tokens,
        },
        Mode::JsonArray => Delivery::Json {
            value: Value::Array(responses),
            output_tokens,
        },
        // Google's SSE separates events with CRLF pairs.
        Mode::Sse => Delivery::Stream {
            content_type: SSE,
            frames: responses
                .iter()
                .map(|r| Bytes::from(format!("data: {r}\r\n\r\n")))
                .collect(),
        },
    };
    deliver(fault, core.cancel.clone(), delivery, for_status).await
}
