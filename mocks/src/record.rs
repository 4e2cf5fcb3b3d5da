//! What each mock received, so tests can assert on what crossed the user's walls
//! (a redacted email never reached the provider, the API key was swapped for the provider's).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Bodies above this are refused rather than buffered; no provider API accepts more.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Keeps memory flat when the binary serves a load test for hours.
pub const DEFAULT_CAPACITY: usize = 10_000;

#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// In arrival order, names lower-cased; repeated headers appear repeatedly.
    pub headers: Vec<(String, String)>,
    #[serde(serialize_with = "body_as_text")]
    pub body: Bytes,
    #[serde(skip)]
    pub received_at: SystemTime,
}

fn body_as_text<S: serde::Serializer>(body: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(body))
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether `needle` appears anywhere the provider could read it: body, query or a header.
    pub fn contains(&self, needle: &str) -> bool {
        self.body_text().contains(needle)
            || self.query.as_deref().is_some_and(|q| q.contains(needle))
            || self.headers.iter().any(|(_, v)| v.contains(needle))
    }
}

#[derive(Clone, Debug)]
pub struct Recorder {
    inner: Arc<Mutex<VecDeque<RecordedRequest>>>,
    capacity: usize,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl Recorder {
    /// Keeps the latest `capacity` requests, dropping the oldest.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&self, req: RecordedRequest) {
        let mut inner = self.inner.lock().expect("recorder lock");
        if inner.len() == self.capacity {
            inner.pop_front();
        }
        inner.push_back(req);
    }

    pub fn all(&self) -> Vec<RecordedRequest> {
        self.inner
            .lock()
            .expect("recorder lock")
            .iter()
            .cloned()
            .collect()
    }

    pub fn last(&self) -> Option<RecordedRequest> {
        self.inner.lock().expect("recorder lock").back().cloned()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().expect("recorder lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        self.inner.lock().expect("recorder lock").clear();
    }
}

/// Axum middleware: buffers the body, records the request, and hands it on unchanged.
pub async fn record(State(recorder): State<Recorder>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response();
        }
    };
    recorder.push(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: bytes.clone(),
        received_at: SystemTime::now(),
    });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str) -> RecordedRequest {
        RecordedRequest {
            method: "POST".into(),
            path: path.into(),
            query: None,
            headers: vec![("authorization".into(), "Bearer sk-x".into())],
            body: Bytes::from_static(b"{\"a\":1}"),
            received_at: SystemTime::now(),
        }
    }

    #[test]
    fn keeps_only_the_latest_capacity_requests() {
        let r = Recorder::with_capacity(2);
        r.push(req("/1"));
        r.push(req("/2"));
        r.push(req("/3"));
        let paths: Vec<_> = r.all().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/2", "/3"]);
    }

    #[test]
    fn finds_headers_case_insensitively_and_needles_anywhere() {
        let r = req("/x");
        assert_eq!(r.header("Authorization"), Some("Bearer sk-x"));
        assert!(r.contains("sk-x"));
        assert!(r.contains("\"a\""));
        assert!(!r.contains("nowhere"));
        assert_eq!(r.json().unwrap()["a"], 1);
    }
}
