//! JSON-RPC 2.0 framing for the A2A endpoint: request validation and the error codes the
//! JSON-RPC and A2A specifications assign.

use serde::Serialize;
use serde_json::{Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
pub const TASK_NOT_FOUND: i64 = -32001;
pub const TASK_NOT_CANCELABLE: i64 = -32002;
pub const PUSH_NOTIFICATION_NOT_SUPPORTED: i64 = -32003;
pub const UNSUPPORTED_OPERATION: i64 = -32004;
pub const CONTENT_TYPE_NOT_SUPPORTED: i64 = -32005;

#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn invalid_params(reason: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, "Invalid parameters").with_data(json!(reason.to_string()))
    }

    pub fn task_not_found(id: &str) -> Self {
        Self::new(TASK_NOT_FOUND, "Task not found").with_data(json!({ "taskId": id }))
    }

    pub fn task_not_cancelable(id: &str, state: impl Serialize) -> Self {
        Self::new(TASK_NOT_CANCELABLE, "Task cannot be canceled")
            .with_data(json!({ "taskId": id, "state": state }))
    }
}

/// A validated request: `id` is a string or number (A2A has no notifications).
#[derive(Debug)]
pub struct Request {
    pub id: Value,
    pub method: String,
    pub params: Value,
}

/// Parses a POST body; on failure, the error and the id to answer it under.
pub fn parse(body: &[u8]) -> Result<Request, (Value, RpcError)> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        (
            Value::Null,
            RpcError::new(PARSE_ERROR, "Invalid JSON payload").with_data(json!(e.to_string())),
        )
    })?;
    let Value::Object(obj) = value else {
        return Err((
            Value::Null,
            RpcError::new(INVALID_REQUEST, "Request payload validation error")
                .with_data(json!("expected a JSON-RPC request object")),
        ));
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    let id_ok = matches!(id, Value::String(_) | Value::Number(_));
    let invalid = |why: &str| {
        let answer_id = if id_ok { id.clone() } else { Value::Null };
        Err((
            answer_id,
            RpcError::new(INVALID_REQUEST, "Request payload validation error")
                .with_data(json!(why)),
        ))
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("`jsonrpc` must be \"2.0\"");
    }
    if !id_ok {
        return invalid("`id` must be a string or a number");
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return invalid("`method` must be a string");
    };
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    if !matches!(params, Value::Object(_) | Value::Null) {
        return invalid("`params` must be an object");
    }
    Ok(Request {
        id,
        method: method.to_owned(),
        params,
    })
}

pub fn success(id: &Value, result: impl Serialize) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

pub fn failure(id: &Value, error: &RpcError) -> Value {
    let mut err = json!({ "code": error.code, "message": error.message });
    if let Some(data) = &error.data {
        err["data"] = data.clone();
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": err })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_malformed_requests() {
        assert_eq!(parse(b"{nope").unwrap_err().1.code, PARSE_ERROR);
        assert_eq!(parse(b"[]").unwrap_err().1.code, INVALID_REQUEST);
        let (id, e) = parse(br#"{"jsonrpc":"1.0","id":7,"method":"x"}"#).unwrap_err();
        assert_eq!((id, e.code), (json!(7), INVALID_REQUEST));
        let (id, e) = parse(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).unwrap_err();
        assert_eq!((id, e.code), (Value::Null, INVALID_REQUEST));
        let (_, e) = parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#).unwrap_err();
        assert_eq!(e.code, INVALID_REQUEST);
        let ok = parse(br#"{"jsonrpc":"2.0","id":"a","method":"tasks/get","params":{}}"#).unwrap();
        assert_eq!((ok.id, ok.method.as_str()), (json!("a"), "tasks/get"));
    }
}
