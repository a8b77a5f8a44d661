//! Refused changes come back, and re-enrolment keeps the queue — real processes, real QUIC on
//! loopback, real SQLite files.
//!
//! A laptop whose clock is 8 days ahead at first use has its changes refused "clock ahead";
//! the next sync writes them again in server time with no user action. A laptop that swapped
//! its bundle has its changes refused as forged: they are shown, and `rejected undo` removes
//! them. A revoked laptop with a queue moves it to a new identity with `reenrol`.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tournee_tests::{day, Agent, Server};

/// Eight days ahead, in milliseconds.
const EIGHT_DAYS_MS: &str = "691200000";
const SKEW: &str = "TOURNEE_CLOCK_SKEW_MS";

fn skewed(a: &Agent, args: &[&str]) -> String {
    tournee_tests::ok(a.cmd(args).env(SKEW, EIGHT_DAYS_MS))
}

fn skewed_add(a: &Agent, date: &str, note: &str) -> String {
    skewed(
        a,
        &[
            "appointment",
            "add",
            "--start",
            &format!("{date}T10:00"),
            "--duration",
            "30",
            "--location",
            "arret",
            "--commune",
            "80021",
            "--note",
            note,
        ],
    )
    .trim()
    .to_owned()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("json")
}

/// The number after `word ` in a sync line ("sent 6 change(s)" → 6).
fn number_after(line: &str, word: &str) -> u64 {
    line.split_once(&format!("{word} "))
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {word:?} in {line}"))
}

/// The server's export of `unit`: its records.
fn server_records(server: &Server, unit: &str) -> Vec<serde_json::Value> {
    let v = json(&server.ok(&["export", "--unit", unit, "--format", "json"]));
    v["records"].as_array().expect("records").clone()
}

/// The devices that wrote the live values of record `id` on the server.
fn writers(records: &[serde_json::Value], id: &str) -> Vec<u64> {
    let rec = records
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not on the server"));
    let mut out: Vec<u64> = rec["fields"]
        .as_object()
        .expect("fields")
        .values()
        .flat_map(|sibs| sibs.as_array().expect("siblings").clone())
        .map(|s| s["device"].as_u64().expect("device"))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn changes_refused_for_a_clock_ahead_at_first_use_are_sent_again_once_it_is_fixed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80", "80");
    let a = Agent::init(&tmp.path().join("a"), &server.enroll("bus-80", "a"));
    server.start();

    // First use with the clock 8 days ahead: the offset is not known yet.
    let date = day(10);
    let id = skewed_add(&a, &date, "horloge en avance");
    let out = skewed(&a, &["sync", "--timeout", "20"]);
    let sent = number_after(&out, "sent");
    assert!(
        sent > 0 && out.contains(&format!("{sent} refused")),
        "{out}"
    );
    assert!(
        server_records(&server, "bus-80").is_empty(),
        "nothing taken"
    );

    // The laptop marks the record and says why, in French.
    let st = json(&skewed(&a, &["status", "--format", "json"]));
    assert_eq!(st["rejected_changes"], sent, "{st}");
    for r in st["rejected"].as_array().expect("rejected") {
        assert!(
            r["reason_fr"]
                .as_str()
                .is_some_and(|s| s.contains("horloge en avance")),
            "{r}"
        );
    }
    let list = json(&skewed(
        &a,
        &["appointment", "list", "--date", &date, "--format", "json"],
    ));
    let shown = &list["appointments"][0];
    assert_eq!(shown["id"], id.as_str());
    assert!(
        !shown["refused"].as_array().expect("refused").is_empty(),
        "{shown}"
    );
    let table = skewed(&a, &["appointment", "show", &id]);
    assert!(table.contains("REFUSÉ"), "{table}");
    let listed = skewed(&a, &["rejected", "list"]);
    assert!(listed.contains("horloge en avance"), "{listed}");

    // The clock is fixed; the next sync sends the changes again, with no user action.
    let out = a.sync();
    assert!(out.contains("0 refused"), "{out}");
    assert_eq!(number_after(&out, "sent"), sent, "{out}");
    let st = a.status();
    assert_eq!(st["rejected_changes"], 0, "{st}");
    assert_eq!(st["pending_changes"], 0, "{st}");
    let records = server_records(&server, "bus-80");
    assert_eq!(records.len(), 1, "one record, not doubled");
    assert_eq!(writers(&records, &id), vec![1]);
    assert_eq!(a.digest(), server.digest("bus-80"));
    let list = json(&a.ok(&["appointment", "list", "--date", &date, "--format", "json"]));
    assert!(list["appointments"][0]["refused"]
        .as_array()
        .expect("refused")
        .is_empty());
    server.stop();
}

/// `tournee-agent run` with its clock 8 days ahead, stderr to a file; killed when dropped.
struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start_skewed(a: &Agent, log: std::path::PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("daemon log");
        let child = a
            .cmd(&["run"])
            .env(SKEW, EIGHT_DAYS_MS)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn the daemon");
        Self { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_daemon_that_stays_connected_sends_clock_ahead_refusals_again_in_the_same_session() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80", "80");
    let a = Agent::init(&tmp.path().join("a"), &server.enroll("bus-80", "a"));
    server.start();
    let id = skewed_add(&a, &day(10), "démon en avance");
    let daemon = Daemon::start_skewed(&a, tmp.path().join("daemon.log"));
    let limit = Duration::from_secs(20);
    let started = Instant::now();
    while !server_records(&server, "bus-80")
        .iter()
        .any(|r| r["id"] == id.as_str())
    {
        assert!(
            started.elapsed() < limit,
            "not on the server within {limit:?}: {}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = daemon.log_text();
    assert_eq!(
        log.matches("starting a session").count(),
        1,
        "healed inside the first session, not by reconnecting: {log}"
    );
    let st = json(&skewed(&a, &["status", "--format", "json"]));
    assert_eq!(st["rejected_changes"], 0, "{st}");
    drop(daemon);
    assert_eq!(skewed(&a, &["digest"]).trim(), server.digest("bus-80"));
    server.stop();
}

#[test]
fn a_clock_jump_after_a_sync_heals_at_the_next_sync_even_before_the_clock_is_fixed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80", "80");
    let a = Agent::init(&tmp.path().join("a"), &server.enroll("bus-80", "a"));
    server.start();
    let before = a.add(&day(3), "09:00", "avant le saut");
    assert!(a.sync().contains("0 refused"));

    // The clock jumps 8 days ahead after the sync: stamped with the old offset, refused.
    let id = skewed_add(&a, &day(10), "après le saut");
    let out = skewed(&a, &["sync", "--timeout", "20"]);
    let sent = number_after(&out, "sent");
    assert!(
        sent > 0 && out.contains(&format!("{sent} refused")),
        "{out}"
    );

    // Still 8 days ahead, but the offset is known now: the next sync is taken.
    let out = skewed(&a, &["sync", "--timeout", "20"]);
    assert!(out.contains("0 refused"), "{out}");
    let st = json(&skewed(&a, &["status", "--format", "json"]));
    assert_eq!(st["rejected_changes"], 0, "{st}");
    let records = server_records(&server, "bus-80");
    assert_eq!(records.len(), 2);
    assert_eq!(writers(&records, &before), vec![1]);
    assert_eq!(writers(&records, &id), vec![1]);
    assert_eq!(skewed(&a, &["digest"]).trim(), server.digest("bus-80"));
    server.stop();
}

#[test]
fn forged_refusals_are_listed_and_undone_locally_so_digests_match() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80", "80");
    let a = Agent::init(&tmp.path().join("a"), &server.enroll("bus-80", "a"));
    let other = server.enroll("bus-80", "b");
    server.start();
    let id = a.add(&day(2), "09:00", "sous la mauvaise identité");
    // The bundle is swapped by hand: the changes carry device 1's dots, the certificate is 2's.
    std::fs::copy(&other, a.dir.join("bundle.json")).expect("swap the bundle");
    let out = a.sync();
    let sent = number_after(&out, "sent");
    assert!(
        sent > 0 && out.contains(&format!("{sent} refused")),
        "{out}"
    );
    let listed = json(&a.ok(&["rejected", "list", "--format", "json"]));
    let rows = listed["rejected"].as_array().expect("rejected");
    assert_eq!(rows.len() as u64, sent);
    assert!(rows
        .iter()
        .all(|r| r["shown"] == true && r["record"] == id.as_str()));
    assert!(rows.iter().all(|r| r["reason_fr"]
        .as_str()
        .is_some_and(|s| s.contains("identité"))));
    assert_ne!(
        a.digest(),
        server.digest("bus-80"),
        "the laptop holds refused values"
    );

    // An unknown number is refused with one line, and nothing changes.
    let bad = a.run(&["rejected", "undo", "999"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        json(&a.ok(&["rejected", "list", "--format", "json"]))["rejected"]
            .as_array()
            .expect("rejected")
            .len() as u64,
        sent
    );
    // Neither numbers nor --all is a usage error.
    assert_eq!(a.run(&["rejected", "undo"]).status.code(), Some(2));

    let out = a.ok(&["rejected", "undo", "--all"]);
    assert!(out.contains(&format!("{sent} modification(s)")), "{out}");
    assert_eq!(a.status()["rejected_changes"], 0);
    assert!(a.sync().contains("0 refused"));
    assert_eq!(a.digest(), server.digest("bus-80"));
    server.stop();
}

#[test]
fn a_revoked_laptop_reenrols_and_its_queue_reaches_the_server_under_the_new_identity() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80", "80");
    let a = Agent::init(&tmp.path().join("a"), &server.enroll("bus-80", "old"));
    server.start();
    let synced = a.add(&day(2), "09:00", "déjà envoyé");
    assert!(a.sync().contains("0 refused"));
    let queued = [
        a.add(&day(2), "10:00", "en attente 1"),
        a.add(&day(3), "11:00", "en attente 2"),
    ];
    server.ok(&["device", "revoke", "old"]);
    let refused = a.run(&["sync", "--timeout", "10"]);
    assert_eq!(refused.status.code(), Some(1));
    let line = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        line.contains("reenrol"),
        "the message names the command: {line}"
    );
    let pending = a.status()["pending_changes"].as_u64().expect("pending");
    assert!(pending > 0);

    // `init` still refuses the initialised directory; `reenrol` adopts the new bundle.
    let fresh = server.enroll("bus-80", "new");
    let init = a.run(&["init", "--bundle", fresh.to_str().expect("utf-8")]);
    assert_eq!(init.status.code(), Some(1));
    let out = a.ok(&["reenrol", "--bundle", fresh.to_str().expect("utf-8")]);
    assert!(
        out.contains(&format!("{pending} change(s) queued")),
        "{out}"
    );
    let st = a.status();
    assert_eq!(st["device"], 2, "{st}");
    assert_eq!(st["pending_changes"], pending, "{st}");
    assert_eq!(st["server_cursor"], 0, "{st}");

    let out = a.sync();
    assert!(out.contains("0 refused"), "{out}");
    let records = server_records(&server, "bus-80");
    assert_eq!(records.len(), 3, "nothing doubled");
    assert_eq!(
        writers(&records, &synced),
        vec![1],
        "the old device's record is kept"
    );
    for id in &queued {
        assert_eq!(
            writers(&records, id),
            vec![2],
            "queued under the new identity"
        );
    }
    assert_eq!(a.digest(), server.digest("bus-80"));
    assert_eq!(a.status()["pending_changes"], 0);
    server.stop();
}

#[test]
fn a_laptop_set_up_offline_is_enrolled_later_and_its_records_reach_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80", "80");
    let bundle = server.enroll("bus-80", "offline");
    server.start();
    // Offline set-up under a number the server never gave it.
    let a = Agent {
        dir: tmp.path().join("offline"),
    };
    a.ok(&[
        "init",
        "--device-id",
        "42",
        "--unit",
        "bus-80",
        "--territory",
        "80",
    ]);
    let id = a.add(&day(2), "09:00", "saisi hors ligne");
    let no_server = a.run(&["sync", "--timeout", "5"]);
    assert_eq!(no_server.status.code(), Some(1));
    let out = a.ok(&["reenrol", "--bundle", bundle.to_str().expect("utf-8")]);
    assert!(out.contains("re-enrolled"), "{out}");
    let out = a.sync();
    assert!(out.contains("0 refused"), "{out}");
    let records = server_records(&server, "bus-80");
    assert_eq!(records.len(), 1);
    assert_eq!(
        writers(&records, &id),
        vec![1],
        "written by the enrolled device"
    );
    assert_eq!(a.digest(), server.digest("bus-80"));
    // The same bundle again: nothing to adopt, said in one line.
    let again = a.run(&["reenrol", "--bundle", bundle.to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(1));
    let line = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(line.contains("already is"), "{line}");
    assert!(a.dir.join("bundle.json").exists());

    // Set up offline under the number the server gives it next: only the bundle is added.
    let b = Agent {
        dir: tmp.path().join("offline-2"),
    };
    b.ok(&[
        "init",
        "--device-id",
        "2",
        "--unit",
        "bus-80",
        "--territory",
        "80",
    ]);
    let id2 = b.add(&day(3), "09:00", "même numéro");
    let bundle2 = server.enroll("bus-80", "offline-2");
    let out = b.ok(&["reenrol", "--bundle", bundle2.to_str().expect("utf-8")]);
    assert!(out.starts_with("enrolled"), "{out}");
    assert!(b.sync().contains("0 refused"));
    let records = server_records(&server, "bus-80");
    assert_eq!(records.len(), 2);
    assert_eq!(
        writers(&records, &id2),
        vec![2],
        "its own writes, not re-issued"
    );
    assert_eq!(b.digest(), server.digest("bus-80"));
    server.stop();
}
