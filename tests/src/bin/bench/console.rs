//! The console's measures on the `coverage` workload's year of a département: the supervisor's
//! coverage page (table, map and charts) and the map alone, asked over real HTTP on loopback
//! from the console served in process; the map of every département drawn with every commune
//! reached (the largest text) and gzipped; the scheduler's *Postes* page for a fleet of
//! `FLEET_DEVICES` laptops with their last contacts.
//!
//! The times are the client's (request sent to last byte read) on loopback: an upper bound of
//! the server's time. Nothing here is a test: a missed target prints `"ok": false`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use chrono::NaiveDate;
use serde_json::json;
use tournee_core::clock::ManualClock;
use tournee_core::refdata::RefData;
use tournee_proto::session::PeerReport;
use tournee_server::accounts::Role;
use tournee_server::config::DataDir;
use tournee_server::console::{self, ConsoleState};
use tournee_server::map::{self, Place, Reach};
use tournee_server::registry::{Registry, Unit};

use super::{ms, percentile, Report, BASE_NOW_MS, TERRITORY};

/// Timed requests of each page after the first.
const RUNS: usize = 20;
/// The targets.
const TARGET_COVERAGE_P95_MS: f64 = 500.0;
const TARGET_MAP_GZIP_BYTES: usize = 300 * 1024;
const TARGET_FLEET_P95_MS: f64 = 200.0;
/// Laptops of the fleet view (a département's Monday morning).
pub const FLEET_DEVICES: usize = 2_000;
/// Units they belong to.
const FLEET_UNITS: usize = 40;

/// Time `path` `RUNS + 1` times; the first is cold. Each answer must be a 200 holding `must`.
fn time_get(
    addr: &str,
    path: &str,
    cookie: &str,
    must: &str,
) -> Result<(Duration, Vec<Duration>, usize)> {
    let mut times = Vec::with_capacity(RUNS + 1);
    let mut bytes = 0;
    for _ in 0..=RUNS {
        let t = Instant::now();
        let (head, body) = tournee_tests::http_get_bytes(addr, path, Some(cookie));
        times.push(t.elapsed());
        ensure!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        ensure!(
            String::from_utf8_lossy(&body).contains(must),
            "{path}: the answer lacks {must:?}"
        );
        bytes = body.len();
    }
    let cold = times.remove(0);
    times.sort_unstable();
    Ok((cold, times, bytes))
}

fn gzipped(bytes: &[u8]) -> Result<usize> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(bytes)?;
    Ok(z.finish()?.len())
}

/// A session of a new account of `role` over the bench territory, as its cookie.
fn session(reg: &Registry, name: &str, role: Role) -> Result<String> {
    let u = reg.add_user(name, role, &[TERRITORY.to_owned()], BASE_NOW_MS)?;
    let token = reg.open_session(u.id, BASE_NOW_MS)?;
    Ok(format!("{}={token}", console::COOKIE))
}

/// `FLEET_DEVICES` laptops over `FLEET_UNITS` units of the territory, each with a contact of
/// the last fortnight.
fn fleet(reg: &Registry) -> Result<()> {
    for u in 0..FLEET_UNITS {
        reg.add_unit(&Unit {
            id: format!("flotte-{u:02}"),
            name: format!("Unité {u:02}"),
            territory: TERRITORY.into(),
            kind: "bus".into(),
        })?;
    }
    for d in 0..FLEET_DEVICES {
        let actor = reg.add_device(
            &format!("pc-{d:04}"),
            &format!("flotte-{:02}", d % FLEET_UNITS),
            &format!("{d:064x}"),
            0,
        )?;
        let seen = i64::try_from(BASE_NOW_MS)? - i64::try_from(d % 14)? * 86_400_000;
        let report = PeerReport {
            program: "0.1.0".into(),
            clock_offset_ms: Some(i64::try_from(d % 5)? * 1000),
            waiting: (d % 7) as u64,
        };
        reg.note_contact(actor, seen, &report, (d % 3) as u64, d % 11 != 0)?;
    }
    Ok(())
}

/// The supervisor's page, the map alone, every département's map, the fleet view.
pub(crate) fn run(
    report: &mut Report,
    store_dir: &Path,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<()> {
    let data = DataDir::new(store_dir.to_path_buf());
    let reg = Registry::open(&data.registry())?;
    let supervisor = session(&reg, "bench-sup", Role::Supervisor)?;
    let scheduler = session(&reg, "bench-planif", Role::Scheduler)?;
    let t = Instant::now();
    fleet(&reg)?;
    let fleet_setup = t.elapsed();
    drop(reg);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?.to_string();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let state = ConsoleState::new(data, Arc::new(ManualClock::new(BASE_NOW_MS)));
    let served = rt.spawn(console::serve(listener, state, stopped));

    let period = format!("territoire={TERRITORY}&du={from}&au={to}");
    let (cold, warm, bytes) = time_get(
        &addr,
        &format!("/couverture?{period}"),
        &supervisor,
        "graphique-passages",
    )?;
    let p95 = percentile(&warm, 95.0);
    report.push(
        json!({
            "bench": "console.coverage_page",
            "what": "GET /couverture for the year (table by commune, map, four charts), loopback HTTP, p95 of the runs after the first",
            "p50_ms": ms(percentile(&warm, 50.0)),
            "p95_ms": ms(p95),
            "cold_ms": ms(cold),
            "bytes": bytes,
            "runs": warm.len(),
            "target_ms": TARGET_COVERAGE_P95_MS,
            "ok": ms(p95) <= TARGET_COVERAGE_P95_MS,
        }),
        format!("p95 {:.0} ms, cold {:.0} ms, {} KB", ms(p95), ms(cold), bytes / 1024),
        format!("≤ {TARGET_COVERAGE_P95_MS:.0} ms"),
    );
    let (_, warm, svg_bytes) = time_get(
        &addr,
        &format!("/couverture/carte.svg?{period}"),
        &supervisor,
        "<svg",
    )?;
    let (_, svg) = tournee_tests::http_get_bytes(
        &addr,
        &format!("/couverture/carte.svg?{period}"),
        Some(&supervisor),
    );
    report.push(
        json!({
            "bench": "console.map",
            "what": "GET /couverture/carte.svg of the bench territory: time and size, raw and gzipped",
            "p95_ms": ms(percentile(&warm, 95.0)),
            "bytes": svg_bytes,
            "gzip_bytes": gzipped(&svg)?,
            "informational": true,
            "ok": true,
        }),
        format!("p95 {:.0} ms, {} KB, {} KB gzipped", ms(percentile(&warm, 95.0)), svg_bytes / 1024, gzipped(&svg)? / 1024),
        "(for the largest, below)".into(),
    );

    // Every département's map with every commune reached (the longest figures): the largest.
    let refdata = RefData::get();
    let mut largest = (String::new(), 0usize, 0usize, 0usize);
    for d in refdata.departements() {
        let places: HashMap<String, Place> = refdata
            .communes_of(&d.code)
            .into_iter()
            .map(|c| {
                (
                    c.code_insee.clone(),
                    Place {
                        reach: Reach::Reached,
                        summary: "52 passage(s) tenu(s) sur 52 prévu(s), 1 204 personne(s) reçue(s), 1 890 demande(s)".into(),
                        href: format!("/couverture?territoire={}&du={from}&au={to}&par=commune#c-{}", d.code, c.code_insee),
                    },
                )
            })
            .collect();
        let drawn = map::draw(&d.code, &places).context("drawing a map")?;
        let gz = gzipped(drawn.svg.as_bytes())?;
        if gz > largest.2 {
            largest = (d.code.clone(), drawn.svg.len(), gz, places.len());
        }
    }
    report.push(
        json!({
            "bench": "console.map_largest",
            "what": "the largest gzipped coverage map of all départements, every commune reached",
            "departement": largest.0,
            "communes": largest.3,
            "bytes": largest.1,
            "gzip_bytes": largest.2,
            "target_gzip_bytes": TARGET_MAP_GZIP_BYTES,
            "ok": largest.2 <= TARGET_MAP_GZIP_BYTES,
        }),
        format!(
            "{} ({} communes): {} KB, {} KB gzipped",
            largest.0,
            largest.3,
            largest.1 / 1024,
            largest.2 / 1024
        ),
        format!("≤ {} KB gzipped", TARGET_MAP_GZIP_BYTES / 1024),
    );

    let (cold, warm, bytes) = time_get(
        &addr,
        &format!("/postes?territoire={TERRITORY}"),
        &scheduler,
        "pc-1999",
    )?;
    let p95 = percentile(&warm, 95.0);
    report.push(
        json!({
            "bench": "console.fleet_page",
            "what": "GET /postes for a territory of 2,000 laptops in 40 units, each with a last contact, loopback HTTP",
            "devices": FLEET_DEVICES,
            "setup_s": (fleet_setup.as_secs_f64() * 10.0).round() / 10.0,
            "p50_ms": ms(percentile(&warm, 50.0)),
            "p95_ms": ms(p95),
            "cold_ms": ms(cold),
            "bytes": bytes,
            "runs": warm.len(),
            "target_ms": TARGET_FLEET_P95_MS,
            "ok": ms(p95) <= TARGET_FLEET_P95_MS,
        }),
        format!("p95 {:.0} ms, cold {:.0} ms, {} KB", ms(p95), ms(cold), bytes / 1024),
        format!("≤ {TARGET_FLEET_P95_MS:.0} ms"),
    );
    let _ = stop.send(true);
    rt.block_on(served)??;
    Ok(())
}
