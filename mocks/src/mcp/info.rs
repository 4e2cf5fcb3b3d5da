//! What each server announces in `initialize`: its name and the capabilities it has.

use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};

pub fn server_config(name: &str, instructions: &str, tools_list_changed: bool) -> ServerConfig {
    let caps = ServerCapabilities::builder().enable_tools();
    let caps = if tools_list_changed {
        caps.enable_tool_list_changed().build()
    } else {
        caps.build()
    };
    ServerConfig::new(caps)
        .with_server_info(Implementation::new(
            format!("gatez-mock-{name}"),
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(instructions)
}
