//! Workload `w5` (issue 6), a hot record: five devices of one unit edit the same twenty
//! appointments concurrently while offline, for 100 rounds. In each round every device makes
//! three edits (start time 30 %, status 30 %, note 20 %, duration 20 %) to random ones of the
//! twenty, then the devices reconnect one after another. After the last round every device
//! syncs once more and every replica must be equal. The same action stream then goes through
//! automerge and yrs, and the totals over the rounds are compared.
//!
//! Ours is the product: the server in process, five enrolled devices on real SQLite files, the
//! scheduler's twenty appointments written on the server's store, edits through the product's
//! action builder and `write_local`, every reconnection the agent's own (`connect`, `session`,
//! waiting for the close) over loopback QUIC through a fault-free relay counting UDP bytes. Round
//! trips, messages, sync metadata and server CPU come from sans-IO replays of each reconnection
//! (`w1::replay`): a copy of the device's database taken just before it, against a shadow copy
//! of the server's database that every replayed session advances as the real one advanced the
//! server (the shadow starts as the server's file before it started, and the initial and final
//! syncs are replayed too; at the end its digest is compared with the real server's). Server
//! CPU is one warm replay per session (on copies, after a warm-up session).
//!
//! Concurrent writes to a field are kept by ours as siblings (a multi-value register), which is
//! expected here: the final state is the join, and the records whose fields show more than one
//! distinct value are reported as conflicts (as `conflicts` lists them), with the fields holding
//! more than one sibling. automerge keeps concurrent values too (counted the same way, from
//! `get_all`); yrs keeps one value per key. Their final values may differ from ours, which shows
//! the sibling with the latest hybrid logical clock: that count is printed, not judged.
//!
//! automerge and yrs: one document for the unit, the server's copy and five device copies made
//! after the scheduler's load; each reconnection over quinn on loopback (`QuinnTransport`),
//! the final round in memory. automerge runs twice: with a fresh `sync::State` per connection
//! (as `w1-compare`) and keeping each side's state between a device's connections
//! (`automerge-kept`).
//!
//! Deliberately not measured here: the initial and final syncs (only the rounds are totalled),
//! link faults, clock skew (every device writes in server time), resolving the conflicts.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use tournee_core::clock::{Clock, WallMs};
use tournee_core::export;
use tournee_core::model::{Field, Value};
use tournee_core::rng::SeededRng;
use tournee_core::store::{Identity, Store};
use tournee_store::SqliteStore;
use tournee_tests::relay::{Faults, Relay};
use uuid::Uuid;

use super::compare::{self, Adapter, Direct, Dump, QuinnTransport, Replica};
use super::fleet::{self, Fleet};
use super::w1::{self, Act, Laptop};
use super::{kb, load_average, ms, Report, BASE_NOW_MS, TERRITORY, UNIT};

/// Rounds of concurrent edits.
pub(crate) const DEFAULT_ROUNDS: usize = 100;
/// Rounds with `--quick`.
pub(crate) const QUICK_ROUNDS: usize = 10;

const DEVICES: usize = 5;
/// The hot appointments.
const RECORDS: usize = 20;
/// Edits per device per round.
const EDITS_PER_ROUND: usize = 3;
/// A round lasts an hour: edits in its first 40 minutes, reconnections at 45 minutes.
const ROUND_MS: WallMs = 3_600_000;
const EDIT_WINDOW_MS: u64 = 40 * 60_000;
const SYNC_AFTER_MS: WallMs = 45 * 60_000;
/// Warm replays per reconnection, for the server's CPU.
const WARM_RUNS: usize = 1;
/// §6: sync metadata per session.
const TARGET_METADATA_BYTES: u64 = 64;

/// The instants of the run.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    /// The scheduler writes the twenty appointments.
    load_at: WallMs,
    /// The devices' first sync.
    initial_sync: WallMs,
    /// Round 0 starts.
    first_round: WallMs,
    /// The final syncs.
    final_sync: WallMs,
}

impl Timeline {
    fn new(rounds: usize) -> Self {
        let first_round = BASE_NOW_MS - (rounds as u64 + 1) * ROUND_MS;
        Self {
            load_at: first_round - ROUND_MS,
            initial_sync: first_round - ROUND_MS / 2,
            first_round,
            final_sync: BASE_NOW_MS,
        }
    }

    fn round_start(&self, r: usize) -> WallMs {
        self.first_round + r as u64 * ROUND_MS
    }
}

/// One concurrent edit of a hot appointment.
fn hot_edit(rng: &mut SeededRng, now: WallMs) -> (Field, Value) {
    match rng.below(10) {
        0..=2 => (Field::Start, Value::Int(w1::slot_after(rng, now, 14))),
        3..=5 => (Field::Status, w1::outcome(rng)),
        6..=7 => (Field::Note, w1::note(rng)),
        _ => (Field::Duration, Value::Int(15 * (1 + rng.below(8) as i64))),
    }
}

/// Sums over the counted reconnections.
#[derive(Debug, Clone, Default)]
struct Totals {
    sessions: usize,
    bytes_up: u64,
    bytes_down: u64,
    udp_up: u64,
    udp_down: u64,
    changes_up: usize,
    changes_down: usize,
    messages_up: usize,
    messages_down: usize,
    round_trips: usize,
    round_trips_max: usize,
    metadata_bytes: u64,
    metadata_max: u64,
    /// Server CPU: warm replays (ours) or the protocol's server side (theirs).
    cpu: Duration,
    /// Ours: the cold replays on the shadow server, and the real server's store thread.
    cpu_cold: Duration,
    store_cpu: Option<Duration>,
    /// Ours: reconnections whose replay sent exactly the real session's bytes.
    replay_up_equal: usize,
    replay_down_equal: usize,
    /// Ours: connect to the end of the close, summed.
    wall: Duration,
}

/// What our run measured, and the stream for the other CRDTs.
struct Ours {
    rounds: usize,
    load: Vec<Act>,
    /// `acts[r][k]`: device k + 1's edits in round r.
    acts: Vec<Vec<Vec<Act>>>,
    totals: Totals,
    converged: bool,
    shadow_tracks_server: bool,
    conflicted_records: usize,
    records_with_siblings: usize,
    fields_with_siblings: usize,
    server_bytes: u64,
    dump: Dump,
}

pub(crate) fn run_w5(report: &mut Report, seed: u64, size: usize, keep: bool) -> Result<()> {
    ensure!(size >= 1, "--n (rounds) must be at least 1 for w5");
    let dir = tempfile::tempdir().context("creating the temporary directory")?;
    eprintln!(
        "w5: seed {seed}, {DEVICES} devices x {size} rounds x {EDITS_PER_ROUND} edits of {RECORDS} shared appointments; files in {}; load average {}",
        dir.path().display(),
        load_average()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let ours = runtime.block_on(ours(seed, size, dir.path()));
    runtime.shutdown_timeout(Duration::from_secs(5));
    let result = ours.and_then(|ours| push_rows(report, &ours));
    if keep {
        eprintln!("w5: files kept in {}", dir.keep().display());
    }
    result
}

/// One reconnection of `l`, real and replayed on the shadow server; counted into `totals`
/// when given.
async fn reconnect(
    l: &mut Laptop,
    relay: &Relay,
    fleet: &Fleet,
    scratch: &Path,
    shadow: &Path,
    totals: Option<&mut Totals>,
) -> Result<()> {
    let laptop_db = scratch.join("device-before.sqlite");
    l.snapshot(&laptop_db)?;
    let real = fleet::reconnect(l, relay, &fleet.clock).await?;
    let warm_runs = if totals.is_some() { WARM_RUNS } else { 0 };
    let now = fleet.clock.now_ms();
    let auth = fleet::device_auth(l);
    let names = w1::unit_device_names(&fleet.data.registry(), &auth.unit)?;
    let replayed = fleet::replays(scratch, shadow, &laptop_db, (&auth, &names), now, warm_runs)?;
    let Some(t) = totals else {
        return Ok(());
    };
    let r = &real.report;
    let cold = &replayed.cold;
    t.sessions += 1;
    t.bytes_up += r.bytes_out;
    t.bytes_down += r.bytes_in;
    t.udp_up += real.udp_up;
    t.udp_down += real.udp_down;
    t.changes_up += r.stats.changes_out;
    t.changes_down += r.stats.changes_in;
    t.messages_up += cold.messages_up;
    t.messages_down += cold.messages_down;
    t.round_trips += cold.round_trips;
    t.round_trips_max = t.round_trips_max.max(cold.round_trips);
    t.metadata_bytes += cold.metadata_bytes;
    t.metadata_max = t.metadata_max.max(cold.metadata_bytes);
    t.cpu += replayed.cpu_p50();
    t.cpu_cold += cold.cost.cpu();
    if let Some(c) = real.store_cpu {
        *t.store_cpu.get_or_insert(Duration::ZERO) += c;
    }
    t.replay_up_equal += usize::from(cold.bytes_up == r.bytes_out);
    t.replay_down_equal += usize::from(cold.bytes_down == r.bytes_in);
    t.wall += real.wall;
    Ok(())
}

async fn ours(seed: u64, rounds: usize, root: &Path) -> Result<Ours> {
    let time = Timeline::new(rounds);
    let mut fleet = Fleet::new(root, &[UNIT], time.load_at + 60_000)?;
    let (ids, load) = {
        let mut store = fleet.scheduler_store()?;
        let mut rng = SeededRng::new(seed ^ 0x5E4F_0000_0000_0005);
        w1::load_unit(&mut store, UNIT, &mut rng, RECORDS, time.load_at)?
    };
    let mut devices = Vec::with_capacity(DEVICES);
    for k in 1..=DEVICES {
        devices.push(fleet.enroll(UNIT, &format!("device-{k}"))?);
    }
    let scratch = root.join("replay");
    std::fs::create_dir_all(&scratch)?;
    let shadow = scratch.join("shadow-server.sqlite");
    w1::copy_db(&fleet.data.store(), &shadow)?;
    fleet.start().await?;
    let mut relays = Vec::with_capacity(DEVICES);
    for k in 0..DEVICES {
        relays.push(Relay::start(
            fleet.addr()?,
            Faults::none(),
            seed.wrapping_add(k as u64),
        ));
    }

    fleet.clock.set(time.initial_sync);
    for (l, relay) in devices.iter_mut().zip(&relays) {
        reconnect(l, relay, &fleet, &scratch, &shadow, None).await?;
    }

    let mut rngs: Vec<SeededRng> = (0..DEVICES)
        .map(|k| SeededRng::new(seed ^ 0x4075_0000_0000_0001u64.wrapping_mul(k as u64 + 1)))
        .collect();
    let mut totals = Totals::default();
    let mut acts: Vec<Vec<Vec<Act>>> = Vec::with_capacity(rounds);
    let t = std::time::Instant::now();
    for r in 0..rounds {
        let start = time.round_start(r);
        let mut round = Vec::with_capacity(DEVICES);
        for (l, rng) in devices.iter_mut().zip(&mut rngs) {
            let mut at: Vec<WallMs> = (0..EDITS_PER_ROUND)
                .map(|_| start + rng.below(EDIT_WINDOW_MS))
                .collect();
            at.sort_unstable();
            let mut mine = Vec::with_capacity(EDITS_PER_ROUND);
            for now in at {
                let id: Uuid = *rng.pick(&ids);
                let (field, value) = hot_edit(rng, now);
                let action = w1::edit(&mut l.store, now, id, field, value)?;
                mine.push(Act::of(now, &action));
            }
            round.push(mine);
        }
        acts.push(round);
        fleet.clock.set(start + SYNC_AFTER_MS);
        for (l, relay) in devices.iter_mut().zip(&relays) {
            reconnect(l, relay, &fleet, &scratch, &shadow, Some(&mut totals)).await?;
        }
    }
    eprintln!(
        "w5: {rounds} rounds in {:.1} s ({} reconnections)",
        t.elapsed().as_secs_f64(),
        totals.sessions
    );

    fleet.clock.set(time.final_sync);
    for (l, relay) in devices.iter_mut().zip(&relays) {
        reconnect(l, relay, &fleet, &scratch, &shadow, None).await?;
    }
    drop(relays);

    let scopes = Identity {
        device: 1,
        unit: UNIT.into(),
        territory: TERRITORY.into(),
    }
    .scopes();
    let server_view = fleet.scheduler_store()?;
    let mut converged = true;
    for l in &devices {
        converged &= fleet::same_as_server(l, &server_view)?;
    }
    let shadow_tracks_server = export::digest(&SqliteStore::open(&shadow)?, Some(&scopes))?
        == export::digest(&server_view, Some(&scopes))?;
    let conflicted_records = server_view.conflicted()?.len();
    let mut records_with_siblings = 0;
    let mut fields_with_siblings = 0;
    server_view.for_each_record(Some(&scopes), &mut |record| {
        let n = record
            .fields
            .values()
            .filter(|reg| reg.siblings().len() > 1)
            .count();
        fields_with_siblings += n;
        records_with_siblings += usize::from(n > 0);
        Ok(())
    })?;
    let dump = fleet::dump_of(
        &server_view,
        load.iter().chain(acts.iter().flatten().flatten()),
    )?;
    drop(server_view);
    fleet.stop().await?;
    let server_bytes = {
        let store = tournee_report::facts::open_server_store(&fleet.data.store())?;
        store.vacuum()?;
        store.bytes_used()?
    };
    Ok(Ours {
        rounds,
        load,
        acts,
        totals,
        converged,
        shadow_tracks_server,
        conflicted_records,
        records_with_siblings,
        fields_with_siblings,
        server_bytes,
        dump,
    })
}

/// What another CRDT measured over the rounds.
struct Theirs {
    name: &'static str,
    totals: Totals,
    storage: u64,
    converged: bool,
    conflicted_records: Option<usize>,
    differ_from_ours: usize,
    missing: usize,
}

fn theirs(a: &mut dyn Adapter, o: &Ours, quic: &QuinnTransport) -> Result<Theirs> {
    for act in &o.load {
        a.apply(Replica::server(0), act)?;
    }
    a.start_devices(0, DEVICES)?;
    let mut t = Totals::default();
    for round in &o.acts {
        for (k, mine) in round.iter().enumerate() {
            for act in mine {
                a.apply(Replica::device(0, k + 1), act)?;
            }
        }
        for k in 1..=DEVICES {
            let mut session = quic.session()?;
            let f = a.sync(Replica::device(0, k), &mut session)?;
            let (udp_up, udp_down) = session.finish();
            t.sessions += 1;
            t.bytes_up += f.bytes_up;
            t.bytes_down += f.bytes_down;
            t.udp_up += udp_up;
            t.udp_down += udp_down;
            t.messages_up += f.messages_up;
            t.messages_down += f.messages_down;
            t.round_trips += f.round_trips;
            t.round_trips_max = t.round_trips_max.max(f.round_trips);
            t.cpu += f.server_cpu;
        }
    }
    for k in 1..=DEVICES {
        a.sync(Replica::device(0, k), &mut Direct)?;
    }
    let server = a.dump(Replica::server(0))?;
    let mut converged = true;
    for k in 1..=DEVICES {
        converged &= a.dump(Replica::device(0, k))? == server;
    }
    let (differ_from_ours, missing) = compare::differences(&o.dump, &server);
    Ok(Theirs {
        name: a.name(),
        totals: t,
        storage: a.server_storage(0)?,
        converged,
        conflicted_records: a.conflicted_records(Replica::server(0))?,
        differ_from_ours,
        missing,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn push_rows(report: &mut Report, o: &Ours) -> Result<()> {
    let t = &o.totals;
    let edits = o.rounds * DEVICES * EDITS_PER_ROUND;
    report.push(
        json!({
            "bench": "w5.ours.totals",
            "adapter": "ours",
            "transport": "quinn",
            "what": "sums over the rounds' reconnections (real agent sessions through counting relays; round trips, messages, metadata and CPU from sans-IO replays of each)",
            "rounds": o.rounds,
            "devices": DEVICES,
            "records": RECORDS,
            "edits": edits,
            "sessions": t.sessions,
            "bytes_up": t.bytes_up,
            "bytes_down": t.bytes_down,
            "udp_bytes_up": t.udp_up,
            "udp_bytes_down": t.udp_down,
            "changes_up": t.changes_up,
            "changes_down": t.changes_down,
            "messages_up": t.messages_up,
            "messages_down": t.messages_down,
            "round_trips": t.round_trips,
            "round_trips_max_per_session": t.round_trips_max,
            "server_cpu_ms": ms(t.cpu),
            "server_cpu_note": "sum of one warm sans-IO replay per session on a synchronous=FULL SQLite file",
            "server_cpu_cold_ms": ms(t.cpu_cold),
            "real_sessions_store_thread_cpu_ms": t.store_cpu.map(ms),
            "server_storage_bytes": o.server_bytes,
            "server_storage_bytes_per_appointment": round3(o.server_bytes as f64 / RECORDS as f64),
            "sessions_wall_ms": ms(t.wall),
            "sessions_wall_note": "connect to the end of the close (QUIC draining included), summed",
            "records_with_conflicts": o.conflicted_records,
            "records_with_siblings": o.records_with_siblings,
            "fields_with_siblings": o.fields_with_siblings,
            "conflicts_note": "concurrent writes are kept as siblings per field (expected); a conflict is more than one distinct value shown",
            "replays_bytes_up_equal": t.replay_up_equal,
            "replays_bytes_down_equal": t.replay_down_equal,
            "shadow_tracks_server": o.shadow_tracks_server,
            "converged": o.converged,
            "informational": true,
            "ok": o.converged && o.shadow_tracks_server,
        }),
        format!(
            "up {} / down {}, {} RT, {:.1} ms; {} records in conflict",
            kb(t.bytes_up),
            kb(t.bytes_down),
            t.round_trips,
            ms(t.cpu),
            o.conflicted_records
        ),
        "-".into(),
    );
    report.push(
        json!({
            "bench": "w5.ours.round_trips",
            "what": "client flights after the QUIC handshake per reconnection (sans-IO replays with the agent's sending rules), the worst of the rounds",
            "round_trips_max_per_session": t.round_trips_max,
            "round_trips_total": t.round_trips,
            "sessions": t.sessions,
            "target_round_trips": w1::TARGET_ROUND_TRIPS,
            "ok": t.round_trips_max <= w1::TARGET_ROUND_TRIPS,
        }),
        format!("max {} per session ({} in {} sessions)", t.round_trips_max, t.round_trips, t.sessions),
        format!("<= {}", w1::TARGET_ROUND_TRIPS),
    );
    report.push(
        json!({
            "bench": "w5.ours.metadata",
            "what": "sync metadata per reconnection: Hello, Welcome, Ack and UpToDate frames both ways, the largest of the rounds",
            "metadata_bytes_max": t.metadata_max,
            "metadata_bytes_mean": round3(t.metadata_bytes as f64 / t.sessions.max(1) as f64),
            "target_bytes": TARGET_METADATA_BYTES,
            "ok": t.metadata_max <= TARGET_METADATA_BYTES,
        }),
        format!(
            "max {} B, mean {:.1} B per session",
            t.metadata_max,
            t.metadata_bytes as f64 / t.sessions.max(1) as f64
        ),
        format!("<= {TARGET_METADATA_BYTES} B"),
    );

    let quic = QuinnTransport::new()?;
    let mut all = Vec::new();
    for mut a in compare::adapters(1) {
        let th = theirs(a.as_mut(), o, &quic)?;
        let f = &th.totals;
        report.push(
            json!({
                "bench": format!("w5.{}.totals", th.name),
                "adapter": th.name,
                "transport": "quinn",
                "bytes_note": "stream payload: encoded protocol messages + 4-byte length prefix each",
                "rounds": o.rounds,
                "sessions": f.sessions,
                "bytes_up": f.bytes_up,
                "bytes_down": f.bytes_down,
                "udp_bytes_up": f.udp_up,
                "udp_bytes_down": f.udp_down,
                "messages_up": f.messages_up,
                "messages_down": f.messages_down,
                "round_trips": f.round_trips,
                "round_trips_max_per_session": f.round_trips_max,
                "server_cpu_ms": ms(f.cpu),
                "server_cpu_note": "sum of the server side of the protocol per session, in memory",
                "server_storage_bytes": th.storage,
                "server_storage_bytes_per_appointment": round3(th.storage as f64 / RECORDS as f64),
                "records_with_conflicts": th.conflicted_records,
                "converged": th.converged,
                "fields_differing_from_ours": th.differ_from_ours,
                "fields_missing_vs_ours": th.missing,
                "differing_note": "concurrent writes: ours shows the sibling with the latest HLC, automerge and yrs pick by actor",
                "informational": true,
                "ok": th.converged && th.missing == 0,
            }),
            format!(
                "up {} / down {}, {} RT, {:.1} ms{}",
                kb(f.bytes_up),
                kb(f.bytes_down),
                f.round_trips,
                ms(f.cpu),
                th.conflicted_records
                    .map_or_else(String::new, |c| format!("; {c} records in conflict"))
            ),
            "-".into(),
        );
        all.push((th.name, f.bytes_up, f.bytes_down));
    }
    for (name, up, down) in all {
        let ratio = (t.bytes_up + t.bytes_down) as f64 / ((up + down) as f64).max(1.0);
        let ratio_up = t.bytes_up as f64 / (up as f64).max(1.0);
        let w1_target = if name == "yrs" { 0.5 } else { 0.22 };
        report.push(
            json!({
                "bench": format!("w5.summary.ours_vs_{name}"),
                "what": "bytes both ways, summed over the rounds' reconnections: ours / theirs",
                "ours_bytes_up": t.bytes_up,
                "ours_bytes_down": t.bytes_down,
                "their_bytes_up": up,
                "their_bytes_down": down,
                "ratio": round3(ratio),
                "ratio_up": round3(ratio_up),
                "target_ratio_w1": w1_target,
                "informational": true,
                "ok": ratio <= w1_target,
            }),
            format!(
                "ours {} / {name} {} = {:.3} (up only {:.3})",
                kb(t.bytes_up + t.bytes_down),
                kb(up + down),
                ratio,
                ratio_up
            ),
            format!("(W1: <= {w1_target})"),
        );
    }
    Ok(())
}
