//! The console's accounts from the command line and the console served by a real `serve`
//! process: `user add` refuses what it must in one French line, `user link` prints a link to
//! the configured console address, that link opens a session on the running server, and the
//! audit journal holds every step; `stop list` gives a territory's stops.

use tournee_tests::{json, run, Server};

/// A server with a weekly round on Tuesdays at Abbeville (`server_with_tuesday_round`), its
/// commands run on Tuesday 12 January 2027: its directory, the server and the clock skew.
fn tuesday_round() -> (tempfile::TempDir, Server, String) {
    let tmp = tempfile::tempdir().expect("tmp");
    let skew = tournee_tests::skew_to_day("2027-01-12");
    let server = tournee_tests::server_with_tuesday_round(tmp.path(), &skew);
    (tmp, server, skew)
}

/// A server command that must succeed, run with the clock `skew`.
fn skewed(server: &Server, skew: &str, args: &[&str]) -> String {
    tournee_tests::ok(server.cmd(args).env("TOURNEE_CLOCK_SKEW_MS", skew))
}

/// One HTTP/1.1 GET to the running server's console, read to the end.
fn get(server: &Server, path: &str) -> String {
    tournee_tests::http_get(&server.console.to_string(), path, None)
}

#[test]
fn accounts_are_made_on_the_command_line_and_a_link_opens_the_running_console() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = Server::init(&tmp.path().join("server"), None);
    let out = run(&mut server.cmd(&["user", "add", "--name", "sup", "--role", "supervisor"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("--territory : un compte supervisor voit un ou plusieurs territoires"),
        "{err}"
    );
    let out = run(&mut server.cmd(&["user", "add", "--name", "x", "--role", "chef"]));
    assert_eq!(out.status.code(), Some(1), "an unknown role");
    assert_eq!(
        server
            .ok(&[
                "user",
                "add",
                "--name",
                "sup",
                "--role",
                "supervisor",
                "--territory",
                "80"
            ])
            .trim(),
        "sup"
    );
    let users = json(&server.ok(&["user", "list", "--format", "json"]));
    assert_eq!(users["users"][0]["name"], "sup");
    assert_eq!(users["users"][0]["territories"][0], "80");
    assert_eq!(users["users"][0]["has_password"], false);
    // `stop list` gives the ids a round needs, and the commune's name.
    let id = server
        .ok(&[
            "stop",
            "add",
            "--territory",
            "80",
            "--commune",
            "80021",
            "--label",
            "Place Gambetta",
        ])
        .trim()
        .to_owned();
    let stops = json(&server.ok(&["stop", "list", "--territory", "80", "--format", "json"]));
    assert_eq!(stops["stops"][0]["id"], id.as_str());
    assert_eq!(stops["stops"][0]["commune_name"], "Amiens");
    assert!(server
        .ok(&["stop", "list", "--territory", "80"])
        .contains("Place Gambetta"));
    let none = json(&server.ok(&["stop", "list", "--territory", "59", "--format", "json"]));
    assert_eq!(
        none["stops"].as_array().map(Vec::len),
        Some(0),
        "another territory's"
    );
    let link = server.ok(&["user", "link", "sup"]).trim().to_owned();
    let prefix = format!("http://{}/connexion/lien?jeton=", server.console);
    let path = link
        .strip_prefix(&format!("http://{}", server.console))
        .unwrap_or_else(|| panic!("{link} starts with {prefix}"));
    server.start();
    let signed = get(&server, path);
    assert!(signed.starts_with("HTTP/1.1 303"), "{signed}");
    assert!(
        signed.to_lowercase().contains("location: /mot-de-passe"),
        "{signed}"
    );
    assert!(signed.contains("tournee_console="), "{signed}");
    let again = get(&server, path);
    assert!(
        again.starts_with("HTTP/1.1 403"),
        "a link opens once: {again}"
    );
    let anonymous = get(&server, "/couverture?territoire=80");
    assert!(anonymous.starts_with("HTTP/1.1 303"), "{anonymous}");
    server.ok(&["user", "disable", "sup"]);
    server.stop();
    let audit = json(&server.ok(&["audit", "--format", "json"]));
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["user.add", "user.link", "sign_in.link", "user.disable"],
        "{audit}"
    );
    let table = server.ok(&["audit"]);
    assert!(table.contains("sign_in.link"), "{table}");
}

/// The public timetable of a weekly round: `timetable` as iCalendar and CSV parses, holds the
/// round's Tuesdays at Abbeville and nothing of a home visit planned for a named person; the
/// running console serves the same calendar without signing in.
#[test]
fn the_public_timetable_lists_the_coming_passages_and_nothing_personal() {
    let (_tmp, mut server, skew) = tuesday_round();
    let srv = |args: &[&str]| skewed(&server, &skew, args);
    srv(&[
        "appointment",
        "add",
        "--unit",
        "bus-80-1",
        "--start",
        "2027-01-13T10:00",
        "--duration",
        "30",
        "--location",
        "domicile",
        "--commune",
        "80021",
        "--citizen",
        "Mme Discrète",
        "--note",
        "tel 06 99 88 77 66",
    ]);
    let ics = srv(&["timetable", "--territory", "80", "--format", "ics"]);
    let cal: icalendar::Calendar = ics.parse().expect("iCalendar parses");
    let events: Vec<&icalendar::Event> =
        cal.components.iter().filter_map(|c| c.as_event()).collect();
    assert!(events.len() >= 4, "the Tuesdays ahead: {ics}");
    use icalendar::{Component, EventLike};
    for e in &events {
        assert!(
            e.get_location().is_some_and(|l| l.contains("Abbeville")),
            "{ics}"
        );
        assert!(e.get_uid().is_some_and(|u| u.ends_with("@tournee")));
    }
    let csv = srv(&[
        "timetable",
        "--unit",
        "bus-80-1",
        "--format",
        "csv",
        "--to",
        "2027-01-31",
    ]);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, tournee_server::timetable::CSV_COLUMNS);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let days: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(days, ["2027-01-12", "2027-01-19", "2027-01-26"], "{csv}");
    assert_eq!(
        (&rows[0][1], &rows[0][2], &rows[0][4]),
        ("09:00", "12:00", "Abbeville")
    );
    let json = json(&srv(&[
        "timetable",
        "--territory",
        "80",
        "--format",
        "json",
    ]));
    for text in [&ics, &csv, &json.to_string()] {
        for personal in ["Discrète", "06 99", "Amiens"] {
            assert!(
                !text.contains(personal),
                "{personal} in the public timetable"
            );
        }
    }
    let out = run(&mut server.cmd(&["timetable", "--territory", "80"]));
    assert_eq!(out.status.code(), Some(2), "--format is required");
    server.start_with_env(&[("TOURNEE_CLOCK_SKEW_MS", &skew)]);
    let public = get(&server, "/horaires.ics?territoire=80");
    assert!(
        public.starts_with("HTTP/1.1 200"),
        "no sign-in needed: {public}"
    );
    assert_eq!(public.matches("BEGIN:VEVENT").count(), events.len());
    let page = get(&server, "/horaires?territoire=80");
    assert!(
        page.contains("Abbeville") && !page.contains("Discrète"),
        "{page}"
    );
    server.stop();
}

/// The scheduler cancels one passage (the unit's laptops and the public timetable see it
/// cancelled), then deletes the round: its future passages go, the cancelled one (marked)
/// stays; mistakes are one French line and change nothing.
#[test]
fn a_scheduler_cancels_a_passage_then_deletes_the_round_keeping_what_is_marked() {
    let (_tmp, server, skew) = tuesday_round();
    let srv = |args: &[&str]| skewed(&server, &skew, args);
    let passages = |srv: &dyn Fn(&[&str]) -> String| {
        json(&srv(&[
            "passages",
            "--from",
            "2027-01-12",
            "--to",
            "2027-06-30",
            "--format",
            "json",
        ]))["passages"]
            .as_array()
            .expect("passages")
            .clone()
    };
    let before = passages(&srv);
    assert_eq!(before.len(), 8, "eight Tuesdays over the horizon");
    let second = before[1]["id"].as_str().expect("id").to_owned();
    srv(&["passage", "cancel", &second, "--cause", "meteo"]);
    let bad = run(server
        .cmd(&["passage", "cancel", "nope"])
        .env("TOURNEE_CLOCK_SKEW_MS", &skew));
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr)
            .trim_end()
            .lines()
            .count(),
        1
    );
    let cancelled: Vec<_> = passages(&srv)
        .into_iter()
        .filter(|p| p["status"] == "annule")
        .collect();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["cause"], "meteo");
    let rounds = json(&srv(&["round", "list", "--format", "json"]));
    let round = rounds["rounds"][0]["id"]
        .as_str()
        .expect("round")
        .to_owned();
    let said = srv(&["round", "delete", &round]);
    assert!(
        said.contains("7 future passage(s) removed, 1 kept"),
        "{said}"
    );
    let after = passages(&srv);
    assert_eq!(after.len(), 1, "only the marked passage stays");
    assert_eq!(after[0]["id"], second.as_str());
    let csv = srv(&["timetable", "--unit", "bus-80-1", "--format", "csv"]);
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert_eq!(&rows[0][9], "true", "the public sees it cancelled");
    let again = run(server
        .cmd(&["round", "delete", &round])
        .env("TOURNEE_CLOCK_SKEW_MS", &skew));
    assert_eq!(again.status.code(), Some(1), "a deleted round is gone");
}

/// A stop's label and address change; its commune changes while the stop has no history
/// (then a new place is a new stop); it is archived only once no live round visits it.
#[test]
fn a_stop_is_renamed_and_archived_once_no_round_visits_it() {
    let (_tmp, server, skew) = tuesday_round();
    let srv = |args: &[&str]| skewed(&server, &skew, args);
    let fails = |args: &[&str], why: &str| {
        let out = run(server.cmd(args).env("TOURNEE_CLOCK_SKEW_MS", &skew));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(why), "{err}");
    };
    let stops = json(&srv(&[
        "stop",
        "list",
        "--territory",
        "80",
        "--format",
        "json",
    ]));
    let stop = stops["stops"][0]["id"].as_str().expect("stop").to_owned();
    srv(&[
        "stop",
        "set",
        &stop,
        "--label",
        "Place du marché",
        "--address",
        "1 place du Marché",
    ]);
    let stops = json(&srv(&[
        "stop",
        "list",
        "--territory",
        "80",
        "--format",
        "json",
    ]));
    assert_eq!(stops["stops"][0]["label"], "Place du marché");
    assert_eq!(stops["stops"][0]["address"], "1 place du Marché");
    srv(&["stop", "set", &stop, "--commune", "80021"]);
    let stops = json(&srv(&[
        "stop",
        "list",
        "--territory",
        "80",
        "--format",
        "json",
    ]));
    assert_eq!(stops["stops"][0]["commune_name"], "Amiens");
    fails(
        &["stop", "set", &stop, "--commune", "59350"],
        "n'est pas dans le territoire 80",
    );
    let passages = json(&srv(&[
        "passages",
        "--from",
        "2027-01-12",
        "--to",
        "2027-02-28",
        "--format",
        "json",
    ]));
    assert_eq!(
        passages["passages"][0]["commune"], "80021",
        "its passages follow"
    );
    let first = passages["passages"][0]["id"].as_str().expect("passage");
    srv(&["passage", "cancel", first]);
    fails(
        &["stop", "set", &stop, "--commune", "80001"],
        "cet arrêt a un historique (1 passage",
    );
    fails(&["stop", "set", &stop], "rien à changer");
    fails(&["stop", "archive", &stop], "passe encore par cet arrêt");
    let rounds = json(&srv(&["round", "list", "--format", "json"]));
    srv(&[
        "round",
        "delete",
        rounds["rounds"][0]["id"].as_str().expect("round"),
    ]);
    srv(&["stop", "archive", &stop]);
    let stops = json(&srv(&[
        "stop",
        "list",
        "--territory",
        "80",
        "--format",
        "json",
    ]));
    assert_eq!(stops["stops"].as_array().map(Vec::len), Some(0), "archived");
}
