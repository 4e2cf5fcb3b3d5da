//! Fault injection: what a mock should do wrong for one request.
//!
//! A fault comes from three places, merged field by field, later ones winning: the mock's
//! standing fault (set from a test handle), the next queued one-shot fault (consumed by one
//! request, so "fail once then succeed" retry tests need no timing), and the request's
//! `x-mock-fault` header, e.g. `status=429;retry_after=2` or
//! `latency_ms=50;per_token_ms=5;reset_after_chunks=3;malformed_chunk=2;hang=true`.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::HeaderMap;

use crate::error::MockError;

pub const FAULT_HEADER: &str = "x-mock-fault";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fault {
    /// Delay before the first byte (non-stream) or the first token (stream).
    pub latency: Option<Duration>,
    /// Delay before each further token: between stream chunks, or per output token before a
    /// non-stream body, as a real model generates the whole reply before answering.
    pub per_token: Option<Duration>,
    /// Answer with this HTTP status and the provider's own error body.
    pub status: Option<u16>,
    /// `retry-after` seconds sent with `status`.
    pub retry_after: Option<u64>,
    /// Accept the request and never answer (until the mock shuts down).
    pub hang: bool,
    /// Drop the connection after this many body chunks, without the stream's terminator.
    pub reset_after_chunks: Option<usize>,
    /// Truncate the payload of this (1-based) stream chunk so it no longer parses.
    pub malformed_chunk: Option<usize>,
}

impl Fault {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn with_latency(mut self, d: Duration) -> Self {
        self.latency = Some(d);
        self
    }

    pub fn with_per_token(mut self, d: Duration) -> Self {
        self.per_token = Some(d);
        self
    }

    pub fn hanging(mut self) -> Self {
        self.hang = true;
        self
    }

    pub fn with_reset_after_chunks(mut self, n: usize) -> Self {
        self.reset_after_chunks = Some(n);
        self
    }

    pub fn with_malformed_chunk(mut self, n: usize) -> Self {
        self.malformed_chunk = Some(n);
        self
    }

    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }

    /// Field-wise merge where `over`'s set fields win.
    pub fn merge(self, over: Fault) -> Fault {
        Fault {
            latency: over.latency.or(self.latency),
            per_token: over.per_token.or(self.per_token),
            status: over.status.or(self.status),
            retry_after: over.retry_after.or(self.retry_after),
            hang: over.hang || self.hang,
            reset_after_chunks: over.reset_after_chunks.or(self.reset_after_chunks),
            malformed_chunk: over.malformed_chunk.or(self.malformed_chunk),
        }
    }
}

impl FromStr for Fault {
    type Err = MockError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| MockError::FaultSpec {
            spec: spec.to_owned(),
            reason,
        };
        let mut fault = Fault::default();
        for part in spec
            .split([';', ','])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (key, value) = part
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .unwrap_or((part, "true"));
            let int = |v: &str| -> Result<u64, MockError> {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("`{key}` needs a non-negative integer, got `{v}`")))
            };
            match key {
                "latency_ms" => fault.latency = Some(Duration::from_millis(int(value)?)),
                "per_token_ms" => fault.per_token = Some(Duration::from_millis(int(value)?)),
                "status" => {
                    let s = int(value)?;
                    if !(100..=599).contains(&s) {
                        return Err(bad(format!("status {s} is not an HTTP status")));
                    }
                    fault.status = Some(s as u16);
                }
                "retry_after" => fault.retry_after = Some(int(value)?),
                "hang" => {
                    fault.hang = value
                        .parse::<bool>()
                        .map_err(|_| bad(format!("`hang` needs true or false, got `{value}`")))?
                }
                "reset_after_chunks" => fault.reset_after_chunks = Some(int(value)? as usize),
                "malformed_chunk" => fault.malformed_chunk = Some(int(value)? as usize),
                other => return Err(bad(format!("unknown key `{other}`"))),
            }
        }
        Ok(fault)
    }
}

/// The faults a mock applies: a standing one plus a queue of one-shot ones.
#[derive(Debug, Default)]
pub struct FaultControl {
    standing: Mutex<Fault>,
    queued: Mutex<VecDeque<Fault>>,
}

impl FaultControl {
    /// Applies `fault` to every later request until cleared.
    pub fn set(&self, fault: Fault) {
        *self.standing.lock().expect("fault lock") = fault;
    }

    /// Applies `fault` to exactly one later request.
    pub fn push_once(&self, fault: Fault) {
        self.queued.lock().expect("fault lock").push_back(fault);
    }

    pub fn clear(&self) {
        *self.standing.lock().expect("fault lock") = Fault::default();
        self.queued.lock().expect("fault lock").clear();
    }

    /// The fault for one request; consumes one queued fault if any.
    pub fn resolve(&self, headers: &HeaderMap) -> Result<Fault, MockError> {
        let mut fault = self.standing.lock().expect("fault lock").clone();
        if let Some(once) = self.queued.lock().expect("fault lock").pop_front() {
            fault = fault.merge(once);
        }
        if let Some(value) = headers.get(FAULT_HEADER) {
            let spec = value.to_str().map_err(|_| MockError::FaultSpec {
                spec: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                reason: "header is not visible ASCII".into(),
            })?;
            fault = fault.merge(spec.parse()?);
        }
        Ok(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key() {
        let f: Fault = "status=429;retry_after=2;latency_ms=10;per_token_ms=3;\
                        reset_after_chunks=4;malformed_chunk=2;hang=true"
            .parse()
            .unwrap();
        assert_eq!(
            f,
            Fault::none()
                .with_status(429)
                .with_retry_after(2)
                .with_latency(Duration::from_millis(10))
                .with_per_token(Duration::from_millis(3))
                .with_reset_after_chunks(4)
                .with_malformed_chunk(2)
                .hanging()
        );
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!("staus=429".parse::<Fault>().is_err());
        assert!("status=abc".parse::<Fault>().is_err());
        assert!("status=1000".parse::<Fault>().is_err());
        assert!("hang=maybe".parse::<Fault>().is_err());
    }

    #[test]
    fn header_overrides_queue_which_overrides_standing() {
        let control = FaultControl::default();
        control.set(
            Fault::none()
                .with_status(500)
                .with_latency(Duration::from_millis(1)),
        );
        control.push_once(Fault::none().with_status(503));
        let mut headers = HeaderMap::new();
        headers.insert(FAULT_HEADER, "retry_after=7".parse().unwrap());
        let first = control.resolve(&headers).unwrap();
        assert_eq!(first.status, Some(503));
        assert_eq!(first.retry_after, Some(7));
        assert_eq!(first.latency, Some(Duration::from_millis(1)));
        // The one-shot fault is consumed; the standing one remains.
        let second = control.resolve(&HeaderMap::new()).unwrap();
        assert_eq!(second.status, Some(500));
        control.clear();
        assert!(control.resolve(&HeaderMap::new()).unwrap().is_none());
    }
}
