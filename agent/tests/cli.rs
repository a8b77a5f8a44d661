//! End-to-end tests of the `tournee-agent` binary on real data directories: each test spawns the
//! real process, and inspects results through its output and, where a test needs to play the
//! server (passages, another laptop's changes), through the same SQLite file.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value as Json;
use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::store::{Identity, LocalAction, RecordEdit, Store};
use tournee_store::SqliteStore;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_tournee-agent");

fn agent(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(dir)
        .args(args)
        .env_remove("TOURNEE_DATA")
        .output()
        .expect("spawn tournee-agent")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = agent(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn user_error(dir: &Path, args: &[&str]) -> String {
    let out = agent(dir, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should be a user error"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout for an error");
    let err = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    err
}

fn json(dir: &Path, args: &[&str]) -> Json {
    serde_json::from_str(&ok(dir, args)).expect("stdout is one JSON document")
}

/// A day a few days ahead, so appointments are always in the allowed range.
fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset)).to_string()
}

fn init(dir: &Path, device: u32) {
    ok(
        dir,
        &[
            "init",
            "--device-id",
            &device.to_string(),
            "--unit",
            "bus-80-1",
            "--territory",
            "80",
        ],
    );
}

fn add(dir: &Path, start: &str) -> String {
    ok(
        dir,
        &[
            "appointment",
            "add",
            "--start",
            start,
            "--duration",
            "30",
            "--location",
            "arret",
            "--commune",
            "80021",
            "--citizen",
            "Mme Martin",
        ],
    )
    .trim()
    .to_owned()
}

fn store_file(dir: &Path) -> std::path::PathBuf {
    dir.join("agent.sqlite")
}

/// Deliver every local change of `from` to `to`, as a sync would.
fn deliver(from: &Path, to: &Path) {
    let src = SqliteStore::open(&store_file(from)).expect("open source");
    let changes: Vec<_> = src
        .outbox_after(0, usize::MAX >> 1)
        .expect("outbox")
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let mut dst = SqliteStore::open(&store_file(to)).expect("open destination");
    dst.apply_remote(&changes, None).expect("apply");
}

#[test]
fn record_change_list_show_request_export_digest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir, 1);
    let d = day(3);
    let a = add(dir, &format!("{d}T09:30"));
    let b = add(dir, &format!("{d}T08:00"));
    ok(
        dir,
        &[
            "appointment",
            "set",
            &a,
            "--status",
            "seen",
            "--note",
            "dossier CAF",
        ],
    );
    ok(
        dir,
        &[
            "appointment",
            "set",
            &b,
            "--start",
            &format!("{d}T11:15"),
            "--duration",
            "45",
        ],
    );

    let list = json(
        dir,
        &["appointment", "list", "--date", &d, "--format", "json"],
    );
    let appts = list["appointments"].as_array().expect("array");
    assert_eq!(appts.len(), 2);
    assert_eq!(
        appts[0]["id"],
        a.as_str(),
        "sorted by start: 09:30 before 11:15"
    );
    assert_eq!(appts[0]["status"], "seen");
    assert_eq!(appts[0]["note"], "dossier CAF");
    assert_eq!(appts[0]["citizen_name"], "Mme Martin");
    assert_eq!(appts[0]["commune_name"], "Amiens");
    assert_eq!(appts[1]["duration_min"], 45);
    assert!(appts[1]["start"]
        .as_str()
        .expect("start")
        .contains("T11:15:00"));
    let other_day = json(
        dir,
        &["appointment", "list", "--date", &day(4), "--format", "json"],
    );
    assert_eq!(other_day["appointments"].as_array().map(Vec::len), Some(0));

    let table = ok(dir, &["appointment", "list", "--date", &d]);
    assert!(table.contains("Amiens (80021)") && table.contains(&a));

    let show = json(dir, &["appointment", "show", &a, "--format", "json"]);
    assert_eq!(show["fields"]["status"]["value"], "seen");
    assert_eq!(show["fields"]["status"]["conflict"], false);

    let req = ok(
        dir,
        &[
            "request",
            "add",
            "--appointment",
            &a,
            "--partner",
            "caf",
            "--theme",
            "logement",
            "--level",
            "accompagnement",
            "--outcome",
            "resolue_sur_place",
            "--minutes",
            "20",
        ],
    );
    let req = req.trim();
    assert!(Uuid::parse_str(req).is_ok());

    let export = ok(dir, &["export", "--format", "json"]);
    let doc: Json = serde_json::from_str(&export).expect("export is JSON");
    let records = doc["records"].as_array().expect("records");
    assert_eq!(records.len(), 5, "2 appointments, 2 citizens, 1 request");
    let ids: Vec<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "records sorted by id");
    assert!(ids.contains(&req));

    let digest = ok(dir, &["digest"]);
    assert_eq!(digest.trim(), tournee_cli::secret::sha256_hex(&export));
    assert_eq!(ok(dir, &["digest"]), digest, "digest is stable");
    ok(dir, &["appointment", "set", &b, "--note", "rappeler"]);
    assert_ne!(ok(dir, &["digest"]), digest, "an edit changes the digest");

    let status = json(dir, &["status", "--format", "json"]);
    assert_eq!(status["device"], 1);
    assert_eq!(status["unit"], "bus-80-1");
    assert!(status["pending_changes"].as_u64().expect("pending") > 10);
    assert_eq!(status["conflicted_records"], 0);
}

#[test]
fn bad_input_exits_1_with_one_line_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir, 1);
    let d = day(2);
    let a = add(dir, &format!("{d}T10:00"));
    let digest = ok(dir, &["digest"]);
    let pending = json(dir, &["status", "--format", "json"])["pending_changes"].clone();
    let start = format!("{d}T10:00");
    let nil = Uuid::nil().to_string();
    let base = [
        "appointment",
        "add",
        "--duration",
        "30",
        "--location",
        "arret",
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            [&base[..], &["--start", &start, "--commune", "99999"]].concat(),
            "commune",
        ),
        (
            [&base[..], &["--start", "demain 9h", "--commune", "80021"]].concat(),
            "start",
        ),
        (
            [
                &base[..],
                &["--start", "2026-13-40T25:00", "--commune", "80021"],
            ]
            .concat(),
            "start",
        ),
        (
            [
                &base[..],
                &["--start", "1999-01-01T10:00", "--commune", "80021"],
            ]
            .concat(),
            "start",
        ),
        (
            vec![
                "appointment",
                "add",
                "--start",
                &start,
                "--duration",
                "0",
                "--location",
                "arret",
                "--commune",
                "80021",
            ],
            "duration",
        ),
        (
            vec![
                "appointment",
                "add",
                "--start",
                &start,
                "--duration",
                "721",
                "--location",
                "arret",
                "--commune",
                "80021",
            ],
            "duration",
        ),
        (
            vec![
                "appointment",
                "add",
                "--start",
                &start,
                "--duration",
                "30",
                "--location",
                "bus",
                "--commune",
                "80021",
            ],
            "arret, domicile, telephone",
        ),
        (
            vec!["appointment", "set", &a, "--status", "vu"],
            "unknown, seen, excused, revoked, noshow",
        ),
        (vec!["appointment", "set", &a, "--start", "10h"], "start"),
        (vec!["appointment", "set", &a], "--status"),
        (
            vec!["appointment", "set", "not-an-id", "--status", "seen"],
            "id",
        ),
        (
            vec!["appointment", "set", &nil, "--status", "seen"],
            "no appointment",
        ),
        (
            vec![
                "request",
                "add",
                "--appointment",
                &a,
                "--partner",
                "urssaf",
                "--theme",
                "logement",
                "--level",
                "information",
                "--outcome",
                "non_resolue",
            ],
            "caf",
        ),
        (
            vec![
                "request",
                "add",
                "--appointment",
                &a,
                "--partner",
                "caf",
                "--theme",
                "sport",
                "--level",
                "information",
                "--outcome",
                "non_resolue",
            ],
            "logement",
        ),
        (
            vec![
                "request",
                "add",
                "--appointment",
                &a,
                "--partner",
                "caf",
                "--theme",
                "logement",
                "--level",
                "x",
                "--outcome",
                "non_resolue",
            ],
            "orientation",
        ),
        (
            vec!["resolve", &a, "start", "--value", &start],
            "no conflict",
        ),
        (
            vec!["resolve", &a, "partner", "--value", "caf"],
            "appointment has no field 'partner'",
        ),
    ];
    for (args, expect) in cases {
        let err = user_error(dir, &args);
        assert!(
            err.contains(expect),
            "{args:?}: '{err}' should mention '{expect}'"
        );
    }
    ok(dir, &["appointment", "set", &a, "--status", "noshow"]);
    let after_noshow = ok(dir, &["digest"]);
    assert_ne!(
        after_noshow, digest,
        "every refused input above changed nothing; this edit did"
    );
    let digest = after_noshow;
    let err = user_error(dir, &["appointment", "set", &a, "--status", "unknown"]);
    assert!(err.contains("cannot go back to 'unknown'"), "{err}");
    assert_eq!(ok(dir, &["digest"]), digest, "refused edits change nothing");
    let after = json(dir, &["status", "--format", "json"])["pending_changes"].clone();
    assert_eq!(
        after.as_u64(),
        pending.as_u64().map(|p| p + 1),
        "only the one accepted edit was queued"
    );
}

#[test]
fn usage_errors_exit_2_and_missing_store_exits_1_without_creating_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("nowhere");
    let out = agent(&dir, &["appointment", "add", "--start", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = agent(&dir, &["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    let err = user_error(&dir, &["status"]);
    assert!(err.contains("tournee-agent init"), "{err}");
    assert!(!dir.exists(), "a failed command creates nothing");
    let err = user_error(
        &dir,
        &[
            "init",
            "--device-id",
            "1",
            "--unit",
            "bus-1",
            "--territory",
            "999",
        ],
    );
    assert!(err.contains("territory"), "{err}");
    init(&dir, 1);
    let err = user_error(
        &dir,
        &[
            "init",
            "--device-id",
            "2",
            "--unit",
            "bus-80-1",
            "--territory",
            "80",
        ],
    );
    assert!(err.contains("already initialised"), "{err}");
    assert_eq!(json(&dir, &["status", "--format", "json"])["device"], 1);
}

/// Plays the server: a stop and a passage of the unit's round, applied as remote changes.
fn seed_passage(dir: &Path, date: &str) -> (Uuid, Uuid) {
    let mut server = SqliteStore::open_in_memory().expect("server store");
    server
        .set_identity(&Identity {
            device: 1000,
            unit: "bus-80-1".into(),
            territory: "80".into(),
        })
        .expect("identity");
    let now = chrono::Utc::now().timestamp_millis() as u64;
    let stop = Uuid::now_v7();
    let passage = Uuid::now_v7();
    let start = tournee_core::time::parse_time("t", &format!("{date}T09:00")).expect("time");
    let action = LocalAction {
        edits: vec![
            RecordEdit {
                id: stop,
                kind: Kind::Stop,
                scope: Scope::Territory("80".into()),
                create: true,
                sets: vec![
                    (Field::Commune, Value::Text("80001".into())),
                    (Field::Label, Value::Text("Place de la mairie".into())),
                ],
            },
            RecordEdit {
                id: passage,
                kind: Kind::Passage,
                scope: Scope::Unit("bus-80-1".into()),
                create: true,
                sets: vec![
                    (Field::Stop, Value::Id(stop)),
                    (Field::Date, Value::Text(date.into())),
                    (Field::PlannedStart, Value::Int(start)),
                    (Field::PlannedEnd, Value::Int(start + 3 * 3600)),
                    (Field::Status, Value::Text("planifie".into())),
                ],
            },
        ],
    };
    let changes = server.write_local(now, &action).expect("server write");
    let mut agent_store = SqliteStore::open(&store_file(dir)).expect("agent store");
    agent_store.apply_remote(&changes, Some(2)).expect("apply");
    (stop, passage)
}

#[test]
fn passages_synced_from_the_server_are_listed_and_marked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir, 1);
    let d = day(1);
    let (_, passage) = seed_passage(dir, &d);
    let p = passage.to_string();
    let list = json(dir, &["passage", "list", "--date", &d, "--format", "json"]);
    let ps = list["passages"].as_array().expect("array");
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["stop_label"], "Place de la mairie");
    assert_eq!(ps[0]["commune"], "80001");
    assert_eq!(ps[0]["status"], "planifie");
    let err = user_error(dir, &["passage", "set", &p, "--status", "annule"]);
    assert!(err.contains("cause"), "{err}");
    let err = user_error(
        dir,
        &[
            "passage", "set", &p, "--status", "effectue", "--cause", "panne",
        ],
    );
    assert!(err.contains("cause"), "{err}");
    let err = user_error(
        dir,
        &[
            "passage",
            "set",
            &p,
            "--actual-start",
            &format!("{d}T12:00"),
            "--actual-end",
            &format!("{d}T11:00"),
        ],
    );
    assert!(err.contains("actual-end"), "{err}");
    ok(
        dir,
        &[
            "passage", "set", &p, "--status", "annule", "--cause", "meteo",
        ],
    );
    let ps = json(dir, &["passage", "list", "--date", &d, "--format", "json"]);
    assert_eq!(ps["passages"][0]["status"], "annule");
    assert_eq!(ps["passages"][0]["cause"], "meteo");
    ok(
        dir,
        &[
            "passage",
            "set",
            &p,
            "--status",
            "effectue",
            "--actual-start",
            &format!("{d}T09:10"),
            "--actual-end",
            &format!("{d}T11:50"),
        ],
    );
    let ps = json(dir, &["passage", "list", "--date", &d, "--format", "json"]);
    assert_eq!(ps["passages"][0]["status"], "effectue");
    assert_eq!(
        ps["passages"][0]["cause"],
        Json::Null,
        "a held passage has no cancel cause"
    );
    assert!(ps["passages"][0]["actual_start"]
        .as_str()
        .expect("actual")
        .contains("T09:10"));
    let table = ok(dir, &["passage", "list", "--date", &d]);
    assert!(
        table.contains("09:00-12:00") && table.contains("Place de la mairie"),
        "{table}"
    );
    let req = ok(
        dir,
        &[
            "request",
            "add",
            "--passage",
            &p,
            "--partner",
            "france_travail",
            "--theme",
            "travail_formation",
            "--level",
            "orientation",
            "--outcome",
            "orientee_operateur",
        ],
    );
    assert!(Uuid::parse_str(req.trim()).is_ok());
}

#[test]
fn concurrent_edits_become_a_conflict_that_resolve_removes_everywhere() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    init(&a_dir, 1);
    init(&b_dir, 2);
    let d = day(5);
    let id = add(&a_dir, &format!("{d}T09:00"));
    deliver(&a_dir, &b_dir);
    ok(
        &a_dir,
        &["appointment", "set", &id, "--start", &format!("{d}T10:00")],
    );
    ok(
        &b_dir,
        &["appointment", "set", &id, "--start", &format!("{d}T14:00")],
    );
    deliver(&a_dir, &b_dir);
    deliver(&b_dir, &a_dir);
    for dir in [&a_dir, &b_dir] {
        let c = json(dir, &["conflicts", "--format", "json"]);
        let list = c["conflicts"].as_array().expect("array");
        assert_eq!(list.len(), 1, "one conflicting field");
        assert_eq!(list[0]["field"], "start");
        assert_eq!(list[0]["values"].as_array().map(Vec::len), Some(2));
        let show = json(dir, &["appointment", "show", &id, "--format", "json"]);
        assert_eq!(show["fields"]["start"]["conflict"], true);
        assert_eq!(
            show["fields"]["start"]["siblings"].as_array().map(Vec::len),
            Some(2)
        );
        assert!(ok(dir, &["conflicts"]).contains("start"));
    }
    assert_eq!(ok(&a_dir, &["digest"]), ok(&b_dir, &["digest"]));
    ok(
        &b_dir,
        &["resolve", &id, "start", "--value", &format!("{d}T14:00")],
    );
    deliver(&b_dir, &a_dir);
    for dir in [&a_dir, &b_dir] {
        let c = json(dir, &["conflicts", "--format", "json"]);
        assert_eq!(c["conflicts"].as_array().map(Vec::len), Some(0));
        let show = json(dir, &["appointment", "show", &id, "--format", "json"]);
        assert!(show["fields"]["start"]["value"].is_number());
        let list = json(
            dir,
            &["appointment", "list", "--date", &d, "--format", "json"],
        );
        assert!(list["appointments"][0]["start"]
            .as_str()
            .expect("start")
            .contains("T14:00"));
    }
    assert_eq!(ok(&a_dir, &["digest"]), ok(&b_dir, &["digest"]));
}

#[test]
fn parallel_processes_on_one_data_dir_never_corrupt_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir, 1);
    let d = day(6);
    let start = format!("{d}T09:00");
    let children: Vec<_> = (0..12)
        .map(|_| {
            Command::new(BIN)
                .arg("--data")
                .arg(dir)
                .args([
                    "appointment",
                    "add",
                    "--start",
                    &start,
                    "--duration",
                    "20",
                    "--location",
                    "telephone",
                    "--commune",
                    "80021",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut ids = Vec::new();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        if out.status.success() {
            ids.push(
                String::from_utf8(out.stdout)
                    .expect("utf-8")
                    .trim()
                    .to_owned(),
            );
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("busy"),
                "only a clear 'busy' error is acceptable: {err}"
            );
        }
    }
    assert!(!ids.is_empty());
    let store = SqliteStore::open(&store_file(dir)).expect("open");
    store.integrity_check().expect("integrity");
    let day = chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").expect("date");
    assert_eq!(
        store
            .records_on(Kind::Appointment, day)
            .expect("list")
            .len(),
        ids.len()
    );
    let seqs: Vec<u64> = store
        .outbox_after(0, 10_000)
        .expect("outbox")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        seqs,
        (1..=ids.len() as u64 * 5).collect::<Vec<_>>(),
        "contiguous seq, 5 changes per add"
    );
}

#[test]
fn sigkill_never_loses_a_returned_action_nor_leaves_half_of_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir, 1);
    let d = day(7);
    let start = format!("{d}T15:00");
    let mut returned = Vec::new();
    for round in 0..30u64 {
        // One writer completes; a second one is killed at a varying point of its life.
        let done = add(dir, &start);
        let mut victim = Command::new(BIN)
            .arg("--data")
            .arg(dir)
            .args([
                "appointment",
                "add",
                "--start",
                &start,
                "--duration",
                "20",
                "--location",
                "arret",
                "--commune",
                "80021",
                "--citizen",
                "X",
                "--note",
                "kill me",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_micros(500 * (round % 12)));
        victim.kill().expect("SIGKILL");
        let out = victim.wait_with_output().expect("reap");
        if out.status.success() {
            returned.push(
                String::from_utf8(out.stdout)
                    .expect("utf-8")
                    .trim()
                    .to_owned(),
            );
        }
        returned.push(done);
    }
    let store = SqliteStore::open(&store_file(dir)).expect("reopen after kills");
    store.integrity_check().expect("integrity");
    for id in &returned {
        let rec = store
            .record(Uuid::parse_str(id).expect("uuid"))
            .expect("read")
            .unwrap_or_else(|| panic!("appointment {id} returned but is missing"));
        assert!(
            matches!(rec.int(Field::Duration), Some(20 | 30)),
            "{id} is whole"
        );
    }
    // Every appointment present is whole: all its fields, all its changes in the outbox.
    let day = chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").expect("date");
    let all = store.records_on(Kind::Appointment, day).expect("list");
    assert!(all.len() >= returned.len());
    for r in &all {
        for f in [
            Field::Location,
            Field::Commune,
            Field::Start,
            Field::Duration,
            Field::Status,
        ] {
            assert!(r.value(f).is_some(), "{} lacks {f}", r.id);
        }
    }
    let stats = store.stats().expect("stats");
    let seqs = store.outbox_after(0, 100_000).expect("outbox");
    assert_eq!(
        seqs.len() as u64,
        stats.last_seq,
        "outbox holds exactly seq 1..=last"
    );
    assert!(seqs
        .iter()
        .enumerate()
        .all(|(i, (s, _))| *s == i as u64 + 1));
}

/// `request add --minutes 0` blamed "duration", an option the command does not have.
#[test]
fn request_minutes_out_of_range_names_the_minutes_option() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir, 1);
    let a = add(dir, &format!("{}T10:00", day(2)));
    let digest = ok(dir, &["digest"]);
    for minutes in ["0", "721", "-5", "vingt"] {
        let err = user_error(
            dir,
            &[
                "request",
                "add",
                "--appointment",
                &a,
                "--partner",
                "caf",
                "--theme",
                "logement",
                "--level",
                "information",
                "--outcome",
                "resolue_sur_place",
                "--minutes",
                minutes,
            ],
        );
        assert!(err.contains("--minutes"), "{minutes}: {err}");
        assert!(!err.contains("duration:"), "{minutes}: {err}");
    }
    assert_eq!(ok(dir, &["digest"]), digest, "nothing was recorded");
}

/// Text typed at the laptop with a line break, an escape sequence or a bidi override is refused
/// with one French line naming the option, and nothing is recorded.
#[test]
fn control_characters_in_typed_text_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir, 1);
    let start = format!("{}T10:00", day(2));
    let digest = ok(dir, &["digest"]);
    for (option, value) in [
        ("--citizen", "Mme Martin\n2026-12-01T10:00:00Z  INFO forged"),
        ("--note", "rappeler \u{1b}[2J"),
        ("--note", "facture \u{202E}gnp.exe"),
        ("--citizen", "a\rb"),
    ] {
        let err = user_error(
            dir,
            &[
                "appointment",
                "add",
                "--start",
                &start,
                "--duration",
                "30",
                "--location",
                "arret",
                "--commune",
                "80021",
                option,
                value,
            ],
        );
        assert!(
            err.contains("caractère interdit"),
            "{option} {value:?}: {err}"
        );
    }
    assert_eq!(ok(dir, &["digest"]), digest, "nothing was recorded");
}
