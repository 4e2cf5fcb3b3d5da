//! An upstream whose tools fail in both ways MCP distinguishes: `broken_tool` runs and
//! reports failure as an `isError: true` result (the model sees it), `crashing_tool` fails
//! the request itself with a JSON-RPC error (-32603, the client sees it).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::results::error_result;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FailArgs {
    /// Put into the failure message, so a test can match it end to end.
    #[serde(default)]
    pub reason: Option<String>,
}

impl FailArgs {
    fn reason(&self) -> &str {
        self.reason.as_deref().unwrap_or("upstream failure")
    }
}

#[derive(Clone)]
pub struct Failing {
    tool_router: ToolRouter<Self>,
}

impl Failing {
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl Failing {
    #[tool(description = "Always fails; the failure is reported as a tool result (isError).")]
    fn broken_tool(&self, Parameters(args): Parameters<FailArgs>) -> CallToolResult {
        error_result(format!("broken_tool failed: {}", args.reason()))
    }

    #[tool(description = "Always fails; the failure is a JSON-RPC internal error (-32603).")]
    fn crashing_tool(
        &self,
        Parameters(args): Parameters<FailArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Err(ErrorData::internal_error(
            format!("crashing_tool crashed: {}", args.reason()),
            Some(serde_json::json!({ "reason": args.reason() })),
        ))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Failing {
    fn get_info(&self) -> ServerConfig {
        super::info::server_config(
            "failing",
            "Every tool fails: broken_tool with isError, crashing_tool with a JSON-RPC error.",
            false,
        )
    }
}
