//! User actions in domain terms — record an appointment, change or cancel it, add and follow
//! up a request, mark a passage, record persons, walk-ins and collective sessions, resolve a
//! conflict — turned into `LocalAction`s for `Store::write_local`.
//!
//! Shared by the agent and the server so both validate the same way. Ids are UUIDv7 made from
//! the injected time; nothing here reads the clock or touches storage except to look records up.

use chrono::NaiveDate;
use serde::Serialize;
use uuid::{NoContext, Timestamp, Uuid};

use crate::clock::WallMs;
use crate::model::{
    check_appointment_start, check_commune, AppointmentStatus, CancelCause, Field, Kind, Level,
    Location, ModelError, Outcome, PassageStatus, Scope, Value,
};
use crate::record::Record;
use crate::store::{LocalAction, RecordEdit, Store, StoreError};
use crate::time::parse_time;

pub mod people;
pub mod requests;
pub mod visits;

/// A new UUIDv7 for a record created at `now`.
pub fn new_id(now: WallMs) -> Uuid {
    let secs = now / 1000;
    let nanos = u32::try_from((now % 1000) * 1_000_000).unwrap_or(0);
    Uuid::new_v7(Timestamp::from_unix(NoContext, secs, nanos))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// What `appointment add` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAppointment {
    /// Start, Unix seconds.
    pub start: i64,
    /// Duration in minutes.
    pub duration: i64,
    /// Where.
    pub location: Location,
    /// INSEE code of the commune.
    pub commune: String,
    /// Citizen's display name, if given (creates a minimised citizen record).
    pub citizen: Option<String>,
    /// A person already recorded (instead of `citizen`).
    pub person: Option<Uuid>,
    /// Passage the appointment belongs to.
    pub passage: Option<Uuid>,
    /// Note.
    pub note: Option<String>,
}

/// Build the action that creates an appointment (and its citizen) in `unit`.
/// Returns the appointment id and the action.
pub fn add_appointment(
    store: &dyn Store,
    now: WallMs,
    unit: &str,
    a: &NewAppointment,
) -> Result<(Uuid, LocalAction), StoreError> {
    if let Some(p) = a.passage {
        require_kind(store, p, Kind::Passage)?;
    }
    let scope = Scope::Unit(unit.to_owned());
    let id = new_id(now);
    let mut edits = Vec::with_capacity(2);
    let mut sets = vec![
        (Field::Location, text(a.location.code())),
        (Field::Commune, text(&a.commune)),
        (Field::Start, Value::Int(a.start)),
        (Field::Duration, Value::Int(a.duration)),
        (Field::Status, text(AppointmentStatus::Unknown.code())),
    ];
    if let Some(person) = a.person {
        sets.push((
            Field::Citizen,
            Value::Id(people::require_person(store, person)?),
        ));
    } else if let Some(name) = &a.citizen {
        let citizen = new_id(now);
        edits.push(RecordEdit {
            id: citizen,
            kind: Kind::Citizen,
            scope: scope.clone(),
            create: true,
            sets: vec![
                (Field::Name, text(name)),
                (Field::Commune, text(&a.commune)),
            ],
        });
        sets.push((Field::Citizen, Value::Id(citizen)));
    }
    if let Some(p) = a.passage {
        sets.push((Field::Passage, Value::Id(p)));
    }
    if let Some(n) = &a.note {
        sets.push((Field::Note, text(n)));
    }
    edits.push(RecordEdit {
        id,
        kind: Kind::Appointment,
        scope,
        create: true,
        sets,
    });
    Ok((id, LocalAction { edits }))
}

/// The record id a person typed: a whole UUID, or a unique prefix of at least
/// `ID_PREFIX_MIN` hex digits (as git's short ids). `field` names the option in errors.
pub fn find_id(store: &dyn Store, field: &'static str, typed: &str) -> Result<Uuid, StoreError> {
    let typed = typed.trim();
    if let Ok(id) = Uuid::parse_str(typed) {
        return Ok(id);
    }
    let digits = typed.chars().filter(|c| *c != '-').count();
    let bad = |expected| ModelError::BadFormat {
        field,
        value: typed.to_owned(),
        expected,
    };
    if digits < crate::limits::ID_PREFIX_MIN
        || !typed.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
    {
        return Err(bad("record id: a UUID or its first 8 characters or more").into());
    }
    match store.ids_with_prefix(typed, 2)?.as_slice() {
        [one] => Ok(*one),
        [] => Err(
            bad("id of a record this laptop holds (no record begins with these characters)").into(),
        ),
        _ => Err(bad("longer id prefix (several records begin with these characters)").into()),
    }
}

/// Load a record and check its kind.
pub fn require_kind(store: &dyn Store, id: Uuid, kind: Kind) -> Result<Record, StoreError> {
    match store.record(id)? {
        Some(r) if r.kind == kind && !r.is_deleted() => Ok(r),
        _ => Err(StoreError::NotFound { kind, id }),
    }
}

/// Build an action that sets fields of an existing record.
pub fn set_fields(record: &Record, sets: Vec<(Field, Value)>) -> LocalAction {
    LocalAction {
        edits: vec![RecordEdit {
            id: record.id,
            kind: record.kind,
            scope: record.scope.clone(),
            create: false,
            sets,
        }],
    }
}

/// Build an action that creates one record with `sets`, the twin of `set_fields`.
pub fn create_record(id: Uuid, kind: Kind, scope: Scope, sets: Vec<(Field, Value)>) -> LocalAction {
    LocalAction {
        edits: vec![RecordEdit {
            id,
            kind,
            scope,
            create: true,
            sets,
        }],
    }
}

/// What `request add` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// The appointment it was made at, or…
    pub appointment: Option<Uuid>,
    /// …the passage (a walk-in at a bus stop), or…
    pub passage: Option<Uuid>,
    /// …the walk-in it was made at.
    pub visit: Option<Uuid>,
    /// Partner code.
    pub partner: String,
    /// Theme code.
    pub theme: String,
    /// Level.
    pub level: Level,
    /// Outcome.
    pub outcome: Outcome,
    /// Minutes spent.
    pub minutes: Option<i64>,
}

/// Build the action that records a request at a record `store` holds.
pub fn add_request(
    store: &dyn Store,
    now: WallMs,
    r: &NewRequest,
) -> Result<(Uuid, LocalAction), StoreError> {
    let (_, link, kind) = request_link(r)?;
    let parent = require_kind(store, link, kind)?;
    add_request_in(parent.scope, now, r)
}

/// Build the action that records a request in `scope` at a record built in the same action
/// (a walk-in and its requests, submitted as one form, committed at once).
pub fn add_request_in(
    scope: Scope,
    now: WallMs,
    r: &NewRequest,
) -> Result<(Uuid, LocalAction), StoreError> {
    let (link_field, link, _) = request_link(r)?;
    let id = new_id(now);
    let mut sets = vec![
        (link_field, Value::Id(link)),
        (Field::Partner, text(&r.partner)),
        (Field::Theme, text(&r.theme)),
        (Field::Level, text(r.level.code())),
        (Field::Outcome, text(r.outcome.code())),
    ];
    if let Some(m) = r.minutes {
        sets.push((Field::Duration, Value::Int(m)));
    }
    Ok((id, create_record(id, Kind::Request, scope, sets)))
}

/// The one record a request hangs on: its field, id and kind.
fn request_link(r: &NewRequest) -> Result<(Field, Uuid, Kind), StoreError> {
    Ok(match (r.appointment, r.passage, r.visit) {
        (Some(a), None, None) => (Field::Appointment, a, Kind::Appointment),
        (None, Some(p), None) => (Field::Passage, p, Kind::Passage),
        (None, None, Some(v)) => (Field::Visit, v, Kind::Visit),
        _ => {
            return Err(ModelError::BadFormat {
                field: "request",
                value: "appointment/passage/visit".into(),
                expected: "link to exactly one of --appointment, --passage or --visit",
            }
            .into())
        }
    })
}

/// What `passage set` records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PassageUpdate {
    /// New status.
    pub status: Option<PassageStatus>,
    /// Cancellation cause.
    pub cause: Option<CancelCause>,
    /// Actual start, Unix seconds.
    pub actual_start: Option<i64>,
    /// Actual end, Unix seconds.
    pub actual_end: Option<i64>,
}

/// Refuse an actual time (Unix seconds) that is not on the passage's date in Paris: a bus
/// that came on the 12th did not arrive on the 13th; such a time is a typo in the date.
fn check_on_passage_day(
    passage: &Record,
    field: &'static str,
    t: Option<i64>,
) -> Result<(), StoreError> {
    let (Some(t), Some(date)) = (t, passage.text(Field::Date)) else {
        return Ok(());
    };
    let Ok(date) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
        return Ok(());
    };
    if crate::time::paris_date(t) == Some(date) {
        return Ok(());
    }
    Err(ModelError::ActualOffDate {
        field,
        value: crate::time::show_local(t),
        date,
    }
    .into())
}

/// Build the action that records a passage's actuals, checking they make sense together.
pub fn set_passage(passage: &Record, u: &PassageUpdate) -> Result<LocalAction, StoreError> {
    let status = u.status.or_else(|| {
        passage
            .text(Field::Status)
            .and_then(|s| PassageStatus::parse(s).ok())
    });
    match (status, u.cause) {
        (Some(PassageStatus::Cancelled), None) if passage.text(Field::Cause).is_none() => {
            return Err(ModelError::BadFormat {
                field: "cause",
                value: String::new(),
                expected: "cause for a cancelled passage: panne, meteo, absence_conseiller, autre",
            }
            .into())
        }
        (Some(s), Some(_)) if s != PassageStatus::Cancelled => {
            return Err(ModelError::BadFormat {
                field: "cause",
                value: s.code().into(),
                expected: "status annule (a cause only goes with a cancelled passage)",
            }
            .into())
        }
        _ => {}
    }
    check_on_passage_day(passage, "actual-start", u.actual_start)?;
    check_on_passage_day(passage, "actual-end", u.actual_end)?;
    let start = u.actual_start.or_else(|| passage.int(Field::ActualStart));
    let end = u.actual_end.or_else(|| passage.int(Field::ActualEnd));
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            return Err(ModelError::ActualEndNotAfterStart {
                start: crate::time::show_local(s),
                end: crate::time::show_local(e),
            }
            .into());
        }
    }
    let mut sets = Vec::new();
    if let Some(s) = u.status {
        sets.push((Field::Status, text(s.code())));
        if s != PassageStatus::Cancelled && passage.text(Field::Cause).is_some() {
            sets.push((Field::Cause, Value::Null));
        }
    }
    if let Some(c) = u.cause {
        sets.push((Field::Cause, text(c.code())));
    }
    if let Some(s) = u.actual_start {
        sets.push((Field::ActualStart, Value::Int(s)));
    }
    if let Some(e) = u.actual_end {
        sets.push((Field::ActualEnd, Value::Int(e)));
    }
    if sets.is_empty() {
        return Err(nothing_to_change(
            "--status, --cause, --actual-start or --actual-end",
        ));
    }
    Ok(set_fields(passage, sets))
}

/// The error for an edit command given nothing to change.
pub fn nothing_to_change(options: &'static str) -> StoreError {
    ModelError::BadFormat {
        field: "options",
        value: String::new(),
        expected: options,
    }
    .into()
}

/// Parse a value typed by a person for a field (used by `resolve`), to the field's stored type.
pub fn parse_field_value(kind: Kind, field: Field, input: &str) -> Result<Value, ModelError> {
    kind.check_field(field)?;
    let int = |what: &'static str| {
        input
            .trim()
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| ModelError::BadFormat {
                field: field.code(),
                value: input.to_owned(),
                expected: what,
            })
    };
    Ok(match field {
        f if f.is_time() => Value::Int(parse_time(field.code(), input)?),
        Field::Deleted => match input {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => {
                return Err(ModelError::NotInList {
                    field: "deleted",
                    value: input.to_owned(),
                    allowed: "true, false".into(),
                })
            }
        },
        Field::Duration | Field::EveryWeeks | Field::BirthYear | Field::Attendees => {
            int("whole number")?
        }
        Field::Round
        | Field::Stop
        | Field::Citizen
        | Field::Appointment
        | Field::Passage
        | Field::Visit
        | Field::MergedInto => {
            if input.is_empty() {
                Value::Null
            } else {
                Value::Id(Uuid::parse_str(input).map_err(|_| ModelError::BadFormat {
                    field: field.code(),
                    value: input.to_owned(),
                    expected: "record id (UUID)",
                })?)
            }
        }
        _ => Value::Text(input.to_owned()),
    })
}

/// Why `resolve_conflict` writes nothing.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The field holds one value: nothing to resolve (use the kind's own change).
    #[error("{kind} {id} has no conflict on '{field}'; use the kind's `set` command to change it")]
    NoConflict {
        /// The record's kind.
        kind: Kind,
        /// The record.
        id: Uuid,
        /// The field named.
        field: Field,
    },
    /// The field's name or the value typed is not valid.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Build the action that resolves a conflict on `field` (its code) of `record` with the value
/// typed: one write that replaces every concurrent value. `resolve` and the UI both use it.
pub fn resolve_conflict(
    record: &Record,
    field: &str,
    input: &str,
) -> Result<LocalAction, ResolveError> {
    let field = record.kind.parse_field(field)?;
    if !record.conflicts().contains(&field) {
        return Err(ResolveError::NoConflict {
            kind: record.kind,
            id: record.id,
            field,
        });
    }
    let value = parse_field_value(record.kind, field, input)?;
    Ok(set_fields(record, vec![(field, value)]))
}

/// Check the parts of a new appointment that do not need the store, with clear errors.
pub fn check_new_appointment(now: WallMs, a: &NewAppointment) -> Result<(), ModelError> {
    check_commune("commune", &a.commune)?;
    check_appointment_start("start", a.start, now)?;
    crate::model::check_duration("duration", a.duration)
}

/// One conflicting field of a record, for `conflicts` listings.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictView {
    /// The record id.
    pub record: Uuid,
    /// Its kind.
    pub kind: &'static str,
    /// The field.
    pub field: &'static str,
    /// The competing values, in display order (last shown).
    pub values: Vec<SiblingView>,
}

/// One sibling value, for people and JSON.
#[derive(Debug, Clone, Serialize)]
pub struct SiblingView {
    /// The value as JSON.
    pub value: serde_json::Value,
    /// The device that wrote it.
    pub device: u32,
    /// Its HLC.
    pub hlc: u64,
}

/// The conflicts of a record, field by field.
pub fn conflict_views(record: &Record) -> Vec<ConflictView> {
    record
        .conflicts()
        .into_iter()
        .map(|f| ConflictView {
            record: record.id,
            kind: record.kind.code(),
            field: f.code(),
            values: record
                .shown_siblings(f)
                .into_iter()
                .map(|s| SiblingView {
                    value: s.value.to_json(),
                    device: s.dot.actor,
                    hlc: s.hlc.0,
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use crate::record::Change;

    fn passage_on(date: &str) -> Record {
        let mut p = Record::new(
            Uuid::now_v7(),
            Kind::Passage,
            Scope::Unit("bus-80-1".into()),
        );
        let reg = crate::register::Register::<Value>::new();
        p.apply_change(Change {
            record: p.id,
            kind: p.kind,
            scope: p.scope.clone(),
            field: Field::Date,
            write: reg.prepare(0, Hlc(1), Value::Text(date.into())),
        })
        .expect("date");
        p
    }

    fn actuals(start: &str, end: &str) -> PassageUpdate {
        PassageUpdate {
            status: None,
            cause: None,
            actual_start: Some(parse_time("actual-start", start).expect("start")),
            actual_end: Some(parse_time("actual-end", end).expect("end")),
        }
    }

    #[test]
    fn actual_times_are_on_the_passage_day_in_paris_and_end_after_start() {
        let p = passage_on("2027-03-16");
        assert!(set_passage(&p, &actuals("2027-03-16T09:05", "2027-03-16T12:10")).is_ok());
        // 23:30 UTC on the 15th is 00:30 on the 16th in Paris: the passage's day.
        assert!(set_passage(&p, &actuals("2027-03-15T23:30:00Z", "2027-03-16T12:10")).is_ok());
        let e = set_passage(&p, &actuals("2027-03-17T09:05", "2027-03-17T12:10"))
            .expect_err("next day");
        let msg = e.to_string();
        assert!(
            msg.contains("actual-start") && msg.contains("2027-03-16"),
            "{msg}"
        );
        let e = set_passage(&p, &actuals("2027-03-16T09:05", "2027-03-17T00:10"))
            .expect_err("ends the next day");
        assert!(e.to_string().contains("actual-end"), "{e}");
        let e = set_passage(&p, &actuals("2027-03-16T12:10", "2027-03-16T09:05"))
            .expect_err("backwards");
        assert!(e.to_string().contains("doit venir après"), "{e}");
    }
}
