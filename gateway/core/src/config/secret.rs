//! Secrets in config: only ever a reference to an environment variable or a file, resolved at
//! load, and never printed.

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// A secret value, written in YAML as `{ env: NAME }` or `{ file: /run/secrets/x }`. A literal
/// string is refused, so secrets never sit in config files or in version control. The file's
/// content has one trailing newline trimmed.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }

    /// For tests and programmatic config.
    pub fn from_value(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A struct rather than an enum: YAML libraries write enums as tags (`!env X`), and the map
/// form is what people write.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretRef {
    env: Option<String>,
    file: Option<String>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // serde's own message would quote the offending value, which may be the secret
        // itself (a literal written where a reference belongs): say what is expected instead.
        let reference = SecretRef::deserialize(d).map_err(|_| {
            D::Error::custom(
                "a secret must be `{ env: VAR }` or `{ file: PATH }`, never a literal value",
            )
        })?;
        let value = match (reference.env, reference.file) {
            (Some(var), None) => std::env::var(&var)
                .map_err(|_| D::Error::custom(format!("environment variable {var} is not set")))?,
            (None, Some(path)) => {
                let mut text = std::fs::read_to_string(&path).map_err(|e| {
                    D::Error::custom(format!("cannot read secret file {path}: {e}"))
                })?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                text
            }
            _ => {
                return Err(D::Error::custom(
                    "a secret needs exactly one of `env` or `file`",
                ));
            }
        };
        Ok(Secret(SecretString::from(value)))
    }
}
