//! Calendar windows in UTC, and the counter each budget has per window.
//!
//! Minutes, hours and days are fixed lengths of Unix time (which has no leap seconds), so
//! their windows are plain integer arithmetic; months need the calendar, from the `time`
//! crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

use crate::keys::{self, KeyKind};
use crate::store::StoreError;
use crate::store::budget::{BudgetLimit, Period, Reservation};
use crate::tenant::TenantId;

/// How long a window's counter is kept after the window ends, so a call reserved just before
/// the end can still be reconciled (and its usage read) after it.
pub const GRACE: Duration = Duration::from_secs(3600);

/// Largest amount, limit or adjustment accepted (2^53 - 1): the Redis backend compares in Lua,
/// whose numbers are doubles, and every integer up to this one is exact there.
pub const MAX_AMOUNT: u64 = (1 << 53) - 1;

impl Period {
    /// The period's name in keys and messages (`minute`, `hour`, `day`, `month`).
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }
}

/// One period's window: `[start, end)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub period: Period,
    pub start_secs: i64,
    pub end_secs: i64,
}

impl Window {
    /// The window of `period` containing `at`. Fails only for instants the calendar cannot
    /// represent (beyond the year 9999 or before -9999).
    pub fn containing(period: Period, at: SystemTime) -> Result<Self, StoreError> {
        let secs = unix_secs(at);
        let fixed = |len: i64| {
            let start = secs.div_euclid(len) * len;
            (start, start + len)
        };
        let (start_secs, end_secs) = match period {
            Period::Minute => fixed(60),
            Period::Hour => fixed(3600),
            Period::Day => fixed(86_400),
            Period::Month => month(secs)?,
        };
        Ok(Self {
            period,
            start_secs,
            end_secs,
        })
    }

    pub fn start(&self) -> SystemTime {
        system_time(self.start_secs)
    }

    /// The first instant of the next window, when usage starts from zero again.
    pub fn end(&self) -> SystemTime {
        system_time(self.end_secs)
    }

    /// When the window's counter may be dropped: its end plus [`GRACE`], in Unix ms (the unit
    /// of Redis `PEXPIREAT`).
    pub fn expires_at_ms(&self) -> i64 {
        (self.end_secs + GRACE.as_secs() as i64) * 1000
    }

    /// [`Self::expires_at_ms`] as a `SystemTime`.
    pub fn expires_at(&self) -> SystemTime {
        self.end() + GRACE
    }
}

fn month(secs: i64) -> Result<(i64, i64), StoreError> {
    let out_of_range = |e: time::error::ComponentRange| {
        StoreError::Invalid(format!(
            "instant {secs} s from the Unix epoch is outside the calendar: {e}"
        ))
    };
    let date = OffsetDateTime::from_unix_timestamp(secs)
        .map_err(out_of_range)?
        .date();
    let first = date.replace_day(1).map_err(out_of_range)?;
    let (year, next_month) = match first.month() {
        time::Month::December => (first.year() + 1, time::Month::January),
        m => (first.year(), m.next()),
    };
    let next = time::Date::from_calendar_date(year, next_month, 1).map_err(out_of_range)?;
    let unix = |d: time::Date| d.midnight().assume_utc().unix_timestamp();
    Ok((unix(first), unix(next)))
}

/// Whole seconds since the epoch, rounded down (towards the past, also before 1970).
fn unix_secs(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -whole - i64::from(d.subsec_nanos() > 0)
        }
    }
}

fn system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// One budget's counter for one window: its store key, and the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub key: String,
    pub window: Window,
}

/// The counter key of budget `name` in `window`.
pub fn counter_key(tenant: &TenantId, name: &str, window: &Window) -> String {
    keys::tenant_key(
        tenant,
        KeyKind::Budget,
        &[name, window.period.as_str(), &window.start_secs.to_string()],
    )
}

/// Validates `limits` and finds each one's counter for the windows containing `at`. Refuses
/// an empty list, a budget listed twice (same name and period) and limits above
/// [`MAX_AMOUNT`].
pub fn counters(
    tenant: &TenantId,
    limits: &[BudgetLimit],
    at: SystemTime,
) -> Result<Vec<Counter>, StoreError> {
    if limits.is_empty() {
        return Err(StoreError::Invalid(
            "a budget operation needs at least one budget".into(),
        ));
    }
    let mut out = Vec::with_capacity(limits.len());
    for (i, limit) in limits.iter().enumerate() {
        if limit.limit > MAX_AMOUNT {
            return Err(StoreError::Invalid(format!(
                "budget {:?} has a limit above {MAX_AMOUNT}",
                limit.name
            )));
        }
        if limits[..i]
            .iter()
            .any(|l| l.name == limit.name && l.period == limit.period)
        {
            return Err(StoreError::Invalid(format!(
                "budget {:?} per {} is listed twice",
                limit.name,
                limit.period.as_str()
            )));
        }
        let window = Window::containing(limit.period, at)?;
        out.push(Counter {
            key: counter_key(tenant, &limit.name, &window),
            window,
        });
    }
    Ok(out)
}

/// The answer for a budget that has no room for `amount` on top of `used`.
pub fn exceeded(limit: &BudgetLimit, used: u64, window: &Window) -> Reservation {
    Reservation::Exceeded {
        name: limit.name.clone(),
        period: limit.period,
        limit: limit.limit,
        used,
        resets_at: window.end(),
    }
}

/// Refuses an amount the Redis backend could not count exactly.
pub fn check_amount(amount: u64) -> Result<(), StoreError> {
    if amount > MAX_AMOUNT {
        return Err(StoreError::Invalid(format!(
            "amount {amount} is above {MAX_AMOUNT}"
        )));
    }
    Ok(())
}

/// Refuses an adjustment the Redis backend could not count exactly.
pub fn check_delta(delta: i64) -> Result<(), StoreError> {
    check_amount(delta.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn at(dt: OffsetDateTime) -> SystemTime {
        dt.into()
    }

    fn window(period: Period, dt: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
        let w = Window::containing(period, at(dt)).unwrap();
        (w.start().into(), w.end().into())
    }

    #[test]
    fn fixed_periods() {
        let t = datetime!(2024-03-10 13:45:30.25 UTC);
        assert_eq!(
            window(Period::Minute, t),
            (
                datetime!(2024-03-10 13:45 UTC),
                datetime!(2024-03-10 13:46 UTC)
            )
        );
        assert_eq!(
            window(Period::Hour, t),
            (
                datetime!(2024-03-10 13:00 UTC),
                datetime!(2024-03-10 14:00 UTC)
            )
        );
        assert_eq!(
            window(Period::Day, t),
            (
                datetime!(2024-03-10 0:00 UTC),
                datetime!(2024-03-11 0:00 UTC)
            )
        );
    }

    #[test]
    fn boundaries_belong_to_the_window_they_start() {
        let start = datetime!(2024-03-10 13:46 UTC);
        assert_eq!(window(Period::Minute, start).0, start);
        let just_before = start - time::Duration::nanoseconds(1);
        assert_eq!(window(Period::Minute, just_before).1, start);
        assert_eq!(
            window(Period::Day, datetime!(2024-03-10 23:59:59.999999999 UTC)).1,
            datetime!(2024-03-11 0:00 UTC)
        );
    }

    #[test]
    fn months_of_every_length() {
        let cases = [
            (
                datetime!(2024-01-31 23:59:59 UTC),
                (2024, 1, 1),
                (2024, 2, 1),
            ),
            // February of a leap year ends after the 29th...
            (
                datetime!(2024-02-29 23:59:59 UTC),
                (2024, 2, 1),
                (2024, 3, 1),
            ),
            // ...and of a common year after the 28th.
            (datetime!(2023-02-28 12:00 UTC), (2023, 2, 1), (2023, 3, 1)),
            (datetime!(2023-03-01 0:00 UTC), (2023, 3, 1), (2023, 4, 1)),
            (
                datetime!(2024-04-30 23:59:59.999 UTC),
                (2024, 4, 1),
                (2024, 5, 1),
            ),
            // The year's end rolls into January of the next year.
            (
                datetime!(2024-12-31 23:59:59.999999999 UTC),
                (2024, 12, 1),
                (2025, 1, 1),
            ),
            (datetime!(2025-01-01 0:00 UTC), (2025, 1, 1), (2025, 2, 1)),
        ];
        let midnight = |(y, m, d): (i32, u8, u8)| {
            time::Date::from_calendar_date(y, m.try_into().unwrap(), d)
                .unwrap()
                .midnight()
                .assume_utc()
        };
        for (t, start, end) in cases {
            assert_eq!(
                window(Period::Month, t),
                (midnight(start), midnight(end)),
                "{t}"
            );
        }
        let feb = Window::containing(Period::Month, at(datetime!(2024-02-10 0:00 UTC))).unwrap();
        assert_eq!(feb.end_secs - feb.start_secs, 29 * 86_400);
    }

    #[test]
    fn year_end_for_every_period() {
        let last = datetime!(2023-12-31 23:59:59.5 UTC);
        let new_year = datetime!(2024-01-01 0:00 UTC);
        for period in [Period::Minute, Period::Hour, Period::Day, Period::Month] {
            assert_eq!(window(period, last).1, new_year, "{period:?}");
            assert_eq!(window(period, new_year).0, new_year, "{period:?}");
        }
    }

    #[test]
    fn before_the_epoch_rounds_towards_the_past() {
        let t = datetime!(1969-12-31 23:59:59.5 UTC);
        assert_eq!(
            window(Period::Minute, t),
            (
                datetime!(1969-12-31 23:59 UTC),
                datetime!(1970-01-01 0:00 UTC)
            )
        );
        assert_eq!(window(Period::Month, t).0, datetime!(1969-12-01 0:00 UTC));
    }

    #[test]
    fn instants_outside_the_calendar_are_refused() {
        let far = UNIX_EPOCH + Duration::from_secs(400_000 * 365 * 86_400);
        assert!(matches!(
            Window::containing(Period::Month, far),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn counters_are_keyed_by_tenant_name_period_and_window() {
        let t = TenantId::new("acme").unwrap();
        let now = at(datetime!(2024-03-10 13:45:30 UTC));
        let limits = [
            BudgetLimit {
                name: "tokens".into(),
                period: Period::Day,
                limit: 100,
            },
            BudgetLimit {
                name: "tokens".into(),
                period: Period::Month,
                limit: 1000,
            },
        ];
        let c = counters(&t, &limits, now).unwrap();
        assert_eq!(c[0].key, "gatez:tenant/acme/budget/tokens/day/1710028800");
        assert_eq!(c[1].key, "gatez:tenant/acme/budget/tokens/month/1709251200");
        assert_eq!(c[0].window.expires_at_ms(), (1_710_115_200 + 3600) * 1000);

        let twice = [limits[0].clone(), limits[0].clone()];
        assert!(matches!(
            counters(&t, &twice, now),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            counters(&t, &[], now),
            Err(StoreError::Invalid(_))
        ));
        let huge = [BudgetLimit {
            limit: MAX_AMOUNT + 1,
            ..limits[0].clone()
        }];
        assert!(matches!(
            counters(&t, &huge, now),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn amounts_must_stay_exact_in_lua() {
        assert!(check_amount(MAX_AMOUNT).is_ok());
        assert!(check_amount(MAX_AMOUNT + 1).is_err());
        assert!(check_delta(-(MAX_AMOUNT as i64)).is_ok());
        assert!(check_delta(i64::MIN).is_err());
    }
}
