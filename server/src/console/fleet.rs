//! The scheduler's *Postes* page: a territory's units and their laptops as of their last
//! contact (seen when, changes waiting, refused, program, clock), flagged after
//! `QUIET_DAYS_WARN` and `QUIET_DAYS_ALERT` days; enrol a laptop (its bundle is downloaded
//! once, from the answer to the form) and revoke one.
//!
//! Not here: what a contact records (`fleet`), the certificate work (`admin::enroll_device`),
//! marking a laptop lost (a wipe needs the encrypted store of issue 15).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::pages::{seen_territories, territory_name, Layout};
use super::planning::{planner, refused, territory_or_first, unit_of, TerritoryQuery};
use super::{with_registry, Area, ConsoleError, ConsoleState, Signed};
use crate::accounts::User;
use crate::fleet::{FleetRow, Quiet};
use crate::registry::{Registry, Unit};

/// A unit and its laptops.
struct UnitRows {
    unit: Unit,
    rows: Vec<FleetRow>,
}

#[derive(Template)]
#[template(path = "console/fleet.html")]
struct FleetPage {
    l: Layout,
    territories: Vec<(String, String)>,
    territory: String,
    units: Vec<UnitRows>,
    /// Active laptops.
    total: usize,
    /// Of them: up to date, to watch, without news (or never synced).
    recent: usize,
    warn: usize,
    alert: usize,
    error: Option<(String, String)>,
    typed: String,
}

impl FleetPage {
    /// The refusal of the enrolment form of `unit`, if that form was refused.
    fn error_for(&self, unit: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(u, _)| u == unit)
            .map(|(_, e)| e.as_str())
    }
}

fn flash(ok: Option<&str>) -> Option<&'static str> {
    match ok? {
        "revoque" => Some("le poste est révoqué : il ne peut plus se synchroniser."),
        _ => None,
    }
}

fn fleet_page(
    reg: &Registry,
    state: &ConsoleState,
    u: &User,
    territory: &str,
    error: Option<(String, String)>,
    typed: String,
    done: Option<&'static str>,
) -> Result<String, ConsoleError> {
    let mut l = Layout::new(
        u,
        format!("Postes — {}", territory_name(territory)),
        "fleet",
    );
    l.flash = done;
    let now = i64::try_from(state.now_ms()).unwrap_or(i64::MAX);
    let fleet = reg.fleet(now)?;
    let units: Vec<UnitRows> = reg
        .units()?
        .into_iter()
        .filter(|unit| unit.territory == territory)
        .map(|unit| UnitRows {
            rows: fleet
                .iter()
                .filter(|r| r.device.unit == unit.id)
                .cloned()
                .collect(),
            unit,
        })
        .collect();
    let active = || {
        units
            .iter()
            .flat_map(|u| &u.rows)
            .filter(|r| r.device.status == "active")
    };
    let count = |q: &[Quiet]| active().filter(|r| q.contains(&r.quiet)).count();
    let (total, recent, warn, alert) = (
        active().count(),
        count(&[Quiet::Recent]),
        count(&[Quiet::Warn]),
        count(&[Quiet::Alert, Quiet::Never]),
    );
    Ok(FleetPage {
        l,
        territories: seen_territories(u),
        territory: territory.to_owned(),
        units,
        total,
        recent,
        warn,
        alert,
        error,
        typed,
    }
    .render()?)
}

/// `GET /postes?territoire=`.
pub async fn fleet(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<TerritoryQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let territory = territory_or_first(&signed.0, q.territoire.as_deref());
        let u = planner(&signed, reg, state, &territory, "postes")?;
        fleet_page(
            reg,
            state,
            &u,
            &territory,
            None,
            String::new(),
            flash(q.ok.as_deref()),
        )
    })
    .await?;
    Ok(Html(html))
}

/// The enrolment form.
#[derive(Debug, Deserialize)]
pub struct EnrolForm {
    unite: String,
    nom: String,
}

/// `POST /postes/inscrire`: the answer is the bundle itself, downloaded once; it is not kept.
pub async fn enrol(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<EnrolForm>,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        signed.may_or_journal(reg, state.now_ms(), Area::Planning, None, "postes.inscrire")?;
        let unit = unit_of(reg, f.unite.trim())?;
        let u = planner(&signed, reg, state, &unit.territory, "postes.inscrire")?;
        let name = f.nom.trim().to_owned();
        match crate::admin::enroll_device(&state.data, &*state.clock, &unit.id, &name) {
            Ok(bundle) => {
                reg.audit(
                    state.now_ms(),
                    &u.name,
                    "device.enroll",
                    Some(&unit.territory),
                    &format!("{} {} ({})", bundle.device, bundle.device_name, unit.id),
                )?;
                let file = format!("inscription-{}.json", bundle.device_name);
                Ok((
                    [
                        (header::CONTENT_TYPE, "application/json".to_owned()),
                        (
                            header::CONTENT_DISPOSITION,
                            format!("attachment; filename=\"{file}\""),
                        ),
                        (header::CACHE_CONTROL, "no-store".to_owned()),
                    ],
                    bundle.to_json(),
                )
                    .into_response())
            }
            Err(e) => Ok(refused(fleet_page(
                reg,
                state,
                &u,
                &unit.territory,
                Some((unit.id.clone(), format!("{e:#}"))),
                name,
                None,
            )?)),
        }
    })
    .await
}

/// The revocation form.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    poste: u32,
}

/// `POST /postes/revoquer`: the laptop's certificate is refused from now on.
pub async fn revoke(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<RevokeForm>,
) -> Result<Response, ConsoleError> {
    with_registry(&state, move |reg, state| {
        signed.may_or_journal(reg, state.now_ms(), Area::Planning, None, "postes.revoquer")?;
        let device = reg
            .devices()?
            .into_iter()
            .find(|d| d.actor == f.poste)
            .ok_or_else(|| ConsoleError::Form(format!("poste : aucun poste n°{}", f.poste)))?;
        let unit = unit_of(reg, &device.unit)?;
        let u = planner(&signed, reg, state, &unit.territory, "postes.revoquer")?;
        let now = i64::try_from(state.now_ms()).unwrap_or(i64::MAX);
        let d = reg.revoke(&device.actor.to_string(), now)?;
        reg.audit(
            state.now_ms(),
            &u.name,
            "device.revoke",
            Some(&unit.territory),
            &format!("{} {} ({})", d.actor, d.name, d.unit),
        )?;
        Ok(
            Redirect::to(&format!("/postes?territoire={}&ok=revoque", unit.territory))
                .into_response(),
        )
    })
    .await
}
