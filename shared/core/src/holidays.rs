//! Jours fériés, pure: the legal public holidays of a département for a year (the eleven of
//! the Code du travail, art. L3133-1; Good Friday and 26 December in Moselle, Bas-Rhin and
//! Haut-Rhin, art. L3134-13; the abolition of slavery in the overseas départements, loi
//! 83-550), and a territory's calendar once the scheduler's exceptions are laid over them.
//!
//! No storage: the server keeps the exceptions (`holiday add|remove`) and builds a `Calendar`.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate};

/// One day off, with its French name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    /// The day.
    pub date: NaiveDate,
    /// Its name ("Lundi de Pâques").
    pub label: String,
}

/// Easter Sunday of a Gregorian year (the anonymous algorithm of Meeus, Jones and Butcher).
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).unwrap_or(NaiveDate::MIN)
}

/// Départements where the local law adds Good Friday and Saint Stephen's day.
pub const ALSACE_MOSELLE: &[&str] = &["57", "67", "68"];

/// The abolition of slavery, per overseas département: (code, month, day).
const ABOLITION: &[(&str, u32, u32)] = &[
    ("971", 5, 27),
    ("972", 5, 22),
    ("973", 6, 10),
    ("974", 12, 20),
    ("976", 4, 27),
];

/// The legal public holidays of `territory` (a département code) in `year`, by date.
pub fn legal_holidays(territory: &str, year: i32) -> Vec<Holiday> {
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d).unwrap_or(NaiveDate::MIN);
    let e = easter(year);
    let mut out = vec![
        (day(1, 1), "Jour de l'an"),
        (e + Duration::days(1), "Lundi de Pâques"),
        (day(5, 1), "Fête du Travail"),
        (day(5, 8), "Victoire 1945"),
        (e + Duration::days(39), "Ascension"),
        (e + Duration::days(50), "Lundi de Pentecôte"),
        (day(7, 14), "Fête nationale"),
        (day(8, 15), "Assomption"),
        (day(11, 1), "Toussaint"),
        (day(11, 11), "Armistice 1918"),
        (day(12, 25), "Noël"),
    ];
    if ALSACE_MOSELLE.contains(&territory) {
        out.push((e - Duration::days(2), "Vendredi saint"));
        out.push((day(12, 26), "Saint-Étienne"));
    }
    if let Some((_, m, d)) = ABOLITION.iter().find(|(t, _, _)| *t == territory) {
        out.push((day(*m, *d), "Abolition de l'esclavage"));
    }
    out.sort_by_key(|(d, _)| *d);
    out.into_iter()
        .map(|(date, label)| Holiday {
            date,
            label: label.to_owned(),
        })
        .collect()
}

/// A scheduler's exception to the legal calendar of a territory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exception {
    /// A day off that the law does not give (a local fête, a bridge day), with its name.
    Closed(String),
    /// A legal holiday on which the units work all the same.
    Open,
}

/// The days off of every territory: legal holidays with the scheduler's exceptions laid over.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    exceptions: HashMap<String, BTreeMap<NaiveDate, Exception>>,
}

impl Calendar {
    /// A calendar with these exceptions, per territory.
    pub fn new(exceptions: HashMap<String, BTreeMap<NaiveDate, Exception>>) -> Self {
        Self { exceptions }
    }

    /// The name of the day off on `date` in `territory`, or `None` on a working day.
    pub fn closed(&self, territory: &str, date: NaiveDate) -> Option<String> {
        match self.exceptions.get(territory).and_then(|e| e.get(&date)) {
            Some(Exception::Closed(label)) => return Some(label.clone()),
            Some(Exception::Open) => return None,
            None => {}
        }
        legal_holidays(territory, date.year())
            .into_iter()
            .find(|h| h.date == date)
            .map(|h| h.label)
    }

    /// The days off of `territory` in `year` after exceptions, and the legal ones worked.
    pub fn year(&self, territory: &str, year: i32) -> Vec<DayOff> {
        let mut days: BTreeMap<NaiveDate, DayOff> = legal_holidays(territory, year)
            .into_iter()
            .map(|h| {
                let d = DayOff {
                    date: h.date,
                    label: h.label,
                    legal: true,
                    worked: false,
                };
                (d.date, d)
            })
            .collect();
        let exceptions = self.exceptions.get(territory);
        for (date, e) in exceptions.into_iter().flatten() {
            if date.year() != year {
                continue;
            }
            match e {
                Exception::Open => {
                    if let Some(d) = days.get_mut(date) {
                        d.worked = true;
                    }
                }
                Exception::Closed(label) => {
                    days.insert(
                        *date,
                        DayOff {
                            date: *date,
                            label: label.clone(),
                            legal: false,
                            worked: false,
                        },
                    );
                }
            }
        }
        days.into_values().collect()
    }
}

/// One line of a territory's year: a day off, legal or added, or a legal one worked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DayOff {
    /// The day.
    pub date: NaiveDate,
    /// Its name.
    pub label: String,
    /// A legal public holiday (else added by the scheduler).
    pub legal: bool,
    /// A legal holiday the units work on (`holiday remove`): passages are planned.
    pub worked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date")
    }

    #[test]
    fn easter_matches_the_published_dates() {
        for (year, date) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2038, "2038-04-25"),
        ] {
            assert_eq!(easter(year), d(date), "{year}");
        }
    }

    #[test]
    fn alsace_moselle_has_two_more_days_and_overseas_its_abolition_day() {
        let dates = |t: &str| -> Vec<NaiveDate> {
            legal_holidays(t, 2027)
                .into_iter()
                .map(|h| h.date)
                .collect()
        };
        assert_eq!(dates("80").len(), 11);
        assert!(dates("80").contains(&d("2027-05-06")), "Ascension 2027");
        assert!(
            dates("80").contains(&d("2027-05-17")),
            "Pentecost Monday 2027"
        );
        for t in ALSACE_MOSELLE {
            assert_eq!(dates(t).len(), 13);
            assert!(dates(t).contains(&d("2027-03-26")), "Good Friday in {t}");
            assert!(dates(t).contains(&d("2027-12-26")));
        }
        assert!(!dates("59").contains(&d("2027-03-26")));
        assert!(dates("974").contains(&d("2027-12-20")));
        assert_eq!(dates("974").len(), 12);
    }

    #[test]
    fn exceptions_open_a_legal_day_and_close_another() {
        let mut e = BTreeMap::new();
        e.insert(d("2027-05-17"), Exception::Open);
        e.insert(d("2027-06-04"), Exception::Closed("Fête locale".into()));
        let cal = Calendar::new(HashMap::from([("80".to_owned(), e)]));
        assert_eq!(cal.closed("80", d("2027-05-17")), None);
        assert_eq!(
            cal.closed("59", d("2027-05-17")).as_deref(),
            Some("Lundi de Pentecôte")
        );
        assert_eq!(
            cal.closed("80", d("2027-06-04")).as_deref(),
            Some("Fête locale")
        );
        assert_eq!(cal.closed("80", d("2027-06-03")), None);
        let year = cal.year("80", 2027);
        assert_eq!(year.len(), 12);
        assert!(year.iter().any(|x| x.date == d("2027-05-17") && x.worked));
        assert!(year.iter().any(|x| x.date == d("2027-06-04") && !x.legal));
    }
}
