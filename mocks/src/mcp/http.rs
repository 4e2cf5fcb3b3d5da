//! An MCP server on Streamable HTTP: rmcp's `StreamableHttpService` mounted at `/mcp` in
//! axum, one port per server, sessions (`Mcp-Session-Id`) kept in memory.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::benign::Benign;
use super::failing::Failing;
use super::poisoned::Poisoned;
use super::rug_pull::RugPull;
use super::slow::Slow;
use super::{McpOptions, McpServerKind, Shared};
use crate::error::MockError;
use crate::record::{RecordedRequest, Recorder, record};
use crate::server::ServerHandle;

pub const MCP_PATH: &str = "/mcp";

#[derive(Debug)]
pub struct McpServerMock {
    kind: McpServerKind,
    server: ServerHandle,
    shared: Shared,
    recorder: Recorder,
}

impl McpServerMock {
    /// Starts `kind` on an ephemeral port with default options.
    pub async fn start(kind: McpServerKind) -> Self {
        Self::start_with(kind, McpOptions::default()).await
    }

    pub async fn start_with(kind: McpServerKind, opts: McpOptions) -> Self {
        Self::bind(crate::server::ephemeral(), kind, opts)
            .await
            .expect("start an MCP server mock on an ephemeral port")
    }

    pub async fn bind(
        addr: SocketAddr,
        kind: McpServerKind,
        opts: McpOptions,
    ) -> Result<Self, MockError> {
        let shared = Shared::new(kind, &opts)?;
        let cancel = CancellationToken::new();
        let recorder = Recorder::default();
        let mcp = match kind {
            McpServerKind::Benign => {
                let root = shared.root.clone().expect("the benign server has a root");
                mount(move || Ok(Benign::new(root.clone())), &cancel)
            }
            McpServerKind::Slow => {
                let s = shared.clone();
                mount(move || Ok(Slow::new(s.clone())), &cancel)
            }
            McpServerKind::Failing => mount(|| Ok(Failing::new()), &cancel),
            McpServerKind::Poisoned => mount(|| Ok(Poisoned::new()), &cancel),
            McpServerKind::RugPull => {
                let s = shared.clone();
                mount(move || Ok(RugPull::new(s.clone())), &cancel)
            }
        };
        let router = mcp.layer(axum::middleware::from_fn_with_state(
            recorder.clone(),
            record,
        ));
        let server = ServerHandle::serve(addr, router, cancel).await?;
        Ok(Self {
            kind,
            server,
            shared,
            recorder,
        })
    }

    pub fn kind(&self) -> McpServerKind {
        self.kind
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The Streamable HTTP endpoint: `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> String {
        format!("{}{MCP_PATH}", self.server.origin())
    }

    /// Every HTTP request this server received (JSON-RPC bodies, `Mcp-Session-Id`, ...).
    pub fn received(&self) -> Vec<RecordedRequest> {
        self.recorder.all()
    }

    /// The JSON-RPC `method`s received, in order (batches flattened).
    pub fn received_methods(&self) -> Vec<String> {
        self.received()
            .iter()
            .filter_map(RecordedRequest::json)
            .flat_map(|body| match body {
                serde_json::Value::Array(items) => items,
                single => vec![single],
            })
            .filter_map(|msg| msg.get("method")?.as_str().map(str::to_owned))
            .collect()
    }

    /// The benign server's file root (`None` for the other servers).
    pub fn root(&self) -> Option<&Path> {
        self.shared.root.as_deref().map(|r| r.path())
    }

    /// The slow server's delay for calls that name none.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.set_delay(delay);
    }

    /// Whether the rug-pull server has served its honest listing.
    pub fn rug_pulled(&self) -> bool {
        self.shared.rug_pulled()
    }

    /// Restores the rug-pull server's honest tool list for the next listing.
    pub fn reset_rug_pull(&self) {
        self.shared.reset_rug();
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// rmcp builds one handler per session through `factory`; state that must outlive a
/// session lives in what the factory clones in.
fn mount<S>(
    factory: impl Fn() -> Result<S, std::io::Error> + Send + Sync + 'static,
    cancel: &CancellationToken,
) -> Router
where
    S: ServerHandler + Send + 'static,
{
    let config = StreamableHttpServerConfig::default()
        // A mock is reached under whatever name the compose network gives it, so the
        // DNS-rebinding guard (loopback `Host` only) would refuse legitimate callers.
        .disable_allowed_hosts()
        // Ending sessions on shutdown closes their SSE streams, which graceful shutdown
        // would otherwise wait on forever.
        .with_cancellation_token(cancel.child_token());
    let service =
        StreamableHttpService::new(factory, Arc::new(LocalSessionManager::default()), config);
    Router::new().route_service(MCP_PATH, service)
}
