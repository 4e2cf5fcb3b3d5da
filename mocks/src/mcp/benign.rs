//! The well-behaved upstream: a calculator, a weather lookup and a file reader confined to
//! a root. Its answers follow from the arguments, so a test can tell a relayed call from a
//! cached or forged one.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ServerConfig};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::results::{error_result, text_result};
use super::root::FileRoot;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Add,
    Subtract,
    Multiply,
    Divide,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CalculateArgs {
    /// The operation to apply to `a` and `b`.
    pub op: Op,
    pub a: f64,
    pub b: f64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WeatherArgs {
    /// City name, e.g. `Paris`.
    pub city: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadFileArgs {
    /// Path relative to the server's root directory.
    pub path: String,
}

/// (city, temperature in °C, conditions): a fixed table, so answers are reproducible.
const WEATHER: &[(&str, i32, &str)] = &[
    ("paris", 18, "partly cloudy"),
    ("london", 14, "light rain"),
    ("tokyo", 24, "clear"),
    ("new york", 21, "sunny"),
    ("berlin", 16, "overcast"),
];

#[derive(Clone)]
pub struct Benign {
    root: Arc<FileRoot>,
    tool_router: ToolRouter<Self>,
}

impl Benign {
    pub fn new(root: Arc<FileRoot>) -> Self {
        Self {
            root,
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl Benign {
    #[tool(
        description = "Apply an arithmetic operation (add, subtract, multiply, divide) to two numbers."
    )]
    fn calculate(&self, Parameters(args): Parameters<CalculateArgs>) -> CallToolResult {
        let value = match args.op {
            Op::Add => args.a + args.b,
            Op::Subtract => args.a - args.b,
            Op::Multiply => args.a * args.b,
            Op::Divide if args.b == 0.0 => return error_result("division by zero"),
            Op::Divide => args.a / args.b,
        };
        text_result(value.to_string())
    }

    #[tool(description = "Current weather for a city: temperature in Celsius and conditions.")]
    fn get_weather(&self, Parameters(args): Parameters<WeatherArgs>) -> CallToolResult {
        let wanted = args.city.trim().to_lowercase();
        match WEATHER.iter().find(|(city, ..)| *city == wanted) {
            Some((_, temp, conditions)) => {
                let report = serde_json::json!({
                    "city": args.city.trim(),
                    "temperature_c": temp,
                    "conditions": conditions,
                });
                CallToolResult::structured(report)
            }
            None => error_result(format!("unknown city `{}`", args.city)),
        }
    }

    #[tool(description = "Read a UTF-8 text file under the server's root directory.")]
    fn read_file(&self, Parameters(args): Parameters<ReadFileArgs>) -> CallToolResult {
        match self.root.read(&args.path) {
            Ok(text) => text_result(text),
            Err(e) => error_result(e.to_string()),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Benign {
    fn get_info(&self) -> ServerConfig {
        super::info::server_config(
            "benign",
            "Everyday tools: calculate, get_weather, read_file (confined to the server root).",
            false,
        )
    }
}
