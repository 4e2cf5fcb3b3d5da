//! How a mock model decides what to say: the reply is a function of the request.
//!
//! In order of precedence:
//! 1. the `x-mock-reply` header: reply with its value, verbatim;
//! 2. if the conversation ends on a tool result: reply with that result, verbatim, so an
//!    agent loop terminates and a test sees the tool output travel back;
//! 3. `[[tool:NAME]]` or `[[tool:NAME {"json":"args"}]]` markers in the last user message:
//!    call those tools (several markers make parallel calls); a marker naming a tool the
//!    request did not declare is ignored, as a real model cannot call it;
//! 4. a tool forced by the request's tool choice: call it with `{}`;
//! 5. a `[[reply:TEXT]]` marker in the last user message: reply TEXT;
//! 6. otherwise echo the last user message.

use axum::http::HeaderMap;
use serde_json::Value;

pub const REPLY_HEADER: &str = "x-mock-reply";

/// What a provider module extracts from its own request format.
#[derive(Clone, Debug, Default)]
pub struct Turn {
    pub last_user: String,
    pub tool_result: Option<String>,
    pub tools: Vec<String>,
    pub forced_tool: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Text(String),
    ToolCalls(Vec<PlannedCall>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlannedCall {
    pub name: String,
    pub arguments: Value,
}

pub fn plan(turn: &Turn, headers: &HeaderMap) -> Reply {
    if let Some(text) = headers.get(REPLY_HEADER).and_then(|v| v.to_str().ok()) {
        return Reply::Text(text.to_owned());
    }
    if let Some(result) = &turn.tool_result {
        return Reply::Text(result.clone());
    }
    let calls: Vec<PlannedCall> = tool_markers(&turn.last_user)
        .into_iter()
        .filter(|c| turn.tools.contains(&c.name))
        .collect();
    if !calls.is_empty() {
        return Reply::ToolCalls(calls);
    }
    if let Some(name) = turn.forced_tool.as_ref().filter(|n| turn.tools.contains(n)) {
        return Reply::ToolCalls(vec![PlannedCall {
            name: name.clone(),
            arguments: Value::Object(Default::default()),
        }]);
    }
    if let Some(text) = marker_body(&turn.last_user, "[[reply:") {
        return Reply::Text(text.to_owned());
    }
    Reply::Text(turn.last_user.clone())
}

fn marker_body<'a>(text: &'a str, open: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find("]]")?;
    Some(&text[start..start + len])
}

fn tool_markers(text: &str) -> Vec<PlannedCall> {
    const OPEN: &str = "[[tool:";
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(body) = marker_body(rest, OPEN) {
        let (name, args) = match body.split_once(char::is_whitespace) {
            Some((name, args)) => (name, args.trim()),
            None => (body, ""),
        };
        let arguments = if args.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(args).unwrap_or_else(|_| Value::Object(Default::default()))
        };
        calls.push(PlannedCall {
            name: name.trim().to_owned(),
            arguments,
        });
        // Resume after this marker's closing brackets.
        let consumed = rest.find(OPEN).unwrap_or(0) + OPEN.len() + body.len() + 2;
        rest = &rest[consumed..];
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn turn(text: &str, tools: &[&str]) -> Turn {
        Turn {
            last_user: text.into(),
            tools: tools.iter().map(|s| s.to_string()).collect(),
            ..Turn::default()
        }
    }

    #[test]
    fn echoes_by_default_and_obeys_reply_markers_and_header() {
        assert_eq!(
            plan(&turn("hi there", &[]), &HeaderMap::new()),
            Reply::Text("hi there".into())
        );
        assert_eq!(
            plan(
                &turn("x [[reply:scripted answer]] y", &[]),
                &HeaderMap::new()
            ),
            Reply::Text("scripted answer".into())
        );
        let mut h = HeaderMap::new();
        h.insert(REPLY_HEADER, "from header".parse().unwrap());
        assert_eq!(plan(&turn("x", &[]), &h), Reply::Text("from header".into()));
    }

    #[test]
    fn calls_declared_tools_named_by_markers() {
        let t = turn(
            r#"weather? [[tool:get_weather {"city":"Paris"}]] and [[tool:clock]] [[tool:undeclared]]"#,
            &["get_weather", "clock"],
        );
        assert_eq!(
            plan(&t, &HeaderMap::new()),
            Reply::ToolCalls(vec![
                PlannedCall {
                    name: "get_weather".into(),
                    arguments: json!({"city": "Paris"})
                },
                PlannedCall {
                    name: "clock".into(),
                    arguments: json!({})
                },
            ])
        );
    }

    #[test]
    fn tool_results_end_the_loop_and_forced_tools_are_called() {
        let mut t = turn("[[tool:clock]]", &["clock"]);
        t.tool_result = Some("12:00".into());
        assert_eq!(plan(&t, &HeaderMap::new()), Reply::Text("12:00".into()));
        let mut t = turn("what time is it", &["clock"]);
        t.forced_tool = Some("clock".into());
        assert!(matches!(plan(&t, &HeaderMap::new()), Reply::ToolCalls(c) if c[0].name == "clock"));
    }
}
