//! The UI's pages that write: welcoming someone (walk-in, workshop), a person's record, the
//! passage and appointment buttons of today, pending requests, conflicts. Each form POSTs,
//! calls the same `tournee_core::actions` as the CLI, and 303-redirects with a confirmation
//! code; htmx only enhances (the person search fragment).
//!
//! Deliberately not here: validation rules (in `actions`), personal data in a URL (searches
//! are POST bodies; paths carry record ids only).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use tournee_core::actions::people::{self, NewPerson, PersonUpdate};
use tournee_core::actions::requests::{self, RequestUpdate};
use tournee_core::actions::visits::{self, NewVisit, NewWorkshop, VisitPlace};
use tournee_core::actions::{self, add_request, require_kind, NewRequest, PassageUpdate};
use tournee_core::limits::{UI_PENDING_SHOWN_MAX, UI_SEARCH_RESULTS_MAX, UI_WALKIN_REQUESTS_MAX};
use tournee_core::model::{
    check_duration, AppointmentStatus, CancelCause, Field, Kind, Level, Location, Outcome,
    PassageStatus, Value,
};
use tournee_core::record::Record;
use tournee_core::refdata::RefData;
use tournee_core::store::Store;
use tournee_core::time::{parse_time, show_day_fr, show_fr};
use tournee_core::views::{self, RequestFilter};
use tournee_store::SqliteStore;
use uuid::Uuid;

use super::pages::{outcome_fr, passage_row, Flash, Layout, PassageRow};
use super::{with_store, UiError, UiState};
use crate::words::{commune_name, person_name};

/// A form's fields by name (every field optional: the handler says what is missing).
type Fields = HashMap<String, String>;

fn field<'a>(f: &'a Fields, name: &str) -> Option<&'a str> {
    f.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn required<'a>(f: &'a Fields, name: &str, what: &str) -> Result<&'a str, UiError> {
    field(f, name).ok_or_else(|| UiError::Form(format!("{what} : champ à remplir")))
}

fn minutes(f: &Fields, name: &str) -> Result<Option<i64>, UiError> {
    field(f, name)
        .map(|m| {
            let n = m.parse::<i64>().map_err(|_| {
                UiError::Form(format!("minutes : « {m} » n'est pas un nombre entier"))
            })?;
            check_duration("minutes", n)?;
            Ok(n)
        })
        .transpose()
}

/// An optional birth year typed in field `name`: four digits, from 1900 to this year.
fn birth_year(state: &UiState, f: &Fields, name: &str) -> Result<Option<i64>, UiError> {
    let this_year =
        tournee_core::time::paris_date(i64::try_from(state.now_ms() / 1000).unwrap_or(0))
            .map_or(9999, |d| i64::from(chrono::Datelike::year(&d)));
    field(f, name)
        .map(|y| match y.parse::<i64>() {
            Ok(n) if (1900..=this_year).contains(&n) => Ok(n),
            _ => Err(UiError::Form(format!(
                "année de naissance : « {y} » n'est pas une année entre 1900 et {this_year} (par exemple 1957)"
            ))),
        })
        .transpose()
}

fn parse_uuid(s: &str) -> Result<Uuid, UiError> {
    Uuid::parse_str(s).map_err(|_| UiError::NotFound)
}

fn done(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A choice of a `<select>`.
#[derive(Debug)]
pub struct Choice {
    pub code: String,
    pub label: String,
}

fn partners(day: chrono::NaiveDate) -> Vec<Choice> {
    RefData::get()
        .partners()
        .iter()
        .filter(|p| p.valid_on(day))
        .map(|p| Choice {
            code: p.code.clone(),
            label: p.label.clone(),
        })
        .collect()
}

fn themes() -> Vec<Choice> {
    RefData::get()
        .themes()
        .iter()
        .map(|t| Choice {
            code: t.code.clone(),
            label: t.label.clone(),
        })
        .collect()
}

fn choices(list: &[(&str, &str)]) -> Vec<Choice> {
    list.iter()
        .map(|(c, l)| Choice {
            code: (*c).to_owned(),
            label: (*l).to_owned(),
        })
        .collect()
}

fn outcomes() -> Vec<Choice> {
    choices(&[
        ("resolue_sur_place", "résolue sur place"),
        ("orientee_operateur", "orientée vers le partenaire"),
        ("en_attente_operateur", "en attente du partenaire"),
        ("non_resolue", "non résolue"),
    ])
}

fn levels() -> Vec<Choice> {
    choices(&[
        ("information", "information"),
        ("accompagnement", "accompagnement"),
        ("orientation", "orientation"),
    ])
}

/// A person found by a search.
#[derive(Debug)]
pub struct Found {
    pub id: String,
    pub name: String,
    pub details: String,
}

fn found(p: &Record) -> Found {
    let details = [
        commune_name(p.text(Field::Commune)),
        p.text(Field::Phone).unwrap_or_default().to_owned(),
        p.int(Field::BirthYear)
            .map(|y| format!("né(e) en {y}"))
            .unwrap_or_default(),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" · ");
    Found {
        id: p.id.to_string(),
        name: p.text(Field::Name).unwrap_or_default().to_owned(),
        details,
    }
}

fn search_found(store: &SqliteStore, typed: &str) -> Result<Vec<Found>, UiError> {
    Ok(views::search_persons(store, typed, UI_SEARCH_RESULTS_MAX)?
        .iter()
        .map(found)
        .collect())
}

#[derive(Template)]
#[template(path = "welcome.html")]
struct WelcomePage {
    l: Layout,
    query: String,
    searched: bool,
    found: Vec<Found>,
    passages: Vec<PassageRow>,
    communes: Vec<Choice>,
    partners: Vec<Choice>,
    themes: Vec<Choice>,
    levels: Vec<Choice>,
    outcomes: Vec<Choice>,
    slots: Vec<usize>,
}

fn welcome_page(
    store: &SqliteStore,
    state: &UiState,
    query: String,
    searched: bool,
) -> Result<String, UiError> {
    let day = state.today();
    let mut passages = store.records_on(Kind::Passage, day)?;
    passages.sort_by_key(|r| (r.int(Field::PlannedStart), r.id));
    let communes = RefData::get()
        .communes_of(&state.identity.territory)
        .into_iter()
        .map(|c| Choice {
            code: c.code_insee.clone(),
            label: c.name.clone(),
        })
        .collect();
    let found = if searched {
        search_found(store, &query)?
    } else {
        Vec::new()
    };
    let page = WelcomePage {
        l: Layout::new(store, state, "Accueillir", "welcome", None)?,
        query,
        searched,
        found,
        passages: passages
            .iter()
            .map(|p| passage_row(store, p))
            .collect::<Result<_, _>>()?,
        communes,
        partners: partners(day),
        themes: themes(),
        levels: levels(),
        outcomes: outcomes(),
        slots: (1..=UI_WALKIN_REQUESTS_MAX).collect(),
    };
    Ok(page.render()?)
}

/// `GET /accueillir`.
pub async fn welcome(State(state): State<Arc<UiState>>) -> Result<Html<String>, UiError> {
    with_store(&state, |store, state| {
        Ok(Html(welcome_page(store, state, String::new(), false)?))
    })
    .await
}

#[derive(Template)]
#[template(path = "found.html")]
struct FoundFragment {
    searched: bool,
    found: Vec<Found>,
}

/// `POST /personnes/recherche` (field `recherche`): the results fragment for htmx, else the
/// whole welcome page with the results (JavaScript off).
pub async fn search(
    State(state): State<Arc<UiState>>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Result<Html<String>, UiError> {
    let typed = field(&f, "recherche").unwrap_or_default().to_owned();
    let htmx = headers.contains_key("hx-request");
    with_store(&state, move |store, state| {
        if htmx {
            let found = search_found(store, &typed)?;
            return Ok(Html(
                FoundFragment {
                    searched: true,
                    found,
                }
                .render()?,
            ));
        }
        Ok(Html(welcome_page(store, state, typed, true)?))
    })
    .await
}

/// The commune typed: an INSEE code, or a commune's exact name in the unit's territory.
fn commune_code(state: &UiState, typed: &str) -> String {
    let refdata = RefData::get();
    if refdata.commune(typed).is_some() {
        return typed.to_owned();
    }
    let folded = typed.to_lowercase();
    refdata
        .communes_of(&state.identity.territory)
        .into_iter()
        .find(|c| c.name.to_lowercase() == folded)
        .map_or_else(|| typed.to_owned(), |c| c.code_insee.clone())
}

fn walk_in_place(state: &UiState, f: &Fields) -> Result<VisitPlace, UiError> {
    if let Some(p) = field(f, "passage") {
        return Ok(VisitPlace::Passage(parse_uuid(p)?));
    }
    let commune = required(f, "commune", "Commune (ou choisissez un passage)")?;
    Ok(VisitPlace::Commune {
        commune: commune_code(state, commune),
        location: Location::parse(field(f, "lieu").unwrap_or("arret"))?,
    })
}

/// The person of the walk-in: one found, a new one (recorded first), or nobody.
fn walk_in_person(
    store: &mut SqliteStore,
    state: &UiState,
    f: &Fields,
) -> Result<Option<Uuid>, UiError> {
    match field(f, "personne").unwrap_or("anonyme") {
        "anonyme" => Ok(None),
        "nouvelle" => {
            let new = NewPerson {
                name: required(f, "nouveau_nom", "Nom de la personne")?.to_owned(),
                phone: field(f, "nouveau_telephone").map(str::to_owned),
                birth_year: birth_year(state, f, "nouveau_naissance")?,
                commune: field(f, "nouveau_commune").map(|c| commune_code(state, c)),
                address: field(f, "nouveau_adresse").map(str::to_owned),
            };
            let now = state.now_ms();
            let (id, action) = people::add_person(now, &state.identity.unit, &new)?;
            store.write_local(now, &action)?;
            Ok(Some(id))
        }
        id => Ok(Some(parse_uuid(id)?)),
    }
}

/// The filled request slots, linked to `visit` (set again once the walk-in has its id).
fn walk_in_requests(f: &Fields, visit: Uuid) -> Result<Vec<NewRequest>, UiError> {
    let mut out = Vec::new();
    for i in 1..=UI_WALKIN_REQUESTS_MAX {
        let Some(partner) = field(f, &format!("partenaire_{i}")) else {
            continue;
        };
        out.push(NewRequest {
            appointment: None,
            passage: None,
            visit: Some(visit),
            partner: partner.to_owned(),
            theme: required(
                f,
                &format!("theme_{i}"),
                &format!("Thème de la demande {i}"),
            )?
            .to_owned(),
            level: Level::parse(field(f, &format!("niveau_{i}")).unwrap_or("information"))?,
            outcome: Outcome::parse(
                field(f, &format!("issue_{i}")).unwrap_or("resolue_sur_place"),
            )?,
            minutes: minutes(f, &format!("minutes_{i}"))?,
        });
    }
    Ok(out)
}

/// `POST /accueillir`: the person (if new), the walk-in and its requests.
pub async fn walk_in(
    State(state): State<Arc<UiState>>,
    Form(f): Form<Fields>,
) -> Result<Response, UiError> {
    with_store(&state, move |store, state| {
        // Everything typed is read before anything is written: a mistake in a request
        // leaves no new person behind.
        let place = walk_in_place(state, &f)?;
        let mut requests = walk_in_requests(&f, Uuid::nil())?;
        let person = walk_in_person(store, state, &f)?;
        let now = state.now_ms();
        let visit = NewVisit {
            place,
            person,
            at: state.now_s(),
        };
        let (id, action) = visits::add_visit(store, now, &state.identity.unit, &visit)?;
        store.write_local(now, &action)?;
        for r in &mut requests {
            r.visit = Some(id);
            let (_, action) = add_request(store, now, r)?;
            store.write_local(now, &action)?;
        }
        Ok(done("/?ok=accueil"))
    })
    .await
}

/// `POST /atelier`: a collective session at a passage.
pub async fn workshop(
    State(state): State<Arc<UiState>>,
    Form(f): Form<Fields>,
) -> Result<Response, UiError> {
    with_store(&state, move |store, state| {
        let attendees = required(&f, "atelier_participants", "Nombre de participants")?;
        let w = NewWorkshop {
            passage: parse_uuid(required(&f, "atelier_passage", "Passage de l'atelier")?)?,
            theme: required(&f, "atelier_theme", "Thème de l'atelier")?.to_owned(),
            attendees: attendees.parse().map_err(|_| {
                UiError::Form(format!(
                    "participants : « {attendees} » n'est pas un nombre"
                ))
            })?,
            minutes: minutes(&f, "atelier_minutes")?,
        };
        let now = state.now_ms();
        let (_, action) = visits::add_workshop(store, now, &w)?;
        store.write_local(now, &action)?;
        Ok(done("/?ok=atelier"))
    })
    .await
}

/// A time of day typed on the passage's date, as Unix seconds.
fn time_on(passage: &Record, f: &Fields, name: &'static str) -> Result<Option<i64>, UiError> {
    let Some(hm) = field(f, name) else {
        return Ok(None);
    };
    let date = passage.text(Field::Date).unwrap_or_default();
    Ok(Some(parse_time(name, &format!("{date}T{hm}"))?))
}

/// `POST /passages/{id}`: `statut` effectue or annule, with `cause`, `debut`, `fin`.
pub async fn passage(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response, UiError> {
    let id = parse_uuid(&id)?;
    with_store(&state, move |store, state| {
        let record = require_kind(store, id, Kind::Passage)?;
        let status = PassageStatus::parse(required(&f, "statut", "Statut du passage")?)?;
        let cause = match status {
            PassageStatus::Cancelled => field(&f, "cause").map(CancelCause::parse).transpose()?,
            _ => None,
        };
        let update = PassageUpdate {
            status: Some(status),
            cause,
            actual_start: time_on(&record, &f, "debut")?,
            actual_end: time_on(&record, &f, "fin")?,
        };
        store.write_local(state.now_ms(), &actions::set_passage(&record, &update)?)?;
        Ok(done("/?ok=passage"))
    })
    .await
}

/// `POST /rendez-vous/{id}`: `statut` seen, noshow or revoked (cancelled by the service).
pub async fn appointment(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response, UiError> {
    let id = parse_uuid(&id)?;
    with_store(&state, move |store, state| {
        let record = require_kind(store, id, Kind::Appointment)?;
        let status = AppointmentStatus::parse(required(&f, "statut", "Statut du rendez-vous")?)?;
        let action = match status {
            AppointmentStatus::Revoked => requests::cancel_appointment(&record),
            s => actions::set_fields(&record, vec![(Field::Status, Value::Text(s.code().into()))]),
        };
        store.write_local(state.now_ms(), &action)?;
        Ok(done("/?ok=rdv"))
    })
    .await
}

/// A line of a person's history.
#[derive(Debug)]
pub struct HistoryRow {
    pub what: &'static str,
    pub when: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "person.html")]
struct PersonPage {
    l: Layout,
    id: String,
    name: String,
    phone: String,
    birth_year: String,
    commune: String,
    commune_code: String,
    address: String,
    history: Vec<HistoryRow>,
    query: String,
    searched: bool,
    duplicates: Vec<Found>,
}

fn history_rows(store: &SqliteStore, h: &views::History) -> Vec<HistoryRow> {
    let dated = |r: &Record| r.int(Field::Start).map(show_fr).unwrap_or_default();
    let mut rows: Vec<HistoryRow> = h
        .appointments
        .iter()
        .map(|a| HistoryRow {
            what: "rendez-vous",
            when: dated(a),
            detail: format!(
                "{} — {}",
                commune_name(a.text(Field::Commune)),
                super::pages::appointment_status_fr(a.text(Field::Status))
            ),
        })
        .collect();
    rows.extend(h.visits.iter().map(|v| HistoryRow {
        what: "accueil",
        when: dated(v),
        detail: commune_name(v.text(Field::Commune)),
    }));
    rows.extend(h.requests.iter().map(|r| HistoryRow {
        what: "demande",
        when: r.day.map(show_day_fr).unwrap_or_default(),
        detail: request_words(&r.request),
    }));
    let _ = store;
    rows
}

fn request_words(r: &Record) -> String {
    let refdata = RefData::get();
    let partner = r.text(Field::Partner).unwrap_or_default();
    let theme = r.text(Field::Theme).unwrap_or_default();
    format!(
        "{} / {} : {}",
        refdata
            .partner(partner)
            .map_or(partner, |p| p.label.as_str()),
        refdata.theme(theme).map_or(theme, |t| t.label.as_str()),
        outcome_fr(r.text(Field::Outcome))
    )
}

fn person_page(
    store: &SqliteStore,
    state: &UiState,
    id: Uuid,
    query: String,
    searched: bool,
    flash: Option<&'static str>,
) -> Result<String, UiError> {
    let h = views::person_history(store, id)?.ok_or(UiError::NotFound)?;
    let p = &h.person;
    let text = |f| p.text(f).unwrap_or_default().to_owned();
    let duplicates = if searched {
        search_found(store, &query)?
            .into_iter()
            .filter(|d| d.id != p.id.to_string())
            .collect()
    } else {
        Vec::new()
    };
    let name = text(Field::Name);
    let page = PersonPage {
        l: Layout::new(store, state, format!("Personne : {name}"), "welcome", flash)?,
        id: p.id.to_string(),
        name,
        phone: text(Field::Phone),
        birth_year: p
            .int(Field::BirthYear)
            .map(|y| y.to_string())
            .unwrap_or_default(),
        commune: commune_name(p.text(Field::Commune)),
        commune_code: text(Field::Commune),
        address: text(Field::Address),
        history: history_rows(store, &h),
        query,
        searched,
        duplicates,
    };
    Ok(page.render()?)
}

/// `GET /personnes/{id}`.
pub async fn person(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, UiError> {
    let id = parse_uuid(&id)?;
    with_store(&state, move |store, state| {
        Ok(Html(person_page(
            store,
            state,
            id,
            String::new(),
            false,
            flash.message(),
        )?))
    })
    .await
}

/// `POST /personnes/{id}`: `nom`, `telephone`, `naissance`, `commune`, `adresse` (empty
/// clears phone, birth year and address).
pub async fn person_edit(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response, UiError> {
    let id = parse_uuid(&id)?;
    with_store(&state, move |store, state| {
        let id = people::require_person(store, id)?;
        let record = require_kind(store, id, Kind::Citizen)?;
        let update = PersonUpdate {
            name: Some(required(&f, "nom", "Nom")?.to_owned()),
            phone: Some(field(&f, "telephone").map(str::to_owned)),
            birth_year: Some(birth_year(state, &f, "naissance")?),
            commune: field(&f, "commune").map(|c| commune_code(state, c)),
            address: Some(field(&f, "adresse").map(str::to_owned)),
        };
        let now = state.now_ms();
        store.write_local(now, &people::set_person(now, &record, &update)?)?;
        Ok(done(&format!("/personnes/{id}?ok=personne")))
    })
    .await
}

/// `POST /personnes/{id}/doublons` (field `recherche`): the person page with candidates.
pub async fn person_duplicates(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Html<String>, UiError> {
    let id = parse_uuid(&id)?;
    let typed = field(&f, "recherche").unwrap_or_default().to_owned();
    with_store(&state, move |store, state| {
        Ok(Html(person_page(store, state, id, typed, true, None)?))
    })
    .await
}

/// `POST /personnes/{id}/fusion` (field `doublon`): the duplicate becomes this person.
pub async fn person_merge(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response, UiError> {
    let id = parse_uuid(&id)?;
    with_store(&state, move |store, state| {
        let other = parse_uuid(required(&f, "doublon", "Doublon à fusionner")?)?;
        let action = people::merge_persons(store, id, other)?;
        store.write_local(state.now_ms(), &action)?;
        let keep = people::surviving_person(store, id)?;
        Ok(done(&format!("/personnes/{keep}?ok=fusion")))
    })
    .await
}

/// A pending request as `/demandes` shows it.
#[derive(Debug)]
pub struct PendingRow {
    pub id: String,
    pub day: String,
    pub person: String,
    pub person_id: String,
    pub partner: String,
    pub theme: String,
    pub minutes: String,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    l: Layout,
    rows: Vec<PendingRow>,
    /// Pending requests in all (`rows` holds at most `UI_PENDING_SHOWN_MAX`).
    total: usize,
    outcomes: Vec<Choice>,
}

/// `GET /demandes`: requests waiting on a partner.
pub async fn requests(
    State(state): State<Arc<UiState>>,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, UiError> {
    with_store(&state, move |store, state| {
        let filter = RequestFilter {
            pending: true,
            ..RequestFilter::default()
        };
        let refdata = RefData::get();
        let pending = views::list_requests(store, filter)?;
        let total = pending.len();
        let rows = pending
            .iter()
            .take(UI_PENDING_SHOWN_MAX)
            .map(|r| {
                let t = |f| r.request.text(f).unwrap_or_default().to_owned();
                PendingRow {
                    id: r.request.id.to_string(),
                    day: r.day.map(show_day_fr).unwrap_or_default(),
                    person: person_name(store, r.person),
                    person_id: r.person.map(|p| p.to_string()).unwrap_or_default(),
                    partner: refdata
                        .partner(&t(Field::Partner))
                        .map_or_else(|| t(Field::Partner), |p| p.label.clone()),
                    theme: refdata
                        .theme(&t(Field::Theme))
                        .map_or_else(|| t(Field::Theme), |x| x.label.clone()),
                    minutes: r
                        .request
                        .int(Field::Duration)
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                }
            })
            .collect();
        let page = RequestsPage {
            l: Layout::new(
                store,
                state,
                "Demandes en attente",
                "requests",
                flash.message(),
            )?,
            rows,
            total,
            outcomes: outcomes(),
        };
        Ok(Html(page.render()?))
    })
    .await
}

/// `POST /demandes/{id}`: `issue` and `minutes`.
pub async fn request_set(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response, UiError> {
    let id = parse_uuid(&id)?;
    with_store(&state, move |store, state| {
        let record = require_kind(store, id, Kind::Request)?;
        let update = RequestUpdate {
            outcome: field(&f, "issue").map(Outcome::parse).transpose()?,
            minutes: minutes(&f, "minutes")?.map(Some),
            ..RequestUpdate::default()
        };
        store.write_local(state.now_ms(), &requests::set_request(&record, &update)?)?;
        Ok(done("/demandes?ok=demande"))
    })
    .await
}

#[derive(Template)]
#[template(path = "request_delete.html")]
struct DeletePage {
    l: Layout,
    id: String,
    what: String,
}

/// `GET /demandes/{id}/supprimer`: the confirmation step (works without JavaScript).
pub async fn request_delete_confirm(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let id = parse_uuid(&id)?;
    with_store(&state, move |store, state| {
        let record = require_kind(store, id, Kind::Request)?;
        let page = DeletePage {
            l: Layout::new(store, state, "Supprimer une demande", "requests", None)?,
            id: id.to_string(),
            what: request_words(&record),
        };
        Ok(Html(page.render()?))
    })
    .await
}

/// `POST /demandes/{id}/supprimer`.
pub async fn request_delete(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = parse_uuid(&id)?;
    with_store(&state, move |store, state| {
        let record = require_kind(store, id, Kind::Request)?;
        store.write_local(state.now_ms(), &requests::delete(&record))?;
        Ok(done("/demandes?ok=supprimee"))
    })
    .await
}

/// One competing value of a conflict.
#[derive(Debug)]
pub struct ValueRow {
    pub shown: String,
    pub input: String,
    pub device: String,
    pub written: String,
}

/// One conflicting field.
#[derive(Debug)]
pub struct ConflictRow {
    pub record: String,
    /// The record as a person recognises it ("Rendez-vous de Mme Martin, mar. 12 janv. 15:00").
    pub what: String,
    pub field: &'static str,
    /// The field's name in French.
    pub field_fr: &'static str,
    pub values: Vec<ValueRow>,
}

/// The record of a conflict as a person recognises it: whose appointment and when, which
/// passage, whose card, which request.
fn record_fr(store: &SqliteStore, r: &Record) -> String {
    let when = |f: Field| r.int(f).map(show_fr).unwrap_or_default();
    match r.kind {
        Kind::Appointment => format!(
            "Rendez-vous de {}, {}",
            or_nobody(person_name(store, r.id_ref(Field::Citizen))),
            when(Field::Start)
        ),
        Kind::Visit => format!(
            "Accueil de {}, {}",
            or_nobody(person_name(store, r.id_ref(Field::Citizen))),
            when(Field::Start)
        ),
        Kind::Passage => format!(
            "Passage du {}",
            views::record_day(r).map(show_day_fr).unwrap_or_default()
        ),
        Kind::Citizen => format!("Fiche de {}", r.text(Field::Name).unwrap_or_default()),
        Kind::Request => format!(
            "Demande {} — {}",
            r.text(Field::Partner).unwrap_or_default(),
            r.text(Field::Theme).unwrap_or_default()
        ),
        other => kind_fr(other).to_owned(),
    }
}

fn or_nobody(name: String) -> String {
    if name.is_empty() {
        "une personne sans nom".to_owned()
    } else {
        name
    }
}

/// A field as people name it (the code when it has no French name here).
fn field_fr(field: Field) -> &'static str {
    match field {
        Field::Note => "note",
        Field::Start => "heure",
        Field::Duration => "durée (minutes)",
        Field::Status => "statut",
        Field::Location => "lieu",
        Field::Commune => "commune",
        Field::Name => "nom",
        Field::Phone => "téléphone",
        Field::Address => "adresse",
        Field::BirthYear => "année de naissance",
        Field::Partner => "partenaire",
        Field::Theme => "thème",
        Field::Level => "niveau",
        Field::Outcome => "issue",
        Field::Citizen => "personne",
        Field::ActualStart => "arrivée réelle",
        Field::ActualEnd => "départ réel",
        Field::Cause => "cause d'annulation",
        Field::Attendees => "participants",
        Field::Partners => "partenaires présents",
        Field::Label => "nom de l'arrêt",
        other => other.code(),
    }
}

#[derive(Template)]
#[template(path = "conflicts.html")]
struct ConflictsPage {
    l: Layout,
    rows: Vec<ConflictRow>,
}

/// The value as `parse_field_value` reads it back, and as a person reads it.
fn value_texts(field: Field, v: &Value) -> (String, String) {
    match v {
        Value::Int(t) if field.is_time() => (tournee_core::time::show_rfc3339(*t), show_fr(*t)),
        Value::Text(s) if field == Field::Commune => (s.clone(), commune_name(Some(s))),
        Value::Text(s) => (s.clone(), s.clone()),
        Value::Int(i) => (i.to_string(), i.to_string()),
        Value::Bool(b) => (b.to_string(), if *b { "oui" } else { "non" }.to_owned()),
        Value::Id(u) => (u.to_string(), u.to_string()),
        Value::Null => (String::new(), "(vide)".to_owned()),
    }
}

/// A record kind as people name it.
fn kind_fr(kind: Kind) -> &'static str {
    match kind {
        Kind::Stop => "Arrêt",
        Kind::Round => "Tournée",
        Kind::Passage => "Passage",
        Kind::Citizen => "Personne",
        Kind::Appointment => "Rendez-vous",
        Kind::Request => "Demande",
        Kind::Visit => "Accueil",
        Kind::Workshop => "Atelier",
    }
}

fn conflict_rows(store: &SqliteStore, state: &UiState) -> Result<Vec<ConflictRow>, UiError> {
    let names = crate::devices::DeviceNames::of(store, &state.dir)?;
    let mut rows = Vec::new();
    for r in store.conflicted()? {
        rows.extend(record_conflict_rows(store, &r, &names));
    }
    Ok(rows)
}

/// The conflicting fields of `r`, each with its competing values, who wrote them and when, as
/// people read them (the laptop's page and the console's share it).
pub fn record_conflict_rows(
    store: &SqliteStore,
    r: &Record,
    names: &crate::devices::DeviceNames,
) -> Vec<ConflictRow> {
    r.conflicts()
        .into_iter()
        .map(|f| ConflictRow {
            record: r.id.to_string(),
            what: record_fr(store, r),
            field: f.code(),
            field_fr: field_fr(f),
            values: r
                .shown_siblings(f)
                .into_iter()
                .map(|s| {
                    let (input, shown) = value_texts(f, &s.value);
                    ValueRow {
                        shown,
                        input,
                        device: names.label(s.dot.actor),
                        written: show_fr(i64::try_from(s.hlc.wall_ms() / 1000).unwrap_or(0)),
                    }
                })
                .collect(),
        })
        .collect()
}

/// `GET /conflits`.
pub async fn conflicts(
    State(state): State<Arc<UiState>>,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, UiError> {
    with_store(&state, move |store, state| {
        let page = ConflictsPage {
            l: Layout::new(store, state, "Conflits", "conflicts", flash.message())?,
            rows: conflict_rows(store, state)?,
        };
        Ok(Html(page.render()?))
    })
    .await
}

/// `POST /conflits/{id}`: `champ` and `valeur`, resolved exactly as `tournee-agent resolve`.
pub async fn resolve(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response, UiError> {
    let id = parse_uuid(&id)?;
    with_store(&state, move |store, state| {
        let record = store.record(id)?.ok_or(UiError::NotFound)?;
        let champ = required(&f, "champ", "Champ")?;
        let valeur = f.get("valeur").map(String::as_str).unwrap_or_default();
        let action = actions::resolve_conflict(&record, champ, valeur)?;
        store.write_local(state.now_ms(), &action)?;
        Ok((
            StatusCode::SEE_OTHER,
            [(header::LOCATION, "/conflits?ok=conflit")],
        )
            .into_response())
    })
    .await
}
