//! The crate's error type: what can go wrong starting or steering a mock.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid fault spec `{spec}`: {reason}")]
    FaultSpec { spec: String, reason: String },
    #[error("key generation failed: {0}")]
    KeyGen(String),
    #[error("token signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("unknown realm `{0}`")]
    UnknownRealm(String),
    #[error("config {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("MCP: {0}")]
    Mcp(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
