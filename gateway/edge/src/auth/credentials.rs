//! Finding the credential in a request: `Authorization: Bearer <jwt | gzk_ key>` or
//! `x-api-key: <gzk_ key>`. Exactly one may be sent; two are refused rather than guessed
//! between (RFC 6750 §2: one method per request).

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::AuthError;
use super::api_key::PREFIX;

/// The header API keys may also come in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// A credential as presented, borrowed from the headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    Jwt(&'a str),
    ApiKey(&'a str),
}

/// The request's credential, `None` when it carries none. An `Authorization` header of
/// another scheme (Basic, say, meant for the upstream) is not a credential for us.
pub fn extract(headers: &HeaderMap) -> Result<Option<Credential<'_>>, AuthError> {
    let bearer = single(headers, AUTHORIZATION.as_str())?.and_then(bearer_token);
    let api_key = single(headers, API_KEY_HEADER)?;
    match (bearer, api_key) {
        (Some(_), Some(_)) => Err(AuthError::AmbiguousCredentials),
        (Some(token), None) if token.starts_with(PREFIX) => Ok(Some(Credential::ApiKey(token))),
        (Some(token), None) => Ok(Some(Credential::Jwt(token))),
        (None, Some(key)) => Ok(Some(Credential::ApiKey(key.trim()))),
        (None, None) => Ok(None),
    }
}

/// The value of a header that must not repeat; a value that is not visible ASCII cannot be
/// a token or key of ours.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::AmbiguousCredentials);
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| AuthError::MalformedToken)
}

/// The token of a `Bearer` authorization (scheme case-insensitive, RFC 7235 §2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn finds_each_kind() {
        assert_eq!(
            extract(&headers(&[("authorization", "Bearer eyJ.x.y")])).unwrap(),
            Some(Credential::Jwt("eyJ.x.y"))
        );
        assert_eq!(
            extract(&headers(&[("authorization", "bearer  gzk_a_b ")])).unwrap(),
            Some(Credential::ApiKey("gzk_a_b"))
        );
        assert_eq!(
            extract(&headers(&[("x-api-key", "gzk_a_b")])).unwrap(),
            Some(Credential::ApiKey("gzk_a_b"))
        );
        assert_eq!(extract(&headers(&[])).unwrap(), None);
        assert_eq!(
            extract(&headers(&[("authorization", "Basic dXNlcjpwYXNz")])).unwrap(),
            None
        );
        assert_eq!(
            extract(&headers(&[("authorization", "Bearer ")])).unwrap(),
            None
        );
    }

    #[test]
    fn two_credentials_are_refused() {
        for h in [
            headers(&[("authorization", "Bearer a.b.c"), ("x-api-key", "gzk_a_b")]),
            headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
            headers(&[("x-api-key", "a"), ("x-api-key", "b")]),
        ] {
            assert!(matches!(extract(&h), Err(AuthError::AmbiguousCredentials)));
        }
    }

    #[test]
    fn non_ascii_header_is_malformed() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        );
        assert!(matches!(extract(&h), Err(AuthError::MalformedToken)));
    }
}
