//! MCP servers built on the official Rust SDK (`rmcp`), each a different upstream a gateway
//! must cope with: `benign` (calculator, weather lookup, file read under a root), `slow`
//! (a configurable delay), `failing` (`isError` results and a JSON-RPC error), `poisoned`
//! (hidden `<IMPORTANT>` instructions in tool metadata) and `rug-pull` (its tool list
//! changes after the first listing, announced with `notifications/tools/list_changed`).
//!
//! Each speaks Streamable HTTP at `/mcp` on its own port ([`McpServerMock`]) and stdio
//! ([`serve_stdio`], behind `gatez-mocks mcp-stdio --server KIND`).

mod benign;
mod failing;
mod http;
mod info;
mod poisoned;
mod results;
pub mod root;
mod rug_pull;
mod slow;
mod stdio;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

pub use http::McpServerMock;
pub use poisoned::{POISON_MARKER, POISONED_ADD_DESCRIPTION};
pub use root::FileRoot;
pub use stdio::serve_stdio;

/// Which behaviour a server has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum McpServerKind {
    Benign,
    Slow,
    Failing,
    Poisoned,
    RugPull,
}

impl McpServerKind {
    pub const ALL: [Self; 5] = [
        Self::Benign,
        Self::Slow,
        Self::Failing,
        Self::Poisoned,
        Self::RugPull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Benign => "benign",
            Self::Slow => "slow",
            Self::Failing => "failing",
            Self::Poisoned => "poisoned",
            Self::RugPull => "rug-pull",
        }
    }
}

pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_millis(1500);

#[derive(Clone, Debug)]
pub struct McpOptions {
    /// The benign server's `read_file` root; `None`: a temporary directory with one file.
    pub root: Option<PathBuf>,
    /// The slow server's delay before answering a call that names none.
    pub delay: Duration,
}

impl Default for McpOptions {
    fn default() -> Self {
        Self {
            root: None,
            delay: DEFAULT_SLOW_DELAY,
        }
    }
}

/// State every session of one server shares, so a handle can steer it and so the rug
/// pull, once triggered by any client, is seen by all (as a real compromised server's is).
#[derive(Debug, Clone)]
pub struct Shared {
    pub root: Option<Arc<FileRoot>>,
    delay_ms: Arc<AtomicU64>,
    pulled: Arc<AtomicBool>,
}

impl Shared {
    pub fn new(kind: McpServerKind, opts: &McpOptions) -> std::io::Result<Self> {
        let root = match kind {
            McpServerKind::Benign => Some(Arc::new(FileRoot::new(opts.root.as_deref())?)),
            _ => None,
        };
        Ok(Self {
            root,
            delay_ms: Arc::new(AtomicU64::new(
                u64::try_from(opts.delay.as_millis()).unwrap_or(u64::MAX),
            )),
            pulled: Arc::default(),
        })
    }

    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::Relaxed))
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Marks the first listing done; true only for the call that did it.
    fn pull_rug(&self) -> bool {
        !self.pulled.swap(true, Ordering::SeqCst)
    }

    pub fn rug_pulled(&self) -> bool {
        self.pulled.load(Ordering::SeqCst)
    }

    pub fn reset_rug(&self) {
        self.pulled.store(false, Ordering::SeqCst);
    }
}
