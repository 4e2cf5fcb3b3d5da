//! What every mock LLM provider shares: its listener, request record, faults and expected
//! API key, plus a small admin API (`/__mock/...`) so a test driving the standalone binary
//! can do over HTTP what a library test does through the handle.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use tokio_util::sync::CancellationToken;

use crate::error::MockError;
use crate::fault::{Fault, FaultControl};
use crate::record::{RecordedRequest, Recorder, record};
use crate::server::ServerHandle;

#[derive(Debug, Default)]
pub struct MockCore {
    pub recorder: Recorder,
    pub faults: FaultControl,
    pub cancel: CancellationToken,
    api_key: RwLock<Option<String>>,
    models: RwLock<Vec<String>>,
}

impl MockCore {
    /// The models this provider serves; asking for another is the provider's "not found".
    pub fn models(&self) -> Vec<String> {
        self.models.read().expect("models lock").clone()
    }

    pub fn has_model(&self, model: &str) -> bool {
        self.models
            .read()
            .expect("models lock")
            .iter()
            .any(|m| m == model)
    }

    /// The one key this mock accepts, if a test set one; otherwise any non-empty key passes.
    pub fn expected_key(&self) -> Option<String> {
        self.api_key.read().expect("key lock").clone()
    }

    pub fn fault_for(&self, headers: &HeaderMap) -> Result<Fault, MockError> {
        self.faults.resolve(headers)
    }

    /// Whether `presented` is acceptable: present, non-empty, and the expected key if set.
    pub fn key_ok(&self, presented: Option<&str>) -> bool {
        match (presented, self.expected_key()) {
            (None, _) => false,
            (Some(""), _) => false,
            (Some(k), Some(expected)) => k == expected,
            (Some(_), None) => true,
        }
    }
}

#[derive(Debug)]
pub struct ProviderMock {
    server: ServerHandle,
    core: Arc<MockCore>,
}

impl ProviderMock {
    /// Serves `routes` on `addr` behind the recorder, plus the admin routes.
    pub async fn spawn(
        addr: SocketAddr,
        routes: Router<Arc<MockCore>>,
        models: &[&str],
    ) -> Result<Self, MockError> {
        let core = Arc::new(MockCore {
            models: RwLock::new(models.iter().map(|m| m.to_string()).collect()),
            ..MockCore::default()
        });
        let router = routes
            .layer(axum::middleware::from_fn_with_state(
                core.recorder.clone(),
                record,
            ))
            .with_state(core.clone())
            .merge(admin_routes(core.clone()));
        let server = ServerHandle::serve(addr, router, core.cancel.clone()).await?;
        Ok(Self { server, core })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// Every request this mock received, oldest first (admin calls excluded).
    pub fn received(&self) -> Vec<RecordedRequest> {
        self.core.recorder.all()
    }

    pub fn recorder(&self) -> &Recorder {
        &self.core.recorder
    }

    /// Applies `fault` to every later request until `clear_faults`.
    pub fn set_fault(&self, fault: Fault) {
        self.core.faults.set(fault);
    }

    /// Applies `fault` to the next request only (queued: push several for several requests).
    pub fn push_fault(&self, fault: Fault) {
        self.core.faults.push_once(fault);
    }

    pub fn clear_faults(&self) {
        self.core.faults.clear();
    }

    /// Accept only this API key from now on (`None`: any non-empty key).
    pub fn require_api_key(&self, key: Option<&str>) {
        *self.core.api_key.write().expect("key lock") = key.map(str::to_owned);
    }

    /// Replaces the served model list.
    pub fn set_models<S: Into<String>>(&self, models: impl IntoIterator<Item = S>) {
        *self.core.models.write().expect("models lock") =
            models.into_iter().map(Into::into).collect();
    }

    pub fn core(&self) -> &Arc<MockCore> {
        &self.core
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

fn admin_routes(core: Arc<MockCore>) -> Router {
    Router::new()
        .route(
            "/__mock/requests",
            get(list_requests).delete(clear_requests),
        )
        .route("/__mock/fault", put(set_fault).delete(clear_fault))
        .with_state(core)
}

async fn list_requests(State(core): State<Arc<MockCore>>) -> Response {
    axum::Json(core.recorder.all()).into_response()
}

async fn clear_requests(State(core): State<Arc<MockCore>>) -> StatusCode {
    core.recorder.clear();
    StatusCode::NO_CONTENT
}

/// Body: a fault spec in the `x-mock-fault` syntax.
async fn set_fault(State(core): State<Arc<MockCore>>, spec: String) -> Response {
    match spec.parse::<Fault>() {
        Ok(f) => {
            core.faults.set(f);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn clear_fault(State(core): State<Arc<MockCore>>) -> StatusCode {
    core.faults.clear();
    StatusCode::NO_CONTENT
}

/// Implements `Deref<Target = ProviderMock>` for a provider's newtype, so each provider's
/// handle has the shared methods (`received`, `set_fault`, ...) next to its own.
macro_rules! provider_handle {
    ($name:ident) => {
        impl std::ops::Deref for $name {
            type Target = $crate::provider::ProviderMock;
            fn deref(&self) -> &Self::Target {
                &self.inner
            }
        }

        impl $name {
            /// Stops the mock and waits until its listener is closed.
            pub async fn shutdown(self) {
                self.inner.shutdown().await
            }
        }
    };
}
pub(crate) use provider_handle;
