//! The UI's read-only pages: today, the printable day sheet, the week, synchronisation, the
//! sync-state line htmx refreshes, the compiled-in assets; and the layout and French words
//! every page shares.
//!
//! Deliberately not here: forms that write (`forms`), HTTP checks (`guard`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use tournee_core::model::{Field, Kind};
use tournee_core::record::Record;
use tournee_core::store::Store;
use tournee_core::time::{show_day_fr, show_fr, show_hm, show_minutes};
use tournee_store::SqliteStore;

use super::{with_store, UiError, UiState};
use crate::words::{commune_name, person_name};

/// The stylesheet of both web interfaces (own sober CSS, system fonts).
pub const STYLE: &str = include_str!("../../assets/style.css");
const HTMX: &[u8] = include_bytes!("../../assets/htmx-2.0.11.min.js");
/// Assets never change under their name (the version is in it).
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// What the layout shows around every page.
#[derive(Debug)]
pub struct Layout {
    pub title: String,
    pub nav: &'static str,
    pub flash: Option<&'static str>,
    pub conflicts: u64,
    pub sync: String,
}

impl Layout {
    pub fn new(
        store: &SqliteStore,
        state: &UiState,
        title: impl Into<String>,
        nav: &'static str,
        flash: Option<&'static str>,
    ) -> Result<Self, UiError> {
        let stats = store.stats()?;
        Ok(Self {
            title: title.into(),
            nav,
            flash,
            conflicts: stats.conflicted_records,
            sync: sync_words(store, state)?,
        })
    }
}

/// `?ok=…` after a form: which confirmation to show (a code, never what was typed).
#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    #[serde(default)]
    ok: Option<String>,
    #[serde(default)]
    date: Option<String>,
}

impl Flash {
    pub fn message(&self) -> Option<&'static str> {
        Some(match self.ok.as_deref()? {
            "accueil" => "Accueil enregistré.",
            "atelier" => "Atelier enregistré.",
            "passage" => "Passage enregistré.",
            "rdv" => "Rendez-vous mis à jour.",
            "demande" => "Demande mise à jour.",
            "supprimee" => "Demande supprimée.",
            "personne" => "Fiche mise à jour.",
            "fusion" => "Fiches fusionnées.",
            "conflit" => "Conflit résolu.",
            _ => return None,
        })
    }
}

/// The sync state in words, from the daemon's watch and the store (never the network).
pub fn sync_words(store: &SqliteStore, state: &UiState) -> Result<String, UiError> {
    let pending = store.stats()?.pending;
    let link = state.link.borrow().clone();
    let link = match (link.reachable, link.last_attempt_ms) {
        (Some(true), Some(at)) => format!("serveur joignable (vu {})", show_fr(ms_to_s(at))),
        (Some(false), Some(at)) => format!(
            "hors ligne (dernier essai {}) : le travail continue ici",
            show_fr(ms_to_s(at))
        ),
        _ => "pas encore de contact avec le serveur".to_owned(),
    };
    Ok(match pending {
        0 => format!("{link} ; tout est envoyé"),
        n => format!("{link} ; {n} changement(s) en attente d'envoi"),
    })
}

fn ms_to_s(ms: u64) -> i64 {
    i64::try_from(ms / 1000).unwrap_or(0)
}

pub fn passage_status_fr(code: Option<&str>) -> &'static str {
    match code {
        Some("effectue") => "effectué",
        Some("annule") => "annulé",
        _ => "prévu",
    }
}

pub fn cause_fr(code: &str) -> &'static str {
    match code {
        "panne" => "panne du véhicule",
        "meteo" => "météo",
        "absence_conseiller" => "conseiller absent",
        _ => "autre raison",
    }
}

pub fn appointment_status_fr(code: Option<&str>) -> &'static str {
    match code {
        Some("seen") => "vu",
        Some("noshow") => "absent",
        Some("excused") => "excusé",
        Some("revoked") => "annulé",
        _ => "à venir",
    }
}

pub fn location_fr(code: Option<&str>) -> &'static str {
    match code {
        Some("domicile") => "à domicile",
        Some("telephone") => "par téléphone",
        _ => "à l'arrêt du bus",
    }
}

pub fn outcome_fr(code: Option<&str>) -> &'static str {
    match code {
        Some("resolue_sur_place") => "résolue sur place",
        Some("orientee_operateur") => "orientée vers le partenaire",
        Some("en_attente_operateur") => "en attente du partenaire",
        Some("non_resolue") => "non résolue",
        _ => "",
    }
}

/// One passage of the round as a page shows it.
#[derive(Debug)]
pub struct PassageRow {
    pub id: String,
    pub label: String,
    pub commune: String,
    pub address: String,
    pub window: String,
    pub status: &'static str,
    pub cause: String,
    pub actual: String,
    /// Partners present (a permanence), by name, comma-separated.
    pub partners: String,
}

pub fn passage_row(store: &dyn Store, p: &Record) -> Result<PassageRow, UiError> {
    let stop = match p.id_ref(Field::Stop) {
        Some(s) => store.record(s)?,
        None => None,
    };
    let stop_text = |f| {
        stop.as_ref()
            .and_then(|s| s.text(f))
            .unwrap_or_default()
            .to_owned()
    };
    let hm = |f| p.int(f).map(show_hm).unwrap_or_default();
    let actual = match (p.int(Field::ActualStart), p.int(Field::ActualEnd)) {
        (None, None) => String::new(),
        _ => format!("{}–{}", hm(Field::ActualStart), hm(Field::ActualEnd)),
    };
    Ok(PassageRow {
        id: p.id.to_string(),
        label: stop_text(Field::Label),
        commune: commune_name(stop.as_ref().and_then(|s| s.text(Field::Commune))),
        address: stop_text(Field::Address),
        window: format!("{}–{}", hm(Field::PlannedStart), hm(Field::PlannedEnd)),
        status: passage_status_fr(p.text(Field::Status)),
        cause: p
            .text(Field::Cause)
            .map(cause_fr)
            .unwrap_or_default()
            .to_owned(),
        actual,
        partners: tournee_core::views::passage_partners(p).join(", "),
    })
}

/// One appointment as a page shows it.
#[derive(Debug)]
pub struct AppointmentRow {
    pub id: String,
    pub time: String,
    pub duration: String,
    pub person: String,
    pub person_id: String,
    pub address: String,
    pub phone: String,
    pub commune: String,
    pub location: &'static str,
    pub status: &'static str,
}

pub fn appointment_row(store: &dyn Store, a: &Record) -> Result<AppointmentRow, UiError> {
    let person = a
        .id_ref(Field::Citizen)
        .map(|c| tournee_core::actions::people::surviving_person(store, c))
        .transpose()?;
    let rec = match person {
        Some(p) => store.record(p)?,
        None => None,
    };
    let text = |f| {
        rec.as_ref()
            .and_then(|r| r.text(f))
            .unwrap_or_default()
            .to_owned()
    };
    Ok(AppointmentRow {
        id: a.id.to_string(),
        time: a.int(Field::Start).map(show_hm).unwrap_or_default(),
        duration: a.int(Field::Duration).map(show_minutes).unwrap_or_default(),
        person: person_name(store, person),
        person_id: person.map(|p| p.to_string()).unwrap_or_default(),
        address: text(Field::Address),
        phone: text(Field::Phone),
        commune: commune_name(a.text(Field::Commune)),
        location: location_fr(a.text(Field::Location)),
        status: appointment_status_fr(a.text(Field::Status)),
    })
}

fn sorted(mut v: Vec<Record>, f: Field) -> Vec<Record> {
    v.sort_by_key(|r| (r.int(f), r.id));
    v
}

/// A day's passages and appointments, shown.
fn day_rows(
    store: &SqliteStore,
    day: NaiveDate,
) -> Result<(Vec<PassageRow>, Vec<AppointmentRow>, usize), UiError> {
    let passages = sorted(store.records_on(Kind::Passage, day)?, Field::PlannedStart)
        .iter()
        .map(|p| passage_row(store, p))
        .collect::<Result<_, _>>()?;
    let appointments = sorted(store.records_on(Kind::Appointment, day)?, Field::Start)
        .iter()
        .map(|a| appointment_row(store, a))
        .collect::<Result<_, _>>()?;
    let visits = store.records_on(Kind::Visit, day)?.len();
    Ok((passages, appointments, visits))
}

#[derive(Template)]
#[template(path = "today.html")]
struct TodayPage {
    l: Layout,
    day: String,
    date: String,
    passages: Vec<PassageRow>,
    appointments: Vec<AppointmentRow>,
    visits: usize,
}

/// `/`: today's passages, appointments and walk-ins.
pub async fn today(
    State(state): State<Arc<UiState>>,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, UiError> {
    with_store(&state, move |store, state| {
        let day = state.today();
        let (passages, appointments, visits) = day_rows(store, day)?;
        let page = TodayPage {
            l: Layout::new(store, state, "Aujourd'hui", "today", flash.message())?,
            day: show_day_fr(day),
            date: day.to_string(),
            passages,
            appointments,
            visits,
        };
        Ok(Html(page.render()?))
    })
    .await
}

#[derive(Template)]
#[template(path = "sheet.html")]
struct SheetPage {
    l: Layout,
    day: String,
    passages: Vec<PassageRow>,
    appointments: Vec<AppointmentRow>,
}

fn day_param(state: &UiState, date: Option<&str>) -> Result<NaiveDate, UiError> {
    match date.filter(|d| !d.is_empty()) {
        Some(d) => Ok(tournee_core::time::parse_date("date", d)?),
        None => Ok(state.today()),
    }
}

/// `/feuille?date=YYYY-MM-DD`: the printable day sheet.
pub async fn sheet(
    State(state): State<Arc<UiState>>,
    Query(q): Query<Flash>,
) -> Result<Html<String>, UiError> {
    with_store(&state, move |store, state| {
        let day = day_param(state, q.date.as_deref())?;
        let (passages, appointments, _) = day_rows(store, day)?;
        let page = SheetPage {
            l: Layout::new(
                store,
                state,
                format!("Feuille du {}", show_day_fr(day)),
                "today",
                None,
            )?,
            day: show_day_fr(day),
            passages,
            appointments,
        };
        Ok(Html(page.render()?))
    })
    .await
}

/// One day of the week page.
#[derive(Debug)]
pub struct WeekDay {
    pub day: String,
    pub passages: Vec<PassageRow>,
    pub appointments: Vec<AppointmentRow>,
    pub visits: usize,
}

#[derive(Template)]
#[template(path = "week.html")]
struct WeekPage {
    l: Layout,
    monday: String,
    previous: String,
    next: String,
    days: Vec<WeekDay>,
}

/// `/semaine?date=YYYY-MM-DD`: the week holding that day.
pub async fn week(
    State(state): State<Arc<UiState>>,
    Query(q): Query<Flash>,
) -> Result<Html<String>, UiError> {
    with_store(&state, move |store, state| {
        let day = day_param(state, q.date.as_deref())?;
        let w = tournee_core::views::week(store, day)?;
        let mut days = Vec::new();
        for (d, recs) in &w.days {
            days.push(WeekDay {
                day: show_day_fr(*d),
                passages: recs
                    .passages
                    .iter()
                    .map(|p| passage_row(store, p))
                    .collect::<Result<_, _>>()?,
                appointments: recs
                    .appointments
                    .iter()
                    .map(|a| appointment_row(store, a))
                    .collect::<Result<_, _>>()?,
                visits: recs.visits.len(),
            });
        }
        let page = WeekPage {
            l: Layout::new(store, state, "Semaine", "week", None)?,
            monday: show_day_fr(w.monday),
            previous: (w.monday - Duration::days(7)).to_string(),
            next: (w.monday + Duration::days(7)).to_string(),
            days,
        };
        Ok(Html(page.render()?))
    })
    .await
}

/// A refused change as the synchronisation page shows it.
#[derive(Debug)]
pub struct RefusedRow {
    pub what: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "sync.html")]
struct SyncPage {
    l: Layout,
    last_sync: String,
    pending: u64,
    link: String,
    offset: String,
    refused: Vec<RefusedRow>,
}

fn link_words(state: &UiState) -> String {
    let link = state.link.borrow().clone();
    match (link.reachable, link.last_error) {
        (Some(true), _) => "joignable".to_owned(),
        (Some(false), Some(words)) => match link.last_detail {
            Some(detail) => format!(
                "pas joint à la dernière tentative : {words} ; l'agent réessaie de lui-même (détail technique : {detail})"
            ),
            None => format!("pas joint à la dernière tentative : {words} ; l'agent réessaie de lui-même"),
        },
        _ => "pas encore essayé (ou ce poste travaille sans serveur)".to_owned(),
    }
}

fn offset_words(offset_ms: Option<i64>) -> String {
    use tournee_core::limits::CLOCK_OFFSET_WARN_MS;
    match offset_ms {
        None => "inconnu (pas encore de synchronisation)".to_owned(),
        Some(o) if o.abs() > CLOCK_OFFSET_WARN_MS => format!(
            "{} s : l'horloge de cet ordinateur est {} celle du serveur ; corrigez la date et l'heure",
            o / 1000,
            if o > 0 { "en retard sur" } else { "en avance sur" }
        ),
        Some(o) => format!("{o} ms (correct)"),
    }
}

/// `/synchronisation`: last sync, what waits, the link, the clock, refused changes.
pub async fn sync_page(State(state): State<Arc<UiState>>) -> Result<Html<String>, UiError> {
    with_store(&state, move |store, state| {
        let last = store.last_sync()?;
        let refused = store
            .rejected()?
            .iter()
            .map(|r| RefusedRow {
                what: format!(
                    "{} {} (champ {})",
                    r.change.kind, r.change.record, r.change.field
                ),
                reason: crate::words::reason_fr(&r.reason),
            })
            .collect();
        let page = SyncPage {
            l: Layout::new(store, state, "Synchronisation", "sync", None)?,
            last_sync: last.map_or("jamais".into(), |(at, _)| show_fr(ms_to_s(at))),
            pending: store.stats()?.pending,
            link: link_words(state),
            offset: offset_words(last.map(|(_, o)| o)),
            refused,
        };
        Ok(Html(page.render()?))
    })
    .await
}

#[derive(Template)]
#[template(path = "sync_line.html")]
struct SyncLine {
    sync: String,
}

/// `/etat`: the sync-state line alone (htmx refreshes it every few seconds).
pub async fn sync_line(State(state): State<Arc<UiState>>) -> Result<Html<String>, UiError> {
    with_store(&state, move |store, state| {
        Ok(Html(
            SyncLine {
                sync: sync_words(store, state)?,
            }
            .render()?,
        ))
    })
    .await
}

/// `/assets/style.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, IMMUTABLE),
        ],
        STYLE,
    )
        .into_response()
}

/// `/assets/htmx-2.0.11.min.js`, unmodified.
pub async fn htmx() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, IMMUTABLE),
        ],
        HTMX,
    )
        .into_response()
}

/// Anything else.
pub async fn not_found() -> UiError {
    UiError::NotFound
}
