//! Sends a provider's answer through the request's fault: latency, hangs, error statuses,
//! paced streams, malformed chunks and connections dropped mid-body.

use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::fault::Fault;

/// A provider's successful answer, before faults are applied.
pub enum Delivery {
    /// A complete JSON body; `output_tokens` paces it under a `per_token` fault.
    Json {
        value: serde_json::Value,
        output_tokens: u32,
    },
    /// A stream of wire frames (SSE events or NDJSON lines), each already terminated.
    Stream {
        content_type: &'static str,
        frames: Vec<Bytes>,
    },
}

pub const SSE: &str = "text/event-stream";
pub const NDJSON: &str = "application/x-ndjson";

/// Waits `d`, or less if the mock shuts down; false when cut short.
async fn pause(d: Option<Duration>, cancel: &CancellationToken) -> bool {
    match d {
        None => true,
        Some(d) if d.is_zero() => true,
        Some(d) => tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = cancel.cancelled() => false,
        },
    }
}

/// Applies `fault` to `delivery`; `error` renders the provider's own error body for a status.
pub async fn deliver(
    fault: Fault,
    cancel: CancellationToken,
    delivery: Delivery,
    error: impl FnOnce(StatusCode) -> Response,
) -> Response {
    if !pause(fault.latency, &cancel).await {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if fault.hang {
        cancel.cancelled().await;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Some(status) = fault.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = error(status);
        if let Some(secs) = fault.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return resp;
    }
    match delivery {
        Delivery::Json {
            value,
            output_tokens,
        } => {
            let per_token = fault.per_token.map(|d| d * output_tokens);
            if !pause(per_token, &cancel).await {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            let mut body = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
            if fault.malformed_chunk.is_some() {
                body = malform(&body);
            }
            match fault.reset_after_chunks {
                None => json_response(body),
                Some(n) => {
                    // Send at most the first half, then drop the connection.
                    let head = if n == 0 {
                        Bytes::new()
                    } else {
                        body.slice(..body.len() / 2)
                    };
                    let chunks =
                        futures::stream::iter([Ok(head)]).chain(futures::stream::once(async {
                            flush_pause().await;
                            Err(reset())
                        }));
                    let mut resp = Response::new(Body::from_stream(chunks));
                    resp.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    resp
                }
            }
        }
        Delivery::Stream {
            content_type,
            frames,
        } => stream_response(content_type, frames, fault, cancel),
    }
}

pub fn json_response(body: Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// hyper buffers what a body stream yields and writes it when the stream is pending; an
/// error arriving before that discards the buffer. Pausing first lets the chunks already
/// sent reach the client, so a reset really happens mid-stream.
async fn flush_pause() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

fn reset() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "mock fault: connection reset",
    )
}

struct Pacer {
    frames: std::vec::IntoIter<Bytes>,
    sent: usize,
    fault: Fault,
    cancel: CancellationToken,
    done: bool,
}

fn stream_response(
    content_type: &'static str,
    frames: Vec<Bytes>,
    fault: Fault,
    cancel: CancellationToken,
) -> Response {
    let pacer = Pacer {
        frames: frames.into_iter(),
        sent: 0,
        fault,
        cancel,
        done: false,
    };
    let stream = futures::stream::unfold(pacer, |mut p| async move {
        if p.done {
            return None;
        }
        if p.fault.reset_after_chunks == Some(p.sent) {
            p.done = true;
            flush_pause().await;
            return Some((Err(reset()), p));
        }
        let frame = p.frames.next()?;
        // The first frame's delay is the fault's `latency`, already spent before the headers.
        if p.sent > 0 && !pause(p.fault.per_token, &p.cancel).await {
            p.done = true;
            return Some((Err(reset()), p));
        }
        p.sent += 1;
        let frame = if p.fault.malformed_chunk == Some(p.sent) {
            malform(&frame)
        } else {
            frame
        };
        Some((Ok::<_, io::Error>(frame), p))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type == SSE {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    resp
}

/// Cuts a frame's payload in half but keeps its terminator, so the framing still parses
/// and the client's JSON decoder is what fails, as with a real truncated upstream chunk.
pub fn malform(frame: &Bytes) -> Bytes {
    let text = String::from_utf8_lossy(frame);
    let body = text.trim_end_matches(['\r', '\n']);
    let terminator = &text[body.len()..];
    let mut cut = body.len() / 2;
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    Bytes::from(format!("{}{}", &body[..cut], terminator))
}

/// One SSE frame with only a data line: `data: {json}\n\n`.
pub fn sse_data(value: &serde_json::Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// One SSE frame with an event name: `event: NAME\ndata: {json}\n\n`.
pub fn sse_event(event: &str, value: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {value}\n\n"))
}

/// One NDJSON line.
pub fn ndjson(value: &serde_json::Value) -> Bytes {
    Bytes::from(format!("{value}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malform_truncates_payload_and_keeps_terminator() {
        let frame = Bytes::from_static(b"data: {\"a\":\"bcdef\"}\n\n");
        let bad = malform(&frame);
        let text = std::str::from_utf8(&bad).unwrap();
        assert!(text.ends_with("\n\n"));
        let payload = text.trim_end().strip_prefix("data: ").unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(payload).is_err());
    }
}
