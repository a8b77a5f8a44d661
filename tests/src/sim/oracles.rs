//! The checker's rules per record kind, stated at quiescence on the server and on every agent:
//! a passage a laptop marked stays live and marked whatever the scheduler tombstoned; a request
//! has exactly one live parent in its scope; an appointment's citizen and passage, a passage's
//! round and stop exist where it is; every record has the fields its kind is created with;
//! every stop of a territory reaches its laptops and no other.
//!
//! It reads stores and the ledger only. The server is held to every rule; a laptop may break
//! one with writes the server refused, which it keeps for review until `rejected undo` (an edit
//! of a record whose creation was refused, a marking of a passage a restore lost): those are
//! counted (`Counts::orphans_after_refusal`), and fail only with `strict_refusals`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::record::Record;
use tournee_core::store::Store;
use tournee_report::queries::Queries;
use tournee_store::SqliteStore;
use uuid::Uuid;

use super::{Failure, World};

impl World {
    /// The rules of each record kind, on the server and on every agent after convergence.
    /// Returns how many marked passages outlived a tombstone from the scheduler, and how many
    /// broken references were excused because the server refused a change they depend on.
    pub(super) fn check_kinds(&self) -> Result<(u64, u64), Failure> {
        // Records some refused change names. The server never holds a partial record or a
        // dangling reference (it refuses changes built on a record it does not hold); a laptop
        // keeps its refused writes for review, so one may hold such a record until
        // `rejected undo`, and `strict_refusals` fails on those too.
        let mut tainted = BTreeSet::new();
        if !self.strict_refusals {
            for a in &self.agents {
                for r in a.store.rejected().map_err(|e| self.fail(e.to_string()))? {
                    tainted.insert(r.change.record);
                }
            }
        }
        let server = self.records_of(&self.server)?;
        let mut excused = self.check_references("the server", &server, &BTreeSet::new())?;
        for (i, a) in self.agents.iter().enumerate() {
            // Isolation was checked: everything an agent holds is of its scopes.
            let mine = self.records_of(&a.store)?;
            excused += self.check_references(&format!("agent {i}"), &mine, &tainted)?;
            self.check_stops(i, &mine, &server)?;
        }
        Ok((self.check_marked_passages()?, excused))
    }

    /// Every record of a store, by id.
    fn records_of(&self, store: &SqliteStore) -> Result<BTreeMap<Uuid, Record>, Failure> {
        let mut records = BTreeMap::new();
        store
            .for_each_record(None, &mut |r| {
                records.insert(r.id, r);
                Ok(())
            })
            .map_err(|e| self.fail(e.to_string()))?;
        Ok(records)
    }

    /// The territory of a unit.
    fn territory_of(&self, scope: &Scope) -> Option<&str> {
        self.units
            .iter()
            .find(|u| *scope == Scope::Unit(u.id.clone()))
            .map(|u| u.territory.as_str())
    }

    /// Records are whole and references hold inside one store: every record has the fields
    /// its kind is created with; a request has exactly one parent (appointment, passage or
    /// walk-in), live in its scope; the citizen (every sibling) and passage of an appointment or
    /// a walk-in, the passage of a collective session and the person a person was merged into
    /// exist in its scope; a passage's round exists in its scope and its stop in its unit's territory.
    /// A breach by or towards a `tainted` record is counted, not failed.
    fn check_references(
        &self,
        who: &str,
        records: &BTreeMap<Uuid, Record>,
        tainted: &BTreeSet<Uuid>,
    ) -> Result<u64, Failure> {
        let mut excused = 0;
        for r in records.values() {
            if let Some(f) = required(r.kind).iter().find(|f| r.value(**f).is_none()) {
                if tainted.contains(&r.id) {
                    excused += 1;
                    continue;
                }
                return Err(self.fail(format!(
                    "{who}: {} {} has no {f}: {}",
                    r.kind,
                    r.id,
                    r.canonical_json()
                )));
            }
            // (field, kind it must name, scope it must be in, must be live)
            let mut rules = Vec::new();
            match r.kind {
                Kind::Request => {
                    let links: Vec<(Field, Kind)> = [
                        (Field::Appointment, Kind::Appointment),
                        (Field::Passage, Kind::Passage),
                        (Field::Visit, Kind::Visit),
                    ]
                    .into_iter()
                    .filter(|(f, _)| !referenced(r, *f).is_empty())
                    .collect();
                    if links.len() != 1 && tainted.contains(&r.id) {
                        excused += 1;
                        continue;
                    }
                    if links.len() != 1 {
                        return Err(self.fail(format!(
                            "{who}: request {} names {} parents: {}",
                            r.id,
                            links.len(),
                            r.canonical_json()
                        )));
                    }
                    rules.push((links[0].0, links[0].1, r.scope.clone(), true));
                }
                Kind::Appointment => {
                    rules.push((Field::Citizen, Kind::Citizen, r.scope.clone(), false));
                    rules.push((Field::Passage, Kind::Passage, r.scope.clone(), false));
                }
                Kind::Visit => {
                    rules.push((Field::Citizen, Kind::Citizen, r.scope.clone(), false));
                    rules.push((Field::Passage, Kind::Passage, r.scope.clone(), false));
                }
                Kind::Workshop => {
                    rules.push((Field::Passage, Kind::Passage, r.scope.clone(), false));
                }
                Kind::Citizen => {
                    rules.push((Field::MergedInto, Kind::Citizen, r.scope.clone(), false));
                }
                Kind::Passage => {
                    rules.push((Field::Round, Kind::Round, r.scope.clone(), false));
                    let Some(t) = self.territory_of(&r.scope) else {
                        return Err(self.fail(format!("{who}: passage {} of no unit", r.id)));
                    };
                    rules.push((Field::Stop, Kind::Stop, Scope::Territory(t.into()), false));
                }
                _ => {}
            }
            for (field, kind, scope, live) in rules {
                for id in referenced(r, field) {
                    let ok = records.get(&id).is_some_and(|p| {
                        p.kind == kind && p.scope == scope && !(live && p.is_deleted())
                    });
                    if !ok && (tainted.contains(&r.id) || tainted.contains(&id)) {
                        excused += 1;
                        continue;
                    }
                    if !ok {
                        let what = records
                            .get(&id)
                            .map_or("absent".to_owned(), |p| p.canonical_json().to_string());
                        return Err(self.fail(format!(
                            "{who}: {} {} names {field} {id}, which should be a{} {kind} of {}: {what}",
                            r.kind,
                            r.id,
                            if live { " live" } else { "" },
                            scope.key()
                        )));
                    }
                }
            }
        }
        Ok(excused)
    }

    /// Every stop of agent `i`'s territory reaches it, and no other.
    fn check_stops(
        &self,
        i: usize,
        mine: &BTreeMap<Uuid, Record>,
        server: &BTreeMap<Uuid, Record>,
    ) -> Result<(), Failure> {
        let a = &self.agents[i];
        let territory = Scope::Territory(a.auth.territory.clone());
        let stops_of = |records: &BTreeMap<Uuid, Record>| -> Vec<(Uuid, Scope)> {
            records
                .values()
                .filter(|r| r.kind == Kind::Stop)
                .map(|r| (r.id, r.scope.clone()))
                .collect()
        };
        let mine = stops_of(mine);
        let expected: Vec<_> = stops_of(server)
            .into_iter()
            .filter(|(_, s)| *s == territory)
            .collect();
        if mine != expected {
            return Err(self.fail(format!(
                "agent {i} (territory {}) holds stops {mine:?}, the server has {expected:?} there",
                a.auth.territory
            )));
        }
        Ok(())
    }

    /// A passage a laptop marked (and the server took) stays live and marked on the server and
    /// on every laptop of its unit, whatever the scheduler tombstoned concurrently. Returns how
    /// many marked passages carry a tombstone on the server (the cases the guard decided).
    fn check_marked_passages(&self) -> Result<u64, Failure> {
        let mut refused = Vec::new();
        for a in &self.agents {
            refused.push(a.store.rejected().map_err(|e| self.fail(e.to_string()))?);
        }
        let mut marked = BTreeSet::new();
        for (i, c) in &self.ledger {
            if c.kind == Kind::Passage && !super::kept_refused(&refused[*i], c) {
                marked.insert((c.record, c.scope.clone()));
            }
        }
        let mut over_tombstone = 0;
        for (id, scope) in &marked {
            let holders = std::iter::once(("the server".to_owned(), &self.server)).chain(
                self.agents
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.auth.scopes().contains(scope))
                    .map(|(i, a)| (format!("agent {i}"), &a.store)),
            );
            for (who, store) in holders {
                let p = store.record(*id).map_err(|e| self.fail(e.to_string()))?;
                let Some(p) = p.filter(|p| p.is_marked_passage() && !p.is_deleted()) else {
                    return Err(self.fail(format!(
                        "{who}: passage {id} marked on a laptop is hidden or unmarked"
                    )));
                };
                // And the day's listing shows it (`passage list`, the projection on the server).
                let day = p
                    .text(Field::Date)
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .ok_or_else(|| self.fail(format!("{who}: passage {id} without a date")))?;
                let listed = if who == "the server" {
                    let unit = match scope {
                        Scope::Unit(u) | Scope::Territory(u) => u.as_str(),
                    };
                    self.server.passages_between(Some(unit), day, day)
                } else {
                    store.records_on(Kind::Passage, day)
                }
                .map_err(|e| self.fail(e.to_string()))?;
                if !listed.iter().any(|l| l.id == *id) {
                    return Err(self.fail(format!(
                        "{who}: marked passage {id} is missing from the list of {day}"
                    )));
                }
                let tombstoned = p
                    .register(Field::Deleted)
                    .is_some_and(|reg| reg.siblings().iter().any(|s| s.value == Value::Bool(true)));
                if who == "the server" && tombstoned {
                    over_tombstone += 1;
                }
            }
        }
        Ok(over_tombstone)
    }
}

/// The fields every record of a kind has from its creation on (as the actions and the
/// scheduler write them).
fn required(kind: Kind) -> &'static [Field] {
    match kind {
        Kind::Stop => &[Field::Commune, Field::Label],
        Kind::Round => &[
            Field::Name,
            Field::Stops,
            Field::EveryWeeks,
            Field::ValidFrom,
        ],
        Kind::Passage => &[
            Field::Round,
            Field::Stop,
            Field::Date,
            Field::PlannedStart,
            Field::PlannedEnd,
            Field::Status,
        ],
        Kind::Citizen => &[Field::Name],
        Kind::Appointment => &[
            Field::Location,
            Field::Commune,
            Field::Start,
            Field::Duration,
            Field::Status,
        ],
        Kind::Request => &[Field::Partner, Field::Theme, Field::Level, Field::Outcome],
        Kind::Visit => &[Field::Location, Field::Commune, Field::Start],
        Kind::Workshop => &[Field::Passage, Field::Theme, Field::Attendees],
    }
}

/// The record ids any sibling of a field names.
fn referenced(r: &Record, field: Field) -> Vec<Uuid> {
    r.register(field).map_or_else(Vec::new, |reg| {
        reg.siblings()
            .iter()
            .filter_map(|s| s.value.as_id())
            .collect()
    })
}
