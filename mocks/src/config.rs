//! The binary's config (`deploy/mocks.yaml`) and starting every mock it names on its
//! fixed port. A section left out is a mock not started.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::Deserialize;

use crate::anthropic::AnthropicMock;
use crate::error::MockError;
use crate::gemini::GeminiMock;
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
}

impl RunningMocks {
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
    Ok(running)
}
