//! The simulation's workload beyond the session nemesis: what laptops and the scheduler do to
//! every record kind, built with the domain's own actions (`tournee_core::actions`) and the
//! server's scheduling code (`tournee_server::scheduling`), so the checker judges real writes.
//!
//! Every id a created record gets is drawn from the seed (the actions draw UUIDv7s from the OS,
//! which would not replay). Nothing here checks outcomes: that is `oracles`. Deliberately left
//! out: round deletion, the daily horizon extension, conflict resolution, person edits beyond
//! phone and address.

use chrono::{NaiveDate, NaiveTime, Weekday};
use tournee_core::actions::visits::{self, NewVisit, NewWorkshop, VisitPlace};
use tournee_core::actions::{self, people, requests, NewAppointment, NewRequest, PassageUpdate};
use tournee_core::model::{
    CancelCause, Field, Kind, Level, Location, Outcome as RequestOutcome, PassageStatus, Scope,
    Value,
};
use tournee_core::record::Record;
use tournee_core::schedule::{encode_stops, RoundStop};
use tournee_core::store::{LocalAction, RecordEdit, Store, StoreError};
use tournee_core::time::paris_date;
use tournee_report::queries::Queries;
use tournee_server::registry::Unit;
use tournee_server::scheduling;
use uuid::Uuid;

use super::{is_refusal, Agent, Failure, World};

/// Weeks of passages the simulated scheduler keeps materialised ahead of today: two, so a
/// round has two to four passages and a seed stays quick.
const SIM_HORIZON_WEEKS: u32 = 2;

/// Most rounds one unit has in the simulation.
const SIM_ROUNDS_PER_UNIT_MAX: usize = 2;

/// Stops per round in the simulation.
const SIM_ROUND_STOPS: usize = 2;

/// The weekdays rounds visit.
const WEEKDAYS: [Weekday; 6] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
];

/// How requests end.
const OUTCOMES: [RequestOutcome; 4] = [
    RequestOutcome::Resolved,
    RequestOutcome::Referred,
    RequestOutcome::Waiting,
    RequestOutcome::Unresolved,
];

impl World {
    /// Tally what a committed action created or marked.
    pub(super) fn count_action(&mut self, action: &LocalAction) {
        for e in &action.edits {
            match (e.kind, e.create) {
                (Kind::Citizen, true) => self.counts.citizens += 1,
                (Kind::Visit, true) => self.counts.visits += 1,
                (Kind::Workshop, true) => self.counts.workshops += 1,
                (Kind::Citizen, false) if e.sets.iter().any(|(f, _)| *f == Field::MergedInto) => {
                    self.counts.merges += 1;
                }
                (Kind::Request, false) if e.sets.iter().any(|(f, _)| *f == Field::Deleted) => {
                    self.counts.requests_deleted += 1;
                }
                (Kind::Request, true) => self.counts.requests += 1,
                (Kind::Stop, true) => self.counts.stops += 1,
                (Kind::Passage, false) => self.counts.passages_marked += 1,
                _ => {}
            }
        }
    }

    /// Give the records an action creates ids drawn from the seed, and point the action's
    /// references at them: the domain actions draw UUIDv7s from the OS, which would not replay.
    fn seeded_ids(&mut self, mut action: LocalAction) -> LocalAction {
        let mut renamed = Vec::new();
        for e in action.edits.iter_mut().filter(|e| e.create) {
            let id = self.rng.uuid();
            renamed.push((e.id, id));
            e.id = id;
        }
        for e in &mut action.edits {
            for (_, v) in &mut e.sets {
                if let Value::Id(x) = v {
                    if let Some((_, new)) = renamed.iter().find(|(old, _)| old == x) {
                        *x = *new;
                    }
                }
            }
        }
        action
    }

    /// A laptop records an appointment (`appointment add`): at a stop, at home or by phone, in
    /// its territory, for a named citizen half of the time, at one of its passages sometimes.
    pub(super) fn new_appointment(
        &mut self,
        i: usize,
        now: u64,
    ) -> Result<LocalAction, StoreError> {
        let a = &self.agents[i];
        let communes = territory_communes(&a.auth.territory);
        let commune = communes[self.below(communes.len())];
        let location = [Location::Stop, Location::Home, Location::Phone][self.below(3)];
        let start = i64::try_from(now / 1000).unwrap_or(0)
            + 3600 * (1 + i64::try_from(self.rng.below(200)).unwrap_or(0));
        let citizen = self
            .rng
            .chance_per_mille(500)
            .then(|| format!("Citoyen {} de {}", self.step, self.agents[i].auth.actor));
        let n = self.agents[i].passages.len();
        let passage = if n > 0 && self.rng.chance_per_mille(250) {
            let k = self.below(n);
            Some(self.agents[i].passages[k])
        } else {
            None
        };
        let new = NewAppointment {
            start,
            duration: 30,
            location,
            commune: commune.into(),
            citizen,
            person: None,
            passage,
            note: None,
        };
        let unit = self.agents[i].auth.unit.clone();
        let (_, action) = actions::add_appointment(&self.agents[i].store, now, &unit, &new)?;
        Ok(self.seeded_ids(action))
    }

    /// A laptop moves an appointment, writes a note or records its outcome.
    pub(super) fn edit_appointment(
        &mut self,
        i: usize,
        now: u64,
        pick: u64,
    ) -> Result<Option<LocalAction>, StoreError> {
        let Some(record) = self.known_record(i, |a| &a.known, Kind::Appointment)? else {
            return Ok(None);
        };
        let (field, value) = match pick {
            6 => (
                Field::Start,
                Value::Int(
                    i64::try_from(now / 1000).unwrap_or(0)
                        + 3600 * i64::try_from(self.rng.below(300)).unwrap_or(0),
                ),
            ),
            7 => (
                Field::Note,
                Value::Text(format!(
                    "note {} by {}",
                    self.step, self.agents[i].auth.actor
                )),
            ),
            _ => {
                let statuses = ["unknown", "seen", "noshow", "excused"];
                let s = statuses[self.below(statuses.len())];
                (Field::Status, Value::Text(s.into()))
            }
        };
        Ok(Some(actions::set_fields(&record, vec![(field, value)])))
    }

    /// A laptop marks one of its unit's passages (`passage set`): held with its actual times,
    /// cancelled with a cause, or actual times alone. Never back to planned.
    pub(super) fn mark_passage(&mut self, i: usize) -> Result<Option<LocalAction>, StoreError> {
        let Some(p) = self.known_record(i, |a| &a.passages, Kind::Passage)? else {
            return Ok(None);
        };
        let planned = p.int(Field::PlannedStart).unwrap_or(0);
        let planned_end = p.int(Field::PlannedEnd).unwrap_or(planned + 3600);
        let late = 60 * i64::try_from(self.rng.below(30)).unwrap_or(0);
        let update = match self.rng.below(3) {
            0 => PassageUpdate {
                status: Some(PassageStatus::Held),
                actual_start: Some(planned + late),
                actual_end: Some(planned_end + late),
                ..PassageUpdate::default()
            },
            1 => {
                let causes = [
                    CancelCause::Breakdown,
                    CancelCause::Weather,
                    CancelCause::StaffAbsent,
                    CancelCause::Other,
                ];
                PassageUpdate {
                    status: Some(PassageStatus::Cancelled),
                    cause: Some(causes[self.below(causes.len())]),
                    ..PassageUpdate::default()
                }
            }
            _ => PassageUpdate {
                actual_start: Some(planned + late),
                ..PassageUpdate::default()
            },
        };
        actions::set_passage(&p, &update).map(Some)
    }

    /// A laptop records a request (`request add`) at one of its appointments, or at a passage
    /// it marked (a walk-in at the bus).
    pub(super) fn new_request(
        &mut self,
        i: usize,
        now: u64,
    ) -> Result<Option<LocalAction>, StoreError> {
        let mut parent = None;
        if self.rng.chance_per_mille(500) {
            if let Some(p) = self.known_record(i, |a| &a.passages, Kind::Passage)? {
                if p.is_marked_passage() {
                    parent = Some(p);
                }
            }
        }
        if parent.is_none() {
            parent = self.known_record(i, |a| &a.known, Kind::Appointment)?;
        }
        let Some(parent) = parent else {
            return Ok(None);
        };
        let on_passage = parent.kind == Kind::Passage;
        let partners = ["caf", "assurance_maladie", "assurance_retraite", "msa"];
        let themes = [
            "papiers_citoyennete",
            "famille_scolarite",
            "social_sante",
            "travail_formation",
        ];
        let request = NewRequest {
            appointment: (!on_passage).then_some(parent.id),
            passage: on_passage.then_some(parent.id),
            visit: None,
            partner: partners[self.below(partners.len())].into(),
            theme: themes[self.below(themes.len())].into(),
            level: [Level::Information, Level::Support, Level::Referral][self.below(3)],
            outcome: OUTCOMES[self.below(OUTCOMES.len())],
            minutes: Some(5 + i64::try_from(self.rng.below(40)).unwrap_or(0)),
        };
        let (_, action) = actions::add_request(&self.agents[i].store, now, &request)?;
        Ok(Some(self.seeded_ids(action)))
    }

    /// A laptop records how a request ended.
    pub(super) fn edit_request(&mut self, i: usize) -> Result<Option<LocalAction>, StoreError> {
        let Some(r) = self.known_record(i, |a| &a.requests, Kind::Request)? else {
            return Ok(None);
        };
        let outcome = OUTCOMES[self.below(OUTCOMES.len())];
        Ok(Some(actions::set_fields(
            &r,
            vec![(Field::Outcome, Value::Text(outcome.code().into()))],
        )))
    }

    /// A laptop completes a citizen's phone or address.
    pub(super) fn edit_citizen(&mut self, i: usize) -> Result<Option<LocalAction>, StoreError> {
        let Some(c) = self.known_record(i, |a| &a.citizens, Kind::Citizen)? else {
            return Ok(None);
        };
        let set = if self.rng.chance_per_mille(500) {
            (
                Field::Phone,
                Value::Text(format!("06 00 00 {:02} {:02}", self.step % 100, i)),
            )
        } else {
            (
                Field::Address,
                Value::Text(format!("{} rue de la Gare", self.step)),
            )
        };
        Ok(Some(actions::set_fields(&c, vec![set])))
    }

    /// A laptop receives a walk-in (`visit add`): at one of its marked passages or, for a
    /// home-visit team, by phone in a commune; with a person it knows or anonymous; with a
    /// request made there, in the same commit, half of the time.
    pub(super) fn new_visit(
        &mut self,
        i: usize,
        now: u64,
    ) -> Result<Option<LocalAction>, StoreError> {
        let passage = self
            .known_record(i, |a| &a.passages, Kind::Passage)?
            .filter(Record::is_marked_passage);
        let place = match passage {
            Some(p) => VisitPlace::Passage(p.id),
            None => {
                let communes = territory_communes(&self.agents[i].auth.territory);
                VisitPlace::Commune {
                    commune: communes[self.below(communes.len())].into(),
                    location: Location::Phone,
                }
            }
        };
        let person = if self.rng.chance_per_mille(500) {
            self.known_record(i, |a| &a.citizens, Kind::Citizen)?
                .map(|c| c.id)
        } else {
            None
        };
        let visit = NewVisit {
            place,
            person,
            at: i64::try_from(now / 1000).unwrap_or(0),
        };
        let unit = self.agents[i].auth.unit.clone();
        let (id, mut action) = visits::add_visit(&self.agents[i].store, now, &unit, &visit)?;
        if self.rng.chance_per_mille(500) {
            let request = NewRequest {
                appointment: None,
                passage: None,
                visit: Some(id),
                partner: "caf".into(),
                theme: "social_sante".into(),
                level: Level::Support,
                outcome: OUTCOMES[self.below(OUTCOMES.len())],
                minutes: Some(10),
            };
            let (_, r) = actions::add_request_in(Scope::Unit(unit), now, &request)?;
            action.edits.extend(r.edits);
        }
        Ok(Some(self.seeded_ids(action)))
    }

    /// A laptop merges two persons it knows (`person merge`), whichever survives.
    pub(super) fn merge_persons(&mut self, i: usize) -> Result<Option<LocalAction>, StoreError> {
        let keep = self.known_record(i, |a| &a.citizens, Kind::Citizen)?;
        let other = self.known_record(i, |a| &a.citizens, Kind::Citizen)?;
        let (Some(keep), Some(other)) = (keep, other) else {
            return Ok(None);
        };
        let store = &self.agents[i].store;
        if people::surviving_person(store, keep.id)? == people::surviving_person(store, other.id)? {
            return Ok(None);
        }
        people::merge_persons(store, keep.id, other.id).map(Some)
    }

    /// A laptop records a collective session at one of its marked passages (`session add`),
    /// or corrects the attendees of one it knows.
    pub(super) fn workshop(
        &mut self,
        i: usize,
        now: u64,
    ) -> Result<Option<LocalAction>, StoreError> {
        let attendees = 1 + i64::try_from(self.rng.below(15)).unwrap_or(0);
        if self.rng.chance_per_mille(400) {
            if let Some(w) = self.known_record(i, |a| &a.workshops, Kind::Workshop)? {
                return Ok(Some(actions::set_fields(
                    &w,
                    vec![(Field::Attendees, Value::Int(attendees))],
                )));
            }
        }
        let Some(p) = self
            .known_record(i, |a| &a.passages, Kind::Passage)?
            .filter(Record::is_marked_passage)
        else {
            return Ok(None);
        };
        let w = NewWorkshop {
            passage: p.id,
            theme: "travail_formation".into(),
            attendees,
            minutes: Some(60),
        };
        let (_, action) = visits::add_workshop(&self.agents[i].store, now, &w)?;
        Ok(Some(self.seeded_ids(action)))
    }

    /// A laptop deletes a request recorded by mistake (`request delete`: a tombstone).
    pub(super) fn delete_request(&mut self, i: usize) -> Result<Option<LocalAction>, StoreError> {
        Ok(self
            .known_record(i, |a| &a.requests, Kind::Request)?
            .map(|r| requests::delete(&r)))
    }

    /// One record of a kind from one of agent `i`'s lists, live in its store.
    fn known_record(
        &mut self,
        i: usize,
        list: fn(&Agent) -> &Vec<Uuid>,
        kind: Kind,
    ) -> Result<Option<Record>, StoreError> {
        let n = list(&self.agents[i]).len();
        if n == 0 {
            return Ok(None);
        }
        let k = self.below(n);
        let id = list(&self.agents[i])[k];
        Ok(self.agents[i]
            .store
            .record(id)?
            .filter(|r| r.kind == kind && !r.is_deleted()))
    }

    /// An index in `0..n` from the seed (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.rng.below(n as u64)).unwrap_or(0)
    }

    /// The server's day (Europe/Paris), from which the scheduler materialises passages.
    fn today(&self) -> NaiveDate {
        paris_date(i64::try_from(self.now() / 1000).unwrap_or(0)).unwrap_or(NaiveDate::MIN)
    }

    /// Write one scheduler action on the server.
    fn scheduler_write(&mut self, action: &LocalAction) -> Result<(), Failure> {
        let now = self.now();
        self.server
            .write_local(now, action)
            .map_err(|e| self.fail(format!("scheduler write: {e}")))?;
        self.count_action(action);
        Ok(())
    }

    /// The scheduler edits a note of an appointment of the unit, or plans a home visit for a
    /// citizen (`tournee-server appointment add`).
    pub(super) fn scheduler_appointment(&mut self, unit: &Unit) -> Result<(), Failure> {
        let now = self.now();
        let ids = self
            .server
            .ids_of_kind(Kind::Appointment, Some(&unit.id))
            .map_err(|e| self.fail(e.to_string()))?;
        let action = if ids.is_empty() || self.rng.chance_per_mille(300) {
            let communes = territory_communes(&unit.territory);
            let new = NewAppointment {
                start: i64::try_from(now / 1000).unwrap_or(0) + 86_400,
                duration: 45,
                location: Location::Home,
                commune: communes[self.below(communes.len())].into(),
                citizen: Some(format!("Usager {}", self.step)),
                person: None,
                passage: None,
                note: None,
            };
            let (_, action) = actions::add_appointment(&self.server, now, &unit.id, &new)
                .map_err(|e| self.fail(format!("scheduler appointment: {e}")))?;
            self.seeded_ids(action)
        } else {
            let id = ids[self.below(ids.len())];
            let Ok(Some(r)) = self.server.record(id) else {
                return Ok(());
            };
            actions::set_fields(
                &r,
                vec![(Field::Note, Value::Text(format!("scheduler {}", self.step)))],
            )
        };
        self.scheduler_write(&action)
    }

    /// Live stops of a territory on the server.
    fn live_stops(&self, territory: &str) -> Result<Vec<Uuid>, Failure> {
        let scope = [Scope::Territory(territory.to_owned())];
        let mut ids = Vec::new();
        self.server
            .for_each_record(Some(&scope), &mut |r| {
                if r.kind == Kind::Stop && !r.is_deleted() {
                    ids.push(r.id);
                }
                Ok(())
            })
            .map_err(|e| self.fail(e.to_string()))?;
        Ok(ids)
    }

    /// `tournee-server stop add`: a stop in a commune of the territory.
    pub(super) fn scheduler_add_stop(&mut self, territory: &str) -> Result<(), Failure> {
        let communes = territory_communes(territory);
        let commune = communes[self.below(communes.len())];
        let action = LocalAction {
            edits: vec![RecordEdit {
                id: self.rng.uuid(),
                kind: Kind::Stop,
                scope: Scope::Territory(territory.into()),
                create: true,
                sets: vec![
                    (Field::Commune, Value::Text(commune.into())),
                    (Field::Label, Value::Text(format!("Arrêt {}", self.step))),
                ],
            }],
        };
        self.scheduler_write(&action)
    }

    /// The scheduler renames a stop of the territory.
    pub(super) fn scheduler_edit_stop(&mut self, territory: &str) -> Result<(), Failure> {
        let stops = self.live_stops(territory)?;
        if stops.is_empty() {
            return self.scheduler_add_stop(territory);
        }
        let id = stops[self.below(stops.len())];
        let Ok(Some(stop)) = self.server.record(id) else {
            return Ok(());
        };
        let action = actions::set_fields(
            &stop,
            vec![(
                Field::Label,
                Value::Text(format!("Arrêt {} bis", self.step)),
            )],
        );
        self.scheduler_write(&action)
    }

    /// `tournee-server round add`: a round over two stops of the territory, weekly or
    /// fortnightly, its passages materialised by the server's own code. Round `k` of a unit
    /// keeps its own hours, so rounds never clash and the server's overlap check is not needed.
    pub(super) fn scheduler_add_round(&mut self, unit: &Unit) -> Result<(), Failure> {
        let now = self.now();
        let today = self.today();
        let rounds = self
            .server
            .ids_of_kind(Kind::Round, Some(&unit.id))
            .map_err(|e| self.fail(e.to_string()))?;
        if rounds.len() >= SIM_ROUNDS_PER_UNIT_MAX {
            return self.scheduler_edit_round(unit);
        }
        let stops = self.live_stops(&unit.territory)?;
        if stops.is_empty() {
            return self.scheduler_add_stop(&unit.territory);
        }
        let mut plan = Vec::new();
        for j in 0..SIM_ROUND_STOPS {
            let hour = u32::try_from(8 + 2 * (SIM_ROUND_STOPS * rounds.len() + j)).unwrap_or(8);
            plan.push(RoundStop {
                stop: stops[self.below(stops.len())],
                weekday: WEEKDAYS[self.below(WEEKDAYS.len())],
                start: NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or_default(),
                end: NaiveTime::from_hms_opt(hour + 1, 0, 0).unwrap_or_default(),
            });
        }
        let id = self.rng.uuid();
        let action = LocalAction {
            edits: vec![RecordEdit {
                id,
                kind: Kind::Round,
                scope: Scope::Unit(unit.id.clone()),
                create: true,
                sets: vec![
                    (
                        Field::Name,
                        Value::Text(format!("Tournée {}", rounds.len())),
                    ),
                    (Field::Stops, Value::Text(encode_stops(&plan))),
                    (
                        Field::EveryWeeks,
                        Value::Int(1 + i64::from(self.rng.chance_per_mille(500))),
                    ),
                    (Field::ValidFrom, Value::Text(today.to_string())),
                    (Field::ValidTo, Value::Null),
                ],
            }],
        };
        self.scheduler_write(&action)?;
        let days_off = scheduling::DaysOff::legal(self.units.iter());
        let window = scheduling::Window {
            today,
            horizon_weeks: SIM_HORIZON_WEEKS,
            days_off: &days_off,
        };
        let r = scheduling::materialise(&mut self.server, now, &window, id)
            .map_err(|e| self.fail(format!("materialise: {e:#}")))?;
        self.trace(format_args!(
            "scheduler plans round {id} of {}: {r:?}",
            unit.id
        ));
        Ok(())
    }

    /// `tournee-server round set`: one stop of a round moves to another weekday or stop, or the
    /// round changes rhythm; the server regenerates its passages, tombstoning the unmarked
    /// ones no longer in the plan (possibly marked meanwhile on a laptop it has not heard from).
    pub(super) fn scheduler_edit_round(&mut self, unit: &Unit) -> Result<(), Failure> {
        let now = self.now();
        let today = self.today();
        let rounds = self
            .server
            .ids_of_kind(Kind::Round, Some(&unit.id))
            .map_err(|e| self.fail(e.to_string()))?;
        if rounds.is_empty() {
            return self.scheduler_add_round(unit);
        }
        let round = rounds[self.below(rounds.len())];
        let (mut spec, _) = scheduling::round_spec(&self.server, round)
            .map_err(|e| self.fail(format!("round spec: {e:#}")))?;
        let j = self.below(spec.stops.len());
        match self.rng.below(3) {
            0 => spec.stops[j].weekday = WEEKDAYS[self.below(WEEKDAYS.len())],
            1 => {
                let stops = self.live_stops(&unit.territory)?;
                spec.stops[j].stop = stops[self.below(stops.len())];
            }
            _ => spec.every_weeks = 3 - spec.every_weeks.clamp(1, 2),
        }
        let days_off = scheduling::DaysOff::legal(self.units.iter());
        let window = scheduling::Window {
            today,
            horizon_weeks: SIM_HORIZON_WEEKS,
            days_off: &days_off,
        };
        match scheduling::edit_round(&mut self.server, now, &window, unit, round, &spec) {
            Ok(r) => {
                self.counts.round_edits += 1;
                self.counts.passages_removed += r.removed as u64;
                self.trace(format_args!("scheduler edits round {round}: {r:?}"));
                Ok(())
            }
            Err(e) => match e.downcast_ref::<StoreError>() {
                Some(s) if !is_refusal(s) => Err(self.fail(format!("round set: {e:#}"))),
                _ => {
                    self.counts.scheduler_refused += 1;
                    self.trace(format_args!("scheduler's round edit refused: {e:#}"));
                    Ok(())
                }
            },
        }
    }

    /// Before the first step the scheduler lays out each territory's stops and one round per
    /// unit, so laptops have passages to mark from their first sync.
    pub(super) fn initial_plan(&mut self) -> Result<(), Failure> {
        for unit in self.units.clone() {
            for _ in 0..SIM_ROUND_STOPS {
                self.scheduler_add_stop(&unit.territory)?;
            }
            self.scheduler_add_round(&unit)?;
        }
        Ok(())
    }

    /// Refresh what each agent knows of its unit (created or received), so later edits touch
    /// shared records.
    pub(super) fn refresh_known(&mut self) -> Result<(), Failure> {
        for a in &mut self.agents {
            let scopes = a.auth.scopes();
            let (mut known, mut passages, mut citizens, mut requests) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut workshops = Vec::new();
            a.store
                .for_each_record(Some(&scopes[..1]), &mut |r| {
                    match r.kind {
                        Kind::Appointment => known.push(r.id),
                        Kind::Passage if !r.is_deleted() => passages.push(r.id),
                        Kind::Citizen => citizens.push(r.id),
                        Kind::Request => requests.push(r.id),
                        Kind::Workshop => workshops.push(r.id),
                        _ => {}
                    }
                    Ok(())
                })
                .map_err(|e| Failure {
                    seed: self.seed,
                    what: e.to_string(),
                })?;
            (a.known, a.passages, a.citizens, a.requests) = (known, passages, citizens, requests);
            a.workshops = workshops;
        }
        Ok(())
    }
}

/// Communes the simulation's records use in a territory.
fn territory_communes(territory: &str) -> &'static [&'static str] {
    match territory {
        "02" => &["02001", "02002", "02003"],
        _ => &["80001", "80016", "80021", "80253"],
    }
}
