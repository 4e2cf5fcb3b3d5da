//! A received span, flattened for assertions: hex ids, the resource's `service.name`,
//! attributes as JSON values.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanRecord {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// OTLP `SpanKind` number (1 internal, 2 server, 3 client, 4 producer, 5 consumer).
    pub kind: i32,
    pub service_name: Option<String>,
    pub scope_name: String,
    pub attributes: BTreeMap<String, Value>,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    /// OTLP `StatusCode` number (0 unset, 1 ok, 2 error).
    pub status_code: i32,
}

impl SpanRecord {
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }

    pub(super) fn from_proto(span: &Span, service_name: Option<&str>, scope_name: &str) -> Self {
        Self {
            trace_id: hex::encode(&span.trace_id),
            span_id: hex::encode(&span.span_id),
            parent_span_id: hex::encode(&span.parent_span_id),
            name: span.name.clone(),
            kind: span.kind,
            service_name: service_name.map(str::to_owned),
            scope_name: scope_name.to_owned(),
            attributes: attributes(&span.attributes),
            start_time_unix_nano: span.start_time_unix_nano,
            end_time_unix_nano: span.end_time_unix_nano,
            status_code: span.status.as_ref().map(|s| s.code).unwrap_or(0),
        }
    }
}

pub(super) fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, Value> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(any).unwrap_or(Value::Null),
            )
        })
        .collect()
}

fn any(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(any).collect()),
        Some(any_value::Value::KvlistValue(l)) => json!(attributes(&l.values)),
        Some(any_value::Value::BytesValue(b)) => json!(hex::encode(b)),
        None => Value::Null,
    }
}
