//! Laws and scenarios of the CRDT layer (BRIEF §3: replication semantics).
//!
//! - `register_*`: property tests of the field register on simulated causal histories — merge is
//!   commutative, associative and idempotent; any delivery order of the writes, with duplicates,
//!   gives the same register; applying the writes equals merging the states; and the result
//!   matches an independent oracle (live values = writes no other write's context covers).
//! - `stores_*`: property test of whole replicas (`SqliteStore`s exchanging `Change`s): after
//!   every replica got every change, in any order, batching and duplication, they hold equal
//!   records and equal canonical exports/digests, and no write was lost.
//! - Scenarios: concurrent `start` edits and their resolution, a clock 7 days ahead, the
//!   forward-only appointment status, idempotent `apply_remote`, and `write_local` refusing an
//!   edit that misnames the stored record (it would emit changes every peer refuses).

use std::collections::{BTreeMap, BTreeSet};

use crdts::{CmRDT, CvRDT, VClock};
use proptest::prelude::*;
use proptest::sample::Index;
use sha2::{Digest, Sha256};
use tournee_core::clock::WallMs;
use tournee_core::export;
use tournee_core::hlc::Hlc;
use tournee_core::model::{Field, Kind, ModelError, Scope, Value};
use tournee_core::record::{Change, Record, RecordError};
use tournee_core::register::{Actor, Register, Write};
use tournee_core::rng::SeededRng;
use tournee_core::store::{ApplySummary, Identity, LocalAction, RecordEdit, Store, StoreError};
use tournee_store::SqliteStore;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// `items` in a random order, about a third of them delivered twice.
fn scrambled<T: Clone>(items: &[T], rng: &mut SeededRng) -> Vec<T> {
    let mut out: Vec<T> = items.to_vec();
    for item in items {
        if rng.below(3) == 0 {
            out.push(item.clone());
        }
    }
    rng.shuffle(&mut out);
    out
}

/// A sibling or a write as comparable data: ((actor, counter), hlc, value).
type Live<V> = ((Actor, u64), Hlc, V);

/// The independent oracle of a register that took exactly `ops`: the live values are the writes
/// whose dot no write's context covers, in display order (HLC, actor, counter); the clock is the
/// join of every context and dot.
fn oracle<V: Clone>(ops: &[Write<V>]) -> (Vec<Live<V>>, VClock<Actor>) {
    let covered = |w: &Write<V>| ops.iter().any(|o| o.ctx.get(&w.dot.actor) >= w.dot.counter);
    let mut live: Vec<Live<V>> = Vec::new();
    for w in ops.iter().filter(|w| !covered(w)) {
        let key = (w.dot.actor, w.dot.counter);
        if !live.iter().any(|l| l.0 == key) {
            live.push((key, w.hlc, w.value.clone()));
        }
    }
    live.sort_by_key(|l| (l.1, l.0 .0, l.0 .1));
    let mut clock = VClock::new();
    for w in ops {
        clock.merge(w.ctx.clone());
        clock.apply(w.dot);
    }
    (live, clock)
}

fn live_of<V: Clone + PartialEq>(reg: &Register<V>) -> Vec<Live<V>> {
    reg.siblings()
        .iter()
        .map(|s| ((s.dot.actor, s.dot.counter), s.hlc, s.value.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Register laws
// ---------------------------------------------------------------------------------------------

type Reg = Register<u32>;

/// One step of a simulated history of replicas of one field.
#[derive(Debug, Clone)]
enum Step {
    /// Replica `actor` writes `value` from its own current state.
    Write { actor: usize, hlc: u64, value: u32 },
    /// Replica `to` merges replica `from`'s whole state.
    Merge { from: usize, to: usize },
    /// Replica `to` receives one write made so far (any one: delivery is not causal).
    Deliver { op: Index, to: usize },
}

fn step() -> impl Strategy<Value = Step> {
    // Small HLC and value ranges, so equal HLCs (ties broken by device) and equal values occur.
    prop_oneof![
        4 => (0usize..5, 0u64..12, 0u32..6)
            .prop_map(|(actor, hlc, value)| Step::Write { actor, hlc, value }),
        2 => (0usize..5, 0usize..5).prop_map(|(from, to)| Step::Merge { from, to }),
        2 => (any::<Index>(), 0usize..5).prop_map(|(op, to)| Step::Deliver { op, to }),
    ]
}

/// Replica states at the end of a history, the writes each one took (directly or through a
/// merge), and every write made.
#[derive(Debug)]
struct History {
    replicas: Vec<Reg>,
    seen: Vec<BTreeSet<usize>>,
    ops: Vec<Write<u32>>,
}

fn actor_of(replica: usize) -> Actor {
    Actor::try_from(replica + 1).expect("a handful of replicas")
}

fn simulate(n: usize, steps: &[Step]) -> History {
    let mut h = History {
        replicas: vec![Reg::new(); n],
        seen: vec![BTreeSet::new(); n],
        ops: Vec::new(),
    };
    for step in steps {
        match *step {
            Step::Write { actor, hlc, value } => {
                let r = actor % n;
                let w = h.replicas[r].prepare(actor_of(r), Hlc(hlc), value);
                let changed = h.replicas[r]
                    .try_apply(w.clone())
                    .expect("a locally prepared write is valid");
                assert!(changed, "a fresh local write changes the register");
                assert_eq!(
                    live_of(&h.replicas[r]),
                    vec![((w.dot.actor, w.dot.counter), w.hlc, value)],
                    "a local write covers every sibling it saw"
                );
                h.seen[r].insert(h.ops.len());
                h.ops.push(w);
            }
            Step::Merge { from, to } => {
                let (from, to) = (from % n, to % n);
                let other = h.replicas[from].clone();
                h.replicas[to]
                    .validate_merge(&other)
                    .expect("honest states merge within the limits");
                h.replicas[to].merge(other);
                let theirs = h.seen[from].clone();
                h.seen[to].extend(theirs);
            }
            Step::Deliver { op, to } => {
                if h.ops.is_empty() {
                    continue;
                }
                let (i, to) = (op.index(h.ops.len()), to % n);
                h.replicas[to]
                    .try_apply(h.ops[i].clone())
                    .expect("an honest write is valid anywhere");
                h.seen[to].insert(i);
            }
        }
    }
    h
}

fn apply_all(start: &Reg, ops: impl IntoIterator<Item = Write<u32>>) -> Reg {
    let mut r = start.clone();
    for w in ops {
        r.try_apply(w).expect("an honest write is valid anywhere");
    }
    r
}

fn merged(a: &Reg, b: &Reg) -> Reg {
    a.validate_merge(b)
        .expect("honest states merge within the limits");
    let mut out = a.clone();
    out.merge(b.clone());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn register_merge_is_commutative_associative_idempotent(
        n in 2usize..=5,
        steps in prop::collection::vec(step(), 1..40),
    ) {
        let h = simulate(n, &steps);
        for a in &h.replicas {
            prop_assert_eq!(&merged(a, a), a, "idempotent");
            for b in &h.replicas {
                let ab = merged(a, b);
                prop_assert_eq!(&ab, &merged(b, a), "commutative");
                prop_assert_eq!(&merged(a, &ab), &ab, "absorbing");
                for c in &h.replicas {
                    prop_assert_eq!(
                        merged(&ab, c),
                        merged(a, &merged(b, c)),
                        "associative"
                    );
                }
            }
        }
    }

    #[test]
    fn register_converges_for_any_delivery_order_and_ops_equal_states(
        n in 2usize..=5,
        steps in prop::collection::vec(step(), 1..40),
        seed in any::<u64>(),
    ) {
        let h = simulate(n, &steps);
        let mut rng = SeededRng::new(seed);

        // Each replica's state is exactly what applying the writes it took gives, in any order.
        for (r, seen) in h.replicas.iter().zip(&h.seen) {
            let ops: Vec<Write<u32>> = seen.iter().map(|i| h.ops[*i].clone()).collect();
            prop_assert_eq!(r, &apply_all(&Reg::new(), ops.iter().cloned()));
            prop_assert_eq!(r, &apply_all(&Reg::new(), scrambled(&ops, &mut rng)));
        }

        // Every write, in a random order with duplicates, gives the in-order result...
        let in_order = apply_all(&Reg::new(), h.ops.iter().cloned());
        let shuffled = apply_all(&Reg::new(), scrambled(&h.ops, &mut rng));
        prop_assert_eq!(&shuffled, &in_order, "delivery order and duplicates do not matter");
        // ... which is also the join of all replica states (every write is in its writer's) ...
        let joined = h.replicas.iter().fold(Reg::new(), |acc, r| merged(&acc, r));
        prop_assert_eq!(&joined, &in_order, "applying the writes == merging the states");
        let joined_rev = h.replicas.iter().rev().fold(Reg::new(), |acc, r| merged(&acc, r));
        prop_assert_eq!(&joined_rev, &in_order);
        // ... and what any replica reaches by taking every write on top of its own state.
        for r in &h.replicas {
            prop_assert_eq!(&apply_all(r, scrambled(&h.ops, &mut rng)), &in_order);
        }

        // The result is the oracle's: no write lost, none resurrected, display order as promised.
        let (live, clock) = oracle(&h.ops);
        prop_assert_eq!(live_of(&in_order), live.clone());
        prop_assert_eq!(in_order.clock(), &clock);
        prop_assert_eq!(in_order.is_conflict(), live.len() > 1);
        prop_assert_eq!(in_order.value(), live.last().map(|l| &l.2));
    }
}

// ---------------------------------------------------------------------------------------------
// Store helpers
// ---------------------------------------------------------------------------------------------

/// Wall time of the simulations (November 2026), in ms.
const NOW: WallMs = 1_790_000_000_000;
const DAY_MS: WallMs = 86_400_000;
const UNIT: &str = "bus-80-1";

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

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Unix seconds `minutes` after the wall time `now`.
fn start_at(now: WallMs, minutes: i64) -> i64 {
    i64::try_from(now / 1000).expect("a 2026 time fits") + minutes * 60
}

fn appointment_id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

fn create(id: Uuid, start: i64) -> LocalAction {
    LocalAction {
        edits: vec![RecordEdit {
            id,
            kind: Kind::Appointment,
            scope: Scope::Unit(UNIT.to_owned()),
            create: true,
            sets: vec![
                (Field::Commune, text("80021")),
                (Field::Start, Value::Int(start)),
                (Field::Duration, Value::Int(30)),
                (Field::Location, text("arret")),
                (Field::Status, text("unknown")),
            ],
        }],
    }
}

fn set(id: Uuid, field: Field, value: Value) -> LocalAction {
    LocalAction {
        edits: vec![RecordEdit {
            id,
            kind: Kind::Appointment,
            scope: Scope::Unit(UNIT.to_owned()),
            create: false,
            sets: vec![(field, value)],
        }],
    }
}

fn write(store: &mut SqliteStore, now: WallMs, action: &LocalAction) -> Vec<Change> {
    store
        .write_local(now, action)
        .expect("a valid local action is recorded")
}

/// Apply a batch and check every change is counted exactly once.
fn deliver(store: &mut SqliteStore, changes: &[Change]) -> ApplySummary {
    let summary = store
        .apply_remote(changes, None)
        .expect("honest remote changes apply");
    assert_eq!(
        summary.applied + summary.already_seen,
        changes.len(),
        "every change of a batch is counted once"
    );
    summary
}

fn digest(store: &SqliteStore) -> String {
    export::digest(store, None).expect("the store exports")
}

fn export_bytes(store: &SqliteStore) -> Vec<u8> {
    let mut out = Vec::new();
    export::write_export(store, None, &mut out).expect("the store exports");
    out
}

fn all_records(store: &SqliteStore) -> Vec<Record> {
    let mut out = Vec::new();
    store
        .for_each_record(None, &mut |r| {
            out.push(r);
            Ok(())
        })
        .expect("the store reads");
    out
}

fn appt(store: &SqliteStore, id: Uuid) -> Record {
    store
        .record(id)
        .expect("the store reads")
        .expect("the appointment is there")
}

fn conflicted_ids(store: &SqliteStore) -> Vec<Uuid> {
    store
        .conflicted()
        .expect("the store reads")
        .iter()
        .map(|r| r.id)
        .collect()
}

fn sibling_values(record: &Record, field: Field) -> BTreeSet<String> {
    record
        .register(field)
        .map(|reg| {
            reg.siblings()
                .iter()
                .map(|s| s.value.to_json().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn covers(ctx: &VClock<Actor>, change: &Change) -> bool {
    ctx.get(&change.write.dot.actor) >= change.write.dot.counter
}

// ---------------------------------------------------------------------------------------------
// 2. Whole replicas converge
// ---------------------------------------------------------------------------------------------

const STATUSES: [&str; 5] = ["unknown", "seen", "excused", "revoked", "noshow"];
const NOTES: [&str; 4] = ["", "rappeler", "dossier CAF", "absent"];

/// A user action on replica `at`, or a partial sync between two replicas.
#[derive(Debug, Clone)]
enum Act {
    Create {
        at: usize,
        minutes: i64,
    },
    Start {
        at: usize,
        pick: Index,
        minutes: i64,
    },
    Status {
        at: usize,
        pick: Index,
        status: &'static str,
    },
    Note {
        at: usize,
        pick: Index,
        note: &'static str,
    },
    /// `to` receives every change `from` holds, in a random order.
    Sync {
        from: usize,
        to: usize,
    },
}

fn act() -> impl Strategy<Value = Act> {
    let minutes = -600i64..20_000;
    prop_oneof![
        1 => (0usize..4, minutes.clone()).prop_map(|(at, minutes)| Act::Create { at, minutes }),
        3 => (0usize..4, any::<Index>(), minutes)
            .prop_map(|(at, pick, minutes)| Act::Start { at, pick, minutes }),
        3 => (0usize..4, any::<Index>(), prop::sample::select(STATUSES.to_vec()))
            .prop_map(|(at, pick, status)| Act::Status { at, pick, status }),
        2 => (0usize..4, any::<Index>(), prop::sample::select(NOTES.to_vec()))
            .prop_map(|(at, pick, note)| Act::Note { at, pick, note }),
        3 => (0usize..4, 0usize..4).prop_map(|(from, to)| Act::Sync { from, to }),
    ]
}

/// N replicas, every change made (`log`), which of them each replica holds, and the ids created.
#[derive(Debug)]
struct Mesh {
    stores: Vec<SqliteStore>,
    log: Vec<Change>,
    known: Vec<BTreeSet<usize>>,
    ids: Vec<Uuid>,
}

impl Mesh {
    fn new(n: usize) -> Self {
        Self {
            stores: (0..n).map(|i| replica(actor_of(i))).collect(),
            log: Vec::new(),
            known: vec![BTreeSet::new(); n],
            ids: Vec::new(),
        }
    }

    fn record_local(&mut self, at: usize, changes: Vec<Change>) {
        for c in changes {
            self.known[at].insert(self.log.len());
            self.log.push(c);
        }
    }

    /// An appointment replica `at` holds, if any.
    fn pick(&self, at: usize, pick: Index) -> Option<Uuid> {
        let held: Vec<Uuid> = self
            .ids
            .iter()
            .copied()
            .filter(|id| {
                self.stores[at]
                    .record(*id)
                    .expect("the store reads")
                    .is_some()
            })
            .collect();
        (!held.is_empty()).then(|| held[pick.index(held.len())])
    }

    /// Set one field on replica `at` and check the write replaced every sibling it saw.
    fn set_field(&mut self, at: usize, now: WallMs, id: Uuid, field: Field, value: Value) {
        let changes = write(&mut self.stores[at], now, &set(id, field, value.clone()));
        let rec = appt(&self.stores[at], id);
        assert_eq!(rec.value(field), Some(&value));
        assert_eq!(
            rec.register(field).map(|r| r.siblings().len()),
            Some(1),
            "a local write covers every sibling"
        );
        assert!(!rec.conflicts().contains(&field));
        self.record_local(at, changes);
    }

    fn run(&mut self, acts: &[Act], rng: &mut SeededRng) {
        let n = self.stores.len();
        for (i, act) in acts.iter().enumerate() {
            let now = NOW + 1_000 * i as u64;
            match *act {
                Act::Create { at, minutes } => {
                    let at = at % n;
                    let id = appointment_id(self.ids.len() as u128 + 1);
                    self.ids.push(id);
                    let changes = write(
                        &mut self.stores[at],
                        now,
                        &create(id, start_at(now, minutes)),
                    );
                    assert_eq!(changes.len(), 5, "one change per field set");
                    self.record_local(at, changes);
                }
                Act::Start { at, pick, minutes } => {
                    let at = at % n;
                    if let Some(id) = self.pick(at, pick) {
                        self.set_field(
                            at,
                            now,
                            id,
                            Field::Start,
                            Value::Int(start_at(now, minutes)),
                        );
                    }
                }
                Act::Note { at, pick, note } => {
                    let at = at % n;
                    if let Some(id) = self.pick(at, pick) {
                        self.set_field(at, now, id, Field::Note, text(note));
                    }
                }
                Act::Status { at, pick, status } => {
                    let at = at % n;
                    let Some(id) = self.pick(at, pick) else {
                        continue;
                    };
                    let shown = appt(&self.stores[at], id)
                        .text(Field::Status)
                        .map(str::to_owned);
                    let backwards = status == "unknown" && shown.as_deref() != Some("unknown");
                    let action = set(id, Field::Status, text(status));
                    match self.stores[at].write_local(now, &action) {
                        Ok(changes) => {
                            assert!(!backwards, "{shown:?} -> unknown was accepted");
                            let rec = appt(&self.stores[at], id);
                            assert_eq!(rec.text(Field::Status), Some(status));
                            assert!(!rec.conflicts().contains(&Field::Status));
                            self.record_local(at, changes);
                        }
                        Err(StoreError::Model(ModelError::StatusBackwards { from })) => {
                            assert!(backwards, "{status} refused over {shown:?}");
                            assert_eq!(Some(from), shown);
                        }
                        Err(e) => panic!("unexpected refusal: {e}"),
                    }
                }
                Act::Sync { from, to } => {
                    let (from, to) = (from % n, to % n);
                    let theirs: Vec<usize> = self.known[from].iter().copied().collect();
                    let mut order = theirs.clone();
                    rng.shuffle(&mut order);
                    let batch: Vec<Change> = order.iter().map(|i| self.log[*i].clone()).collect();
                    let summary = deliver(&mut self.stores[to], &batch);
                    let held = theirs
                        .iter()
                        .filter(|i| self.known[to].contains(*i))
                        .count();
                    assert!(
                        summary.already_seen >= held,
                        "{held} changes held already, only {} counted as seen",
                        summary.already_seen
                    );
                    self.known[to].extend(theirs);
                }
            }
        }
    }

    /// Every replica gets every change: shuffled, some twice, in random batch sizes.
    fn deliver_everything(&mut self, rng: &mut SeededRng) {
        for store in &mut self.stores {
            let all = scrambled(&self.log, rng);
            let mut rest = all.as_slice();
            while !rest.is_empty() {
                let size = (1 + rng.below(8) as usize).min(rest.len());
                let (batch, tail) = rest.split_at(size);
                deliver(store, batch);
                rest = tail;
            }
        }
        for known in &mut self.known {
            known.extend(0..self.log.len());
        }
    }
}

/// The records that taking `log` in order into plain in-memory `Record`s gives.
fn model_of(log: &[Change]) -> Vec<Record> {
    let mut records: BTreeMap<Uuid, Record> = BTreeMap::new();
    for c in log {
        let rec = match records.entry(c.record) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(Record::for_change(c).expect("an honest change makes a record"))
            }
        };
        rec.apply_change(c.clone())
            .expect("an honest change applies");
    }
    records.into_values().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stores_converge_after_exchanging_every_change(
        n in 3usize..=4,
        acts in prop::collection::vec(act(), 1..60),
        seed in any::<u64>(),
    ) {
        let mut rng = SeededRng::new(seed);
        let mut mesh = Mesh::new(n);
        // Always at least one appointment, so the edits have something to work on.
        mesh.run(&[Act::Create { at: 0, minutes: 60 }], &mut rng);
        mesh.run(&acts, &mut rng);
        mesh.deliver_everything(&mut rng);

        // Equal state everywhere: records (with their causal clocks), export bytes, digest.
        let records = all_records(&mesh.stores[0]);
        let bytes = export_bytes(&mesh.stores[0]);
        let dig = digest(&mesh.stores[0]);
        prop_assert_eq!(&dig, &hex::encode(Sha256::digest(&bytes)), "digest = sha256(export)");
        for store in &mesh.stores[1..] {
            prop_assert_eq!(&all_records(store), &records);
            prop_assert_eq!(&export_bytes(store), &bytes);
            prop_assert_eq!(&digest(store), &dig);
        }
        // The stored state is what plain `Record`s make of the log (the store loses nothing).
        prop_assert_eq!(&records, &model_of(&mesh.log));
        prop_assert_eq!(records.len(), mesh.ids.len());

        // No write lost, none resurrected: each register holds exactly the oracle's live values.
        let mut groups: BTreeMap<(Uuid, Field), Vec<Write<Value>>> = BTreeMap::new();
        for c in &mesh.log {
            groups.entry((c.record, c.field)).or_default().push(c.write.clone());
        }
        for rec in &records {
            for (field, reg) in &rec.fields {
                let ops = groups.get(&(rec.id, *field)).cloned().unwrap_or_default();
                let (live, clock) = oracle(&ops);
                prop_assert_eq!(live_of(reg), live);
                prop_assert_eq!(reg.clock(), &clock);
            }
            prop_assert_eq!(rec.fields.len(), groups.range((rec.id, Field::Deleted)..).take_while(|((id, _), _)| *id == rec.id).count());
        }

        // The conflict index agrees with the records.
        let expected: Vec<Uuid> = records.iter().filter(|r| !r.conflicts().is_empty()).map(|r| r.id).collect();
        for store in &mesh.stores {
            prop_assert_eq!(&conflicted_ids(store), &expected);
            prop_assert_eq!(
                store.stats().expect("the store reads").conflicted_records,
                expected.len() as u64
            );
        }

        // Delivering everything again changes nothing.
        if !mesh.log.is_empty() {
            let again = deliver(&mut mesh.stores[0], &mesh.log);
            prop_assert_eq!(again.already_seen, mesh.log.len());
            prop_assert_eq!(digest(&mesh.stores[0]), dig);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Concurrent edits of `start`, then a resolution
// ---------------------------------------------------------------------------------------------

#[test]
fn concurrent_start_edits_are_kept_as_siblings_until_resolved() {
    let (mut a, mut b, mut c) = (replica(1), replica(2), replica(3));
    let id = appointment_id(1);
    let created = write(&mut a, NOW, &create(id, start_at(NOW, 60)));
    deliver(&mut b, &created);
    assert_eq!(digest(&a), digest(&b), "common state before the edits");

    let (start_a, start_b) = (start_at(NOW, 90), start_at(NOW, 120));
    let edit_a = write(
        &mut a,
        NOW + 1_000,
        &set(id, Field::Start, Value::Int(start_a)),
    );
    let edit_b = write(
        &mut b,
        NOW + 2_000,
        &set(id, Field::Start, Value::Int(start_b)),
    );
    assert_eq!(deliver(&mut a, &edit_b).applied, 1);
    assert_eq!(deliver(&mut b, &edit_a).applied, 1);

    let both: BTreeSet<String> = [start_a, start_b].iter().map(i64::to_string).collect();
    for store in [&a, &b] {
        let rec = appt(store, id);
        assert_eq!(rec.conflicts(), vec![Field::Start]);
        assert_eq!(
            rec.register(Field::Start).map(|r| r.siblings().len()),
            Some(2)
        );
        assert_eq!(sibling_values(&rec, Field::Start), both);
        assert_eq!(conflicted_ids(store), vec![id]);
    }
    assert_eq!(
        appt(&a, id).int(Field::Start),
        appt(&b, id).int(Field::Start),
        "same display winner on both"
    );
    assert_eq!(digest(&a), digest(&b));

    // B resolves by choosing A's value: the write covers both siblings.
    let resolved = write(
        &mut b,
        NOW + 3_000,
        &set(id, Field::Start, Value::Int(start_a)),
    );
    assert_eq!(resolved.len(), 1);
    assert!(covers(&resolved[0].write.ctx, &edit_a[0]));
    assert!(covers(&resolved[0].write.ctx, &edit_b[0]));
    assert_eq!(deliver(&mut a, &resolved).applied, 1);

    // C was offline throughout and gets everything in reverse, one change per batch.
    let mut everything: Vec<Change> = created
        .iter()
        .chain(&edit_a)
        .chain(&edit_b)
        .chain(&resolved)
        .cloned()
        .collect();
    everything.reverse();
    let superseded: usize = everything
        .iter()
        .map(|ch| deliver(&mut c, std::slice::from_ref(ch)).already_seen)
        .sum();
    assert_eq!(
        superseded, 3,
        "the created start and both edits are covered by the resolution"
    );

    for store in [&a, &b, &c] {
        let rec = appt(store, id);
        assert!(rec.conflicts().is_empty(), "{:?}", rec.conflicts());
        assert_eq!(rec.int(Field::Start), Some(start_a));
        assert_eq!(
            rec.register(Field::Start).map(|r| r.siblings().len()),
            Some(1)
        );
        assert!(conflicted_ids(store).is_empty());
    }
    assert_eq!(digest(&a), digest(&b));
    assert_eq!(digest(&a), digest(&c));
    assert_eq!(export_bytes(&a), export_bytes(&c));
}

// ---------------------------------------------------------------------------------------------
// 4. A clock days ahead cannot erase a later write
// ---------------------------------------------------------------------------------------------

#[test]
fn a_clock_seven_days_ahead_does_not_hide_a_later_write() {
    let skewed = NOW + 7 * DAY_MS;
    let (mut a, mut b) = (replica(1), replica(2));
    let id = appointment_id(1);
    let created = write(&mut b, NOW, &create(id, start_at(NOW, 60)));
    deliver(&mut a, &created);

    let note_a = write(&mut a, skewed, &set(id, Field::Note, text("A")));
    deliver(&mut b, &note_a);
    let note_b = write(&mut b, NOW + 1_000, &set(id, Field::Note, text("B")));
    assert!(
        covers(&note_b[0].write.ctx, &note_a[0]),
        "B wrote after seeing A"
    );
    assert_eq!(deliver(&mut a, &note_b).applied, 1);

    // A third replica taking the stale, far-future write last still shows B.
    let mut c = replica(3);
    deliver(&mut c, &note_b);
    deliver(&mut c, &created);
    assert_eq!(deliver(&mut c, &note_a).already_seen, 1);

    for store in [&a, &b, &c] {
        let rec = appt(store, id);
        assert_eq!(rec.text(Field::Note), Some("B"));
        assert_eq!(
            rec.register(Field::Note).map(|r| r.siblings().len()),
            Some(1)
        );
        assert!(rec.conflicts().is_empty());
    }
    assert_eq!(digest(&a), digest(&b));
    assert_eq!(digest(&a), digest(&c));

    // Truly concurrent writes: the skewed one wins the display, the other is still kept.
    let a2 = write(&mut a, skewed + 2_000, &set(id, Field::Note, text("A2")));
    let b2 = write(&mut b, NOW + 2_000, &set(id, Field::Note, text("B2")));
    deliver(&mut a, &b2);
    deliver(&mut b, &a2);
    let both: BTreeSet<String> = ["\"A2\"", "\"B2\""].iter().map(|s| s.to_string()).collect();
    for store in [&a, &b] {
        let rec = appt(store, id);
        assert_eq!(rec.conflicts(), vec![Field::Note]);
        assert_eq!(sibling_values(&rec, Field::Note), both);
        assert_eq!(rec.text(Field::Note), Some("A2"), "highest HLC shown");
    }
    assert_eq!(digest(&a), digest(&b));
}

// ---------------------------------------------------------------------------------------------
// 5. Forward-only appointment status
// ---------------------------------------------------------------------------------------------

#[test]
fn an_outcome_beats_a_concurrent_unknown_but_two_outcomes_conflict() {
    let (mut a, mut b) = (replica(1), replica(2));
    let id = appointment_id(1);
    let created = write(&mut a, NOW, &create(id, start_at(NOW, 60)));
    deliver(&mut b, &created);

    // B's "unknown" is a fresh write that did not see A's "seen", and has the later HLC: only the
    // guard keeps it from being shown.
    let seen = write(&mut a, NOW + 1_000, &set(id, Field::Status, text("seen")));
    let unknown = write(
        &mut b,
        NOW + 3_600_000,
        &set(id, Field::Status, text("unknown")),
    );
    assert!(!covers(&unknown[0].write.ctx, &seen[0]));
    assert!(unknown[0].write.hlc > seen[0].write.hlc);
    deliver(&mut a, &unknown);
    deliver(&mut b, &seen);

    for store in [&a, &b] {
        let rec = appt(store, id);
        assert_eq!(rec.value(Field::Status), Some(&text("seen")));
        assert!(!rec.conflicts().contains(&Field::Status));
        assert_eq!(
            rec.register(Field::Status).map(|r| r.siblings().len()),
            Some(2),
            "the guard is a view: the unknown sibling is kept"
        );
        assert!(conflicted_ids(store).is_empty());
    }
    assert_eq!(digest(&a), digest(&b));
    match b.write_local(NOW + 3_700_000, &set(id, Field::Status, text("unknown"))) {
        Err(StoreError::Model(ModelError::StatusBackwards { from })) => assert_eq!(from, "seen"),
        other => panic!("setting unknown over seen must be refused, got {other:?}"),
    }

    // Two different outcomes concurrently: a conflict on both replicas.
    let id2 = appointment_id(2);
    let created2 = write(&mut a, NOW, &create(id2, start_at(NOW, 90)));
    deliver(&mut b, &created2);
    let seen2 = write(&mut a, NOW + 1_000, &set(id2, Field::Status, text("seen")));
    let noshow2 = write(
        &mut b,
        NOW + 2_000,
        &set(id2, Field::Status, text("noshow")),
    );
    deliver(&mut a, &noshow2);
    deliver(&mut b, &seen2);
    let outcomes: BTreeSet<String> = ["\"noshow\"", "\"seen\""]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for store in [&a, &b] {
        let rec = appt(store, id2);
        assert_eq!(rec.conflicts(), vec![Field::Status]);
        assert_eq!(sibling_values(&rec, Field::Status), outcomes);
        assert_eq!(rec.shown_siblings(Field::Status).len(), 2);
        assert_eq!(conflicted_ids(store), vec![id2]);
    }
    assert_eq!(digest(&a), digest(&b));
}

// ---------------------------------------------------------------------------------------------
// 6. `apply_remote` is idempotent
// ---------------------------------------------------------------------------------------------

#[test]
fn applying_a_batch_twice_changes_nothing() {
    let mut a = replica(1);
    let (id1, id2) = (appointment_id(1), appointment_id(2));
    let mut batch = write(&mut a, NOW, &create(id1, start_at(NOW, 60)));
    batch.extend(write(&mut a, NOW + 1_000, &create(id2, start_at(NOW, 90))));
    batch.extend(write(
        &mut a,
        NOW + 2_000,
        &set(id1, Field::Note, text("x")),
    ));
    batch.extend(write(
        &mut a,
        NOW + 3_000,
        &set(id1, Field::Start, Value::Int(start_at(NOW, 75))),
    ));
    let len = batch.len();

    let mut b = replica(2);
    let first = b.apply_remote(&batch, Some(7)).expect("the batch applies");
    assert_eq!(
        first,
        ApplySummary {
            applied: len,
            already_seen: 0
        }
    );
    let dig = digest(&b);
    assert_eq!(dig, digest(&a));
    let second = b.apply_remote(&batch, Some(3)).expect("the batch applies");
    assert_eq!(
        second,
        ApplySummary {
            applied: 0,
            already_seen: len
        }
    );
    assert_eq!(digest(&b), dig);
    assert_eq!(
        b.stats().expect("the store reads").cursor,
        7,
        "the cursor never goes back"
    );

    // Duplicates inside one batch count once.
    let mut c = replica(3);
    let doubled: Vec<Change> = batch.iter().chain(&batch).cloned().collect();
    assert_eq!(
        deliver(&mut c, &doubled),
        ApplySummary {
            applied: len,
            already_seen: len
        }
    );
    assert_eq!(digest(&c), dig);

    // Reversed: the start edit arrives first, so the created start it covers counts as seen.
    let mut d = replica(4);
    let reversed: Vec<Change> = batch.iter().rev().cloned().collect();
    assert_eq!(
        deliver(&mut d, &reversed),
        ApplySummary {
            applied: len - 1,
            already_seen: 1
        }
    );
    assert_eq!(digest(&d), dig);
}

// ---------------------------------------------------------------------------------------------
// 7. A local write only makes changes that peers accept
// ---------------------------------------------------------------------------------------------

#[test]
fn an_edit_that_misnames_the_record_is_refused() {
    let (mut a, mut b) = (replica(1), replica(2));
    let id = appointment_id(1);
    let created = write(&mut a, NOW, &create(id, start_at(NOW, 60)));
    deliver(&mut b, &created);
    let before = (digest(&a), a.stats().expect("the store reads"));

    // "planifie" is a passage status: validated against the edit's kind it passes, but the
    // change would be filed under the stored record's kind (appointment), which peers refuse.
    let wrong_kind = LocalAction {
        edits: vec![RecordEdit {
            id,
            kind: Kind::Passage,
            scope: Scope::Unit(UNIT.to_owned()),
            create: false,
            sets: vec![(Field::Status, text("planifie"))],
        }],
    };
    match a.write_local(NOW + 1_000, &wrong_kind) {
        Err(StoreError::NotFound { kind, id: got }) => assert_eq!((kind, got), (Kind::Passage, id)),
        Ok(changes) => panic!(
            "an appointment took a passage status; a peer then says {:?}",
            b.apply_remote(&changes, None)
        ),
        Err(e) => panic!("unexpected error: {e}"),
    }

    // Another unit's scope: validated against the edit, written under the record's.
    let wrong_scope = LocalAction {
        edits: vec![RecordEdit {
            id,
            kind: Kind::Appointment,
            scope: Scope::Unit("bus-80-2".to_owned()),
            create: false,
            sets: vec![(Field::Note, text("x"))],
        }],
    };
    match a.write_local(NOW + 2_000, &wrong_scope) {
        Err(StoreError::Record(RecordError::Mismatch { .. })) => {}
        other => panic!("an edit naming another scope must be refused, got {other:?}"),
    }

    assert_eq!(digest(&a), before.0, "nothing was written");
    assert_eq!(
        a.stats().expect("the store reads"),
        before.1,
        "nothing was queued"
    );
    assert_eq!(digest(&a), digest(&b));
}
