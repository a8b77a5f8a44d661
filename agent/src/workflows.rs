//! The conseillère's field commands of the second wave: persons (search, history, merge),
//! walk-ins, collective sessions, requests followed up, appointments cancelled and a week.
//!
//! Each parses what was typed, calls `tournee_core::actions` or `tournee_core::views`, and
//! prints a French table or one JSON document. Ids may be typed by unique prefix. No network.

use std::path::Path;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;
use tournee_cli::output::{print_json, print_line, print_table, Format};
use tournee_core::actions::people::{self, NewPerson, PersonUpdate};
use tournee_core::actions::requests::{self, RequestUpdate};
use tournee_core::actions::require_kind;
use tournee_core::actions::visits::{self, NewVisit, NewWorkshop, VisitPlace};
use tournee_core::clock::Clock;
use tournee_core::limits::PERSON_SEARCH_RESULTS_MAX;
use tournee_core::model::{check_duration, Field, Kind, Level, Location, Outcome};
use tournee_core::record::Record;
use tournee_core::refdata::RefData;
use tournee_core::store::Store;
use tournee_core::time::{parse_date, parse_time, show_day_fr, show_fr, show_rfc3339};
use tournee_core::views::{self, RequestFilter, RequestRow};
use uuid::Uuid;

use tournee_agent::words::{commune_name, person_name};

use crate::commands::{day_arg, identity, open_existing, parse_id, parse_int};

/// `… ID` (a record id, in full or by a unique prefix of 8 characters or more).
#[derive(Debug, Args)]
pub struct IdArg {
    /// Record id (or a unique prefix of at least 8 characters).
    pub id: String,
}

/// `person …`.
#[derive(Debug, Subcommand)]
pub enum PersonCmd {
    /// Find persons by name, phone or commune, accents and case ignored.
    Search(PersonSearch),
    /// Record a person; prints the id.
    Add(PersonAdd),
    /// The person and their history: appointments, walk-ins, requests.
    Show(PersonShow),
    /// Change a person's name, phone, birth year, commune or address.
    Set(PersonSet),
    /// Merge two records of the same person: OTHER_ID becomes ID everywhere.
    Merge(PersonMerge),
}

/// `person search`.
#[derive(Debug, Args)]
pub struct PersonSearch {
    /// What to look for ("lefevre", "ste", "06 12", "Abbeville").
    pub query: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `person add`.
#[derive(Debug, Args)]
pub struct PersonAdd {
    /// Display name ("Mme Martin").
    #[arg(long)]
    pub name: String,
    /// Phone number.
    #[arg(long, value_name = "TEL")]
    pub phone: Option<String>,
    /// Birth year.
    #[arg(long, value_name = "YYYY")]
    pub birth_year: Option<String>,
    /// INSEE code of the commune.
    #[arg(long, value_name = "INSEE")]
    pub commune: Option<String>,
    /// Address (for home visits only).
    #[arg(long, value_name = "TEXT")]
    pub address: Option<String>,
}

/// `person show`.
#[derive(Debug, Args)]
pub struct PersonShow {
    /// Person id (or a unique prefix).
    pub id: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `person set` (an empty value clears phone, birth year or address).
#[derive(Debug, Args)]
pub struct PersonSet {
    /// Person id (or a unique prefix).
    pub id: String,
    /// New display name.
    #[arg(long)]
    pub name: Option<String>,
    /// New phone ("" clears it).
    #[arg(long, value_name = "TEL")]
    pub phone: Option<String>,
    /// New birth year ("" clears it).
    #[arg(long, value_name = "YYYY")]
    pub birth_year: Option<String>,
    /// New commune (INSEE code).
    #[arg(long, value_name = "INSEE")]
    pub commune: Option<String>,
    /// New address ("" clears it).
    #[arg(long, value_name = "TEXT")]
    pub address: Option<String>,
}

/// `person merge`.
#[derive(Debug, Args)]
pub struct PersonMerge {
    /// The person kept.
    pub id: String,
    /// The duplicate, which becomes `ID` everywhere.
    pub other_id: String,
}

/// `visit …`.
#[derive(Debug, Subcommand)]
pub enum VisitCmd {
    /// Record a walk-in (accueil sans rendez-vous), with a person or anonymous; prints its id.
    Add(VisitAdd),
}

/// `visit add`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("place").required(true).args(["passage", "commune"])))]
#[command(group(clap::ArgGroup::new("who").required(true).args(["person", "anonymous"])))]
pub struct VisitAdd {
    /// The passage of the round it happened at.
    #[arg(long, value_name = "ID")]
    pub passage: Option<String>,
    /// Without a passage: the commune (INSEE code)…
    #[arg(long, value_name = "INSEE", requires = "location")]
    pub commune: Option<String>,
    /// …and how: arret, domicile or telephone.
    #[arg(long, requires = "commune", conflicts_with = "passage")]
    pub location: Option<String>,
    /// The person received (id or unique prefix).
    #[arg(long, value_name = "ID")]
    pub person: Option<String>,
    /// Nobody's name is recorded.
    #[arg(long)]
    pub anonymous: bool,
    /// When (RFC 3339 or YYYY-MM-DDTHH:MM; default now).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// `session …`.
#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// Record a collective session (atelier) at a passage; prints its id.
    Add(SessionAdd),
}

/// `session add`.
#[derive(Debug, Args)]
pub struct SessionAdd {
    /// The passage it was held at.
    #[arg(long, value_name = "ID")]
    pub passage: String,
    /// Theme code (numerique, papiers_citoyennete, …).
    #[arg(long, value_name = "CODE")]
    pub theme: String,
    /// How many attended (no names).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub attendees: String,
    /// How long it lasted, in minutes.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub minutes: Option<String>,
}

/// `request list`.
#[derive(Debug, Args)]
pub struct RequestList {
    /// Only requests waiting on a partner (en_attente_operateur).
    #[arg(long)]
    pub pending: bool,
    /// Only this person's (id or unique prefix).
    #[arg(long, value_name = "ID")]
    pub person: Option<String>,
    /// Only those made on this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub date: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `request set`.
#[derive(Debug, Args)]
pub struct RequestSet {
    /// Request id (or a unique prefix).
    pub id: String,
    /// resolue_sur_place, orientee_operateur, en_attente_operateur or non_resolue.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Partner code.
    #[arg(long, value_name = "CODE")]
    pub partner: Option<String>,
    /// Theme code.
    #[arg(long, value_name = "CODE")]
    pub theme: Option<String>,
    /// information, accompagnement or orientation.
    #[arg(long)]
    pub level: Option<String>,
    /// Minutes spent.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub minutes: Option<String>,
}

/// `appointment list`.
#[derive(Debug, Args)]
pub struct AppointmentList {
    /// Day YYYY-MM-DD (default: today, Europe/Paris).
    #[arg(long, conflicts_with = "week")]
    pub date: Option<String>,
    /// The week (Monday to Sunday) holding this day, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub week: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn optional_text(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.to_owned())
}

fn year(s: &str) -> Result<i64> {
    parse_int("birth-year", s)
}

/// Run a `person` command.
pub fn person(dir: &Path, clock: &dyn Clock, cmd: PersonCmd) -> Result<()> {
    let now = clock.now_ms();
    match cmd {
        PersonCmd::Search(s) => {
            let store = open_existing(dir)?;
            let found = views::search_persons(&store, &s.query, PERSON_SEARCH_RESULTS_MAX)?;
            match s.format {
                Format::Json => print_json(&json!({
                    "query": s.query,
                    "persons": found.iter().map(person_json).collect::<Vec<_>>(),
                })),
                Format::Table => {
                    let rows: Vec<Vec<String>> = found
                        .iter()
                        .map(|p| {
                            vec![
                                p.text(Field::Name).unwrap_or_default().to_owned(),
                                p.text(Field::Phone).unwrap_or_default().to_owned(),
                                p.int(Field::BirthYear)
                                    .map(|y| y.to_string())
                                    .unwrap_or_default(),
                                commune_name(p.text(Field::Commune)),
                                p.id.to_string(),
                            ]
                        })
                        .collect();
                    print_table(&["nom", "téléphone", "né(e) en", "commune", "id"], &rows)
                }
            }
        }
        PersonCmd::Add(a) => {
            let mut store = open_existing(dir)?;
            let unit = identity(&store)?.unit;
            let new = NewPerson {
                name: a.name,
                phone: a.phone,
                birth_year: a.birth_year.as_deref().map(year).transpose()?,
                commune: a.commune,
                address: a.address,
            };
            let (id, action) = people::add_person(now, &unit, &new)?;
            store.write_local(now, &action)?;
            print_line(id)
        }
        PersonCmd::Show(s) => {
            let store = open_existing(dir)?;
            let id = parse_id(&store, "person", &s.id)?;
            let history = views::person_history(&store, id)?
                .ok_or_else(|| anyhow::anyhow!("aucune personne {id} sur ce poste"))?;
            show_history(&store, &history, s.format)
        }
        PersonCmd::Set(a) => {
            let mut store = open_existing(dir)?;
            let id = parse_id(&store, "person", &a.id)?;
            let id = people::require_person(&store, id)?;
            let record = require_kind(&store, id, Kind::Citizen)?;
            let update = PersonUpdate {
                name: a.name,
                phone: a.phone.as_deref().map(optional_text),
                birth_year: a
                    .birth_year
                    .as_deref()
                    .map(|y| optional_text(y).as_deref().map(year).transpose())
                    .transpose()?,
                commune: a.commune,
                address: a.address.as_deref().map(optional_text),
            };
            store.write_local(now, &people::set_person(now, &record, &update)?)?;
            print_line(id)
        }
        PersonCmd::Merge(m) => {
            let mut store = open_existing(dir)?;
            let keep = parse_id(&store, "id", &m.id)?;
            let other = parse_id(&store, "other_id", &m.other_id)?;
            let action = people::merge_persons(&store, keep, other)?;
            store.write_local(now, &action)?;
            print_line(people::surviving_person(&store, keep)?)
        }
    }
}

/// Run `visit add`.
pub fn visit(dir: &Path, clock: &dyn Clock, cmd: VisitCmd) -> Result<()> {
    let VisitCmd::Add(a) = cmd;
    let now = clock.now_ms();
    let mut store = open_existing(dir)?;
    let unit = identity(&store)?.unit;
    let place = match (&a.passage, &a.commune, &a.location) {
        (Some(p), _, _) => VisitPlace::Passage(parse_id(&store, "passage", p)?),
        (None, Some(c), Some(l)) => VisitPlace::Commune {
            commune: c.clone(),
            location: Location::parse(l)?,
        },
        _ => anyhow::bail!("--passage, ou --commune et --location, sont requis"),
    };
    let person = a
        .person
        .as_deref()
        .map(|p| parse_id(&store, "person", p))
        .transpose()?;
    let at = match &a.at {
        Some(t) => parse_time("at", t)?,
        None => i64::try_from(now / 1000).unwrap_or(0),
    };
    let (id, action) = visits::add_visit(&store, now, &unit, &NewVisit { place, person, at })?;
    store.write_local(now, &action)?;
    print_line(id)
}

/// Run `session add`.
pub fn session(dir: &Path, clock: &dyn Clock, cmd: SessionCmd) -> Result<()> {
    let SessionCmd::Add(a) = cmd;
    let now = clock.now_ms();
    let mut store = open_existing(dir)?;
    let minutes = a
        .minutes
        .as_deref()
        .map(|m| {
            let n = parse_int("minutes", m)?;
            check_duration("minutes", n)?;
            Ok::<_, anyhow::Error>(n)
        })
        .transpose()?;
    let w = NewWorkshop {
        passage: parse_id(&store, "passage", &a.passage)?,
        theme: a.theme,
        attendees: parse_int("attendees", &a.attendees)?,
        minutes,
    };
    let (id, action) = visits::add_workshop(&store, now, &w)?;
    store.write_local(now, &action)?;
    print_line(id)
}

/// Run `request list`.
pub fn request_list(dir: &Path, a: RequestList) -> Result<()> {
    let store = open_existing(dir)?;
    let filter = RequestFilter {
        pending: a.pending,
        person: a
            .person
            .as_deref()
            .map(|p| parse_id(&store, "person", p))
            .transpose()?,
        day: a
            .date
            .as_deref()
            .map(|d| parse_date("date", d))
            .transpose()?,
    };
    let rows = views::list_requests(&store, filter)?;
    match a.format {
        Format::Json => print_json(&json!({
            "requests": rows.iter().map(|r| request_json(&store, r)).collect::<Vec<_>>(),
        })),
        Format::Table => print_requests(&store, &rows),
    }
}

fn print_requests(store: &dyn Store, rows: &[RequestRow]) -> Result<()> {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.day.map(show_day_fr).unwrap_or_default(),
                person_name(store, r.person),
                r.request
                    .text(Field::Partner)
                    .unwrap_or_default()
                    .to_owned(),
                r.request.text(Field::Theme).unwrap_or_default().to_owned(),
                r.request
                    .text(Field::Outcome)
                    .unwrap_or_default()
                    .to_owned(),
                r.request
                    .int(Field::Duration)
                    .map(|m| format!("{m} min"))
                    .unwrap_or_default(),
                r.request.id.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "jour",
            "personne",
            "partenaire",
            "thème",
            "issue",
            "durée",
            "id",
        ],
        &table,
    )
}

/// Run `request set`.
pub fn request_set(dir: &Path, clock: &dyn Clock, a: RequestSet) -> Result<()> {
    let now = clock.now_ms();
    let mut store = open_existing(dir)?;
    let id = parse_id(&store, "id", &a.id)?;
    let record = require_kind(&store, id, Kind::Request)?;
    let minutes = match a.minutes.as_deref() {
        None => None,
        Some(m) if m.trim().is_empty() => Some(None),
        Some(m) => {
            let n = parse_int("minutes", m)?;
            check_duration("minutes", n)?;
            Some(Some(n))
        }
    };
    let update = RequestUpdate {
        outcome: a.outcome.as_deref().map(Outcome::parse).transpose()?,
        partner: a.partner,
        theme: a.theme,
        level: a.level.as_deref().map(Level::parse).transpose()?,
        minutes,
    };
    store.write_local(now, &requests::set_request(&record, &update)?)?;
    print_line(id)
}

/// Run `request delete`.
pub fn request_delete(dir: &Path, clock: &dyn Clock, a: IdArg) -> Result<()> {
    let now = clock.now_ms();
    let mut store = open_existing(dir)?;
    let id = parse_id(&store, "id", &a.id)?;
    let record = require_kind(&store, id, Kind::Request)?;
    store.write_local(now, &requests::delete(&record))?;
    print_line(id)
}

/// Run `appointment cancel`.
pub fn appointment_cancel(dir: &Path, clock: &dyn Clock, a: IdArg) -> Result<()> {
    let now = clock.now_ms();
    let mut store = open_existing(dir)?;
    let id = parse_id(&store, "id", &a.id)?;
    let record = require_kind(&store, id, Kind::Appointment)?;
    store.write_local(now, &requests::cancel_appointment(&record))?;
    print_line(id)
}

/// Run `appointment list --week DATE`.
pub fn appointment_week(dir: &Path, clock: &dyn Clock, week: &str, format: Format) -> Result<()> {
    let store = open_existing(dir)?;
    let day = day_arg(Some(week), clock.now_ms())?;
    let w = views::week(&store, day)?;
    let mut list = Vec::new();
    for (day, recs) in &w.days {
        for r in &recs.appointments {
            list.push((*day, r));
        }
    }
    match format {
        Format::Json => print_json(&json!({
            "week": w.monday.to_string(),
            "appointments": list.iter().map(|(_, r)| json!({
                "id": r.id.to_string(),
                "start": r.int(Field::Start).map(show_rfc3339),
                "duration_min": r.int(Field::Duration),
                "location": r.text(Field::Location),
                "commune": r.text(Field::Commune),
                "person": r.id_ref(Field::Citizen).map(|c| c.to_string()),
                "person_name": person_name(&store, r.id_ref(Field::Citizen)),
                "status": r.text(Field::Status),
            })).collect::<Vec<_>>(),
        })),
        Format::Table => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|(_, r)| {
                    vec![
                        r.int(Field::Start).map(show_fr).unwrap_or_default(),
                        r.int(Field::Duration)
                            .map(tournee_core::time::show_minutes)
                            .unwrap_or_default(),
                        r.text(Field::Location).unwrap_or_default().to_owned(),
                        commune_name(r.text(Field::Commune)),
                        person_name(&store, r.id_ref(Field::Citizen)),
                        r.text(Field::Status).unwrap_or_default().to_owned(),
                        r.id.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "début", "durée", "lieu", "commune", "personne", "statut", "id",
                ],
                &rows,
            )
        }
    }
}

fn person_json(p: &Record) -> serde_json::Value {
    json!({
        "id": p.id.to_string(),
        "name": p.text(Field::Name),
        "phone": p.text(Field::Phone),
        "birth_year": p.int(Field::BirthYear),
        "commune": p.text(Field::Commune),
        "commune_name": p.text(Field::Commune).and_then(|c| RefData::get().commune(c)).map(|c| c.name.clone()),
        "address": p.text(Field::Address),
    })
}

fn request_json(store: &dyn Store, r: &RequestRow) -> serde_json::Value {
    json!({
        "id": r.request.id.to_string(),
        "day": r.day.map(|d| d.to_string()),
        "parent": r.parent.as_ref().map(|p| json!({"kind": p.kind.code(), "id": p.id.to_string()})),
        "person": r.person.map(|p| p.to_string()),
        "person_name": person_name(store, r.person),
        "partner": r.request.text(Field::Partner),
        "theme": r.request.text(Field::Theme),
        "level": r.request.text(Field::Level),
        "outcome": r.request.text(Field::Outcome),
        "minutes": r.request.int(Field::Duration),
    })
}

fn dated_json(r: &Record) -> serde_json::Value {
    json!({
        "id": r.id.to_string(),
        "start": r.int(Field::Start).map(show_rfc3339),
        "location": r.text(Field::Location),
        "commune": r.text(Field::Commune),
        "status": r.text(Field::Status),
    })
}

fn show_history(store: &dyn Store, h: &views::History, format: Format) -> Result<()> {
    match format {
        Format::Json => {
            let mut person = person_json(&h.person);
            person["merged"] = json!(h.merged.iter().map(Uuid::to_string).collect::<Vec<_>>());
            print_json(&json!({
                "person": person,
                "appointments": h.appointments.iter().map(dated_json).collect::<Vec<_>>(),
                "visits": h.visits.iter().map(dated_json).collect::<Vec<_>>(),
                "requests": h.requests.iter().map(|r| request_json(store, r)).collect::<Vec<_>>(),
            }))
        }
        Format::Table => {
            let p = &h.person;
            let mut rows = vec![
                vec![
                    "nom".to_owned(),
                    p.text(Field::Name).unwrap_or_default().to_owned(),
                ],
                vec![
                    "téléphone".to_owned(),
                    p.text(Field::Phone).unwrap_or_default().to_owned(),
                ],
                vec!["commune".to_owned(), commune_name(p.text(Field::Commune))],
                vec![
                    "adresse".to_owned(),
                    p.text(Field::Address).unwrap_or_default().to_owned(),
                ],
                vec!["id".to_owned(), p.id.to_string()],
            ];
            for a in &h.appointments {
                rows.push(vec![
                    "rendez-vous".to_owned(),
                    format!(
                        "{} — {} ({})",
                        a.int(Field::Start).map(show_fr).unwrap_or_default(),
                        commune_name(a.text(Field::Commune)),
                        a.text(Field::Status).unwrap_or_default()
                    ),
                ]);
            }
            for v in &h.visits {
                rows.push(vec![
                    "accueil".to_owned(),
                    format!(
                        "{} — {}",
                        v.int(Field::Start).map(show_fr).unwrap_or_default(),
                        commune_name(v.text(Field::Commune))
                    ),
                ]);
            }
            for r in &h.requests {
                rows.push(vec![
                    "demande".to_owned(),
                    format!(
                        "{} — {} / {} : {}",
                        r.day.map(show_day_fr).unwrap_or_default(),
                        r.request.text(Field::Partner).unwrap_or_default(),
                        r.request.text(Field::Theme).unwrap_or_default(),
                        r.request.text(Field::Outcome).unwrap_or_default()
                    ),
                ]);
            }
            print_table(&["", ""], &rows)
        }
    }
}
