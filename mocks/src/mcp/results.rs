//! `tools/call` results in the two shapes MCP gives them: content the model reads, and
//! tool-level failures (`isError: true`) the model reads too, unlike JSON-RPC errors.

use rmcp::model::{CallToolResult, ContentBlock};

pub fn text_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

pub fn error_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}
