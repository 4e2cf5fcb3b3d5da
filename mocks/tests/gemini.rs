//! The Gemini mock over raw HTTP: generateContent, SSE and JSON-array streaming,
//! functionCall parts, embeddings, usageMetadata, key handling and Google's error shape.

mod common;

use common::client;
use gatez_mocks::gemini::GeminiMock;
use serde_json::{Value, json};

fn url(m: &GeminiMock, target: &str) -> String {
    format!("{}/v1beta/models/{target}", m.base_url())
}

#[tokio::test]
async fn generate_content_echoes_with_usage_metadata() {
    let m = GeminiMock::start().await;
    let v: Value = client()
        .post(url(&m, "gemini-2.0-flash:generateContent"))
        .header("x-goog-api-key", "AIza-test")
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hello world"}]}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cand = &v["candidates"][0];
    assert_eq!(cand["content"]["role"], "model");
    assert_eq!(cand["content"]["parts"][0]["text"], "hello world");
    assert_eq!(cand["finishReason"], "STOP");
    let u = &v["usageMetadata"];
    assert_eq!(u["candidatesTokenCount"], 2);
    assert_eq!(u["promptTokenCount"], 2);
    assert_eq!(u["totalTokenCount"], 4);
}

#[tokio::test]
async fn stream_sse_and_json_array_carry_the_same_text() {
    let m = GeminiMock::start().await;
    let req = json!({"contents": [{"parts": [{"text": "alpha beta gamma"}]}]});
    let resp = client()
        .post(format!(
            "{}?alt=sse&key=AIza",
            url(&m, "gemini-2.5-flash:streamGenerateContent")
        ))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let body = resp.text().await.unwrap();
    let frames: Vec<&str> = body.split("\r\n\r\n").filter(|f| !f.is_empty()).collect();
    assert!(frames.len() >= 3);
    let chunks: Vec<Value> = frames
        .iter()
        .map(|f| serde_json::from_str(f.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "alpha beta gamma");
    assert_eq!(
        chunks.last().unwrap()["candidates"][0]["finishReason"],
        "STOP"
    );
    assert!(chunks[0]["candidates"][0].get("finishReason").is_none());
    assert_eq!(
        chunks.last().unwrap()["usageMetadata"]["candidatesTokenCount"],
        3
    );

    let array: Value = client()
        .post(format!(
            "{}?key=AIza",
            url(&m, "gemini-2.5-flash:streamGenerateContent")
        ))
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(array.as_array().unwrap().len(), chunks.len());
}

#[tokio::test]
async fn function_calls_and_function_responses() {
    let m = GeminiMock::start().await;
    let tools =
        json!([{"functionDeclarations": [{"name": "get_time", "parameters": {"type": "object"}}]}]);
    let v: Value = client()
        .post(url(&m, "gemini-2.0-flash:generateContent"))
        .header("x-goog-api-key", "k")
        .json(&json!({"tools": tools, "contents": [{"role": "user", "parts": [{"text": "[[tool:get_time {\"tz\":\"UTC\"}]]"}]}]}))
        .send().await.unwrap().json().await.unwrap();
    let call = &v["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(call["name"], "get_time");
    assert_eq!(call["args"], json!({"tz": "UTC"}));
    // Forced calling via toolConfig mode ANY.
    let v: Value = client()
        .post(url(&m, "gemini-2.0-flash:generateContent"))
        .header("x-goog-api-key", "k")
        .json(
            &json!({"tools": tools, "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
                      "contents": [{"role": "user", "parts": [{"text": "what time"}]}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "get_time"
    );
    let v: Value = client()
        .post(url(&m, "gemini-2.0-flash:generateContent"))
        .header("x-goog-api-key", "k")
        .json(&json!({"tools": tools, "contents": [
            {"role": "user", "parts": [{"text": "[[tool:get_time]]"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_time", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_time", "response": {"now": "noon"}}}]}]}))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "{\"now\":\"noon\"}"
    );
}

#[tokio::test]
async fn embeddings_single_and_batch() {
    let m = GeminiMock::start().await;
    let v: Value = client()
        .post(url(&m, "text-embedding-004:embedContent"))
        .header("x-goog-api-key", "k")
        .json(&json!({"content": {"parts": [{"text": "hello"}]}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let single: Vec<f32> = serde_json::from_value(v["embedding"]["values"].clone()).unwrap();
    assert_eq!(single.len(), 768);
    let v: Value = client()
        .post(url(&m, "text-embedding-004:batchEmbedContents"))
        .header("x-goog-api-key", "k")
        .json(&json!({"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello"}]}},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "bye"}]}, "outputDimensionality": 16}]}))
        .send().await.unwrap().json().await.unwrap();
    let first: Vec<f32> = serde_json::from_value(v["embeddings"][0]["values"].clone()).unwrap();
    assert_eq!(first, single);
    assert_eq!(v["embeddings"][1]["values"].as_array().unwrap().len(), 16);
}

#[tokio::test]
async fn errors_use_googles_shape() {
    let m = GeminiMock::start().await;
    let req = json!({"contents": [{"parts": [{"text": "x"}]}]});
    let cases = [
        (
            client().post(url(&m, "gemini-2.0-flash:generateContent")),
            403,
            "PERMISSION_DENIED",
        ),
        (
            client()
                .post(url(&m, "gemini-9:generateContent"))
                .header("x-goog-api-key", "k"),
            404,
            "NOT_FOUND",
        ),
        (
            client()
                .post(url(&m, "gemini-2.0-flash:generateContent"))
                .header("x-goog-api-key", "k")
                .header("x-mock-fault", "status=429"),
            429,
            "RESOURCE_EXHAUSTED",
        ),
        (
            client()
                .post(url(&m, "gemini-2.0-flash:generateContent"))
                .header("x-goog-api-key", "k")
                .header("x-mock-fault", "status=503"),
            503,
            "UNAVAILABLE",
        ),
    ];
    for (builder, status, canonical) in cases {
        let resp = builder.json(&req).send().await.unwrap();
        assert_eq!(resp.status(), status);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], status);
        assert_eq!(v["error"]["status"], canonical);
    }
    m.require_api_key(Some("right"));
    let resp = client()
        .post(format!(
            "{}?key=wrong",
            url(&m, "gemini-2.0-flash:generateContent")
        ))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["status"],
        "INVALID_ARGUMENT"
    );
}
