//! The JSON-RPC methods of the A2A endpoint: `message/send`, `message/stream`,
//! `tasks/get`, `tasks/cancel`, `tasks/resubscribe`; push-notification methods answer
//! `PushNotificationNotSupported`, as the card says.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::AgentState;
use super::jsonrpc::{self, Request, RpcError};
use super::model::{Message, Role, TaskState};
use super::script::{self, Reply};
use super::store::Started;
use super::stream::{self, Follow};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendParams {
    message: Message,
    #[serde(default)]
    configuration: Option<SendConfiguration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendConfiguration {
    #[serde(default)]
    accepted_output_modes: Option<Vec<String>>,
    #[serde(default)]
    history_length: Option<usize>,
    /// Absent means blocking: the reply is the task in its final (or interrupted) state.
    #[serde(default)]
    blocking: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskQuery {
    id: String,
    #[serde(default)]
    history_length: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct TaskIdParams {
    id: String,
}

pub async fn rpc(State(agent): State<Arc<AgentState>>, body: Bytes) -> Response {
    let req = match jsonrpc::parse(&body) {
        Ok(r) => r,
        Err((id, e)) => return json(jsonrpc::failure(&id, &e)),
    };
    let id = req.id.clone();
    let outcome = match req.method.as_str() {
        "message/send" => send(&agent, req).await.map(json),
        "message/stream" | "tasks/resubscribe" => stream_method(&agent, req),
        "tasks/get" => params::<TaskQuery>(&req).and_then(|q| {
            let task = agent.store.get(&q.id, q.history_length)?;
            Ok(json(jsonrpc::success(&id, task)))
        }),
        "tasks/cancel" => params::<TaskIdParams>(&req).and_then(|p| {
            let task = agent.store.cancel(&p.id)?;
            Ok(json(jsonrpc::success(&id, task)))
        }),
        m if m.starts_with("tasks/pushNotificationConfig/") => Err(RpcError::new(
            jsonrpc::PUSH_NOTIFICATION_NOT_SUPPORTED,
            "Push Notification is not supported",
        )),
        other => Err(RpcError::new(jsonrpc::METHOD_NOT_FOUND, "Method not found")
            .with_data(Value::String(other.to_owned()))),
    };
    outcome.unwrap_or_else(|e| json(jsonrpc::failure(&id, &e)))
}

fn json(body: Value) -> Response {
    axum::Json(body).into_response()
}

fn params<T: DeserializeOwned>(req: &Request) -> Result<T, RpcError> {
    serde_json::from_value(req.params.clone()).map_err(RpcError::invalid_params)
}

fn send_params(req: &Request) -> Result<SendParams, RpcError> {
    let p: SendParams = params(req)?;
    if p.message.role != Role::User {
        return Err(RpcError::invalid_params("message.role must be \"user\""));
    }
    if p.message.parts.is_empty() {
        return Err(RpcError::invalid_params("message.parts must not be empty"));
    }
    let modes = p
        .configuration
        .as_ref()
        .and_then(|c| c.accepted_output_modes.as_deref())
        .unwrap_or_default();
    let text_ok = |m: &String| matches!(m.as_str(), "text/plain" | "text/*" | "*/*" | "text");
    if !modes.is_empty() && !modes.iter().any(text_ok) {
        return Err(RpcError::new(
            jsonrpc::CONTENT_TYPE_NOT_SUPPORTED,
            "Incompatible content types",
        )
        .with_data(serde_json::json!({ "supported": ["text/plain"] })));
    }
    Ok(p)
}

/// What a new message starts: a direct reply, or a task being driven.
enum Begun {
    Message(Message),
    Task(Started),
}

fn begin(agent: &AgentState, message: Message) -> Result<Begun, RpcError> {
    let text = message.text();
    if let Some(task_id) = message.task_id.clone() {
        let started = agent.store.resume(&task_id, message)?;
        agent.drive(&started, script::completion(script::echo(&text)));
        return Ok(Begun::Task(started));
    }
    match script::plan(&text) {
        Reply::Message(reply) => {
            let context = message
                .context_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            Ok(Begun::Message(Message::agent(reply, None, &context)))
        }
        Reply::Task(steps) => {
            let started = agent.store.create(message);
            agent.drive(&started, steps);
            Ok(Begun::Task(started))
        }
    }
}

async fn send(agent: &AgentState, req: Request) -> Result<Value, RpcError> {
    let p = send_params(&req)?;
    let config = p.configuration.unwrap_or_default();
    match begin(agent, p.message)? {
        Begun::Message(m) => Ok(jsonrpc::success(&req.id, m)),
        Begun::Task(mut started) => {
            if config.blocking.unwrap_or(true) {
                stream::wait_for_final(&mut started.events, &agent.shutdown).await;
            }
            let task = agent.store.get(&started.task.id, config.history_length)?;
            Ok(jsonrpc::success(&req.id, task))
        }
    }
}

fn stream_method(agent: &AgentState, req: Request) -> Result<Response, RpcError> {
    let follow = if req.method == "tasks/resubscribe" {
        let p: TaskIdParams = params(&req)?;
        let (task, events) = agent.store.subscribe(&p.id)?;
        let over = task.status.state.is_terminal() || task.status.state == TaskState::Unknown;
        let first = serde_json::to_value(&task).unwrap_or_default();
        Follow {
            first,
            events: (!over).then_some(events),
        }
    } else {
        let p = send_params(&req)?;
        match begin(agent, p.message)? {
            Begun::Message(m) => Follow {
                first: serde_json::to_value(m).unwrap_or_default(),
                events: None,
            },
            Begun::Task(started) => Follow {
                first: serde_json::to_value(&started.task).unwrap_or_default(),
                events: Some(started.events),
            },
        }
    };
    Ok(stream::sse(req.id, follow, agent.shutdown.clone()))
}
