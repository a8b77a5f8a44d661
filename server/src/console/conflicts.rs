//! The console's *Conflits* page: the server's open conflicts of a territory, values side by
//! side with the laptop that wrote each and when, resolved with one write that replaces them
//! all (as `tournee-agent resolve` does), journaled without the value.
//!
//! A scheduler sees the conflicts of the plan (stops, rounds, passages) and of the home visits
//! she planned; the rest hold what the laptops recorded about people and are only counted:
//! they are resolved on the unit's laptops. An admin sees them all. Not here: how a conflict
//! arises or merges (`tournee-core`), its words (`tournee_agent::ui::record_conflict_rows`).

use std::collections::HashSet;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tournee_agent::devices::DeviceNames;
use tournee_agent::ui::{record_conflict_rows, ConflictRow};
use tournee_core::model::{Kind, Scope};
use tournee_core::record::Record;
use tournee_core::store::Store;
use uuid::Uuid;

use super::pages::{seen_territories, territory_name, Layout};
use super::planning::{parse_id, planner, refused, territory_or_first, TerritoryQuery};
use super::{with_registry, ConsoleError, ConsoleState, Signed};
use crate::accounts::{Role, User};
use crate::registry::Registry;

#[derive(Template)]
#[template(path = "console/conflicts.html")]
struct ConflictsPage {
    l: Layout,
    territories: Vec<(String, String)>,
    territory: String,
    rows: Vec<ConflictRow>,
    /// Conflicts about what the laptops recorded, not shown to this account.
    elsewhere: usize,
    error: Option<String>,
}

/// Which conflicted records of a territory an account may see and resolve.
struct Visible {
    admin: bool,
    units: HashSet<String>,
    planned: HashSet<Uuid>,
    territory: String,
}

impl Visible {
    fn of(reg: &Registry, u: &User, territory: &str) -> Result<Self, ConsoleError> {
        let units = reg
            .units()?
            .into_iter()
            .filter(|x| x.territory == territory)
            .map(|x| x.id)
            .collect::<HashSet<_>>();
        let mut planned: HashSet<Uuid> = reg
            .visit_persons(&[territory.to_owned()])?
            .into_iter()
            .collect();
        for unit in &units {
            planned.extend(reg.planned_visit_persons(unit)?.into_iter().map(|(a, _)| a));
        }
        Ok(Self {
            admin: u.role == Role::Admin,
            units,
            planned,
            territory: territory.to_owned(),
        })
    }

    /// The record is of this territory.
    fn here(&self, r: &Record) -> bool {
        match &r.scope {
            Scope::Unit(u) => self.units.contains(u),
            Scope::Territory(t) => *t == self.territory,
        }
    }

    /// The account may see its values.
    fn shown(&self, r: &Record) -> bool {
        self.admin
            || matches!(r.kind, Kind::Stop | Kind::Round | Kind::Passage)
            || self.planned.contains(&r.id)
    }
}

fn conflicts_page(
    reg: &Registry,
    state: &ConsoleState,
    u: &User,
    territory: &str,
    error: Option<String>,
    done: Option<&'static str>,
) -> Result<String, ConsoleError> {
    let store = state.data.open_store()?;
    let visible = Visible::of(reg, u, territory)?;
    let names = DeviceNames::new(reg.devices()?.into_iter().map(|d| (d.actor, d.name)));
    let mut rows = Vec::new();
    let mut elsewhere = 0;
    for r in store.conflicted()?.iter().filter(|r| visible.here(r)) {
        if visible.shown(r) {
            rows.extend(record_conflict_rows(&store, r, &names));
        } else {
            elsewhere += r.conflicts().len();
        }
    }
    let mut l = Layout::new(
        u,
        format!("Conflits — {}", territory_name(territory)),
        "conflicts",
    );
    l.flash = done;
    Ok(ConflictsPage {
        l,
        territories: seen_territories(u),
        territory: territory.to_owned(),
        rows,
        elsewhere,
        error,
    }
    .render()?)
}

/// `GET /conflits?territoire=`.
pub async fn conflicts(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<TerritoryQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let territory = territory_or_first(&signed.0, q.territoire.as_deref());
        let u = planner(&signed, reg, state, &territory, "conflits")?;
        let done = (q.ok.as_deref() == Some("conflit")).then_some(
            "le conflit est réglé ; les postes de l'unité reçoivent la valeur gardée à leur prochaine synchronisation.",
        );
        conflicts_page(reg, state, &u, &territory, None, done)
    })
    .await?;
    Ok(Html(html))
}

/// One resolution: the record, the field (its code) and the value kept or typed.
#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    territoire: String,
    id: String,
    champ: String,
    #[serde(default)]
    valeur: String,
}

/// `POST /conflits/regler`.
pub async fn resolve(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<ResolveForm>,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        let territory = f.territoire.trim().to_owned();
        let u = planner(&signed, reg, state, &territory, "conflits.regler")?;
        let id = parse_id(&f.id)?;
        let mut store = state.data.open_store()?;
        let visible = Visible::of(reg, &u, &territory)?;
        let record = store
            .record(id)?
            .filter(|r| visible.here(r) && visible.shown(r))
            .ok_or_else(|| {
                ConsoleError::Forbidden(
                    "ce conflit n'est pas de ceux que votre compte règle".into(),
                )
            })?;
        let done = tournee_core::actions::resolve_conflict(&record, &f.champ, &f.valeur)
            .map_err(|e| e.to_string())
            .and_then(|action| {
                store
                    .write_local(state.now_ms(), &action)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        match done {
            Ok(()) => {
                reg.audit(
                    state.now_ms(),
                    &u.name,
                    "conflict.resolve",
                    Some(&territory),
                    &format!("{id} {}", f.champ),
                )?;
                Ok(
                    Redirect::to(&format!("/conflits?territoire={territory}&ok=conflit"))
                        .into_response(),
                )
            }
            Err(e) => Ok(refused(conflicts_page(
                reg,
                state,
                &u,
                &territory,
                Some(e),
                None,
            )?)),
        }
    })
    .await
}
