//! Fidelity: the `async-openai` crate, which nobody here wrote, parses everything the
//! OpenAI mock sends — completions, SSE chunks with usage, streamed tool-call deltas,
//! embeddings in both encodings, models and the error object.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions, ChatCompletionTool,
    ChatCompletionTools, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
    FinishReason, FunctionObject,
};
use async_openai::types::embeddings::{CreateEmbeddingRequestArgs, EncodingFormat};
use futures::StreamExt;
use gatez_mocks::openai::OpenAiMock;

fn client(m: &OpenAiMock, key: &str) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(m.base_url())
            .with_api_key(key),
    )
}

fn request(text: &str, stream: bool) -> CreateChatCompletionRequest {
    let mut args = CreateChatCompletionRequestArgs::default();
    args.model("gpt-4o-mini")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content(text)
            .build()
            .unwrap()
            .into()]);
    if stream {
        args.stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            ..Default::default()
        });
    }
    args.build().unwrap()
}

#[tokio::test]
async fn chat_completion_round_trips() {
    let m = OpenAiMock::start().await;
    let resp = client(&m, "sk-a")
        .chat()
        .create(request("ping pong", false))
        .await
        .unwrap();
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("ping pong")
    );
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    let usage = resp.usage.unwrap();
    assert_eq!(usage.completion_tokens, 2);
    assert_eq!(usage.total_tokens, usage.prompt_tokens + 2);
    assert_eq!(m.received()[0].header("authorization"), Some("Bearer sk-a"));
}

#[tokio::test]
async fn streamed_chunks_and_usage_parse() {
    let m = OpenAiMock::start().await;
    let mut stream = client(&m, "sk-a")
        .chat()
        .create_stream(request("a streamed reply", true))
        .await
        .unwrap();
    let (mut text, mut usage, mut finish) = (String::new(), None, None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if let Some(choice) = chunk.choices.first() {
            text.push_str(choice.delta.content.as_deref().unwrap_or_default());
            finish = finish.or(choice.finish_reason);
        }
        usage = usage.or(chunk.usage);
    }
    assert_eq!(text, "a streamed reply");
    assert_eq!(finish, Some(FinishReason::Stop));
    assert_eq!(usage.unwrap().completion_tokens, 3);
}

#[tokio::test]
async fn streamed_tool_call_deltas_reassemble() {
    let m = OpenAiMock::start().await;
    let mut req = request(r#"[[tool:get_weather {"city":"Lyon","unit":"c"}]]"#, true);
    req.tools = Some(vec![ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: "get_weather".into(),
            description: Some("weather".into()),
            parameters: Some(serde_json::json!({"type": "object"})),
            strict: None,
        },
    })]);
    let mut stream = client(&m, "sk-a").chat().create_stream(req).await.unwrap();
    let (mut name, mut args, mut finish) = (None, String::new(), None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        let Some(choice) = chunk.choices.first() else {
            continue;
        };
        finish = finish.or(choice.finish_reason);
        for call in choice.delta.tool_calls.iter().flatten() {
            if let Some(f) = &call.function {
                name = name.or(f.name.clone());
                args.push_str(f.arguments.as_deref().unwrap_or_default());
            }
        }
    }
    assert_eq!(name.as_deref(), Some("get_weather"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&args).unwrap(),
        serde_json::json!({"city": "Lyon", "unit": "c"})
    );
    assert_eq!(finish, Some(FinishReason::ToolCalls));
}

#[tokio::test]
async fn embeddings_float_and_base64_and_models() {
    let m = OpenAiMock::start().await;
    let c = client(&m, "sk-a");
    let req = CreateEmbeddingRequestArgs::default()
        .model("text-embedding-3-small")
        .input(["alpha", "beta"])
        .dimensions(32u32)
        .build()
        .unwrap();
    let floats = c.embeddings().create(req.clone()).await.unwrap();
    assert_eq!(floats.data.len(), 2);
    assert_eq!(floats.data[0].embedding.len(), 32);
    let mut req = req;
    req.encoding_format = Some(EncodingFormat::Base64);
    let b64 = c.embeddings().create_base64(req).await.unwrap();
    let decoded: Vec<f32> = b64.data[0].embedding.clone().into();
    assert_eq!(decoded, floats.data[0].embedding);
    let models = c.models().list().await.unwrap();
    assert!(models.data.iter().any(|m| m.id == "gpt-4o"));
}

#[tokio::test]
async fn api_errors_parse_as_openai_errors() {
    let m = OpenAiMock::start().await;
    m.require_api_key(Some("sk-right"));
    match client(&m, "sk-wrong")
        .chat()
        .create(request("x", false))
        .await
    {
        Err(OpenAIError::ApiError(e)) => {
            assert_eq!(e.status_code.as_u16(), 401);
            assert_eq!(e.api_error.code.as_deref(), Some("invalid_api_key"));
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    m.require_api_key(None);
    let mut req = request("x", false);
    req.model = "gpt-unknown".into();
    match client(&m, "k").chat().create(req).await {
        Err(OpenAIError::ApiError(e)) => {
            assert_eq!(e.api_error.code.as_deref(), Some("model_not_found"))
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}
