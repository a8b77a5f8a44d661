//! Parsing and showing times the way CLI.md promises: RFC 3339, or `YYYY-MM-DDTHH:MM` in local
//! time (Europe/Paris); dates `YYYY-MM-DD`. Times are stored as Unix seconds (UTC).
//!
//! No clock reads here: "today" is always passed in. This module depends on no other of the
//! crate: its parse error is its own `TimeError`, which `model` turns into
//! `ModelError::BadFormat` (same message).

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Europe::Paris;

/// A time or date that does not parse, naming the field it was given for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: '{value}' is not a valid {expected}")]
pub struct TimeError {
    /// The field.
    pub field: &'static str,
    /// What was given.
    pub value: String,
    /// What was expected.
    pub expected: &'static str,
}

/// Parse a time: RFC 3339 (`2026-11-23T09:30:00+01:00`) or local `YYYY-MM-DDTHH:MM`
/// (Europe/Paris). A local time that does not exist (the spring-forward gap) is an error; an
/// ambiguous one (the autumn hour that repeats) takes the earlier instant.
pub fn parse_time(field: &'static str, s: &str) -> Result<i64, TimeError> {
    let bad = |expected| TimeError {
        field,
        value: s.to_owned(),
        expected,
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .map_err(|_| bad("time (RFC 3339, or YYYY-MM-DDTHH:MM in Europe/Paris time)"))?;
    match Paris.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.timestamp()),
        LocalResult::None => Err(bad(
            "local time (this one is skipped by the change to summer time)",
        )),
    }
}

/// Parse a date `YYYY-MM-DD`.
pub fn parse_date(field: &'static str, s: &str) -> Result<NaiveDate, TimeError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| TimeError {
        field,
        value: s.to_owned(),
        expected: "date YYYY-MM-DD",
    })
}

/// The calendar day in Paris of a Unix time in seconds; `None` when that day is outside chrono's
/// range (`date_naive` would panic on the last hours before `NaiveDateTime::MAX`).
pub fn paris_date(secs: i64) -> Option<NaiveDate> {
    let utc = DateTime::<Utc>::from_timestamp(secs, 0)?.naive_utc();
    utc.checked_add_offset(Paris.offset_from_utc_datetime(&utc).fix())
        .map(|t| t.date())
}

/// `YYYYMMDD` as a number, the key the store indexes days by.
pub fn day_key(day: NaiveDate) -> i64 {
    i64::from(day.format("%Y%m%d").to_string().parse::<i32>().unwrap_or(0))
}

/// Show a Unix time in Paris local time, `YYYY-MM-DD HH:MM`.
pub fn show_local(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.with_timezone(&Paris).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// Show a Unix time as RFC 3339 with the Paris offset.
pub fn show_rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.with_timezone(&Paris).to_rfc3339())
        .unwrap_or_else(|| secs.to_string())
}

/// Unix seconds of a day's local midnight in Paris (start of that day).
pub fn paris_midnight(day: NaiveDate) -> i64 {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    match Paris.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp(),
        LocalResult::None => naive.and_utc().timestamp(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_rfc3339_forms_agree() {
        let a = parse_time("start", "2026-11-23T09:30").expect("local");
        let b = parse_time("start", "2026-11-23T09:30:00+01:00").expect("rfc3339");
        assert_eq!(a, b);
        let summer = parse_time("start", "2026-07-01T09:30").expect("summer");
        assert_eq!(show_rfc3339(summer), "2026-07-01T09:30:00+02:00");
        assert_eq!(show_local(a), "2026-11-23 09:30");
    }

    #[test]
    fn malformed_and_skipped_times_are_errors_naming_the_field() {
        let e = parse_time("start", "23/11/2026 9h30").expect_err("malformed");
        assert!(e.to_string().starts_with("start:"), "{e}");
        assert!(parse_time("start", "2026-03-29T02:30").is_err(), "DST gap");
        assert!(
            parse_time("start", "2026-10-25T02:30").is_ok(),
            "DST overlap"
        );
    }

    #[test]
    fn time_uses_no_other_module_of_the_crate() {
        let imports: Vec<&str> = include_str!("time.rs")
            .lines()
            .filter(|l| l.starts_with("use crate") || l.starts_with("pub use crate"))
            .collect();
        assert!(imports.is_empty(), "{imports:?}");
    }

    #[test]
    fn days_are_paris_days() {
        let late = parse_time("t", "2026-11-23T23:30").expect("time");
        assert_eq!(paris_date(late), NaiveDate::from_ymd_opt(2026, 11, 23));
        assert_eq!(
            day_key(NaiveDate::from_ymd_opt(2026, 1, 2).expect("d")),
            20260102
        );
    }
}
