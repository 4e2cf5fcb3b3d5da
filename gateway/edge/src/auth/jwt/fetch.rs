//! Fetching an issuer's discovery document and JWKS: bounded in time (the client's timeout)
//! and in size, so a misbehaving issuer cannot stall or bloat the gateway.

use serde::Deserialize;

use super::jwks::{JwksError, KeySet};

/// Largest discovery document or JWKS accepted. Real ones are a few KiB.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Why a fetch failed. Logged, never sent to a client.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request to {url} failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} is not an OpenID discovery document: {message}")]
    Discovery { url: String, message: String },
    #[error("{url}: {source}")]
    Jwks {
        url: String,
        #[source]
        source: JwksError,
    },
}

#[derive(Deserialize)]
struct DiscoveryDoc {
    issuer: String,
    jwks_uri: String,
}

/// Reads the JWKS URL from the discovery document at `url`, checking that the document is
/// about `issuer` (OpenID Connect Discovery §4.3: a mismatch means a misconfiguration or an
/// impersonation attempt).
pub async fn discover(
    client: &reqwest::Client,
    url: &str,
    issuer: &str,
) -> Result<String, FetchError> {
    let body = get(client, url).await?;
    let doc: DiscoveryDoc = serde_json::from_slice(&body).map_err(|e| FetchError::Discovery {
        url: url.to_owned(),
        message: e.to_string(),
    })?;
    if doc.issuer != issuer {
        return Err(FetchError::Discovery {
            url: url.to_owned(),
            message: format!("it names issuer {:?}, expected {issuer:?}", doc.issuer),
        });
    }
    if !(doc.jwks_uri.starts_with("https://") || doc.jwks_uri.starts_with("http://")) {
        return Err(FetchError::Discovery {
            url: url.to_owned(),
            message: "jwks_uri is not an http(s) URL".into(),
        });
    }
    Ok(doc.jwks_uri)
}

pub async fn jwks(client: &reqwest::Client, url: &str) -> Result<KeySet, FetchError> {
    let body = get(client, url).await?;
    KeySet::parse(&body).map_err(|source| FetchError::Jwks {
        url: url.to_owned(),
        source,
    })
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, FetchError> {
    let http = |source| FetchError::Http {
        url: url.to_owned(),
        source,
    };
    let mut response = client
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(http)?;
    if !response.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: response.status().as_u16(),
        });
    }
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
