//! Read-side views of the laptop's store that both the CLI and the local UI show: persons
//! found by a search, a person's history, requests with where and when they were made, a
//! week of appointments and walk-ins.
//!
//! Pure reads through the `Store` trait: nothing here writes, formats for a screen or knows
//! HTTP. Merged persons are resolved here (through `merged_into`), so every screen counts a
//! person once.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate};
use uuid::Uuid;

use crate::limits::PERSON_SEARCH_RESULTS_MAX;
use crate::model::{Field, Kind, Outcome, Value};
use crate::person::{surviving, Match, PersonEntry, Query};
use crate::record::Record;
use crate::store::{Store, StoreError};
use crate::time::paris_date;

/// Every person record's `merged_into` target, to resolve ids without a store read each.
#[derive(Debug, Default)]
pub struct Merges(HashMap<Uuid, Uuid>);

impl Merges {
    /// Merges given as (merged person, its `merged_into` target) pairs.
    pub fn new(targets: HashMap<Uuid, Uuid>) -> Self {
        Self(targets)
    }

    /// Read the merges among `persons`.
    pub fn of(persons: &[PersonEntry]) -> Self {
        Self(
            persons
                .iter()
                .filter_map(|p| p.merged_into.map(|t| (p.id, t)))
                .collect(),
        )
    }

    /// The person `id` stands for now.
    pub fn survivor(&self, id: Uuid) -> Uuid {
        surviving(id, |p| self.0.get(&p).copied())
    }

    /// The ids that stand for `root` (itself first, then the ids merged into it, in order).
    pub fn members(&self, root: Uuid) -> Vec<Uuid> {
        let mut merged: Vec<Uuid> = self
            .0
            .keys()
            .copied()
            .filter(|p| *p != root && self.survivor(*p) == root)
            .collect();
        merged.sort();
        std::iter::once(root).chain(merged).collect()
    }
}

/// Live records of `kind` naming one of `persons` (appointments, walk-ins).
fn naming(store: &dyn Store, kind: Kind, persons: &[Uuid]) -> Result<Vec<Record>, StoreError> {
    let mut out = Vec::new();
    for p in persons {
        out.extend(store.records_where(kind, Field::Citizen, &Value::Id(*p))?);
    }
    Ok(out)
}

/// The field of a request naming a parent of `kind`.
fn parent_field(kind: Kind) -> Option<Field> {
    match kind {
        Kind::Appointment => Some(Field::Appointment),
        Kind::Visit => Some(Field::Visit),
        Kind::Passage => Some(Field::Passage),
        _ => None,
    }
}

/// The requests `filter` may keep, read through the store's links where it narrows them
/// (pending, one person, one day); every other filter is checked on each afterwards. The
/// parents read on the way are kept in `parents`.
fn request_candidates(
    store: &dyn Store,
    filter: RequestFilter,
    person: Option<&[Uuid]>,
    parents: &mut HashMap<Uuid, Option<Parent>>,
) -> Result<Vec<Record>, StoreError> {
    if filter.pending {
        let waiting = Value::Text(Outcome::Waiting.code().to_owned());
        return store.records_where(Kind::Request, Field::Outcome, &waiting);
    }
    let hung_on = match (person, filter.day) {
        (Some(persons), _) => {
            let mut v = naming(store, Kind::Appointment, persons)?;
            v.extend(naming(store, Kind::Visit, persons)?);
            v
        }
        (None, Some(day)) => {
            let mut v = Vec::new();
            for kind in [Kind::Appointment, Kind::Visit, Kind::Passage] {
                v.extend(store.records_on(kind, day)?);
            }
            v
        }
        (None, None) => return store.records_of_kind(Kind::Request),
    };
    let mut out = Vec::new();
    for parent in hung_on {
        if let Some(field) = parent_field(parent.kind) {
            out.extend(store.records_where(Kind::Request, field, &Value::Id(parent.id))?);
        }
        parents.insert(parent.id, Some(Parent::of(&parent)));
    }
    out.sort_by_key(|r| r.id);
    out.dedup_by_key(|r| r.id);
    Ok(out)
}

/// Live persons matching `typed`, those matched by name first, then in name order; at most
/// `limit` (capped by `PERSON_SEARCH_RESULTS_MAX`). A person merged into another is not shown.
pub fn search_persons(
    store: &dyn Store,
    typed: &str,
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let Some(query) = Query::new(typed) else {
        return Ok(Vec::new());
    };
    let persons = store.person_entries()?;
    // A person merged into another is not shown; two merges made offline in opposite
    // directions leave a cycle whose survivor (`Merges::survivor`) is shown.
    let merges = Merges::of(&persons);
    let mut hits: Vec<(Match, PersonEntry)> = persons
        .iter()
        .filter(|p| merges.survivor(p.id) == p.id)
        .filter_map(|p| Some((query.matches_entry(p)?, p)))
        .map(|(how, p)| (how, p.clone()))
        .collect();
    hits.sort_by(|a, b| (a.0, &a.1.name, a.1.id).cmp(&(b.0, &b.1.name, b.1.id)));
    hits.truncate(limit.min(PERSON_SEARCH_RESULTS_MAX));
    let mut found = Vec::with_capacity(hits.len());
    for (_, p) in hits {
        // The entry and the record are written in the same transaction; a person erased
        // between the two reads is left out.
        if let Some(record) = store.record(p.id)?.filter(|r| !r.is_deleted()) {
            found.push(record);
        }
    }
    Ok(found)
}

/// Where and when a request was made, and for whom.
#[derive(Debug, Clone)]
pub struct RequestRow {
    /// The request.
    pub request: Record,
    /// Its appointment, walk-in or passage, when this laptop holds it.
    pub parent: Option<Parent>,
    /// The day it was made (its parent's day).
    pub day: Option<NaiveDate>,
    /// The person (surviving merges), when the parent names one.
    pub person: Option<Uuid>,
}

/// What a request's list keeps of its parent: which record, its day and the person it names
/// (as written, before merges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    /// Appointment, walk-in or passage.
    pub kind: Kind,
    /// Its id.
    pub id: Uuid,
    /// Its day (`record_day`).
    pub day: Option<NaiveDate>,
    /// The person it names.
    pub citizen: Option<Uuid>,
}

impl Parent {
    /// The summary of `record`.
    pub fn of(record: &Record) -> Self {
        Self {
            kind: record.kind,
            id: record.id,
            day: record_day(record),
            citizen: record.id_ref(Field::Citizen),
        }
    }
}

/// Which requests `list_requests` returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only those waiting on a partner (`en_attente_operateur`).
    pub pending: bool,
    /// Only this person's (any id merged into it counts).
    pub person: Option<Uuid>,
    /// Only those made on this day.
    pub day: Option<NaiveDate>,
}

/// The names of the partners a passage says are present, in the order written (an unknown
/// code is shown as it is).
pub fn passage_partners(p: &Record) -> Vec<String> {
    let refdata = crate::refdata::RefData::get();
    p.text(Field::Partners)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            refdata
                .partner(c)
                .map_or_else(|| c.to_owned(), |x| x.label.clone())
        })
        .collect()
}

/// The day of an appointment, a walk-in or a passage.
pub fn record_day(r: &Record) -> Option<NaiveDate> {
    match r.kind {
        Kind::Appointment | Kind::Visit => r.int(Field::Start).and_then(paris_date),
        Kind::Passage => r
            .text(Field::Date)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
        _ => None,
    }
}

/// The record a request hangs on.
pub fn request_parent(r: &Record) -> Option<Uuid> {
    [Field::Appointment, Field::Visit, Field::Passage]
        .into_iter()
        .find_map(|f| r.id_ref(f))
}

/// Live requests passing `filter`, newest day first.
pub fn list_requests(
    store: &dyn Store,
    filter: RequestFilter,
) -> Result<Vec<RequestRow>, StoreError> {
    let merges = Merges::of(&store.person_entries()?);
    requests_with(store, filter, &merges)
}

/// `list_requests` with the persons' merges already read.
fn requests_with(
    store: &dyn Store,
    filter: RequestFilter,
    merges: &Merges,
) -> Result<Vec<RequestRow>, StoreError> {
    let wanted = filter.person.map(|p| merges.survivor(p));
    let members = wanted.map(|w| merges.members(w));
    let mut parents: HashMap<Uuid, Option<Parent>> = HashMap::new();
    let mut out = Vec::new();
    for request in request_candidates(store, filter, members.as_deref(), &mut parents)? {
        if filter.pending && request.text(Field::Outcome) != Some(Outcome::Waiting.code()) {
            continue;
        }
        let parent = match request_parent(&request) {
            Some(id) => match parents.get(&id) {
                Some(p) => *p,
                None => {
                    let p = store
                        .record(id)?
                        .filter(|r| !r.is_deleted())
                        .map(|r| Parent::of(&r));
                    parents.insert(id, p);
                    p
                }
            },
            None => None,
        };
        let day = parent.and_then(|p| p.day);
        let person = parent.and_then(|p| p.citizen).map(|c| merges.survivor(c));
        if filter.day.is_some_and(|d| day != Some(d)) || wanted.is_some_and(|w| person != Some(w)) {
            continue;
        }
        out.push(RequestRow {
            request,
            parent,
            day,
            person,
        });
    }
    out.sort_by(|a, b| (b.day, a.request.id).cmp(&(a.day, b.request.id)));
    Ok(out)
}

/// A person and what was done with them, every merged duplicate included.
#[derive(Debug, Clone)]
pub struct History {
    /// The surviving person record.
    pub person: Record,
    /// Ids merged into it (not counting itself).
    pub merged: Vec<Uuid>,
    /// Appointments naming the person, by start.
    pub appointments: Vec<Record>,
    /// Walk-ins with the person, by start.
    pub visits: Vec<Record>,
    /// Requests made at those, newest first.
    pub requests: Vec<RequestRow>,
}

/// The history of the person `id` now stands for; `None` if this laptop holds no such person.
pub fn person_history(store: &dyn Store, id: Uuid) -> Result<Option<History>, StoreError> {
    let persons = store.person_entries()?;
    let merges = Merges::of(&persons);
    let root = merges.survivor(id);
    let Some(person) = store
        .record(root)?
        .filter(|r| r.kind == Kind::Citizen && !r.is_deleted())
    else {
        return Ok(None);
    };
    let ids = merges.members(root);
    let by_start = |mut v: Vec<Record>| {
        v.sort_by_key(|r| (r.int(Field::Start), r.id));
        v
    };
    let appointments = by_start(naming(store, Kind::Appointment, &ids)?);
    let visits = by_start(naming(store, Kind::Visit, &ids)?);
    let requests = requests_with(
        store,
        RequestFilter {
            person: Some(root),
            ..RequestFilter::default()
        },
        &merges,
    )?;
    let merged = ids[1..].to_vec();
    Ok(Some(History {
        person,
        merged,
        appointments,
        visits,
        requests,
    }))
}

/// The Monday of `day`'s week.
pub fn week_start(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// A week, Monday to Sunday: each day's passages, appointments and walk-ins, by time.
#[derive(Debug, Clone, Default)]
pub struct Week {
    /// Monday.
    pub monday: NaiveDate,
    /// Day → (passages, appointments, walk-ins).
    pub days: BTreeMap<NaiveDate, DayRecords>,
}

/// One day's records.
#[derive(Debug, Clone, Default)]
pub struct DayRecords {
    /// Passages, by planned start.
    pub passages: Vec<Record>,
    /// Appointments, by start.
    pub appointments: Vec<Record>,
    /// Walk-ins, by time.
    pub visits: Vec<Record>,
}

/// The week holding `day`.
pub fn week(store: &dyn Store, day: NaiveDate) -> Result<Week, StoreError> {
    let monday = week_start(day);
    let sunday = monday + Duration::days(6);
    let mut days: BTreeMap<NaiveDate, DayRecords> = (0..7)
        .map(|i| (monday + Duration::days(i), DayRecords::default()))
        .collect();
    for (kind, pick) in [
        (
            Kind::Passage,
            (|d: &mut DayRecords| &mut d.passages) as fn(&mut DayRecords) -> &mut Vec<Record>,
        ),
        (Kind::Appointment, |d| &mut d.appointments),
        (Kind::Visit, |d| &mut d.visits),
    ] {
        for r in store.records_between(kind, monday, sunday)? {
            if let Some(d) = record_day(&r).and_then(|d| days.get_mut(&d)) {
                pick(d).push(r);
            }
        }
    }
    for d in days.values_mut() {
        d.passages
            .sort_by_key(|r| (r.int(Field::PlannedStart), r.id));
        d.appointments.sort_by_key(|r| (r.int(Field::Start), r.id));
        d.visits.sort_by_key(|r| (r.int(Field::Start), r.id));
    }
    Ok(Week { monday, days })
}
