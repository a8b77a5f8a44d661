//! The scheduler's work on the server: stops, rounds, and the passages each round materialises
//! over a rolling horizon as replicated records, so laptops have their calendar offline.
//!
//! Regeneration never touches a past passage or one the unit already marked (held, cancelled,
//! actual times); everything else is recomputed from the round. Validation errors name the
//! problem. Public holidays and the territory's closures (`DaysOff`) get no passage.
//! Storage through `SqliteStore`; no printing.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Context, Result};
use chrono::{Duration, NaiveDate};
use serde::Serialize;
use tournee_core::actions::new_id;
use tournee_core::clock::WallMs;
use tournee_core::holidays::Calendar;
use tournee_core::limits::{EVERY_WEEKS_MAX, ROUND_STOPS_MAX, SCHEDULER_ACTION_CHANGES_MAX};
use tournee_core::model::{check_commune, Field, Kind, ModelError, PassageStatus, Scope, Value};
use tournee_core::refdata::RefData;
use tournee_core::schedule::{
    decode_stops, encode_stops, first_common_visit, passage_id, ranges_overlap, visit_dates,
    RoundStop,
};
use tournee_core::store::{LocalAction, RecordEdit, Store};
use tournee_core::time::{show_local, touches_clock_change};
use tournee_report::facts::is_marked;
use tournee_report::queries::Queries;
use tournee_store::SqliteStore;
use uuid::Uuid;

use crate::registry::{Registry, Unit};

/// The days without passages of each unit: the calendar of its territory (legal public
/// holidays, with the scheduler's closures and worked holidays).
#[derive(Debug, Clone, Default)]
pub struct DaysOff {
    calendar: Calendar,
    territory_of: HashMap<String, String>,
}

impl DaysOff {
    /// The registry's units and exceptions.
    pub fn load(registry: &Registry) -> Result<Self> {
        Ok(Self {
            calendar: registry.calendar()?,
            territory_of: registry
                .units()?
                .into_iter()
                .map(|u| (u.id, u.territory))
                .collect(),
        })
    }

    /// These units with the legal holidays only (the simulation, tests).
    pub fn legal<'a>(units: impl IntoIterator<Item = &'a Unit>) -> Self {
        Self {
            calendar: Calendar::default(),
            territory_of: units
                .into_iter()
                .map(|u| (u.id.clone(), u.territory.clone()))
                .collect(),
        }
    }

    /// The name of the day off on `date` for `unit`, or `None` when its rounds run.
    pub fn closed(&self, unit: &str, date: NaiveDate) -> Option<String> {
        let territory = self.territory_of.get(unit)?;
        self.calendar.closed(territory, date)
    }
}

/// One visit of a round's plan: a date and the stop's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    /// The day.
    pub date: NaiveDate,
    /// The stop, weekday and window.
    #[serde(skip)]
    pub stop: RoundStop,
    /// The day off that keeps it from being planned, if any.
    pub day_off: Option<String>,
}

/// Every visit of `spec` from `today` to the horizon, in date order, each with the day off
/// that cancels it (if any).
pub fn occurrences(
    spec: &RoundSpec,
    unit: &str,
    days_off: &DaysOff,
    today: NaiveDate,
    horizon_weeks: u32,
) -> Vec<Occurrence> {
    let last = today + Duration::days(i64::from(horizon_weeks) * 7 - 1);
    let mut out = Vec::new();
    for s in &spec.stops {
        for date in visit_dates(spec.from, spec.to, spec.every_weeks, s.weekday, today, last) {
            out.push(Occurrence {
                date,
                stop: *s,
                day_off: days_off.closed(unit, date),
            });
        }
    }
    out.sort_by_key(|o| (o.date, o.stop.start));
    out
}

/// Check a round as `add_round` would and list the visits it would plan, without writing:
/// the console's preview.
pub fn preview_round(
    store: &SqliteStore,
    window: &Window<'_>,
    unit: &Unit,
    spec: &RoundSpec,
    except: Option<Uuid>,
) -> Result<Vec<Occurrence>> {
    validate(store, unit, spec, except)?;
    Ok(occurrences(
        spec,
        &unit.id,
        window.days_off,
        window.today,
        window.horizon_weeks,
    ))
}

/// Bring the passages of every round of `territory`'s units in line with the calendar (after
/// a holiday was added or removed). Each round is its own transaction.
pub fn replan_territory(
    data: &crate::config::DataDir,
    registry: &Registry,
    territory: &str,
    now_ms: WallMs,
    today: NaiveDate,
) -> Result<Regenerated> {
    let horizon = data.load_config()?.horizon_weeks;
    let days_off = DaysOff::load(registry)?;
    let units: HashSet<String> = registry
        .units()?
        .into_iter()
        .filter(|u| u.territory == territory)
        .map(|u| u.id)
        .collect();
    let mut store = data.open_store()?;
    let mut total = Regenerated::default();
    for round in store.ids_of_kind(Kind::Round, None)? {
        let in_territory = store
            .record(round)?
            .is_some_and(|r| matches!(&r.scope, Scope::Unit(u) if units.contains(u)));
        if in_territory {
            let window = Window {
                today,
                horizon_weeks: horizon,
                days_off: &days_off,
            };
            total.add(materialise(&mut store, now_ms, &window, round)?);
        }
    }
    Ok(total)
}

/// A stop as lists show it (no personal data: a stop is a public place).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopView {
    /// Id.
    pub id: Uuid,
    /// Label ("Place de la mairie").
    pub label: String,
    /// INSEE code of the commune.
    pub commune: String,
    /// The commune's name, from the reference data (the code when unknown).
    pub commune_name: String,
    /// Postal address, if given.
    pub address: Option<String>,
}

/// The live stops of a territory, by commune name then label.
pub fn stops_of(store: &dyn Store, territory: &str) -> Result<Vec<StopView>> {
    let scope = Scope::Territory(territory.to_owned());
    let refdata = RefData::get();
    let mut stops: Vec<StopView> = store
        .records_of_kind(Kind::Stop)?
        .into_iter()
        .filter(|s| s.scope == scope)
        .map(|s| {
            let commune = s.text(Field::Commune).unwrap_or_default().to_owned();
            StopView {
                id: s.id,
                label: s.text(Field::Label).unwrap_or_default().to_owned(),
                commune_name: refdata
                    .commune(&commune)
                    .map_or_else(|| commune.clone(), |c| c.name.clone()),
                commune,
                address: s.text(Field::Address).map(str::to_owned),
            }
        })
        .collect();
    stops.sort_by(|a, b| (&a.commune_name, &a.label, a.id).cmp(&(&b.commune_name, &b.label, b.id)));
    Ok(stops)
}

/// The live record `id` of `kind`, or "no KIND with id ID" (naming the listing command that
/// shows the ids, when given).
fn live(
    store: &SqliteStore,
    id: Uuid,
    kind: Kind,
    listed_by: Option<&str>,
) -> Result<tournee_core::record::Record> {
    store
        .record(id)?
        .filter(|r| r.kind == kind && !r.is_deleted())
        .with_context(|| match listed_by {
            Some(cmd) => format!("no {} with id {id} (see `{cmd}`)", kind.code()),
            None => format!("no {} with id {id}", kind.code()),
        })
}

/// Change a stop's label or address (a stop does not change commune: a new place is a new
/// stop, so that past passages keep where they were held).
pub fn set_stop(
    store: &mut SqliteStore,
    now: WallMs,
    id: Uuid,
    label: Option<&str>,
    address: Option<Option<&str>>,
    commune: Option<(&str, NaiveDate)>,
) -> Result<()> {
    let stop = live(store, id, Kind::Stop, Some("stop list"))?;
    let mut sets = Vec::new();
    if let Some((code, today)) = commune {
        check_commune("commune", code)?;
        let territory = match &stop.scope {
            Scope::Territory(t) | Scope::Unit(t) => t.as_str(),
        };
        let dep = RefData::get().commune(code).map(|c| c.departement.as_str());
        if dep != Some(territory) {
            bail!("commune : {code} n'est pas dans le territoire {territory} de cet arrêt");
        }
        let history = store.stop_history(id, today)?;
        if history > 0 {
            bail!(
                "commune : cet arrêt a un historique ({history} passage(s) passé(s) ou marqué(s) par l'unité, ou demande(s)) \
                 qui compte pour sa commune ; ajoutez un nouvel arrêt (`stop add`), mettez-le dans la tournée (`round set`) et archivez celui-ci"
            );
        }
        sets.push((Field::Commune, Value::Text(code.into())));
    }
    if let Some(l) = label {
        sets.push((Field::Label, Value::Text(l.into())));
    }
    if let Some(a) = address {
        sets.push((
            Field::Address,
            a.map_or(Value::Null, |a| Value::Text(a.into())),
        ));
    }
    if sets.is_empty() {
        bail!("stop set : rien à changer ; donnez --label, --address ou --commune");
    }
    write_plan(
        store,
        now,
        tournee_core::actions::set_fields(&stop, sets).edits,
    )
}

/// Archive a stop (a tombstone), refused while a live round still visits it: change or delete
/// the round first, so that no future passage points at an archived place.
pub fn archive_stop(store: &mut SqliteStore, now: WallMs, id: Uuid) -> Result<()> {
    let stop = live(store, id, Kind::Stop, Some("stop list"))?;
    for round in store.ids_of_kind(Kind::Round, None)? {
        let Some(r) = store.record(round)?.filter(|r| !r.is_deleted()) else {
            continue;
        };
        if RoundSpec::from_record(&r)?
            .stops
            .iter()
            .any(|s| s.stop == id)
        {
            bail!(
                "stop archive : la tournée « {} » ({round}) passe encore par cet arrêt ; modifiez-la (`round set`) ou supprimez-la (`round delete`) d'abord",
                r.text(Field::Name).unwrap_or_default()
            );
        }
    }
    write_plan(
        store,
        now,
        tournee_core::actions::set_fields(&stop, vec![(Field::Deleted, Value::Bool(true))]).edits,
    )
}

/// Create a stop in a territory; returns its id.
pub fn add_stop(
    store: &mut SqliteStore,
    now: WallMs,
    territory: &str,
    commune: &str,
    label: &str,
    address: Option<&str>,
) -> Result<Uuid> {
    tournee_core::model::check_territory("territory", territory)?;
    check_commune("commune", commune)?;
    let c = RefData::get().commune(commune).context("commune")?;
    if c.departement != territory {
        bail!(
            "commune: {} ({commune}) is in département {}, not in territory {territory}",
            c.name,
            c.departement
        );
    }
    let id = new_id(now);
    let mut sets = vec![
        (Field::Commune, Value::Text(commune.into())),
        (Field::Label, Value::Text(label.into())),
    ];
    if let Some(a) = address {
        sets.push((Field::Address, Value::Text(a.into())));
    }
    store.write_local(
        now,
        &LocalAction {
            edits: vec![RecordEdit {
                id,
                kind: Kind::Stop,
                scope: Scope::Territory(territory.into()),
                create: true,
                sets,
            }],
        },
    )?;
    Ok(id)
}

/// A round as the scheduler describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundSpec {
    /// Name.
    pub name: String,
    /// First day.
    pub from: NaiveDate,
    /// Last day, if any.
    pub to: Option<NaiveDate>,
    /// Recurrence in weeks.
    pub every_weeks: u32,
    /// Stops with weekday and window.
    pub stops: Vec<RoundStop>,
}

impl RoundSpec {
    fn from_record(r: &tournee_core::record::Record) -> Result<Self> {
        let day = |f| {
            r.text(f)
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        };
        Ok(Self {
            name: r.text(Field::Name).unwrap_or("").to_owned(),
            from: day(Field::ValidFrom).context("round without a start date")?,
            to: day(Field::ValidTo),
            every_weeks: u32::try_from(r.int(Field::EveryWeeks).unwrap_or(1)).unwrap_or(1),
            stops: decode_stops(r.text(Field::Stops).unwrap_or(""))?,
        })
    }

    fn sets(&self) -> Vec<(Field, Value)> {
        vec![
            (Field::Name, Value::Text(self.name.clone())),
            (Field::Stops, Value::Text(encode_stops(&self.stops))),
            (Field::EveryWeeks, Value::Int(i64::from(self.every_weeks))),
            (Field::ValidFrom, Value::Text(self.from.to_string())),
            (
                Field::ValidTo,
                self.to.map_or(Value::Null, |t| Value::Text(t.to_string())),
            ),
        ]
    }
}

/// Check a round against its unit: stops exist in the unit's territory, dates and recurrence
/// make sense, and no window overlaps another of the unit's rounds (or itself) on a weekday.
fn validate(
    store: &SqliteStore,
    unit: &Unit,
    spec: &RoundSpec,
    except: Option<Uuid>,
) -> Result<()> {
    if spec.stops.is_empty() {
        bail!("stop : une tournée passe au moins à un arrêt (--stop STOP_ID@JOUR@HH:MM-HH:MM)");
    }
    if spec.stops.len() > ROUND_STOPS_MAX {
        bail!(
            "stop : {} fenêtres, une tournée en a au plus {ROUND_STOPS_MAX} ; rien n'a été enregistré",
            spec.stops.len()
        );
    }
    if !(1..=EVERY_WEEKS_MAX).contains(&spec.every_weeks) {
        bail!(
            "every-weeks : {} n'est pas permis ; une tournée revient toutes les 1 à {EVERY_WEEKS_MAX} semaines",
            spec.every_weeks
        );
    }
    if let Some(to) = spec.to {
        if to < spec.from {
            bail!("to : la fin {to} est avant le début {}", spec.from);
        }
    }
    for s in &spec.stops {
        let stop = store
            .record(s.stop)?
            .filter(|r| r.kind == Kind::Stop && !r.is_deleted())
            .with_context(|| {
                format!(
                    "stop : aucun arrêt {} (créez-le avec `tournee-server stop add`)",
                    s.stop
                )
            })?;
        if stop.scope != Scope::Territory(unit.territory.clone()) {
            bail!(
                "stop : {} ({}) est dans le territoire {}, l'unité {} dans le {}",
                stop.text(Field::Label).unwrap_or(""),
                s.stop,
                match &stop.scope {
                    Scope::Territory(t) | Scope::Unit(t) => t,
                },
                unit.id,
                unit.territory
            );
        }
    }
    let window = |s: &RoundStop| {
        format!(
            "{} {}-{}",
            weekday_fr(s.weekday),
            s.start.format("%H:%M"),
            s.end.format("%H:%M")
        )
    };
    for (i, a) in spec.stops.iter().enumerate() {
        for b in &spec.stops[i + 1..] {
            if a.overlaps(b) {
                bail!(
                    "stop : les fenêtres {} et {} de cette tournée se chevauchent",
                    window(a),
                    window(b)
                );
            }
        }
    }
    for id in store.ids_of_kind(Kind::Round, Some(&unit.id))? {
        if Some(id) == except {
            continue;
        }
        let Some(other) = store.record(id)? else {
            continue;
        };
        let other = RoundSpec::from_record(&other)?;
        if !ranges_overlap((spec.from, spec.to), (other.from, other.to)) {
            continue;
        }
        // Windows that overlap in time clash only on a date both rounds visit: alternating
        // weeks at the same hour are a normal plan.
        for a in &spec.stops {
            for b in other.stops.iter().filter(|b| a.overlaps(b)) {
                let mine = (spec.from, spec.to, spec.every_weeks);
                let theirs = (other.from, other.to, other.every_weeks);
                if let Some(date) = first_common_visit(mine, theirs, a.weekday) {
                    bail!(
                        "stop : la fenêtre {} chevauche la tournée « {} » ({}) de l'unité {} le {date}",
                        window(a),
                        other.name,
                        window(b),
                        unit.id
                    );
                }
            }
        }
    }
    Ok(())
}

/// A weekday's French name, as the scheduler reads it.
pub fn weekday_fr(d: chrono::Weekday) -> &'static str {
    use chrono::Weekday as W;
    match d {
        W::Mon => "lundi",
        W::Tue => "mardi",
        W::Wed => "mercredi",
        W::Thu => "jeudi",
        W::Fri => "vendredi",
        W::Sat => "samedi",
        W::Sun => "dimanche",
    }
}

/// What a regeneration did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Regenerated {
    /// Passages created.
    pub created: usize,
    /// Passages whose plan changed.
    pub updated: usize,
    /// Future unmarked passages no longer in the plan (tombstoned).
    pub removed: usize,
    /// Marked or past passages left as they are.
    pub kept: usize,
}

impl Regenerated {
    fn add(&mut self, r: Regenerated) {
        self.created += r.created;
        self.updated += r.updated;
        self.removed += r.removed;
        self.kept += r.kept;
    }
}

/// Create a round for `unit` and its passages over the horizon, in one transaction: the
/// round exists with all its passages or not at all. Returns its id.
pub fn add_round(
    store: &mut SqliteStore,
    now: WallMs,
    window: &Window<'_>,
    unit: &Unit,
    spec: &RoundSpec,
) -> Result<(Uuid, Regenerated)> {
    validate(store, unit, spec, None)?;
    let id = new_id(now);
    let scope = Scope::Unit(unit.id.clone());
    let (passages, r) = plan_passages(store, window, id, &scope, Some(spec))?;
    let mut edits = vec![RecordEdit {
        id,
        kind: Kind::Round,
        scope,
        create: true,
        sets: spec.sets(),
    }];
    edits.extend(passages);
    write_plan(store, now, edits)?;
    Ok((id, r))
}

/// Replace a round's plan and regenerate its future passages, in one transaction.
pub fn edit_round(
    store: &mut SqliteStore,
    now: WallMs,
    window: &Window<'_>,
    unit: &Unit,
    round: Uuid,
    spec: &RoundSpec,
) -> Result<Regenerated> {
    let record = live(store, round, Kind::Round, None)?;
    validate(store, unit, spec, Some(round))?;
    let (passages, r) = plan_passages(store, window, round, &record.scope, Some(spec))?;
    let mut edits = tournee_core::actions::set_fields(&record, spec.sets()).edits;
    edits.extend(passages);
    write_plan(store, now, edits)?;
    Ok(r)
}

/// Delete a round: its record is tombstoned and its passages from `today` on that the unit has
/// not marked go, in one transaction; past and marked passages stay (they are what happened).
pub fn delete_round(
    store: &mut SqliteStore,
    now: WallMs,
    today: NaiveDate,
    horizon_weeks: u32,
    round: Uuid,
) -> Result<Regenerated> {
    let record = live(store, round, Kind::Round, Some("round list"))?;
    let days_off = DaysOff::default();
    let window = Window {
        today,
        horizon_weeks,
        days_off: &days_off,
    };
    let (passages, r) = plan_passages(store, &window, round, &record.scope, None)?;
    let mut edits =
        tournee_core::actions::set_fields(&record, vec![(Field::Deleted, Value::Bool(true))]).edits;
    edits.extend(passages);
    write_plan(store, now, edits)?;
    Ok(r)
}

/// Cancel one passage for the unit (the scheduler knows the bus will not come): status
/// `annule` with a cause; it then counts as marked, so no regeneration brings it back. A
/// passage already held is not cancelled.
pub fn cancel_passage(
    store: &mut SqliteStore,
    now: WallMs,
    passage: Uuid,
    cause: tournee_core::model::CancelCause,
) -> Result<()> {
    let record = live(store, passage, Kind::Passage, Some("passages"))?;
    if record.text(Field::Status) == Some(PassageStatus::Held.code()) {
        bail!("passage {passage} : déjà tenu, il ne peut plus être annulé");
    }
    let action = tournee_core::actions::set_fields(
        &record,
        vec![
            (
                Field::Status,
                Value::Text(PassageStatus::Cancelled.code().into()),
            ),
            (Field::Cause, Value::Text(cause.code().into())),
        ],
    );
    write_plan(store, now, action.edits)
}

/// Name the partners present at one passage (a permanence: the CAF adviser on board on the
/// first Tuesday), each valid on its day; none clears it. The laptops show it on the day.
pub fn set_passage_partners(
    store: &mut SqliteStore,
    now: WallMs,
    passage: Uuid,
    partners: &[String],
) -> Result<()> {
    let record = live(store, passage, Kind::Passage, Some("passages"))?;
    let day = record
        .text(Field::Date)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .context("passage without date")?;
    if partners.len() > tournee_core::limits::PASSAGE_PARTNERS_MAX {
        bail!(
            "partenaires : au plus {} par passage",
            tournee_core::limits::PASSAGE_PARTNERS_MAX
        );
    }
    for code in partners {
        tournee_core::model::check_partner(code, day).map_err(|_| {
            anyhow::anyhow!("partenaires : « {code} » ne fait pas partie du programme le {day}")
        })?;
    }
    let value = if partners.is_empty() {
        Value::Null
    } else {
        Value::Text(partners.join(","))
    };
    let action = tournee_core::actions::set_fields(&record, vec![(Field::Partners, value)]);
    write_plan(store, now, action.edits)
}

/// A passage the scheduler moved to another day or time: regenerating its round leaves it
/// there (deleting the round takes it away, like any unmarked passage).
fn is_moved(p: &tournee_core::record::Record) -> bool {
    p.text(Field::MovedFrom).is_some()
}

/// Move one passage to another day or window (the bus comes on Wednesday this week): its
/// date and planned times change, `moved_from` keeps the day it was planned on, and the unit's
/// laptops see it on the new day at their next sync. A passage already held, cancelled or
/// started is not moved, nor one whose new window overlaps another passage of the unit.
pub fn move_passage(
    store: &mut SqliteStore,
    now: WallMs,
    today: NaiveDate,
    passage: Uuid,
    date: NaiveDate,
    window: Option<(chrono::NaiveTime, chrono::NaiveTime)>,
) -> Result<()> {
    let record = live(store, passage, Kind::Passage, Some("passages"))?;
    if is_marked(&record) {
        bail!("passage {passage} : déjà marqué par l'unité (tenu, annulé ou commencé), il ne peut plus être déplacé");
    }
    if date < today {
        bail!("date : le {date} est passé ; un passage se déplace vers aujourd'hui ou plus tard");
    }
    let old_date = record.text(Field::Date).unwrap_or_default().to_owned();
    let (start, end) = match window {
        Some(w) => w,
        None => {
            let hm = |t: Option<i64>| {
                let local = show_local(t?);
                chrono::NaiveTime::parse_from_str(local.get(11..16)?, "%H:%M").ok()
            };
            (
                hm(record.int(Field::PlannedStart)).context("passage without planned start")?,
                hm(record.int(Field::PlannedEnd)).context("passage without planned end")?,
            )
        }
    };
    if end <= start {
        bail!(
            "end : la fin ({}) doit venir après le début ({})",
            end.format("%H:%M"),
            start.format("%H:%M")
        );
    }
    let stop = record.id_ref(Field::Stop).context("passage without stop")?;
    let slot = RoundStop {
        stop,
        weekday: chrono::Datelike::weekday(&date),
        start,
        end,
    };
    let (planned_start, planned_end) = slot.planned(date);
    if let Scope::Unit(unit) = &record.scope {
        for other in store.passages_between(Some(unit), date, date)? {
            if other.id == passage || other.is_deleted() {
                continue;
            }
            let (Some(a), Some(b)) = (other.int(Field::PlannedStart), other.int(Field::PlannedEnd))
            else {
                continue;
            };
            if a < planned_end && planned_start < b {
                bail!(
                    "date : le {date}, ce passage de {} à {} chevaucherait un autre passage de l'unité ({} à {})",
                    start.format("%H:%M"),
                    end.format("%H:%M"),
                    show_local(a).get(11..16).unwrap_or_default(),
                    show_local(b).get(11..16).unwrap_or_default()
                );
            }
        }
    }
    let moved_from = record
        .text(Field::MovedFrom)
        .map_or(old_date, str::to_owned);
    let action = tournee_core::actions::set_fields(
        &record,
        vec![
            (Field::Date, Value::Text(date.to_string())),
            (Field::PlannedStart, Value::Int(planned_start)),
            (Field::PlannedEnd, Value::Int(planned_end)),
            (Field::MovedFrom, Value::Text(moved_from)),
        ],
    );
    write_plan(store, now, action.edits)
}

/// Write a scheduler action, refusing up front (nothing written) one too big to be a single
/// transaction. `SCHEDULER_ACTION_CHANGES_MAX` holds any valid round over the longest horizon,
/// so this only guards the arithmetic.
fn write_plan(store: &mut SqliteStore, now: WallMs, edits: Vec<RecordEdit>) -> Result<()> {
    if edits.is_empty() {
        return Ok(());
    }
    let changes: usize = edits.iter().map(|e| e.sets.len()).sum();
    if changes > SCHEDULER_ACTION_CHANGES_MAX {
        bail!(
            "round : ce plan écrirait {changes} modifications, au plus \
             {SCHEDULER_ACTION_CHANGES_MAX} en une fois ; rien n'a été enregistré \
             (moins de fenêtres ou un horizon plus court)"
        );
    }
    store.write_local(now, &LocalAction { edits })?;
    Ok(())
}

/// The current plan of a round (for edits that change one part of it).
pub fn round_spec(store: &SqliteStore, round: Uuid) -> Result<(RoundSpec, String)> {
    let record = live(store, round, Kind::Round, None)?;
    let unit = match &record.scope {
        Scope::Unit(u) => u.clone(),
        Scope::Territory(_) => bail!("round {round} has no unit"),
    };
    Ok((RoundSpec::from_record(&record)?, unit))
}

/// Bring a round's passages from `today` to the horizon in line with its stored plan.
pub fn materialise(
    store: &mut SqliteStore,
    now: WallMs,
    window: &Window<'_>,
    round: Uuid,
) -> Result<Regenerated> {
    let record = store
        .record(round)?
        .with_context(|| format!("no round with id {round}"))?;
    let spec = if record.is_deleted() {
        None
    } else {
        Some(RoundSpec::from_record(&record)?)
    };
    let (edits, r) = plan_passages(store, window, round, &record.scope, spec.as_ref())?;
    write_plan(store, now, edits)?;
    Ok(r)
}

/// The days a plan covers: from `today`, `horizon_weeks` weeks, without the days off.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// The first day planned (earlier passages are history).
    pub today: NaiveDate,
    /// How many weeks ahead.
    pub horizon_weeks: u32,
    /// The days without passages.
    pub days_off: &'a DaysOff,
}

/// The edits that bring round `round`'s passages from `today` to the horizon in line with
/// `spec` (`None`: the round is deleted, so its future unmarked passages go). A day off gets
/// no passage (an unmarked one already there goes). Reads only: every occurrence is computed
/// before anything is written.
fn plan_passages(
    store: &SqliteStore,
    window: &Window<'_>,
    round: Uuid,
    scope: &Scope,
    spec: Option<&RoundSpec>,
) -> Result<(Vec<RecordEdit>, Regenerated)> {
    let unit = match scope {
        Scope::Unit(u) => u.as_str(),
        Scope::Territory(_) => "",
    };
    let mut wanted: Vec<(Uuid, NaiveDate, RoundStop)> = Vec::new();
    if let Some(spec) = spec {
        let all = occurrences(
            spec,
            unit,
            window.days_off,
            window.today,
            window.horizon_weeks,
        );
        for o in all.into_iter().filter(|o| o.day_off.is_none()) {
            wanted.push((passage_id(round, &o.stop, o.date), o.date, o.stop));
        }
    }
    let existing = store.round_passages(round, window.today)?;
    let mut report = Regenerated::default();
    let mut edits = Vec::new();
    for (id, date, s) in &wanted {
        let (start, end) = s.planned(*date);
        let plan = vec![
            (Field::Round, Value::Id(round)),
            (Field::Stop, Value::Id(s.stop)),
            (Field::Date, Value::Text(date.to_string())),
            (Field::PlannedStart, Value::Int(start)),
            (Field::PlannedEnd, Value::Int(end)),
        ];
        match store.record(*id)? {
            None => {
                let mut sets = plan;
                sets.push((
                    Field::Status,
                    Value::Text(PassageStatus::Planned.code().into()),
                ));
                edits.push(RecordEdit {
                    id: *id,
                    kind: Kind::Passage,
                    scope: scope.clone(),
                    create: true,
                    sets,
                });
                report.created += 1;
            }
            Some(p) if is_marked(&p) || is_moved(&p) => report.kept += 1,
            Some(p) => {
                let mut sets: Vec<(Field, Value)> = plan
                    .into_iter()
                    .filter(|(f, v)| p.value(*f) != Some(v))
                    .collect();
                if p.is_deleted() {
                    sets.push((Field::Deleted, Value::Bool(false)));
                }
                if !sets.is_empty() {
                    edits.push(RecordEdit {
                        id: *id,
                        kind: Kind::Passage,
                        scope: scope.clone(),
                        create: false,
                        sets,
                    });
                    report.updated += 1;
                }
            }
        }
    }
    let wanted_ids: HashSet<Uuid> = wanted.iter().map(|(w, _, _)| *w).collect();
    for (id, marked) in existing {
        if wanted_ids.contains(&id) {
            continue;
        }
        let Some(p) = store.record(id)? else { continue };
        if marked || p.is_deleted() {
            report.kept += usize::from(marked);
            continue;
        }
        if spec.is_some() && is_moved(&p) {
            report.kept += 1;
            continue;
        }
        edits.push(RecordEdit {
            id,
            kind: Kind::Passage,
            scope: scope.clone(),
            create: false,
            sets: vec![(Field::Deleted, Value::Bool(true))],
        });
        report.removed += 1;
    }
    Ok((edits, report))
}

/// One line per passage of `spec` from `today` to the horizon whose window touches a
/// daylight-saving change, saying when it is planned instead (the rule of
/// `time::paris_planned`), for the scheduler to see rather than discover.
pub fn clock_change_notes(spec: &RoundSpec, today: NaiveDate, horizon_weeks: u32) -> Vec<String> {
    let last = today + Duration::days(i64::from(horizon_weeks) * 7 - 1);
    let mut notes = Vec::new();
    for s in &spec.stops {
        for date in visit_dates(spec.from, spec.to, spec.every_weeks, s.weekday, today, last) {
            if !touches_clock_change(date, s.start, s.end) {
                continue;
            }
            let (start, end) = s.planned(date);
            let hm = |t: i64| show_local(t).get(11..).unwrap_or_default().to_owned();
            notes.push(format!(
                "note : le {date}, la fenêtre {}-{} tombe sur le changement d'heure ; \
                 passage prévu de {} à {} (même durée)",
                s.start.format("%H:%M"),
                s.end.format("%H:%M"),
                hm(start),
                hm(end)
            ));
        }
    }
    notes
}

/// What one pass of the horizon over every round did.
#[derive(Debug, Clone, Default)]
pub struct HorizonRun {
    /// Passages changed, all rounds together.
    pub total: Regenerated,
    /// Rounds that could not be materialised, with why; the others were.
    pub failed: Vec<(Uuid, String)>,
}

/// Extend every round's passages to the horizon (the daemon calls this as days pass). Each
/// round is its own transaction: one that fails is reported in `failed` and never keeps the
/// others from their passages.
pub fn materialise_all(
    store: &mut SqliteStore,
    now: WallMs,
    window: &Window<'_>,
) -> Result<HorizonRun> {
    let mut run = HorizonRun::default();
    for round in store.ids_of_kind(Kind::Round, None)? {
        match materialise(store, now, window, round) {
            Ok(r) => run.total.add(r),
            Err(e) => run.failed.push((round, format!("{e:#}"))),
        }
    }
    Ok(run)
}

/// What the daemon already logged about failing rounds, so each round's failure is logged
/// once (again only if it changes, or after the round recovered and failed anew), not at
/// every pass.
#[derive(Debug, Default)]
pub struct FailureMemo {
    last: HashMap<Uuid, String>,
}

impl FailureMemo {
    /// Record this pass's failures; returns those not reported before.
    pub fn fresh(&mut self, failed: &[(Uuid, String)]) -> Vec<(Uuid, String)> {
        let fresh = failed
            .iter()
            .filter(|(round, why)| self.last.get(round) != Some(why))
            .cloned()
            .collect();
        self.last = failed.iter().cloned().collect();
        fresh
    }
}

/// A round for listings.
#[derive(Debug, Clone, Serialize)]
pub struct RoundView {
    /// Id.
    pub id: String,
    /// Unit.
    pub unit: String,
    /// Name.
    pub name: String,
    /// First day.
    pub from: String,
    /// Last day.
    pub to: Option<String>,
    /// Recurrence in weeks.
    pub every_weeks: u32,
    /// Stops as `STOP_ID@WEEKDAY@HH:MM-HH:MM` with their labels and communes.
    pub stops: Vec<serde_json::Value>,
}

/// Rounds of one unit, or all.
pub fn list_rounds(store: &SqliteStore, unit: Option<&str>) -> Result<Vec<RoundView>> {
    let mut out = Vec::new();
    for id in store.ids_of_kind(Kind::Round, unit)? {
        let Some(r) = store.record(id)? else { continue };
        let spec = RoundSpec::from_record(&r)?;
        let mut stops = Vec::new();
        for s in &spec.stops {
            let stop = store.record(s.stop)?;
            let commune = stop
                .as_ref()
                .and_then(|x| x.text(Field::Commune))
                .unwrap_or("")
                .to_owned();
            stops.push(serde_json::json!({
                "stop": s.stop.to_string(),
                "weekday": format!("{:?}", s.weekday).to_lowercase(),
                "start": s.start.format("%H:%M").to_string(),
                "end": s.end.format("%H:%M").to_string(),
                "label": stop.as_ref().and_then(|x| x.text(Field::Label)).unwrap_or(""),
                "commune": commune,
                "commune_name": RefData::get().commune(&commune).map(|c| c.name.clone()),
            }));
        }
        out.push(RoundView {
            id: id.to_string(),
            unit: match &r.scope {
                Scope::Unit(u) | Scope::Territory(u) => u.clone(),
            },
            name: spec.name,
            from: spec.from.to_string(),
            to: spec.to.map(|t| t.to_string()),
            every_weeks: spec.every_weeks,
            stops,
        });
    }
    Ok(out)
}

/// Parse the `--stop` arguments of a round.
pub fn parse_stops(args: &[String]) -> Result<Vec<RoundStop>, ModelError> {
    args.iter().map(|s| RoundStop::parse(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_failure_is_reported_once_until_it_changes_or_heals() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut memo = FailureMemo::default();
        let first = vec![(a, "no start date".to_owned())];
        assert_eq!(memo.fresh(&first), first);
        assert!(
            memo.fresh(&first).is_empty(),
            "the same failure again: silent"
        );
        let both = vec![(a, "no start date".to_owned()), (b, "busy".to_owned())];
        assert_eq!(memo.fresh(&both), vec![(b, "busy".to_owned())]);
        let changed = vec![(a, "other".to_owned())];
        assert_eq!(memo.fresh(&changed), changed, "a new reason is news");
        assert!(memo.fresh(&[]).is_empty());
        assert_eq!(memo.fresh(&changed), changed, "failing again after healing");
    }
}
