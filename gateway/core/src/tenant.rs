//! The tenant: the unit of isolation every store, log row and cache key is scoped to.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest tenant id accepted. Ids end up in store keys, log rows and metric labels, so they are
/// kept short and to a character set that needs no escaping anywhere.
pub const MAX_TENANT_ID_LEN: usize = 64;

/// A validated tenant identifier: 1–64 characters of `[A-Za-z0-9._-]`, starting with a letter or
/// digit. Cheap to clone (shared string), so it can be passed by value into spawned tasks.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

/// Why a string is not a tenant id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTenantId {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is longer than {MAX_TENANT_ID_LEN} characters")]
    TooLong,
    #[error("tenant id must start with a letter or digit")]
    BadStart,
    #[error("tenant id may only contain letters, digits, '.', '_' and '-' (found {0:?})")]
    BadChar(char),
}

impl TenantId {
    /// Validates and wraps a tenant id.
    pub fn new(id: impl AsRef<str>) -> Result<Self, InvalidTenantId> {
        let id = id.as_ref();
        let first = id.chars().next().ok_or(InvalidTenantId::Empty)?;
        if id.len() > MAX_TENANT_ID_LEN {
            return Err(InvalidTenantId::TooLong);
        }
        if !first.is_ascii_alphanumeric() {
            return Err(InvalidTenantId::BadStart);
        }
        if let Some(bad) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(InvalidTenantId::BadChar(bad));
        }
        Ok(Self(Arc::from(id)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", &*self.0)
    }
}

impl std::str::FromStr for TenantId {
    type Err = InvalidTenantId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_ids() {
        for id in ["acme", "tenant-1", "a", "ACME.prod_2", &"x".repeat(64)] {
            assert_eq!(TenantId::new(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn rejects_ids_that_could_escape_a_key() {
        assert_eq!(TenantId::new(""), Err(InvalidTenantId::Empty));
        assert_eq!(TenantId::new("x".repeat(65)), Err(InvalidTenantId::TooLong));
        assert_eq!(TenantId::new("-a"), Err(InvalidTenantId::BadStart));
        assert_eq!(TenantId::new("a/b"), Err(InvalidTenantId::BadChar('/')));
        assert_eq!(TenantId::new("a:b"), Err(InvalidTenantId::BadChar(':')));
        assert_eq!(TenantId::new("a*"), Err(InvalidTenantId::BadChar('*')));
        assert_eq!(TenantId::new("é"), Err(InvalidTenantId::BadStart));
    }

    #[test]
    fn serde_validates() {
        let t: TenantId = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(t.as_str(), "acme");
        assert!(serde_json::from_str::<TenantId>("\"a b\"").is_err());
    }
}
