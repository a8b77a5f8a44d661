//! Public holidays and moved passages through the real `tournee-server` commands: a round
//! skips the legal holidays of its unit's territory (Good Friday only in Moselle), `holiday
//! add` closes a day and takes its passages away, `holiday remove` brings a worked holiday's
//! passages back, and a passage moved by the scheduler stays where it was put when its round
//! is edited.

use serde_json::Value;
use tournee_tests::{json, run, Server};

/// A server on Monday 15 March 2027 with one Friday round per unit: `bus-57` in Moselle and
/// `bus-80` in the Somme. Returns the server and the clock skew.
fn two_friday_rounds(dir: &std::path::Path) -> (Server, String, String) {
    let skew = tournee_tests::skew_to_day("2027-03-15");
    let server = Server::init(&dir.join("server"), None);
    let srv =
        |args: &[&str]| tournee_tests::ok(server.cmd(args).env("TOURNEE_CLOCK_SKEW_MS", &skew));
    let mut notes = String::new();
    for (unit, territory, commune) in [("bus-57", "57", "57463"), ("bus-80", "80", "80021")] {
        srv(&[
            "unit",
            "add",
            "--id",
            unit,
            "--name",
            unit,
            "--territory",
            territory,
        ]);
        let stop = srv(&[
            "stop",
            "add",
            "--territory",
            territory,
            "--commune",
            commune,
            "--label",
            "Mairie",
        ]);
        let out = run(server
            .cmd(&[
                "round",
                "add",
                "--unit",
                unit,
                "--name",
                "Vendredis",
                "--from",
                "2027-03-15",
                "--stop",
                &format!("{}@fri@09:00-12:00", stop.trim()),
            ])
            .env("TOURNEE_CLOCK_SKEW_MS", &skew));
        assert!(out.status.success(), "{out:?}");
        notes.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    (server, skew, notes)
}

fn passages(server: &Server, skew: &str, unit: &str) -> Vec<Value> {
    let out = tournee_tests::ok(
        server
            .cmd(&[
                "passages",
                "--unit",
                unit,
                "--from",
                "2027-03-15",
                "--to",
                "2027-06-30",
                "--format",
                "json",
            ])
            .env("TOURNEE_CLOCK_SKEW_MS", skew),
    );
    json(&out)["passages"].as_array().expect("passages").clone()
}

fn dates(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|p| p["date"].as_str().expect("date").to_owned())
        .collect()
}

/// The one line a refused command prints, and its exit status 1.
fn refused(server: &Server, skew: &str, args: &[&str]) -> String {
    let out = run(server.cmd(args).env("TOURNEE_CLOCK_SKEW_MS", skew));
    assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn rounds_skip_the_territory_s_holidays_and_follow_its_exceptions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (server, skew, notes) = two_friday_rounds(tmp.path());
    let srv =
        |args: &[&str]| tournee_tests::ok(server.cmd(args).env("TOURNEE_CLOCK_SKEW_MS", &skew));
    assert!(
        notes.contains("pas de passage le 2027-03-26 (Vendredi saint)"),
        "{notes}"
    );
    assert_eq!(
        notes.matches("Vendredi saint").count(),
        1,
        "only in Moselle: {notes}"
    );
    let moselle = dates(&passages(&server, &skew, "bus-57"));
    let somme = dates(&passages(&server, &skew, "bus-80"));
    assert_eq!(somme.len(), 8, "eight Fridays over the horizon: {somme:?}");
    assert_eq!(moselle.len(), 7, "{moselle:?}");
    assert!(!moselle.contains(&"2027-03-26".to_owned()));
    assert!(somme.contains(&"2027-03-26".to_owned()));

    let year = json(&srv(&[
        "holiday",
        "list",
        "--territory",
        "57",
        "--year",
        "2027",
        "--format",
        "json",
    ]));
    let days = year["days"].as_array().expect("days");
    assert_eq!(days.len(), 13, "{year}");
    assert!(days.iter().any(|d| d["date"] == "2027-03-26"
        && d["label"] == "Vendredi saint"
        && d["legal"] == true));
    let table = srv(&["holiday", "list", "--territory", "80", "--year", "2027"]);
    assert!(table.contains("Lundi de Pentecôte"), "{table}");
    assert!(!table.contains("Vendredi saint"), "{table}");

    // A local closure in the Somme takes that Friday's passage away at once.
    let said = srv(&[
        "holiday",
        "add",
        "--territory",
        "80",
        "--date",
        "2027-04-09",
        "--label",
        "Fête locale",
    ]);
    assert!(said.contains("1 passage(s) retiré(s)"), "{said}");
    let somme = dates(&passages(&server, &skew, "bus-80"));
    assert_eq!(somme.len(), 7);
    assert!(!somme.contains(&"2027-04-09".to_owned()));
    assert!(refused(
        &server,
        &skew,
        &[
            "holiday",
            "add",
            "--territory",
            "80",
            "--date",
            "2027-04-09"
        ]
    )
    .contains("déjà un jour sans passage"));
    // Moselle works on Good Friday this year: its passage comes back.
    let said = srv(&[
        "holiday",
        "remove",
        "--territory",
        "57",
        "--date",
        "2027-03-26",
    ]);
    assert!(said.contains("1 passage(s) ajouté(s)"), "{said}");
    assert_eq!(passages(&server, &skew, "bus-57").len(), 8);
    let year = json(&srv(&[
        "holiday",
        "list",
        "--territory",
        "57",
        "--year",
        "2027",
        "--format",
        "json",
    ]));
    assert!(year["days"]
        .as_array()
        .expect("days")
        .iter()
        .any(|d| d["date"] == "2027-03-26" && d["worked"] == true));
    assert!(refused(
        &server,
        &skew,
        &[
            "holiday",
            "remove",
            "--territory",
            "80",
            "--date",
            "2027-04-13"
        ]
    )
    .contains("n'est pas un jour férié"));
    refused(
        &server,
        &skew,
        &["holiday", "list", "--territory", "999", "--year", "2027"],
    );
    let journal = srv(&["audit", "--format", "json"]);
    assert!(
        journal.contains("holiday.add") && journal.contains("holiday.remove"),
        "{journal}"
    );
}

#[test]
fn a_moved_passage_stays_on_its_new_day_when_the_round_changes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (server, skew, _) = two_friday_rounds(tmp.path());
    let srv =
        |args: &[&str]| tournee_tests::ok(server.cmd(args).env("TOURNEE_CLOCK_SKEW_MS", &skew));
    let list = passages(&server, &skew, "bus-80");
    let p = list
        .iter()
        .find(|p| p["date"] == "2027-04-16")
        .expect("the 16 April passage");
    let id = p["id"].as_str().expect("id").to_owned();
    srv(&[
        "passage",
        "move",
        &id,
        "--date",
        "2027-04-15",
        "--start",
        "14:00",
        "--end",
        "16:30",
    ]);
    let moved = |server: &Server| -> Value {
        passages(server, &skew, "bus-80")
            .into_iter()
            .find(|p| p["id"] == id.as_str())
            .expect("still there")
    };
    let m = moved(&server);
    assert_eq!(m["date"], "2027-04-15");
    assert_eq!(m["moved_from"], "2027-04-16");
    assert!(
        m["planned_start"]
            .as_str()
            .expect("start")
            .contains("T14:00"),
        "{m}"
    );
    // Editing the round regenerates its passages but leaves the moved one where it is.
    let rounds = json(&srv(&[
        "round", "list", "--unit", "bus-80", "--format", "json",
    ]));
    let round = rounds["rounds"][0]["id"]
        .as_str()
        .expect("round")
        .to_owned();
    srv(&["round", "set", &round, "--name", "Vendredis (été)"]);
    let m = moved(&server);
    assert_eq!(m["date"], "2027-04-15");
    let all = dates(&passages(&server, &skew, "bus-80"));
    assert!(
        !all.contains(&"2027-04-16".to_owned()),
        "no second passage on the 16th: {all:?}"
    );
    assert_eq!(all.len(), 8);

    assert!(refused(
        &server,
        &skew,
        &["passage", "move", &id, "--date", "2027-03-01"]
    )
    .contains("passé"));
    let other = list
        .iter()
        .find(|p| p["date"] == "2027-04-23")
        .and_then(|p| p["id"].as_str())
        .expect("23 April")
        .to_owned();
    assert!(refused(
        &server,
        &skew,
        &[
            "passage",
            "move",
            &other,
            "--date",
            "2027-04-15",
            "--start",
            "15:00",
            "--end",
            "17:00"
        ]
    )
    .contains("chevaucherait"));
    srv(&["passage", "cancel", &other]);
    assert!(refused(
        &server,
        &skew,
        &["passage", "move", &other, "--date", "2027-04-22"]
    )
    .contains("déjà marqué"));
    // Deleting the round takes the moved passage away with the other unmarked ones.
    let said = srv(&["round", "delete", &round]);
    assert!(
        said.contains("7 future passage(s) removed, 1 kept"),
        "{said}"
    );
}
