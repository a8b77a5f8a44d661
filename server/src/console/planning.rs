//! The scheduler's pages: a territory's stops (added with a commune picker, edited, archived),
//! its rounds (a weekly grid of stop × weekday × window, a preview of the passages it plans
//! and the holidays it skips before saving, deletion), a unit's coming passages (cancel or
//! move one) and the territory's holidays (close a day, work a legal holiday). Every change
//! is journaled; a refused form comes back with its values and the reason in words.
//!
//! Each handler checks the role and the territory itself (`Signed::may`). Not here: the rules
//! (`scheduling`, `holidays`), coverage (`pages`).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};
use serde::Deserialize;
use tournee_core::holidays::DayOff;
use tournee_core::model::{CancelCause, Field, Kind, Scope};
use tournee_core::person::fold;
use tournee_core::refdata::RefData;
use tournee_core::schedule::RoundStop;
use tournee_core::store::Store;
use tournee_core::time::{paris_date, parse_date, show_local};
use tournee_report::queries::Queries;
use uuid::Uuid;

use super::pages::{seen_territories, territory_name, Layout};
use super::{with_registry, Area, ConsoleError, ConsoleState, Signed};
use crate::accounts::User;
use crate::registry::{Registry, Unit};
use crate::scheduling::{self, weekday_fr, DaysOff, RoundSpec, StopView, Window};

/// The weekdays the grid offers (France Services buses do not run on Sundays).
const GRID_DAYS: [(Weekday, &str); 6] = [
    (Weekday::Mon, "lun"),
    (Weekday::Tue, "mar"),
    (Weekday::Wed, "mer"),
    (Weekday::Thu, "jeu"),
    (Weekday::Fri, "ven"),
    (Weekday::Sat, "sam"),
];

/// Most passages a preview lists (it says how many more).
const PREVIEW_SHOWN_MAX: usize = 80;

/// Most passages the passages page lists for one unit and period.
const PASSAGES_SHOWN_MAX: usize = 400;

/// « lundi 03/05/2027 ».
pub(super) fn day_fr(d: NaiveDate) -> String {
    format!("{} {}", weekday_fr(d.weekday()), d.format("%d/%m/%Y"))
}

pub(super) fn today(state: &ConsoleState) -> NaiveDate {
    paris_date(i64::try_from(state.now_ms() / 1000).unwrap_or(0)).unwrap_or_default()
}

/// The territory asked for, or the account's first.
pub(super) fn territory_or_first(u: &User, asked: Option<&str>) -> String {
    asked
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .or_else(|| seen_territories(u).first().map(|t| t.0.clone()))
        .unwrap_or_default()
}

/// The account, once it may plan in `territory` (a refusal journaled as an attempt on `page`).
pub(super) fn planner(
    signed: &Signed,
    reg: &Registry,
    state: &ConsoleState,
    territory: &str,
    page: &str,
) -> Result<User, ConsoleError> {
    signed
        .may_or_journal(reg, state.now_ms(), Area::Planning, Some(territory), page)
        .cloned()
}

/// A page shown again with what was typed and why it was refused.
pub(super) fn refused(html: String) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response()
}

fn flash(ok: Option<&str>) -> Option<&'static str> {
    match ok? {
        "arret" => Some("l'arrêt est enregistré."),
        "archive" => Some("l'arrêt est archivé."),
        "tournee" => Some("la tournée est enregistrée ; les tablettes la reçoivent à leur prochaine synchronisation."),
        "supprimee" => Some("la tournée est supprimée ; ses passages déjà marqués restent."),
        "annule" => Some("le passage est annulé."),
        "deplace" => Some("le passage est déplacé."),
        "partenaires" => Some("les partenaires présents sont enregistrés ; les postes de l'unité les verront à leur prochaine synchronisation."),
        "ferie" => Some("le calendrier est enregistré et les tournées du territoire replanifiées."),
        _ => None,
    }
}

/// The unit of `id`, with the territory it plans in.
pub(super) fn unit_of(reg: &Registry, id: &str) -> Result<Unit, ConsoleError> {
    reg.unit(id)?
        .ok_or_else(|| ConsoleError::Form(format!("unité : aucune unité « {id} »")))
}

pub(super) fn parse_id(s: &str) -> Result<Uuid, ConsoleError> {
    Uuid::parse_str(s.trim())
        .map_err(|_| ConsoleError::Form(format!("« {s} » n'est pas un identifiant")))
}

/// A commune typed or picked: « Amiens (80021) », « 80021 » or a name unique in the territory.
pub(super) fn commune_code(input: &str, territory: &str) -> Result<String, String> {
    let s = input.trim();
    let refdata = RefData::get();
    let code = s
        .rsplit_once('(')
        .and_then(|(_, r)| r.trim().strip_suffix(')'))
        .map(str::trim)
        .unwrap_or(s);
    if let Some(c) = refdata.commune(code) {
        return if c.departement == territory {
            Ok(c.code_insee.clone())
        } else {
            Err(format!(
                "commune : {} ({}) n'est pas dans le territoire {territory}",
                c.name, c.code_insee
            ))
        };
    }
    let wanted = fold(s);
    let found: Vec<_> = refdata
        .communes_of(territory)
        .into_iter()
        .filter(|c| fold(&c.name) == wanted)
        .collect();
    match found.as_slice() {
        [one] => Ok(one.code_insee.clone()),
        [] if s.is_empty() => Err("commune : choisissez la commune de l'arrêt".into()),
        [] => Err(format!(
            "commune : « {s} » n'est pas une commune du territoire {territory} ; choisissez-la dans la liste"
        )),
        _ => Err(format!(
            "commune : plusieurs communes s'appellent « {s} » ; choisissez celle qui a le bon code dans la liste"
        )),
    }
}

/// The territory's communes as the picker offers them: « Amiens (80021) ».
pub(super) fn commune_choices(territory: &str) -> Vec<String> {
    let mut v: Vec<String> = RefData::get()
        .communes_of(territory)
        .into_iter()
        .map(|c| format!("{} ({})", c.name, c.code_insee))
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- stops

/// `?territoire=&ok=`.
#[derive(Debug, Deserialize, Default)]
pub struct TerritoryQuery {
    pub(super) territoire: Option<String>,
    pub(super) ok: Option<String>,
    annee: Option<i32>,
}

/// The stop form (add and edit).
#[derive(Debug, Deserialize, Default, Clone)]
pub struct StopForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    territoire: String,
    #[serde(default)]
    commune: String,
    #[serde(default)]
    libelle: String,
    #[serde(default)]
    adresse: String,
}

#[derive(Template)]
#[template(path = "console/stops.html")]
struct StopsPage {
    l: Layout,
    territories: Vec<(String, String)>,
    territory: String,
    stops: Vec<StopView>,
    communes: Vec<String>,
    form: StopForm,
    error: Option<String>,
}

fn stops_page(
    state: &ConsoleState,
    u: &User,
    territory: &str,
    form: StopForm,
    error: Option<String>,
    done: Option<&'static str>,
) -> Result<String, ConsoleError> {
    let store = state.data.open_store()?;
    let mut l = Layout::new(
        u,
        format!("Arrêts — {}", territory_name(territory)),
        "stops",
    );
    l.flash = done;
    let page = StopsPage {
        l,
        territories: seen_territories(u),
        territory: territory.to_owned(),
        stops: scheduling::stops_of(&store, territory)?,
        communes: commune_choices(territory),
        form,
        error,
    };
    Ok(page.render()?)
}

/// `GET /arrets?territoire=`.
pub async fn stops(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<TerritoryQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let territory = territory_or_first(&signed.0, q.territoire.as_deref());
        let u = planner(&signed, reg, state, &territory, "arrets")?;
        stops_page(
            state,
            &u,
            &territory,
            StopForm::default(),
            None,
            flash(q.ok.as_deref()),
        )
    })
    .await?;
    Ok(Html(html))
}

/// `POST /arrets`: add a stop.
pub async fn stop_add(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<StopForm>,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        let territory = f.territoire.trim().to_owned();
        let u = planner(&signed, reg, state, &territory, "arrets.ajout")?;
        let added = commune_code(&f.commune, &territory).and_then(|commune| {
            let mut store = state.data.open_store().map_err(|e| format!("{e:#}"))?;
            let address = Some(f.adresse.trim()).filter(|a| !a.is_empty());
            scheduling::add_stop(
                &mut store,
                state.now_ms(),
                &territory,
                &commune,
                f.libelle.trim(),
                address,
            )
            .map_err(|e| format!("{e:#}"))
        });
        match added {
            Ok(id) => {
                reg.audit(
                    state.now_ms(),
                    &u.name,
                    "stop.add",
                    Some(&territory),
                    &format!("{id} {}", f.libelle.trim()),
                )?;
                Ok(
                    Redirect::to(&format!("/arrets?territoire={territory}&ok=arret"))
                        .into_response(),
                )
            }
            Err(e) => Ok(refused(stops_page(
                state,
                &u,
                &territory,
                f,
                Some(e),
                None,
            )?)),
        }
    })
    .await
}

#[derive(Template)]
#[template(path = "console/stop_edit.html")]
struct StopEditPage {
    l: Layout,
    territory: String,
    communes: Vec<String>,
    form: StopForm,
    error: Option<String>,
}

/// `?id=`.
#[derive(Debug, Deserialize)]
pub struct IdQuery {
    id: String,
}

fn stop_form_of(store: &dyn Store, id: Uuid) -> Result<(StopForm, String), ConsoleError> {
    let r = store
        .record(id)?
        .filter(|r| r.kind == Kind::Stop && !r.is_deleted())
        .ok_or_else(|| ConsoleError::Form(format!("aucun arrêt {id}")))?;
    let territory = match &r.scope {
        Scope::Territory(t) | Scope::Unit(t) => t.clone(),
    };
    let commune = r.text(Field::Commune).unwrap_or_default();
    let name = RefData::get().commune(commune).map_or_else(
        || commune.to_owned(),
        |c| format!("{} ({})", c.name, commune),
    );
    Ok((
        StopForm {
            id: id.to_string(),
            territoire: territory.clone(),
            commune: name,
            libelle: r.text(Field::Label).unwrap_or_default().to_owned(),
            adresse: r.text(Field::Address).unwrap_or_default().to_owned(),
        },
        territory,
    ))
}

fn stop_edit_page(
    u: &User,
    territory: &str,
    form: StopForm,
    error: Option<String>,
) -> Result<String, ConsoleError> {
    Ok(StopEditPage {
        l: Layout::new(u, format!("Modifier l'arrêt « {} »", form.libelle), "stops"),
        territory: territory.to_owned(),
        communes: commune_choices(territory),
        form,
        error,
    }
    .render()?)
}

/// `GET /arrets/modifier?id=`.
pub async fn stop_edit(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<IdQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let id = parse_id(&q.id)?;
        let (form, territory) = stop_form_of(&state.data.open_store()?, id)?;
        let u = planner(&signed, reg, state, &territory, "arrets.modifier")?;
        stop_edit_page(&u, &territory, form, None)
    })
    .await?;
    Ok(Html(html))
}

/// `POST /arrets/modifier`: the changed fields of a stop.
pub async fn stop_save(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<StopForm>,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        let id = parse_id(&f.id)?;
        let mut store = state.data.open_store()?;
        let (before, territory) = stop_form_of(&store, id)?;
        let u = planner(&signed, reg, state, &territory, "arrets.modifier")?;
        let saved = commune_code(&f.commune, &territory).and_then(|commune| {
            let old = commune_code(&before.commune, &territory).unwrap_or_default();
            let label = Some(f.libelle.trim()).filter(|l| *l != before.libelle);
            let address = Some(f.adresse.trim())
                .filter(|a| *a != before.adresse)
                .map(|a| Some(a).filter(|a| !a.is_empty()));
            let commune = Some(commune.as_str())
                .filter(|c| *c != old)
                .map(|c| (c, today(state)));
            if label.is_none() && address.is_none() && commune.is_none() {
                return Ok(());
            }
            scheduling::set_stop(&mut store, state.now_ms(), id, label, address, commune)
                .map_err(|e| format!("{e:#}"))
        });
        match saved {
            Ok(()) => {
                reg.audit(
                    state.now_ms(),
                    &u.name,
                    "stop.set",
                    Some(&territory),
                    &id.to_string(),
                )?;
                Ok(
                    Redirect::to(&format!("/arrets?territoire={territory}&ok=arret"))
                        .into_response(),
                )
            }
            Err(e) => Ok(refused(stop_edit_page(&u, &territory, f, Some(e))?)),
        }
    })
    .await
}

/// `POST /arrets/archiver`.
pub async fn stop_archive(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<StopForm>,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        let id = parse_id(&f.id)?;
        let mut store = state.data.open_store()?;
        let (form, territory) = stop_form_of(&store, id)?;
        let u = planner(&signed, reg, state, &territory, "arrets.archiver")?;
        match scheduling::archive_stop(&mut store, state.now_ms(), id) {
            Ok(()) => {
                reg.audit(
                    state.now_ms(),
                    &u.name,
                    "stop.archive",
                    Some(&territory),
                    &format!("{id} {}", form.libelle),
                )?;
                Ok(
                    Redirect::to(&format!("/arrets?territoire={territory}&ok=archive"))
                        .into_response(),
                )
            }
            Err(e) => Ok(refused(stops_page(
                state,
                &u,
                &territory,
                StopForm::default(),
                Some(format!("{e:#}")),
                None,
            )?)),
        }
    })
    .await
}

// ---------------------------------------------------------------- rounds

/// A round as the list shows it.
struct RoundRow {
    id: String,
    name: String,
    unit: String,
    rhythm: String,
    period: String,
    windows: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/rounds.html")]
struct RoundsPage {
    l: Layout,
    territories: Vec<(String, String)>,
    territory: String,
    units: Vec<Unit>,
    rounds: Vec<RoundRow>,
    error: Option<String>,
}

fn rhythm(every: u32) -> String {
    match every {
        1 => "chaque semaine".into(),
        2 => "une semaine sur deux".into(),
        n => format!("toutes les {n} semaines"),
    }
}

fn window_text(s: &RoundStop, labels: &HashMap<Uuid, String>) -> String {
    format!(
        "{} {}–{} : {}",
        weekday_fr(s.weekday),
        s.start.format("%H:%M"),
        s.end.format("%H:%M"),
        labels.get(&s.stop).map_or("arrêt archivé", String::as_str)
    )
}

fn stop_labels(stops: &[StopView]) -> HashMap<Uuid, String> {
    stops
        .iter()
        .map(|s| (s.id, format!("{} ({})", s.label, s.commune_name)))
        .collect()
}

fn rounds_page(
    state: &ConsoleState,
    reg: &Registry,
    u: &User,
    territory: &str,
    error: Option<String>,
    done: Option<&'static str>,
) -> Result<String, ConsoleError> {
    let store = state.data.open_store()?;
    let units: Vec<Unit> = reg
        .units()?
        .into_iter()
        .filter(|x| x.territory == territory)
        .collect();
    let labels = stop_labels(&scheduling::stops_of(&store, territory)?);
    let mut rounds = Vec::new();
    for unit in &units {
        for id in store.ids_of_kind(Kind::Round, Some(&unit.id))? {
            let (spec, _) = scheduling::round_spec(&store, id)?;
            rounds.push(RoundRow {
                id: id.to_string(),
                name: spec.name.clone(),
                unit: unit.name.clone(),
                rhythm: rhythm(spec.every_weeks),
                period: match spec.to {
                    Some(t) => format!("du {} au {t}", spec.from),
                    None => format!("à partir du {}", spec.from),
                },
                windows: spec.stops.iter().map(|s| window_text(s, &labels)).collect(),
            });
        }
    }
    let mut l = Layout::new(
        u,
        format!("Tournées — {}", territory_name(territory)),
        "rounds",
    );
    l.flash = done;
    Ok(RoundsPage {
        l,
        territories: seen_territories(u),
        territory: territory.to_owned(),
        units,
        rounds,
        error,
    }
    .render()?)
}

/// `GET /tournees?territoire=`.
pub async fn rounds(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<TerritoryQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let territory = territory_or_first(&signed.0, q.territoire.as_deref());
        let u = planner(&signed, reg, state, &territory, "tournees")?;
        rounds_page(state, reg, &u, &territory, None, flash(q.ok.as_deref()))
    })
    .await?;
    Ok(Html(html))
}

/// One cell of the grid: a stop on a weekday, its window typed as « 09:00-12:00 ».
struct Cell {
    name: String,
    label: String,
    value: String,
}

/// One stop's row of the grid.
struct GridRow {
    stop: String,
    cells: Vec<Cell>,
}

/// One passage of a preview.
struct PreviewRow {
    date: String,
    stop: String,
    window: String,
    day_off: String,
}

#[derive(Template)]
#[template(path = "console/round_form.html")]
struct RoundFormPage {
    l: Layout,
    territory: String,
    id: String,
    units: Vec<Unit>,
    unit: String,
    name: String,
    from: String,
    to: String,
    every: String,
    days: Vec<&'static str>,
    grid: Vec<GridRow>,
    error: Option<String>,
    preview: Option<Vec<PreviewRow>>,
    skipped: Vec<PreviewRow>,
    more: usize,
    horizon_weeks: u32,
}

/// The round form as posted: named fields, and one `c-STOP-DAY` per grid cell.
#[derive(Debug, Default)]
struct RoundForm {
    fields: HashMap<String, String>,
}

impl RoundForm {
    fn get(&self, k: &str) -> String {
        self.fields
            .get(k)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }

    fn of_spec(id: Option<Uuid>, unit: &str, spec: &RoundSpec) -> Self {
        let mut fields = HashMap::new();
        if let Some(id) = id {
            fields.insert("id".into(), id.to_string());
        }
        fields.insert("unite".into(), unit.to_owned());
        fields.insert("nom".into(), spec.name.clone());
        fields.insert("du".into(), spec.from.to_string());
        fields.insert(
            "au".into(),
            spec.to.map(|t| t.to_string()).unwrap_or_default(),
        );
        fields.insert("toutes".into(), spec.every_weeks.to_string());
        for s in &spec.stops {
            if let Some((_, code)) = GRID_DAYS.iter().find(|(d, _)| *d == s.weekday) {
                fields.insert(
                    cell_name(s.stop, code),
                    format!("{}-{}", s.start.format("%H:%M"), s.end.format("%H:%M")),
                );
            }
        }
        Self { fields }
    }
}

fn cell_name(stop: Uuid, day: &str) -> String {
    format!("c-{stop}-{day}")
}

/// « 9h », « 9h30 », « 09:30 » → a time.
fn parse_hour(s: &str) -> Option<NaiveTime> {
    let s = s.trim().replace('h', ":");
    let s = if s.ends_with(':') {
        format!("{s}00")
    } else {
        s
    };
    let s = if s.contains(':') {
        s
    } else {
        format!("{s}:00")
    };
    NaiveTime::parse_from_str(&s, "%H:%M").ok()
}

/// The window typed in a cell: « 09:00-12:00 », « 9h-12h30 ».
fn parse_window(s: &str) -> Option<(NaiveTime, NaiveTime)> {
    let (a, b) = s.split_once(['-', '–', '—', 'à'])?;
    Some((parse_hour(a)?, parse_hour(b)?))
}

/// The round the form describes, or the first thing wrong with it, in words.
fn spec_of(form: &RoundForm, stops: &[StopView]) -> Result<RoundSpec, String> {
    let name = form.get("nom");
    if name.is_empty() {
        return Err("nom : donnez un nom à la tournée".into());
    }
    let from = parse_date("du", &form.get("du")).map_err(|e| e.to_string())?;
    let to = match form.get("au") {
        t if t.is_empty() => None,
        t => Some(parse_date("au", &t).map_err(|e| e.to_string())?),
    };
    let every: u32 = form.get("toutes").parse().map_err(|_| {
        "toutes les : un nombre de semaines (1 chaque semaine, 2 une sur deux)".to_owned()
    })?;
    let mut windows = Vec::new();
    for s in stops {
        for (day, code) in GRID_DAYS {
            let typed = form.get(&cell_name(s.id, code));
            if typed.is_empty() {
                continue;
            }
            let (start, end) = parse_window(&typed).ok_or_else(|| {
                format!(
                    "{}, {} : « {typed} » n'est pas une fenêtre ; écrivez par exemple 09:00-12:00",
                    s.label,
                    weekday_fr(day)
                )
            })?;
            if end <= start {
                return Err(format!(
                    "{}, {} : la fin ({}) doit venir après le début ({})",
                    s.label,
                    weekday_fr(day),
                    end.format("%H:%M"),
                    start.format("%H:%M")
                ));
            }
            windows.push(RoundStop {
                stop: s.id,
                weekday: day,
                start,
                end,
            });
        }
    }
    if windows.is_empty() {
        return Err("grille : remplissez au moins une case (un arrêt, un jour, des heures comme 09:00-12:00)".into());
    }
    Ok(RoundSpec {
        name,
        from,
        to,
        every_weeks: every,
        stops: windows,
    })
}

struct RoundContext {
    territory: String,
    units: Vec<Unit>,
    stops: Vec<StopView>,
    horizon_weeks: u32,
}

fn round_context(
    state: &ConsoleState,
    reg: &Registry,
    territory: &str,
) -> Result<RoundContext, ConsoleError> {
    Ok(RoundContext {
        territory: territory.to_owned(),
        units: reg
            .units()?
            .into_iter()
            .filter(|x| x.territory == territory)
            .collect(),
        stops: scheduling::stops_of(&state.data.open_store()?, territory)?,
        horizon_weeks: state.data.load_config()?.horizon_weeks,
    })
}

fn round_form_page(
    u: &User,
    ctx: &RoundContext,
    form: &RoundForm,
    error: Option<String>,
    preview: Option<Vec<scheduling::Occurrence>>,
) -> Result<String, ConsoleError> {
    let labels = stop_labels(&ctx.stops);
    let row = |o: &scheduling::Occurrence| PreviewRow {
        date: day_fr(o.date),
        stop: labels.get(&o.stop.stop).cloned().unwrap_or_default(),
        window: format!(
            "{}–{}",
            o.stop.start.format("%H:%M"),
            o.stop.end.format("%H:%M")
        ),
        day_off: o.day_off.clone().unwrap_or_default(),
    };
    let (rows, skipped, more) = match &preview {
        Some(all) => {
            let planned: Vec<PreviewRow> = all
                .iter()
                .filter(|o| o.day_off.is_none())
                .map(row)
                .collect();
            let skipped = all
                .iter()
                .filter(|o| o.day_off.is_some())
                .map(row)
                .collect();
            let more = planned.len().saturating_sub(PREVIEW_SHOWN_MAX);
            (
                Some(planned.into_iter().take(PREVIEW_SHOWN_MAX).collect()),
                skipped,
                more,
            )
        }
        None => (None, Vec::new(), 0),
    };
    let id = form.get("id");
    let grid = ctx
        .stops
        .iter()
        .map(|s| GridRow {
            stop: format!("{} ({})", s.label, s.commune_name),
            cells: GRID_DAYS
                .iter()
                .map(|(day, code)| Cell {
                    name: cell_name(s.id, code),
                    label: format!("{}, {}", s.label, weekday_fr(*day)),
                    value: form.get(&cell_name(s.id, code)),
                })
                .collect(),
        })
        .collect();
    Ok(RoundFormPage {
        l: Layout::new(
            u,
            if id.is_empty() {
                "Nouvelle tournée".to_owned()
            } else {
                format!("Modifier la tournée « {} »", form.get("nom"))
            },
            "rounds",
        ),
        territory: ctx.territory.clone(),
        id,
        units: ctx.units.clone(),
        unit: form.get("unite"),
        name: form.get("nom"),
        from: form.get("du"),
        to: form.get("au"),
        every: match form.get("toutes") {
            e if e.is_empty() => "1".into(),
            e => e,
        },
        days: GRID_DAYS.iter().map(|(d, _)| weekday_fr(*d)).collect(),
        grid,
        error,
        preview: rows,
        skipped,
        more,
        horizon_weeks: ctx.horizon_weeks,
    }
    .render()?)
}

/// `?territoire=&unite=` of a new round.
#[derive(Debug, Deserialize, Default)]
pub struct NewRoundQuery {
    territoire: Option<String>,
    unite: Option<String>,
}

/// `GET /tournees/nouvelle`.
pub async fn round_new(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<NewRoundQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let territory = territory_or_first(&signed.0, q.territoire.as_deref());
        let u = planner(&signed, reg, state, &territory, "tournees.nouvelle")?;
        let ctx = round_context(state, reg, &territory)?;
        let mut form = RoundForm::default();
        form.fields.insert("du".into(), today(state).to_string());
        form.fields.insert("toutes".into(), "1".into());
        if let Some(unit) = q.unite.or_else(|| ctx.units.first().map(|x| x.id.clone())) {
            form.fields.insert("unite".into(), unit);
        }
        round_form_page(&u, &ctx, &form, None, None)
    })
    .await?;
    Ok(Html(html))
}

/// `GET /tournees/modifier?id=`.
pub async fn round_edit(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<IdQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let id = parse_id(&q.id)?;
        let store = state.data.open_store()?;
        let (spec, unit) =
            scheduling::round_spec(&store, id).map_err(|e| ConsoleError::Form(format!("{e:#}")))?;
        let territory = unit_of(reg, &unit)?.territory;
        let u = planner(&signed, reg, state, &territory, "tournees.modifier")?;
        let ctx = round_context(state, reg, &territory)?;
        round_form_page(
            &u,
            &ctx,
            &RoundForm::of_spec(Some(id), &unit, &spec),
            None,
            None,
        )
    })
    .await?;
    Ok(Html(html))
}

/// `POST /tournees/enregistrer`: `action=apercu` shows the passages it would plan;
/// `action=enregistrer` saves (a new round, or the edited one) and re-plans its passages.
pub async fn round_save(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        let form = RoundForm {
            fields: pairs.into_iter().collect(),
        };
        let unit = unit_of(reg, &form.get("unite"))?;
        let u = planner(&signed, reg, state, &unit.territory, "tournees.enregistrer")?;
        let id = match form.get("id") {
            s if s.is_empty() => None,
            s => Some(parse_id(&s)?),
        };
        let ctx = round_context(state, reg, &unit.territory)?;
        let days_off = DaysOff::load(reg)?;
        let window = Window {
            today: today(state),
            horizon_weeks: ctx.horizon_weeks,
            days_off: &days_off,
        };
        let spec = match spec_of(&form, &ctx.stops) {
            Ok(s) => s,
            Err(e) => return Ok(refused(round_form_page(&u, &ctx, &form, Some(e), None)?)),
        };
        let mut store = state.data.open_store()?;
        if form.get("action") != "enregistrer" {
            return match scheduling::preview_round(&store, &window, &unit, &spec, id) {
                Ok(all) => {
                    Ok(Html(round_form_page(&u, &ctx, &form, None, Some(all))?).into_response())
                }
                Err(e) => Ok(refused(round_form_page(
                    &u,
                    &ctx,
                    &form,
                    Some(format!("{e:#}")),
                    None,
                )?)),
            };
        }
        let saved = match id {
            None => scheduling::add_round(&mut store, state.now_ms(), &window, &unit, &spec)
                .map(|(id, _)| id),
            Some(id) => {
                scheduling::edit_round(&mut store, state.now_ms(), &window, &unit, id, &spec)
                    .map(|_| id)
            }
        };
        match saved {
            Ok(round) => {
                reg.audit(
                    state.now_ms(),
                    &u.name,
                    if id.is_some() {
                        "round.edit"
                    } else {
                        "round.add"
                    },
                    Some(&unit.territory),
                    &format!("{round} {} {}", unit.id, spec.name),
                )?;
                Ok(Redirect::to(&format!(
                    "/tournees?territoire={}&ok=tournee",
                    unit.territory
                ))
                .into_response())
            }
            Err(e) => Ok(refused(round_form_page(
                &u,
                &ctx,
                &form,
                Some(format!("{e:#}")),
                None,
            )?)),
        }
    })
    .await
}

/// `id=` of a form.
#[derive(Debug, Deserialize)]
pub struct IdForm {
    id: String,
}

/// `POST /tournees/supprimer`.
pub async fn round_delete(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<IdForm>,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        let id = parse_id(&f.id)?;
        let mut store = state.data.open_store()?;
        let (spec, unit) =
            scheduling::round_spec(&store, id).map_err(|e| ConsoleError::Form(format!("{e:#}")))?;
        let territory = unit_of(reg, &unit)?.territory;
        let u = planner(&signed, reg, state, &territory, "tournees.supprimer")?;
        let horizon = state.data.load_config()?.horizon_weeks;
        match scheduling::delete_round(&mut store, state.now_ms(), today(state), horizon, id) {
            Ok(r) => {
                reg.audit(
                    state.now_ms(),
                    &u.name,
                    "round.delete",
                    Some(&territory),
                    &format!(
                        "{id} {} ; {} passage(s) retirés, {} gardés",
                        spec.name, r.removed, r.kept
                    ),
                )?;
                Ok(
                    Redirect::to(&format!("/tournees?territoire={territory}&ok=supprimee"))
                        .into_response(),
                )
            }
            Err(e) => Ok(refused(rounds_page(
                state,
                reg,
                &u,
                &territory,
                Some(format!("{e:#}")),
                None,
            )?)),
        }
    })
    .await
}

// ---------------------------------------------------------------- passages

/// `?unite=&du=&au=&ok=`.
#[derive(Debug, Deserialize, Default)]
pub struct PassagesQuery {
    unite: Option<String>,
    du: Option<String>,
    au: Option<String>,
    ok: Option<String>,
}

/// A passage as the scheduler's lists show it (a public place and times, nobody named).
struct PassageRow {
    id: String,
    date: String,
    stop: String,
    window: String,
    status: &'static str,
    moved_from: String,
    open: bool,
    /// The partners present, by name, comma-separated.
    partners: String,
}

fn status_fr(code: Option<&str>) -> &'static str {
    match code {
        Some("effectue") => "tenu",
        Some("annule") => "annulé",
        _ => "prévu",
    }
}

fn passage_row(
    store: &dyn Store,
    p: &tournee_core::record::Record,
) -> Result<PassageRow, ConsoleError> {
    let stop = match p.id_ref(Field::Stop) {
        Some(s) => store.record(s)?,
        None => None,
    };
    let stop = stop.map_or_else(String::new, |s| {
        let commune = s.text(Field::Commune).unwrap_or_default();
        let name = RefData::get()
            .commune(commune)
            .map_or(commune, |c| c.name.as_str());
        format!("{} ({name})", s.text(Field::Label).unwrap_or_default())
    });
    let date = p
        .text(Field::Date)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    Ok(PassageRow {
        id: p.id.to_string(),
        date: date.map_or_else(String::new, day_fr),
        stop,
        window: format!(
            "{}–{}",
            planned_hhmm(p, Field::PlannedStart),
            planned_hhmm(p, Field::PlannedEnd)
        ),
        status: status_fr(p.text(Field::Status)),
        moved_from: p
            .text(Field::MovedFrom)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_default(),
        open: !p.is_marked_passage(),
        partners: tournee_core::views::passage_partners(p).join(", "),
    })
}

#[derive(Template)]
#[template(path = "console/passages.html")]
struct PassagesPage {
    l: Layout,
    units: Vec<Unit>,
    unit: String,
    from: String,
    to: String,
    period: String,
    rows: Vec<PassageRow>,
    more: usize,
}

/// The units an account plans for.
pub(super) fn planned_units(reg: &Registry, u: &User) -> Result<Vec<Unit>, ConsoleError> {
    Ok(reg
        .units()?
        .into_iter()
        .filter(|x| u.sees(&x.territory))
        .collect())
}

/// `GET /passages?unite=&du=&au=`.
pub async fn passages(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<PassagesQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let units = planned_units(reg, &signed.0)?;
        let unit = match q.unite.as_deref().filter(|x| !x.is_empty()) {
            Some(id) => unit_of(reg, id)?,
            None => units
                .first()
                .cloned()
                .ok_or_else(|| ConsoleError::Form("aucune unité dans vos territoires".into()))?,
        };
        let u = planner(&signed, reg, state, &unit.territory, "passages")?;
        let horizon = state.data.load_config()?.horizon_weeks;
        let day = |s: &Option<String>, field, default| match s.as_deref().filter(|s| !s.is_empty())
        {
            Some(d) => parse_date(field, d).map_err(|e| ConsoleError::Form(e.to_string())),
            None => Ok(default),
        };
        let from = day(&q.du, "du", today(state))?;
        let to = day(
            &q.au,
            "au",
            today(state) + Duration::weeks(i64::from(horizon)),
        )?;
        let store = state.data.open_store()?;
        let list = store.passages_between(Some(&unit.id), from, to)?;
        let more = list.len().saturating_sub(PASSAGES_SHOWN_MAX);
        let rows = list
            .iter()
            .take(PASSAGES_SHOWN_MAX)
            .map(|p| passage_row(&store, p))
            .collect::<Result<_, _>>()?;
        let mut l = Layout::new(&u, format!("Passages — {}", unit.name), "passages");
        l.flash = flash(q.ok.as_deref());
        Ok(PassagesPage {
            l,
            units,
            unit: unit.id,
            from: from.to_string(),
            to: to.to_string(),
            period: format!("du {} au {}", day_fr(from), day_fr(to)),
            rows,
            more,
        }
        .render()?)
    })
    .await?;
    Ok(Html(html))
}

#[derive(Template)]
#[template(path = "console/passage.html")]
struct PassagePage {
    l: Layout,
    unit: String,
    p: PassageRow,
    causes: Vec<(&'static str, &'static str)>,
    date: String,
    start: String,
    end: String,
    error: Option<String>,
    /// Partners of the programme on the passage's day: code, name, named present.
    partner_choices: Vec<(String, String, bool)>,
}

fn cause_fr(c: CancelCause) -> &'static str {
    match c {
        CancelCause::Breakdown => "panne du véhicule",
        CancelCause::Weather => "météo",
        CancelCause::StaffAbsent => "absence de la conseillère ou du conseiller",
        CancelCause::Other => "autre raison",
    }
}

/// A live passage, its unit and the account, once the account may plan in its territory.
fn passage_access(
    store: &dyn Store,
    state: &ConsoleState,
    reg: &Registry,
    signed: &Signed,
    id: Uuid,
) -> Result<(tournee_core::record::Record, Unit, User), ConsoleError> {
    let p = store
        .record(id)?
        .filter(|r| r.kind == Kind::Passage && !r.is_deleted())
        .ok_or_else(|| ConsoleError::Form(format!("aucun passage {id}")))?;
    let unit = match &p.scope {
        Scope::Unit(x) => unit_of(reg, x)?,
        Scope::Territory(_) => return Err(ConsoleError::Form("passage sans unité".into())),
    };
    let u = planner(signed, reg, state, &unit.territory, "passages.changer")?;
    Ok((p, unit, u))
}

fn passage_page(
    state: &ConsoleState,
    reg: &Registry,
    signed: &Signed,
    id: Uuid,
    error: Option<String>,
) -> Result<String, ConsoleError> {
    let store = state.data.open_store()?;
    let (p, unit, u) = passage_access(&store, state, reg, signed, id)?;
    let row = passage_row(&store, &p)?;
    let day = p
        .text(Field::Date)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or_default();
    let named: Vec<&str> = p
        .text(Field::Partners)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    let partner_choices = RefData::get()
        .partners()
        .iter()
        .filter(|x| x.valid_from <= day && x.valid_to.is_none_or(|end| day <= end))
        .map(|x| {
            (
                x.code.clone(),
                x.label.clone(),
                named.contains(&x.code.as_str()),
            )
        })
        .collect();
    Ok(PassagePage {
        partner_choices,
        l: Layout::new(&u, format!("Passage du {}", row.date), "passages"),
        unit: unit.id.clone(),
        causes: CancelCause::ALL
            .iter()
            .map(|c| (c.code(), cause_fr(*c)))
            .collect(),
        date: p.text(Field::Date).unwrap_or_default().to_owned(),
        start: planned_hhmm(&p, Field::PlannedStart),
        end: planned_hhmm(&p, Field::PlannedEnd),
        p: row,
        error,
    }
    .render()?)
}

/// A passage's planned time `f` as « 09:30 » (Europe/Paris), empty when unset.
fn planned_hhmm(p: &tournee_core::record::Record, f: Field) -> String {
    p.int(f)
        .map(|t| show_local(t).get(11..16).unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// `GET /passages/changer?id=`.
pub async fn passage(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<IdQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        passage_page(state, reg, &signed, parse_id(&q.id)?, None)
    })
    .await?;
    Ok(Html(html))
}

/// The cancel and move forms of a passage.
#[derive(Debug, Deserialize)]
pub struct PassageForm {
    id: String,
    #[serde(default)]
    cause: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    debut: String,
    #[serde(default)]
    fin: String,
}

/// `POST /passages/annuler`.
pub async fn passage_cancel(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<PassageForm>,
) -> Result<Response, ConsoleError> {
    passage_change(state, signed, f, false).await
}

/// `POST /passages/deplacer`.
pub async fn passage_move(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<PassageForm>,
) -> Result<Response, ConsoleError> {
    passage_change(state, signed, f, true).await
}

async fn passage_change(
    state: Arc<ConsoleState>,
    signed: Signed,
    f: PassageForm,
    moving: bool,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        let id = parse_id(&f.id)?;
        let mut store = state.data.open_store()?;
        let (_, unit, u) = passage_access(&store, state, reg, &signed, id)?;
        let done = if moving {
            move_from_form(&mut store, state, id, &f)
        } else {
            CancelCause::parse(&f.cause)
                .map_err(anyhow::Error::from)
                .and_then(|c| scheduling::cancel_passage(&mut store, state.now_ms(), id, c))
                .map_err(|e| format!("{e:#}"))
        };
        match done {
            Ok(()) => {
                let (action, ok) = if moving {
                    ("passage.move", "deplace")
                } else {
                    ("passage.cancel", "annule")
                };
                reg.audit(
                    state.now_ms(),
                    &u.name,
                    action,
                    Some(&unit.territory),
                    &id.to_string(),
                )?;
                Ok(Redirect::to(&format!("/passages?unite={}&ok={ok}", unit.id)).into_response())
            }
            Err(e) => Ok(refused(passage_page(state, reg, &signed, id, Some(e))?)),
        }
    })
    .await
}

/// `POST /passages/partenaires`: the partners present at one passage (`p-CODE=on` each).
pub async fn passage_partners(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        let id = parse_id(f.get("id").map_or("", String::as_str))?;
        let mut store = state.data.open_store()?;
        let (_, unit, u) = passage_access(&store, state, reg, &signed, id)?;
        let mut codes: Vec<String> = f
            .keys()
            .filter_map(|k| k.strip_prefix("p-"))
            .map(str::to_owned)
            .collect();
        codes.sort();
        match scheduling::set_passage_partners(&mut store, state.now_ms(), id, &codes) {
            Ok(()) => {
                reg.audit(
                    state.now_ms(),
                    &u.name,
                    "passage.partners",
                    Some(&unit.territory),
                    &format!("{id} {}", codes.join(",")),
                )?;
                Ok(
                    Redirect::to(&format!("/passages?unite={}&ok=partenaires", unit.id))
                        .into_response(),
                )
            }
            Err(e) => Ok(refused(passage_page(
                state,
                reg,
                &signed,
                id,
                Some(format!("{e:#}")),
            )?)),
        }
    })
    .await
}

fn move_from_form(
    store: &mut tournee_store::SqliteStore,
    state: &ConsoleState,
    id: Uuid,
    f: &PassageForm,
) -> Result<(), String> {
    let date = parse_date("date", &f.date).map_err(|e| e.to_string())?;
    let window = match (parse_hour(&f.debut), parse_hour(&f.fin)) {
        (Some(a), Some(b)) => Some((a, b)),
        _ if f.debut.trim().is_empty() && f.fin.trim().is_empty() => None,
        _ => return Err("heures : écrivez le début et la fin comme 09:00".into()),
    };
    scheduling::move_passage(store, state.now_ms(), today(state), id, date, window)
        .map_err(|e| format!("{e:#}"))
}

// ---------------------------------------------------------------- holidays

/// A day of the holidays' table: its date as the form posts it and as people read it.
struct DayRow {
    iso: String,
    date: String,
    d: DayOff,
}

#[derive(Template)]
#[template(path = "console/holidays.html")]
struct HolidaysPage {
    l: Layout,
    territories: Vec<(String, String)>,
    territory: String,
    year: i32,
    days: Vec<DayRow>,
    error: Option<String>,
}

fn holidays_page(
    reg: &Registry,
    u: &User,
    territory: &str,
    year: i32,
    error: Option<String>,
    done: Option<&'static str>,
) -> Result<String, ConsoleError> {
    let mut l = Layout::new(
        u,
        format!("Jours fériés — {}", territory_name(territory)),
        "holidays",
    );
    l.flash = done;
    Ok(HolidaysPage {
        l,
        territories: seen_territories(u),
        territory: territory.to_owned(),
        year,
        days: reg
            .calendar()?
            .year(territory, year)
            .into_iter()
            .map(|d| DayRow {
                iso: d.date.to_string(),
                date: day_fr(d.date),
                d,
            })
            .collect(),
        error,
    }
    .render()?)
}

/// `GET /feries?territoire=&annee=`.
pub async fn holidays(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<TerritoryQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let territory = territory_or_first(&signed.0, q.territoire.as_deref());
        let u = planner(&signed, reg, state, &territory, "feries")?;
        let year = q
            .annee
            .filter(|y| (2000..=2100).contains(y))
            .unwrap_or_else(|| today(state).year());
        holidays_page(reg, &u, &territory, year, None, flash(q.ok.as_deref()))
    })
    .await?;
    Ok(Html(html))
}

/// A day of the holidays' forms.
#[derive(Debug, Deserialize)]
pub struct HolidayForm {
    territoire: String,
    date: String,
    #[serde(default)]
    libelle: String,
}

/// `POST /feries/ajouter`: close a day (or a worked legal holiday is off again).
pub async fn holiday_add(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<HolidayForm>,
) -> Result<Response, ConsoleError> {
    holiday_change(state, signed, f, true).await
}

/// `POST /feries/retirer`: passages again on that day.
pub async fn holiday_remove(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<HolidayForm>,
) -> Result<Response, ConsoleError> {
    holiday_change(state, signed, f, false).await
}

async fn holiday_change(
    state: Arc<ConsoleState>,
    signed: Signed,
    f: HolidayForm,
    close: bool,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        let territory = f.territoire.trim().to_owned();
        let u = planner(&signed, reg, state, &territory, "feries.changer")?;
        let date = parse_date("date", &f.date);
        let year = date
            .as_ref()
            .map_or_else(|_| today(state).year(), Datelike::year);
        let done = date.map_err(|e| e.to_string()).and_then(|date| {
            let label = Some(f.libelle.trim()).filter(|l| !l.is_empty());
            let name = if close {
                reg.close_day(&territory, date, label)
            } else {
                reg.open_day(&territory, date)
            }
            .map_err(|e| e.to_string())?;
            Ok((date, name))
        });
        match done {
            Ok((date, name)) => {
                scheduling::replan_territory(
                    &state.data,
                    reg,
                    &territory,
                    state.now_ms(),
                    today(state),
                )?;
                reg.audit(
                    state.now_ms(),
                    &u.name,
                    if close {
                        "holiday.add"
                    } else {
                        "holiday.remove"
                    },
                    Some(&territory),
                    &format!("{date} {name}"),
                )?;
                Ok(Redirect::to(&format!(
                    "/feries?territoire={territory}&annee={year}&ok=ferie"
                ))
                .into_response())
            }
            Err(e) => Ok(refused(holidays_page(
                reg,
                &u,
                &territory,
                year,
                Some(e),
                None,
            )?)),
        }
    })
    .await
}
