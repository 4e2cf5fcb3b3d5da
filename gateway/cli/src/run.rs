//! Running layers: load config, set up telemetry and the shared runtime, serve, and shut down
//! in order on SIGTERM/SIGINT (stop accepting, drain, flush the event sink).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use gatez_core::config::{GatezConfig, load_file};
use gatez_core::http::{Server, shutdown_signal};
use gatez_core::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use crate::Layer;

/// Exit code for a config that cannot be used (as `EX_CONFIG` in sysexits.h).
const EXIT_CONFIG: u8 = 78;

pub fn load_config(path: &Path) -> Result<GatezConfig, ExitCode> {
    load_file(path).map_err(|e| {
        eprintln!("gatez: {}: {e}", path.display());
        ExitCode::from(EXIT_CONFIG)
    })
}

pub fn main(config_path: &Path, only: Option<Layer>) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatez: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Telemetry is set up inside the runtime's context (the exporter may need it) but its
    // guard is dropped after `block_on` returns: flushing spans blocks.
    let telemetry = {
        let _context = runtime.enter();
        match gatez_core::telemetry::init("gatez", &config.telemetry) {
            Ok(guard) => guard,
            Err(e) => {
                eprintln!("gatez: telemetry: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    };
    let code = runtime.block_on(async {
        match serve(&config, config_path, only).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                eprintln!("gatez: {e:#}");
                ExitCode::FAILURE
            }
        }
    });
    drop(telemetry);
    code
}

async fn serve(
    config: &GatezConfig,
    config_path: &Path,
    only: Option<Layer>,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();

    // Mock providers first, so the layers find their demo upstreams answering.
    if only.is_none()
        && let Some(mocks) = &config.mocks
    {
        let base = config_path.parent().unwrap_or(Path::new("."));
        let path = base.join(&mocks.config);
        let mocks_config = gatez_mocks::config::MocksConfig::load(&path)
            .map_err(|e| anyhow::anyhow!("mocks config {}: {e}", path.display()))?;
        let running = gatez_mocks::config::start_all(mocks_config).await?;
        for line in running.describe() {
            tracing::info!("mock {line}");
        }
        let token = shutdown.clone();
        tasks.spawn(async move {
            token.cancelled().await;
            drop(running);
            Ok(())
        });
    }

    let runtime = Runtime::build(config).await?;
    let wanted = |layer: Layer, enabled: bool| match only {
        Some(one) => one == layer,
        None => enabled,
    };
    let mut servers: Vec<Server> = Vec::new();
    if wanted(Layer::Edge, config.edge.server.enabled) {
        servers.push(gatez_edge::bind(config, runtime.clone()).await?);
    }
    if wanted(Layer::Ai, config.ai.server.enabled) {
        servers.push(gatez_ai::bind(config, runtime.clone()).await?);
    }
    if wanted(Layer::Agent, config.agent.server.enabled) {
        servers.push(gatez_agent::bind(config, runtime.clone()).await?);
    }
    anyhow::ensure!(!servers.is_empty(), "no layer is enabled in the config");
    for server in servers {
        let token = shutdown.clone();
        tasks.spawn(async move { server.run(token).await.map_err(anyhow::Error::from) });
    }

    tokio::select! {
        () = shutdown_signal() => tracing::info!("shutdown requested"),
        Some(result) = tasks.join_next() => {
            // A server or the mocks stopped on their own: that is a failure; stop the rest.
            shutdown.cancel();
            drain(&mut tasks, config.shutdown.drain_timeout).await;
            runtime.shutdown().await;
            return match result {
                Ok(Ok(())) => Err(anyhow::anyhow!("a server stopped unexpectedly")),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(e.into()),
            };
        }
    }
    shutdown.cancel();
    drain(&mut tasks, config.shutdown.drain_timeout).await;
    runtime.shutdown().await;
    tracing::info!("bye");
    Ok(())
}

/// Waits for the servers to drain; each enforces the drain timeout itself, the margin here
/// only guards against a task that ignores cancellation.
async fn drain(tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>, drain_timeout: Duration) {
    let all = async {
        while let Some(result) = tasks.join_next().await {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("{e:#}"),
                Err(e) => tracing::error!("task failed: {e}"),
            }
        }
    };
    if tokio::time::timeout(drain_timeout + Duration::from_secs(1), all)
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not stop in time");
        tasks.abort_all();
    }
}
