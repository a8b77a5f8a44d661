//! The public timetable: the coming passages of a unit or of a territory — date, hours,
//! commune, place, whether it is cancelled — as a mairie links to it and a citizen checks it
//! before walking to the square; CSV, iCalendar and JSON, and the console's public page.
//!
//! What it does not do: show anything personal (passages and stops are public places and
//! times; appointments and home visits never appear), or plan (the scheduler's commands).

use std::io::Write;

use anyhow::{bail, Result};
use chrono::{DateTime, NaiveDate, Utc};
use icalendar::{Calendar, Component, Event, EventLike, EventStatus};
use serde::Serialize;
use tournee_core::model::{Field, Kind, PassageStatus, Scope};
use tournee_core::refdata::RefData;
use tournee_core::store::Store;
use tournee_core::time::{paris_date, show_local};
use tournee_report::queries::Queries;
use tournee_store::SqliteStore;
use uuid::Uuid;

use crate::registry::Registry;

/// Whose timetable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whose {
    /// One unit's.
    Unit(String),
    /// Every unit's in a territory (département code).
    Territory(String),
}

/// One coming passage, as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slot {
    /// The passage (stable across edits: a calendar updates it in place).
    pub passage: Uuid,
    /// Unit id.
    pub unit: String,
    /// Unit name.
    pub unit_name: String,
    /// Day (Europe/Paris).
    pub date: NaiveDate,
    /// Planned start and end, Unix seconds.
    pub start: i64,
    /// End.
    pub end: i64,
    /// INSEE code of the commune.
    pub commune: String,
    /// Its name.
    pub commune_name: String,
    /// The stop's label ("Place de la mairie").
    pub place: String,
    /// The stop's address, if given.
    pub address: Option<String>,
    /// Cancelled by the unit (the citizen must know before coming).
    pub cancelled: bool,
    /// The partners present (a permanence), by name.
    pub partners: Vec<String>,
}

/// The slots of `whose` from `from` to `to` (inclusive), by start.
pub fn slots(
    store: &SqliteStore,
    registry: &Registry,
    whose: &Whose,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Slot>> {
    if to < from {
        bail!("to: {to} is before --from {from}");
    }
    let units = registry.units()?;
    let (unit_filter, territory) = match whose {
        Whose::Unit(u) => {
            let Some(unit) = units.iter().find(|x| &x.id == u) else {
                bail!("no unit '{u}': see `tournee-server unit list`");
            };
            (Some(u.as_str()), unit.territory.clone())
        }
        Whose::Territory(t) => {
            tournee_core::model::check_territory("territory", t)?;
            (None, t.clone())
        }
    };
    let refdata = RefData::get();
    let mut out = Vec::new();
    for p in store.passages_between(unit_filter, from, to)? {
        let Scope::Unit(unit) = &p.scope else {
            continue;
        };
        let Some(u) = units
            .iter()
            .find(|x| &x.id == unit && x.territory == territory)
        else {
            continue;
        };
        let Some(stop) = p
            .id_ref(Field::Stop)
            .and_then(|s| store.record(s).ok().flatten())
        else {
            continue;
        };
        if stop.kind != Kind::Stop {
            continue;
        }
        let (Some(start), Some(end)) = (p.int(Field::PlannedStart), p.int(Field::PlannedEnd))
        else {
            continue;
        };
        let commune = stop.text(Field::Commune).unwrap_or_default().to_owned();
        out.push(Slot {
            passage: p.id,
            unit: u.id.clone(),
            unit_name: u.name.clone(),
            date: paris_date(start).unwrap_or(from),
            start,
            end,
            commune_name: refdata
                .commune(&commune)
                .map_or_else(|| commune.clone(), |c| c.name.clone()),
            commune,
            place: stop.text(Field::Label).unwrap_or_default().to_owned(),
            address: stop.text(Field::Address).map(str::to_owned),
            cancelled: p.text(Field::Status) == Some(PassageStatus::Cancelled.code()),
            partners: tournee_core::views::passage_partners(&p),
        });
    }
    out.sort_by_key(|s| (s.start, s.passage));
    Ok(out)
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 11] = [
    "date",
    "start",
    "end",
    "commune_insee",
    "commune",
    "place",
    "address",
    "unit",
    "unit_name",
    "cancelled",
    "partners",
];

fn hhmm(secs: i64) -> String {
    show_local(secs).get(11..).unwrap_or_default().to_owned()
}

/// Write `slots` as CSV (RFC 4180), a header row first; times are Europe/Paris.
pub fn write_csv(slots: &[Slot], out: &mut dyn Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    for s in slots {
        w.write_record([
            s.date.to_string(),
            hhmm(s.start),
            hhmm(s.end),
            s.commune.clone(),
            s.commune_name.clone(),
            s.place.clone(),
            s.address.clone().unwrap_or_default(),
            s.unit.clone(),
            s.unit_name.clone(),
            s.cancelled.to_string(),
            s.partners.join(", "),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// `slots` as an iCalendar document: one event per passage, its uid the passage's, cancelled
/// ones marked so (a subscribed calendar shows the cancellation).
pub fn to_ics(slots: &[Slot], name: &str) -> String {
    let mut cal = Calendar::new();
    cal.name(name);
    for s in slots {
        let at = |t: i64| DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default();
        let location = match &s.address {
            Some(a) => format!("{}, {a}, {}", s.place, s.commune_name),
            None => format!("{}, {}", s.place, s.commune_name),
        };
        let mut e = Event::new();
        e.uid(&format!("{}@tournee", s.passage))
            .summary(&format!("France services itinérant — {}", s.commune_name))
            .location(&location)
            .description(&if s.partners.is_empty() {
                s.unit_name.clone()
            } else {
                format!(
                    "{} — partenaires présents : {}",
                    s.unit_name,
                    s.partners.join(", ")
                )
            })
            .starts(at(s.start))
            .ends(at(s.end));
        if s.cancelled {
            e.status(EventStatus::Cancelled);
        }
        cal.push(e.done());
    }
    cal.done().to_string()
}

/// Formats of `timetable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimetableFormat {
    /// RFC 4180, a header row.
    Csv,
    /// iCalendar (RFC 5545), one event per passage.
    Ics,
    /// One JSON document.
    Json,
}

/// `timetable`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("whose").required(true).args(["unit", "territory"])))]
pub struct TimetableArgs {
    /// One unit's passages.
    #[arg(long, value_name = "ID")]
    pub unit: Option<String>,
    /// Every unit's passages in a territory (département code).
    #[arg(long, value_name = "CODE")]
    pub territory: Option<String>,
    /// First day (YYYY-MM-DD; default today).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD; default: as far as passages are planned).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: TimetableFormat,
}

/// The period asked, or today to the end of the planning horizon.
pub fn period(
    today: NaiveDate,
    horizon_weeks: u32,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(NaiveDate, NaiveDate)> {
    let from = match from.filter(|s| !s.is_empty()) {
        Some(d) => tournee_core::time::parse_date("from", d)?,
        None => today,
    };
    let to = match to.filter(|s| !s.is_empty()) {
        Some(d) => tournee_core::time::parse_date("to", d)?,
        None => today + chrono::Duration::weeks(i64::from(horizon_weeks)),
    };
    Ok((from, to))
}

/// Run `timetable`.
pub fn timetable_cmd(data: &crate::config::DataDir, a: &TimetableArgs, now_ms: u64) -> Result<()> {
    data.require()?;
    let config = data.load_config()?;
    let today = paris_date(i64::try_from(now_ms / 1000).unwrap_or(0))
        .ok_or_else(|| anyhow::anyhow!("today's date is out of range"))?;
    let (from, to) = period(
        today,
        config.horizon_weeks,
        a.from.as_deref(),
        a.to.as_deref(),
    )?;
    let whose = match (&a.unit, &a.territory) {
        (Some(u), _) => Whose::Unit(u.clone()),
        (None, Some(t)) => Whose::Territory(t.clone()),
        (None, None) => bail!("--unit or --territory: say whose timetable"),
    };
    let slots = slots(
        &data.open_store()?,
        &Registry::open(&data.registry())?,
        &whose,
        from,
        to,
    )?;
    let mut out = std::io::stdout().lock();
    match a.format {
        TimetableFormat::Csv => write_csv(&slots, &mut out)?,
        TimetableFormat::Ics => write!(out, "{}", to_ics(&slots, &title(&whose)))?,
        TimetableFormat::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({ "from": from, "to": to, "passages": slots }),
            )?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The calendar's name.
pub fn title(whose: &Whose) -> String {
    match whose {
        Whose::Unit(u) => format!("France services itinérant — {u}"),
        Whose::Territory(t) => {
            let name = RefData::get()
                .departement(t)
                .map_or_else(|| t.clone(), |d| d.name.clone());
            format!("France services itinérants — {name} ({t})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(cancelled: bool) -> Slot {
        Slot {
            passage: Uuid::from_u128(7),
            unit: "bus-80-1".into(),
            unit_name: "Bus Est Somme".into(),
            date: NaiveDate::from_ymd_opt(2027, 1, 12).expect("date"),
            start: 1_799_740_800,
            end: 1_799_751_600,
            commune: "80001".into(),
            commune_name: "Abbeville".into(),
            place: "Place de l'Amiral, côté \"halle\"".into(),
            address: None,
            cancelled,
            partners: vec!["Caf".into()],
        }
    }

    #[test]
    fn a_cancelled_passage_is_a_cancelled_event_and_csv_quotes_what_it_must() {
        let ics = to_ics(&[slot(true), slot(false)], "t");
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 2);
        assert_eq!(ics.matches("STATUS:CANCELLED").count(), 1);
        assert!(ics.contains("UID:00000000-0000-0000-0000-000000000007@tournee"));
        let mut out = Vec::new();
        write_csv(&[slot(false)], &mut out).expect("csv");
        let text = String::from_utf8(out).expect("utf-8");
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let row = r.records().next().expect("a row").expect("parses");
        assert_eq!(&row[5], "Place de l'Amiral, côté \"halle\"");
        assert_eq!(&row[9], "false");
        assert_eq!(&row[10], "Caf");
        assert!(ics.contains("partenaires présents : Caf"), "{ics}");
    }
}
