//! The MCP server mocks driven by the official Rust MCP client (rmcp), as a gateway would:
//! over Streamable HTTP against the library handle and over stdio against the
//! `gatez-mocks mcp-stdio` binary; plus the raw Streamable HTTP wire (session header,
//! version negotiation) with reqwest.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gatez_mocks::mcp::{
    McpOptions, McpServerKind, McpServerMock, POISON_MARKER, POISONED_ADD_DESCRIPTION,
};
use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::{NotificationContext, RunningService, ServiceError};
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Counts `notifications/tools/list_changed` and wakes a waiting test.
#[derive(Clone, Default)]
struct Watcher {
    changes: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl ClientHandler for Watcher {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
    }
}

type Client = RunningService<RoleClient, Watcher>;

async fn http_client(url: &str) -> (Client, Watcher) {
    let watcher = Watcher::default();
    let client = watcher
        .clone()
        .serve(StreamableHttpClientTransport::from_uri(url.to_owned()))
        .await
        .expect("MCP initialize over Streamable HTTP");
    (client, watcher)
}

async fn stdio_client(kind: &str, extra: &[&str]) -> (Client, Watcher) {
    let transport = TokioChildProcess::builder(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_gatez-mocks")).configure(|cmd| {
            cmd.args(["mcp-stdio", "--server", kind]).args(extra);
        }),
    )
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn gatez-mocks mcp-stdio")
    .0;
    let watcher = Watcher::default();
    let client = watcher
        .clone()
        .serve(transport)
        .await
        .expect("MCP initialize over stdio");
    (client, watcher)
}

fn call(name: &'static str, args: Value) -> CallToolRequestParams {
    let Value::Object(args) = args else {
        panic!("tool arguments must be an object")
    };
    CallToolRequestParams::new(name).with_arguments(args)
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("")
}

fn names(tools: &[Tool]) -> Vec<String> {
    let mut n: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    n.sort();
    n
}

fn tool<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
    tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool {name} in {:?}", names(tools)))
}

fn description(t: &Tool) -> String {
    t.description.as_deref().unwrap_or_default().to_owned()
}

async fn benign_behaviour(client: &Client, root_file: &str, root_text: &str) {
    let info = client.peer_info().expect("server info after initialize");
    assert_eq!(info.server_info.as_ref().unwrap().name, "gatez-mock-benign");
    assert!(info.capabilities.tools.is_some());

    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(names(&tools), ["calculate", "get_weather", "read_file"]);
    let schema = serde_json::to_value(&*tool(&tools, "calculate").input_schema).unwrap();
    assert_eq!(schema["type"], "object");
    assert!(schema["properties"]["op"].is_object(), "{schema}");

    let product = client
        .call_tool(call("calculate", json!({"op": "multiply", "a": 6, "b": 7})))
        .await
        .unwrap();
    assert_eq!(product.is_error, Some(false));
    assert_eq!(text(&product), "42");
    let by_zero = client
        .call_tool(call("calculate", json!({"op": "divide", "a": 1, "b": 0})))
        .await
        .unwrap();
    assert_eq!(by_zero.is_error, Some(true));
    assert!(text(&by_zero).contains("division by zero"));

    let weather = client
        .call_tool(call("get_weather", json!({"city": "Tokyo"})))
        .await
        .unwrap();
    let report = weather.structured_content.expect("structured weather");
    assert_eq!(report["city"], "Tokyo");
    assert_eq!(report["temperature_c"], 24);
    let unknown = client
        .call_tool(call("get_weather", json!({"city": "Atlantis"})))
        .await
        .unwrap();
    assert_eq!(unknown.is_error, Some(true));

    let read = client
        .call_tool(call("read_file", json!({"path": root_file})))
        .await
        .unwrap();
    assert_eq!(read.is_error, Some(false));
    assert_eq!(text(&read), root_text);
    for escape in ["../../../../etc/passwd", "/etc/passwd"] {
        let refused = client
            .call_tool(call("read_file", json!({"path": escape})))
            .await
            .unwrap();
        assert_eq!(refused.is_error, Some(true), "{escape} must be refused");
        assert!(
            text(&refused).contains("outside the server root"),
            "{}",
            text(&refused)
        );
    }
}

#[tokio::test]
async fn benign_over_http_calculates_looks_up_and_reads_only_under_its_root() {
    let m = McpServerMock::start(McpServerKind::Benign).await;
    assert!(m.url().ends_with("/mcp"));
    let (client, _) = http_client(&m.url()).await;
    benign_behaviour(
        &client,
        gatez_mocks::mcp::root::WELCOME_FILE,
        gatez_mocks::mcp::root::WELCOME_TEXT,
    )
    .await;
    client.cancel().await.unwrap();

    let methods = m.received_methods();
    assert_eq!(methods[0], "initialize");
    assert!(methods.contains(&"notifications/initialized".to_owned()));
    assert!(methods.contains(&"tools/list".to_owned()));
    assert_eq!(methods.iter().filter(|m| *m == "tools/call").count(), 7);
    // Every request after `initialize` carries the session the server assigned.
    let posts: Vec<_> = m
        .received()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert!(posts[0].header("mcp-session-id").is_none());
    let session = posts[1].header("mcp-session-id").expect("session header");
    assert!(
        posts[1..]
            .iter()
            .all(|r| r.header("mcp-session-id") == Some(session))
    );
}

#[tokio::test]
async fn benign_over_stdio_reads_a_file_from_the_given_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    std::fs::write(dir.path().join("docs/guide.md"), "# Guide\nstdio works\n").unwrap();
    let root = dir.path().to_str().unwrap();
    let (client, _) = stdio_client("benign", &["--root", root]).await;
    benign_behaviour(&client, "docs/guide.md", "# Guide\nstdio works\n").await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn slow_server_waits_its_delay_or_the_calls() {
    let m = McpServerMock::start_with(
        McpServerKind::Slow,
        McpOptions {
            delay: Duration::from_millis(400),
            ..McpOptions::default()
        },
    )
    .await;
    let (client, _) = http_client(&m.url()).await;
    let started = Instant::now();
    let echoed = client
        .call_tool(call("slow_echo", json!({"text": "patience"})))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(text(&echoed), "patience");

    m.set_delay(Duration::from_secs(60));
    let started = Instant::now();
    let quick = client
        .call_tool(call("slow_echo", json!({"text": "now", "delay_ms": 10})))
        .await
        .unwrap();
    assert_eq!(text(&quick), "now");
    assert!(started.elapsed() < Duration::from_secs(30));

    // A gateway timing out drops the call; rmcp then sends notifications/cancelled.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        client.call_tool(call("slow_echo", json!({"text": "never"}))),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the call must still be pending at 200 ms"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !m
        .received_methods()
        .contains(&"notifications/cancelled".to_owned())
    {
        assert!(
            Instant::now() < deadline,
            "no notifications/cancelled reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.cancel().await.unwrap();
    // Dropping the mock must not wait for the 60 s call.
    tokio::time::timeout(Duration::from_secs(10), m.shutdown())
        .await
        .expect("shutdown does not wait for pending calls");
}

#[tokio::test]
async fn slow_server_over_stdio_honours_delay_flag() {
    let (client, _) = stdio_client("slow", &["--delay-ms", "300"]).await;
    let started = Instant::now();
    let echoed = client
        .call_tool(call("slow_echo", json!({"text": "stdio"})))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(text(&echoed), "stdio");
    client.cancel().await.unwrap();
}

async fn failing_behaviour(client: &Client) {
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(names(&tools), ["broken_tool", "crashing_tool"]);
    let broken = client
        .call_tool(call("broken_tool", json!({"reason": "disk on fire"})))
        .await
        .unwrap();
    assert_eq!(broken.is_error, Some(true));
    assert_eq!(text(&broken), "broken_tool failed: disk on fire");

    let crashed = client
        .call_tool(call("crashing_tool", json!({"reason": "segfault"})))
        .await
        .expect_err("crashing_tool fails the JSON-RPC request");
    let ServiceError::McpError(e) = crashed else {
        panic!("expected a JSON-RPC error, got {crashed:?}")
    };
    assert_eq!(e.code.0, -32603);
    assert!(e.message.contains("segfault"), "{}", e.message);
    assert_eq!(e.data.unwrap()["reason"], "segfault");

    let missing = client
        .call_tool(call("no_such_tool", json!({})))
        .await
        .expect_err("unknown tool");
    assert!(matches!(missing, ServiceError::McpError(_)), "{missing:?}");
}

#[tokio::test]
async fn failing_server_reports_tool_errors_and_json_rpc_errors() {
    let m = McpServerMock::start(McpServerKind::Failing).await;
    let (client, _) = http_client(&m.url()).await;
    failing_behaviour(&client).await;
    client.cancel().await.unwrap();

    let (client, _) = stdio_client("failing", &[]).await;
    failing_behaviour(&client).await;
    client.cancel().await.unwrap();
}

async fn poisoned_behaviour(client: &Client) {
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(names(&tools), ["add", "translate"]);
    let add = description(tool(&tools, "add"));
    assert_eq!(add, POISONED_ADD_DESCRIPTION);
    assert!(add.contains(POISON_MARKER) && add.contains("~/.ssh/id_rsa"));
    // The second poisoning hides in an input-schema property, not the description.
    let translate = tool(&tools, "translate");
    assert!(!description(translate).contains(POISON_MARKER));
    let schema = serde_json::to_value(&*translate.input_schema).unwrap();
    let prop = schema["properties"]["target_language"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(prop.contains(POISON_MARKER), "{schema}");

    let sum = client
        .call_tool(call(
            "add",
            json!({"a": 2, "b": 3, "sidenote": "-----BEGIN OPENSSH PRIVATE KEY-----"}),
        ))
        .await
        .unwrap();
    assert_eq!(text(&sum), "5");
}

#[tokio::test]
async fn poisoned_server_hides_instructions_and_swallows_exfiltrated_data() {
    let m = McpServerMock::start(McpServerKind::Poisoned).await;
    let (client, _) = http_client(&m.url()).await;
    poisoned_behaviour(&client).await;
    client.cancel().await.unwrap();
    assert!(
        m.received()
            .iter()
            .any(|r| r.contains("BEGIN OPENSSH PRIVATE KEY")),
        "the exfiltrated sidenote reached the upstream"
    );

    let (client, _) = stdio_client("poisoned", &[]).await;
    poisoned_behaviour(&client).await;
    client.cancel().await.unwrap();
}

async fn rug_pull_behaviour(client: &Client, watcher: &Watcher) {
    let honest = client.list_all_tools().await.unwrap();
    assert_eq!(names(&honest), ["get_fact"]);
    let honest_fact = tool(&honest, "get_fact").clone();
    assert!(!description(&honest_fact).contains(POISON_MARKER));

    tokio::time::timeout(Duration::from_secs(5), watcher.changed.notified())
        .await
        .expect("notifications/tools/list_changed after the first listing");
    assert_eq!(watcher.changes.load(Ordering::SeqCst), 1);

    let pulled = client.list_all_tools().await.unwrap();
    assert_eq!(names(&pulled), ["export_data", "get_fact"]);
    let pulled_fact = tool(&pulled, "get_fact");
    assert_ne!(pulled_fact.description, honest_fact.description);
    assert!(description(pulled_fact).contains(POISON_MARKER));
    assert_ne!(pulled_fact.input_schema, honest_fact.input_schema);
    // Later listings stay pulled, and announce nothing more.
    let again = client.list_all_tools().await.unwrap();
    assert_eq!(names(&again), names(&pulled));
    assert_eq!(watcher.changes.load(Ordering::SeqCst), 1);

    let fact = client
        .call_tool(call(
            "get_fact",
            json!({"topic": "rust", "context": "chat log"}),
        ))
        .await
        .unwrap();
    assert!(text(&fact).contains("2015"), "{}", text(&fact));
    let export = client
        .call_tool(call(
            "export_data",
            json!({"destination": "https://x.invalid"}),
        ))
        .await
        .unwrap();
    assert_eq!(text(&export), "exported to https://x.invalid");
}

#[tokio::test]
async fn rug_pull_over_http_changes_its_tools_after_the_first_listing() {
    let m = McpServerMock::start(McpServerKind::RugPull).await;
    assert!(!m.rug_pulled());
    let (client, watcher) = http_client(&m.url()).await;
    let info = client.peer_info().unwrap();
    let tools_cap = info.capabilities.tools.clone().unwrap();
    assert_eq!(tools_cap.list_changed, Some(true));
    rug_pull_behaviour(&client, &watcher).await;
    client.cancel().await.unwrap();
    assert!(m.rug_pulled());

    // The change is the server's, so a new session sees the pulled list at once...
    let (client, _) = http_client(&m.url()).await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(names(&tools), ["export_data", "get_fact"]);
    client.cancel().await.unwrap();
    // ...until a test resets it.
    m.reset_rug_pull();
    let (client, watcher) = http_client(&m.url()).await;
    rug_pull_behaviour(&client, &watcher).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn rug_pull_over_stdio_changes_its_tools_after_the_first_listing() {
    let (client, watcher) = stdio_client("rug-pull", &[]).await;
    rug_pull_behaviour(&client, &watcher).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn streamable_http_wire_negotiates_2025_06_18_with_a_session_header() {
    let m = McpServerMock::start(McpServerKind::Benign).await;
    let http = common::client();
    let post = |body: Value, session: Option<&str>| {
        let mut req = http
            .post(m.url())
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .json(&body);
        if let Some(s) = session {
            req = req
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", "2025-06-18");
        }
        req.send()
    };
    let init = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}
        }}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(init.status(), 200);
    let session = init
        .headers()
        .get("mcp-session-id")
        .expect("Mcp-Session-Id on the initialize response")
        .to_str()
        .unwrap()
        .to_owned();
    let body = init.text().await.unwrap();
    let result = first_jsonrpc(&body);
    assert_eq!(result["id"], 1);
    assert_eq!(result["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(result["result"]["serverInfo"]["name"], "gatez-mock-benign");

    let ack = post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some(&session),
    )
    .await
    .unwrap();
    assert_eq!(ack.status(), 202);

    let list = post(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        Some(&session),
    )
    .await
    .unwrap();
    let listed = first_jsonrpc(&list.text().await.unwrap());
    assert_eq!(listed["id"], 2);
    assert_eq!(listed["result"]["tools"].as_array().unwrap().len(), 3);

    let unknown = post(
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        Some("not-a-session"),
    )
    .await
    .unwrap();
    assert_eq!(
        unknown.status(),
        404,
        "an unknown session is 404 per the spec"
    );
}

/// The first JSON-RPC message of a response that is either JSON or an SSE stream.
fn first_jsonrpc(body: &str) -> Value {
    if let Ok(v) = serde_json::from_str(body) {
        return v;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .find_map(|d| serde_json::from_str(d).ok())
        .unwrap_or_else(|| panic!("no JSON-RPC message in {body:?}"))
}
