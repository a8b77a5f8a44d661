//! The console's public pages, open without signing in: the timetable of coming passages of a
//! unit or a territory, as a page, CSV and iCalendar — what a mairie links to.
//!
//! Nothing personal can appear: the slots hold passages and stops only (`timetable`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tournee_core::time::{paris_date, show_day_fr};

use super::{with_registry, ConsoleError, ConsoleState};
use crate::timetable::{self, Slot, Whose};

/// `?unite=ID` or `?territoire=CODE`, and an optional period.
#[derive(Debug, Deserialize, Default)]
pub struct TimetableQuery {
    unite: Option<String>,
    territoire: Option<String>,
    du: Option<String>,
    au: Option<String>,
}

impl TimetableQuery {
    fn whose(&self) -> Result<Whose, ConsoleError> {
        match (&self.unite, &self.territoire) {
            (Some(u), _) if !u.is_empty() => Ok(Whose::Unit(u.clone())),
            (_, Some(t)) if !t.is_empty() => Ok(Whose::Territory(t.clone())),
            _ => Err(ConsoleError::Form(
                "dites de qui : ?territoire=80 (un département) ou ?unite=ID (une unité)".into(),
            )),
        }
    }

    fn query_string(&self) -> String {
        match (&self.unite, &self.territoire) {
            (Some(u), _) if !u.is_empty() => format!("unite={u}"),
            (_, Some(t)) => format!("territoire={t}"),
            _ => String::new(),
        }
    }
}

fn read(state: &ConsoleState, q: &TimetableQuery) -> Result<(Whose, Vec<Slot>), ConsoleError> {
    let whose = q.whose()?;
    let config = state.data.load_config()?;
    let today = paris_date(i64::try_from(state.now_ms() / 1000).unwrap_or(0))
        .ok_or_else(|| ConsoleError::Form("date du jour inconnue".into()))?;
    let (from, to) = timetable::period(
        today,
        config.horizon_weeks,
        q.du.as_deref(),
        q.au.as_deref(),
    )
    .map_err(|e| ConsoleError::Form(e.to_string()))?;
    let store = state.data.open_store()?;
    let registry = crate::registry::Registry::open(&state.data.registry())?;
    let slots = timetable::slots(&store, &registry, &whose, from, to)
        .map_err(|e| ConsoleError::Form(e.to_string()))?;
    Ok((whose, slots))
}

/// A slot as the page shows it.
struct Row {
    day: String,
    hours: String,
    commune: String,
    place: String,
    address: String,
    unit: String,
    cancelled: bool,
    partners: String,
}

#[derive(Template)]
#[template(path = "console/timetable.html")]
struct TimetablePage {
    title: String,
    rows: Vec<Row>,
    query: String,
}

fn hhmm(secs: i64) -> String {
    tournee_core::time::show_local(secs)
        .get(11..)
        .unwrap_or_default()
        .replace(':', " h ")
}

/// `GET /horaires`.
pub async fn page(
    State(state): State<Arc<ConsoleState>>,
    Query(q): Query<TimetableQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |_, state| {
        let (whose, slots) = read(state, &q)?;
        let rows = slots
            .iter()
            .map(|s| Row {
                day: show_day_fr(s.date),
                hours: format!("{} – {}", hhmm(s.start), hhmm(s.end)),
                commune: s.commune_name.clone(),
                place: s.place.clone(),
                address: s.address.clone().unwrap_or_default(),
                unit: s.unit_name.clone(),
                cancelled: s.cancelled,
                partners: s.partners.join(", "),
            })
            .collect();
        Ok(TimetablePage {
            title: timetable::title(&whose),
            rows,
            query: q.query_string(),
        }
        .render()?)
    })
    .await?;
    Ok(Html(html))
}

/// `GET /horaires.csv`.
pub async fn csv(
    State(state): State<Arc<ConsoleState>>,
    Query(q): Query<TimetableQuery>,
) -> Result<Response, ConsoleError> {
    let bytes = with_registry(&state, move |_, state| {
        let (_, slots) = read(state, &q)?;
        let mut out = Vec::new();
        timetable::write_csv(&slots, &mut out)?;
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response())
}

/// `GET /horaires.ics`.
pub async fn ics(
    State(state): State<Arc<ConsoleState>>,
    Query(q): Query<TimetableQuery>,
) -> Result<Response, ConsoleError> {
    let text = with_registry(&state, move |_, state| {
        let (whose, slots) = read(state, &q)?;
        Ok(timetable::to_ics(&slots, &timetable::title(&whose)))
    })
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        text,
    )
        .into_response())
}
