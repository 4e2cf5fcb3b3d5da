//! Mocks of everything outside the user's walls — LLM providers, an OIDC issuer, MCP
//! servers, A2A agents and an OTLP collector — speaking the real wire formats, so the
//! gateway built against them works unchanged against the real services.
//!
//! Every mock starts on an ephemeral loopback port from a test
//! (`let m = gatez_mocks::openai::OpenAiMock::start().await;`) and stops when dropped;
//! the `gatez-mocks` binary starts them all on fixed ports from a config file.

pub mod a2a;
pub mod anthropic;
pub mod config;
pub mod deliver;
pub mod embedding;
pub mod error;
pub mod fault;
pub mod gemini;
pub mod ids;
pub mod mcp;
pub mod oidc;
pub mod ollama;
pub mod openai;
pub mod otlp;
pub mod provider;
pub mod record;
pub mod script;
pub mod server;
pub mod tokens;

pub use error::MockError;
pub use fault::Fault;
pub use record::RecordedRequest;
