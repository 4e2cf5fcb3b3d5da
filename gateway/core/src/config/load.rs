//! Loading a typed config: YAML text → environment overrides → typed struct (errors name the
//! field's path) → semantic validation (errors name the field's path too).

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

use super::validate::{Validate, Validator};

/// Environment variables starting with this override config fields: `GATEZ__STORES__REDIS__URL`
/// sets `stores.redis.url`. Values are parsed as YAML scalars, so `true` and `250` keep their
/// types.
pub const ENV_PREFIX: &str = "GATEZ__";

/// Why a config could not be loaded. Every variant says where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config is not valid YAML: {0}")]
    Syntax(String),
    #[error("config field `{path}`: {message}")]
    Field { path: String, message: String },
    #[error("environment override {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid config:\n{}", .0.iter().map(|(p, m)| format!("  - `{p}`: {m}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<(String, String)>),
}

/// Reads, overrides from the process environment, parses and validates a config file.
pub fn load_file<T: DeserializeOwned + Validate>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    load_str(&text, std::env::vars())
}

/// As [`load_file`], from text and an explicit environment (tests pass their own).
pub fn load_str<T: DeserializeOwned + Validate>(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut doc: Value = if text.trim().is_empty() {
        Value::Mapping(Default::default())
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?
    };
    if doc.is_null() {
        doc = Value::Mapping(Default::default());
    }
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    // Deterministic order, so a more specific override always wins over a shorter one.
    overrides.sort();
    for (var, value) in overrides {
        apply_override(&mut doc, &var, &value)?;
    }
    let parsed: T = serde_path_to_error::deserialize(doc).map_err(|e| ConfigError::Field {
        path: display_path(&e.path().to_string()),
        message: e.inner().to_string(),
    })?;
    let mut v = Validator::default();
    parsed.validate(&mut v);
    v.finish().map_err(ConfigError::Invalid)?;
    Ok(parsed)
}

fn apply_override(doc: &mut Value, var: &str, value: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::Env {
            var: var.into(),
            message: "empty path segment (use `__` only between field names)".into(),
        });
    }
    let scalar: Value = serde_yaml_ng::from_str(value).unwrap_or(Value::String(value.into()));
    let mut node = doc;
    for (i, key) in path.iter().enumerate() {
        let map = match node {
            Value::Mapping(m) => m,
            Value::Null => {
                *node = Value::Mapping(Default::default());
                match node {
                    Value::Mapping(m) => m,
                    _ => unreachable!("just set to a mapping"),
                }
            }
            _ => {
                return Err(ConfigError::Env {
                    var: var.into(),
                    message: format!("`{}` is not a section", path[..i].join(".")),
                });
            }
        };
        let key = Value::String(key.clone());
        if i + 1 == path.len() {
            map.insert(key, scalar);
            return Ok(());
        }
        node = map.entry(key).or_insert(Value::Null);
    }
    Ok(())
}

/// serde_path_to_error prints `.` for the root; say so in words.
fn display_path(p: &str) -> String {
    if p == "." || p.is_empty() {
        "(top level)".into()
    } else {
        p.to_owned()
    }
}
