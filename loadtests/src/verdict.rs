//! Judging measured rows against a scenario's thresholds.

use std::time::Duration;

use crate::attack::Row;
use crate::config::Thresholds;
use crate::sut::Shutdown;

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The row that missed, or `gatez` for the process itself.
    pub subject: String,
    pub what: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.subject, self.what)
    }
}

/// Every threshold each row misses; empty when all pass. A scenario that produced no rows
/// fails too: a gate that measured nothing must not pass.
pub fn judge(rows: &[Row], t: &Thresholds) -> Vec<Failure> {
    if rows.is_empty() {
        return vec![Failure {
            subject: "scenario".into(),
            what: "no requests were recorded".into(),
        }];
    }
    let mut failures = Vec::new();
    for row in rows {
        let mut fail = |what: String| {
            failures.push(Failure {
                subject: row.name.clone(),
                what,
            })
        };
        if row.requests == 0 {
            fail("no requests were recorded".into());
            continue;
        }
        if row.rps < t.min_rps {
            fail(format!("rps {:.0} is below min_rps {}", row.rps, t.min_rps));
        }
        let p99_ms = row.p99_us as f64 / 1000.0;
        if p99_ms > t.max_p99_ms {
            fail(format!(
                "p99 {p99_ms:.3} ms is above max_p99_ms {}",
                t.max_p99_ms
            ));
        }
        if row.error_rate() > t.max_error_rate {
            fail(format!(
                "error rate {:.4} ({} of {}) is above max_error_rate {}",
                row.error_rate(),
                row.errors,
                row.requests,
                t.max_error_rate
            ));
        }
    }
    failures
}

/// The process must stop cleanly and in time on SIGTERM: that is what a rolling deploy does
/// to it after every load test of production.
pub fn judge_shutdown(shutdown: &Shutdown, limit: Duration) -> Vec<Failure> {
    let what = match shutdown.status {
        None => format!(
            "did not exit within {} s of SIGTERM (killed)",
            limit.as_secs_f64()
        ),
        Some(status) if !status.success() => format!("exited with {status} after SIGTERM"),
        Some(_) if shutdown.took > limit => format!(
            "took {:.3} s to exit after SIGTERM, limit {} s",
            shutdown.took.as_secs_f64(),
            limit.as_secs_f64()
        ),
        Some(_) => return Vec::new(),
    };
    vec![Failure {
        subject: "gatez".into(),
        what,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, rps: f64, p99_us: u64, requests: usize, errors: usize) -> Row {
        Row {
            name: name.into(),
            requests,
            errors,
            rps,
            p50_us: p99_us / 4,
            p95_us: p99_us / 2,
            p99_us,
            max_us: p99_us * 2,
        }
    }

    const T: Thresholds = Thresholds {
        min_rps: 1000.0,
        max_p99_ms: 5.0,
        max_error_rate: 0.01,
    };

    #[test]
    fn passing_rows_give_no_failures() {
        let rows = [
            row("GET a", 1500.0, 4_999, 30_000, 0),
            row("GET b", 1000.0, 5_000, 30_000, 300),
        ];
        assert_eq!(judge(&rows, &T), vec![]);
    }

    #[test]
    fn each_missed_threshold_is_named_with_its_row() {
        let rows = [
            row("GET a", 999.0, 1_000, 30_000, 0),
            row("GET b", 2000.0, 5_001, 30_000, 301),
        ];
        let failures: Vec<String> = judge(&rows, &T).iter().map(ToString::to_string).collect();
        assert_eq!(failures.len(), 3, "{failures:?}");
        assert!(
            failures[0].starts_with("GET a: rps 999 is below min_rps 1000"),
            "{failures:?}"
        );
        assert!(
            failures[1].starts_with("GET b: p99 5.001 ms"),
            "{failures:?}"
        );
        assert!(
            failures[2].starts_with("GET b: error rate 0.0100 (301 of 30000)"),
            "{failures:?}"
        );
    }

    #[test]
    fn nothing_measured_fails() {
        assert_eq!(judge(&[], &T).len(), 1);
        assert_eq!(judge(&[row("GET a", 0.0, 0, 0, 0)], &T).len(), 1);
    }
}
