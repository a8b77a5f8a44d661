//! Benchmark harness for the performance targets of the design brief (§6).
//!
//! `bench --workload <name> [--seed N] [--n N]` runs one workload on real SQLite files in a
//! temporary directory (under `$TMPDIR`, so set it to measure another disk), prints one JSON line
//! per result on stdout and a short table on stderr. Every workload is deterministic for a seed:
//! ids, values and the injected wall time come from the seeded `tournee_core::rng::SeededRng`; only the
//! measured durations vary between runs.
//!
//! Exit status: 0 when the workload ran (a missed target is reported as `"ok": false`, not as a
//! failure), 1 when it could not run, 2 for an unknown workload or bad arguments.
//!
//! Workloads:
//! - `store`: local write latency (create, edit), bulk apply throughput, bytes per appointment.
//! - `w1`: the brief's W1 — three laptops a week offline against a real in-process server over
//!   loopback QUIC; bytes each way against the deflated net delta, round trips, server CPU per
//!   session (module `bench/w1.rs`).
//! - `w1-compare`: W1 as above, then the same action stream replayed into automerge and yrs
//!   and synced with their own protocols over quinn on loopback (module `bench/compare.rs`,
//!   issue 6).
//! - `w1-rural`: W1's reconnections again, each many times from fresh copies of the files,
//!   over the fault relay emulating a rural link (200 ms RTT, 1 % loss, 1 Mbit/s up): p50/p99
//!   wall time (module `bench/rural.rs`, issue 6).
//! - `w3`: a laptop a month offline while four other units and its own unit's scheduler write
//!   on the server; its reconnection through ours, automerge and yrs (one document per unit)
//!   side by side, with the server's changelog and our sync metadata (module `bench/w3.rs`).
//! - `w5`: five devices editing the same twenty appointments concurrently for 100 rounds of
//!   offline edits and reconnections, through ours, automerge and yrs: totals, conflicts left,
//!   convergence (module `bench/w5.rs`).
//! - `coverage`: a year of a département on the server store, then the coverage report for the
//!   whole year by each grouping (module `bench/coverage.rs`).
//! - `w2`: the reconnect storm — 2,000 devices with a W1 week each reconnecting within one
//!   second to a server in its own process, driven from two client processes: time until all
//!   are synced, p50/p99 per device, failures, server CPU and peak RSS (module `bench/storm.rs`).
//! - `field-year`: a year of one unit's field work in a laptop's store (5,000 persons, 12,000
//!   appointments and walk-ins, 20,000 requests): today's sheet, person search, a walk-in
//!   submitted, pending requests, a person's history (module `bench/field.rs`, issue 13).
//! - `all`: every workload above (`w1` through `w1-compare`), in the order store, w1-compare,
//!   w1-rural, w2, w3, w5, coverage, field-year.
//!
//! `--quick` runs every workload at a reduced size (for use inside the test suite); `--n` sets
//! the size of one workload explicitly.

#[path = "bench/compare.rs"]
mod compare;
#[path = "bench/console.rs"]
mod console;
#[path = "bench/coverage.rs"]
mod coverage;
#[path = "bench/field.rs"]
mod field;
#[path = "bench/field_ui.rs"]
mod field_ui;
#[path = "bench/fleet.rs"]
mod fleet;
#[path = "bench/rural.rs"]
mod rural;
#[path = "bench/storm.rs"]
mod storm;
#[path = "bench/w1.rs"]
mod w1;
#[path = "bench/w3.rs"]
mod w3;
#[path = "bench/w5.rs"]
mod w5;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Parser;
use serde_json::json;
use tournee_core::clock::WallMs;
use tournee_core::limits::APPLY_BATCH_CHANGES_MAX;
use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::record::Change;
use tournee_core::rng::SeededRng;
use tournee_core::store::{Identity, LocalAction, RecordEdit, Store};
use tournee_store::Durability;
use tournee_store::SqliteStore;
use uuid::Uuid;

/// Workload names, for the usage error.
const WORKLOADS: &[&str] = &[
    "store",
    "w1",
    "w1-compare",
    "w1-rural",
    "w2",
    "w3",
    "w5",
    "coverage",
    "field-year",
    "all",
];
/// What `all` runs (`w1-compare` runs W1 itself and prints its lines).
const ALL: &[&str] = &[
    "store",
    "w1-compare",
    "w1-rural",
    "w2",
    "w3",
    "w5",
    "coverage",
    "field-year",
];

/// The injected "now" of every workload: a fixed instant (2026-09-21), plus the action index.
const BASE_NOW_MS: WallMs = 1_790_000_000_000;

/// The unit and territory every benchmark device belongs to.
const UNIT: &str = "bus-80-1";
const TERRITORY: &str = "80";

/// §6: local write (one user action, durable), p99.
const TARGET_LOCAL_WRITE_P99_US: f64 = 2_000.0;
/// §6: bulk apply of incoming changes.
const TARGET_APPLY_CHANGES_PER_S: f64 = 100_000.0;
/// §6: storage per appointment, including indexes.
const TARGET_BYTES_PER_APPOINTMENT: f64 = 300.0;

/// Default size of the `store` workload: appointments in the bulk phase.
const STORE_DEFAULT_N: usize = 20_000;
/// Size of the `store` workload with `--quick`.
const STORE_QUICK_N: usize = 1_000;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Tournée benchmarks: one JSON line per result on stdout, a table on stderr"
)]
struct Args {
    /// Workload to run: store, w1, coverage, or all (the three in turn).
    #[arg(long)]
    workload: String,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Workload size (one workload only). For `store`: appointments in the bulk phase (default
    /// 20000); the local write phase measures n/10 creates and n/10 edits after n/100 warm-up
    /// actions of each. For `w1`: new appointments per laptop per day (default 50; the server
    /// starts with 40·n appointments and each laptop edits n/5 of them a day). For `coverage`:
    /// appointments in the year (default 100000; 1.5·n requests). For `w3`: days the laptop stays
    /// offline (default 30; 50 new appointments a day, 5 with `--quick`). For `w5`: rounds (default 100). For `w2`: devices (default 2000;
    /// 50 new appointments a day each, 5 with `--quick`).
    #[arg(long)]
    n: Option<usize>,
    /// Reduced sizes (store 1000, w1 5 a day, w2 12 devices, w3 3 days, w5 10 rounds, coverage 5000
    /// appointments): seconds instead of minutes, for smoke runs inside the test suite. Targets
    /// are still checked, at that size.
    #[arg(long)]
    quick: bool,
    /// Keep the SQLite files of the run and print where they are, for inspection.
    #[arg(long)]
    keep: bool,
    /// Internal to `w2`: this process is the storm's `server` or a `client`.
    #[arg(long, hide = true)]
    storm_role: Option<String>,
    /// Internal to `w2`: the storm's directory.
    #[arg(long, hide = true)]
    storm_dir: Option<std::path::PathBuf>,
    /// Internal to `w2`: which client part this process drives.
    #[arg(long, hide = true)]
    storm_part: Option<usize>,
    /// Internal to `w2`: the server's address.
    #[arg(long, hide = true)]
    storm_addr: Option<String>,
    /// Internal to `w2`: devices in the whole storm.
    #[arg(long, hide = true)]
    storm_devices: Option<usize>,
}

/// `--storm-role`: run as one of the storm's processes.
fn storm_role(args: &Args, role: &str) -> Result<()> {
    let dir = args.storm_dir.as_deref().context("--storm-dir")?;
    match role {
        "server" => storm::serve_role(dir),
        "client" => storm::client_role(
            dir,
            args.storm_part.context("--storm-part")?,
            args.storm_addr.as_deref().context("--storm-addr")?,
            args.storm_devices.context("--storm-devices")?,
        ),
        other => anyhow::bail!("unknown storm role {other}"),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(role) = args.storm_role.as_deref() {
        return match storm_role(&args, role) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench: storm {role}: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let names: Vec<&str> = match args.workload.as_str() {
        "all" => ALL.to_vec(),
        one if WORKLOADS.contains(&one) => vec![one],
        other => {
            eprintln!(
                "bench: unknown workload '{other}'; known workloads: {}",
                WORKLOADS.join(", ")
            );
            return ExitCode::from(2);
        }
    };
    if names.len() > 1 && args.n.is_some() {
        eprintln!("bench: --n sets the size of one workload; use --quick (or no size) with 'all'");
        return ExitCode::from(2);
    }
    let mut report = Report::default();
    let mut failed = Vec::new();
    for name in names {
        let size = |default: usize, quick: usize| {
            args.n.unwrap_or(if args.quick { quick } else { default })
        };
        // New appointments per device per day for the workloads built on W1's day.
        let per_day = if args.quick {
            w1::QUICK_PER_DAY
        } else {
            w1::DEFAULT_PER_DAY
        };
        let run = match name {
            "store" => store_workload(
                &mut report,
                args.seed,
                size(STORE_DEFAULT_N, STORE_QUICK_N),
                args.keep,
            ),
            "w1" => w1::run(
                &mut report,
                args.seed,
                size(w1::DEFAULT_PER_DAY, w1::QUICK_PER_DAY),
                args.keep,
            ),
            "w1-rural" => rural::run(
                &mut report,
                args.seed,
                size(w1::DEFAULT_PER_DAY, w1::QUICK_PER_DAY),
                if args.quick {
                    rural::QUICK_TRIALS
                } else {
                    rural::TRIALS
                },
                args.keep,
            ),
            "w1-compare" => compare::run(
                &mut report,
                args.seed,
                size(w1::DEFAULT_PER_DAY, w1::QUICK_PER_DAY),
                args.keep,
            ),
            "w3" => w3::run_w3(
                &mut report,
                args.seed,
                size(w3::DEFAULT_DAYS, w3::QUICK_DAYS),
                per_day,
                args.keep,
            ),
            "w2" => storm::run(
                &mut report,
                args.seed,
                size(storm::DEFAULT_DEVICES, storm::QUICK_DEVICES),
                per_day,
                args.keep,
            ),
            "w5" => w5::run_w5(
                &mut report,
                args.seed,
                size(w5::DEFAULT_ROUNDS, w5::QUICK_ROUNDS),
                args.keep,
            ),
            "field-year" => field::run(
                &mut report,
                args.seed,
                size(field::DEFAULT_PERSONS, field::QUICK_PERSONS),
                args.keep,
            ),
            _ => coverage::run(
                &mut report,
                args.seed,
                size(coverage::DEFAULT_APPOINTMENTS, coverage::QUICK_APPOINTMENTS),
                args.keep,
            ),
        };
        if let Err(e) = run {
            eprintln!("bench: workload '{name}' failed: {e:#}");
            failed.push(name);
        }
    }
    report.print_table();
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

// ---------------------------------------------------------------------------------------------
// Results

/// One result: its JSON line (printed as soon as it is known) and its table row.
#[derive(Debug)]
struct Row {
    bench: String,
    measured: String,
    target: String,
    ok: bool,
    informational: bool,
}

/// The results of a run, in order.
#[derive(Debug, Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Print the JSON line of a result and keep its table row. `json` must hold `bench` and `ok`.
    fn push(&mut self, json: serde_json::Value, measured: String, target: String) {
        println!("{json}");
        self.rows.push(Row {
            bench: json["bench"].as_str().unwrap_or("?").to_owned(),
            measured,
            target,
            ok: json["ok"].as_bool().unwrap_or(false),
            informational: json["informational"].as_bool().unwrap_or(false),
        });
    }

    fn print_table(&self) {
        if self.rows.is_empty() {
            return;
        }
        let w = self.rows.iter().map(|r| r.bench.len()).max().unwrap_or(0);
        let m = self
            .rows
            .iter()
            .map(|r| r.measured.len())
            .max()
            .unwrap_or(0);
        let t = self.rows.iter().map(|r| r.target.len()).max().unwrap_or(0);
        eprintln!();
        eprintln!(
            "{:w$}  {:m$}  {:t$}  verdict",
            "bench", "measured", "target"
        );
        for r in &self.rows {
            let verdict = match (r.ok, r.informational) {
                (true, _) => "ok",
                (false, false) => "MISSED",
                (false, true) => "over (informational)",
            };
            eprintln!(
                "{:w$}  {:m$}  {:t$}  {verdict}",
                r.bench, r.measured, r.target
            );
        }
    }
}

/// Microseconds with one decimal, for the JSON lines.
fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000_000.0).round() / 10.0
}

/// Milliseconds with one decimal, for the JSON lines.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// CPU time consumed so far by the calling thread (`CLOCK_THREAD_CPUTIME_ID`: user + system,
/// nanosecond resolution; time blocked in `fsync` or waiting for a lock is not CPU time).
fn thread_cpu() -> Result<Duration> {
    use nix::time::{clock_gettime, ClockId};
    let t =
        clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).context("reading the thread CPU clock")?;
    Ok(Duration::from(t))
}

/// CPU time consumed so far by another thread of this process, by its Linux thread id (the
/// kernel's per-thread CPU clock, `MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)`).
fn other_thread_cpu(tid: u32) -> Result<Duration> {
    use nix::time::{clock_gettime, ClockId};
    // include/linux/posix-timers.h: ((~tid) << 3) | CPUCLOCK_PERTHREAD_MASK (4) | CPUCLOCK_SCHED (2).
    let raw = ((!tid) << 3) | 6;
    let t = clock_gettime(ClockId::from_raw(raw as i32))
        .with_context(|| format!("reading the CPU clock of thread {tid}"))?;
    Ok(Duration::from(t))
}

/// The Linux thread id of this process's thread named `name`, if there is exactly one.
fn thread_named(name: &str) -> Option<u32> {
    let mut found = None;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            if found.is_some() {
                return None;
            }
            found = entry.file_name().to_str().and_then(|s| s.parse().ok());
        }
    }
    found
}

/// Kilobytes (1000 bytes) with one decimal, for tables.
fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

/// The 1/5/15-minute load averages, where the OS shows them: timings on a busy machine mislead.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

// ---------------------------------------------------------------------------------------------
// The appointment workload

/// Short reminders as a unit's agent would type them (about 30 bytes once numbered).
const NOTES: &[&str] = &[
    "rappeler avant le passage",
    "apporter avis d'imposition",
    "dossier CAF incomplet",
    "besoin d'un interprete",
    "accompagner sur France Travail",
    "renouvellement carte grise",
    "aide pour ANTS permis",
    "simulation retraite CNAV",
];

/// Outcomes an edit may record (never back to `unknown`).
const OUTCOMES: &[&str] = &["seen", "excused", "revoked", "noshow"];

fn identity(device: u32) -> Identity {
    Identity {
        device,
        unit: UNIT.to_owned(),
        territory: TERRITORY.to_owned(),
    }
}

/// A new appointment for the stop's commune, some time in the next six weeks (15-minute slots).
fn create_appointment(rng: &mut SeededRng, now: WallMs) -> (Uuid, LocalAction) {
    let id = rng.uuid_v7(now);
    let note = format!("{} #{:04}", rng.pick(NOTES), rng.below(10_000));
    let edit = RecordEdit {
        id,
        kind: Kind::Appointment,
        scope: Scope::Unit(UNIT.to_owned()),
        create: true,
        sets: vec![
            (Field::Commune, Value::Text("80021".to_owned())),
            (Field::Start, Value::Int(start_after(rng, now))),
            (Field::Duration, Value::Int(30)),
            (Field::Location, Value::Text("arret".to_owned())),
            (Field::Status, Value::Text("unknown".to_owned())),
            (Field::Note, Value::Text(note)),
        ],
    };
    (id, LocalAction { edits: vec![edit] })
}

/// A start time (Unix seconds) between one hour and six weeks after `now`, on a 15-minute slot.
fn start_after(rng: &mut SeededRng, now: WallMs) -> i64 {
    let now_s = i64::try_from(now / 1000).unwrap_or(i64::MAX);
    let offset = 3_600 + rng.below(6 * 7 * 86_400) as i64;
    (now_s + offset) / 900 * 900
}

/// An edit of an existing appointment: record an outcome, or move it.
fn edit_appointment(rng: &mut SeededRng, now: WallMs, id: Uuid) -> LocalAction {
    let set = if rng.below(2) == 0 {
        (Field::Status, Value::Text((*rng.pick(OUTCOMES)).to_owned()))
    } else {
        (Field::Start, Value::Int(start_after(rng, now)))
    };
    LocalAction {
        edits: vec![RecordEdit {
            id,
            kind: Kind::Appointment,
            scope: Scope::Unit(UNIT.to_owned()),
            create: false,
            sets: vec![set],
        }],
    }
}

// ---------------------------------------------------------------------------------------------
// Workload `store`

fn store_workload(report: &mut Report, seed: u64, n: usize, keep: bool) -> Result<()> {
    ensure!(n >= 100, "--n must be at least 100 for the store workload");
    let dir = tempfile::tempdir().context("creating the temporary directory")?;
    eprintln!(
        "store: seed {seed}, n {n}, files in {} (WAL, synchronous=FULL unless noted); load average {}",
        dir.path().display(),
        load_average()
    );
    fsync_baseline(report, dir.path(), n / 10)?;
    local_write(report, dir.path(), seed, n / 10, n / 100, Durability::Full)?;
    local_write(
        report,
        dir.path(),
        seed,
        n / 10,
        n / 100,
        Durability::Normal,
    )?;
    bulk(report, dir.path(), seed, n)?;
    if keep {
        eprintln!("store: files kept in {}", dir.keep().display());
    }
    Ok(())
}

/// `store.fsync_baseline`: the disk's own latency for appending 4 KiB and `fsync`ing it, the
/// floor under any durable local write (a WAL commit is at least one such append and sync).
fn fsync_baseline(report: &mut Report, dir: &Path, measured: usize) -> Result<()> {
    use std::io::Write;
    let path = dir.join("fsync.probe");
    let mut file = std::fs::File::create(&path).context("creating the fsync probe")?;
    let page = [0x5Au8; 4096];
    let mut samples = Vec::with_capacity(measured);
    for i in 0..measured + measured / 10 {
        file.write_all(&page)?;
        let t = Instant::now();
        file.sync_all()?;
        if i >= measured / 10 {
            samples.push(t.elapsed());
        }
    }
    drop(file);
    std::fs::remove_file(&path)?;
    latency_row(report, "store.fsync_baseline", samples, None, true);
    Ok(())
}

/// `store.local_write.{create,edit}`: latency of one durable user action. With
/// `Durability::Normal` the same actions are measured without the commit's `fsync`
/// (`store.local_write.{create,edit}.no_fsync`, informational): the store's own cost, which
/// tells it apart from the disk's.
fn local_write(
    report: &mut Report,
    dir: &Path,
    seed: u64,
    measured: usize,
    warmup: usize,
    durability: Durability,
) -> Result<()> {
    let (file, suffix) = match durability {
        Durability::Full => ("local.db", ""),
        Durability::Normal => ("local-nosync.db", ".no_fsync"),
    };
    let mut store = SqliteStore::open_with(&dir.join(file), durability)
        .with_context(|| format!("opening {file}"))?;
    store.set_identity(&identity(1))?;
    let mut rng = SeededRng::new(seed);
    let mut tick: WallMs = 0;
    let mut ids = Vec::with_capacity(warmup + measured);

    let mut creates = Vec::with_capacity(measured);
    for i in 0..warmup + measured {
        let now = BASE_NOW_MS + tick;
        tick += 1;
        let (id, action) = create_appointment(&mut rng, now);
        let t = Instant::now();
        store.write_local(now, &action)?;
        let took = t.elapsed();
        if i >= warmup {
            creates.push(took);
        }
        ids.push(id);
    }

    let mut edits = Vec::with_capacity(measured);
    for i in 0..warmup + measured {
        let now = BASE_NOW_MS + tick;
        tick += 1;
        let id = *rng.pick(&ids);
        let action = edit_appointment(&mut rng, now, id);
        let t = Instant::now();
        store.write_local(now, &action)?;
        let took = t.elapsed();
        if i >= warmup {
            edits.push(took);
        }
    }

    let informational = durability != Durability::Full;
    for (action, samples, changes) in [("create", creates, 6), ("edit", edits, 1)] {
        let bench = format!("store.local_write.{action}{suffix}");
        latency_row(report, &bench, samples, Some(changes), informational);
    }
    Ok(())
}

/// A latency result against the local-write target. `changes` is the field changes per action
/// (`None` for the fsync calibration); an informational row explains a result, it is not one.
fn latency_row(
    report: &mut Report,
    bench: &str,
    mut samples: Vec<Duration>,
    changes: Option<usize>,
    informational: bool,
) {
    samples.sort_unstable();
    let p50 = percentile(&samples, 50.0);
    let p99 = percentile(&samples, 99.0);
    let max = samples.last().copied().unwrap_or_default();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len().max(1)).unwrap_or(1);
    let ok = us(p99) <= TARGET_LOCAL_WRITE_P99_US;
    let mut line = json!({
        "bench": bench,
        "p50_us": us(p50),
        "p99_us": us(p99),
        "max_us": us(max),
        "mean_us": us(mean),
        "n": samples.len(),
        "target_p99_us": TARGET_LOCAL_WRITE_P99_US,
        "ok": ok,
    });
    if let Some(c) = changes {
        line["changes_per_action"] = json!(c);
    }
    if informational {
        line["informational"] = json!(true);
    }
    report.push(
        line,
        format!(
            "p50 {:.0} us, p99 {:.0} us, max {:.0} us (n={})",
            us(p50),
            us(p99),
            us(max),
            samples.len()
        ),
        format!("p99 <= {TARGET_LOCAL_WRITE_P99_US:.0} us"),
    );
}

/// `store.bulk_apply` and `store.bytes_per_appointment.*`.
fn bulk(report: &mut Report, dir: &Path, seed: u64, appointments: usize) -> Result<()> {
    // The source: one laptop that created `appointments` appointments and edited as many times.
    // Its durability is not measured here, so it commits without fsync to save minutes.
    let src_path = dir.join("source.db");
    let mut source =
        SqliteStore::open_with(&src_path, Durability::Normal).context("opening the source")?;
    source.set_identity(&identity(1))?;
    let mut rng = SeededRng::new(seed ^ 0xB01C_0000_0000_0001);
    let mut ids = Vec::with_capacity(appointments);
    let t = Instant::now();
    for i in 0..appointments {
        let now = BASE_NOW_MS + 2 * i as WallMs;
        let (id, action) = create_appointment(&mut rng, now);
        source.write_local(now, &action)?;
        ids.push(id);
        let target = *rng.pick(&ids);
        source.write_local(now + 1, &edit_appointment(&mut rng, now + 1, target))?;
    }
    let generate = t.elapsed();

    let mut batches: Vec<(u64, Vec<Change>)> = Vec::new();
    let mut last_seq = 0;
    loop {
        let page = source.outbox_after(last_seq, APPLY_BATCH_CHANGES_MAX)?;
        let Some(&(seq, _)) = page.last() else {
            break;
        };
        last_seq = seq;
        batches.push((seq, page.into_iter().map(|(_, c)| c).collect()));
    }
    let total_changes: usize = batches.iter().map(|(_, b)| b.len()).sum();
    ensure!(
        total_changes == appointments * 7,
        "source outbox holds {total_changes} changes, expected {}",
        appointments * 7
    );
    eprintln!(
        "store: source of {appointments} appointments, {total_changes} changes generated in {:.1} s",
        generate.as_secs_f64()
    );

    // The receiver: a second device applying the whole outbox, as a sync would.
    let rcv_path = dir.join("receiver.db");
    let mut receiver = SqliteStore::open(&rcv_path).context("opening the receiver")?;
    receiver.set_identity(&identity(2))?;
    let mut per_batch = Vec::with_capacity(batches.len());
    let mut applied = 0;
    let t = Instant::now();
    for (seq, batch) in &batches {
        let b = Instant::now();
        let summary = receiver.apply_remote(batch, Some(*seq))?;
        per_batch.push(b.elapsed());
        applied += summary.applied;
    }
    let total = t.elapsed();
    ensure!(
        applied == total_changes,
        "receiver applied {applied} of {total_changes} changes"
    );
    let records = receiver.stats()?.records;
    ensure!(
        records == appointments as u64,
        "receiver holds {records} records, expected {appointments}"
    );
    per_batch.sort_unstable();
    let rate = total_changes as f64 / total.as_secs_f64();
    report.push(
        json!({
            "bench": "store.bulk_apply",
            "changes_per_s": rate.round(),
            "total_ms": ms(total),
            "n": total_changes,
            "appointments": appointments,
            "batches": batches.len(),
            "batch_changes_max": APPLY_BATCH_CHANGES_MAX,
            "batch_p50_ms": ms(percentile(&per_batch, 50.0)),
            "batch_max_ms": ms(per_batch.last().copied().unwrap_or_default()),
            "target_changes_per_s": TARGET_APPLY_CHANGES_PER_S,
            "ok": rate >= TARGET_APPLY_CHANGES_PER_S,
        }),
        format!(
            "{:.0} changes/s ({} changes in {:.0} ms)",
            rate,
            total_changes,
            total.as_secs_f64() * 1000.0
        ),
        format!(">= {TARGET_APPLY_CHANGES_PER_S:.0} changes/s"),
    );

    // Storage: receiver (no outbox), source with its outbox, source after the server's ack.
    // The empty store's size (one page per table and index) is reported beside each, so the
    // per-appointment cost can be told from the fixed cost at small `n`.
    let empty = {
        let mut store = SqliteStore::open(&dir.join("empty.db")).context("opening empty.db")?;
        store.set_identity(&identity(3))?;
        store.vacuum()?;
        store.bytes_used()?
    };
    let sizes = Sizes {
        appointments,
        empty,
    };
    receiver.vacuum()?;
    bytes_row(
        report,
        "receiver",
        "second device after applying everything (no outbox)",
        receiver.bytes_used()?,
        sizes,
        false,
    );
    source.vacuum()?;
    bytes_row(
        report,
        "source_with_outbox",
        "authoring laptop before its outbox is acknowledged",
        source.bytes_used()?,
        sizes,
        true,
    );
    source.prune_acked(last_seq)?;
    source.vacuum()?;
    bytes_row(
        report,
        "source_pruned",
        "authoring laptop after prune_acked(last seq)",
        source.bytes_used()?,
        sizes,
        false,
    );
    Ok(())
}

/// What a store size is divided by.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    appointments: usize,
    /// Bytes of an initialised store holding no record.
    empty: u64,
}

fn bytes_row(
    report: &mut Report,
    which: &str,
    what: &str,
    bytes: u64,
    sizes: Sizes,
    informational: bool,
) {
    let n = sizes.appointments as f64;
    let per = bytes as f64 / n;
    let marginal = bytes.saturating_sub(sizes.empty) as f64 / n;
    let mut line = json!({
        "bench": format!("store.bytes_per_appointment.{which}"),
        "what": what,
        "bytes_per_appointment": (per * 10.0).round() / 10.0,
        "marginal_bytes_per_appointment": (marginal * 10.0).round() / 10.0,
        "bytes_used": bytes,
        "empty_store_bytes": sizes.empty,
        "appointments": sizes.appointments,
        "target_bytes_per_appointment": TARGET_BYTES_PER_APPOINTMENT,
        "ok": per <= TARGET_BYTES_PER_APPOINTMENT,
    });
    if informational {
        // The target is about the store at rest; an unacknowledged outbox is transient.
        line["informational"] = json!(true);
    }
    report.push(
        line,
        format!("{per:.1} B/appointment ({bytes} B)"),
        format!("<= {TARGET_BYTES_PER_APPOINTMENT:.0} B"),
    );
}
