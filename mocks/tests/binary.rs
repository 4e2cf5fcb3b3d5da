//! The `gatez-mocks` binary: the shipped config parses, and the binary serves each mock on
//! the ports its config names.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::client;
use gatez_mocks::a2a::A2aAgentKind;
use gatez_mocks::config::MocksConfig;
use gatez_mocks::mcp::McpServerKind;
use serde_json::{Value, json};

#[test]
fn shipped_config_names_the_documented_ports() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mocks.yaml");
    let cfg = MocksConfig::load(&path).unwrap();
    assert_eq!(cfg.openai.unwrap().port, 18001);
    assert_eq!(cfg.anthropic.unwrap().port, 18002);
    assert_eq!(cfg.gemini.unwrap().port, 18003);
    assert_eq!(cfg.ollama.unwrap().port, 18004);
    let oidc = cfg.oidc.unwrap();
    assert_eq!(oidc.port, 18080);
    assert_eq!(oidc.realms[0].name, "gatez");
    assert_eq!(cfg.otlp.unwrap().port, 14318);
    let mcp = cfg.mcp.unwrap();
    let mcp_ports: Vec<u16> = McpServerKind::ALL
        .iter()
        .map(|k| mcp.get(*k).unwrap().port)
        .collect();
    assert_eq!(mcp_ports, [18100, 18101, 18102, 18103, 18104]);
    let a2a = cfg.a2a.unwrap();
    let a2a_ports: Vec<u16> = A2aAgentKind::ALL
        .iter()
        .map(|k| a2a.get(*k).unwrap().port)
        .collect();
    assert_eq!(a2a_ports, [18200, 18201]);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child even when an assertion fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_every_configured_mock() {
    let ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mocks.yaml");
    std::fs::write(
        &cfg,
        format!(
            "openai: {{port: {}, api_key: sk-provider}}\nanthropic: {{port: {}}}\ngemini: {{port: {}}}\n\
             ollama: {{port: {}}}\noidc:\n  port: {}\n  realms:\n    - name: gatez\n      \
             clients: [{{id: c, secret: s, tenant: acme}}]\notlp: {{port: {}}}\n\
             mcp: {{rug_pull: {{port: {}}}}}\na2a: {{echo: {{port: {}}}}}\n",
            ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6], ports[7]
        ),
    )
    .unwrap();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_gatez-mocks"))
            .arg("--config")
            .arg(&cfg)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let banner = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line == "gatez-mocks ready";
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    let banner = tokio::time::timeout(std::time::Duration::from_secs(60), banner)
        .await
        .expect("binary starts")
        .unwrap();
    assert!(
        banner
            .iter()
            .any(|l| l.contains(&format!("127.0.0.1:{}/v1", ports[0])))
    );

    let base = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let wrong = client()
        .post(format!("{}/v1/chat/completions", base(0)))
        .bearer_auth("sk-user")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401, "the configured api_key is enforced");
    let ok: Value = client()
        .post(format!("{}/v1/chat/completions", base(0)))
        .bearer_auth("sk-provider")
        .json(&chat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["choices"][0]["message"]["content"], "hi");
    let recorded: Value = client()
        .get(format!("{}/__mock/requests", base(0)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded.as_array().unwrap().len(), 2);

    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(client().post(format!("{}/v1/messages", base(1))).header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 4, "messages": [{"role": "user", "content": "x"}]}))
        .send().await.unwrap()), 200);
    assert_eq!(
        status(
            client()
                .get(format!("{}/v1beta/models?key=k", base(2)))
                .send()
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(
        status(
            client()
                .get(format!("{}/api/tags", base(3)))
                .send()
                .await
                .unwrap()
        ),
        200
    );
    let token: Value = client()
        .post(format!(
            "{}/realms/gatez/protocol/openid-connect/token",
            base(4)
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "c"),
            ("client_secret", "s"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(token["access_token"].as_str().unwrap().split('.').count() == 3);
    let spans: Value = client()
        .get(format!("{}/api/traces/{}", base(5), "0".repeat(32)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spans, json!([]));

    assert!(
        banner
            .iter()
            .any(|l| l.contains(&format!("127.0.0.1:{}/mcp", ports[6])))
    );
    // Raw Streamable HTTP: initialize answers with a session id.
    let init = client()
        .post(format!("{}/mcp", base(6)))
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert!(init.headers().contains_key("mcp-session-id"));
    let card: Value = client()
        .get(format!("{}/.well-known/agent-card.json", base(7)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(card["url"], format!("{}/a2a", base(7)));
    assert_eq!(card["name"], "gatez-mock-echo");
}
