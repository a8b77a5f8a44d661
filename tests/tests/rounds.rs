//! Rounds at their limits and passage times at their edges, with real processes: a round over
//! the longest horizon is created (and edited) with all its passages in one go, a window in
//! the hour skipped in spring is planned by the documented rule, a round holds more than a
//! hundred windows and reaches a laptop, a broken round never keeps the daemon from
//! materialising the others, actual times belong to the passage's day, and a local time of
//! the autumn hour that repeats is refused with a message asking for the offset.
//!
//! "Today" is moved with `TOURNEE_CLOCK_SKEW_MS` on every process of a scenario. Expected
//! dates and counts are computed here from the calendar, not from the product's code.

use std::path::Path;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};
use serde_json::Value as Json;
use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::store::{LocalAction, RecordEdit, Store};
use tournee_tests::json;
use tournee_tests::{run, Agent, Server};
use uuid::Uuid;

const SKEW: &str = "TOURNEE_CLOCK_SKEW_MS";
const UNIT: &str = "bus-80-1";

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// The skew that makes a process's "now" 10:00 UTC on `day` (the same date in Paris).
fn skew_to(day: NaiveDate) -> String {
    tournee_tests::skew_to_day(&day.to_string())
}

fn srv(server: &Server, day: NaiveDate, args: &[&str]) -> String {
    tournee_tests::ok(server.cmd(args).env(SKEW, skew_to(day)))
}

fn agent(a: &Agent, day: NaiveDate, args: &[&str]) -> String {
    tournee_tests::ok(a.cmd(args).env(SKEW, skew_to(day)))
}

/// A command that must fail as a user error: exit 1, nothing on stdout, one line on stderr
/// (returned).
fn user_error(cmd: &mut std::process::Command) -> String {
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "printed on stdout");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

/// A server with unit `bus-80-1` (Somme) and one stop; `horizon_weeks` set in server.toml.
fn server_with_stop(dir: &Path, today: NaiveDate, horizon_weeks: u32) -> (Server, String) {
    let server = Server::init(dir, None);
    let config = dir.join("server.toml");
    let text = std::fs::read_to_string(&config).expect("server.toml");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("horizon_weeks"))
        .collect();
    std::fs::write(
        &config,
        format!("horizon_weeks = {horizon_weeks}\n{}\n", kept.join("\n")),
    )
    .expect("write server.toml");
    srv(
        &server,
        today,
        &[
            "unit",
            "add",
            "--id",
            UNIT,
            "--name",
            "Bus Est Somme",
            "--territory",
            "80",
        ],
    );
    let stop = srv(
        &server,
        today,
        &[
            "stop",
            "add",
            "--territory",
            "80",
            "--commune",
            "80001",
            "--label",
            "Place Max Lejeune",
        ],
    )
    .trim()
    .to_owned();
    (server, stop)
}

fn round_add_args(from: NaiveDate, windows: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        "round",
        "add",
        "--unit",
        UNIT,
        "--name",
        "Tournée Est",
        "--from",
        &from.to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for w in windows {
        args.push("--stop".into());
        args.push(w.clone());
    }
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `passages --format json` over `[from, to]`.
fn passages(server: &Server, today: NaiveDate, from: NaiveDate, to: NaiveDate) -> Vec<Json> {
    let doc = json(&srv(
        server,
        today,
        &[
            "passages",
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
            "--format",
            "json",
        ],
    ));
    doc["passages"].as_array().expect("passages").clone()
}

fn rounds(server: &Server, today: NaiveDate) -> Vec<Json> {
    let doc = json(&srv(server, today, &["round", "list", "--format", "json"]));
    doc.as_array()
        .or_else(|| doc["rounds"].as_array())
        .expect("rounds")
        .clone()
}

/// How many days off of the Somme fall in `[from, to]` (a daily round skips them).
fn holidays_between(server: &Server, today: NaiveDate, from: NaiveDate, to: NaiveDate) -> usize {
    (from.year()..=to.year())
        .map(|year| {
            let doc = json(&srv(
                server,
                today,
                &[
                    "holiday",
                    "list",
                    "--territory",
                    "80",
                    "--year",
                    &year.to_string(),
                    "--format",
                    "json",
                ],
            ));
            doc["days"]
                .as_array()
                .expect("days")
                .iter()
                .filter_map(|day| day["date"].as_str().map(d))
                .filter(|d| (from..=to).contains(d))
                .count()
        })
        .sum()
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[test]
fn a_round_over_the_longest_horizon_is_added_and_edited_with_all_its_passages() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let today = d("2027-01-04"); // a Monday
    let (server, stop) = server_with_stop(tmp.path(), today, 104);
    let windows: Vec<String> = WEEKDAYS
        .iter()
        .map(|w| format!("{stop}@{w}@09:00-12:00"))
        .collect();
    let round = srv(&server, today, &strs(&round_add_args(today, &windows)))
        .trim()
        .to_owned();
    let last = today + Duration::days(104 * 7 - 1);
    let days = 104 * 7 - holidays_between(&server, today, today, last);
    let all = passages(&server, today, today, last);
    assert_eq!(
        all.len(),
        days,
        "every working day of 104 weeks has its passage"
    );
    assert!(all.iter().all(|p| p["stop"] == stop.as_str()));
    assert_eq!(rounds(&server, today).len(), 1);
    assert!(passages(
        &server,
        today,
        last + Duration::days(1),
        last + Duration::days(30)
    )
    .is_empty());

    // Moving every window an hour later gives each passage a new id: 728 new, 728 dropped,
    // well over the old 4,096-change cap, still one transaction.
    let mut set: Vec<String> = vec!["round".into(), "set".into(), round.clone()];
    for w in WEEKDAYS {
        set.push("--stop".into());
        set.push(format!("{stop}@{w}@10:00-13:00"));
    }
    srv(&server, today, &strs(&set));
    let after = passages(&server, today, today, last);
    assert_eq!(after.len(), days);
    for p in &after {
        let start = p["planned_start"].as_str().expect("planned_start");
        assert!(start.contains("T10:00:00+0"), "{p}");
    }
}

#[test]
fn a_window_in_the_spring_gap_is_planned_by_the_rule_and_the_round_has_all_its_passages() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Summer time starts at 02:00 on Sunday 2027-03-28; today is the Monday before.
    let today = d("2027-03-22");
    let (server, stop) = server_with_stop(tmp.path(), today, 8);
    let windows = vec![format!("{stop}@sun@02:00-03:30")];
    let out = run(server
        .cmd(&strs(&round_add_args(today, &windows)))
        .env(SKEW, skew_to(today)));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let notes: Vec<&str> = stderr.lines().filter(|l| l.starts_with("note")).collect();
    assert_eq!(
        notes.len(),
        1,
        "the scheduler is told about that night only: {stderr}"
    );
    assert!(
        notes[0].contains("2027-03-28") && notes[0].contains("03:00") && notes[0].contains("04:30"),
        "{stderr}"
    );
    let all = passages(&server, today, today, today + Duration::weeks(8));
    let sundays: Vec<NaiveDate> = (0..8)
        .map(|w| d("2027-03-28") + Duration::weeks(w))
        .collect();
    let mut got: Vec<NaiveDate> = all
        .iter()
        .map(|p| d(p["date"].as_str().expect("date")))
        .collect();
    got.sort();
    assert_eq!(
        got, sundays,
        "no Sunday is missing, the night of the change included"
    );
    let night = all
        .iter()
        .find(|p| p["date"] == "2027-03-28")
        .expect("the night of the change");
    // The window keeps its 1 h 30, read as if the clocks had not changed yet.
    assert_eq!(
        night["planned_start"], "2027-03-28T03:00:00+02:00",
        "{night}"
    );
    assert_eq!(night["planned_end"], "2027-03-28T04:30:00+02:00", "{night}");
    let next = all
        .iter()
        .find(|p| p["date"] == "2027-04-04")
        .expect("next");
    assert_eq!(next["planned_start"], "2027-04-04T02:00:00+02:00");
    assert_eq!(next["planned_end"], "2027-04-04T03:30:00+02:00");
}

/// `n` windows of 20 minutes on distinct weekdays and hours, none overlapping.
fn many_windows(stop: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let day = WEEKDAYS[i % 7];
            let slot = u32::try_from(i / 7).expect("slot");
            let start = NaiveTime::from_hms_opt(6, 0, 0).expect("t")
                + Duration::minutes(i64::from(slot) * 30);
            let end = start + Duration::minutes(20);
            format!(
                "{stop}@{day}@{}-{}",
                start.format("%H:%M"),
                end.format("%H:%M")
            )
        })
        .collect()
}

#[test]
fn a_round_of_a_hundred_windows_is_kept_whole_and_reaches_a_laptop_and_one_too_many_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let today = d("2027-01-04");
    let (mut server, stop) = server_with_stop(&tmp.path().join("server"), today, 2);
    let too_many = many_windows(&stop, 129);
    let e = user_error(
        server
            .cmd(&strs(&round_add_args(today, &too_many)))
            .env(SKEW, skew_to(today)),
    );
    assert!(e.contains("129") && e.contains("128"), "{e}");
    assert!(rounds(&server, today).is_empty(), "nothing was written");

    let windows = many_windows(&stop, 100);
    let round = srv(&server, today, &strs(&round_add_args(today, &windows)))
        .trim()
        .to_owned();
    let listed = rounds(&server, today);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], round.as_str());
    assert_eq!(listed[0]["stops"].as_array().expect("stops").len(), 100);
    let all = passages(&server, today, today, today + Duration::days(13));
    assert_eq!(all.len(), 200, "100 windows a week over two weeks");

    server.start_with_env(&[(SKEW, &skew_to(today))]);
    let laptop = Agent::init(&tmp.path().join("laptop"), &server.enroll(UNIT, "laptop-1"));
    agent(&laptop, today, &["sync", "--timeout", "30"]);
    server.stop();
    let monday = json(&agent(
        &laptop,
        today,
        &[
            "passage",
            "list",
            "--date",
            &today.to_string(),
            "--format",
            "json",
        ],
    ));
    let rows = monday
        .as_array()
        .or_else(|| monday["passages"].as_array())
        .expect("passages");
    let expected_mondays = (0..100).filter(|i| i % 7 == 0).count();
    assert_eq!(rows.len(), expected_mondays, "{monday}");
    assert_eq!(
        laptop.digest(),
        server.digest(UNIT),
        "the laptop has the whole round"
    );
}

/// Write a round record without a start date straight into the server's store: no command
/// makes one, but a store written by an older version might hold one, and the daemon must go
/// on with the other rounds. Its id sorts before every real round.
fn plant_broken_round(server: &Server) -> Uuid {
    let mut store = tournee_report::facts::open_server_store(&server.dir.join("server.sqlite"))
        .expect("open server store");
    let id = Uuid::from_u128(1);
    store
        .write_local(
            u64::try_from(chrono::Utc::now().timestamp_millis()).expect("now"),
            &LocalAction {
                edits: vec![RecordEdit {
                    id,
                    kind: Kind::Round,
                    scope: Scope::Unit(UNIT.into()),
                    create: true,
                    sets: vec![(Field::Name, Value::Text("Cassée".into()))],
                }],
            },
        )
        .expect("plant round");
    id
}

#[test]
fn a_round_that_cannot_be_materialised_never_blocks_the_others() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let today = d("2027-01-04");
    let (mut server, stop) = server_with_stop(tmp.path(), today, 1);
    let windows = vec![format!("{stop}@mon@09:00-12:00")];
    srv(&server, today, &strs(&round_add_args(today, &windows)));
    let broken = plant_broken_round(&server);
    assert_eq!(
        passages(&server, today, today, today + Duration::weeks(3)).len(),
        1
    );

    // Two weeks later the daemon extends the horizon at its start.
    let later = today + Duration::weeks(2);
    assert_eq!(later.weekday(), Weekday::Mon);
    server.start_with_env(&[(SKEW, &skew_to(later))]);
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while !server.log_text().contains("passages materialised") {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(StdDuration::from_millis(50));
    }
    server.stop();
    let log = server.log_text();
    let got = passages(&server, later, later, later + Duration::weeks(1));
    assert_eq!(
        got.len(),
        1,
        "the good round reached the new horizon: {log}"
    );
    assert_eq!(got[0]["date"], later.to_string());
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&broken.to_string()))
        .collect();
    assert_eq!(warned.len(), 1, "one line about the broken round: {log}");
    assert!(warned[0].contains("start date"), "{}", warned[0]);
}

/// A server with a weekly Tuesday round, a laptop that synced it; returns the laptop and the
/// id of the passage on `tuesday`.
fn laptop_with_passage(dir: &Path, today: NaiveDate, tuesday: NaiveDate) -> (Agent, String) {
    let (mut server, stop) = server_with_stop(&dir.join("server"), today, 2);
    srv(
        &server,
        today,
        &strs(&round_add_args(today, &[format!("{stop}@tue@09:00-12:00")])),
    );
    server.start_with_env(&[(SKEW, &skew_to(today))]);
    let laptop = Agent::init(&dir.join("laptop"), &server.enroll(UNIT, "laptop-1"));
    agent(&laptop, today, &["sync", "--timeout", "30"]);
    server.stop();
    let listed = json(&agent(
        &laptop,
        today,
        &[
            "passage",
            "list",
            "--date",
            &tuesday.to_string(),
            "--format",
            "json",
        ],
    ));
    let rows = listed
        .as_array()
        .or_else(|| listed["passages"].as_array())
        .expect("passages");
    assert_eq!(rows.len(), 1, "{listed}");
    let id = rows[0]["id"].as_str().expect("id").to_owned();
    (laptop, id)
}

#[test]
fn actual_times_must_be_on_the_passage_day_and_end_after_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (today, tuesday) = (d("2027-01-04"), d("2027-01-05"));
    let (laptop, passage) = laptop_with_passage(tmp.path(), today, tuesday);
    let set = |start: &str, end: &str| {
        let mut c = laptop.cmd(&[
            "passage",
            "set",
            &passage,
            "--status",
            "effectue",
            "--actual-start",
            start,
            "--actual-end",
            end,
        ]);
        c.env(SKEW, skew_to(tuesday));
        c
    };
    let before = laptop.digest();
    let e = user_error(&mut set("2027-01-06T09:05", "2027-01-06T12:10"));
    assert!(
        e.contains("actual-start") && e.contains("2027-01-05"),
        "{e}"
    );
    let e = user_error(&mut set("2027-01-05T09:05", "2027-01-06T00:10"));
    assert!(e.contains("actual-end") && e.contains("2027-01-05"), "{e}");
    let e = user_error(&mut set("2027-01-05T12:10", "2027-01-05T09:05"));
    assert!(e.contains("actual-end") && e.contains("après"), "{e}");
    assert_eq!(laptop.digest(), before, "nothing was recorded");
    tournee_tests::ok(&mut set("2027-01-05T09:05", "2027-01-05T12:10"));
    assert_ne!(laptop.digest(), before);
}

#[test]
fn a_local_time_of_the_autumn_hour_that_repeats_asks_for_its_offset() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Winter time starts at 03:00 on Sunday 2026-10-25: 02:00-03:00 happens twice.
    let today = d("2026-10-19");
    let (mut server, _) = server_with_stop(&tmp.path().join("server"), today, 2);
    server.start_with_env(&[(SKEW, &skew_to(today))]);
    let laptop = Agent::init(&tmp.path().join("laptop"), &server.enroll(UNIT, "laptop-1"));
    server.stop();
    let add = |start: &str| {
        let mut c = laptop.cmd(&[
            "appointment",
            "add",
            "--start",
            start,
            "--duration",
            "30",
            "--location",
            "domicile",
            "--commune",
            "80021",
        ]);
        c.env(SKEW, skew_to(today));
        c
    };
    let e = user_error(&mut add("2026-10-25T02:30"));
    assert!(
        e.contains("2026-10-25T02:30+02:00") && e.contains("2026-10-25T02:30+01:00"),
        "{e}"
    );
    let summer = tournee_tests::ok(&mut add("2026-10-25T02:30+02:00"))
        .trim()
        .to_owned();
    let winter = tournee_tests::ok(&mut add("2026-10-25T02:30+01:00"))
        .trim()
        .to_owned();
    let show = |id: &str| {
        json(&agent(
            &laptop,
            today,
            &["appointment", "show", id, "--format", "json"],
        ))
    };
    let start = |v: Json| v["fields"]["start"]["value"].as_i64().expect("start");
    let at = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .expect("rfc3339")
            .timestamp()
    };
    // 02:30 summer time is 00:30 UTC; 02:30 winter time, an hour later.
    assert_eq!(start(show(&summer)), at("2026-10-25T00:30:00Z"));
    assert_eq!(start(show(&winter)), at("2026-10-25T01:30:00Z"));
}
