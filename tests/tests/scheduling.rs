//! Scheduling and coverage with real processes: rounds and the passages they materialise over
//! the horizon (across daylight-saving changes, through edits that must keep past and marked
//! passages), validation errors of the scheduler's commands, and the supervisor's coverage
//! report checked against what laptops recorded offline, in every grouping and format.
//!
//! "Today" is moved with `TOURNEE_CLOCK_SKEW_MS` (computed from the real clock) on every
//! process of a scenario, so dates are fixed whatever day the tests run. Expected dates, UTC
//! offsets and report numbers are computed here, independently of the product's code.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::OnceLock;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde_json::Value as Json;
use tournee_report::report::CSV_COLUMNS;
use tournee_tests::json;
use tournee_tests::{run, Agent, Server};

const SKEW: &str = "TOURNEE_CLOCK_SKEW_MS";
/// Weeks of passages `init` configures (`horizon_weeks` in server.toml).
const HORIZON_WEEKS: i64 = 8;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// The clock skew, in milliseconds, that makes a process's "now" 10:00 UTC on `day` (11:00 or
/// 12:00 in Paris: the same date there).
fn skew_to(day: NaiveDate) -> String {
    tournee_tests::skew_to_day(&day.to_string())
}

/// A server command run on `day`, that must succeed; returns stdout.
fn srv(server: &Server, day: NaiveDate, args: &[&str]) -> String {
    tournee_tests::ok(server.cmd(args).env(SKEW, skew_to(day)))
}

/// A server command run on `day` that must fail as a user error: exit 1, nothing on stdout,
/// one line on stderr (returned).
fn srv_err(server: &Server, day: NaiveDate, args: &[&str]) -> String {
    let out = run(server.cmd(args).env(SKEW, skew_to(day)));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

/// An agent command run on `day`, that must succeed; returns stdout.
fn agent(a: &Agent, day: NaiveDate, args: &[&str]) -> String {
    tournee_tests::ok(a.cmd(args).env(SKEW, skew_to(day)))
}

fn sync(a: &Agent, day: NaiveDate) {
    agent(a, day, &["sync", "--timeout", "30"]);
}

fn start(server: &mut Server, day: NaiveDate) {
    server.start_with_env(&[(SKEW, &skew_to(day))]);
}

fn agent_cmd(a: &Agent, day: NaiveDate, args: &[&str]) -> Command {
    let mut c = a.cmd(args);
    c.env(SKEW, skew_to(day));
    c
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let mut day = NaiveDate::from_ymd_opt(year, month + 1, 1).expect("month") - Duration::days(1);
    while day.weekday() != Weekday::Sun {
        day -= Duration::days(1);
    }
    day
}

/// Paris's UTC offset in the daytime of `day` (EU rule: summer time from the last Sunday of
/// March to the last Sunday of October).
fn paris_offset(day: NaiveDate) -> &'static str {
    if day >= last_sunday(day.year(), 3) && day < last_sunday(day.year(), 10) {
        "+02:00"
    } else {
        "+01:00"
    }
}

// ---------------------------------------------------------------------------------------------
// Rounds and passages
// ---------------------------------------------------------------------------------------------

/// One passage as `passages --format json` lists it (the fields a scheduler looks at).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Listed {
    date: NaiveDate,
    stop: String,
    planned_start: String,
    planned_end: String,
    status: String,
    cause: Option<String>,
    actual_start: Option<String>,
}

/// Passages keyed by (date, stop).
type Plan = BTreeMap<(NaiveDate, String), Listed>;

/// A window of a round as the test writes it: stop, weekday, start, end.
type Window<'a> = (&'a str, Weekday, &'a str, &'a str);

fn weekday_code(w: Weekday) -> &'static str {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][w.num_days_from_monday() as usize]
}

fn stop_arg(w: &Window) -> String {
    format!("{}@{}@{}-{}", w.0, weekday_code(w.1), w.2, w.3)
}

/// The passages a round valid from Monday `from`, every `every` weeks, must have from `today`
/// to the end of the horizon: walked week by week from its first Monday.
/// The Somme's public holidays of 2027 as published (service-public.fr): no passage on them.
const SOMME_HOLIDAYS_2027: [&str; 11] = [
    "2027-01-01",
    "2027-03-29",
    "2027-05-01",
    "2027-05-06",
    "2027-05-08",
    "2027-05-17",
    "2027-07-14",
    "2027-08-15",
    "2027-11-01",
    "2027-11-11",
    "2027-12-25",
];

fn expected_plan(from: NaiveDate, every: i64, windows: &[Window], today: NaiveDate) -> Plan {
    assert_eq!(
        from.weekday(),
        Weekday::Mon,
        "the test's rounds start on a Monday"
    );
    let end = today + Duration::weeks(HORIZON_WEEKS); // exclusive
    let mut out = BTreeMap::new();
    for w in windows {
        let mut k = 0;
        loop {
            let day = from
                + Duration::weeks(k * every)
                + Duration::days(i64::from(w.1.num_days_from_monday()));
            if day >= end {
                break;
            }
            if day >= today && !SOMME_HOLIDAYS_2027.contains(&day.to_string().as_str()) {
                let at = |hhmm: &str| format!("{day}T{hhmm}:00{}", paris_offset(day));
                out.insert(
                    (day, w.0.to_owned()),
                    Listed {
                        date: day,
                        stop: w.0.to_owned(),
                        planned_start: at(w.2),
                        planned_end: at(w.3),
                        status: "planifie".into(),
                        cause: None,
                        actual_start: None,
                    },
                );
            }
            k += 1;
        }
    }
    out
}

/// `passages --format json` over `[from, to]`, keyed by (date, stop), with the ids.
fn listed(
    server: &Server,
    today: NaiveDate,
    from: NaiveDate,
    to: NaiveDate,
) -> (Plan, BTreeMap<(NaiveDate, String), String>) {
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
    let mut out = BTreeMap::new();
    let mut ids = BTreeMap::new();
    let text = |v: &Json| v.as_str().map(str::to_owned);
    for p in doc["passages"].as_array().expect("passages") {
        let l = Listed {
            date: d(p["date"].as_str().expect("date")),
            stop: text(&p["stop"]).expect("stop"),
            planned_start: text(&p["planned_start"]).expect("planned_start"),
            planned_end: text(&p["planned_end"]).expect("planned_end"),
            status: text(&p["status"]).expect("status"),
            cause: text(&p["cause"]),
            actual_start: text(&p["actual_start"]),
        };
        let key = (l.date, l.stop.clone());
        ids.insert(key.clone(), text(&p["id"]).expect("id"));
        assert!(
            out.insert(key, l).is_none(),
            "two passages of one stop on one day: {p}"
        );
    }
    (out, ids)
}

fn days_of(plan: &Plan, stop: &str) -> Vec<String> {
    plan.keys()
        .filter(|(_, s)| s == stop)
        .map(|(day, _)| day.to_string())
        .collect()
}

/// Server with a unit of the Somme and two stops in it.
fn somme_server(dir: &std::path::Path, today: NaiveDate) -> (Server, String, String) {
    let server = Server::init(dir, None);
    srv(
        &server,
        today,
        &[
            "unit",
            "add",
            "--id",
            "bus-80-1",
            "--name",
            "Bus Est Somme",
            "--territory",
            "80",
        ],
    );
    let stop = |commune: &str, label: &str| {
        srv(
            &server,
            today,
            &[
                "stop",
                "add",
                "--territory",
                "80",
                "--commune",
                commune,
                "--label",
                label,
            ],
        )
        .trim()
        .to_owned()
    };
    let a = stop("80001", "Place Max Lejeune");
    let b = stop("80253", "Parking de la gare");
    (server, a, b)
}

fn add_round(
    server: &Server,
    today: NaiveDate,
    from: NaiveDate,
    every: i64,
    windows: &[Window],
) -> String {
    let mut args: Vec<String> = [
        "round",
        "add",
        "--unit",
        "bus-80-1",
        "--name",
        "Tournée Est",
        "--from",
        &from.to_string(),
        "--every-weeks",
        &every.to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for w in windows {
        args.push("--stop".into());
        args.push(stop_arg(w));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    srv(server, today, &args).trim().to_owned()
}

#[test]
fn a_fortnightly_round_lands_on_the_right_days_across_the_autumn_change() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Summer time ends on Sunday 2026-10-25: today is two weeks before.
    let (from, today) = (d("2026-10-05"), d("2026-10-12"));
    assert_eq!(last_sunday(2026, 10), d("2026-10-25"));
    let (server, a, b) = somme_server(tmp.path(), today);
    let windows = [
        (a.as_str(), Weekday::Tue, "09:00", "12:00"),
        (b.as_str(), Weekday::Thu, "14:00", "17:00"),
    ];
    add_round(&server, today, from, 2, &windows);
    let expected = expected_plan(from, 2, &windows, today);
    // The walk above, spelled out: weeks 0, 2, 4… from the week of 2026-10-05; the first
    // week's visits are before today; the horizon ends on 2026-12-06.
    assert_eq!(
        days_of(&expected, &a),
        ["2026-10-20", "2026-11-03", "2026-11-17", "2026-12-01"]
    );
    assert_eq!(
        days_of(&expected, &b),
        ["2026-10-22", "2026-11-05", "2026-11-19", "2026-12-03"]
    );
    let (got, _) = listed(&server, today, today - Duration::weeks(4), d("2027-02-01"));
    assert_eq!(got, expected);
    assert_eq!(
        got[&(d("2026-10-20"), a.clone())].planned_start,
        "2026-10-20T09:00:00+02:00"
    );
    assert_eq!(
        got[&(d("2026-11-03"), a.clone())].planned_start,
        "2026-11-03T09:00:00+01:00"
    );
}

#[test]
fn a_fortnightly_round_across_the_spring_change_then_an_edit_keeps_past_and_marked_passages() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The round started on Monday 2027-02-15; today is Wednesday 2027-03-03; summer time
    // starts on Sunday 2027-03-28, inside the horizon (to 2027-04-27).
    let (from, t0) = (d("2027-02-15"), d("2027-03-03"));
    assert_eq!(last_sunday(2027, 3), d("2027-03-28"));
    let (mut server, a, b) = somme_server(&tmp.path().join("server"), t0);
    let windows = [
        (a.as_str(), Weekday::Tue, "09:00", "12:00"),
        (b.as_str(), Weekday::Thu, "14:00", "17:00"),
    ];
    let round = add_round(&server, t0, from, 2, &windows);
    let expected = expected_plan(from, 2, &windows, t0);
    assert_eq!(
        days_of(&expected, &a),
        ["2027-03-16", "2027-03-30", "2027-04-13", "2027-04-27"],
        "Tuesday 03-02 is before today; 04-27 is the horizon's last day"
    );
    assert_eq!(
        days_of(&expected, &b),
        ["2027-03-04", "2027-03-18", "2027-04-01", "2027-04-15"]
    );
    let window = (t0 - Duration::weeks(4), d("2027-07-01"));
    let (before, ids) = listed(&server, t0, window.0, window.1);
    assert_eq!(before, expected);
    let offsets: BTreeSet<&str> = before
        .values()
        .map(|p| &p.planned_start[p.planned_start.len() - 6..])
        .collect();
    assert_eq!(
        offsets,
        BTreeSet::from(["+01:00", "+02:00"]),
        "both sides of the change"
    );
    for p in before.values().filter(|p| p.stop == a) {
        assert_eq!(
            &p.planned_start[10..],
            format!("T09:00:00{}", paris_offset(p.date)),
            "{p:?}"
        );
    }

    // The unit's laptop gets the plan, then marks two future passages: one held (with its
    // actual times), one cancelled.
    start(&mut server, t0);
    let laptop = Agent::init(
        &tmp.path().join("laptop"),
        &server.enroll("bus-80-1", "laptop-1"),
    );
    sync(&laptop, t0);
    let on_laptop = json(&agent(
        &laptop,
        t0,
        &[
            "passage",
            "list",
            "--date",
            "2027-04-13",
            "--format",
            "json",
        ],
    ));
    let held = ids[&(d("2027-04-13"), a.clone())].clone();
    assert_eq!(on_laptop["passages"][0]["id"], held.as_str());
    assert_eq!(
        on_laptop["passages"][0]["planned_start"],
        "2027-04-13T09:00:00+02:00"
    );
    agent(
        &laptop,
        t0,
        &[
            "passage",
            "set",
            &held,
            "--status",
            "effectue",
            "--actual-start",
            "2027-04-13T09:10",
            "--actual-end",
            "2027-04-13T12:05",
        ],
    );
    let cancelled = ids[&(d("2027-04-01"), b.clone())].clone();
    agent(
        &laptop,
        t0,
        &[
            "passage", "set", &cancelled, "--status", "annule", "--cause", "meteo",
        ],
    );
    sync(&laptop, t0);
    server.stop();
    let (marked, _) = listed(&server, t0, window.0, window.1);
    let held_key = (d("2027-04-13"), a.clone());
    let cancelled_key = (d("2027-04-01"), b.clone());
    assert_eq!(marked[&held_key].status, "effectue");
    assert_eq!(
        marked[&held_key].actual_start.as_deref(),
        Some("2027-04-13T09:10:00+02:00")
    );
    assert_eq!(marked[&cancelled_key].status, "annule");
    assert_eq!(marked[&cancelled_key].cause.as_deref(), Some("meteo"));

    // Two weeks later the scheduler moves stop A to Monday mornings and shortens stop B's
    // Thursday afternoons.
    let t1 = t0 + Duration::weeks(2);
    let new_windows = [
        (a.as_str(), Weekday::Mon, "10:00", "12:00"),
        (b.as_str(), Weekday::Thu, "14:00", "16:00"),
    ];
    let mut args = vec!["round".to_owned(), "set".to_owned(), round.clone()];
    for w in &new_windows {
        args.push("--stop".into());
        args.push(stop_arg(w));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(srv(&server, t1, &args).trim(), round);

    let mut expected_after: Plan = marked
        .iter()
        .filter(|((day, _), p)| *day < t1 || p.status != "planifie")
        .map(|(k, p)| (k.clone(), p.clone()))
        .collect();
    for (k, p) in expected_plan(from, 2, &new_windows, t1) {
        expected_after.entry(k).or_insert(p);
    }
    let (after, ids_after) = listed(&server, t1, window.0, window.1);
    assert_eq!(after, expected_after);
    // The same, spelled out.
    assert_eq!(
        after[&held_key], marked[&held_key],
        "the held passage is untouched"
    );
    assert_eq!(
        after[&cancelled_key], marked[&cancelled_key],
        "the cancelled passage keeps its old window"
    );
    assert_eq!(
        after[&cancelled_key].planned_end,
        "2027-04-01T17:00:00+02:00"
    );
    for past in [(d("2027-03-04"), b.clone()), (d("2027-03-16"), a.clone())] {
        assert_eq!(
            after[&past], before[&past],
            "past passage {past:?} untouched"
        );
    }
    assert!(
        !after.contains_key(&(d("2027-03-30"), a.clone())),
        "unmarked Tuesday gone"
    );
    assert!(
        !after.contains_key(&(d("2027-04-27"), a.clone())),
        "unmarked Tuesday gone"
    );
    assert_eq!(
        after[&(d("2027-03-18"), b.clone())].planned_end,
        "2027-03-18T16:00:00+01:00"
    );
    assert_eq!(
        ids_after[&(d("2027-03-18"), b.clone())],
        ids[&(d("2027-03-18"), b.clone())],
        "a passage whose start did not move is updated in place"
    );
    assert_eq!(
        after[&(d("2027-04-12"), a.clone())].planned_start,
        "2027-04-12T10:00:00+02:00"
    );
    assert!(
        !after.contains_key(&(d("2027-03-29"), a.clone())),
        "no passage on Easter Monday"
    );
    assert_eq!(
        after[&(d("2027-04-29"), b.clone())].planned_start,
        "2027-04-29T14:00:00+02:00",
        "the horizon moved with today"
    );

    // The laptop follows; the daemon's own regeneration at start changes nothing.
    start(&mut server, t1);
    sync(&laptop, t1);
    let day_list = |day: &str| {
        json(&agent(
            &laptop,
            t1,
            &["passage", "list", "--date", day, "--format", "json"],
        ))["passages"]
            .as_array()
            .expect("passages")
            .clone()
    };
    assert!(day_list("2027-03-30").is_empty(), "removed on the laptop");
    assert!(day_list("2027-03-29").is_empty(), "Easter Monday");
    let monday = day_list("2027-04-12");
    assert_eq!(monday.len(), 1);
    assert_eq!(monday[0]["planned_start"], "2027-04-12T10:00:00+02:00");
    let tuesday = day_list("2027-04-13");
    assert_eq!(tuesday.len(), 1);
    assert_eq!(tuesday[0]["status"], "effectue");
    assert_eq!(laptop.digest(), server.digest("bus-80-1"));
    server.stop();
    assert_eq!(listed(&server, t1, window.0, window.1).0, expected_after);
}

#[test]
fn a_passage_marked_offline_survives_a_concurrent_edit_that_drops_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Monday morning: the bus is at its stop, offline, while the scheduler moves the round
    // from Mondays to Tuesdays starting today. The laptop also cancelled next Monday ahead
    // (the bus goes in for repair).
    let today = d("2027-01-11");
    let next = d("2027-01-18");
    let (mut server, a, _) = somme_server(&tmp.path().join("server"), today);
    let round = add_round(
        &server,
        today,
        today,
        1,
        &[(&a, Weekday::Mon, "09:00", "12:00")],
    );
    start(&mut server, today);
    let laptop = Agent::init(
        &tmp.path().join("laptop"),
        &server.enroll("bus-80-1", "laptop-1"),
    );
    sync(&laptop, today);
    server.stop();
    let (plan, ids) = listed(&server, today, today, next);
    assert_eq!(plan.len(), 2);
    let held = ids[&(today, a.clone())].clone();
    let cancelled = ids[&(next, a.clone())].clone();
    agent(
        &laptop,
        today,
        &[
            "passage",
            "set",
            &held,
            "--status",
            "effectue",
            "--actual-start",
            "2027-01-11T09:02",
            "--actual-end",
            "2027-01-11T12:00",
        ],
    );
    agent(
        &laptop,
        today,
        &[
            "passage", "set", &cancelled, "--status", "annule", "--cause", "panne",
        ],
    );
    srv(
        &server,
        today,
        &[
            "round",
            "set",
            &round,
            "--stop",
            &format!("{a}@tue@09:00-12:00"),
        ],
    );
    start(&mut server, today);
    sync(&laptop, today);
    server.stop();

    // What the unit recorded is there for the scheduler, the supervisor and the laptop.
    let (after, ids_after) = listed(&server, today, today, next);
    assert_eq!(ids_after.get(&(today, a.clone())), Some(&held), "{after:?}");
    assert_eq!(after[&(today, a.clone())].status, "effectue");
    assert_eq!(ids_after.get(&(next, a.clone())), Some(&cancelled));
    assert_eq!(after[&(next, a.clone())].cause.as_deref(), Some("panne"));
    assert!(
        after.contains_key(&(d("2027-01-12"), a.clone())),
        "the new Tuesday"
    );
    let report = json(&srv(
        &server,
        today,
        &[
            "coverage",
            "--territory",
            "80",
            "--from",
            "2027-01-11",
            "--to",
            "2027-01-18",
            "--format",
            "json",
        ],
    ));
    assert_eq!(report["totals"]["passages_held"], 1, "{report}");
    assert_eq!(report["totals"]["passages_cancelled"], 1, "{report}");
    assert!(report["unreached"]
        .as_array()
        .expect("unreached")
        .iter()
        .all(|u| u["code_insee"] != "80001"));
    let on_laptop = json(&agent(
        &laptop,
        today,
        &[
            "passage",
            "list",
            "--date",
            "2027-01-11",
            "--format",
            "json",
        ],
    ));
    assert_eq!(on_laptop["passages"][0]["id"], held.as_str(), "{on_laptop}");
    assert_eq!(laptop.digest(), server.digest("bus-80-1"));
}

#[test]
fn scheduling_mistakes_exit_1_with_one_line_and_change_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let today = d("2027-01-11");
    let (server, a, b) = somme_server(tmp.path(), today);
    for (id, territory) in [("bus-80-2", "80"), ("bus-02-1", "02")] {
        srv(
            &server,
            today,
            &[
                "unit",
                "add",
                "--id",
                id,
                "--name",
                id,
                "--territory",
                territory,
            ],
        );
    }
    let aisne = srv(
        &server,
        today,
        &[
            "stop",
            "add",
            "--territory",
            "02",
            "--commune",
            "02001",
            "--label",
            "Mairie",
        ],
    )
    .trim()
    .to_owned();
    let round = |unit: &str, stops: &[String]| {
        let mut args = vec![
            "round".to_owned(),
            "add".to_owned(),
            "--unit".to_owned(),
            unit.to_owned(),
            "--name".to_owned(),
            "R".to_owned(),
            "--from".to_owned(),
            "2027-01-11".to_owned(),
        ];
        for s in stops {
            args.push("--stop".into());
            args.push(s.clone());
        }
        args
    };
    let ok = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        srv(&server, today, &args).trim().to_owned()
    };
    let err = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        srv_err(&server, today, &args)
    };
    let first = ok(round("bus-80-1", &[format!("{a}@tue@09:00-12:00")]));
    let (_, ids) = listed(&server, today, today, today + Duration::weeks(20));
    assert_eq!(ids.len(), 8, "one Tuesday a week over 8 weeks");

    // A stop of the Aisne in a round of a Somme unit.
    let e = err(round("bus-80-1", &[format!("{aisne}@wed@09:00-12:00")]));
    assert!(
        e.contains("territoire 02") && e.contains("dans le 80"),
        "{e}"
    );
    // Overlapping windows of one unit on the same day, in two rounds…
    let e = err(round("bus-80-1", &[format!("{b}@tue@11:00-13:00")]));
    assert!(e.contains("chevauche"), "{e}");
    // …and in one.
    let e = err(round(
        "bus-80-1",
        &[
            format!("{b}@fri@09:00-12:00"),
            format!("{a}@fri@11:59-13:00"),
        ],
    ));
    assert!(e.contains("se chevauchent"), "{e}");
    // An edit that would overlap the first round is refused too.
    let second = ok(round("bus-80-1", &[format!("{b}@wed@09:00-12:00")]));
    let e = err(vec![
        "round".into(),
        "set".into(),
        second.clone(),
        "--stop".into(),
        format!("{b}@tue@08:00-09:30"),
    ]);
    assert!(e.contains("chevauche"), "{e}");
    // Alternating weeks at the same hour are a normal plan ("X on even weeks, Y on odd weeks");
    // a weekly round at that hour meets one of them, and the refusal names the first date.
    let fortnight = |from: &str, stop: &str| {
        [
            "round",
            "add",
            "--unit",
            "bus-80-1",
            "--name",
            "Q",
            "--from",
            from,
            "--every-weeks",
            "2",
            "--stop",
        ]
        .iter()
        .map(|x| (*x).to_owned())
        .chain(std::iter::once(format!("{stop}@sat@09:00-12:00")))
        .collect::<Vec<String>>()
    };
    ok(fortnight("2027-01-11", &a));
    ok(fortnight("2027-01-18", &b));
    let e = err(round("bus-80-1", &[format!("{a}@sat@10:00-11:00")]));
    assert!(
        e.contains("chevauche") && (e.contains("2027-01-16") || e.contains("2027-01-23")),
        "the first date it meets one of them: {e}"
    );
    // A window that ends before it starts.
    let e = err(round("bus-80-1", &[format!("{a}@thu@12:00-09:00")]));
    assert!(e.contains("12:00-09:00"), "{e}");
    // An unknown commune, and a commune outside the territory.
    let e = err(vec![
        "stop".into(),
        "add".into(),
        "--territory".into(),
        "80".into(),
        "--commune".into(),
        "99999".into(),
        "--label".into(),
        "Nulle part".into(),
    ]);
    assert!(e.contains("99999"), "{e}");
    let e = err(vec![
        "stop".into(),
        "add".into(),
        "--territory".into(),
        "80".into(),
        "--commune".into(),
        "02001".into(),
        "--label".into(),
        "Ailleurs".into(),
    ]);
    assert!(e.contains("02001"), "{e}");

    // What is not a mistake: a window that starts when another ends, and another unit at the
    // same time (two vehicles).
    ok(round("bus-80-1", &[format!("{b}@tue@12:00-13:30")]));
    ok(round("bus-80-2", &[format!("{a}@tue@09:00-12:00")]));

    // The refusals left nothing behind: 6 rounds (4 + the two alternating ones), and the edited
    // one kept its Wednesdays.
    let rounds = json(&srv(&server, today, &["round", "list", "--format", "json"]));
    assert_eq!(rounds["rounds"].as_array().map(Vec::len), Some(6));
    let second_round = rounds["rounds"]
        .as_array()
        .expect("rounds")
        .iter()
        .find(|r| r["id"] == second.as_str())
        .expect("second round");
    assert_eq!(second_round["stops"][0]["weekday"], "wed");
    let all = json(&srv(
        &server,
        today,
        &[
            "passages",
            "--from",
            &today.to_string(),
            "--to",
            &(today + Duration::weeks(20)).to_string(),
            "--format",
            "json",
        ],
    ));
    assert_eq!(
        all["passages"].as_array().map(Vec::len),
        Some(4 * 8 + 2 * 4),
        "four weekly rounds and two fortnightly ones over 8 weeks"
    );
    assert!(rounds.to_string().contains(&first));
    let export = srv(&server, today, &["export", "--format", "json"]);
    assert!(!export.contains("Nulle part") && !export.contains("Ailleurs"));
}

// ---------------------------------------------------------------------------------------------
// Coverage
// ---------------------------------------------------------------------------------------------

/// The report's period: two weeks of the bus round.
const PERIOD: (&str, &str) = ("2027-01-11", "2027-01-24");
/// Communes of the scenario (Somme): two stops in C1, one in C2 and C3; C4 only gets home
/// visits.
const C1: &str = "80001"; // Abbeville
const C2: &str = "80065"; // Beaucourt-sur-l'Ancre
const C3: &str = "80053"; // Balâtre
const C4: &str = "80263"; // L'Échelle-Saint-Aurin
/// A commune of the Aisne, outside the report's territory.
const AISNE: &str = "02001";
const BYS: [&str; 4] = ["commune", "unit", "partner", "theme"];
const FORMATS: [&str; 3] = ["table", "csv", "json"];

/// A passage as the test planned and marked it.
#[derive(Debug, Clone)]
struct PassageRec {
    id: String,
    unit: String,
    commune: String,
    date: NaiveDate,
    status: String,
    cause: Option<String>,
}

/// An appointment as the test recorded it.
#[derive(Debug, Clone)]
struct ApptRec {
    id: String,
    unit: String,
    commune: String,
    date: NaiveDate,
    location: String,
    status: String,
    citizen: Option<String>,
}

/// A request as the test recorded it, with its parent's unit, commune and day.
#[derive(Debug, Clone)]
struct ReqRec {
    unit: String,
    commune: String,
    date: NaiveDate,
    partner: String,
    theme: String,
    outcome: String,
    minutes: i64,
}

#[derive(Debug, Default)]
struct Recorded {
    passages: Vec<PassageRec>,
    appointments: Vec<ApptRec>,
    requests: Vec<ReqRec>,
}

#[derive(Debug)]
struct Fixture {
    recorded: Recorded,
    /// `coverage --territory 80` over the period, by (grouping, format).
    reports: BTreeMap<(&'static str, &'static str), Vec<u8>>,
    /// `coverage --territory 02 --format json` over the period.
    aisne: Json,
    /// Citizens' names, phones, addresses and record ids, and the notes holding them.
    secrets: Vec<String>,
    /// `export --format json` of the whole server.
    export: String,
}

/// What a laptop does, recorded as it goes.
struct Desk<'a> {
    agent: &'a Agent,
    unit: &'static str,
    today: NaiveDate,
}

impl Desk<'_> {
    fn run(&self, args: &[&str]) -> String {
        agent(self.agent, self.today, args).trim().to_owned()
    }

    /// The day's passage of this unit (its round has one a day).
    fn passage(&self, rec: &mut Recorded, day: &str, commune: &str) -> String {
        let list = json(&self.run(&["passage", "list", "--date", day, "--format", "json"]));
        let list = list["passages"].as_array().expect("passages");
        assert_eq!(list.len(), 1, "{day}: {list:?}");
        assert_eq!(list[0]["commune"], commune, "{day}");
        let id = list[0]["id"].as_str().expect("id").to_owned();
        rec.passages.push(PassageRec {
            id: id.clone(),
            unit: self.unit.into(),
            commune: commune.into(),
            date: d(day),
            status: "planifie".into(),
            cause: None,
        });
        id
    }

    fn mark(&self, rec: &mut Recorded, id: &str, status: &str, extra: &[&str]) {
        let mut args = vec!["passage", "set", id, "--status", status];
        args.extend_from_slice(extra);
        self.run(&args);
        let p = rec
            .passages
            .iter_mut()
            .find(|p| p.id == id)
            .expect("passage");
        p.status = status.into();
        p.cause = extra
            .iter()
            .position(|a| *a == "--cause")
            .map(|i| extra[i + 1].to_owned());
    }

    fn appointment(
        &self,
        rec: &mut Recorded,
        start: &str,
        location: &str,
        commune: &str,
        citizen: Option<&str>,
        extra: &[&str],
    ) -> String {
        let mut args = vec![
            "appointment",
            "add",
            "--start",
            start,
            "--duration",
            "30",
            "--location",
            location,
            "--commune",
            commune,
        ];
        if let Some(c) = citizen {
            args.extend(["--citizen", c]);
        }
        args.extend_from_slice(extra);
        let id = self.run(&args);
        rec.appointments.push(ApptRec {
            id: id.clone(),
            unit: self.unit.into(),
            commune: commune.into(),
            date: d(&start[..10]),
            location: location.into(),
            status: "unknown".into(),
            citizen: citizen.map(str::to_owned),
        });
        id
    }

    fn outcome(&self, rec: &mut Recorded, id: &str, status: &str) {
        self.run(&["appointment", "set", id, "--status", status]);
        rec.appointments
            .iter_mut()
            .find(|a| a.id == id)
            .expect("appointment")
            .status = status.into();
    }

    /// A request at an appointment (`--appointment`) or a walk-in at a passage (`--passage`).
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        rec: &mut Recorded,
        link: &str,
        parent: &str,
        partner: &str,
        theme: &str,
        outcome: &str,
        minutes: Option<i64>,
    ) {
        let minutes_arg = minutes.map(|m| m.to_string());
        let mut args = vec![
            "request",
            "add",
            link,
            parent,
            "--partner",
            partner,
            "--theme",
            theme,
            "--level",
            "information",
            "--outcome",
            outcome,
        ];
        if let Some(m) = &minutes_arg {
            args.extend(["--minutes", m.as_str()]);
        }
        self.run(&args);
        let (commune, date) = if link == "--appointment" {
            let a = rec
                .appointments
                .iter()
                .find(|a| a.id == parent)
                .expect("appointment");
            (a.commune.clone(), a.date)
        } else {
            let p = rec
                .passages
                .iter()
                .find(|p| p.id == parent)
                .expect("passage");
            (p.commune.clone(), p.date)
        };
        rec.requests.push(ReqRec {
            unit: self.unit.into(),
            commune,
            date,
            partner: partner.into(),
            theme: theme.into(),
            outcome: outcome.into(),
            minutes: minutes.unwrap_or(0),
        });
    }
}

fn build_fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t0 = d("2027-01-11"); // Monday: the scheduler plans
    let t2 = d("2027-01-22"); // Friday of the next week: the laptops are back online
    let mut server = Server::init(&tmp.path().join("server"), None);
    let mut rec = Recorded::default();
    for (id, territory, kind) in [
        ("bus-80-1", "80", "bus"),
        ("dom-80-1", "80", "domicile"),
        ("bus-02-1", "02", "bus"),
    ] {
        srv(
            &server,
            t0,
            &[
                "unit",
                "add",
                "--id",
                id,
                "--name",
                id,
                "--territory",
                territory,
                "--kind",
                kind,
            ],
        );
    }
    let stop = |territory: &str, commune: &str, label: &str| {
        srv(
            &server,
            t0,
            &[
                "stop",
                "add",
                "--territory",
                territory,
                "--commune",
                commune,
                "--label",
                label,
            ],
        )
        .trim()
        .to_owned()
    };
    let s1 = stop("80", C1, "Place Max Lejeune");
    let s2 = stop("80", C2, "Mairie");
    let s3 = stop("80", C3, "Église");
    let s4 = stop("80", C1, "Parking de la gare");
    let s02 = stop("02", AISNE, "Mairie");
    srv(
        &server,
        t0,
        &[
            "round",
            "add",
            "--unit",
            "bus-80-1",
            "--name",
            "Tournée Somme",
            "--from",
            "2027-01-11",
            "--stop",
            &format!("{s1}@mon@09:00-12:00"),
            "--stop",
            &format!("{s2}@tue@09:00-12:00"),
            "--stop",
            &format!("{s3}@wed@14:00-17:00"),
            "--stop",
            &format!("{s4}@thu@09:00-12:00"),
        ],
    );
    srv(
        &server,
        t0,
        &[
            "round",
            "add",
            "--unit",
            "bus-02-1",
            "--name",
            "Tournée Aisne",
            "--from",
            "2027-01-11",
            "--stop",
            &format!("{s02}@mon@09:00-12:00"),
        ],
    );
    for day in ["2027-01-11", "2027-01-18"] {
        rec.passages.push(PassageRec {
            id: String::new(),
            unit: "bus-02-1".into(),
            commune: AISNE.into(),
            date: d(day),
            status: "planifie".into(),
            cause: None,
        });
    }
    // Home visits planned by the scheduler.
    let mut home_visit = |start: &str, commune: &str, citizen: &str, note: &str| {
        let id = srv(
            &server,
            t0,
            &[
                "appointment",
                "add",
                "--unit",
                "dom-80-1",
                "--start",
                start,
                "--duration",
                "60",
                "--location",
                "domicile",
                "--commune",
                commune,
                "--citizen",
                citizen,
                "--note",
                note,
            ],
        )
        .trim()
        .to_owned();
        rec.appointments.push(ApptRec {
            id: id.clone(),
            unit: "dom-80-1".into(),
            commune: commune.into(),
            date: d(&start[..10]),
            location: "domicile".into(),
            status: "unknown".into(),
            citizen: Some(citizen.into()),
        });
        id
    };
    let h1 = home_visit(
        "2027-01-14T10:00",
        C4,
        "Anatole Brézillon",
        "3 impasse des Glycines, digicode 4521",
    );
    let h2 = home_visit(
        "2027-01-20T14:00",
        C3,
        "Philomène Trouvelot",
        "portail vert",
    );

    // Both laptops get the plan, then the server goes away.
    start(&mut server, t0);
    let bus = Agent::init(
        &tmp.path().join("bus"),
        &server.enroll("bus-80-1", "laptop-bus"),
    );
    let dom = Agent::init(
        &tmp.path().join("dom"),
        &server.enroll("dom-80-1", "laptop-dom"),
    );
    sync(&bus, t0);
    sync(&dom, t0);
    server.stop();

    // Offline: the bus marks its passages and records what happened.
    let b = Desk {
        agent: &bus,
        unit: "bus-80-1",
        today: t2,
    };
    let p = |rec: &mut Recorded, day: &str, commune: &str| b.passage(rec, day, commune);
    let p11 = p(&mut rec, "2027-01-11", C1);
    let p12 = p(&mut rec, "2027-01-12", C2);
    let p13 = p(&mut rec, "2027-01-13", C3);
    let p14 = p(&mut rec, "2027-01-14", C1);
    let p18 = p(&mut rec, "2027-01-18", C1);
    let p19 = p(&mut rec, "2027-01-19", C2);
    p(&mut rec, "2027-01-20", C3); // left planned
    p(&mut rec, "2027-01-21", C1); // left planned
    let p25 = p(&mut rec, "2027-01-25", C1); // after the period
    b.mark(
        &mut rec,
        &p11,
        "effectue",
        &[
            "--actual-start",
            "2027-01-11T09:05",
            "--actual-end",
            "2027-01-11T12:10",
        ],
    );
    b.mark(&mut rec, &p12, "effectue", &[]);
    b.mark(&mut rec, &p13, "annule", &["--cause", "meteo"]);
    b.mark(&mut rec, &p14, "annule", &["--cause", "panne"]);
    b.mark(&mut rec, &p18, "effectue", &[]);
    b.mark(&mut rec, &p19, "annule", &["--cause", "absence_conseiller"]);
    b.mark(&mut rec, &p25, "effectue", &[]);

    let a1 = b.appointment(
        &mut rec,
        "2027-01-11T09:30",
        "arret",
        C1,
        Some("Zoé Quintard-Kerhervé"),
        &["--passage", &p11, "--note", "rappeler au 06 12 34 56 78"],
    );
    let a2 = b.appointment(
        &mut rec,
        "2027-01-11T10:00",
        "arret",
        C1,
        Some("Baptistin Ollagnier"),
        &[],
    );
    let a3 = b.appointment(
        &mut rec,
        "2027-01-12T09:15",
        "arret",
        C2,
        Some("Ghislaine Vasseur-Tréhou"),
        &["--note", "habite 12 rue des Capucines"],
    );
    let a4 = b.appointment(&mut rec, "2027-01-12T11:00", "telephone", C2, None, &[]);
    let a5 = b.appointment(
        &mut rec,
        "2027-01-18T10:00",
        "arret",
        C1,
        Some("Honorine Delpeuch"),
        &[],
    );
    b.appointment(
        &mut rec,
        "2027-01-18T10:30",
        "arret",
        C1,
        Some("Médéric Labarrière"),
        &[],
    ); // outcome never recorded
    let a7 = b.appointment(
        &mut rec,
        "2027-01-25T10:00",
        "arret",
        C1,
        Some("Sidonie Keraudren"),
        &[],
    );
    let a8 = b.appointment(
        &mut rec,
        "2027-01-19T15:00",
        "telephone",
        AISNE,
        Some("Fulbert Argoud"),
        &[],
    );
    let a9 = b.appointment(
        &mut rec,
        "2027-01-18T11:00",
        "arret",
        C1,
        Some("Eulalie Penhoët"),
        &[],
    );
    for (id, status) in [
        (&a1, "seen"),
        (&a2, "noshow"),
        (&a3, "seen"),
        (&a4, "seen"),
        (&a5, "excused"),
        (&a7, "seen"),
        (&a8, "seen"),
        (&a9, "revoked"),
    ] {
        b.outcome(&mut rec, id, status);
    }
    let q = "--appointment";
    let w = "--passage";
    b.request(
        &mut rec,
        q,
        &a1,
        "caf",
        "famille_scolarite",
        "resolue_sur_place",
        Some(20),
    );
    b.request(
        &mut rec,
        q,
        &a1,
        "dgfip",
        "argent_impots",
        "orientee_operateur",
        Some(10),
    );
    b.request(
        &mut rec,
        w,
        &p11,
        "france_travail",
        "travail_formation",
        "en_attente_operateur",
        None,
    );
    b.request(
        &mut rec,
        q,
        &a3,
        "caf",
        "social_sante",
        "resolue_sur_place",
        Some(15),
    );
    b.request(
        &mut rec,
        w,
        &p12,
        "interieur_ants",
        "papiers_citoyennete",
        "non_resolue",
        Some(30),
    );
    b.request(
        &mut rec,
        w,
        &p18,
        "caf",
        "logement",
        "resolue_sur_place",
        Some(12),
    );
    b.request(
        &mut rec,
        q,
        &a7,
        "caf",
        "logement",
        "resolue_sur_place",
        Some(5),
    );
    b.request(
        &mut rec,
        q,
        &a8,
        "msa",
        "social_sante",
        "resolue_sur_place",
        Some(25),
    );

    // Offline too: the home-visit team.
    let h = Desk {
        agent: &dom,
        unit: "dom-80-1",
        today: t2,
    };
    h.outcome(&mut rec, &h1, "seen");
    h.outcome(&mut rec, &h2, "seen");
    h.request(
        &mut rec,
        q,
        &h1,
        "assurance_retraite",
        "social_sante",
        "resolue_sur_place",
        Some(45),
    );
    let h3 = h.appointment(
        &mut rec,
        "2027-01-15T14:00",
        "domicile",
        C4,
        Some("Clodomir Vauquelin"),
        &[],
    );
    h.outcome(&mut rec, &h3, "noshow");
    let h4 = h.appointment(
        &mut rec,
        "2027-01-21T09:00",
        "domicile",
        C4,
        Some("Bérengère Lhuillier"),
        &[],
    );
    h.outcome(&mut rec, &h4, "seen");
    h.request(
        &mut rec,
        q,
        &h4,
        "la_poste",
        "numerique",
        "non_resolue",
        None,
    );

    // A citizen's phone and address, as a future form would write them (the CLI has no flags
    // for them yet): straight into the laptop's store, as one local action.
    let citizen_of = |a: &Agent, id: &str| {
        json(&agent(
            a,
            t2,
            &["appointment", "show", id, "--format", "json"],
        ))["fields"]["citizen"]["value"]
            .as_str()
            .expect("citizen")
            .to_owned()
    };
    let zoe = citizen_of(&bus, &a1);
    {
        use tournee_core::model::{Field, Kind, Scope, Value};
        use tournee_core::store::{LocalAction, RecordEdit, Store};
        use tournee_store::SqliteStore;
        let mut store = SqliteStore::open(&bus.store_file()).expect("open laptop store");
        let now = skew_to(t2).parse::<i64>().expect("skew") + chrono::Utc::now().timestamp_millis();
        store
            .write_local(
                u64::try_from(now).expect("now"),
                &LocalAction {
                    edits: vec![RecordEdit {
                        id: uuid::Uuid::parse_str(&zoe).expect("uuid"),
                        kind: Kind::Citizen,
                        scope: Scope::Unit("bus-80-1".into()),
                        create: false,
                        sets: vec![
                            (Field::Phone, Value::Text("+33 6 98 76 54 32".into())),
                            (
                                Field::Address,
                                Value::Text("7 chemin des Saules, 80100 Abbeville".into()),
                            ),
                        ],
                    }],
                },
            )
            .expect("local write");
    }

    for a in [&bus, &dom] {
        let out = run(&mut agent_cmd(a, t2, &["sync", "--timeout", "1"]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "offline sync fails: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }

    // Back online.
    start(&mut server, t2);
    for a in [&bus, &dom] {
        sync(a, t2);
        let st = json(&agent(a, t2, &["status", "--format", "json"]));
        assert_eq!(st["pending_changes"], 0, "{st}");
        assert_eq!(st["rejected_changes"], 0, "nothing refused: {st}");
    }
    assert_eq!(bus.digest(), server.digest("bus-80-1"));
    assert_eq!(dom.digest(), server.digest("dom-80-1"));
    server.stop();

    let mut reports = BTreeMap::new();
    for by in BYS {
        for format in FORMATS {
            let out = run(server
                .cmd(&[
                    "coverage",
                    "--territory",
                    "80",
                    "--from",
                    PERIOD.0,
                    "--to",
                    PERIOD.1,
                    "--by",
                    by,
                    "--format",
                    format,
                ])
                .env(SKEW, skew_to(t2)));
            assert!(
                out.status.success(),
                "coverage --by {by} --format {format}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            reports.insert((by, format), out.stdout);
        }
    }
    let aisne = json(&srv(
        &server,
        t2,
        &[
            "coverage",
            "--territory",
            "02",
            "--from",
            PERIOD.0,
            "--to",
            PERIOD.1,
            "--format",
            "json",
        ],
    ));
    let export = srv(&server, t2, &["export", "--format", "json"]);
    let mut secrets: Vec<String> = [
        "Zoé Quintard-Kerhervé",
        "Baptistin Ollagnier",
        "Ghislaine Vasseur-Tréhou",
        "Honorine Delpeuch",
        "Médéric Labarrière",
        "Sidonie Keraudren",
        "Fulbert Argoud",
        "Eulalie Penhoët",
        "Anatole Brézillon",
        "Philomène Trouvelot",
        "Clodomir Vauquelin",
        "Bérengère Lhuillier",
        "+33 6 98 76 54 32",
        "7 chemin des Saules",
        "06 12 34 56 78",
        "12 rue des Capucines",
        "3 impasse des Glycines",
        "digicode 4521",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for name in secrets.clone().iter().take(12) {
        secrets.extend(name.split(' ').map(str::to_owned));
    }
    for r in json(&export)["records"].as_array().expect("records") {
        if r["kind"] == "citizen" {
            secrets.push(r["id"].as_str().expect("id").to_owned());
        }
    }
    Fixture {
        recorded: rec,
        reports,
        aisne,
        secrets,
        export,
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

/// A coverage row's numbers, as the report's JSON has them or as the test expects them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Row {
    passages_planned: u64,
    passages_held: u64,
    passages_cancelled: u64,
    cancel_causes: BTreeMap<String, u64>,
    citizens_received: u64,
    appointments_by_location: BTreeMap<String, u64>,
    appointments_by_status: BTreeMap<String, u64>,
    requests: u64,
    requests_by_partner: BTreeMap<String, u64>,
    requests_by_theme: BTreeMap<String, u64>,
    resolved_on_spot: u64,
    request_minutes: i64,
}

fn bump(m: &mut BTreeMap<String, u64>, k: &str) {
    *m.entry(k.to_owned()).or_default() += 1;
}

impl Row {
    fn of(j: &Json) -> Self {
        let n = |k: &str| j[k].as_u64().unwrap_or_else(|| panic!("{k} in {j}"));
        let map = |k: &str| -> BTreeMap<String, u64> {
            j[k].as_object()
                .unwrap_or_else(|| panic!("{k} in {j}"))
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().expect("count")))
                .collect()
        };
        Self {
            passages_planned: n("passages_planned"),
            passages_held: n("passages_held"),
            passages_cancelled: n("passages_cancelled"),
            cancel_causes: map("cancel_causes"),
            citizens_received: n("citizens_received"),
            appointments_by_location: map("appointments_by_location"),
            appointments_by_status: map("appointments_by_status"),
            requests: n("requests"),
            requests_by_partner: map("requests_by_partner"),
            requests_by_theme: map("requests_by_theme"),
            resolved_on_spot: n("resolved_on_spot"),
            request_minutes: j["request_minutes"].as_i64().expect("request_minutes"),
        }
    }

    fn add(&mut self, o: &Row) {
        self.passages_planned += o.passages_planned;
        self.passages_held += o.passages_held;
        self.passages_cancelled += o.passages_cancelled;
        self.citizens_received += o.citizens_received;
        self.requests += o.requests;
        self.resolved_on_spot += o.resolved_on_spot;
        self.request_minutes += o.request_minutes;
        for (dst, src) in [
            (&mut self.cancel_causes, &o.cancel_causes),
            (
                &mut self.appointments_by_location,
                &o.appointments_by_location,
            ),
            (&mut self.appointments_by_status, &o.appointments_by_status),
            (&mut self.requests_by_partner, &o.requests_by_partner),
            (&mut self.requests_by_theme, &o.requests_by_theme),
        ] {
            for (k, n) in src {
                *dst.entry(k.clone()).or_default() += n;
            }
        }
    }
}

fn in_period(day: NaiveDate) -> bool {
    d(PERIOD.0) <= day && day <= d(PERIOD.1)
}

/// The report's rows as the test computes them from what it recorded: things of the Somme
/// (by commune code) in the period, grouped by `by`.
fn expected_rows(rec: &Recorded, by: &str) -> BTreeMap<String, Row> {
    let somme = |commune: &str| commune.starts_with("80");
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut people: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if by == "commune" || by == "unit" {
        for p in rec
            .passages
            .iter()
            .filter(|p| somme(&p.commune) && in_period(p.date))
        {
            let key = if by == "unit" { &p.unit } else { &p.commune };
            let r = rows.entry(key.clone()).or_default();
            r.passages_planned += 1;
            match p.status.as_str() {
                "effectue" => r.passages_held += 1,
                "annule" => {
                    r.passages_cancelled += 1;
                    bump(&mut r.cancel_causes, p.cause.as_deref().expect("cause"));
                }
                _ => {}
            }
        }
        for a in rec
            .appointments
            .iter()
            .filter(|a| somme(&a.commune) && in_period(a.date))
        {
            let key = if by == "unit" { &a.unit } else { &a.commune };
            let r = rows.entry(key.clone()).or_default();
            bump(&mut r.appointments_by_location, &a.location);
            bump(&mut r.appointments_by_status, &a.status);
            if a.status == "seen" {
                people
                    .entry(key.clone())
                    .or_default()
                    .insert(a.citizen.clone().unwrap_or_else(|| a.id.clone()));
            }
        }
    }
    for q in rec
        .requests
        .iter()
        .filter(|q| somme(&q.commune) && in_period(q.date))
    {
        let key = match by {
            "commune" => &q.commune,
            "unit" => &q.unit,
            "partner" => &q.partner,
            _ => &q.theme,
        };
        let r = rows.entry(key.clone()).or_default();
        r.requests += 1;
        bump(&mut r.requests_by_partner, &q.partner);
        bump(&mut r.requests_by_theme, &q.theme);
        r.resolved_on_spot += u64::from(q.outcome == "resolue_sur_place");
        r.request_minutes += q.minutes;
    }
    for (k, set) in people {
        rows.entry(k).or_default().citizens_received = set.len() as u64;
    }
    rows
}

fn report_json(f: &Fixture, by: &'static str) -> Json {
    json(std::str::from_utf8(&f.reports[&(by, "json")]).expect("utf-8"))
}

fn rows_of(report: &Json) -> BTreeMap<String, Row> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["key"].as_str().expect("key").to_owned(), Row::of(r)))
        .collect()
}

/// Percent with one decimal, as the report rounds it.
fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

/// The communes where the home-visit team saw someone: a home visit held reaches its commune.
fn home_visits_held(rec: &Recorded) -> BTreeSet<String> {
    rec.appointments
        .iter()
        .filter(|a| a.location == "domicile" && a.status == "seen" && a.commune.starts_with("80"))
        .map(|a| a.commune.clone())
        .collect()
}

fn somme_communes() -> BTreeMap<String, u64> {
    tournee_core::refdata::RefData::get()
        .communes_of("80")
        .into_iter()
        .map(|c| (c.code_insee.clone(), c.population))
        .collect()
}

#[test]
fn coverage_numbers_equal_what_the_laptops_recorded_offline() {
    let f = fixture();
    let mut totals_by = BTreeMap::new();
    for by in BYS {
        let report = report_json(f, by);
        assert_eq!(report["by"], by);
        assert_eq!(report["territory"], "80");
        assert_eq!(report["territory_name"], "Somme");
        let expected = expected_rows(&f.recorded, by);
        assert_eq!(rows_of(&report), expected, "--by {by}");
        let mut total = Row::default();
        for r in expected.values() {
            total.add(r);
        }
        assert_eq!(Row::of(&report["totals"]), total, "--by {by} totals");
        for r in report["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .chain([&report["totals"]])
        {
            let row = Row::of(r);
            assert_eq!(
                r["resolved_on_spot_pct"].as_f64(),
                pct(row.resolved_on_spot, row.requests),
                "{r}"
            );
        }
        totals_by.insert(by, total);
    }

    // The numbers a supervisor reads, spelled out.
    let communes = rows_of(&report_json(f, "commune"));
    let c1 = &communes[C1];
    assert_eq!(
        (c1.passages_planned, c1.passages_held, c1.passages_cancelled),
        (4, 2, 1)
    );
    assert_eq!(c1.cancel_causes, BTreeMap::from([("panne".to_owned(), 1)]));
    assert_eq!(c1.citizens_received, 1, "Zoé only; the 25th is outside");
    assert_eq!(
        (c1.requests, c1.resolved_on_spot, c1.request_minutes),
        (4, 2, 42)
    );
    let c2 = &communes[C2];
    assert_eq!(c2.citizens_received, 2, "one named, one by phone");
    let c4 = &communes[C4];
    assert_eq!(c4.passages_planned, 0);
    assert_eq!(
        c4.appointments_by_location,
        BTreeMap::from([("domicile".to_owned(), 3)])
    );
    assert_eq!(c4.citizens_received, 2);
    assert!(!communes.contains_key(AISNE));
    let total = &totals_by["commune"];
    assert_eq!(
        (
            total.passages_planned,
            total.passages_held,
            total.passages_cancelled
        ),
        (8, 3, 3)
    );
    assert_eq!((total.requests, total.request_minutes), (8, 132));

    // Every grouping adds up to the same totals.
    assert_eq!(totals_by["unit"], totals_by["commune"]);
    for by in ["partner", "theme"] {
        let t = &totals_by[by];
        let c = &totals_by["commune"];
        assert_eq!(
            (
                t.requests,
                &t.requests_by_partner,
                &t.requests_by_theme,
                t.resolved_on_spot,
                t.request_minutes
            ),
            (
                c.requests,
                &c.requests_by_partner,
                &c.requests_by_theme,
                c.resolved_on_spot,
                c.request_minutes
            ),
            "--by {by}"
        );
        assert_eq!(t.passages_planned + t.citizens_received, 0, "--by {by}");
    }
    let units = rows_of(&report_json(f, "unit"));
    assert_eq!(
        units.keys().collect::<Vec<_>>(),
        ["bus-80-1", "dom-80-1"],
        "the Aisne's bus is not in the Somme's report"
    );

    // Unreached: every commune of the Somme where no passage was held, most populous first.
    let report = report_json(f, "commune");
    let unreached: Vec<(String, u64)> = report["unreached"]
        .as_array()
        .expect("unreached")
        .iter()
        .map(|u| {
            (
                u["code_insee"].as_str().expect("code").to_owned(),
                u["population"].as_u64().expect("population"),
            )
        })
        .collect();
    let mut want: BTreeMap<String, u64> = somme_communes();
    want.remove(C1);
    want.remove(C2);
    for c in home_visits_held(&f.recorded) {
        want.remove(&c);
    }
    assert_eq!(
        unreached.iter().cloned().collect::<BTreeMap<_, _>>(),
        want,
        "unreached = the Somme less the two communes with a passage held and those of home visits held"
    );
    assert_eq!(unreached.len(), want.len(), "each listed once");
    assert!(unreached.windows(2).all(|w| w[0].1 >= w[1].1));
    // C3 and C4 had only planned passages, and home visits: reached by the visits held.
    let home = home_visits_held(&f.recorded);
    for c in [C3, C4] {
        assert_eq!(
            unreached.iter().any(|(code, _)| code == c),
            !home.contains(c),
            "{c}: unreached unless a home visit was held there"
        );
    }
    let table = String::from_utf8(f.reports[&("commune", "table")].clone()).expect("utf-8");
    assert!(
        table.contains(&format!(
            "communes not reached (no passage held, home visit or walk-in): {} of {}",
            want.len(),
            somme_communes().len()
        )),
        "{table}"
    );

    // The Aisne's report has the Aisne's bus and the Somme bus's call to the Aisne.
    let aisne = Row::of(&f.aisne["totals"]);
    assert_eq!(aisne.passages_planned, 2);
    assert_eq!(aisne.citizens_received, 1);
    assert_eq!((aisne.requests, aisne.request_minutes), (1, 25));
}

/// The CSV columns as the README documents them.
const DOCUMENTED_COLUMNS: [&str; 27] = [
    "group",
    "key",
    "label",
    "population",
    "passages_planned",
    "passages_held",
    "passages_cancelled",
    "cancel_causes",
    "citizens_received",
    "appointments_arret",
    "appointments_domicile",
    "appointments_telephone",
    "appointments_seen",
    "appointments_noshow",
    "appointments_excused",
    "appointments_revoked",
    "appointments_unknown",
    "requests",
    "requests_resolved_on_spot",
    "requests_resolved_on_spot_pct",
    "request_minutes",
    "requests_by_partner",
    "requests_by_theme",
    "reached",
    "walk_ins",
    "workshops",
    "workshop_attendees",
];

#[test]
fn coverage_csv_parses_with_the_documented_columns_and_json_parses() {
    let f = fixture();
    assert_eq!(CSV_COLUMNS, DOCUMENTED_COLUMNS);
    for by in BYS {
        let raw = &f.reports[&(by, "csv")];
        let text = std::str::from_utf8(raw).expect("CSV is UTF-8");
        assert!(text.ends_with("\r\n"), "--by {by}: last line ends in CRLF");
        assert!(
            !text.replace("\r\n", "").contains(['\r', '\n']),
            "--by {by}: every line ends in CRLF"
        );
        let mut reader = csv::ReaderBuilder::new().from_reader(raw.as_slice());
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, CSV_COLUMNS);
        let records: Vec<csv::StringRecord> = reader
            .records()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("--by {by}: {e}"));
        assert!(records.iter().all(|r| r.len() == CSV_COLUMNS.len()));
        let col = |name: &str| CSV_COLUMNS.iter().position(|c| *c == name).expect("column");
        let report = report_json(f, by);
        let rows = report["rows"].as_array().expect("rows");
        // The group rows, in the JSON's order, then the total.
        for (r, j) in records.iter().zip(rows.iter().chain([&report["totals"]])) {
            let group = if j["key"] == "total" { "total" } else { by };
            assert_eq!(&r[col("group")], group);
            assert_eq!(&r[col("key")], j["key"].as_str().expect("key"));
            assert_eq!(&r[col("label")], j["label"].as_str().expect("label"));
            for (c, k) in [
                ("passages_planned", "passages_planned"),
                ("passages_held", "passages_held"),
                ("passages_cancelled", "passages_cancelled"),
                ("citizens_received", "citizens_received"),
                ("requests", "requests"),
                ("requests_resolved_on_spot", "resolved_on_spot"),
                ("request_minutes", "request_minutes"),
            ] {
                assert_eq!(r[col(c)], j[k].to_string(), "{c} of {r:?}");
            }
            for (c, map, k) in [
                ("appointments_arret", "appointments_by_location", "arret"),
                (
                    "appointments_domicile",
                    "appointments_by_location",
                    "domicile",
                ),
                ("appointments_seen", "appointments_by_status", "seen"),
                ("appointments_noshow", "appointments_by_status", "noshow"),
            ] {
                assert_eq!(
                    r[col(c)],
                    j[map][k].as_u64().unwrap_or(0).to_string(),
                    "{c} of {r:?}"
                );
            }
            let causes: Vec<String> = j["cancel_causes"]
                .as_object()
                .expect("causes")
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            assert_eq!(r[col("cancel_causes")], causes.join(" "));
        }
        assert_eq!(records[rows.len()][col("group")].to_owned(), "total");
        if by != "commune" {
            assert_eq!(records.len(), rows.len() + 1, "--by {by}: groups and total");
        }
    }

    // By commune, every commune of the Somme is there once, with `reached`.
    let raw = &f.reports[&("commune", "csv")];
    let mut reader = csv::ReaderBuilder::new().from_reader(raw.as_slice());
    let communes: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .expect("records")
        .into_iter()
        .filter(|r| &r[0] == "commune")
        .collect();
    let codes: BTreeSet<&str> = communes.iter().map(|r| &r[1]).collect();
    assert_eq!(codes.len(), communes.len(), "each commune once");
    assert_eq!(
        codes,
        somme_communes()
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
    );
    let by_code = |code: &str| communes.iter().find(|r| &r[1] == code).expect("row");
    let reached = CSV_COLUMNS
        .iter()
        .position(|c| *c == "reached")
        .expect("a reached column");
    let home = home_visits_held(&f.recorded);
    assert!(!home.is_empty(), "the scenario holds home visits");
    for (code, label) in [
        (C1, "Abbeville"),
        (C2, "Beaucourt-sur-l'Ancre"),
        (C3, "Balâtre"),
        (C4, "L'Échelle-Saint-Aurin"),
        ("80021", "Amiens"),
    ] {
        let r = by_code(code);
        assert_eq!(&r[2], label, "names survive the round trip");
        let was_reached = code == C1 || code == C2 || home.contains(code);
        assert_eq!(r[reached], was_reached.to_string(), "{code}");
    }
    assert_eq!(&by_code("80021")[3], "136449", "population");
    // No commune of the shipped data needs quoting; the cells that would are quoted right.
    assert!(!somme_communes()
        .keys()
        .any(|c| by_code(c)[2].contains([',', '"'])));
    assert!(std::str::from_utf8(raw)
        .expect("utf-8")
        .contains("\r\ncommune,80065,Beaucourt-sur-l'Ancre,"));

    // JSON parses in every grouping and says which one.
    for by in BYS {
        let report = report_json(f, by);
        assert_eq!(report["by"], by);
        assert!(report["rows"].is_array() && report["totals"].is_object());
    }
}

#[test]
fn a_supervisor_report_holds_no_name_phone_or_address() {
    let f = fixture();
    // The personal data is on the server (so the report could have leaked it)…
    for s in f.secrets.iter().take(18) {
        assert!(f.export.contains(s.as_str()), "{s} reached the server");
    }
    assert!(f.secrets.len() > 18 + 12, "citizen ids collected");
    // …and in no report, in no grouping or format.
    for ((by, format), out) in &f.reports {
        let text = String::from_utf8(out.clone()).expect("utf-8");
        assert!(text.len() > 100, "--by {by} --format {format}: {text}");
        for s in &f.secrets {
            assert!(
                !text.contains(s.as_str()),
                "--by {by} --format {format} shows '{s}'"
            );
        }
    }
    let aisne = f.aisne.to_string();
    assert!(!aisne.contains("Fulbert") && !aisne.contains("Argoud"));
}
