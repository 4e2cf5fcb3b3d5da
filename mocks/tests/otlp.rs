//! The OTLP collector: protobuf and JSON exports (JSON written as the OTLP spec's own
//! example shape: hex ids, string nanos, camelCase), queried by trace id.

mod common;

use std::time::Duration;

use common::client;
use gatez_mocks::otlp::OtlpCollector;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};

fn kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
    }
}

fn span(trace: u8, id: u8, parent: Option<u8>, name: &str) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_500_000_000,
        attributes: vec![kv("gatez.tenant", "acme")],
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "gatez-edge")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn protobuf_export_is_queryable_by_trace_id() {
    let c = OtlpCollector::start().await;
    let resp = client()
        .post(c.traces_url())
        .header("content-type", "application/x-protobuf")
        .body(
            request(vec![
                span(0xab, 1, None, "root"),
                span(0xab, 2, Some(1), "child"),
                span(0xcd, 3, None, "other"),
            ])
            .encode_to_vec(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();

    let trace = "ab".repeat(16);
    let spans = c.spans(&trace);
    assert_eq!(
        spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["root", "child"]
    );
    assert_eq!(spans[1].parent_span_id, "01".repeat(8));
    assert_eq!(spans[0].parent_span_id, "");
    assert_eq!(spans[0].service_name.as_deref(), Some("gatez-edge"));
    assert_eq!(spans[0].attribute("gatez.tenant"), Some(&json!("acme")));
    assert_eq!(c.all_spans().len(), 3);
    // The same query over HTTP, for tests that drive the binary.
    let over_http: Value = client()
        .get(format!("{}/api/traces/{trace}", c.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn json_export_in_the_spec_shape() {
    let c = OtlpCollector::start().await;
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gatez-ai"}}]},
        "scopeSpans": [{"scope": {"name": "gatez"}, "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "eee19b7ec3c1b173",
            "name": "chat gpt-4o",
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "kind": 3,
            "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}}],
            "status": {"code": 2, "message": "upstream 503"}
        }]}]
    }]});
    let resp = client()
        .post(c.traces_url())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let spans = c.spans("5b8efff798038103d269b633813fc60c");
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!(
        (s.name.as_str(), s.kind, s.status_code),
        ("chat gpt-4o", 3, 2)
    );
    assert_eq!(s.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(s.attribute("gen_ai.usage.input_tokens"), Some(&json!(42)));
    assert_eq!(s.scope_name, "gatez");
}

#[tokio::test]
async fn wait_for_spans_wakes_on_arrival_and_bad_bodies_are_rejected() {
    let c = OtlpCollector::start().await;
    let url = c.traces_url();
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client()
            .post(url)
            .header("content-type", "application/x-protobuf")
            .body(request(vec![span(7, 1, None, "late")]).encode_to_vec())
            .send()
            .await
            .unwrap()
    });
    let spans = c
        .wait_for_spans(&"07".repeat(16), 1, Duration::from_secs(10))
        .await;
    assert_eq!(spans.len(), 1);
    send.await.unwrap();
    let bad = client()
        .post(c.traces_url())
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let unsupported = client()
        .post(c.traces_url())
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(unsupported.status(), 415);
}
