//! The ClickHouse schema of the event tables, in one place.
//!
//! Columns mirror the row structs in [`super::schema`] field by field (the insert names its
//! columns, so what matters is that every struct field has a column of the matching type).
//! On top, each table has `ts DateTime MATERIALIZED` from `ts_ms`, used for monthly
//! partitions: `DateTime64` does not exist on ClickHouse 18.16, and a `MATERIALIZED` column
//! is filled by the server on inserts that do not name it and left out of `SELECT *`.
//! Only types 18.16 handles are used (String, UInt16/32/64, DateTime; no TTL or CODEC).

use super::EventKind;

/// `(name, ClickHouse type)` of each row struct field, in struct order.
pub fn columns(kind: EventKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        EventKind::Request => REQUEST_COLUMNS,
        EventKind::Usage => USAGE_COLUMNS,
        EventKind::Audit => AUDIT_COLUMNS,
    }
}

const REQUEST_COLUMNS: &[(&str, &str)] = &[
    ("event_id", "String"),
    ("ts_ms", "UInt64"),
    ("tenant_id", "String"),
    ("request_id", "String"),
    ("trace_id", "String"),
    ("route", "String"),
    ("method", "String"),
    ("path", "String"),
    ("status", "UInt16"),
    ("latency_us", "UInt64"),
    ("upstream_latency_us", "UInt64"),
    ("bytes_in", "UInt64"),
    ("bytes_out", "UInt64"),
    ("upstream", "String"),
    ("subject", "String"),
    ("client_ip", "String"),
    ("user_agent", "String"),
    ("rate_limit", "String"),
];

const USAGE_COLUMNS: &[(&str, &str)] = &[
    ("event_id", "String"),
    ("ts_ms", "UInt64"),
    ("tenant_id", "String"),
    ("request_id", "String"),
    ("trace_id", "String"),
    ("subject", "String"),
    ("model_alias", "String"),
    ("deployment", "String"),
    ("provider", "String"),
    ("prompt_tokens", "UInt64"),
    ("completion_tokens", "UInt64"),
    ("cost_micros", "UInt64"),
    ("latency_us", "UInt64"),
    ("ttft_us", "UInt64"),
    ("attempts", "UInt32"),
    ("status", "UInt16"),
    ("cache", "String"),
];

const AUDIT_COLUMNS: &[(&str, &str)] = &[
    ("event_id", "String"),
    ("ts_ms", "UInt64"),
    ("tenant_id", "String"),
    ("request_id", "String"),
    ("trace_id", "String"),
    ("session_id", "String"),
    ("subject", "String"),
    ("action", "String"),
    ("server", "String"),
    ("tool", "String"),
    ("arguments", "String"),
    ("decision", "String"),
    ("reason", "String"),
    ("latency_us", "UInt64"),
    ("result_status", "String"),
    ("result_bytes", "UInt64"),
];

/// Whether `name` can be used unquoted-safe as a database name: we quote it anyway, but
/// keeping to identifier characters rules out injection through config.
pub fn is_valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

/// `` `database`.`table` `` for `kind`. `database` must pass [`is_valid_identifier`].
pub fn qualified_table(database: &str, kind: EventKind) -> String {
    format!("`{database}`.`{}`", kind.table())
}

/// `CREATE DATABASE IF NOT EXISTS`.
pub fn create_database(database: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS `{database}`")
}

/// `CREATE TABLE IF NOT EXISTS` for `kind`: MergeTree, monthly partitions, sorted by tenant
/// then time so per-tenant range queries read little.
pub fn create_table(database: &str, kind: EventKind) -> String {
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (",
        qualified_table(database, kind)
    );
    for (name, ty) in columns(kind) {
        sql.push_str(name);
        sql.push(' ');
        sql.push_str(ty);
        sql.push_str(", ");
    }
    sql.push_str(
        "ts DateTime MATERIALIZED toDateTime(intDiv(ts_ms, 1000))) \
         ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (tenant_id, ts_ms, event_id)",
    );
    sql
}

#[cfg(test)]
mod tests {
    use clickhouse::Row;

    use super::*;
    use crate::store::events::{AuditEvent, RequestEvent, UsageEvent};

    fn names(kind: EventKind) -> Vec<&'static str> {
        columns(kind).iter().map(|(name, _)| *name).collect()
    }

    /// A field added to a row struct without a column here would fail every insert.
    #[test]
    fn columns_match_the_row_structs() {
        assert_eq!(names(EventKind::Request), RequestEvent::COLUMN_NAMES);
        assert_eq!(names(EventKind::Usage), UsageEvent::COLUMN_NAMES);
        assert_eq!(names(EventKind::Audit), AuditEvent::COLUMN_NAMES);
    }

    #[test]
    fn every_table_is_tenant_first_and_partitioned() {
        for kind in EventKind::ALL {
            let sql = create_table("gatez", kind);
            assert!(sql.starts_with(&format!(
                "CREATE TABLE IF NOT EXISTS `gatez`.`{}` (event_id String, ts_ms UInt64, tenant_id String,",
                kind.table()
            )));
            assert!(
                sql.ends_with("ORDER BY (tenant_id, ts_ms, event_id)"),
                "{sql}"
            );
        }
    }

    #[test]
    fn identifiers() {
        for ok in ["gatez", "_x", "events_2024"] {
            assert!(is_valid_identifier(ok), "{ok}");
        }
        for bad in ["", "1db", "a-b", "a`b", "a.b", "db; DROP"] {
            assert!(!is_valid_identifier(bad), "{bad}");
        }
    }
}
