//! Persons (usagers) recorded, changed and merged: the actions `person add|set|merge` and the
//! forms of both UIs build.
//!
//! Minimised fields only (display name, phone, birth year, commune, an address for home
//! visits). A merge never rewrites the records naming the duplicate: it points the duplicate
//! at the survivor (`merged_into`), and every reader resolves through `person::surviving`,
//! so two laptops merging offline converge without touching appointments.

use uuid::Uuid;

use super::{create_record, new_id, require_kind, set_fields, text};
use crate::clock::WallMs;
use crate::model::{check_commune, Field, Kind, ModelError, Scope, Value};
use crate::person::surviving;
use crate::record::Record;
use crate::store::{LocalAction, Store, StoreError};

/// What `person add` records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewPerson {
    /// Display name ("Mme Martin", "Jean D.").
    pub name: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Birth year.
    pub birth_year: Option<i64>,
    /// INSEE code of the commune.
    pub commune: Option<String>,
    /// Address (home visits only).
    pub address: Option<String>,
}

/// Build the action that records a person in `unit`; returns the id and the action.
pub fn add_person(
    now: WallMs,
    unit: &str,
    p: &NewPerson,
) -> Result<(Uuid, LocalAction), StoreError> {
    if let Some(c) = &p.commune {
        check_commune("commune", c)?;
    }
    let id = new_id(now);
    let mut sets = vec![(Field::Name, text(&p.name))];
    if let Some(v) = &p.phone {
        sets.push((Field::Phone, text(v)));
    }
    if let Some(y) = p.birth_year {
        check_birth_year(y, now)?;
        sets.push((Field::BirthYear, Value::Int(y)));
    }
    if let Some(c) = &p.commune {
        sets.push((Field::Commune, text(c)));
    }
    if let Some(a) = &p.address {
        sets.push((Field::Address, text(a)));
    }
    let scope = Scope::Unit(unit.to_owned());
    Ok((id, create_record(id, Kind::Citizen, scope, sets)))
}

/// A birth year between 1900 and this year.
fn check_birth_year(year: i64, now: WallMs) -> Result<(), ModelError> {
    let this_year = crate::time::paris_date(i64::try_from(now / 1000).unwrap_or(0))
        .map_or(2100, |d| i64::from(chrono::Datelike::year(&d)));
    if (1900..=this_year).contains(&year) {
        Ok(())
    } else {
        Err(ModelError::BadFormat {
            field: "birth-year",
            value: year.to_string(),
            expected: "year between 1900 and this year",
        })
    }
}

/// What `person set` changes; `Some(None)` clears an optional field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New phone, or cleared.
    pub phone: Option<Option<String>>,
    /// New birth year, or cleared.
    pub birth_year: Option<Option<i64>>,
    /// New commune.
    pub commune: Option<String>,
    /// New address, or cleared.
    pub address: Option<Option<String>>,
}

/// Build the action that changes a person.
pub fn set_person(
    now: WallMs,
    person: &Record,
    u: &PersonUpdate,
) -> Result<LocalAction, StoreError> {
    let opt_text = |v: &Option<String>| v.as_deref().map_or(Value::Null, text);
    let mut sets = Vec::new();
    if let Some(n) = &u.name {
        sets.push((Field::Name, text(n)));
    }
    if let Some(p) = &u.phone {
        sets.push((Field::Phone, opt_text(p)));
    }
    if let Some(y) = &u.birth_year {
        if let Some(y) = y {
            check_birth_year(*y, now)?;
        }
        sets.push((Field::BirthYear, y.map_or(Value::Null, Value::Int)));
    }
    if let Some(c) = &u.commune {
        check_commune("commune", c)?;
        sets.push((Field::Commune, text(c)));
    }
    if let Some(a) = &u.address {
        sets.push((Field::Address, opt_text(a)));
    }
    if sets.is_empty() {
        return Err(super::nothing_to_change(
            "--name, --phone, --birth-year, --commune or --address",
        ));
    }
    Ok(set_fields(person, sets))
}

/// The record `id` stands for now, reading merges from `store` (a person merged into another
/// resolves to the survivor).
pub fn surviving_person(store: &dyn Store, id: Uuid) -> Result<Uuid, StoreError> {
    let mut failure = None;
    let found = surviving(id, |p| match store.record(p) {
        Ok(r) => r.and_then(|r| r.id_ref(Field::MergedInto)),
        Err(e) => {
            failure.get_or_insert(e);
            None
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

/// The live person a new appointment or walk-in names: the survivor of `id`'s merges.
pub fn require_person(store: &dyn Store, id: Uuid) -> Result<Uuid, StoreError> {
    let person = surviving_person(store, id)?;
    require_kind(store, person, Kind::Citizen)?;
    Ok(person)
}

/// Build the action that merges `other` into `keep`: `other` points at `keep` from now on,
/// and `keep` takes the fields it lacks from `other` (a phone, a birth year…), in one action.
pub fn merge_persons(
    store: &dyn Store,
    keep: Uuid,
    other: Uuid,
) -> Result<LocalAction, StoreError> {
    let keep = surviving_person(store, keep)?;
    let other_root = surviving_person(store, other)?;
    if keep == other_root {
        return Err(ModelError::SamePerson { id: keep }.into());
    }
    let keep_rec = require_kind(store, keep, Kind::Citizen)?;
    let other_rec = require_kind(store, other_root, Kind::Citizen)?;
    let fill: Vec<(Field, Value)> = [
        Field::Phone,
        Field::BirthYear,
        Field::Commune,
        Field::Address,
    ]
    .into_iter()
    .filter(|f| matches!(keep_rec.value(*f), None | Some(Value::Null)))
    .filter_map(|f| match other_rec.value(f) {
        Some(Value::Null) | None => None,
        Some(v) => Some((f, v.clone())),
    })
    .collect();
    let mut action = set_fields(&other_rec, vec![(Field::MergedInto, Value::Id(keep))]);
    if !fill.is_empty() {
        action.edits.extend(set_fields(&keep_rec, fill).edits);
    }
    Ok(action)
}
