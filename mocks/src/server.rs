//! Lifecycle of one mock's HTTP listener: bind, serve, and stop when the handle drops.
//!
//! Shutdown is driven by a `CancellationToken` rather than by aborting the task, because
//! connections run on their own tasks: handlers that hang or pace a stream on purpose also
//! watch the token, so dropping a mock never leaves a test waiting on a request it faulted.

use std::net::SocketAddr;

use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::MockError;

/// The loopback address with an ephemeral port, which is what every test mock binds.
pub fn ephemeral() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Binds `addr` and serves `router` until `cancel` fires or the handle drops.
    pub async fn serve(
        addr: SocketAddr,
        router: Router,
        cancel: CancellationToken,
    ) -> Result<Self, MockError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| MockError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(%addr, error = %e, "mock server stopped with an error");
            }
        });
        Ok(Self {
            addr,
            cancel,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, with no trailing slash.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Stops accepting, releases hanging handlers and waits until the listener is closed.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
