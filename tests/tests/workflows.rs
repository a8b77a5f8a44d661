//! The conseillère's field workflows with real processes: a person found again without
//! accents, walk-ins with a person and anonymous, requests made at a walk-in and followed up,
//! a collective session, two laptops recording the same person offline and a merge, an
//! appointment cancelled, a week listed, ids typed by prefix; then the server's export and
//! coverage count the person once.
//!
//! "Today" is Tuesday 12 January 2027 on every process (`TOURNEE_CLOCK_SKEW_MS`); expected
//! counts are the scenario's, written out here.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value as Json;
use tournee_tests::{run, Agent, Server};

const SKEW: &str = "TOURNEE_CLOCK_SKEW_MS";
const TODAY: &str = "2027-01-12";

fn skew() -> String {
    tournee_tests::skew_to_day(TODAY)
}

fn json(s: &str) -> Json {
    tournee_tests::json(s)
}

fn srv(server: &Server, args: &[&str]) -> String {
    tournee_tests::ok(server.cmd(args).env(SKEW, skew()))
}

fn agent_cmd(a: &Agent, args: &[&str]) -> Command {
    let mut c = a.cmd(args);
    c.env(SKEW, skew());
    c
}

fn agent(a: &Agent, args: &[&str]) -> String {
    tournee_tests::ok(&mut agent_cmd(a, args)).trim().to_owned()
}

fn agent_json(a: &Agent, args: &[&str]) -> Json {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    json(&agent(a, &args))
}

/// A command that must fail as a user error: exit 1, one line on stderr (returned).
fn user_error(a: &Agent, args: &[&str]) -> String {
    let out = run(&mut agent_cmd(a, args));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "printed on stdout");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

fn ids(list: &Json, key: &str) -> BTreeSet<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {list}"))
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

fn sync(a: &Agent) {
    tournee_tests::ok(&mut agent_cmd(a, &["sync", "--timeout", "60"]));
}

#[test]
fn a_day_of_walk_ins_persons_and_follow_ups_reaches_the_server_counting_each_person_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = tournee_tests::server_with_tuesday_round(tmp.path(), &skew());
    let one = Agent::init(
        &tmp.path().join("laptop-1"),
        &server.enroll("bus-80-1", "laptop-1"),
    );
    let two = Agent::init(
        &tmp.path().join("laptop-2"),
        &server.enroll("bus-80-1", "laptop-2"),
    );
    server.start_with_env(&[(SKEW, &skew())]);
    sync(&one);
    sync(&two);
    server.stop();

    // Offline from here on. Both laptops record the same woman, one with her accent.
    let passages = agent_json(&one, &["passage", "list", "--date", TODAY]);
    let passage = passages["passages"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("today's passage: {passages}"))
        .to_owned();
    let her = agent(
        &one,
        &[
            "person",
            "add",
            "--name",
            "Mme Lefèvre",
            "--phone",
            "06 12 34 56 78",
            "--commune",
            "80001",
        ],
    );
    let her_twin = agent(&two, &["person", "add", "--name", "Mme Lefevre"]);
    let found = agent_json(&one, &["person", "search", "lefevre"]);
    assert_eq!(ids(&found, "persons"), BTreeSet::from([her.clone()]));
    let by_phone = agent_json(&one, &["person", "search", "0612"]);
    assert_eq!(ids(&by_phone, "persons"), BTreeSet::from([her.clone()]));
    assert!(ids(
        &agent_json(&one, &["person", "search", "martin"]),
        "persons"
    )
    .is_empty());

    // A walk-in with her, found by typing part of her name; two requests, one pending.
    let short = |id: &str| id[..23].to_owned();
    let visit = agent(
        &one,
        &[
            "visit",
            "add",
            "--passage",
            &short(&passage),
            "--person",
            &short(&her),
        ],
    );
    let request = |visit: &str, partner: &str, outcome: &str| {
        agent(
            &one,
            &[
                "request",
                "add",
                "--visit",
                visit,
                "--partner",
                partner,
                "--theme",
                "logement",
                "--level",
                "accompagnement",
                "--outcome",
                outcome,
                "--minutes",
                "20",
            ],
        )
    };
    let pending = request(&visit, "caf", "en_attente_operateur");
    let resolved = request(&visit, "caf", "resolue_sur_place");
    let anonymous = agent(
        &one,
        &["visit", "add", "--passage", &passage, "--anonymous"],
    );
    let mistake = request(&anonymous, "dgfip", "non_resolue");
    agent(&one, &["request", "delete", &mistake]);
    agent(
        &one,
        &[
            "session",
            "add",
            "--passage",
            &passage,
            "--theme",
            "numerique",
            "--attendees",
            "6",
            "--minutes",
            "90",
        ],
    );
    let waiting = agent_json(&one, &["request", "list", "--pending"]);
    assert_eq!(ids(&waiting, "requests"), BTreeSet::from([pending.clone()]));
    assert_eq!(waiting["requests"][0]["person_name"], "Mme Lefèvre");
    let of_today = agent_json(&one, &["request", "list", "--date", TODAY]);
    assert_eq!(
        ids(&of_today, "requests"),
        BTreeSet::from([pending.clone(), resolved.clone()]),
        "the deleted request is gone"
    );

    // Laptop 2 books her twin for next week, then cancels another appointment.
    let booked = agent(
        &two,
        &[
            "appointment",
            "add",
            "--start",
            "2027-01-19T10:00",
            "--duration",
            "30",
            "--location",
            "domicile",
            "--commune",
            "80001",
            "--person",
            &her_twin,
        ],
    );
    let cancelled = agent(
        &two,
        &[
            "appointment",
            "add",
            "--start",
            "2027-01-20T10:00",
            "--duration",
            "30",
            "--location",
            "telephone",
            "--commune",
            "80001",
            "--citizen",
            "M. Durand",
        ],
    );
    agent(&two, &["appointment", "cancel", &cancelled]);
    let week = agent_json(&two, &["appointment", "list", "--week", "2027-01-21"]);
    assert_eq!(week["week"], "2027-01-18");
    assert_eq!(
        ids(&week, "appointments"),
        BTreeSet::from([booked.clone(), cancelled.clone()])
    );
    let statuses: Vec<&str> = week["appointments"]
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["unknown", "revoked"]);

    // Back online: both laptops see both records of her, and merge them.
    server.start_with_env(&[(SKEW, &skew())]);
    sync(&one);
    sync(&two);
    sync(&one);
    let both = agent_json(&one, &["person", "search", "lefevre"]);
    assert_eq!(
        ids(&both, "persons"),
        BTreeSet::from([her.clone(), her_twin.clone()])
    );
    assert_eq!(agent(&one, &["person", "merge", &her, &her_twin]), her);
    let after = agent_json(&one, &["person", "search", "lefevre"]);
    assert_eq!(ids(&after, "persons"), BTreeSet::from([her.clone()]));
    let history = agent_json(&one, &["person", "show", &her_twin]);
    assert_eq!(
        history["person"]["id"],
        her.as_str(),
        "the twin resolves to her"
    );
    assert_eq!(
        ids(&history, "appointments"),
        BTreeSet::from([booked.clone()])
    );
    assert_eq!(ids(&history, "visits"), BTreeSet::from([visit.clone()]));
    assert_eq!(
        ids(&history, "requests"),
        BTreeSet::from([pending.clone(), resolved.clone()])
    );

    // Both laptops change the appointment's note before either syncs: a conflict, shown with
    // the laptops' names.
    agent(
        &one,
        &["appointment", "set", &booked, "--note", "digicode 1234"],
    );
    agent(
        &two,
        &["appointment", "set", &booked, "--note", "sonner fort"],
    );
    sync(&one);
    sync(&two);
    sync(&one);
    let conflicts = agent_json(&one, &["conflicts"]);
    let writers: BTreeSet<&str> = conflicts["conflicts"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("a conflict: {conflicts}"))
        .iter()
        .map(|v| v["device_name"].as_str().expect("name"))
        .collect();
    assert_eq!(writers, BTreeSet::from(["ce poste (laptop-1)", "laptop-2"]));
    let table = agent(&one, &["conflicts"]);
    assert!(
        table.contains("sonner fort (laptop-2, mar. 12 janv."),
        "{table}"
    );
    agent(
        &one,
        &[
            "resolve",
            &booked,
            "note",
            "--value",
            "digicode 1234, sonner fort",
        ],
    );

    // The next day the CAF answered: the pending request is closed.
    agent(
        &one,
        &["request", "set", &pending, "--outcome", "resolue_sur_place"],
    );
    assert!(ids(
        &agent_json(&one, &["request", "list", "--pending"]),
        "requests"
    )
    .is_empty());
    agent(&two, &["appointment", "set", &booked, "--status", "seen"]);
    sync(&one);
    sync(&two);
    sync(&one);
    server.stop();
    assert_eq!(
        one.digest(),
        two.digest(),
        "both laptops hold the same state"
    );

    // The server took everything; coverage counts her once, the anonymous walk-in once.
    let export = json(&srv(
        &server,
        &["export", "--unit", "bus-80-1", "--format", "json"],
    ));
    let text = export.to_string();
    for id in [
        &her, &her_twin, &visit, &anonymous, &pending, &resolved, &booked,
    ] {
        assert!(text.contains(id.as_str()), "{id} on the server");
    }
    let report = json(&srv(
        &server,
        &[
            "coverage",
            "--territory",
            "80",
            "--from",
            "2027-01-11",
            "--to",
            "2027-01-24",
            "--format",
            "json",
        ],
    ));
    let totals = &report["totals"];
    assert_eq!(totals["citizens_received"], 2, "{report}");
    assert_eq!(totals["walk_ins"], 2, "{report}");
    assert_eq!(totals["workshops"], 1, "{report}");
    assert_eq!(totals["workshop_attendees"], 6, "{report}");
    assert_eq!(
        totals["requests"], 2,
        "the deleted one is not counted: {report}"
    );
    assert_eq!(totals["resolved_on_spot"], 2, "{report}");
    assert_eq!(totals["passages_held"], 0, "nobody marked it held");
}

#[test]
fn ids_by_prefix_and_walk_in_forms_fail_clearly_and_change_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = Agent {
        dir: tmp.path().join("laptop"),
    };
    tournee_tests::ok(&mut agent_cmd(
        &a,
        &[
            "init",
            "--device-id",
            "3",
            "--unit",
            "bus-80-1",
            "--territory",
            "80",
        ],
    ));
    let p1 = agent(&a, &["person", "add", "--name", "Anne"]);
    let p2 = agent(&a, &["person", "add", "--name", "Anna"]);
    // Two ids made in the same minute share their first 8 characters.
    let common = p1
        .chars()
        .zip(p2.chars())
        .take_while(|(x, y)| x == y)
        .count();
    if common >= 8 {
        let e = user_error(&a, &["person", "show", &p1[..8]]);
        assert!(e.contains("several records"), "{e}");
    }
    let e = user_error(&a, &["person", "show", "0000000000"]);
    assert!(e.contains("no record begins"), "{e}");
    let e = user_error(&a, &["person", "show", "01ab"]);
    assert!(e.contains("8 characters"), "{e}");
    let e = user_error(&a, &["person", "merge", &p1, &p1]);
    assert!(e.contains("déjà la même personne"), "{e}");
    let e = user_error(
        &a,
        &[
            "visit",
            "add",
            "--commune",
            "99999",
            "--location",
            "domicile",
            "--anonymous",
        ],
    );
    assert!(e.contains("99999"), "{e}");
    let walk_in = agent(
        &a,
        &[
            "visit",
            "add",
            "--commune",
            "80001",
            "--location",
            "telephone",
            "--anonymous",
        ],
    );
    let e = user_error(
        &a,
        &[
            "visit",
            "add",
            "--commune",
            "80001",
            "--location",
            "domicile",
            "--person",
            &walk_in,
        ],
    );
    assert!(e.contains("citizen") || e.contains("person"), "{e}");
    let before = a.digest();
    let e = user_error(
        &a,
        &["request", "set", &p1, "--outcome", "resolue_sur_place"],
    );
    assert!(
        e.to_lowercase().contains("request") || e.contains("demande"),
        "{e}"
    );
    assert_eq!(a.digest(), before, "nothing changed");
    let usage = run(&mut agent_cmd(&a, &["visit", "add", "--anonymous"]));
    assert_eq!(
        usage.status.code(),
        Some(2),
        "a missing place is a usage error"
    );
    let anonymous_and_person = run(&mut agent_cmd(
        &a,
        &[
            "visit",
            "add",
            "--commune",
            "80001",
            "--location",
            "domicile",
            "--anonymous",
            "--person",
            &p2,
        ],
    ));
    assert_eq!(anonymous_and_person.status.code(), Some(2));
}
