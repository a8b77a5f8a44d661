//! Workload `field-year`: a year of one unit's field work in a laptop's store — 5,000 persons,
//! 12,000 appointments and walk-ins, 20,000 requests, three passages a weekday — then what the
//! conseillère's screens read: today's sheet (passages, appointments with their persons,
//! walk-ins), a person search as she types, a walk-in with two requests submitted (durable
//! commit), the pending requests and a person's history.
//!
//! The load goes through the product's actions (`tournee_core::actions`) and `write_local`
//! with `Durability::Normal` (setup, not measured); the store is then reopened with full
//! durability and each read or write is timed on it. Issue 13's targets: today p95 ≤ 50 ms,
//! search p95 ≤ 20 ms, submit to durable commit p95 ≤ 10 ms. The HTML rendering of the UI is
//! measured with the daemon (README), not here.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{Datelike, Duration as Days, NaiveDate, Weekday};
use serde_json::json;
use tournee_core::actions::people::{add_person, NewPerson};
use tournee_core::actions::visits::{add_visit, NewVisit, VisitPlace};
use tournee_core::actions::{
    add_appointment, add_request, create_record, NewAppointment, NewRequest,
};
use tournee_core::clock::WallMs;
use tournee_core::model::{Field, Kind, Level, Location, Outcome, Scope, Value};
use tournee_core::rng::SeededRng;
use tournee_core::store::{LocalAction, Store};
use tournee_core::time::{paris_date, paris_midnight};
use tournee_core::views::{list_requests, person_history, search_persons, RequestFilter};
use tournee_store::{Durability, SqliteStore};
use uuid::Uuid;

use super::{load_average, ms, percentile, Report, BASE_NOW_MS, TERRITORY, UNIT};

/// Persons of the unit in a year.
pub const DEFAULT_PERSONS: usize = 5_000;
/// With `--quick`.
pub const QUICK_PERSONS: usize = 300;
/// Appointments and walk-ins per person, and requests per appointment or walk-in (12,000
/// and 20,000 for 5,000 persons).
const RECORDS_PER_PERSON: f64 = 2.4;
const REQUESTS_PER_RECORD: f64 = 5.0 / 3.0;
/// Records per setup action (one transaction each; a local action holds at most
/// `LOCAL_ACTION_CHANGES_MAX` changes, a user's action, so the setup writes record by record).
const SETUP_BATCH: usize = 1;
/// Timed repetitions of each read or write.
const SAMPLES: usize = 200;

/// Issue 13's targets, in milliseconds.
const TARGET_TODAY_P95_MS: f64 = 50.0;
const TARGET_SEARCH_P95_MS: f64 = 20.0;
const TARGET_SUBMIT_P95_MS: f64 = 10.0;

const SURNAMES: &[&str] = &[
    "Martin",
    "Lefèvre",
    "Dubois",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Michel",
    "Garcia",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Legrand",
    "Garnier",
    "Faure",
];
const COMMUNES: &[&str] = &["80021", "80001", "80016", "80253", "80620"];

fn merge_into(acc: &mut LocalAction, a: LocalAction) {
    acc.edits.extend(a.edits);
}

/// Write `actions` in transactions of `SETUP_BATCH` records.
fn flush(store: &mut SqliteStore, now: WallMs, batch: &mut LocalAction) -> Result<()> {
    if !batch.edits.is_empty() {
        store.write_local(now, batch).context("setup write")?;
        batch.edits.clear();
    }
    Ok(())
}

/// The year's plan and work, written into `store`. Returns the persons, the passages of the
/// measured day and that day.
fn load(
    store: &mut SqliteStore,
    rng: &mut SeededRng,
    persons_n: usize,
) -> Result<(Vec<Uuid>, NaiveDate)> {
    let now = BASE_NOW_MS;
    let first = paris_date(i64::try_from(now / 1000)? - 365 * 86_400).context("date")?;
    let mut batch = LocalAction { edits: Vec::new() };
    // Stops and three passages a weekday.
    let stops: Vec<Uuid> = (0..15u128)
        .map(|i| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0001_0000 | i))
        .collect();
    for (i, s) in stops.iter().enumerate() {
        merge_into(
            &mut batch,
            create_record(
                *s,
                Kind::Stop,
                Scope::Territory(TERRITORY.into()),
                vec![
                    (
                        Field::Commune,
                        Value::Text(COMMUNES[i % COMMUNES.len()].into()),
                    ),
                    (Field::Label, Value::Text(format!("Arrêt {i}"))),
                ],
            ),
        );
    }
    flush(store, now, &mut batch)?;
    let mut day = first;
    let mut passages_by_day: Vec<(NaiveDate, Vec<Uuid>)> = Vec::new();
    let mut n = 0u128;
    while day <= paris_date(i64::try_from(now / 1000)? + 14 * 86_400).context("date")? {
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            let mut today = Vec::new();
            for k in 0..3i64 {
                n += 1;
                let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0002_0000_0000 | n);
                let start = paris_midnight(day) + (9 + 3 * k) * 3600;
                merge_into(
                    &mut batch,
                    create_record(
                        id,
                        Kind::Passage,
                        Scope::Unit(UNIT.into()),
                        vec![
                            (Field::Round, Value::Id(Uuid::from_u128(7))),
                            (
                                Field::Stop,
                                Value::Id(stops[rng.below(stops.len() as u64) as usize]),
                            ),
                            (Field::Date, Value::Text(day.to_string())),
                            (Field::PlannedStart, Value::Int(start)),
                            (Field::PlannedEnd, Value::Int(start + 2 * 3600)),
                            (Field::Status, Value::Text("planifie".into())),
                        ],
                    ),
                );
                today.push(id);
            }
            passages_by_day.push((day, today));
            if batch.edits.len() >= SETUP_BATCH {
                flush(store, now, &mut batch)?;
            }
        }
        day += Days::days(1);
    }
    flush(store, now, &mut batch)?;
    // Persons.
    let mut persons = Vec::with_capacity(persons_n);
    for i in 0..persons_n {
        let p = NewPerson {
            name: format!(
                "{} {}",
                ["Mme", "M."][i % 2],
                SURNAMES[rng.below(SURNAMES.len() as u64) as usize]
            ),
            phone: (i % 3 != 0).then(|| {
                format!(
                    "06 {:02} {:02} {:02} {:02}",
                    rng.below(100),
                    rng.below(100),
                    rng.below(100),
                    rng.below(100)
                )
            }),
            birth_year: Some(1930 + rng.below(80) as i64),
            commune: Some(COMMUNES[i % COMMUNES.len()].into()),
            address: (i % 4 == 0).then(|| format!("{} rue de l'Église", 1 + rng.below(80))),
        };
        let (id, a) = add_person(now, UNIT, &p)?;
        persons.push(id);
        merge_into(&mut batch, a);
        if batch.edits.len() >= SETUP_BATCH {
            flush(store, now, &mut batch)?;
        }
    }
    flush(store, now, &mut batch)?;
    // Appointments and walk-ins over the year (half each), with their requests.
    let records = (persons_n as f64 * RECORDS_PER_PERSON) as usize;
    let mut with_requests = 0.0;
    for i in 0..records {
        let (day, passages) = &passages_by_day[rng.below(passages_by_day.len() as u64) as usize];
        let at = paris_midnight(*day) + 9 * 3600 + 600 * rng.below(40) as i64;
        let person = persons[rng.below(persons.len() as u64) as usize];
        let (id, a, is_visit) = if i % 2 == 0 {
            let new = NewAppointment {
                start: at,
                duration: 30,
                location: [Location::Stop, Location::Home, Location::Phone][i % 3],
                commune: COMMUNES[i % COMMUNES.len()].into(),
                citizen: None,
                person: Some(person),
                passage: None,
                note: None,
            };
            let (id, a) = add_appointment(store, now, UNIT, &new)?;
            (id, a, false)
        } else {
            let v = NewVisit {
                place: VisitPlace::Commune {
                    commune: COMMUNES[i % COMMUNES.len()].into(),
                    location: Location::Stop,
                },
                person: (i % 5 != 1).then_some(person),
                at,
            };
            let _ = passages;
            let (id, a) = add_visit(store, now, UNIT, &v)?;
            (id, a, true)
        };
        merge_into(&mut batch, a);
        // The parent must be stored before its requests are built (add_request reads it).
        flush(store, now, &mut batch)?;
        with_requests += REQUESTS_PER_RECORD;
        while with_requests >= 1.0 {
            with_requests -= 1.0;
            let r = NewRequest {
                appointment: (!is_visit).then_some(id),
                passage: None,
                visit: is_visit.then_some(id),
                partner: ["caf", "assurance_maladie", "france_travail", "dgfip"]
                    [rng.below(4) as usize]
                    .into(),
                theme: [
                    "logement",
                    "social_sante",
                    "travail_formation",
                    "argent_impots",
                ][rng.below(4) as usize]
                    .into(),
                level: Level::Support,
                outcome: [Outcome::Resolved, Outcome::Waiting, Outcome::Referred]
                    [rng.below(3) as usize],
                minutes: Some(10 + rng.below(30) as i64),
            };
            let (_, a) = add_request(store, now, &r)?;
            merge_into(&mut batch, a);
        }
        if batch.edits.len() >= SETUP_BATCH {
            flush(store, now, &mut batch)?;
        }
    }
    flush(store, now, &mut batch)?;
    let today = paris_date(i64::try_from(now / 1000)?).context("date")?;
    Ok((persons, today))
}

fn p95(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    percentile(&samples, 95.0)
}

fn timed(mut f: impl FnMut(usize) -> Result<()>) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let t = Instant::now();
        f(i)?;
        out.push(t.elapsed());
    }
    Ok(out)
}

/// Today's sheet as the Aujourd'hui page reads it.
fn today_sheet(store: &SqliteStore, day: NaiveDate) -> Result<usize> {
    let mut n = 0;
    for kind in [Kind::Passage, Kind::Appointment, Kind::Visit] {
        for r in store.records_on(kind, day)? {
            if let Some(p) = r.id_ref(Field::Citizen) {
                n += usize::from(store.record(p)?.is_some());
            }
            if let Some(s) = r.id_ref(Field::Stop) {
                n += usize::from(store.record(s)?.is_some());
            }
            n += 1;
        }
    }
    Ok(n)
}

pub(super) fn push(
    report: &mut Report,
    bench: &str,
    samples: Vec<Duration>,
    target_ms: f64,
    extra: serde_json::Value,
) {
    let samples_n = samples.len();
    let p = p95(samples);
    let ok = ms(p) <= target_ms;
    let mut line = json!({ "bench": bench, "p95_ms": ms(p), "target_p95_ms": target_ms, "ok": ok, "samples": samples_n, "load_average": load_average() });
    if let (Some(l), Some(e)) = (line.as_object_mut(), extra.as_object()) {
        l.extend(e.clone());
    }
    report.push(
        line,
        format!("p95 {:.1} ms", ms(p)),
        format!("≤ {target_ms} ms"),
    );
}

/// Run the workload with `persons_n` persons.
pub fn run(report: &mut Report, seed: u64, persons_n: usize, keep: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    // An enrolled laptop of the unit, so that its daemon can serve the same store afterwards.
    let laptop = super::field_ui::enrolled_laptop(dir.path())?;
    let path = laptop.join("agent.sqlite");
    let mut rng = SeededRng::new(seed);
    let setup = Instant::now();
    {
        let mut store = SqliteStore::open_with(&path, Durability::Normal)?;
        load(&mut store, &mut rng, persons_n)?;
        // The year was synced long ago: nothing of it waits in the outbox.
        let last = store.stats()?.last_seq;
        store.acknowledge(last, &[])?;
    }
    let loaded = setup.elapsed();
    let mut store = SqliteStore::open(&path)?;
    let today = paris_date(i64::try_from(BASE_NOW_MS / 1000)?).context("date")?;
    let stats = json!({
        "persons": store.records_of_kind(Kind::Citizen)?.len(),
        "appointments": store.records_of_kind(Kind::Appointment)?.len(),
        "visits": store.records_of_kind(Kind::Visit)?.len(),
        "requests": store.records_of_kind(Kind::Request)?.len(),
        "setup_s": loaded.as_secs(),
        "store_bytes": std::fs::metadata(&path)?.len(),
    });
    let mut shown = 0;
    let today_samples = timed(|_| {
        shown = today_sheet(&store, today)?;
        Ok(())
    })?;
    push(
        report,
        "field_today_p95",
        today_samples,
        TARGET_TODAY_P95_MS,
        json!({ "records_shown": shown, "store": stats }),
    );
    // Search as she types: one to six letters of a surname, accent-blind, and phone digits.
    let queries: Vec<String> = (0..SAMPLES)
        .map(|i| {
            let name = tournee_core::person::fold(SURNAMES[i % SURNAMES.len()]);
            match i % 4 {
                3 => format!("06 {:02}", i % 100),
                k => name.chars().take(2 + 2 * k).collect(),
            }
        })
        .collect();
    let search = timed(|i| {
        search_persons(&store, &queries[i], 20)?;
        Ok(())
    })?;
    push(
        report,
        "field_person_search_p95",
        search,
        TARGET_SEARCH_P95_MS,
        json!({}),
    );
    // A walk-in with two requests, as the Accueillir form submits it: one durable commit.
    let persons: Vec<Uuid> = store
        .records_of_kind(Kind::Citizen)?
        .iter()
        .map(|p| p.id)
        .take(SAMPLES)
        .collect();
    let submit = timed(|i| {
        let now = BASE_NOW_MS + 1000 * i as u64;
        let v = NewVisit {
            place: VisitPlace::Commune {
                commune: "80021".into(),
                location: Location::Stop,
            },
            person: persons.get(i).copied(),
            at: i64::try_from(now / 1000)?,
        };
        let (id, mut action) = add_visit(&store, now, UNIT, &v)?;
        for outcome in [Outcome::Resolved, Outcome::Waiting] {
            let r = NewRequest {
                appointment: None,
                passage: None,
                visit: Some(id),
                partner: "caf".into(),
                theme: "logement".into(),
                level: Level::Support,
                outcome,
                minutes: Some(15),
            };
            // The form builds every record before the one commit.
            let (_, a) = tournee_core::actions::add_request_in(Scope::Unit(UNIT.into()), now, &r)?;
            action.edits.extend(a.edits);
        }
        store.write_local(now, &action)?;
        Ok(())
    })?;
    push(
        report,
        "field_submit_to_commit_p95",
        submit,
        TARGET_SUBMIT_P95_MS,
        json!({ "records_per_submit": 3 }),
    );
    // Informational: the pending list and a person's history.
    let pending = timed(|_| {
        list_requests(
            &store,
            RequestFilter {
                pending: true,
                ..RequestFilter::default()
            },
        )?;
        Ok(())
    })?;
    push(
        report,
        "field_pending_requests_p95",
        pending,
        TARGET_TODAY_P95_MS,
        json!({}),
    );
    let history = timed(|i| {
        person_history(&store, persons[i % persons.len()])?;
        Ok(())
    })?;
    push(
        report,
        "field_person_history_p95",
        history,
        TARGET_TODAY_P95_MS,
        json!({}),
    );
    drop(store);
    super::field_ui::run(report, &laptop, &queries, &persons)?;
    if keep {
        let kept = dir.keep();
        eprintln!("bench: field-year store kept in {}", kept.display());
    }
    Ok(())
}
