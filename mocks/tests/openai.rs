//! The OpenAI mock over raw HTTP: wire format, usage, tools, embeddings, errors and faults.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::{client, sse_frames, sse_json};
use gatez_mocks::Fault;
use gatez_mocks::openai::OpenAiMock;
use serde_json::{Value, json};

async fn post(m: &OpenAiMock, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", m.base_url()))
        .bearer_auth("sk-test-1234567890")
        .json(&body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn non_stream_echoes_with_plausible_usage_and_is_recorded() {
    let m = OpenAiMock::start().await;
    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello world"}]}
        ]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "hello world");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // o200k: "be brief" = 2, "system" = 1, "hello world" = 2, "user" = 1; 3 per message + 3.
    assert_eq!(v["usage"]["prompt_tokens"], 3 + (3 + 1 + 2) + (3 + 1 + 2));
    assert_eq!(v["usage"]["completion_tokens"], 2);
    assert_eq!(v["usage"]["total_tokens"], 17);

    let rec = m.received();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].path, "/v1/chat/completions");
    assert_eq!(
        rec[0].header("authorization"),
        Some("Bearer sk-test-1234567890")
    );
    assert_eq!(rec[0].json().unwrap()["messages"][0]["content"], "be brief");
}

#[tokio::test]
async fn stream_with_include_usage_matches_the_documented_byte_layout() {
    let m = OpenAiMock::start().await;
    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "The quick brown fox jumps"}]}),
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let body = resp.text().await.unwrap();
    let frames = sse_frames(&body);
    assert_eq!(frames.last().unwrap(), "data: [DONE]");
    assert!(
        frames
            .iter()
            .all(|f| f.starts_with("data: ") && !f.contains('\n'))
    );

    let chunks = sse_json(&body);
    let (usage_chunk, content_chunks) = chunks.split_last().unwrap();
    assert_eq!(
        content_chunks[0]["choices"][0]["delta"]["role"],
        "assistant"
    );
    let text: String = content_chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "The quick brown fox jumps");
    assert!(content_chunks.len() >= 5, "one chunk per token");
    for c in content_chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert!(c["usage"].is_null() && c.as_object().unwrap().contains_key("usage"));
    }
    assert_eq!(
        content_chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 5);
    // Without include_usage no chunk carries `usage`.
    let body = post(
        &m,
        "/chat/completions",
        json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(sse_json(&body).iter().all(|c| c.get("usage").is_none()));
}

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
}

#[tokio::test]
async fn streamed_tool_call_arguments_arrive_as_deltas() {
    let m = OpenAiMock::start().await;
    let body = post(
        &m,
        "/chat/completions",
        json!({"model": "gpt-4o", "stream": true, "tools": weather_tools(), "messages": [
            {"role": "user", "content": "weather? [[tool:get_weather {\"city\": \"Paris, France\"}]]"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let chunks = sse_json(&body);
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert!(first["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(first["function"]["name"], "get_weather");
    assert_eq!(first["function"]["arguments"], "");
    let arg_deltas: Vec<&str> = chunks[1..]
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert!(
        arg_deltas.len() > 3,
        "arguments are split into several deltas"
    );
    let args: Value = serde_json::from_str(&arg_deltas.concat()).unwrap();
    assert_eq!(args, json!({"city": "Paris, France"}));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn tool_call_round_trip_ends_on_the_tool_result() {
    let m = OpenAiMock::start().await;
    let user = json!({"role": "user", "content": "[[tool:get_weather {\"city\":\"Oslo\"}]]"});
    let v: Value = post(
        &m,
        "/chat/completions",
        json!({"model": "gpt-4o", "tools": weather_tools(), "messages": [user]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let msg = &v["choices"][0]["message"];
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert!(msg["content"].is_null());
    let call = &msg["tool_calls"][0];
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Oslo\"}");
    let v: Value = post(
        &m,
        "/chat/completions",
        json!({"model": "gpt-4o", "tools": weather_tools(), "messages": [user, msg,
            {"role": "tool", "tool_call_id": call["id"], "content": "-3°C, snow"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "-3°C, snow");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn max_tokens_truncates_with_finish_reason_length() {
    let m = OpenAiMock::start().await;
    let v: Value = post(
        &m,
        "/chat/completions",
        json!({"model": "gpt-4o", "max_tokens": 2,
               "messages": [{"role": "user", "content": "one two three four five"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "one two");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn embeddings_float_and_base64_agree_and_similar_texts_are_close() {
    let m = OpenAiMock::start().await;
    let v: Value = post(
        &m,
        "/embeddings",
        json!({"model": "text-embedding-3-small", "dimensions": 64,
               "input": ["refund my order", "please refund my order", "solar eclipse timing"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["object"], "list");
    let vecs: Vec<Vec<f32>> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_json::from_value(d["embedding"].clone()).unwrap())
        .collect();
    assert_eq!(vecs[0].len(), 64);
    let cos = gatez_mocks::embedding::cosine;
    assert!(cos(&vecs[0], &vecs[1]) > cos(&vecs[0], &vecs[2]) + 0.3);
    assert_eq!(v["usage"]["prompt_tokens"], v["usage"]["total_tokens"]);

    let b: Value = post(
        &m,
        "/embeddings",
        json!({"model": "text-embedding-3-small", "dimensions": 64,
               "input": "refund my order", "encoding_format": "base64"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(decoded, vecs[0]);
    // Native width when `dimensions` is absent.
    let v: Value = post(
        &m,
        "/embeddings",
        json!({"model": "text-embedding-3-large", "input": "x"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 3072);
}

#[tokio::test]
async fn models_list_and_retrieve() {
    let m = OpenAiMock::start().await;
    let v: Value = client()
        .get(format!("{}/models", m.base_url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "gpt-4o")
    );
    m.set_models(["only-model"]);
    let resp = client()
        .get(format!("{}/models/gpt-4o", m.base_url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn errors_use_the_openai_error_object() {
    let m = OpenAiMock::start().await;
    let url = format!("{}/chat/completions", m.base_url());
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]});
    // No key.
    let resp = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"].as_object().unwrap().contains_key("param"));
    // Wrong key once one is required: the gateway must swap in the provider's key.
    m.require_api_key(Some("sk-provider-key"));
    let resp = post(&m, "/chat/completions", body.clone()).await;
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert!(
        !v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sk-test-1234567890")
    );
    let ok = client()
        .post(&url)
        .bearer_auth("sk-provider-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    m.require_api_key(None);
    // Unknown model, bad body, empty messages.
    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let resp = post(&m, "/chat/completions", json!({"messages": []})).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "gpt-4o", "messages": []}),
    )
    .await;
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["param"],
        "messages"
    );
}

#[tokio::test]
async fn fault_header_429_with_retry_after_then_one_shot_503_then_success() {
    let m = OpenAiMock::start().await;
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]});
    let resp = client()
        .post(format!("{}/chat/completions", m.base_url()))
        .bearer_auth("k")
        .header("x-mock-fault", "status=429;retry_after=2")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "rate_limit_exceeded"
    );

    m.push_fault(Fault::none().with_status(503));
    assert_eq!(
        post(&m, "/chat/completions", body.clone()).await.status(),
        503
    );
    assert_eq!(
        post(&m, "/chat/completions", body.clone()).await.status(),
        200
    );

    let bad = client()
        .post(format!("{}/chat/completions", m.base_url()))
        .bearer_auth("k")
        .header("x-mock-fault", "sttaus=1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn latency_and_per_token_pacing_are_applied() {
    let m = OpenAiMock::start().await;
    m.set_fault(
        Fault::none()
            .with_latency(Duration::from_millis(150))
            .with_per_token(Duration::from_millis(40)),
    );
    let start = Instant::now();
    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "gpt-4o", "stream": true,
               "messages": [{"role": "user", "content": "one two three four"}]}),
    )
    .await;
    let first_byte = start.elapsed();
    let body = resp.text().await.unwrap();
    let total = start.elapsed();
    assert!(first_byte >= Duration::from_millis(150), "{first_byte:?}");
    // Role chunk + 4 tokens + finish + [DONE] = 7 frames, 6 paced gaps of 40 ms.
    assert_eq!(sse_frames(&body).len(), 7);
    assert!(total >= Duration::from_millis(150 + 6 * 40), "{total:?}");
}

#[tokio::test]
async fn hang_outlasts_a_client_timeout_and_is_released_on_drop() {
    let m = OpenAiMock::start().await;
    let url = format!("{}/chat/completions", m.base_url());
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]});
    let err = client()
        .post(&url)
        .bearer_auth("k")
        .header("x-mock-fault", "hang=true")
        .timeout(Duration::from_millis(300))
        .json(&body)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    // A hanging request in flight must not keep the mock alive after shutdown.
    let pending = tokio::spawn(
        client()
            .post(&url)
            .bearer_auth("k")
            .header("x-mock-fault", "hang=true")
            .json(&body)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), m.shutdown())
        .await
        .expect("shutdown does not wait for hanging requests");
    let _ = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the hanging request ends once the mock stops");
}

#[tokio::test]
async fn reset_mid_stream_and_malformed_chunk() {
    let m = OpenAiMock::start().await;
    let body = json!({"model": "gpt-4o", "stream": true,
                      "messages": [{"role": "user", "content": "one two three four five"}]});
    let mut resp = client()
        .post(format!("{}/chat/completions", m.base_url()))
        .bearer_auth("k")
        .header("x-mock-fault", "reset_after_chunks=3")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut received = Vec::new();
    let outcome = loop {
        match resp.chunk().await {
            Ok(Some(b)) => received.extend_from_slice(&b),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(outcome.is_err(), "the stream must end in a transport error");
    let text = String::from_utf8(received).unwrap();
    assert_eq!(text.matches("data: ").count(), 3);
    assert!(!text.contains("[DONE]"));

    let text = client()
        .post(format!("{}/chat/completions", m.base_url()))
        .bearer_auth("k")
        .header("x-mock-fault", "malformed_chunk=2")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let frames = sse_frames(&text);
    let payload = |i: usize| frames[i].strip_prefix("data: ").unwrap().to_owned();
    assert!(serde_json::from_str::<Value>(&payload(0)).is_ok());
    assert!(serde_json::from_str::<Value>(&payload(1)).is_err());
    assert!(serde_json::from_str::<Value>(&payload(2)).is_ok());
    assert_eq!(frames.last().unwrap(), "data: [DONE]");
}
