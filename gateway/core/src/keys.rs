//! The one place store keys are built. Every key of tenant data has the shape
//! `gatez:tenant/{tenant}/{kind}/{part}/{part}...`, so a tenant's data is a prefix of its own and
//! no call site can forget the tenant or build a key that reaches into another tenant's prefix.

use std::fmt::Write;

use crate::tenant::TenantId;

/// Prefix of every key Gatez writes to a shared store (Redis, etcd).
pub const KEY_NAMESPACE: &str = "gatez";

/// The kinds of tenant data, so key prefixes are a closed set rather than free strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    RateLimit,
    Budget,
    Cache,
    Session,
    Approval,
    /// A record kind named by a later layer (kept short and static).
    Other(&'static str),
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::RateLimit => "rl",
            KeyKind::Budget => "budget",
            KeyKind::Cache => "cache",
            KeyKind::Session => "session",
            KeyKind::Approval => "approval",
            KeyKind::Other(s) => s,
        }
    }
}

/// `gatez:tenant/{tenant}/{kind}/` — the prefix of all of one tenant's keys of one kind.
pub fn tenant_prefix(tenant: &TenantId, kind: KeyKind) -> String {
    let mut key = String::with_capacity(32 + tenant.as_str().len());
    key.push_str(KEY_NAMESPACE);
    key.push_str(":tenant/");
    key.push_str(tenant.as_str());
    key.push('/');
    key.push_str(kind.as_str());
    key.push('/');
    key
}

/// A tenant-scoped key. Parts are escaped so that a part containing `/` (say, a route path or
/// a caller-chosen session id) can never make two different part lists produce the same key.
pub fn tenant_key(tenant: &TenantId, kind: KeyKind, parts: &[&str]) -> String {
    let mut key = tenant_prefix(tenant, kind);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push('/');
        }
        escape_into(&mut key, part);
    }
    key
}

/// The key of the index of one tenant's records of one kind (e.g. the sorted set listing a
/// tenant's live sessions). It sits under the kind's prefix, so it belongs to that tenant and
/// kind, and ends in `#index`: `#` is a character [`tenant_key`] always escapes, so no record
/// id, however hostile, can produce this key.
pub fn tenant_index_key(tenant: &TenantId, kind: KeyKind) -> String {
    let mut key = tenant_prefix(tenant, kind);
    key.push_str("#index");
    key
}

/// Percent-encodes everything outside `[A-Za-z0-9._-]` (and the empty part as `%`), so parts
/// never contain the separator or glob characters a `SCAN MATCH` would interpret.
fn escape_into(out: &mut String, part: &str) {
    if part.is_empty() {
        out.push('%');
        return;
    }
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str) -> TenantId {
        TenantId::new(id).unwrap()
    }

    #[test]
    fn key_shape() {
        assert_eq!(
            tenant_key(&t("acme"), KeyKind::RateLimit, &["route", "/v1/chat"]),
            "gatez:tenant/acme/rl/route/%2Fv1%2Fchat"
        );
        assert_eq!(
            tenant_prefix(&t("acme"), KeyKind::Cache),
            "gatez:tenant/acme/cache/"
        );
    }

    #[test]
    fn index_key_is_distinct_from_every_record_key() {
        let index = tenant_index_key(&t("a"), KeyKind::Session);
        assert_eq!(index, "gatez:tenant/a/session/#index");
        assert!(index.starts_with(&tenant_prefix(&t("a"), KeyKind::Session)));
        for id in ["#index", "%23index", "", "index", "/#index"] {
            assert_ne!(
                tenant_key(&t("a"), KeyKind::Session, &[id]),
                index,
                "id {id:?}"
            );
        }
        assert_ne!(index, tenant_index_key(&t("a"), KeyKind::Approval));
        assert_ne!(index, tenant_index_key(&t("b"), KeyKind::Session));
    }

    #[test]
    fn parts_cannot_collide_or_escape() {
        let a = tenant_key(&t("a"), KeyKind::Session, &["x/y"]);
        let b = tenant_key(&t("a"), KeyKind::Session, &["x", "y"]);
        assert_ne!(a, b);
        let empty = tenant_key(&t("a"), KeyKind::Session, &[""]);
        assert_ne!(empty, tenant_prefix(&t("a"), KeyKind::Session));
        // A hostile part cannot climb into another tenant's prefix or widen a SCAN pattern.
        let hostile = tenant_key(&t("a"), KeyKind::Cache, &["../../b/cache/*"]);
        assert!(hostile.starts_with("gatez:tenant/a/cache/"));
        assert!(!hostile[tenant_prefix(&t("a"), KeyKind::Cache).len()..].contains('/'));
        assert!(!hostile.contains('*'));
    }
}
