//! The Ollama mock over raw HTTP: NDJSON chat streaming, non-stream chat, tool calls,
//! embeddings, tags and errors.

mod common;

use common::client;
use gatez_mocks::ollama::OllamaMock;
use serde_json::{Value, json};

#[tokio::test]
async fn chat_streams_ndjson_by_default_and_ends_with_stats() {
    let m = OllamaMock::start().await;
    let resp = client()
        .post(format!("{}/api/chat", m.base_url()))
        .json(&json!({"model": "llama3.2", "messages": [{"role": "user", "content": "why is the sky blue"}]}))
        .send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let body = resp.text().await.unwrap();
    assert!(body.ends_with('\n'));
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (last, parts) = lines.split_last().unwrap();
    let text: String = parts
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "why is the sky blue");
    assert!(
        parts
            .iter()
            .all(|l| l["done"] == false && l["model"] == "llama3.2")
    );
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["eval_count"], 5);
    assert!(last["prompt_eval_count"].as_u64().unwrap() > 0);
    assert!(last["created_at"].as_str().unwrap().contains('T'));
}

#[tokio::test]
async fn non_stream_chat_and_tool_calls() {
    let m = OllamaMock::start().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let v: Value = client()
        .post(format!("{}/api/chat", m.base_url()))
        .json(&json!({"model": "qwen2.5:7b", "stream": false, "tools": tools,
                      "messages": [{"role": "user", "content": "[[tool:get_weather {\"city\":\"Rome\"}]]"}]}))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(v["done"], true);
    assert_eq!(
        v["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(
        v["message"]["tool_calls"][0]["function"]["arguments"],
        json!({"city": "Rome"})
    );
    let v: Value = client()
        .post(format!("{}/api/chat", m.base_url()))
        .json(
            &json!({"model": "qwen2.5:7b", "stream": false, "tools": tools, "messages": [
            {"role": "user", "content": "[[tool:get_weather]]"},
            {"role": "assistant", "content": "", "tool_calls": v["message"]["tool_calls"]},
            {"role": "tool", "content": "sunny"}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["message"]["content"], "sunny");
}

#[tokio::test]
async fn embed_tags_and_errors() {
    let m = OllamaMock::start().await;
    let v: Value = client()
        .post(format!("{}/api/embed", m.base_url()))
        .json(&json!({"model": "all-minilm", "input": ["a cat", "a cat!"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let e = v["embeddings"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].as_array().unwrap().len(), 384);
    let tags: Value = client()
        .get(format!("{}/api/tags", m.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        tags["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "llama3.2:latest")
    );
    let resp = client()
        .post(format!("{}/api/chat", m.base_url()))
        .json(&json!({"model": "nope", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "model \"nope\" not found, try pulling it first"
    );
    let resp = client()
        .post(format!("{}/api/chat", m.base_url()))
        .header("x-mock-fault", "status=500")
        .json(&json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());
}
