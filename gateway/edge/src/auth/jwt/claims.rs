//! Turning a verified token's claims into who is calling: tenant, subject, scopes.

use gatez_core::TenantId;
use serde_json::Value;

use super::config::JwtIssuerConfig;
use super::issuer::Claims;
use crate::auth::AuthError;

/// What a verified token says about its bearer, kept in the verified-token cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub subject: String,
    pub scopes: Vec<String>,
    /// The token's `exp`, in Unix seconds.
    pub exp: u64,
}

/// Reads the principal with the issuer's claim names. A token without a usable tenant is
/// refused (403): a caller that belongs to no tenant has nothing it may reach.
pub fn principal(claims: &Claims, config: &JwtIssuerConfig) -> Result<Principal, AuthError> {
    let subject = match lookup(claims, &config.subject_claim) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(AuthError::MissingSubject),
    };
    let tenant = match lookup(claims, &config.tenant_claim) {
        None | Some(Value::Null) => return Err(AuthError::MissingTenant),
        Some(Value::String(s)) if s.is_empty() => return Err(AuthError::MissingTenant),
        Some(Value::String(s)) => TenantId::new(s).map_err(|_| AuthError::InvalidTenant)?,
        Some(_) => return Err(AuthError::InvalidTenant),
    };
    let scopes = match lookup(claims, &config.scopes_claim) {
        Some(Value::String(s)) => s.split_ascii_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    // jsonwebtoken has already required `exp` and checked it is a number.
    let exp = match claims.get("exp") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().map(|f| f.max(0.0) as u64))
            .ok_or(AuthError::MalformedToken)?,
        _ => return Err(AuthError::MissingClaim("exp")),
    };
    Ok(Principal {
        tenant,
        subject,
        scopes,
        exp,
    })
}

/// The value at a dotted path (`org.tenant` → `claims["org"]["tenant"]`). A claim whose own
/// name contains dots is found too, as some issuers (Auth0 namespaced claims) use URLs.
fn lookup<'a>(claims: &'a Claims, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut node = claims.get(parts.next()?)?;
    for part in parts {
        node = node.as_object()?.get(part)?;
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Claims {
        v.as_object().unwrap().clone()
    }

    fn config() -> JwtIssuerConfig {
        JwtIssuerConfig::new("https://i/r", vec!["a".into()])
    }

    #[test]
    fn reads_tenant_subject_and_string_scopes() {
        let p = principal(
            &claims(json!({"sub": "alice", "tenant_id": "acme", "scope": "a  b", "exp": 10})),
            &config(),
        )
        .unwrap();
        assert_eq!(p.tenant.as_str(), "acme");
        assert_eq!(p.subject, "alice");
        assert_eq!(p.scopes, ["a", "b"]);
        assert_eq!(p.exp, 10);
    }

    #[test]
    fn nested_and_array_claims() {
        let mut c = config();
        c.tenant_claim = "org.tenant".into();
        c.scopes_claim = "scp".into();
        let p = principal(
            &claims(json!({"sub": "s", "org": {"tenant": "t1"}, "scp": ["x", 3, "y"], "exp": 1})),
            &c,
        )
        .unwrap();
        assert_eq!(p.tenant.as_str(), "t1");
        assert_eq!(p.scopes, ["x", "y"]);
        c.tenant_claim = "https://example.com/tenant".into();
        let p = principal(
            &claims(json!({"sub": "s", "https://example.com/tenant": "t2", "exp": 1})),
            &c,
        )
        .unwrap();
        assert_eq!(p.tenant.as_str(), "t2");
    }

    #[test]
    fn missing_or_invalid_tenant_is_refused() {
        for (body, missing) in [
            (json!({"sub": "s", "exp": 1}), true),
            (json!({"sub": "s", "exp": 1, "tenant_id": null}), true),
            (json!({"sub": "s", "exp": 1, "tenant_id": ""}), true),
            (json!({"sub": "s", "exp": 1, "tenant_id": "a/b"}), false),
            (json!({"sub": "s", "exp": 1, "tenant_id": 7}), false),
        ] {
            let e = principal(&claims(body.clone()), &config()).unwrap_err();
            if missing {
                assert!(matches!(e, AuthError::MissingTenant), "{body}");
            } else {
                assert!(matches!(e, AuthError::InvalidTenant), "{body}");
            }
        }
    }

    #[test]
    fn subject_is_required() {
        let e = principal(&claims(json!({"tenant_id": "t", "exp": 1})), &config()).unwrap_err();
        assert!(matches!(e, AuthError::MissingSubject));
    }
}
