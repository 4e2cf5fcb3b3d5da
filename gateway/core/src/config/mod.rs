//! Typed configuration of a Gatez process, loaded from YAML with environment overrides and
//! validated at start: a bad config fails with the path of every offending field.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub mod load;
pub mod secret;
pub mod validate;

pub use load::{ConfigError, ENV_PREFIX, load_file, load_str};
pub use secret::Secret;
pub use validate::{Validate, Validator};

/// The whole config file. Every section has defaults, so an empty file runs everything on
/// embedded stores.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatezConfig {
    #[serde(default)]
    pub telemetry: crate::telemetry::TelemetryConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub stores: crate::stores::StoresConfig,
    #[serde(default)]
    pub edge: EdgeConfig,
    #[serde(default)]
    pub ai: AiConfig,
    #[serde(default)]
    pub agent: AgentConfig,
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// Mock providers for demos and load tests, started by `gatez up` (never by `serve`).
    #[serde(default)]
    pub mocks: Option<MocksConfig>,
}

/// Where the mock providers' own config is (see `deploy/mocks.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MocksConfig {
    /// Path of the mocks' config file, relative to this config file.
    pub config: PathBuf,
}

impl Validate for GatezConfig {
    fn validate(&self, v: &mut Validator) {
        v.adopt("telemetry", self.telemetry.validate());
        v.section("identity", &self.identity);
        v.section("stores", &self.stores);
        v.section("edge", &self.edge);
        v.section("ai", &self.ai);
        v.section("agent", &self.agent);
        v.section("shutdown", &self.shutdown);
        let ports = [
            ("edge.listen", &self.edge.server),
            ("ai.listen", &self.ai.server),
            ("agent.listen", &self.agent.server),
        ];
        for (i, (name, a)) in ports.iter().enumerate() {
            for (other, b) in &ports[i + 1..] {
                if a.enabled && b.enabled && a.listen.port() != 0 && a.listen == b.listen {
                    v.error(name, format!("same address as `{other}` ({})", a.listen));
                }
            }
        }
    }
}

/// Where one layer listens. Each layer's section holds one, and grows the layer's own settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Whether `gatez up` starts this layer.
    pub enabled: bool,
}

impl ServerConfig {
    fn on(port: u16) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            enabled: true,
        }
    }
}

macro_rules! layer_section {
    ($(#[$doc:meta])* $name:ident, $port:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields, from = "ServerSection")]
        pub struct $name {
            pub server: ServerConfig,
        }

        impl Default for $name {
            fn default() -> Self {
                Self { server: ServerConfig::on($port) }
            }
        }

        impl From<ServerSection> for $name {
            fn from(s: ServerSection) -> Self {
                let d = ServerConfig::on($port);
                Self {
                    server: ServerConfig {
                        listen: s.listen.unwrap_or(d.listen),
                        enabled: s.enabled.unwrap_or(d.enabled),
                    },
                }
            }
        }

        impl Validate for $name {
            fn validate(&self, _v: &mut Validator) {}
        }
    };
}

/// The fields every layer section shares, as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    #[serde(default)]
    listen: Option<SocketAddr>,
    #[serde(default)]
    enabled: Option<bool>,
}

layer_section!(
    /// L1 API gateway (default `127.0.0.1:9080`).
    EdgeConfig,
    9080
);
layer_section!(
    /// L2 AI gateway (default `127.0.0.1:4000`).
    AiConfig,
    4000
);
layer_section!(
    /// L3 agent gateway (default `127.0.0.1:5001`).
    AgentConfig,
    5001
);

/// The signed identity assertion L1 hands to L2 and L3.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// `iss` of the assertions this deployment issues and trusts.
    #[serde(default = "IdentityConfig::default_issuer")]
    pub issuer: String,
    /// Lifetime of an assertion. Short: it only has to cross one hop.
    #[serde(default = "IdentityConfig::default_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// Ed25519 private key (PKCS#8 PEM) the layers sign with. When absent a key is generated
    /// at start, which only works when all layers run in one process (`gatez up`).
    #[serde(default)]
    pub signing_key: Option<Secret>,
    /// Public keys (SPKI PEM files) whose assertions are accepted, besides the signing key's
    /// own. Several during a key rotation.
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
}

impl IdentityConfig {
    fn default_issuer() -> String {
        "gatez".into()
    }
    fn default_ttl() -> Duration {
        Duration::from_secs(60)
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            issuer: Self::default_issuer(),
            ttl: Self::default_ttl(),
            signing_key: None,
            trusted_keys: Vec::new(),
        }
    }
}

impl Validate for IdentityConfig {
    fn validate(&self, v: &mut Validator) {
        v.check(
            !self.issuer.trim().is_empty(),
            "issuer",
            "must not be empty",
        );
        v.check(
            self.ttl >= Duration::from_secs(1) && self.ttl <= Duration::from_secs(300),
            "ttl",
            "must be between 1s and 5m: assertions only cross one hop",
        );
        if let Some(key) = &self.signing_key {
            v.adopt(
                "signing_key",
                crate::identity::keys::KeyPair::from_pkcs8_pem(key.expose())
                    .map(drop)
                    .map_err(|e| e.to_string()),
            );
        }
        for (i, path) in self.trusted_keys.iter().enumerate() {
            let field = format!("trusted_keys[{i}]");
            match std::fs::read_to_string(path) {
                Ok(pem) => v.adopt(
                    &field,
                    crate::identity::keys::PublicKey::from_spki_pem(&pem)
                        .map(drop)
                        .map_err(|e| e.to_string()),
                ),
                Err(e) => v.error(&field, format!("cannot read {}: {e}", path.display())),
            }
        }
    }
}

/// Graceful shutdown.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight requests may take to finish after SIGTERM before they are cut.
    #[serde(default = "ShutdownConfig::default_drain", with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl ShutdownConfig {
    fn default_drain() -> Duration {
        Duration::from_secs(3)
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_timeout: Self::default_drain(),
        }
    }
}

impl Validate for ShutdownConfig {
    fn validate(&self, v: &mut Validator) {
        v.check(
            self.drain_timeout <= Duration::from_secs(300),
            "drain_timeout",
            "must be at most 5m",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<GatezConfig, ConfigError> {
        load_str(
            text,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn empty_file_gives_defaults() {
        let cfg = load("", &[]).unwrap();
        assert_eq!(cfg.edge.server.listen.port(), 9080);
        assert_eq!(cfg.ai.server.listen.port(), 4000);
        assert_eq!(cfg.agent.server.listen.port(), 5001);
        assert_eq!(cfg.identity.ttl, Duration::from_secs(60));
    }

    #[test]
    fn unknown_field_names_its_path() {
        let err = load("edge:\n  listen: 127.0.0.1:1\n  lisen: x\n", &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("edge"), "{msg}");
        assert!(msg.contains("lisen"), "{msg}");
    }

    #[test]
    fn wrong_type_names_its_path() {
        let err = load("shutdown:\n  drain_timeout: soon\n", &[]).unwrap_err();
        match err {
            ConfigError::Field { path, .. } => assert_eq!(path, "shutdown.drain_timeout"),
            other => panic!("{other}"),
        }
        let err = load("edge:\n  listen: not-an-address\n", &[]).unwrap_err();
        assert!(err.to_string().contains("edge.listen"), "{err}");
    }

    #[test]
    fn yaml_syntax_error_is_reported() {
        let err = load("edge: [\n", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax(_)), "{err}");
    }

    #[test]
    fn semantic_errors_are_all_listed_with_paths() {
        let err = load(
            "identity:\n  ttl: 1h\n  issuer: ''\nedge:\n  listen: 127.0.0.1:7000\nai:\n  listen: 127.0.0.1:7000\n",
            &[],
        )
        .unwrap_err();
        let ConfigError::Invalid(errors) = &err else {
            panic!("{err}")
        };
        let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.contains(&"identity.ttl"), "{paths:?}");
        assert!(paths.contains(&"identity.issuer"), "{paths:?}");
        assert!(paths.contains(&"edge.listen"), "{paths:?}");
    }

    #[test]
    fn env_overrides_keep_types_and_create_sections() {
        let cfg = load(
            "edge:\n  listen: 127.0.0.1:1\n",
            &[
                ("GATEZ__EDGE__LISTEN", "0.0.0.0:8080"),
                ("GATEZ__AI__ENABLED", "false"),
                ("GATEZ__SHUTDOWN__DRAIN_TIMEOUT", "7s"),
                ("OTHER__EDGE__LISTEN", "ignored"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.edge.server.listen.to_string(), "0.0.0.0:8080");
        assert!(!cfg.ai.server.enabled);
        assert_eq!(cfg.shutdown.drain_timeout, Duration::from_secs(7));
    }

    #[test]
    fn bad_env_override_is_named() {
        let err = load("", &[("GATEZ__EDGE____LISTEN", "x")]).unwrap_err();
        assert!(err.to_string().contains("GATEZ__EDGE____LISTEN"), "{err}");
        let err = load("", &[("GATEZ__EDGE__LISTEN", "nope")]).unwrap_err();
        assert!(err.to_string().contains("edge.listen"), "{err}");
    }

    #[test]
    fn secrets_come_only_from_env_or_file() {
        let err = load("identity:\n  signing_key: hunter2\n", &[]).unwrap_err();
        assert!(err.to_string().contains("identity.signing_key"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "secret leaked: {err}");

        let err = load(
            "identity:\n  signing_key: { env: GATEZ_TEST_SURELY_UNSET_VAR }\n",
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("GATEZ_TEST_SURELY_UNSET_VAR"),
            "{err}"
        );

        let pair = crate::identity::keys::KeyPair::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pair.to_pkcs8_pem()).unwrap();
        let cfg = load(
            &format!("identity:\n  signing_key: {{ file: {} }}\n", path.display()),
            &[],
        )
        .unwrap();
        let key = cfg.identity.signing_key.unwrap();
        assert!(format!("{key:?}").contains("***"));
        assert!(!format!("{key:?}").contains("PRIVATE"));

        std::fs::write(&path, "garbage").unwrap();
        let err = load(
            &format!("identity:\n  signing_key: {{ file: {} }}\n", path.display()),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("identity.signing_key"), "{err}");
        assert!(!err.to_string().contains("garbage"), "secret leaked: {err}");
    }
}
