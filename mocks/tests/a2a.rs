//! The A2A agent mocks over plain HTTP, as the A2A 0.3 JSON-RPC binding specifies them:
//! agent card, message/send, message/stream (SSE), tasks/get, tasks/cancel,
//! tasks/resubscribe, and the JSON-RPC / A2A error codes.

mod common;

use std::time::Duration;

use common::{client, sse_json};
use gatez_mocks::a2a::{A2aAgent, A2aAgentKind};
use serde_json::{Value, json};

fn message(text: &str) -> Value {
    json!({
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        "messageId": uuid::Uuid::new_v4().to_string(),
        "kind": "message",
    })
}

fn request(id: Value, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

async fn post(agent: &A2aAgent, body: String) -> reqwest::Response {
    client()
        .post(agent.url())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// One JSON-RPC call; asserts the envelope and returns it whole.
async fn rpc(agent: &A2aAgent, method: &str, params: Value) -> Value {
    let resp = post(agent, request(json!(1), method, params).to_string()).await;
    assert_eq!(resp.status(), 200, "JSON-RPC errors still travel in a 200");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 1);
    body
}

async fn result(agent: &A2aAgent, method: &str, params: Value) -> Value {
    let body = rpc(agent, method, params).await;
    assert!(body.get("error").is_none(), "unexpected error: {body}");
    body["result"].clone()
}

async fn error_code(agent: &A2aAgent, method: &str, params: Value) -> i64 {
    let body = rpc(agent, method, params).await;
    assert!(body.get("result").is_none(), "{body}");
    body["error"]["code"].as_i64().expect("error code")
}

/// The JSON-RPC responses of an SSE reply, checked for the envelope; their results.
async fn stream(agent: &A2aAgent, method: &str, params: Value) -> Vec<Value> {
    let resp = post(agent, request(json!("s-1"), method, params).to_string()).await;
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let events = sse_json(&resp.text().await.unwrap());
    events
        .into_iter()
        .map(|e| {
            assert_eq!(e["jsonrpc"], "2.0");
            assert_eq!(e["id"], "s-1");
            e["result"].clone()
        })
        .collect()
}

fn state(task: &Value) -> &str {
    task["status"]["state"].as_str().unwrap_or_default()
}

/// `kind` plus, for status updates, the state: the shape of a stream at a glance.
fn shape(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["kind"].as_str().unwrap() {
            "task" => format!("task:{}", state(e)),
            "status-update" => format!("status:{}", state(e)),
            other => other.to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn agent_card_describes_the_agent_and_its_endpoint() {
    let agent = A2aAgent::start(A2aAgentKind::Echo).await;
    let card: Value = client()
        .get(agent.card_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(card["name"], "gatez-mock-echo");
    assert_eq!(card["url"], agent.url());
    assert_eq!(card["protocolVersion"], "0.3.0");
    assert_eq!(card["preferredTransport"], "JSONRPC");
    assert!(card["description"].as_str().unwrap().len() > 10);
    assert!(card["version"].is_string());
    assert_eq!(card["capabilities"]["streaming"], true);
    assert_eq!(card["defaultInputModes"], json!(["text/plain"]));
    assert_eq!(card["defaultOutputModes"], json!(["text/plain"]));
    let skill = &card["skills"][0];
    for field in ["id", "name", "description"] {
        assert!(skill[field].is_string(), "skill.{field}");
    }
    assert!(skill["tags"].as_array().is_some_and(|t| !t.is_empty()));

    let legacy: Value = client()
        .get(format!("{}/.well-known/agent.json", agent.origin()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(legacy, card);
    let slow = A2aAgent::start(A2aAgentKind::Slow).await;
    let slow_card: Value = client()
        .get(slow.card_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(slow_card["name"], "gatez-mock-slow");
    assert_eq!(slow_card["url"], slow.url());
}

#[tokio::test]
async fn blocking_send_returns_the_completed_task_and_get_trims_history() {
    let agent = A2aAgent::start(A2aAgentKind::Echo).await;
    let mut msg = message("hello agent");
    msg["contextId"] = json!("ctx-42");
    let task = result(&agent, "message/send", json!({"message": msg})).await;
    assert_eq!(task["kind"], "task");
    assert_eq!(state(&task), "completed");
    assert_eq!(task["contextId"], "ctx-42");
    assert!(task["status"]["timestamp"].is_string());
    let artifact = &task["artifacts"][0];
    assert!(artifact["artifactId"].is_string());
    assert_eq!(
        artifact["parts"][0],
        json!({"kind": "text", "text": "hello agent"})
    );
    let history = task["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["role"], "user");
    assert_eq!(history[0]["messageId"], msg["messageId"]);
    assert_eq!(history[0]["taskId"], task["id"]);
    assert_eq!(history[1]["role"], "agent");
    assert_eq!(history[1]["kind"], "message");

    let id = task["id"].clone();
    let full = result(&agent, "tasks/get", json!({"id": id})).await;
    assert_eq!(full["history"].as_array().unwrap().len(), 2);
    let last = result(&agent, "tasks/get", json!({"id": id, "historyLength": 1})).await;
    assert_eq!(last["history"], json!([history[1]]));
    let none = result(&agent, "tasks/get", json!({"id": id, "historyLength": 0})).await;
    assert_eq!(none["history"], json!([]));
    assert_eq!(agent.tasks().len(), 1);
}

#[tokio::test]
async fn message_marker_gets_a_direct_message_and_no_task() {
    let agent = A2aAgent::start(A2aAgentKind::Echo).await;
    let reply = result(
        &agent,
        "message/send",
        json!({"message": message("just say hi [[message]]")}),
    )
    .await;
    assert_eq!(reply["kind"], "message");
    assert_eq!(reply["role"], "agent");
    assert_eq!(reply["parts"][0]["text"], "just say hi");
    assert!(reply.get("taskId").is_none());
    assert!(agent.tasks().is_empty());
}

#[tokio::test]
async fn stream_goes_submitted_working_artifact_completed_with_one_final_event() {
    let agent = A2aAgent::start(A2aAgentKind::Slow).await;
    agent.set_step(Duration::from_millis(20));
    let events = stream(
        &agent,
        "message/stream",
        json!({"message": message("stream me")}),
    )
    .await;
    assert_eq!(
        shape(&events),
        [
            "task:submitted",
            "status:working",
            "artifact-update",
            "status:completed"
        ]
    );
    let task_id = &events[0]["id"];
    for e in &events[1..] {
        assert_eq!(&e["taskId"], task_id);
        assert_eq!(e["contextId"], events[0]["contextId"]);
    }
    let finals: Vec<bool> = events[1..]
        .iter()
        .filter(|e| e["kind"] == "status-update")
        .map(|e| e["final"].as_bool().unwrap())
        .collect();
    assert_eq!(finals, [false, true]);
    assert_eq!(events[2]["artifact"]["parts"][0]["text"], "stream me");
    assert_eq!(events[2]["lastChunk"], true);
    assert_eq!(events[3]["status"]["message"]["role"], "agent");

    let stored = result(&agent, "tasks/get", json!({"id": task_id})).await;
    assert_eq!(state(&stored), "completed");
}

#[tokio::test]
async fn markers_steer_failed_rejected_and_input_required_then_resume() {
    let agent = A2aAgent::start(A2aAgentKind::Echo).await;
    let send = |text: &str| json!({"message": message(text)});
    let failed = result(&agent, "message/send", send("boom [[fail]]")).await;
    assert_eq!(state(&failed), "failed");
    assert!(failed["artifacts"].as_array().unwrap().is_empty());
    let rejected = stream(&agent, "message/stream", send("no [[reject]]")).await;
    assert_eq!(shape(&rejected), ["task:submitted", "status:rejected"]);
    assert_eq!(rejected[1]["final"], true);

    let waiting = stream(&agent, "message/stream", send("book it [[input-required]]")).await;
    assert_eq!(
        shape(&waiting),
        ["task:submitted", "status:working", "status:input-required"]
    );
    assert_eq!(
        waiting[2]["final"], true,
        "input-required ends the interaction"
    );
    let task_id = waiting[0]["id"].clone();
    let mut answer = message("for two people");
    answer["taskId"] = task_id.clone();
    let done = result(&agent, "message/send", json!({"message": answer})).await;
    assert_eq!(done["id"], task_id);
    assert_eq!(state(&done), "completed");
    let roles: Vec<&str> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "agent", "user", "agent"]);
    assert_eq!(done["artifacts"][0]["parts"][0]["text"], "for two people");

    // A finished task takes no more messages; an unknown one is TaskNotFound.
    let mut late = message("again");
    late["taskId"] = task_id;
    assert_eq!(
        error_code(&agent, "message/send", json!({"message": late})).await,
        -32602
    );
    let mut ghost = message("hello?");
    ghost["taskId"] = json!("no-such-task");
    assert_eq!(
        error_code(&agent, "message/send", json!({"message": ghost})).await,
        -32001
    );
}

#[tokio::test]
async fn non_blocking_send_can_be_polled_and_canceled_once() {
    let agent = A2aAgent::start(A2aAgentKind::Slow).await;
    agent.set_step(Duration::from_millis(150));
    let task = result(
        &agent,
        "message/send",
        json!({"message": message("slowly"), "configuration": {"blocking": false}}),
    )
    .await;
    assert_eq!(state(&task), "submitted");
    let id = task["id"].clone();
    let polled = result(&agent, "tasks/get", json!({"id": id})).await;
    assert!(["submitted", "working"].contains(&state(&polled)));

    let canceled = result(&agent, "tasks/cancel", json!({"id": id})).await;
    assert_eq!(state(&canceled), "canceled");
    // The driver stopped: no completion sneaks in after the cancel.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = result(&agent, "tasks/get", json!({"id": id})).await;
    assert_eq!(state(&later), "canceled");
    assert!(later["artifacts"].as_array().unwrap().is_empty());

    assert_eq!(
        error_code(&agent, "tasks/cancel", json!({"id": id})).await,
        -32002
    );
    assert_eq!(
        error_code(&agent, "tasks/cancel", json!({"id": "nope"})).await,
        -32001
    );
    assert_eq!(
        error_code(&agent, "tasks/get", json!({"id": "nope"})).await,
        -32001
    );

    let finished = result(&agent, "message/send", json!({"message": message("quick")})).await;
    assert_eq!(state(&finished), "completed");
    let not_cancelable = rpc(&agent, "tasks/cancel", json!({"id": finished["id"]})).await;
    assert_eq!(not_cancelable["error"]["code"], -32002);
    assert_eq!(not_cancelable["error"]["data"]["state"], "completed");
}

#[tokio::test]
async fn cancel_during_a_stream_ends_it_with_a_final_canceled_event() {
    let agent = A2aAgent::start(A2aAgentKind::Slow).await;
    agent.set_step(Duration::from_millis(400));
    let streaming = {
        let url = agent.url();
        tokio::spawn(async move {
            let body = request(
                json!(9),
                "message/stream",
                json!({"message": message("long")}),
            );
            client()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    let task_id = loop {
        if let Some(t) = agent.tasks().first() {
            break t.id.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let canceled = result(&agent, "tasks/cancel", json!({"id": task_id})).await;
    assert_eq!(state(&canceled), "canceled");
    let body = tokio::time::timeout(Duration::from_secs(5), streaming)
        .await
        .expect("the stream ends after the cancel")
        .unwrap();
    let events: Vec<Value> = sse_json(&body)
        .into_iter()
        .map(|e| e["result"].clone())
        .collect();
    assert_eq!(shape(&events), ["task:submitted", "status:canceled"]);
    assert_eq!(events[1]["final"], true);
}

#[tokio::test]
async fn resubscribe_follows_a_running_task_to_its_end() {
    let agent = A2aAgent::start(A2aAgentKind::Slow).await;
    agent.set_step(Duration::from_millis(100));
    let task = result(
        &agent,
        "message/send",
        json!({"message": message("follow me"), "configuration": {"blocking": false}}),
    )
    .await;
    let events = stream(&agent, "tasks/resubscribe", json!({"id": task["id"]})).await;
    let shape = shape(&events);
    assert!(shape[0].starts_with("task:"), "{shape:?}");
    assert_eq!(shape.last().unwrap(), "status:completed");
    assert_eq!(events.last().unwrap()["final"], true);
    assert_eq!(
        error_code(&agent, "tasks/resubscribe", json!({"id": "nope"})).await,
        -32001
    );
}

#[tokio::test]
async fn malformed_requests_get_the_json_rpc_error_codes() {
    let agent = A2aAgent::start(A2aAgentKind::Echo).await;
    let raw = |body: &str| {
        let body = body.to_owned();
        let agent = &agent;
        async move { post(agent, body).await.json::<Value>().await.unwrap() }
    };
    let parse = raw("{not json").await;
    assert_eq!(parse["error"]["code"], -32700);
    assert_eq!(parse["id"], Value::Null);
    let wrong_version = raw(r#"{"jsonrpc":"1.0","id":5,"method":"tasks/get"}"#).await;
    assert_eq!(wrong_version["error"]["code"], -32600);
    assert_eq!(wrong_version["id"], 5);
    let no_method = raw(r#"{"jsonrpc":"2.0","id":6}"#).await;
    assert_eq!(no_method["error"]["code"], -32600);

    assert_eq!(
        error_code(&agent, "message/teleport", json!({})).await,
        -32601
    );
    assert_eq!(error_code(&agent, "message/send", json!({})).await, -32602);
    assert_eq!(
        error_code(&agent, "tasks/get", json!({"historyLength": 1})).await,
        -32602
    );
    let mut empty = message("x");
    empty["parts"] = json!([]);
    assert_eq!(
        error_code(&agent, "message/send", json!({"message": empty})).await,
        -32602
    );
    let mut as_agent = message("x");
    as_agent["role"] = json!("agent");
    assert_eq!(
        error_code(&agent, "message/stream", json!({"message": as_agent})).await,
        -32602
    );
    assert_eq!(
        error_code(
            &agent,
            "tasks/pushNotificationConfig/set",
            json!({"taskId": "t", "pushNotificationConfig": {"url": "http://x"}})
        )
        .await,
        -32003
    );
    assert_eq!(
        error_code(
            &agent,
            "message/send",
            json!({"message": message("x"), "configuration": {"acceptedOutputModes": ["image/png"]}})
        )
        .await,
        -32005
    );
    // Every request, malformed or not, is on record.
    let received = agent.received();
    assert_eq!(received.len(), 10);
    assert!(
        received
            .iter()
            .all(|r| r.method == "POST" && r.path == "/a2a")
    );
    assert_eq!(received[0].body_text(), "{not json");
}
