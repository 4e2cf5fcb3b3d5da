//! An OTLP/HTTP trace collector: `POST /v1/traces` in protobuf (`application/x-protobuf`)
//! or JSON (`application/json`), answering in kind; spans are kept so a test can query
//! them by trace id (`spans`, `wait_for_spans`, or `GET /api/traces/{trace_id}`).

mod span;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::error::MockError;
use crate::server::ServerHandle;

pub use span::SpanRecord;
use store::SpanStore;

#[derive(Debug)]
pub struct OtlpCollector {
    server: ServerHandle,
    store: Arc<SpanStore>,
}

impl OtlpCollector {
    pub async fn start() -> Self {
        Self::bind(crate::server::ephemeral())
            .await
            .expect("bind an ephemeral port for the OTLP collector")
    }

    pub async fn bind(addr: SocketAddr) -> Result<Self, MockError> {
        let store = Arc::new(SpanStore::default());
        let router = Router::new()
            .route("/v1/traces", post(export))
            .route("/api/traces/{trace_id}", get(query))
            .with_state(store.clone());
        let server = ServerHandle::serve(addr, router, CancellationToken::new()).await?;
        Ok(Self { server, store })
    }

    /// What an exporter takes as its endpoint: `http://127.0.0.1:PORT` (it appends `/v1/traces`).
    pub fn endpoint(&self) -> String {
        self.server.origin()
    }

    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.server.origin())
    }

    /// Spans of `trace_id` (32 lower-case hex digits), in arrival order.
    pub fn spans(&self, trace_id: &str) -> Vec<SpanRecord> {
        self.store.by_trace(trace_id)
    }

    pub fn all_spans(&self) -> Vec<SpanRecord> {
        self.store.all()
    }

    /// Waits until `trace_id` has at least `count` spans (exporters batch), or `timeout`.
    pub async fn wait_for_spans(
        &self,
        trace_id: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<SpanRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.store.wait_for(trace_id, count, deadline).await
    }

    pub fn clear(&self) {
        self.store.clear();
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

async fn export(State(store): State<Arc<SpanStore>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let json = content_type.starts_with("application/json");
    let request = if json {
        serde_json::from_slice::<ExportTraceServiceRequest>(&body).map_err(|e| e.to_string())
    } else if content_type.starts_with("application/x-protobuf") {
        ExportTraceServiceRequest::decode(body).map_err(|e| e.to_string())
    } else {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content-type `{content_type}`"),
        )
            .into_response();
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    store.ingest(&request);
    // An empty response means full success in OTLP.
    let reply = ExportTraceServiceResponse::default();
    let (bytes, ct) = if json {
        (
            serde_json::to_vec(&reply).unwrap_or_default(),
            "application/json",
        )
    } else {
        (reply.encode_to_vec(), "application/x-protobuf")
    };
    let mut resp = Response::new(axum::body::Body::from(bytes));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp
}

async fn query(State(store): State<Arc<SpanStore>>, Path(trace_id): Path<String>) -> Response {
    axum::Json(store.by_trace(&trace_id.to_ascii_lowercase())).into_response()
}
