//! Walk-ins (accueil sans rendez-vous) and collective sessions (ateliers), recorded at a
//! passage or, for a home-visit team, in a commune: the actions `visit add` and `session add`
//! and the UI's forms build.
//!
//! A walk-in is with a person or anonymous (no person field: the practice of "respect et
//! anonymat"); a collective session counts its attendees and names nobody.

use uuid::Uuid;

use super::{create_record, new_id, require_kind, text};
use crate::clock::WallMs;
use crate::model::{check_commune, check_theme, Field, Kind, Location, ModelError, Value};
use crate::store::{LocalAction, Store, StoreError};

use super::people::require_person;

/// Where a walk-in happened: at a passage of the round, or in a commune (home or phone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisitPlace {
    /// At a passage; the commune is its stop's.
    Passage(Uuid),
    /// Without a passage: a commune and how the person was met.
    Commune {
        /// INSEE code.
        commune: String,
        /// At a stop, at home or by phone.
        location: Location,
    },
}

/// What `visit add` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVisit {
    /// Where.
    pub place: VisitPlace,
    /// The person received, or `None` for an anonymous walk-in.
    pub person: Option<Uuid>,
    /// When, Unix seconds.
    pub at: i64,
}

/// The commune of a passage: its stop's, as this laptop holds it.
fn passage_commune(store: &dyn Store, passage: Uuid) -> Result<String, StoreError> {
    let p = require_kind(store, passage, Kind::Passage)?;
    let stop = p
        .id_ref(Field::Stop)
        .map(|s| require_kind(store, s, Kind::Stop))
        .transpose()?;
    stop.and_then(|s| s.text(Field::Commune).map(str::to_owned))
        .ok_or_else(|| {
            ModelError::BadFormat {
                field: "passage",
                value: passage.to_string(),
                expected: "a passage whose stop this laptop holds (sync, or give --commune)",
            }
            .into()
        })
}

/// Build the action that records a walk-in in `unit`; returns its id and the action.
pub fn add_visit(
    store: &dyn Store,
    now: WallMs,
    unit: &str,
    v: &NewVisit,
) -> Result<(Uuid, LocalAction), StoreError> {
    let (commune, location, passage) = match &v.place {
        VisitPlace::Passage(p) => (passage_commune(store, *p)?, Location::Stop, Some(*p)),
        VisitPlace::Commune { commune, location } => {
            check_commune("commune", commune)?;
            (commune.clone(), *location, None)
        }
    };
    let mut sets = vec![
        (Field::Location, text(location.code())),
        (Field::Commune, text(&commune)),
        (Field::Start, Value::Int(v.at)),
    ];
    if let Some(p) = passage {
        sets.push((Field::Passage, Value::Id(p)));
    }
    if let Some(person) = v.person {
        sets.push((Field::Citizen, Value::Id(require_person(store, person)?)));
    }
    let id = new_id(now);
    let scope = crate::model::Scope::Unit(unit.to_owned());
    Ok((id, create_record(id, Kind::Visit, scope, sets)))
}

/// What `session add` records: a collective session at a passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWorkshop {
    /// The passage it was held at.
    pub passage: Uuid,
    /// Theme code.
    pub theme: String,
    /// How many attended.
    pub attendees: i64,
    /// Minutes it lasted.
    pub minutes: Option<i64>,
}

/// Build the action that records a collective session; returns its id and the action.
pub fn add_workshop(
    store: &dyn Store,
    now: WallMs,
    w: &NewWorkshop,
) -> Result<(Uuid, LocalAction), StoreError> {
    let passage = require_kind(store, w.passage, Kind::Passage)?;
    check_theme(&w.theme)?;
    let mut sets = vec![
        (Field::Passage, Value::Id(w.passage)),
        (Field::Theme, text(&w.theme)),
        (Field::Attendees, Value::Int(w.attendees)),
    ];
    if let Some(m) = w.minutes {
        sets.push((Field::Duration, Value::Int(m)));
    }
    let id = new_id(now);
    Ok((id, create_record(id, Kind::Workshop, passage.scope, sets)))
}
