//! The Anthropic mock over raw HTTP: headers, message shape, the SSE event sequence,
//! tool_use blocks, usage and errors.

mod common;

use common::{client, sse_events};
use gatez_mocks::anthropic::AnthropicMock;
use serde_json::{Value, json};

fn post(m: &AnthropicMock, body: Value) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}/v1/messages", m.base_url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
}

#[tokio::test]
async fn message_echoes_with_usage() {
    let m = AnthropicMock::start().await;
    let v: Value = post(
        &m,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "system": "terse",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}]}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["type"], "message");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "hello world"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["output_tokens"], 2);
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() >= 3);
    assert_eq!(m.received()[0].header("x-api-key"), Some("sk-ant-test"));
}

#[tokio::test]
async fn stream_follows_the_documented_event_sequence() {
    let m = AnthropicMock::start().await;
    let body = post(
        &m,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "one two three"}]}),
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let events = sse_events(&body);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        &names[..3],
        ["message_start", "content_block_start", "ping"]
    );
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(
        names[3..names.len() - 3]
            .iter()
            .all(|n| *n == "content_block_delta")
    );
    for (name, data) in &events {
        assert_eq!(
            data["type"],
            name.as_str(),
            "data.type repeats the event name"
        );
    }
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "one two three");
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 3);
    assert!(
        events[0].1["message"]["usage"]["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn tool_use_blocks_stream_input_json_deltas_and_tool_results_end_the_loop() {
    let m = AnthropicMock::start().await;
    let tools = json!([{"name": "lookup", "description": "d", "input_schema": {"type": "object"}}]);
    let user = json!({"role": "user", "content": "[[tool:lookup {\"q\": \"rust sdk\"}]]"});
    let body = post(
        &m,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true,
        "tools": tools, "messages": [user]}),
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let events = sse_events(&body);
    let start = &events[1].1["content_block"];
    assert_eq!(start["type"], "tool_use");
    assert_eq!(start["name"], "lookup");
    let partial: String = events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"q": "rust sdk"})
    );
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "tool_use"
    );

    let v: Value = post(
        &m,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "tools": tools,
        "messages": [user]}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let block = &v["content"][0];
    assert_eq!(block["input"], json!({"q": "rust sdk"}));
    let v: Value = post(&m, json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "tools": tools,
        "messages": [user, {"role": "assistant", "content": v["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"], "content": "found 3"}]}]}))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "found 3");
    assert_eq!(v["stop_reason"], "end_turn");
}

#[tokio::test]
async fn errors_use_anthropics_shape() {
    let m = AnthropicMock::start().await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]});
    let check = |resp: reqwest::Response, status: u16, kind: &'static str| async move {
        assert_eq!(resp.status(), status);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], kind);
        assert!(v["error"]["message"].is_string());
    };
    let no_key = client()
        .post(format!("{}/v1/messages", m.base_url()))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    check(no_key, 401, "authentication_error").await;
    let no_version = client()
        .post(format!("{}/v1/messages", m.base_url()))
        .header("x-api-key", "k")
        .json(&body)
        .send()
        .await
        .unwrap();
    check(no_version, 400, "invalid_request_error").await;
    let no_max = post(
        &m,
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}]}),
    )
    .send()
    .await
    .unwrap();
    check(no_max, 400, "invalid_request_error").await;
    let unknown = post(&m, json!({"model": "claude-0", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}))
        .send().await.unwrap();
    check(unknown, 404, "not_found_error").await;
    let limited = post(&m, body.clone())
        .header("x-mock-fault", "status=429;retry_after=5")
        .send()
        .await
        .unwrap();
    assert_eq!(limited.headers()["retry-after"], "5");
    check(limited, 429, "rate_limit_error").await;
    let overloaded = post(&m, body)
        .header("x-mock-fault", "status=529")
        .send()
        .await
        .unwrap();
    check(overloaded, 529, "overloaded_error").await;
}

#[tokio::test]
async fn max_tokens_stops_with_max_tokens() {
    let m = AnthropicMock::start().await;
    let v: Value = post(
        &m,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 1,
        "messages": [{"role": "user", "content": "alpha beta gamma"}]}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["content"][0]["text"], "alpha");
}
