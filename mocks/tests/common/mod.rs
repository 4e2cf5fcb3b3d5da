//! Helpers shared by the integration tests: raw HTTP with reqwest and wire-format parsing.
#![allow(dead_code)]

use serde_json::Value;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("reqwest client")
}

/// Splits an SSE body into frames, asserting each ends with the blank line the spec requires.
pub fn sse_frames(body: &str) -> Vec<String> {
    assert!(
        body.ends_with("\n\n"),
        "SSE body must end with a blank line: {body:?}"
    );
    body.trim_end_matches("\n\n")
        .split("\n\n")
        .map(str::to_owned)
        .collect()
}

/// The JSON payloads of `data:` frames, skipping `[DONE]`.
pub fn sse_json(body: &str) -> Vec<Value> {
    sse_frames(body)
        .iter()
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("bad JSON {d:?}: {e}")))
        .collect()
}

/// `(event, data)` pairs of a named-event SSE body.
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    sse_frames(body)
        .iter()
        .map(|f| {
            let mut lines = f.lines();
            let event = lines
                .next()
                .and_then(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("frame without event line: {f:?}"));
            let data = lines
                .next()
                .and_then(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("frame without data line: {f:?}"));
            (
                event.to_owned(),
                serde_json::from_str(data).expect("event JSON"),
            )
        })
        .collect()
}
