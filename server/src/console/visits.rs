//! The scheduler's *Visites à domicile* page: a unit's coming home visits, and a form to plan
//! one for a person found among the territory's earlier planned visits (search by name,
//! address or phone) or recorded there and then, with the address and phone for the visit.
//! Works without JavaScript: the search is a GET form that keeps what was typed.
//!
//! A visit the laptop booked itself shows its time and commune, never its person: schedulers
//! see the persons of the visits they plan, nothing else. Not here: the rules (`visits`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Duration, NaiveTime};
use serde::Deserialize;
use tournee_core::actions::people::NewPerson;
use tournee_core::model::Field;
use tournee_core::record::Record;
use tournee_core::store::Store;
use tournee_core::time::{paris_date, paris_planned, parse_date, show_local};
use uuid::Uuid;

use super::pages::Layout;
use super::planning::{
    commune_choices, commune_code, day_fr, parse_id, planned_units, planner, refused, today,
    unit_of,
};
use super::{with_registry, ConsoleError, ConsoleState, Signed};
use crate::accounts::User;
use crate::registry::{Registry, Unit};
use crate::visits::{self, VisitPlan, Visited};

/// Weeks of coming visits the page lists.
const VISITS_SHOWN_WEEKS: i64 = 12;
/// A visit's length when the form does not say (minutes).
const VISIT_MINUTES_DEFAULT: i64 = 45;

/// A coming visit as the list shows it.
struct VisitRow {
    when: String,
    minutes: i64,
    commune: String,
    /// Name, address and phone: only for a visit planned from the console.
    person: Option<(String, String, String)>,
    status: &'static str,
}

/// A person found by the search.
struct Found {
    id: String,
    name: String,
    commune: String,
    address: String,
    phone: String,
}

/// What the planning form holds (sent back with a refusal).
#[derive(Debug, Deserialize, Default, Clone)]
pub struct VisitForm {
    unite: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    heure: String,
    #[serde(default)]
    duree: String,
    #[serde(default)]
    commune: String,
    /// A found person's id, or `nouvelle`.
    #[serde(default)]
    personne: String,
    #[serde(default)]
    nom: String,
    #[serde(default)]
    telephone: String,
    #[serde(default)]
    adresse: String,
    #[serde(default)]
    note: String,
    /// The search that found the person (kept so a refusal shows the same choices).
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "console/visits.html")]
struct VisitsPage {
    l: Layout,
    units: Vec<Unit>,
    unit: String,
    rows: Vec<VisitRow>,
    found: Vec<Found>,
    searched: bool,
    form: VisitForm,
    communes: Vec<String>,
    error: Option<String>,
}

fn status_fr(r: &Record) -> &'static str {
    match r.text(Field::Status) {
        Some("seen") => "reçue",
        Some("noshow") => "absente",
        Some("cancelled") => "annulée",
        _ => "prévue",
    }
}

fn visits_page(
    reg: &Registry,
    state: &ConsoleState,
    u: &User,
    units: Vec<Unit>,
    unit: &Unit,
    form: VisitForm,
    said: Result<Option<&'static str>, String>,
) -> Result<String, ConsoleError> {
    let (done, error) = match said {
        Ok(done) => (done, None),
        Err(e) => (None, Some(e)),
    };
    let store = state.data.open_store()?;
    let from = today(state);
    let planned: std::collections::HashMap<Uuid, Uuid> =
        reg.planned_visit_persons(&unit.id)?.into_iter().collect();
    let refdata = tournee_core::refdata::RefData::get();
    let commune_name = |code: &str| {
        refdata
            .commune(code)
            .map_or_else(|| code.to_owned(), |c| format!("{} ({code})", c.name))
    };
    let person_of = |id: Uuid| -> Result<Option<(String, String, String)>, ConsoleError> {
        let Some(p) = planned.get(&id) else {
            return Ok(None);
        };
        let r = store.record(*p)?.filter(|r| !r.is_deleted());
        Ok(Some(r.map_or_else(
            || ("(personne effacée)".into(), String::new(), String::new()),
            |r| {
                let t = |f| r.text(f).unwrap_or_default().to_owned();
                (t(Field::Name), t(Field::Address), t(Field::Phone))
            },
        )))
    };
    let rows = visits::home_visits(
        &store,
        &unit.id,
        from,
        from + Duration::weeks(VISITS_SHOWN_WEEKS),
    )?
    .iter()
    .map(|r| {
        let start = r.int(Field::Start).unwrap_or_default();
        Ok(VisitRow {
            when: paris_date(start).map_or_else(
                || show_local(start),
                |d| format!("{} à {}", day_fr(d), &show_local(start)[11..]),
            ),
            minutes: r.int(Field::Duration).unwrap_or_default(),
            commune: commune_name(r.text(Field::Commune).unwrap_or_default()),
            person: person_of(r.id)?,
            status: status_fr(r),
        })
    })
    .collect::<Result<Vec<_>, ConsoleError>>()?;
    let searched = !form.q.trim().is_empty();
    let allowed = reg.visit_persons(&u.territories)?;
    let found = visits::search_visit_persons(&store, &allowed, &form.q)?
        .into_iter()
        .map(|r| {
            let t = |f| r.text(f).unwrap_or_default().to_owned();
            Found {
                id: r.id.to_string(),
                name: t(Field::Name),
                commune: commune_name(r.text(Field::Commune).unwrap_or_default()),
                address: t(Field::Address),
                phone: t(Field::Phone),
            }
        })
        .collect();
    let mut l = Layout::new(u, format!("Visites à domicile — {}", unit.name), "visits");
    l.flash = done;
    Ok(VisitsPage {
        l,
        units,
        unit: unit.id.clone(),
        rows,
        found,
        searched,
        form,
        communes: commune_choices(&unit.territory),
        error,
    }
    .render()?)
}

/// `?unite=&q=&ok=`.
#[derive(Debug, Deserialize, Default)]
pub struct VisitsQuery {
    unite: Option<String>,
    q: Option<String>,
    ok: Option<String>,
}

fn unit_asked(
    reg: &Registry,
    u: &User,
    asked: Option<&str>,
) -> Result<(Vec<Unit>, Unit), ConsoleError> {
    let units = planned_units(reg, u)?;
    let unit = match asked.filter(|x| !x.is_empty()) {
        Some(id) => unit_of(reg, id)?,
        None => units
            .iter()
            .find(|x| x.kind == "domicile")
            .or_else(|| units.first())
            .cloned()
            .ok_or_else(|| ConsoleError::Form("aucune unité dans vos territoires".into()))?,
    };
    Ok((units, unit))
}

/// `GET /visites`.
pub async fn visits(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<VisitsQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let (units, unit) = unit_asked(reg, &signed.0, q.unite.as_deref())?;
        let u = planner(&signed, reg, state, &unit.territory, "visites")?;
        let form = VisitForm {
            unite: unit.id.clone(),
            duree: VISIT_MINUTES_DEFAULT.to_string(),
            q: q.q.unwrap_or_default(),
            ..VisitForm::default()
        };
        let done = (q.ok.as_deref() == Some("visite"))
            .then_some("la visite est planifiée ; le poste de l'unité la reçoit à sa prochaine synchronisation.");
        visits_page(reg, state, &u, units, &unit, form, Ok(done))
    })
    .await?;
    Ok(Html(html))
}

/// The visit the form describes, or why not, in words.
fn plan_of(f: &VisitForm, unit: &Unit) -> Result<VisitPlan, String> {
    let date = parse_date("date", &f.date)
        .map_err(|_| "date : choisissez le jour de la visite".to_owned())?;
    let time = NaiveTime::parse_from_str(f.heure.trim(), "%H:%M")
        .map_err(|_| "heure : indiquez l'heure de la visite, par exemple 10:30".to_owned())?;
    let duration: i64 = f
        .duree
        .trim()
        .parse()
        .map_err(|_| "durée : un nombre de minutes, par exemple 45".to_owned())?;
    let commune = commune_code(&f.commune, &unit.territory)?;
    let (start, _) = paris_planned(date, time, time);
    let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let who = if f.personne.is_empty() || f.personne == "nouvelle" {
        Visited::New(NewPerson {
            name: f.nom.trim().to_owned(),
            phone: opt(&f.telephone),
            birth_year: None,
            commune: Some(commune.clone()),
            address: opt(&f.adresse),
        })
    } else {
        Visited::Known {
            id: parse_id(&f.personne).map_err(|e| e.to_string())?,
            phone: opt(&f.telephone),
            address: opt(&f.adresse),
        }
    };
    Ok(VisitPlan {
        unit: unit.id.clone(),
        territory: unit.territory.clone(),
        start,
        duration,
        commune,
        who,
        note: opt(&f.note),
    })
}

/// `POST /visites/planifier`.
pub async fn plan(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<VisitForm>,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        let (units, unit) = unit_asked(reg, &signed.0, Some(f.unite.as_str()))?;
        let u = planner(&signed, reg, state, &unit.territory, "visites.planifier")?;
        let planned = plan_of(&f, &unit).and_then(|plan| {
            let mut store = state.data.open_store().map_err(|e| e.to_string())?;
            visits::plan_home_visit(&mut store, reg, state.now_ms(), &u.name, &plan)
                .map_err(|e| e.to_string())
        });
        match planned {
            Ok(id) => {
                reg.audit(
                    state.now_ms(),
                    &u.name,
                    "visit.plan",
                    Some(&unit.territory),
                    &format!("{id} ({})", unit.id),
                )?;
                Ok(Redirect::to(&format!("/visites?unite={}&ok=visite", unit.id)).into_response())
            }
            Err(e) => Ok(refused(visits_page(
                reg,
                state,
                &u,
                units,
                &unit,
                f,
                Err(e),
            )?)),
        }
    })
    .await
}
