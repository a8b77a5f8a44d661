//! Round arithmetic, pure: parsing a round's stops (`STOP_ID@WEEKDAY@HH:MM-HH:MM`), the dates a
//! round visits each stop within a window (every N weeks, across daylight-saving changes), the
//! deterministic id of each passage, and overlap checks between time windows.
//!
//! No storage and no clock: callers pass "today" and the horizon.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::limits::{EVERY_WEEKS_MAX, ROUND_STOPS_BYTES_MAX, ROUND_STOPS_MAX};
use crate::model::ModelError;
use crate::time::paris_planned;

/// One stop of a round: where, which weekday, which time window (Paris local time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundStop {
    /// The stop record.
    pub stop: Uuid,
    /// Day of the week.
    pub weekday: Weekday,
    /// Local start time.
    pub start: NaiveTime,
    /// Local end time.
    pub end: NaiveTime,
}

fn bad(value: &str, expected: &'static str) -> ModelError {
    ModelError::BadFormat {
        field: "stop",
        value: value.to_owned(),
        expected,
    }
}

/// Parse a weekday in English or French, full or abbreviated, or ISO number 1 (Monday) to 7.
pub fn parse_weekday(s: &str) -> Option<Weekday> {
    let w = s.trim().to_lowercase();
    Some(match w.as_str() {
        "1" | "mon" | "monday" | "lun" | "lundi" => Weekday::Mon,
        "2" | "tue" | "tuesday" | "mar" | "mardi" => Weekday::Tue,
        "3" | "wed" | "wednesday" | "mer" | "mercredi" => Weekday::Wed,
        "4" | "thu" | "thursday" | "jeu" | "jeudi" => Weekday::Thu,
        "5" | "fri" | "friday" | "ven" | "vendredi" => Weekday::Fri,
        "6" | "sat" | "saturday" | "sam" | "samedi" => Weekday::Sat,
        "7" | "sun" | "sunday" | "dim" | "dimanche" => Weekday::Sun,
        _ => return None,
    })
}

fn weekday_code(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

impl RoundStop {
    /// Parse `STOP_ID@WEEKDAY@HH:MM-HH:MM`.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        const FORM: &str = "STOP_ID@WEEKDAY@HH:MM-HH:MM (e.g. 0190…@tue@09:00-12:00)";
        let mut parts = s.split('@');
        let (Some(id), Some(day), Some(window), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(s, FORM));
        };
        let stop = Uuid::parse_str(id.trim()).map_err(|_| bad(s, FORM))?;
        let weekday = parse_weekday(day)
            .ok_or_else(|| bad(s, "weekday: mon … sun, lundi … dimanche, or 1 … 7"))?;
        let (a, b) = window.split_once('-').ok_or_else(|| bad(s, FORM))?;
        let t = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| bad(s, FORM));
        let (start, end) = (t(a)?, t(b)?);
        if end <= start {
            return Err(ModelError::BadFormat {
                field: "stop",
                value: s.to_owned(),
                expected: "time window (its end must come after its start)",
            });
        }
        Ok(Self {
            stop,
            weekday,
            start,
            end,
        })
    }

    /// The stored form, `STOP_ID@mon@HH:MM-HH:MM`.
    pub fn encode(&self) -> String {
        format!(
            "{}@{}@{}-{}",
            self.stop,
            weekday_code(self.weekday),
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }

    /// True when two windows on the same weekday share time.
    pub fn overlaps(&self, other: &RoundStop) -> bool {
        self.weekday == other.weekday && self.start < other.end && other.start < self.end
    }

    /// Planned start and end of a passage on `date`, as Unix seconds (Paris local time, so 09:00
    /// stays 09:00 across a daylight-saving change; a window touching the hour skipped or
    /// repeated that night follows `time::paris_planned`'s rule). Never fails: every date of
    /// a plan has a planned window.
    pub fn planned(&self, date: NaiveDate) -> (i64, i64) {
        paris_planned(date, self.start, self.end)
    }
}

/// Encode a round's stops for its `stops` field.
pub fn encode_stops(stops: &[RoundStop]) -> String {
    stops
        .iter()
        .map(RoundStop::encode)
        .collect::<Vec<_>>()
        .join(";")
}

/// Decode a round's `stops` field.
pub fn decode_stops(s: &str) -> Result<Vec<RoundStop>, ModelError> {
    s.split(';')
        .filter(|p| !p.is_empty())
        .map(RoundStop::parse)
        .collect()
}

/// Check a round's `stops` field as stored and sent: at most `ROUND_STOPS_MAX` windows, each
/// of the stored form (so its length stays within `ROUND_STOPS_BYTES_MAX`).
pub fn check_stops_field(s: &str) -> Result<(), ModelError> {
    if s.len() > ROUND_STOPS_BYTES_MAX {
        return Err(ModelError::TooLong {
            field: "stops",
            len: s.len(),
            max: ROUND_STOPS_BYTES_MAX,
        });
    }
    let stops = decode_stops(s)?;
    if stops.len() > ROUND_STOPS_MAX {
        return Err(ModelError::BadFormat {
            field: "stops",
            value: format!("{} windows", stops.len()),
            expected: ROUND_STOPS_EXPECTED,
        });
    }
    Ok(())
}

/// What a round's window count must be, in words (kept in step with `ROUND_STOPS_MAX`).
const ROUND_STOPS_EXPECTED: &str = "round: at most 128 stop windows";
const _: () = assert!(ROUND_STOPS_MAX == 128);

fn monday_of(d: NaiveDate) -> NaiveDate {
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

/// Dates in `[window_from, window_to]` on which a round valid from `from` to `to`, recurring
/// every `every_weeks` weeks (counted from the week of `from`), visits on `weekday`.
pub fn visit_dates(
    from: NaiveDate,
    to: Option<NaiveDate>,
    every_weeks: u32,
    weekday: Weekday,
    window_from: NaiveDate,
    window_to: NaiveDate,
) -> Vec<NaiveDate> {
    let every = i64::from(every_weeks.clamp(1, EVERY_WEEKS_MAX));
    let first = from.max(window_from);
    let last = to.map_or(window_to, |t| t.min(window_to));
    let anchor = monday_of(from);
    let mut out = Vec::new();
    let mut d = first
        + Duration::days(
            (i64::from(weekday.num_days_from_monday())
                - i64::from(first.weekday().num_days_from_monday()))
            .rem_euclid(7),
        );
    while d <= last {
        let weeks = (monday_of(d) - anchor).num_days() / 7;
        if weeks % every == 0 {
            out.push(d);
        }
        d += Duration::days(7);
    }
    out
}

/// The passage id of a round's visit to a stop on a date at a start time: derived, so
/// regenerating the plan finds the same passages instead of making duplicates.
pub fn passage_id(round: Uuid, stop: &RoundStop, date: NaiveDate) -> Uuid {
    let mut h = Sha256::new();
    h.update(b"tournee/passage/1");
    h.update(round.as_bytes());
    h.update(stop.stop.as_bytes());
    h.update(date.to_string().as_bytes());
    h.update(stop.start.format("%H:%M").to_string().as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The first date on which two recurrences — (first day, last day, every N weeks) — both visit
/// on `weekday`, if any. The combined pattern repeats every lcm(N₁, N₂) weeks once both have
/// started, so one such period is enough to decide.
pub fn first_common_visit(
    a: (NaiveDate, Option<NaiveDate>, u32),
    b: (NaiveDate, Option<NaiveDate>, u32),
    weekday: Weekday,
) -> Option<NaiveDate> {
    fn gcd(x: u32, y: u32) -> u32 {
        if y == 0 {
            x
        } else {
            gcd(y, x % y)
        }
    }
    let (na, nb) = (a.2.clamp(1, EVERY_WEEKS_MAX), b.2.clamp(1, EVERY_WEEKS_MAX));
    let period = na / gcd(na, nb) * nb;
    let start = a.0.max(b.0);
    let mut end = start + Duration::weeks(i64::from(period) + 1);
    for last in [a.1, b.1].into_iter().flatten() {
        end = end.min(last);
    }
    if end < start {
        return None;
    }
    let theirs: std::collections::HashSet<NaiveDate> =
        visit_dates(b.0, b.1, nb, weekday, start, end)
            .into_iter()
            .collect();
    visit_dates(a.0, a.1, na, weekday, start, end)
        .into_iter()
        .find(|d| theirs.contains(d))
}

/// True when two validity ranges share a day (`None` = open-ended).
pub fn ranges_overlap(
    a: (NaiveDate, Option<NaiveDate>),
    b: (NaiveDate, Option<NaiveDate>),
) -> bool {
    let a_end = a.1.unwrap_or(NaiveDate::MAX);
    let b_end = b.1.unwrap_or(NaiveDate::MAX);
    a.0 <= b_end && b.0 <= a_end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::ROUND_STOP_ENCODED_BYTES;
    use crate::time::show_local;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn every_two_weeks_on_tuesday_and_thursday_across_the_spring_change() {
        // 2027-03-01 is a Monday; summer time starts on Sunday 2027-03-28.
        let from = d("2027-03-01");
        let tue = visit_dates(
            from,
            Some(d("2027-04-30")),
            2,
            Weekday::Tue,
            d("2027-03-01"),
            d("2027-06-30"),
        );
        let thu = visit_dates(
            from,
            Some(d("2027-04-30")),
            2,
            Weekday::Thu,
            d("2027-03-01"),
            d("2027-06-30"),
        );
        let days = |v: &[NaiveDate]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            days(&tue),
            [
                "2027-03-02",
                "2027-03-16",
                "2027-03-30",
                "2027-04-13",
                "2027-04-27"
            ]
        );
        assert_eq!(
            days(&thu),
            [
                "2027-03-04",
                "2027-03-18",
                "2027-04-01",
                "2027-04-15",
                "2027-04-29"
            ]
        );
        let stop = RoundStop::parse(&format!("{}@mardi@09:00-12:00", Uuid::nil())).expect("parse");
        for date in &tue {
            let (s, e) = stop.planned(*date);
            assert!(
                show_local(s).ends_with("09:00"),
                "{date}: {}",
                show_local(s)
            );
            assert_eq!(e - s, 3 * 3600);
        }
        let before = stop.planned(d("2027-03-16")).0;
        let after = stop.planned(d("2027-03-30")).0;
        assert_eq!(
            after - before,
            14 * 86_400 - 3600,
            "one hour less in UTC after the change"
        );
    }

    #[test]
    fn the_window_clips_and_the_anchor_is_the_first_week() {
        let from = d("2027-01-06"); // a Wednesday: week 0 is the week of Monday 2027-01-04
        let v = visit_dates(
            from,
            None,
            3,
            Weekday::Mon,
            d("2027-01-01"),
            d("2027-02-28"),
        );
        let days: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            days,
            ["2027-01-25", "2027-02-15"],
            "Monday 01-04 is before the start"
        );
        let clipped = visit_dates(
            from,
            None,
            1,
            Weekday::Fri,
            d("2027-01-20"),
            d("2027-01-31"),
        );
        assert_eq!(clipped, vec![d("2027-01-22"), d("2027-01-29")]);
        assert!(visit_dates(
            from,
            Some(d("2027-01-05")),
            1,
            Weekday::Fri,
            d("2027-01-01"),
            d("2027-12-31")
        )
        .is_empty());
    }

    #[test]
    fn stops_parse_encode_and_refuse_bad_forms() {
        let id = Uuid::now_v7();
        let s = RoundStop::parse(&format!("{id}@Thu@14:00-17:30")).expect("parse");
        assert_eq!(s.weekday, Weekday::Thu);
        assert_eq!(RoundStop::parse(&s.encode()), Ok(s));
        assert_eq!(
            decode_stops(&encode_stops(&[s, s])).expect("decode").len(),
            2
        );
        for bad in [
            format!("{id}@thu@17:00-14:00"),
            format!("{id}@thu@14:00"),
            format!("{id}@jour@14:00-15:00"),
            "nope@thu@14:00-15:00".to_owned(),
            format!("{id}@thu@14:00-15:00@x"),
        ] {
            assert!(RoundStop::parse(&bad).is_err(), "{bad}");
        }
        let e = RoundStop::parse(&format!("{id}@thu@17:00-14:00")).expect_err("backwards");
        assert!(e.to_string().contains("end must come after its start"));
    }

    #[test]
    fn a_round_of_the_most_windows_fits_its_field_and_one_more_does_not() {
        let id = Uuid::now_v7();
        let one = RoundStop::parse(&format!("{id}@dimanche@23:58-23:59")).expect("parse");
        assert_eq!(one.encode().len(), ROUND_STOP_ENCODED_BYTES);
        let most = vec![one; ROUND_STOPS_MAX];
        let field = encode_stops(&most);
        assert!(field.len() <= ROUND_STOPS_BYTES_MAX, "{}", field.len());
        assert_eq!(check_stops_field(&field), Ok(()));
        let too_many = encode_stops(&vec![one; ROUND_STOPS_MAX + 1]);
        assert!(check_stops_field(&too_many).is_err());
        assert!(check_stops_field("not a window").is_err());
        assert_eq!(check_stops_field(""), Ok(()));
    }

    #[test]
    fn alternating_weeks_never_meet_but_weekly_and_fortnightly_do() {
        let even = (d("2027-03-01"), None, 2);
        let odd = (d("2027-03-08"), None, 2);
        assert_eq!(first_common_visit(even, odd, Weekday::Tue), None);
        let weekly = (d("2027-03-08"), None, 1);
        assert_eq!(
            first_common_visit(even, weekly, Weekday::Tue),
            Some(d("2027-03-16"))
        );
        let every_3 = (d("2027-03-01"), None, 3);
        assert_eq!(
            first_common_visit(even, every_3, Weekday::Mon),
            Some(d("2027-03-01"))
        );
        let ended = (d("2027-03-08"), Some(d("2027-03-14")), 1);
        assert_eq!(
            first_common_visit(even, ended, Weekday::Tue),
            None,
            "ends before they meet"
        );
    }

    #[test]
    fn overlaps_and_ids() {
        let id = Uuid::now_v7();
        let a = RoundStop::parse(&format!("{id}@tue@09:00-12:00")).expect("a");
        let b = RoundStop::parse(&format!("{id}@tue@11:30-13:00")).expect("b");
        let c = RoundStop::parse(&format!("{id}@tue@12:00-13:00")).expect("c");
        let e = RoundStop::parse(&format!("{id}@wed@09:00-12:00")).expect("e");
        assert!(a.overlaps(&b) && !a.overlaps(&c) && !a.overlaps(&e));
        let r = Uuid::now_v7();
        assert_eq!(
            passage_id(r, &a, d("2027-01-05")),
            passage_id(r, &a, d("2027-01-05"))
        );
        assert_ne!(
            passage_id(r, &a, d("2027-01-05")),
            passage_id(r, &a, d("2027-01-12"))
        );
        assert!(ranges_overlap(
            (d("2027-01-01"), None),
            (d("2030-01-01"), Some(d("2030-02-01")))
        ));
        assert!(!ranges_overlap(
            (d("2027-01-01"), Some(d("2027-01-31"))),
            (d("2027-02-01"), None)
        ));
    }
}
