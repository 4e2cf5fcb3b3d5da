//! The binary's config (`deploy/mocks.yaml`) and starting every mock it names on its
//! fixed port. A section left out is a mock not started.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::a2a::{A2aAgent, A2aAgentKind};
use crate::anthropic::AnthropicMock;
use crate::error::MockError;
use crate::gemini::GeminiMock;
use crate::mcp::{McpOptions, McpServerKind, McpServerMock};
use crate::oidc::{OidcIssuer, Realm};
use crate::ollama::OllamaMock;
use crate::openai::OpenAiMock;
use crate::otlp::OtlpCollector;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MocksConfig {
    #[serde(default = "loopback")]
    pub host: IpAddr,
    pub openai: Option<ProviderConfig>,
    pub anthropic: Option<ProviderConfig>,
    pub gemini: Option<ProviderConfig>,
    pub ollama: Option<ProviderConfig>,
    pub oidc: Option<OidcConfig>,
    pub otlp: Option<PortConfig>,
    pub mcp: Option<McpConfig>,
    pub a2a: Option<A2aConfig>,
}

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub port: u16,
    /// The only key accepted; absent: any non-empty key.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Replaces the provider's default model list.
    #[serde(default)]
    pub models: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    pub port: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    pub port: u16,
    /// Origin named in `iss`, if clients reach the issuer under another name.
    #[serde(default)]
    pub public_url: Option<String>,
    pub realms: Vec<Realm>,
}

/// One entry per MCP server kind; each on its own port, endpoint `/mcp`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    pub benign: Option<McpServerConfig>,
    pub slow: Option<McpServerConfig>,
    pub failing: Option<McpServerConfig>,
    pub poisoned: Option<McpServerConfig>,
    pub rug_pull: Option<McpServerConfig>,
}

impl McpConfig {
    pub fn get(&self, kind: McpServerKind) -> Option<&McpServerConfig> {
        match kind {
            McpServerKind::Benign => self.benign.as_ref(),
            McpServerKind::Slow => self.slow.as_ref(),
            McpServerKind::Failing => self.failing.as_ref(),
            McpServerKind::Poisoned => self.poisoned.as_ref(),
            McpServerKind::RugPull => self.rug_pull.as_ref(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    pub port: u16,
    /// Benign only: the directory `read_file` serves (default: a temporary directory).
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Slow only: the delay before answering, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

impl McpServerConfig {
    fn options(&self) -> McpOptions {
        let mut opts = McpOptions {
            root: self.root.clone(),
            ..McpOptions::default()
        };
        if let Some(ms) = self.delay_ms {
            opts.delay = Duration::from_millis(ms);
        }
        opts
    }
}

/// One entry per A2A agent; card at `/.well-known/agent-card.json`, JSON-RPC at `/a2a`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct A2aConfig {
    pub echo: Option<A2aAgentConfig>,
    pub slow: Option<A2aAgentConfig>,
}

impl A2aConfig {
    pub fn get(&self, kind: A2aAgentKind) -> Option<&A2aAgentConfig> {
        match kind {
            A2aAgentKind::Echo => self.echo.as_ref(),
            A2aAgentKind::Slow => self.slow.as_ref(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct A2aAgentConfig {
    pub port: u16,
    /// Delay before each task state transition, in milliseconds (default: the agent's).
    #[serde(default)]
    pub step_ms: Option<u64>,
}

impl MocksConfig {
    pub fn load(path: &Path) -> Result<Self, MockError> {
        let err = |reason: String| MockError::Config {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        serde_yaml_ng::from_str(&text).map_err(|e| err(e.to_string()))
    }
}

/// Every started mock; dropping this stops them all.
#[derive(Debug, Default)]
pub struct RunningMocks {
    pub openai: Option<OpenAiMock>,
    pub anthropic: Option<AnthropicMock>,
    pub gemini: Option<GeminiMock>,
    pub ollama: Option<OllamaMock>,
    pub oidc: Option<OidcIssuer>,
    pub otlp: Option<OtlpCollector>,
    /// In `McpServerKind::ALL` order.
    pub mcp: Vec<McpServerMock>,
    /// In `A2aAgentKind::ALL` order.
    pub a2a: Vec<A2aAgent>,
}

impl RunningMocks {
    pub fn mcp(&self, kind: McpServerKind) -> Option<&McpServerMock> {
        self.mcp.iter().find(|m| m.kind() == kind)
    }

    pub fn a2a(&self, kind: A2aAgentKind) -> Option<&A2aAgent> {
        self.a2a.iter().find(|a| a.kind() == kind)
    }

    /// One line per mock: name and URL, for the binary's start-up banner.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut add = |name: &str, url: Option<String>| {
            if let Some(url) = url {
                lines.push(format!("{name:<10} {url}"));
            }
        };
        add("openai", self.openai.as_ref().map(|m| m.base_url()));
        add("anthropic", self.anthropic.as_ref().map(|m| m.base_url()));
        add("gemini", self.gemini.as_ref().map(|m| m.base_url()));
        add("ollama", self.ollama.as_ref().map(|m| m.base_url()));
        add(
            "oidc",
            self.oidc
                .as_ref()
                .map(|m| format!("{} (realms under /realms/)", m.origin())),
        );
        add(
            "otlp",
            self.otlp
                .as_ref()
                .map(|m| format!("{} (POST /v1/traces)", m.endpoint())),
        );
        for m in &self.mcp {
            add(&format!("mcp/{}", m.kind().name()), Some(m.url()));
        }
        for a in &self.a2a {
            add(&format!("a2a/{}", a.kind().name()), Some(a.card_url()));
        }
        lines
    }
}

fn configure(mock: &crate::provider::ProviderMock, cfg: &ProviderConfig) {
    mock.require_api_key(cfg.api_key.as_deref());
    if let Some(models) = &cfg.models {
        mock.set_models(models.iter().cloned());
    }
}

pub async fn start_all(cfg: MocksConfig) -> Result<RunningMocks, MockError> {
    let at = |port: u16| SocketAddr::new(cfg.host, port);
    let mut running = RunningMocks::default();
    if let Some(p) = &cfg.openai {
        let m = OpenAiMock::bind(at(p.port)).await?;
        configure(&m, p);
        running.openai = Some(m);
    }
    if let Some(p) = &cfg.anthropic {
        let m = AnthropicMock::bind(at(p.port)).await?;
        configure(&m, p);
        running.anthropic = Some(m);
    }
    if let Some(p) = &cfg.gemini {
        let m = GeminiMock::bind(at(p.port)).await?;
        configure(&m, p);
        running.gemini = Some(m);
    }
    if let Some(p) = &cfg.ollama {
        let m = OllamaMock::bind(at(p.port)).await?;
        configure(&m, p);
        running.ollama = Some(m);
    }
    if let Some(o) = cfg.oidc {
        running.oidc = Some(OidcIssuer::bind(at(o.port), o.public_url, o.realms).await?);
    }
    if let Some(o) = &cfg.otlp {
        running.otlp = Some(OtlpCollector::bind(at(o.port)).await?);
    }
    if let Some(mcp) = &cfg.mcp {
        for kind in McpServerKind::ALL {
            if let Some(s) = mcp.get(kind) {
                running
                    .mcp
                    .push(McpServerMock::bind(at(s.port), kind, s.options()).await?);
            }
        }
    }
    if let Some(a2a) = &cfg.a2a {
        for kind in A2aAgentKind::ALL {
            if let Some(a) = a2a.get(kind) {
                let step = a.step_ms.map(Duration::from_millis);
                running
                    .a2a
                    .push(A2aAgent::bind(at(a.port), kind, step).await?);
            }
        }
    }
    Ok(running)
}
