//! An MCP server on stdio, for gateways that spawn their upstream as a child process:
//! JSON-RPC lines on stdin/stdout, logs on stderr, exit when stdin closes.

use rmcp::{ServerHandler, ServiceExt};

use super::benign::Benign;
use super::failing::Failing;
use super::poisoned::Poisoned;
use super::rug_pull::RugPull;
use super::slow::Slow;
use super::{McpOptions, McpServerKind, Shared};
use crate::error::MockError;

/// Serves `kind` on this process's stdin/stdout until the client disconnects.
pub async fn serve_stdio(kind: McpServerKind, opts: McpOptions) -> Result<(), MockError> {
    let shared = Shared::new(kind, &opts)?;
    match kind {
        McpServerKind::Benign => {
            let root = shared.root.clone().expect("the benign server has a root");
            run(Benign::new(root)).await
        }
        McpServerKind::Slow => run(Slow::new(shared)).await,
        McpServerKind::Failing => run(Failing::new()).await,
        McpServerKind::Poisoned => run(Poisoned::new()).await,
        McpServerKind::RugPull => run(RugPull::new(shared)).await,
    }
}

async fn run<S: ServerHandler>(server: S) -> Result<(), MockError> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| MockError::Mcp(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| MockError::Mcp(e.to_string()))?;
    Ok(())
}
