//! References checked against the writer's scope, with real processes: a territory-59 laptop
//! whose store was tampered with sends a request of its own unit that names a territory-80
//! appointment. The server refuses that reference with a typed reason, the laptop keeps the
//! request and shows the refusal, and territory 80's coverage does not count it; the same
//! laptop's request on its own appointment (created in the same flight as the appointment) is
//! accepted and counted in territory 59.

use std::path::Path;
use std::str::FromStr;

use serde_json::Value as Json;
use tournee_core::clock::{Clock, SystemClock};
use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::store::{LocalAction, RecordEdit, Store};
use tournee_store::SqliteStore;
use tournee_tests::{day, Agent, Server};
use uuid::Uuid;

/// `coverage --territory T` over `date` as JSON.
fn coverage(server: &Server, territory: &str, date: &str) -> Json {
    let out = server.ok(&[
        "coverage",
        "--territory",
        territory,
        "--from",
        date,
        "--to",
        date,
        "--format",
        "json",
    ]);
    serde_json::from_str(&out).expect("coverage json")
}

fn requests(report: &Json) -> u64 {
    report["totals"]["requests"]
        .as_u64()
        .unwrap_or_else(|| panic!("totals.requests in {report}"))
}

/// Record an appointment on `date` at 10:00 in `commune`; returns its id.
fn appointment(a: &Agent, date: &str, commune: &str) -> String {
    a.ok(&[
        "appointment",
        "add",
        "--start",
        &format!("{date}T10:00"),
        "--duration",
        "30",
        "--location",
        "arret",
        "--commune",
        commune,
    ])
    .trim()
    .to_owned()
}

/// `request add --appointment ID` with valid codes; returns the request's id.
fn request(a: &Agent, appointment: &str) -> String {
    a.ok(&[
        "request",
        "add",
        "--appointment",
        appointment,
        "--partner",
        "caf",
        "--theme",
        "famille_scolarite",
        "--level",
        "information",
        "--outcome",
        "resolue_sur_place",
    ])
    .trim()
    .to_owned()
}

/// What a tampered laptop writes: a new request of its own unit, with the fields of `model`
/// (a genuine request), whose `appointment` names `foreign`. Written through the real store,
/// so it is queued in the outbox under the laptop's own identity like any local action.
fn forge_request(store_file: &Path, model: Uuid, foreign: Uuid) -> Uuid {
    let mut store = SqliteStore::open(store_file).expect("open the laptop's store");
    let genuine = store.record(model).expect("read").expect("model request");
    let id = Uuid::now_v7();
    let sets = genuine
        .fields
        .keys()
        .filter_map(|f| {
            let v = if *f == Field::Appointment {
                Value::Id(foreign)
            } else {
                genuine.value(*f)?.clone()
            };
            Some((*f, v))
        })
        .collect();
    let action = LocalAction {
        edits: vec![RecordEdit {
            id,
            kind: Kind::Request,
            scope: genuine.scope.clone(),
            create: true,
            sets,
        }],
    };
    store
        .write_local(SystemClock.now_ms(), &action)
        .expect("forged write");
    id
}

#[test]
fn a_reference_outside_the_writers_scope_is_refused_kept_and_not_counted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80-1", "80");
    server.unit("bus-59-1", "59");
    let somme = Agent::init(
        &tmp.path().join("somme"),
        &server.enroll("bus-80-1", "somme"),
    );
    let nord = Agent::init(&tmp.path().join("nord"), &server.enroll("bus-59-1", "nord"));
    server.start();
    let date = day(1);

    let foreign = appointment(&somme, &date, "80021");
    somme.sync();

    // The Nord laptop's genuine request on its own appointment, both in one flight.
    let own = appointment(&nord, &date, "59350");
    let genuine = request(&nord, &own);
    let forged = forge_request(
        &nord.store_file(),
        Uuid::from_str(&genuine).expect("uuid"),
        Uuid::from_str(&foreign).expect("uuid"),
    );
    let out = nord.sync();
    // The reference is refused, so the request it creates would have no parent: none of its
    // fields is taken (the server holds no request naming nothing).
    assert!(
        out.contains("5 refused"),
        "the forged request refused: {out}"
    );

    // A typed reason naming the foreign scope, kept and shown by the laptop.
    let status = nord.status();
    let rejected = status["rejected"].as_array().expect("rejected list");
    assert_eq!(rejected.len(), 5, "{status}");
    assert!(
        rejected.iter().all(|r| r["record"] == forged.to_string()),
        "{status}"
    );
    let r = rejected
        .iter()
        .find(|r| r["field"] == "appointment")
        .expect("the reference's refusal");
    assert_eq!(r["value"], foreign, "{r}");
    assert!(
        r["reason"]
            .as_str()
            .is_some_and(|s| s.starts_with("out of scope: unit:bus-80-1 ")),
        "the out-of-scope reason naming the foreign unit: {r}"
    );
    assert!(
        rejected
            .iter()
            .filter(|r| r["field"] != "appointment")
            .all(|r| r["reason"]
                .as_str()
                .is_some_and(|s| s.starts_with("unknown record:"))),
        "{status}"
    );
    let store = SqliteStore::open(&nord.store_file()).expect("open");
    let kept = store.record(forged).expect("read").expect("kept");
    assert_eq!(kept.scope, Scope::Unit("bus-59-1".into()));
    assert_eq!(
        kept.id_ref(Field::Appointment),
        Some(Uuid::from_str(&foreign).expect("uuid")),
        "the laptop keeps the refused reference"
    );

    // Territory 80 counts no request; territory 59 counts the genuine one.
    assert_eq!(requests(&coverage(&server, "80", &date)), 0);
    assert_eq!(requests(&coverage(&server, "59", &date)), 1);

    // The Somme laptop never receives the Nord unit's request.
    somme.sync();
    let on_somme = SqliteStore::open(&somme.store_file()).expect("open");
    assert!(on_somme.record(forged).expect("read").is_none());
    server.stop();
}
