//! The field workflows under replication (BRIEF §3 rules, second wave): persons created on
//! several laptops and merged (also in opposite directions, offline), walk-ins with a person
//! or anonymous, requests made at them, changed and deleted, collective sessions and their
//! attendees. Every replica gets every change in any order, batching and duplication; then
//! they hold the same state, resolve every person id to the same survivor, show the same
//! persons and requests, and a deleted request stays deleted.
//!
//! The actions are the ones the CLI and the UI call (`tournee_core::actions`), on real
//! `SqliteStore`s in memory.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::Index;
use tournee_core::actions::people::{add_person, merge_persons, surviving_person, NewPerson};
use tournee_core::actions::requests::{delete, set_request, RequestUpdate};
use tournee_core::actions::visits::{add_visit, add_workshop, NewVisit, NewWorkshop, VisitPlace};
use tournee_core::actions::{add_request, create_record, require_kind, set_fields, NewRequest};
use tournee_core::clock::WallMs;
use tournee_core::export;
use tournee_core::model::{Field, Kind, Level, Location, Outcome, Scope, Value};
use tournee_core::person::PersonEntry;
use tournee_core::record::Change;
use tournee_core::register::Actor;
use tournee_core::rng::SeededRng;
use tournee_core::store::{Identity, Store};
use tournee_core::views::{list_requests, person_history, search_persons, RequestFilter};
use tournee_store::SqliteStore;
use uuid::Uuid;

const UNIT: &str = "bus-80-1";
const NOW: WallMs = 1_790_000_000_000;
const OUTCOMES: [Outcome; 3] = [Outcome::Resolved, Outcome::Waiting, Outcome::Referred];

fn replica(device: Actor) -> SqliteStore {
    let mut store = SqliteStore::open_in_memory().expect("an in-memory store opens");
    store
        .set_identity(&Identity {
            device,
            unit: UNIT.to_owned(),
            territory: "80".to_owned(),
        })
        .expect("a new store takes an identity");
    store
}

/// A user action on replica `at` (ids picked among what that replica holds), or a sync.
#[derive(Debug, Clone)]
enum Act {
    Person {
        at: usize,
    },
    Merge {
        at: usize,
        keep: Index,
        other: Index,
    },
    Visit {
        at: usize,
        person: Option<Index>,
    },
    Request {
        at: usize,
        visit: Index,
    },
    Outcome {
        at: usize,
        request: Index,
        outcome: usize,
    },
    Delete {
        at: usize,
        request: Index,
    },
    Workshop {
        at: usize,
        attendees: i64,
    },
    Attendees {
        at: usize,
        workshop: Index,
        attendees: i64,
    },
    Sync {
        from: usize,
        to: usize,
    },
}

fn act() -> impl Strategy<Value = Act> {
    let at = 0usize..3;
    prop_oneof![
        3 => at.clone().prop_map(|at| Act::Person { at }),
        2 => (at.clone(), any::<Index>(), any::<Index>())
            .prop_map(|(at, keep, other)| Act::Merge { at, keep, other }),
        3 => (at.clone(), prop::option::of(any::<Index>()))
            .prop_map(|(at, person)| Act::Visit { at, person }),
        3 => (at.clone(), any::<Index>()).prop_map(|(at, visit)| Act::Request { at, visit }),
        3 => (at.clone(), any::<Index>(), 0usize..3)
            .prop_map(|(at, request, outcome)| Act::Outcome { at, request, outcome }),
        1 => (at.clone(), any::<Index>()).prop_map(|(at, request)| Act::Delete { at, request }),
        1 => (at.clone(), 1i64..40).prop_map(|(at, attendees)| Act::Workshop { at, attendees }),
        2 => (at.clone(), any::<Index>(), 1i64..40)
            .prop_map(|(at, workshop, attendees)| Act::Attendees { at, workshop, attendees }),
        3 => (at.clone(), at).prop_map(|(from, to)| Act::Sync { from, to }),
    ]
}

/// Replicas, every change made, which changes each holds, and the ids of what was created.
struct Mesh {
    stores: Vec<SqliteStore>,
    log: Vec<Change>,
    known: Vec<BTreeSet<usize>>,
    persons: Vec<Uuid>,
    visits: Vec<Uuid>,
    requests: Vec<Uuid>,
    workshops: Vec<Uuid>,
    deleted: BTreeSet<Uuid>,
    passage: Uuid,
}

impl Mesh {
    /// `n` replicas holding the same passage of the round (as the server's plan brings it).
    fn new(n: usize) -> Self {
        let mut stores: Vec<SqliteStore> = (0..n)
            .map(|i| replica(Actor::try_from(i + 1).expect("few")))
            .collect();
        let passage = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
        let stop = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
        let day_start = i64::try_from(NOW / 1000).expect("fits");
        let stop_edit = create_record(
            stop,
            Kind::Stop,
            Scope::Territory("80".into()),
            vec![
                (Field::Commune, Value::Text("80021".into())),
                (Field::Label, Value::Text("Place".into())),
            ],
        );
        let plan = create_record(
            passage,
            Kind::Passage,
            Scope::Unit(UNIT.into()),
            vec![
                (Field::Round, Value::Id(Uuid::from_u128(3))),
                (Field::Stop, Value::Id(stop)),
                (Field::Date, Value::Text("2026-09-21".into())),
                (Field::PlannedStart, Value::Int(day_start)),
                (Field::PlannedEnd, Value::Int(day_start + 3600)),
                (Field::Status, Value::Text("planifie".into())),
            ],
        );
        let mut seed = stores[0].write_local(NOW, &stop_edit).expect("stop");
        seed.extend(stores[0].write_local(NOW, &plan).expect("passage"));
        for s in &mut stores[1..] {
            s.apply_remote(&seed, None).expect("the plan arrives");
        }
        let all: BTreeSet<usize> = (0..seed.len()).collect();
        Self {
            stores,
            known: vec![all; n],
            log: seed,
            persons: Vec::new(),
            visits: Vec::new(),
            requests: Vec::new(),
            workshops: Vec::new(),
            deleted: BTreeSet::new(),
            passage,
        }
    }

    fn local(&mut self, at: usize, now: WallMs, action: &tournee_core::store::LocalAction) {
        let changes = self.stores[at]
            .write_local(now, action)
            .expect("a valid local action is recorded");
        for c in changes {
            self.known[at].insert(self.log.len());
            self.log.push(c);
        }
    }

    /// One of `ids` that replica `at` holds, alive.
    fn pick(&self, at: usize, ids: &[Uuid], pick: Index) -> Option<Uuid> {
        let held: Vec<Uuid> = ids
            .iter()
            .copied()
            .filter(|id| {
                self.stores[at]
                    .record(*id)
                    .expect("reads")
                    .is_some_and(|r| !r.is_deleted())
            })
            .collect();
        (!held.is_empty()).then(|| held[pick.index(held.len())])
    }

    fn run(&mut self, acts: &[Act], rng: &mut SeededRng) {
        let n = self.stores.len();
        for (i, act) in acts.iter().enumerate() {
            let now = NOW + 1_000 * (i as u64 + 1);
            let secs = i64::try_from(now / 1000).expect("fits");
            match act.clone() {
                Act::Person { at } => {
                    let at = at % n;
                    let p = NewPerson {
                        name: format!("Usager {}", self.persons.len()),
                        phone: (i % 2 == 0).then(|| format!("06 00 00 00 {:02}", i % 100)),
                        ..NewPerson::default()
                    };
                    let (id, action) = add_person(now, UNIT, &p).expect("person");
                    self.persons.push(id);
                    self.local(at, now, &action);
                }
                Act::Merge { at, keep, other } => {
                    let at = at % n;
                    let (Some(k), Some(o)) = (
                        self.pick(at, &self.persons, keep),
                        self.pick(at, &self.persons, other),
                    ) else {
                        continue;
                    };
                    let s = &self.stores[at];
                    if surviving_person(s, k).expect("reads")
                        == surviving_person(s, o).expect("reads")
                    {
                        continue;
                    }
                    let action = merge_persons(s, k, o).expect("a merge of two persons");
                    self.local(at, now, &action);
                    let s = &self.stores[at];
                    assert_eq!(
                        surviving_person(s, o).expect("reads"),
                        surviving_person(s, k).expect("reads"),
                        "after a merge both ids stand for one person"
                    );
                }
                Act::Visit { at, person } => {
                    let at = at % n;
                    let person = person.and_then(|p| self.pick(at, &self.persons, p));
                    let v = NewVisit {
                        place: if i % 3 == 0 {
                            VisitPlace::Passage(self.passage)
                        } else {
                            VisitPlace::Commune {
                                commune: "80001".into(),
                                location: Location::Home,
                            }
                        },
                        person,
                        at: secs,
                    };
                    let (id, action) = add_visit(&self.stores[at], now, UNIT, &v).expect("visit");
                    self.visits.push(id);
                    self.local(at, now, &action);
                }
                Act::Request { at, visit } => {
                    let at = at % n;
                    let Some(visit) = self.pick(at, &self.visits, visit) else {
                        continue;
                    };
                    let r = NewRequest {
                        appointment: None,
                        passage: None,
                        visit: Some(visit),
                        partner: "caf".into(),
                        theme: "logement".into(),
                        level: Level::Support,
                        outcome: Outcome::Waiting,
                        minutes: Some(15),
                    };
                    let (id, action) = add_request(&self.stores[at], now, &r).expect("request");
                    self.requests.push(id);
                    self.local(at, now, &action);
                }
                Act::Outcome {
                    at,
                    request,
                    outcome,
                } => {
                    let at = at % n;
                    let Some(id) = self.pick(at, &self.requests, request) else {
                        continue;
                    };
                    let rec = require_kind(&self.stores[at], id, Kind::Request).expect("held");
                    let u = RequestUpdate {
                        outcome: Some(OUTCOMES[outcome]),
                        ..RequestUpdate::default()
                    };
                    self.local(at, now, &set_request(&rec, &u).expect("an edit"));
                    let rec = require_kind(&self.stores[at], id, Kind::Request).expect("held");
                    assert_eq!(rec.text(Field::Outcome), Some(OUTCOMES[outcome].code()));
                }
                Act::Delete { at, request } => {
                    let at = at % n;
                    let Some(id) = self.pick(at, &self.requests, request) else {
                        continue;
                    };
                    let rec = require_kind(&self.stores[at], id, Kind::Request).expect("held");
                    self.local(at, now, &delete(&rec));
                    self.deleted.insert(id);
                }
                Act::Workshop { at, attendees } => {
                    let at = at % n;
                    let w = NewWorkshop {
                        passage: self.passage,
                        theme: "numerique".into(),
                        attendees,
                        minutes: Some(60),
                    };
                    let (id, action) = add_workshop(&self.stores[at], now, &w).expect("session");
                    self.workshops.push(id);
                    self.local(at, now, &action);
                }
                Act::Attendees {
                    at,
                    workshop,
                    attendees,
                } => {
                    let at = at % n;
                    let Some(id) = self.pick(at, &self.workshops, workshop) else {
                        continue;
                    };
                    let rec = require_kind(&self.stores[at], id, Kind::Workshop).expect("held");
                    let action = set_fields(&rec, vec![(Field::Attendees, Value::Int(attendees))]);
                    self.local(at, now, &action);
                }
                Act::Sync { from, to } => {
                    let (from, to) = (from % n, to % n);
                    let mut theirs: Vec<usize> = self.known[from].iter().copied().collect();
                    rng.shuffle(&mut theirs);
                    let batch: Vec<Change> = theirs.iter().map(|i| self.log[*i].clone()).collect();
                    self.stores[to]
                        .apply_remote(&batch, None)
                        .expect("honest changes apply");
                    self.known[to].extend(theirs);
                }
            }
        }
    }

    /// Every replica gets every change: shuffled, some twice, in random batch sizes.
    fn deliver_everything(&mut self, rng: &mut SeededRng) {
        for store in &mut self.stores {
            let mut all = self.log.clone();
            for c in &self.log {
                if rng.below(3) == 0 {
                    all.push(c.clone());
                }
            }
            rng.shuffle(&mut all);
            for batch in all.chunks(1 + rng.below(8) as usize) {
                store
                    .apply_remote(batch, None)
                    .expect("honest changes apply");
            }
        }
    }
}

fn digest(store: &SqliteStore) -> String {
    export::digest(store, None).expect("digest")
}

/// What a person sees: the persons a search for "usager" shows, the requests listed, the
/// pending ones, each person id's survivor, the attendees of each session.
type Seen = (Vec<Uuid>, Vec<Uuid>, Vec<Uuid>, Vec<Uuid>, Vec<Option<i64>>);

fn seen(m: &Mesh, store: &SqliteStore) -> Seen {
    let shown = search_persons(store, "usager", 50).expect("search");
    let requests = list_requests(store, RequestFilter::default()).expect("list");
    let pending = list_requests(
        store,
        RequestFilter {
            pending: true,
            ..RequestFilter::default()
        },
    )
    .expect("list");
    let ids = |rows: Vec<tournee_core::views::RequestRow>| {
        let mut v: Vec<Uuid> = rows.into_iter().map(|r| r.request.id).collect();
        v.sort();
        v
    };
    let mut shown: Vec<Uuid> = shown.into_iter().map(|p| p.id).collect();
    shown.sort();
    (
        shown,
        ids(requests),
        ids(pending),
        m.persons
            .iter()
            .map(|p| surviving_person(store, *p).expect("resolves"))
            .collect(),
        m.workshops
            .iter()
            .map(|w| {
                store
                    .record(*w)
                    .expect("reads")
                    .and_then(|r| r.int(Field::Attendees))
            })
            .collect(),
    )
}

fn check_converged(m: &Mesh) -> Result<(), TestCaseError> {
    let first = &m.stores[0];
    let want = seen(m, first);
    for store in &m.stores[1..] {
        prop_assert_eq!(digest(store), digest(first));
        prop_assert_eq!(&seen(m, store), &want);
    }
    // The person index a search reads says what the records say, on every replica.
    for store in &m.stores {
        let folded: Vec<PersonEntry> = store
            .records_of_kind(Kind::Citizen)
            .expect("persons")
            .iter()
            .map(PersonEntry::of)
            .collect();
        prop_assert_eq!(store.person_entries().expect("index"), folded);
        // A person's history, read through the links index, holds what a scan of every
        // walk-in and request finds for the person's ids.
        let all = list_requests(store, RequestFilter::default()).expect("list");
        let visits = store.records_of_kind(Kind::Visit).expect("visits");
        for root in &want.0 {
            let h = person_history(store, *root)
                .expect("history")
                .expect("a person");
            let mut want: Vec<Uuid> = all
                .iter()
                .filter(|r| r.person == Some(*root))
                .map(|r| r.request.id)
                .collect();
            want.sort();
            let mut got: Vec<Uuid> = h.requests.iter().map(|r| r.request.id).collect();
            got.sort();
            prop_assert_eq!(got, want);
            let mut want: Vec<Uuid> = visits
                .iter()
                .filter(|v| {
                    v.id_ref(Field::Citizen)
                        .is_some_and(|c| surviving_person(store, c).expect("resolves") == *root)
                })
                .map(|v| v.id)
                .collect();
            want.sort();
            let mut got: Vec<Uuid> = h.visits.iter().map(|v| v.id).collect();
            got.sort();
            prop_assert_eq!(got, want);
        }
    }
    let (shown, requests, _, survivors, _) = &want;
    // Each person shown is a survivor, and every survivor is shown (fewer than 50 here).
    let roots: BTreeSet<Uuid> = survivors.iter().copied().collect();
    prop_assert_eq!(shown.iter().copied().collect::<BTreeSet<_>>(), roots);
    // A deleted request stays deleted whatever was edited concurrently.
    for id in requests {
        prop_assert!(!m.deleted.contains(id), "deleted request {} listed", id);
    }
    prop_assert_eq!(requests.len(), m.requests.len() - m.deleted.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn field_workflows_converge_on_every_replica(
        acts in prop::collection::vec(act(), 1..50),
        seed in any::<u64>(),
    ) {
        let mut rng = SeededRng::new(seed);
        let mut mesh = Mesh::new(3);
        mesh.run(&acts, &mut rng);
        mesh.deliver_everything(&mut rng);
        check_converged(&mesh)?;
    }
}

/// Two laptops merge the same two persons offline in opposite directions: once they have
/// each other's merge, both ids stand for the same one person everywhere, and a search shows
/// exactly one of them.
#[test]
fn opposite_merges_made_offline_leave_one_person_everywhere() {
    let mut rng = SeededRng::new(7);
    let mut mesh = Mesh::new(2);
    mesh.run(
        &[
            Act::Person { at: 0 },
            Act::Person { at: 0 },
            Act::Sync { from: 0, to: 1 },
        ],
        &mut rng,
    );
    let (a, b) = (mesh.persons[0], mesh.persons[1]);
    let merge_a_into_b = merge_persons(&mesh.stores[0], b, a).expect("merge");
    mesh.local(0, NOW + 10_000, &merge_a_into_b);
    let merge_b_into_a = merge_persons(&mesh.stores[1], a, b).expect("merge");
    mesh.local(1, NOW + 10_000, &merge_b_into_a);
    let visit = NewVisit {
        place: VisitPlace::Passage(mesh.passage),
        person: Some(b),
        at: i64::try_from(NOW / 1000).expect("fits"),
    };
    let (_, action) = add_visit(&mesh.stores[1], NOW + 11_000, UNIT, &visit).expect("visit");
    mesh.local(1, NOW + 11_000, &action);
    mesh.deliver_everything(&mut rng);
    for store in &mesh.stores {
        let shown = search_persons(store, "usager", 50).expect("search");
        assert_eq!(shown.len(), 1, "one person shown");
        let root = surviving_person(store, a).expect("resolves");
        assert_eq!(surviving_person(store, b).expect("resolves"), root);
        assert_eq!(shown[0].id, root);
        assert_eq!(root, a.min(b), "the cycle's smallest id survives");
    }
    check_converged(&mesh).expect("converged");
}
