//! Parsing and showing times the way CLI.md promises: RFC 3339, `YYYY-MM-DDTHH:MM±HH:MM`, or
//! `YYYY-MM-DDTHH:MM` in local time (Europe/Paris); dates `YYYY-MM-DD`. Times are stored as Unix
//! seconds (UTC). A local time that does not exist (spring-forward gap) or exists twice (the
//! autumn hour that repeats) is refused, the latter asking for the offset; planned times of a
//! round follow a documented rule instead (`paris_planned`), because nobody is there to ask.
//!
//! No clock reads here: "today" is always passed in. This module depends on no other of the
//! crate: its parse error is its own `TimeError`, which `model` turns into
//! `ModelError::BadFormat` (same message).

use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};
use chrono_tz::Europe::Paris;

/// A time or date that does not parse, naming the field it was given for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not a time (or date) of an accepted form, or a local time skipped in spring.
    #[error("{field}: '{value}' is not a valid {expected}")]
    Bad {
        /// The field.
        field: &'static str,
        /// What was given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A local time of the autumn hour that repeats: two instants, only the user knows which.
    #[error(
        "{field} : {value} existe deux fois à Paris (la nuit du passage à l'heure d'hiver) ; \
         précisez le décalage : {value}+02:00 (la première fois, heure d'été) ou \
         {value}+01:00 (la seconde, heure d'hiver)"
    )]
    Ambiguous {
        /// The field.
        field: &'static str,
        /// What was given (`YYYY-MM-DDTHH:MM`).
        value: String,
    },
}

/// Parse a time: RFC 3339 (`2026-11-23T09:30:00+01:00`), `YYYY-MM-DDTHH:MM±HH:MM`, or local
/// `YYYY-MM-DDTHH:MM` (Europe/Paris). A local time that does not exist (the spring-forward
/// gap) is an error; so is an ambiguous one (the autumn hour that repeats): which of the two
/// instants was meant is only known to the person typing, so the message asks for the offset.
pub fn parse_time(field: &'static str, s: &str) -> Result<i64, TimeError> {
    let bad = |expected| TimeError::Bad {
        field,
        value: s.to_owned(),
        expected,
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M%:z") {
        return Ok(t.timestamp());
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .map_err(|_| bad("time (RFC 3339, or YYYY-MM-DDTHH:MM in Europe/Paris time)"))?;
    match Paris.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.timestamp()),
        LocalResult::Ambiguous(_, _) => Err(TimeError::Ambiguous {
            field,
            value: s.to_owned(),
        }),
        LocalResult::None => Err(bad(
            "local time (this one is skipped by the change to summer time)",
        )),
    }
}

/// The one instant of a Paris wall-clock time on `date`, if it has exactly one.
fn paris_single(date: NaiveDate, t: NaiveTime) -> Option<i64> {
    match Paris.from_local_datetime(&date.and_time(t)) {
        LocalResult::Single(x) => Some(x.timestamp()),
        _ => None,
    }
}

/// True when the window `start`–`end` on `date` touches the hour skipped or repeated by a
/// daylight-saving change, so `paris_planned` applies its rule rather than the wall clock.
pub fn touches_clock_change(date: NaiveDate, start: NaiveTime, end: NaiveTime) -> bool {
    paris_single(date, start).is_none() || paris_single(date, end).is_none()
}

/// Planned start and end, Unix seconds, of a window `start`–`end` (Paris wall-clock times) on
/// `date`: 09:00 stays 09:00 across a daylight-saving change.
///
/// The rule for the night of a change, when an end of the window falls in the hour skipped in
/// spring or repeated in autumn: the whole window is read with the offset in force at that
/// day's midnight, as if the clocks had not changed yet. So it keeps its length and its end
/// stays after its start: `02:00-03:30` on 2027-03-28 becomes 03:00-04:30 summer time. Never
/// fails, so no date of a round's plan can block its materialisation.
pub fn paris_planned(date: NaiveDate, start: NaiveTime, end: NaiveTime) -> (i64, i64) {
    if let (Some(s), Some(e)) = (paris_single(date, start), paris_single(date, end)) {
        return (s, e);
    }
    let midnight = date.and_time(NaiveTime::MIN);
    let offset: FixedOffset = match Paris.from_local_datetime(&midnight) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.offset().fix(),
        LocalResult::None => Paris.offset_from_utc_datetime(&midnight).fix(),
    };
    let at = |t: NaiveTime| (date.and_time(t) - offset).and_utc().timestamp();
    (at(start), at(end))
}

/// Parse a date `YYYY-MM-DD`.
pub fn parse_date(field: &'static str, s: &str) -> Result<NaiveDate, TimeError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| TimeError::Bad {
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

/// French abbreviations of weekdays (Monday first) and months, as people write them.
const WEEKDAYS_FR: [&str; 7] = ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."];
const MONTHS_FR: [&str; 12] = [
    "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
    "déc.",
];

/// A day as people read it: `lun. 7 déc.`.
pub fn show_day_fr(day: NaiveDate) -> String {
    use chrono::Datelike;
    format!(
        "{} {} {}",
        WEEKDAYS_FR[day.weekday().num_days_from_monday() as usize],
        day.day(),
        MONTHS_FR[day.month0() as usize]
    )
}

/// A Unix time in Paris as people read it: `lun. 7 déc. 10:00`.
pub fn show_fr(secs: i64) -> String {
    match DateTime::<Utc>::from_timestamp(secs, 0) {
        Some(t) => {
            let t = t.with_timezone(&Paris);
            format!("{} {}", show_day_fr(t.date_naive()), t.format("%H:%M"))
        }
        None => secs.to_string(),
    }
}

/// The time of day in Paris, `10:00`.
pub fn show_hm(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.with_timezone(&Paris).format("%H:%M").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// A duration in minutes as people read it: `45 min`, `1 h`, `1 h 30`.
pub fn show_minutes(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m:02}"),
    }
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
    fn french_forms_read_as_people_write_them() {
        let t = parse_time("start", "2026-12-07T10:00").expect("local");
        assert_eq!(show_fr(t), "lun. 7 déc. 10:00");
        let t = parse_time("start", "2026-08-15T08:05").expect("local");
        assert_eq!(show_fr(t), "sam. 15 août 08:05");
        assert_eq!(show_hm(t), "08:05");
        assert_eq!(show_minutes(45), "45 min");
        assert_eq!(show_minutes(60), "1 h");
        assert_eq!(show_minutes(90), "1 h 30");
        assert_eq!(show_minutes(125), "2 h 05");
    }

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
    }

    #[test]
    fn an_ambiguous_local_time_asks_for_the_offset_and_either_offset_is_taken() {
        let e = parse_time("start", "2026-10-25T02:30").expect_err("the hour repeats");
        let msg = e.to_string();
        assert!(
            msg.starts_with("start : 2026-10-25T02:30 existe deux fois"),
            "{msg}"
        );
        assert!(
            msg.contains("2026-10-25T02:30+02:00") && msg.contains("2026-10-25T02:30+01:00"),
            "{msg}"
        );
        let summer = parse_time("start", "2026-10-25T02:30+02:00").expect("summer");
        let winter = parse_time("start", "2026-10-25T02:30+01:00").expect("winter");
        assert_eq!(winter - summer, 3600);
        assert_eq!(
            Ok(summer),
            parse_time("start", "2026-10-25T02:30:00+02:00"),
            "the RFC 3339 form with seconds is the same instant"
        );
        assert!(parse_time("start", "2026-10-25T01:59").is_ok());
        assert!(parse_time("start", "2026-10-25T03:00").is_ok());
    }

    #[test]
    fn planned_windows_keep_their_length_on_the_nights_of_a_change() {
        let t = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").expect("time");
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        // Spring: 02:00-03:00 does not exist on 2027-03-28.
        let (s, e) = paris_planned(day("2027-03-28"), t("02:00"), t("03:30"));
        assert_eq!(e - s, 90 * 60);
        assert_eq!(show_rfc3339(s), "2027-03-28T03:00:00+02:00");
        let (s, e) = paris_planned(day("2027-03-28"), t("02:30"), t("03:00"));
        assert_eq!(e - s, 30 * 60, "end stays after start");
        // Autumn: 02:00-03:00 happens twice on 2026-10-25.
        let (s, e) = paris_planned(day("2026-10-25"), t("02:30"), t("03:15"));
        assert_eq!(e - s, 45 * 60);
        assert_eq!(show_rfc3339(s), "2026-10-25T02:30:00+02:00");
        // Any other window is its wall-clock times.
        assert!(touches_clock_change(
            day("2027-03-28"),
            t("01:00"),
            t("02:30")
        ));
        assert!(!touches_clock_change(
            day("2027-03-28"),
            t("01:00"),
            t("03:00")
        ));
        let (s, e) = paris_planned(day("2027-03-28"), t("09:00"), t("12:00"));
        assert_eq!(show_rfc3339(s), "2027-03-28T09:00:00+02:00");
        assert_eq!(show_rfc3339(e), "2027-03-28T12:00:00+02:00");
        let (s, _) = paris_planned(day("2026-10-25"), t("01:00"), t("01:30"));
        assert_eq!(show_rfc3339(s), "2026-10-25T01:00:00+02:00");
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
