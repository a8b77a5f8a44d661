//! Workload `coverage`: a year of a département on the server's store — 40 units (30 buses,
//! 10 home-visit teams), 500 stops, one round per unit, 2–3 passages a unit a week (≈ 5,200),
//! 100,000 appointments and 150,000 requests — then the supervisor's coverage report for the
//! whole year, by commune, unit, partner and theme.
//!
//! The load goes through the product's `SqliteStore::write_local` on a server identity store
//! (so the changelog and the reporting projection are maintained exactly as in production), in
//! scheduler-sized actions of up to `SCHEDULER_ACTION_CHANGES_MAX` changes, with
//! `Durability::Normal` (the load is setup, not what is measured). The store is then reopened
//! with full durability and each report is timed: `coverage_data` (SQL over the projection)
//! plus `report::build`, one cold run on the fresh connection and the median of the next ones.
//!
//! Appointments carry a citizen id drawn from a pool of returning people (0.6 per
//! appointment); the citizen records themselves are not written (the report only counts ids).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use chrono::{Datelike, NaiveDate, NaiveTime, Weekday};
use serde_json::json;
use tournee_core::clock::WallMs;
use tournee_core::limits::SCHEDULER_ACTION_CHANGES_MAX;
use tournee_core::model::{
    AppointmentStatus, CancelCause, Field, Kind, Level, Location, Outcome, PassageStatus, Scope,
    Value,
};
use tournee_core::refdata::RefData;
use tournee_core::rng::SeededRng;
use tournee_core::schedule::{encode_stops, RoundStop};
use tournee_core::store::{Identity, LocalAction, RecordEdit, Store};
use tournee_core::time::{paris_date, paris_midnight};
use tournee_report::queries::GroupBy;
use tournee_report::queries::Queries;
use tournee_report::report;
use tournee_store::{Durability, SqliteStore};
use uuid::Uuid;

use super::{load_average, ms, percentile, Report, BASE_NOW_MS, TERRITORY};

/// Appointments in the year (the brief's 100,000).
pub const DEFAULT_APPOINTMENTS: usize = 100_000;
/// Appointments with `--quick`.
pub const QUICK_APPOINTMENTS: usize = 5_000;

const BUS_UNITS: usize = 30;
const HOME_UNITS: usize = 10;
const STOPS: usize = 500;
/// Timed runs of each report after the cold one.
const RUNS: usize = 5;
/// §6-style target for the supervisor's report over a year of a département.
const TARGET_REPORT_MS: f64 = 1_000.0;

const LABELS: &[&str] = &[
    "Place de la mairie",
    "Parking de la salle des fêtes",
    "Place de l'église",
    "Parking de la gare",
    "Place du marché",
    "Cour de l'école",
];
/// Partners, weighted by how often people come for them.
const PARTNERS: &[(&str, u64)] = &[
    ("caf", 20),
    ("assurance_maladie", 18),
    ("dgfip", 14),
    ("assurance_retraite", 12),
    ("france_travail", 12),
    ("interieur_ants", 12),
    ("msa", 4),
    ("la_poste", 2),
    ("justice", 2),
    ("agirc_arrco", 2),
    ("cheque_energie", 1),
    ("autre", 1),
];
const THEMES: &[&str] = &[
    "papiers_citoyennete",
    "famille_scolarite",
    "social_sante",
    "travail_formation",
    "logement",
    "transports_mobilite",
    "argent_impots",
    "justice",
    "etrangers_europe",
    "loisirs_culture",
    "numerique",
];

fn weighted(rng: &mut SeededRng, items: &[(&'static str, u64)]) -> &'static str {
    let total: u64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(total);
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    items.last().map_or("autre", |(i, _)| i)
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Accumulates record creations into actions of at most `SCHEDULER_ACTION_CHANGES_MAX`
/// changes and writes them through `write_local`.
struct Loader<'a> {
    store: &'a mut SqliteStore,
    now: WallMs,
    edits: Vec<RecordEdit>,
    changes: usize,
    total_changes: usize,
    records: usize,
    actions: usize,
}

impl Loader<'_> {
    fn create(
        &mut self,
        id: Uuid,
        kind: Kind,
        scope: Scope,
        sets: Vec<(Field, Value)>,
    ) -> Result<()> {
        if self.changes + sets.len() > SCHEDULER_ACTION_CHANGES_MAX {
            self.flush()?;
        }
        self.changes += sets.len();
        self.total_changes += sets.len();
        self.records += 1;
        self.edits.push(RecordEdit {
            id,
            kind,
            scope,
            create: true,
            sets,
        });
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.edits.is_empty() {
            return Ok(());
        }
        let action = LocalAction {
            edits: std::mem::take(&mut self.edits),
        };
        self.store.write_local(self.now, &action)?;
        self.changes = 0;
        self.actions += 1;
        Ok(())
    }
}

/// A passage as the appointments and requests refer to it.
#[derive(Debug, Clone, Copy)]
struct Passage {
    id: Uuid,
    planned_start: i64,
    stop: usize,
    held: bool,
}

/// What was loaded, to check the reports against.
#[derive(Debug, Default)]
struct Loaded {
    units: usize,
    stops: usize,
    passages: usize,
    appointments: usize,
    requests: usize,
    records: usize,
    changes: usize,
    actions: usize,
}

pub(crate) fn run(report: &mut Report, seed: u64, appointments: usize, keep: bool) -> Result<()> {
    ensure!(appointments >= 100, "--n must be at least 100 for coverage");
    let dir = tempfile::tempdir().context("creating the temporary directory")?;
    let path = dir.path().join("server.sqlite");
    let today = paris_date(i64::try_from(BASE_NOW_MS / 1000)?).context("base date")?;
    let to = today - chrono::Duration::days(1);
    let from = to - chrono::Duration::days(364);
    eprintln!(
        "coverage: seed {seed}, {appointments} appointments over {from} .. {to}, files in {}; load average {}",
        dir.path().display(),
        load_average()
    );

    let t = Instant::now();
    let loaded = {
        let mut store = tournee_report::facts::open_server_store_with(&path, Durability::Normal)
            .context("opening the store")?;
        store.set_identity(&Identity::server())?;
        load(&mut store, seed, appointments, from, to)?
    };
    let load_time = t.elapsed();
    let store = SqliteStore::open(&path).context("reopening the store")?;
    let bytes = store.bytes_used()?;
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let rate = loaded.changes as f64 / load_time.as_secs_f64();
    report.push(
        json!({
            "bench": "coverage.load",
            "what": "a year of a département written through write_local on a server store (Durability::Normal, scheduler-sized actions)",
            "units": loaded.units,
            "stops": loaded.stops,
            "passages": loaded.passages,
            "appointments": loaded.appointments,
            "requests": loaded.requests,
            "records": loaded.records,
            "changes": loaded.changes,
            "actions": loaded.actions,
            "load_s": (load_time.as_secs_f64() * 10.0).round() / 10.0,
            "changes_per_s": rate.round(),
            "store_bytes": bytes,
            "file_bytes": file_bytes,
            "bytes_per_record": (bytes as f64 / loaded.records.max(1) as f64).round(),
            "informational": true,
            "ok": true,
        }),
        format!(
            "{} records, {} changes in {:.1} s ({:.0} changes/s), store {:.1} MB",
            loaded.records,
            loaded.changes,
            load_time.as_secs_f64(),
            rate,
            bytes as f64 / 1e6
        ),
        "(setup)".into(),
    );

    for by in [
        GroupBy::Commune,
        GroupBy::Unit,
        GroupBy::Partner,
        GroupBy::Theme,
        GroupBy::Week,
        GroupBy::Epci,
    ] {
        time_report(report, &store, by, from, to, &loaded)?;
    }
    drop(store);
    super::console::run(report, dir.path(), from, to)?;
    if keep {
        eprintln!("coverage: files kept in {}", dir.keep().display());
    }
    Ok(())
}

fn by_name(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Commune => "commune",
        GroupBy::Unit => "unit",
        GroupBy::Partner => "partner",
        GroupBy::Theme => "theme",
        GroupBy::Week => "week",
        GroupBy::Epci => "epci",
    }
}

fn time_report(
    report: &mut Report,
    store: &SqliteStore,
    by: GroupBy,
    from: NaiveDate,
    to: NaiveDate,
    loaded: &Loaded,
) -> Result<()> {
    let mut query = Vec::with_capacity(RUNS + 1);
    let mut build = Vec::with_capacity(RUNS + 1);
    let mut rows = 0;
    for _ in 0..=RUNS {
        let t = Instant::now();
        let data = store.coverage_data(TERRITORY, from, to, by)?;
        let q = t.elapsed();
        let t = Instant::now();
        let coverage = report::build(TERRITORY, from, to, by, &data);
        build.push(t.elapsed());
        query.push(q);
        rows = coverage.rows.len();
        // The report must account for everything loaded.
        ensure!(
            coverage.totals.requests == loaded.requests as u64,
            "report by {}: {} requests, {} loaded",
            by_name(by),
            coverage.totals.requests,
            loaded.requests
        );
        if matches!(by, GroupBy::Commune | GroupBy::Unit) {
            let appts: u64 = coverage.totals.appointments_by_status.values().sum();
            ensure!(
                appts == loaded.appointments as u64
                    && coverage.totals.passages_planned == loaded.passages as u64,
                "report by {}: {appts} appointments and {} passages, {} and {} loaded",
                by_name(by),
                coverage.totals.passages_planned,
                loaded.appointments,
                loaded.passages
            );
        }
    }
    let total: Vec<Duration> = query.iter().zip(&build).map(|(q, b)| *q + *b).collect();
    let (cold, cold_query) = (total[0], query[0]);
    let mut warm = total[1..].to_vec();
    warm.sort_unstable();
    let mut warm_query = query[1..].to_vec();
    warm_query.sort_unstable();
    let mut warm_build = build[1..].to_vec();
    warm_build.sort_unstable();
    let p50 = percentile(&warm, 50.0);
    let ok = ms(p50) < TARGET_REPORT_MS;
    let name = by_name(by);
    report.push(
        json!({
            "bench": format!("coverage.report.{name}"),
            "what": "store.coverage_data + report::build for the whole year, p50 of the runs after the first",
            "p50_ms": ms(p50),
            "max_ms": ms(warm.last().copied().unwrap_or_default()),
            "query_p50_ms": ms(percentile(&warm_query, 50.0)),
            "build_p50_ms": ms(percentile(&warm_build, 50.0)),
            "cold_ms": ms(cold),
            "cold_query_ms": ms(cold_query),
            "rows": rows,
            "runs": warm.len(),
            "target_ms": TARGET_REPORT_MS,
            "ok": ok,
        }),
        format!(
            "p50 {:.0} ms (query {:.0} + build {:.0}), cold {:.0} ms, {rows} rows",
            ms(p50),
            ms(percentile(&warm_query, 50.0)),
            ms(percentile(&warm_build, 50.0)),
            ms(cold)
        ),
        format!("< {TARGET_REPORT_MS:.0} ms"),
    );
    Ok(())
}

fn load(
    store: &mut SqliteStore,
    seed: u64,
    appointments: usize,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Loaded> {
    let now = BASE_NOW_MS;
    let mut rng = SeededRng::new(seed ^ 0xC0FE_0000_0000_0001);
    let mut w = Loader {
        store,
        now,
        edits: Vec::new(),
        changes: 0,
        total_changes: 0,
        records: 0,
        actions: 0,
    };
    let territory = Scope::Territory(TERRITORY.into());
    let units: Vec<String> = (0..BUS_UNITS)
        .map(|i| format!("bus-80-{:02}", i + 1))
        .chain((0..HOME_UNITS).map(|i| format!("dom-80-{:02}", i + 1)))
        .collect();

    // Stops in 500 distinct communes of the département.
    let mut communes: Vec<String> = RefData::get()
        .communes_of(TERRITORY)
        .into_iter()
        .map(|c| c.code_insee.clone())
        .collect();
    ensure!(
        communes.len() >= STOPS,
        "not enough communes in {TERRITORY}"
    );
    let all_communes = communes.clone();
    rng.shuffle(&mut communes);
    let mut stops: Vec<(Uuid, String)> = Vec::with_capacity(STOPS);
    for commune in communes.into_iter().take(STOPS) {
        let id = rng.uuid_v7(now);
        w.create(
            id,
            Kind::Stop,
            territory.clone(),
            vec![
                (Field::Commune, text(&commune)),
                (Field::Label, text(rng.pick::<&str>(LABELS))),
                (
                    Field::Address,
                    text(&format!("{} rue principale", 1 + rng.below(40))),
                ),
            ],
        )?;
        stops.push((id, commune));
    }

    // One round per unit over its stops, and its passages over the year.
    let weekdays = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
    let morning = (
        NaiveTime::from_hms_opt(9, 0, 0).context("time")?,
        NaiveTime::from_hms_opt(12, 0, 0).context("time")?,
    );
    let first_monday =
        from + chrono::Duration::days(i64::from((7 - from.weekday().num_days_from_monday()) % 7));
    let mut passages: Vec<Vec<Passage>> = vec![Vec::new(); units.len()];
    let mut passage_count = 0;
    for (u, unit) in units.iter().enumerate() {
        let scope = Scope::Unit(unit.clone());
        let mine: Vec<usize> = (u..stops.len()).step_by(units.len()).collect();
        let round = rng.uuid_v7(now);
        let plan: Vec<RoundStop> = mine
            .iter()
            .enumerate()
            .map(|(i, s)| RoundStop {
                stop: stops[*s].0,
                weekday: weekdays[i % weekdays.len()],
                start: morning.0,
                end: morning.1,
            })
            .collect();
        w.create(
            round,
            Kind::Round,
            scope.clone(),
            vec![
                (Field::Name, text(&format!("Tournée {unit}"))),
                (Field::Stops, text(&encode_stops(&plan))),
                (Field::EveryWeeks, Value::Int(1)),
                (Field::ValidFrom, text(&from.to_string())),
                (Field::ValidTo, Value::Null),
            ],
        )?;
        let mut week = 0i64;
        let mut visit = 0usize;
        loop {
            let monday = first_monday + chrono::Duration::days(7 * week);
            if monday > to {
                break;
            }
            let count = 2 + usize::from(rng.chance_percent(50));
            for j in 0..count {
                let date = monday + chrono::Duration::days(2 * j as i64);
                if date > to {
                    break;
                }
                let stop = mine[visit % mine.len()];
                visit += 1;
                let start = paris_midnight(date) + 9 * 3_600;
                let end = start + 3 * 3_600;
                let id = rng.uuid_v7(now);
                let mut sets = vec![
                    (Field::Round, Value::Id(round)),
                    (Field::Stop, Value::Id(stops[stop].0)),
                    (Field::Date, text(&date.to_string())),
                    (Field::PlannedStart, Value::Int(start)),
                    (Field::PlannedEnd, Value::Int(end)),
                ];
                let roll = rng.below(100);
                let held = roll < 90;
                if held {
                    sets.push((Field::Status, text(PassageStatus::Held.code())));
                    sets.push((
                        Field::ActualStart,
                        Value::Int(start + 60 * rng.below(15) as i64),
                    ));
                    sets.push((
                        Field::ActualEnd,
                        Value::Int(end - 900 + 60 * rng.below(30) as i64),
                    ));
                } else if roll < 95 {
                    sets.push((Field::Status, text(PassageStatus::Cancelled.code())));
                    let cause = *rng.pick(&[
                        CancelCause::Breakdown,
                        CancelCause::Weather,
                        CancelCause::StaffAbsent,
                        CancelCause::Other,
                    ]);
                    sets.push((Field::Cause, text(cause.code())));
                } else {
                    sets.push((Field::Status, text(PassageStatus::Planned.code())));
                }
                w.create(id, Kind::Passage, scope.clone(), sets)?;
                passages[u].push(Passage {
                    id,
                    planned_start: start,
                    stop,
                    held,
                });
                passage_count += 1;
            }
            week += 1;
        }
    }

    // Appointments: buses mostly at their passages, home-visit teams at home; some by phone.
    let citizens: Vec<Uuid> = (0..(appointments * 6 / 10).max(1))
        .map(|_| rng.uuid_v7(now))
        .collect();
    let statuses = [
        (AppointmentStatus::Seen.code(), 80),
        (AppointmentStatus::NoShow.code(), 8),
        (AppointmentStatus::Excused.code(), 5),
        (AppointmentStatus::Revoked.code(), 2),
        (AppointmentStatus::Unknown.code(), 5),
    ];
    let held: Vec<Vec<Passage>> = passages
        .iter()
        .map(|ps| ps.iter().filter(|p| p.held).copied().collect())
        .collect();
    // (appointment, start, unit) of every appointment whose person came.
    let mut seen: Vec<(Uuid, i64, usize)> = Vec::with_capacity(appointments);
    for i in 0..appointments {
        let u = i % units.len();
        let home_team = u >= BUS_UNITS;
        let roll = rng.below(100);
        let at_passage = !home_team && roll < 70 && !held[u].is_empty();
        let (location, commune, start, passage) = if at_passage {
            let p = *rng.pick(&held[u]);
            (
                Location::Stop,
                stops[p.stop].1.clone(),
                p.planned_start + 900 * rng.below(12) as i64,
                Some(p.id),
            )
        } else {
            let location = match (home_team, roll) {
                (true, r) if r < 85 => Location::Home,
                (false, r) if r >= 90 => Location::Home,
                _ => Location::Phone,
            };
            let day = from + chrono::Duration::days(rng.below(365) as i64);
            (
                location,
                rng.pick(&all_communes).clone(),
                paris_midnight(day) + 9 * 3_600 + 900 * rng.below(32) as i64,
                None,
            )
        };
        let status = weighted(&mut rng, &statuses);
        let id = rng.uuid_v7(u64::try_from(start).unwrap_or(0) * 1000);
        let mut sets = vec![
            (Field::Location, text(location.code())),
            (Field::Commune, text(&commune)),
            (Field::Start, Value::Int(start)),
            (Field::Duration, Value::Int(15 * (1 + rng.below(4) as i64))),
            (Field::Status, text(status)),
            (Field::Citizen, Value::Id(*rng.pick(&citizens))),
        ];
        if let Some(p) = passage {
            sets.push((Field::Passage, Value::Id(p)));
        }
        if rng.chance_percent(20) {
            sets.push((Field::Note, text("rappeler pour le suivi du dossier")));
        }
        w.create(id, Kind::Appointment, Scope::Unit(units[u].clone()), sets)?;
        if status == AppointmentStatus::Seen.code() {
            seen.push((id, start, u));
        }
    }

    // Requests: 1.5 per appointment in all — one or two per person seen, plus walk-ins at
    // held passages.
    let walk_ins = appointments * 15 / 100;
    let at_appointments = appointments * 3 / 2 - walk_ins;
    let extra_pct = ((at_appointments.saturating_sub(seen.len())) * 100 / seen.len().max(1)) as u64;
    let mut requests_at_appointments = 0usize;
    let request = |w: &mut Loader<'_>,
                   rng: &mut SeededRng,
                   link: (Field, Uuid),
                   unit: &str,
                   at: i64|
     -> Result<()> {
        let outcome = weighted(
            rng,
            &[
                (Outcome::Resolved.code(), 55),
                (Outcome::Referred.code(), 25),
                (Outcome::Waiting.code(), 12),
                (Outcome::Unresolved.code(), 8),
            ],
        );
        let level = rng
            .pick(&[Level::Information, Level::Support, Level::Referral])
            .code();
        let id = rng.uuid_v7(u64::try_from(at).unwrap_or(0) * 1000);
        w.create(
            id,
            Kind::Request,
            Scope::Unit(unit.to_owned()),
            vec![
                (link.0, Value::Id(link.1)),
                (Field::Partner, text(weighted(rng, PARTNERS))),
                (Field::Theme, text(rng.pick::<&str>(THEMES))),
                (Field::Level, text(level)),
                (Field::Outcome, text(outcome)),
                (Field::Duration, Value::Int(10 + 5 * rng.below(8) as i64)),
            ],
        )
    };
    for (id, start, u) in &seen {
        let n = 1 + usize::from(rng.chance_percent(extra_pct.min(100)));
        for _ in 0..n {
            if requests_at_appointments >= at_appointments {
                break;
            }
            request(
                &mut w,
                &mut rng,
                (Field::Appointment, *id),
                &units[*u],
                *start,
            )?;
            requests_at_appointments += 1;
        }
    }
    let all_held: Vec<(usize, Passage)> = held
        .iter()
        .enumerate()
        .flat_map(|(u, ps)| ps.iter().map(move |p| (u, *p)))
        .collect();
    ensure!(!all_held.is_empty(), "no passage held");
    for _ in 0..walk_ins {
        let (u, p) = *rng.pick(&all_held);
        request(
            &mut w,
            &mut rng,
            (Field::Passage, p.id),
            &units[u],
            p.planned_start,
        )?;
    }
    let requests = requests_at_appointments + walk_ins;
    w.flush()?;
    Ok(Loaded {
        units: units.len(),
        stops: stops.len(),
        passages: passage_count,
        appointments,
        requests,
        records: w.records,
        changes: w.total_changes,
        actions: w.actions,
    })
}
