//! End-to-end sync with real processes: `tournee-server serve` and `tournee-agent` on real data
//! directories over loopback QUIC.

use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::store::{LocalAction, RecordEdit, Store};
use tournee_store::SqliteStore;
use tournee_tests::{day, Agent, Server};
use uuid::Uuid;

fn conflicts(a: &Agent) -> serde_json::Value {
    serde_json::from_str(&a.ok(&["conflicts", "--format", "json"])).expect("json")
}

#[test]
fn three_laptops_offline_then_sync_converge_with_the_conflict_everywhere() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80-1", "80");
    let agents: Vec<Agent> = (1..=3)
        .map(|i| {
            let bundle = server.enroll("bus-80-1", &format!("laptop-{i}"));
            Agent::init(&tmp.path().join(format!("agent-{i}")), &bundle)
        })
        .collect();
    let d = day(2);
    server.start();
    let shared = agents[0].add(&d, "09:00", "shared");
    for a in &agents {
        a.sync();
    }
    server.stop();

    // Offline: the server is down; every laptop keeps working.
    let mut recorded = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        for k in 0..5 {
            recorded.push(a.add(&d, &format!("1{k}:{i}0"), &format!("laptop {i} #{k}")));
        }
        a.ok(&[
            "appointment",
            "set",
            &shared,
            "--note",
            &format!("edited on laptop {i}"),
        ]);
        let out = a.run(&["sync", "--timeout", "3"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "sync without a server is a user-visible failure"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("restent en attente"), "{err}");
        assert!(
            err.contains("error: le serveur n'a pas répondu")
                || err.contains("error: le serveur est injoignable"),
            "in French first: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }

    server.start();
    for _ in 0..2 {
        for a in &agents {
            a.sync();
        }
    }
    let server_digest = server.digest("bus-80-1");
    let server_conflicts: serde_json::Value =
        serde_json::from_str(&server.ok(&["conflicts", "--format", "json"])).expect("json");
    assert_eq!(
        server_conflicts["conflicts"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(server_conflicts["conflicts"][0]["field"], "note");
    for a in &agents {
        assert_eq!(a.digest(), server_digest, "{} converged", a.dir.display());
        let c = conflicts(a);
        assert_eq!(c["conflicts"].as_array().map(Vec::len), Some(1));
        assert_eq!(c["conflicts"][0]["record"], shared.as_str());
        assert_eq!(
            c["conflicts"][0]["values"].as_array().map(Vec::len),
            Some(3)
        );
        let list: serde_json::Value =
            serde_json::from_str(&a.ok(&["appointment", "list", "--date", &d, "--format", "json"]))
                .expect("json");
        let ids: Vec<&str> = list["appointments"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|x| x["id"].as_str())
            .collect();
        for r in &recorded {
            assert!(
                ids.contains(&r.as_str()),
                "{r} missing on {}",
                a.dir.display()
            );
        }
        let st = a.status();
        assert_eq!(st["pending_changes"], 0);
        assert!(st["clock_offset_ms"]
            .as_i64()
            .is_some_and(|o| o.abs() < 5_000));
    }
    // One resolution reaches every replica.
    agents[1].ok(&["resolve", &shared, "note", "--value", "merged note"]);
    for a in std::iter::once(&agents[1]).chain(agents.iter()) {
        a.sync();
    }
    for a in &agents {
        assert_eq!(conflicts(a)["conflicts"].as_array().map(Vec::len), Some(0));
        assert_eq!(a.digest(), server.digest("bus-80-1"));
    }
    server.stop();
    assert!(
        server.log_text().contains("session"),
        "one log line per session"
    );
}

#[test]
fn other_units_see_nothing_and_a_crafted_change_is_refused_with_a_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80-1", "80");
    server.unit("bus-02-1", "02");
    server.unit("bus-80-2", "80");
    let a = Agent::init(&tmp.path().join("a"), &server.enroll("bus-80-1", "a"));
    let b = Agent::init(&tmp.path().join("b"), &server.enroll("bus-02-1", "b"));
    let c = Agent::init(&tmp.path().join("c"), &server.enroll("bus-80-2", "c"));
    server.start();
    let d = day(1);
    let secret = a.add(&d, "10:00", "for bus-80-1 only");
    a.sync();
    b.sync();
    c.sync();
    for other in [&b, &c] {
        let st = other.status();
        assert_eq!(
            st["records"],
            0,
            "no record of another unit reaches {}",
            other.dir.display()
        );
        assert!(!other.ok(&["export", "--format", "json"]).contains(&secret));
    }
    let before = server.digest("bus-80-1");

    // Laptop b writes into bus-80-1 by hand (its CLI would not), then syncs.
    {
        let mut store = SqliteStore::open(&b.store_file()).expect("open b");
        let action = LocalAction {
            edits: vec![RecordEdit {
                id: Uuid::parse_str(&secret).expect("uuid"),
                kind: Kind::Appointment,
                scope: Scope::Unit("bus-80-1".into()),
                create: true,
                sets: vec![(Field::Note, Value::Text("hijacked".into()))],
            }],
        };
        store
            .write_local(chrono::Utc::now().timestamp_millis() as u64, &action)
            .expect("local write");
    }
    let out = b.sync();
    assert!(out.contains("1 refused"), "{out}");
    let st = b.status();
    assert_eq!(st["rejected_changes"], 1);
    assert!(st["rejected"][0]["reason"]
        .as_str()
        .expect("reason")
        .contains("out of scope"));
    let table = b.ok(&["status"]);
    assert!(
        table.contains("rejected") && table.contains("out of scope"),
        "{table}"
    );
    assert_eq!(server.digest("bus-80-1"), before, "nothing merged");
    a.sync();
    assert_eq!(a.digest(), before);
    server.stop();
}
