//! `gatez-mocks --config deploy/mocks.yaml`: every mock on its fixed port, until Ctrl-C
//! or SIGTERM. `gatez-mocks mcp-stdio --server KIND`: one MCP server on stdin/stdout, for
//! gateways that spawn their upstream.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gatez_mocks::config::{MocksConfig, start_all};
use gatez_mocks::mcp::{DEFAULT_SLOW_DELAY, McpOptions, McpServerKind, serve_stdio};

#[derive(Parser)]
#[command(
    name = "gatez-mocks",
    about = "Mock LLM providers, OIDC issuer, MCP servers, A2A agents and OTLP collector"
)]
struct Cli {
    /// YAML config naming each mock and its port.
    #[arg(long, default_value = "deploy/mocks.yaml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one MCP server over stdio (JSON-RPC lines on stdin/stdout).
    McpStdio {
        #[arg(long, value_enum)]
        server: McpServerKind,
        /// The benign server's `read_file` root (default: a temporary directory).
        #[arg(long)]
        root: Option<PathBuf>,
        /// The slow server's default delay, in milliseconds.
        #[arg(long, default_value_t = DEFAULT_SLOW_DELAY.as_millis() as u64)]
        delay_ms: u64,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs go to stderr: in `mcp-stdio` stdout is the protocol channel, and the banner
    // on stdout stays easy to parse.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Some(Command::McpStdio {
        server,
        root,
        delay_ms,
    }) = cli.command
    {
        let opts = McpOptions {
            root,
            delay: Duration::from_millis(delay_ms),
        };
        serve_stdio(server, opts).await?;
        return Ok(());
    }
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
