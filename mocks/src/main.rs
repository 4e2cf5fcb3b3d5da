//! `gatez-mocks --config deploy/mocks.yaml`: every mock on its fixed port, until Ctrl-C
//! or SIGTERM.

use std::path::PathBuf;

use clap::Parser;
use gatez_mocks::config::{MocksConfig, start_all};

#[derive(Parser)]
#[command(
    name = "gatez-mocks",
    about = "Mock LLM providers, OIDC issuer, MCP servers, A2A agents and OTLP collector"
)]
struct Cli {
    /// YAML config naming each mock and its port.
    #[arg(long, default_value = "deploy/mocks.yaml")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let cfg = MocksConfig::load(&cli.config)?;
    let running = start_all(cfg).await?;
    for line in running.describe() {
        println!("{line}");
    }
    println!("gatez-mocks ready");
    shutdown_signal().await;
    drop(running);
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
