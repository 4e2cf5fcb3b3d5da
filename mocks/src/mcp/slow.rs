//! An upstream that takes its time, for gateway timeouts and cancellation: `slow_echo`
//! answers after the server's delay (or the call's `delay_ms`). A cancelled request
//! (`notifications/cancelled`, or the client going away) stops waiting at once.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

use super::Shared;
use super::results::text_result;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SlowEchoArgs {
    /// Returned unchanged once the delay has passed.
    pub text: String,
    /// Overrides the server's delay for this call, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

#[derive(Clone)]
pub struct Slow {
    shared: Shared,
    tool_router: ToolRouter<Self>,
}

impl Slow {
    pub fn new(shared: Shared) -> Self {
        Self {
            shared,
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl Slow {
    #[tool(description = "Echo `text` back after a delay (the server's, or `delay_ms`).")]
    async fn slow_echo(
        &self,
        Parameters(args): Parameters<SlowEchoArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let delay = args
            .delay_ms
            .map(Duration::from_millis)
            .unwrap_or_else(|| self.shared.delay());
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(text_result(args.text)),
            _ = context.ct.cancelled() => {
                Err(ErrorData::internal_error("request cancelled", None))
            }
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Slow {
    fn get_info(&self) -> ServerConfig {
        super::info::server_config(
            "slow",
            "slow_echo answers after a delay; use it to exercise timeouts.",
            false,
        )
    }
}
