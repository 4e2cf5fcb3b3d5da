//! Reading what a token says about itself before any signature is checked: its algorithm,
//! key id, and issuer. We parse the JOSE header ourselves (not with jsonwebtoken's `Header`)
//! so `alg: none` and unknown algorithms are refused with a precise error before any key is
//! looked up, and header parameters we do not understand (`crit`) are refused rather than
//! ignored.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use crate::auth::AuthError;

/// Tokens larger than this are refused before any parsing (Keycloak's are ~1-2 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What the header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    /// RFC 7515 §4.1.11: extensions the recipient must understand. We understand none.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RawIssuer<'a> {
    #[serde(default, borrow)]
    iss: Option<Cow<'a, str>>,
}

/// The three base64url parts of a compact JWS.
pub struct Parts<'a> {
    pub header: &'a str,
    pub payload: &'a str,
}

/// Splits a compact JWS into exactly three non-empty parts (header, payload, signature).
pub fn split(token: &str) -> Result<Parts<'_>, AuthError> {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::MalformedToken);
    }
    let mut it = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(AuthError::MalformedToken);
    };
    // An empty signature is what `alg: none` tokens carry; say so rather than "malformed".
    if header.is_empty() || payload.is_empty() {
        return Err(AuthError::MalformedToken);
    }
    if signature.is_empty() {
        return match parse_header(header) {
            Err(AuthError::AlgorithmNone) => Err(AuthError::AlgorithmNone),
            _ => Err(AuthError::MalformedToken),
        };
    }
    Ok(Parts { header, payload })
}

/// Decodes the header; refuses `none` (any case) and algorithms we do not know.
pub fn parse_header(encoded: &str) -> Result<TokenHeader, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| AuthError::MalformedToken)?;
    let raw: RawHeader<'_> =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::MalformedToken)?;
    if raw.alg.eq_ignore_ascii_case("none") {
        return Err(AuthError::AlgorithmNone);
    }
    let alg = parse_alg(&raw.alg)?;
    if raw.crit.is_some() {
        return Err(AuthError::MalformedToken);
    }
    Ok(TokenHeader {
        alg,
        kid: raw.kid.map(Cow::into_owned),
    })
}

/// The unverified `iss`, only to pick which issuer's keys verify the token.
pub fn unverified_issuer(payload: &str) -> Result<String, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AuthError::MalformedToken)?;
    let raw: RawIssuer<'_> =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::MalformedToken)?;
    raw.iss
        .map(Cow::into_owned)
        .ok_or(AuthError::MissingClaim("iss"))
}

/// Maps a JWS `alg` name; the error carries a static name so the message never echoes
/// attacker-chosen text.
fn parse_alg(name: &str) -> Result<Algorithm, AuthError> {
    Ok(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "HS256" => return Err(AuthError::AlgorithmNotAllowed("HS256")),
        "HS384" => return Err(AuthError::AlgorithmNotAllowed("HS384")),
        "HS512" => return Err(AuthError::AlgorithmNotAllowed("HS512")),
        _ => return Err(AuthError::AlgorithmNotAllowed("(unsupported)")),
    })
}

/// A static name of `alg`, for error messages.
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "(unsupported)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn reads_alg_and_kid() {
        let h = b64(serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}));
        assert_eq!(
            parse_header(&h).unwrap(),
            TokenHeader {
                alg: Algorithm::RS256,
                kid: Some("k1".into())
            }
        );
    }

    #[test]
    fn none_is_refused_in_any_spelling_and_with_or_without_signature() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let h = b64(serde_json::json!({"alg": alg}));
            assert!(matches!(parse_header(&h), Err(AuthError::AlgorithmNone)));
            let p = b64(serde_json::json!({"iss": "x"}));
            assert!(matches!(
                split(&format!("{h}.{p}.")),
                Err(AuthError::AlgorithmNone)
            ));
        }
    }

    #[test]
    fn hmac_and_unknown_algorithms_are_refused_without_echoing() {
        let h = b64(serde_json::json!({"alg": "HS256"}));
        assert!(matches!(
            parse_header(&h),
            Err(AuthError::AlgorithmNotAllowed("HS256"))
        ));
        let h = b64(serde_json::json!({"alg": "<script>"}));
        let e = parse_header(&h).unwrap_err();
        assert!(!e.to_string().contains("script"), "{e}");
    }

    #[test]
    fn critical_extensions_are_refused() {
        let h = b64(serde_json::json!({"alg": "RS256", "crit": ["exp"], "exp": 1}));
        assert!(matches!(parse_header(&h), Err(AuthError::MalformedToken)));
    }

    #[test]
    fn garbage_is_malformed() {
        for token in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            ".b.c",
            "a..c",
            "!!!.b.c",
            &"a".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            let e = split(token).and_then(|p| parse_header(p.header));
            assert!(matches!(e, Err(AuthError::MalformedToken)), "{token:?}");
        }
        let not_json = URL_SAFE_NO_PAD.encode(b"not json");
        assert!(matches!(
            parse_header(&not_json),
            Err(AuthError::MalformedToken)
        ));
    }

    #[test]
    fn unverified_issuer_needs_iss() {
        let p = b64(serde_json::json!({"iss": "https://i/r", "sub": "s"}));
        assert_eq!(unverified_issuer(&p).unwrap(), "https://i/r");
        let p = b64(serde_json::json!({"sub": "s"}));
        assert!(matches!(
            unverified_issuer(&p),
            Err(AuthError::MissingClaim("iss"))
        ));
    }
}
