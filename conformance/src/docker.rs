//! Running a server in a Docker container through `testcontainers`.

use std::time::Duration;

use testcontainers::core::IntoContainerPort;

use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt};

use crate::process::last_lines;

/// Image pulls can take minutes on a cold CI runner; readiness has its own, shorter timeout.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(300);

/// A container to start, and its ports in the same order as the kind's host ports.
pub(crate) struct ContainerSpec {
    pub(crate) request: ContainerRequest<GenericImage>,
    pub(crate) ports: Vec<u16>,
}

/// A running (or stopped) container. Dropping it removes the container (testcontainers does
/// that on a background runtime, so it works from any test).
pub(crate) struct DockerServer {
    container: ContainerAsync<GenericImage>,
    host: String,
}

impl DockerServer {
    /// Starts the container with each container port published on the given host port.
    /// Fixed host ports (rather than Docker-assigned ones) keep `url()` valid across
    /// `stop`/`restart`, as with local processes.
    pub(crate) async fn start(spec: ContainerSpec, host_ports: &[u16]) -> Result<Self, String> {
        let mut request = spec.request.with_startup_timeout(STARTUP_TIMEOUT);
        for (&host, &inner) in host_ports.iter().zip(&spec.ports) {
            request = request.with_mapped_port(host, inner.tcp());
        }
        let container = request
            .start()
            .await
            .map_err(|e| format!("cannot start container: {e}"))?;
        let host = container
            .get_host()
            .await
            .map_err(|e| format!("cannot get container host: {e}"))?
            .to_string();
        Ok(Self { container, host })
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn id(&self) -> &str {
        self.container.id()
    }

    /// Kills the container at once (timeout 0): tests use this to simulate a crash.
    pub(crate) async fn stop(&self) -> Result<(), String> {
        self.container
            .stop_with_timeout(Some(0))
            .await
            .map_err(|e| format!("cannot stop container {}: {e}", self.id()))
    }

    /// Starts the stopped container again; its filesystem, and so the server's data, is kept.
    pub(crate) async fn start_again(&self) -> Result<(), String> {
        self.container
            .start()
            .await
            .map_err(|e| format!("cannot restart container {}: {e}", self.id()))
    }

    pub(crate) async fn is_running(&self) -> bool {
        self.container.is_running().await.unwrap_or(false)
    }

    /// The last `lines` lines of the container's stdout and stderr.
    pub(crate) async fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        for (name, bytes) in [
            ("stdout", self.container.stdout_to_vec().await),
            ("stderr", self.container.stderr_to_vec().await),
        ] {
            let body = match bytes {
                Ok(bytes) => last_lines(&String::from_utf8_lossy(&bytes), lines),
                Err(e) => format!("(cannot read: {e})"),
            };
            text.push_str(&format!("--- last lines of container {name} ---\n{body}\n"));
        }
        text
    }
}
