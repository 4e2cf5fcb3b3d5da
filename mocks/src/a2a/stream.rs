//! Following a task's events: as an SSE stream of JSON-RPC responses (`message/stream`,
//! `tasks/resubscribe`), or by waiting for the event that ends the interaction
//! (a blocking `message/send`).

use std::convert::Infallible;

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::jsonrpc;
use super::model::TaskEvent;

/// The first object of a stream (a Task or a Message), then the task's events, if any.
pub struct Follow {
    pub first: Value,
    pub events: Option<broadcast::Receiver<TaskEvent>>,
}

pub fn sse(id: Value, follow: Follow, shutdown: CancellationToken) -> Response {
    Sse::new(events(id, follow, shutdown)).into_response()
}

fn events(
    id: Value,
    follow: Follow,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let frame = move |result: &Value| {
        let body = jsonrpc::success(&id, result);
        Ok(Event::default().data(body.to_string()))
    };
    futures::stream::unfold(
        (Some(follow.first), follow.events, shutdown),
        move |(first, mut events, shutdown)| {
            let frame = frame.clone();
            async move {
                if let Some(first) = first {
                    return Some((frame(&first), (None, events, shutdown)));
                }
                let rx = events.as_mut()?;
                let event = next(rx, &shutdown).await?;
                let done = event.is_final();
                let out = frame(&serde_json::to_value(&event).unwrap_or_default());
                let events = if done { None } else { events };
                Some((out, (None, events, shutdown)))
            }
        },
    )
}

/// The next event, or `None` when the task's channel or the agent is gone.
async fn next(
    rx: &mut broadcast::Receiver<TaskEvent>,
    shutdown: &CancellationToken,
) -> Option<TaskEvent> {
    loop {
        tokio::select! {
            received = rx.recv() => match received {
                Ok(e) => return Some(e),
                // Missed events cannot be replayed; the buffer dwarfs a task's event count.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            },
            _ = shutdown.cancelled() => return None,
        }
    }
}

pub async fn wait_for_final(rx: &mut broadcast::Receiver<TaskEvent>, shutdown: &CancellationToken) {
    while let Some(event) = next(rx, shutdown).await {
        if event.is_final() {
            return;
        }
    }
}
