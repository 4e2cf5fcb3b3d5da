//! The agent card served at `/.well-known/agent-card.json` (A2A 0.3; also at the older
//! `/.well-known/agent.json`), naming the JSON-RPC endpoint as the caller reached it.

use serde_json::{Value, json};

use super::A2aAgentKind;
use super::model::PROTOCOL_VERSION;

pub fn card(kind: A2aAgentKind, rpc_url: &str) -> Value {
    let (name, description, skill) = match kind {
        A2aAgentKind::Echo => (
            "gatez-mock-echo",
            "Echoes each message back as an artifact; steer outcomes with [[message]], \
             [[fail]], [[reject]] or [[input-required]] in the text.",
            json!({
                "id": "echo",
                "name": "Echo",
                "description": "Returns the text it was sent.",
                "tags": ["echo", "test"],
                "examples": ["hello"],
            }),
        ),
        A2aAgentKind::Slow => (
            "gatez-mock-slow",
            "Echoes like the echo agent, but one state transition per step interval, \
             so streams, polling and cancellation can be observed.",
            json!({
                "id": "slow-echo",
                "name": "Slow echo",
                "description": "Returns the text it was sent, after a while.",
                "tags": ["echo", "slow", "streaming"],
                "examples": ["take your time"],
            }),
        ),
    };
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "name": name,
        "description": description,
        "url": rpc_url,
        "preferredTransport": "JSONRPC",
        "version": env!("CARGO_PKG_VERSION"),
        "capabilities": {
            "streaming": true,
            "pushNotifications": false,
            "stateTransitionHistory": false,
        },
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [skill],
    })
}
