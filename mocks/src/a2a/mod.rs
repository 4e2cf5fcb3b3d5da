//! A2A agents (protocol 0.3, JSON-RPC binding): the agent card at
//! `/.well-known/agent-card.json`, and JSON-RPC over HTTP POST at `/a2a` (the card's
//! `url`): `message/send`, `message/stream` (SSE), `tasks/get` (with `historyLength`),
//! `tasks/cancel`, `tasks/resubscribe`. Tasks live in memory and move
//! submitted → working → completed (or failed / rejected / input-required / canceled),
//! one transition per `step`. Two agents: `echo` (no delay) and `slow` (a visible pace).

mod card;
mod driver;
pub mod jsonrpc;
mod methods;
pub mod model;
pub mod script;
mod store;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::error::MockError;
use crate::record::{RecordedRequest, Recorder, record};
use crate::server::ServerHandle;

use model::Task;
use store::{Started, TaskStore};

pub const RPC_PATH: &str = "/a2a";
pub const CARD_PATH: &str = "/.well-known/agent-card.json";
/// Where A2A before 0.3 published the card; still probed by older clients.
pub const LEGACY_CARD_PATH: &str = "/.well-known/agent.json";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum A2aAgentKind {
    Echo,
    Slow,
}

impl A2aAgentKind {
    pub const ALL: [Self; 2] = [Self::Echo, Self::Slow];

    pub fn name(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Slow => "slow",
        }
    }

    /// The pace of state transitions unless configured otherwise.
    pub fn default_step(self) -> Duration {
        match self {
            Self::Echo => Duration::ZERO,
            Self::Slow => Duration::from_millis(500),
        }
    }
}

#[derive(Debug)]
pub struct AgentState {
    kind: A2aAgentKind,
    store: Arc<TaskStore>,
    recorder: Recorder,
    step_ms: AtomicU64,
    shutdown: CancellationToken,
}

impl AgentState {
    fn step(&self) -> Duration {
        Duration::from_millis(self.step_ms.load(Ordering::Relaxed))
    }

    fn drive(&self, started: &Started, steps: Vec<script::Step>) {
        driver::spawn(
            self.store.clone(),
            started.task.id.clone(),
            steps,
            self.step(),
            started.stop.clone(),
            self.shutdown.clone(),
        );
    }
}

#[derive(Debug)]
pub struct A2aAgent {
    server: ServerHandle,
    state: Arc<AgentState>,
}

impl A2aAgent {
    /// Starts `kind` on an ephemeral port at its default pace.
    pub async fn start(kind: A2aAgentKind) -> Self {
        Self::bind(crate::server::ephemeral(), kind, None)
            .await
            .expect("start an A2A agent mock on an ephemeral port")
    }

    /// `step`: the delay before each state transition (default: the kind's).
    pub async fn bind(
        addr: SocketAddr,
        kind: A2aAgentKind,
        step: Option<Duration>,
    ) -> Result<Self, MockError> {
        let cancel = CancellationToken::new();
        let step = step.unwrap_or_else(|| kind.default_step());
        let state = Arc::new(AgentState {
            kind,
            store: Arc::default(),
            recorder: Recorder::default(),
            step_ms: AtomicU64::new(u64::try_from(step.as_millis()).unwrap_or(u64::MAX)),
            shutdown: cancel.clone(),
        });
        let router = Router::new()
            .route(CARD_PATH, get(agent_card))
            .route(LEGACY_CARD_PATH, get(agent_card))
            .route(RPC_PATH, post(methods::rpc))
            .layer(axum::middleware::from_fn_with_state(
                state.recorder.clone(),
                record,
            ))
            .with_state(state.clone());
        let server = ServerHandle::serve(addr, router, cancel).await?;
        Ok(Self { server, state })
    }

    pub fn kind(&self) -> A2aAgentKind {
        self.state.kind
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn origin(&self) -> String {
        self.server.origin()
    }

    pub fn card_url(&self) -> String {
        format!("{}{CARD_PATH}", self.origin())
    }

    /// The JSON-RPC endpoint, as the card's `url` names it.
    pub fn url(&self) -> String {
        format!("{}{RPC_PATH}", self.origin())
    }

    /// Changes the pace of tasks started from now on.
    pub fn set_step(&self, step: Duration) {
        self.state.step_ms.store(
            u64::try_from(step.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Every task the agent holds, oldest first.
    pub fn tasks(&self) -> Vec<Task> {
        self.state.store.all()
    }

    /// Every request this agent received, card fetches included.
    pub fn received(&self) -> Vec<RecordedRequest> {
        self.state.recorder.all()
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// The card names the endpoint under the host the caller used, so it stays right behind
/// a compose service name or a gateway's rewrite of the address.
async fn agent_card(State(agent): State<Arc<AgentState>>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let url = format!("http://{host}{RPC_PATH}");
    axum::Json(card::card(agent.kind, &url)).into_response()
}
