//! Home visits planned by a scheduler: an appointment `domicile` in a unit's scope, for a person
//! found among those of the territory's earlier planned visits or recorded for it, with the
//! address and phone for the visit. The registry keeps which person each planned visit named
//! (`planned_visits`), so a scheduler's person search reaches those persons and nobody else:
//! the persons the laptops record stay theirs.
//!
//! Not here: the page (`console::visits`), what a visit does on the laptop (an ordinary
//! appointment the conseillère marks).

use chrono::NaiveDate;
use rusqlite::params;
use tournee_core::actions::people::{add_person, set_person, NewPerson, PersonUpdate};
use tournee_core::actions::{add_appointment, check_new_appointment, NewAppointment};
use tournee_core::clock::WallMs;
use tournee_core::model::{Field, Kind, Location, Scope};
use tournee_core::person::fold;
use tournee_core::record::Record;
use tournee_core::store::{Store, StoreError};
use uuid::Uuid;

use crate::registry::{Registry, RegistryError};

/// Most persons a scheduler's search lists.
pub const VISIT_PERSON_RESULTS_MAX: usize = 20;
/// Shortest search, in characters: a scheduler looks a person up, she does not browse them.
pub const VISIT_SEARCH_CHARS_MIN: usize = 2;

/// Migration 5 of the registry: the persons named by home visits planned from the console.
pub const MIGRATION: &str = "CREATE TABLE planned_visits (
         appointment TEXT PRIMARY KEY,
         person      TEXT NOT NULL,
         unit        TEXT NOT NULL,
         territory   TEXT NOT NULL,
         planned_by  TEXT NOT NULL,
         at_ms       INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX planned_visits_territory ON planned_visits(territory, person);";

/// Who the visit is for.
#[derive(Debug, Clone)]
pub enum Visited {
    /// A person of an earlier planned visit; phone and address replaced when given.
    Known {
        /// The person.
        id: Uuid,
        /// New phone for the visit.
        phone: Option<String>,
        /// New address for the visit.
        address: Option<String>,
    },
    /// A person recorded for this visit.
    New(NewPerson),
}

/// A home visit to plan.
#[derive(Debug, Clone)]
pub struct VisitPlan {
    /// Unit that makes it.
    pub unit: String,
    /// The unit's territory.
    pub territory: String,
    /// Start, Unix seconds.
    pub start: i64,
    /// Minutes.
    pub duration: i64,
    /// INSEE code of the commune visited.
    pub commune: String,
    /// The person.
    pub who: Visited,
    /// A note for the conseillère.
    pub note: Option<String>,
}

/// Why a visit was not planned, in words for the form.
#[derive(Debug, thiserror::Error)]
pub enum VisitError {
    /// What was typed does not hold.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Plan `plan` for `planned_by`: the person recorded or updated, the appointment written in the
/// unit's scope (the laptops get it at their next sync), the person remembered for the
/// territory's later searches. Returns the appointment.
pub fn plan_home_visit(
    store: &mut dyn Store,
    reg: &Registry,
    now: WallMs,
    planned_by: &str,
    plan: &VisitPlan,
) -> Result<Uuid, VisitError> {
    let mut new = NewAppointment {
        start: plan.start,
        duration: plan.duration,
        location: Location::Home,
        commune: plan.commune.clone(),
        citizen: None,
        person: None,
        passage: None,
        note: plan.note.clone(),
    };
    check_new_appointment(now, &new).map_err(|e| VisitError::Invalid(e.to_string()))?;
    let person = match &plan.who {
        Visited::Known { id, phone, address } => {
            if !reg.visit_person_in(plan.territory.as_str(), *id)? {
                return Err(VisitError::Invalid(
                    "personne : elle n'est pas parmi celles des visites planifiées dans ce territoire"
                        .into(),
                ));
            }
            let record = store
                .record(*id)?
                .filter(|r| !r.is_deleted())
                .ok_or_else(|| VisitError::Invalid("personne : elle a été effacée".into()))?;
            let update = PersonUpdate {
                phone: phone.clone().map(Some),
                address: address.clone().map(Some),
                ..PersonUpdate::default()
            };
            if update.phone.is_some() || update.address.is_some() {
                let action = set_person(now, &record, &update)
                    .map_err(|e| VisitError::Invalid(e.to_string()))?;
                store.write_local(now, &action)?;
            }
            *id
        }
        Visited::New(p) => {
            if p.name.trim().is_empty() {
                return Err(VisitError::Invalid(
                    "nom : indiquez le nom de la personne visitée, ou choisissez-la dans la recherche"
                        .into(),
                ));
            }
            let (id, action) =
                add_person(now, &plan.unit, p).map_err(|e| VisitError::Invalid(e.to_string()))?;
            store.write_local(now, &action)?;
            id
        }
    };
    new.person = Some(person);
    let (id, action) = add_appointment(store, now, &plan.unit, &new)
        .map_err(|e| VisitError::Invalid(e.to_string()))?;
    store.write_local(now, &action)?;
    reg.conn()
        .execute(
            "INSERT INTO planned_visits(appointment, person, unit, territory, planned_by, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id.to_string(),
                person.to_string(),
                plan.unit,
                plan.territory,
                planned_by,
                i64::try_from(now).unwrap_or(i64::MAX)
            ],
        )
        .map_err(RegistryError::from)?;
    Ok(id)
}

impl Registry {
    /// A planned visit of `territory` named `person`.
    pub fn visit_person_in(&self, territory: &str, person: Uuid) -> Result<bool, RegistryError> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM planned_visits WHERE territory = ?1 AND person = ?2",
            params![territory, person.to_string()],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// The persons of the planned visits of `territories` (every territory when empty).
    pub fn visit_persons(&self, territories: &[String]) -> Result<Vec<Uuid>, RegistryError> {
        let mut stmt = self
            .conn()
            .prepare("SELECT DISTINCT territory, person FROM planned_visits")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (t, p) = row?;
            if territories.is_empty() || territories.contains(&t) {
                out.extend(Uuid::parse_str(&p).ok());
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The appointments planned from the console, with the person each named.
    pub fn planned_visit_persons(&self, unit: &str) -> Result<Vec<(Uuid, Uuid)>, RegistryError> {
        let mut stmt = self
            .conn()
            .prepare("SELECT appointment, person FROM planned_visits WHERE unit = ?1")?;
        let rows = stmt.query_map([unit], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (a, p) = row?;
            if let (Ok(a), Ok(p)) = (Uuid::parse_str(&a), Uuid::parse_str(&p)) {
                out.push((a, p));
            }
        }
        Ok(out)
    }
}

/// The persons among `allowed` whose name, phone digits or address contain what was typed
/// (folded), by name; at most `VISIT_PERSON_RESULTS_MAX`.
pub fn search_visit_persons(
    store: &dyn Store,
    allowed: &[Uuid],
    typed: &str,
) -> Result<Vec<Record>, StoreError> {
    let query = fold(typed.trim());
    if query.chars().count() < VISIT_SEARCH_CHARS_MIN {
        return Ok(Vec::new());
    }
    let digits: String = typed.chars().filter(char::is_ascii_digit).collect();
    let mut found = Vec::new();
    for id in allowed {
        let Some(r) = store.record(*id)?.filter(|r| !r.is_deleted()) else {
            continue;
        };
        if r.id_ref(Field::MergedInto).is_some() {
            continue;
        }
        let text = |f| fold(r.text(f).unwrap_or_default());
        let phone: String = r
            .text(Field::Phone)
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let hit = text(Field::Name).contains(&query)
            || text(Field::Address).contains(&query)
            || (digits.len() >= 4 && phone.contains(&digits));
        if hit {
            found.push(r);
        }
    }
    found.sort_by_key(|r| fold(r.text(Field::Name).unwrap_or_default()));
    found.truncate(VISIT_PERSON_RESULTS_MAX);
    Ok(found)
}

/// The unit's home visits from `from` to `to`, by start.
pub fn home_visits(
    store: &dyn Store,
    unit: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Record>, StoreError> {
    let scope = Scope::Unit(unit.to_owned());
    let mut v: Vec<Record> = store
        .records_between(Kind::Appointment, from, to)?
        .into_iter()
        .filter(|r| r.scope == scope && r.text(Field::Location) == Some(Location::Home.code()))
        .collect();
    v.sort_by_key(|r| (r.int(Field::Start), r.id));
    Ok(v)
}
