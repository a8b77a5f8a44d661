//! Workload `w3` (issue 6), a month offline: one laptop of the bench's unit works 30 days
//! without syncing — W1's daily work (50 new appointments a day, 40 % rescheduled, 90 % given a
//! status, 20 % a note edit, 10 edits a day to older appointments of its unit) — while the server
//! gains a month of other units' changes (four other units of the same département, two
//! laptops each doing the same daily work and syncing every evening) and the laptop's own unit's
//! scheduler writes five new appointments a day on the server. Then the laptop reconnects. The
//! same action stream then goes through automerge and yrs, and the laptop's reconnection is
//! measured side by side.
//!
//! Ours is the product: the server in process (`serve::start`, its registry, CA, enrolments),
//! devices initialised as the agent does, user actions through `tournee_core::actions` and
//! `write_local` on real SQLite files, the scheduler writing on the server's store beside the
//! running server (as `tournee-server appointment add` does), every sync the agent's own over
//! loopback QUIC. The out-of-scope changes are really on the server: the server filters them
//! out of the laptop's session by scope. The measured reconnection goes through a fault-free
//! relay counting UDP bytes; its round trips, messages, sync metadata and server CPU come from
//! sans-IO replays of the same session (`w1::replay`) on copies of the two databases taken
//! just before it. To take the server's copy the server is stopped and started again, so the
//! real session meets a freshly started server (its store-thread CPU is printed beside the
//! replays' for that reason).
//!
//! automerge and yrs get one document per unit, each with the server's copy and its unit's
//! devices' copies (the laptop's unit: the laptop only). A device syncs only its unit's
//! document, so, as with ours, the laptop never downloads other units — the comparison is
//! about the laptop's own unit. The laptops start as copies of their unit's document after the
//! scheduler's load; other units' devices sync every evening in memory (`compare::Direct`,
//! not measured); the laptop's reconnection goes over quinn on loopback (`QuinnTransport`) and
//! is measured. automerge runs twice: with a fresh `sync::State` per connection (as
//! `w1-compare`) and keeping each side's state between connections (`automerge-kept`).
//!
//! Reported: for the laptop's reconnection, the columns of `w1-compare` (bytes each way, ratio
//! to the deflated net delta of the laptop's month, messages, round trips, server CPU, server
//! storage per appointment over all units, convergence after a final round of syncs); for ours
//! also the server's changelog at reconnection (entries, rows, bytes of its table and indexes)
//! and the session's sync metadata (Hello, Welcome, Ack, UpToDate frames) against §6's 64 B.
//!
//! Deliberately not measured here: the other units' daily sessions (they only build the
//! server's state), weekends (every day is a working day, as in W1), conflicts (only the
//! laptop edits its unit's records, the scheduler only creates), link faults.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use chrono::NaiveDate;
use serde_json::json;
use tournee_core::clock::WallMs;
use tournee_core::model::Kind;
use tournee_core::rng::SeededRng;
use tournee_core::store::Store;
use tournee_core::time::{paris_date, paris_midnight};
use tournee_report::queries::Queries;
use tournee_tests::relay::{Faults, Relay};
use uuid::Uuid;

use super::compare::{self, Adapter, Direct, Dump, Flow, QuinnTransport, Replica};
use super::fleet::{self, Fleet};
use super::w1::{self, Act, Laptop};
use super::{kb, load_average, ms, Report, BASE_NOW_MS, UNIT};

/// Days the laptop stays offline.
pub(crate) const DEFAULT_DAYS: usize = 30;
/// Days offline with `--quick`.
pub(crate) const QUICK_DAYS: usize = 3;

/// The other units, in the same département as the laptop's.
const OTHER_UNITS: &[&str] = &["bus-80-2", "bus-80-3", "bus-80-4", "bus-80-5"];
const DEVICES_PER_OTHER_UNIT: usize = 2;
/// New appointments the laptop's unit's scheduler writes on the server each day.
const SCHEDULER_PER_DAY: usize = 5;
/// The evening sync of the other units' devices, after the day's last edit (which may come up
/// to four hours after the end of the working day).
const EVENING_AFTER_DAY_END_S: i64 = 5 * 3_600;
/// §6: sync metadata per session.
const TARGET_METADATA_BYTES: u64 = 64;

/// The instants of the run.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    /// Every unit's scheduler loads its appointments (the day before the first offline day).
    load_at: WallMs,
    first_day: NaiveDate,
    /// The laptop reconnects.
    sync_at: WallMs,
}

impl Timeline {
    fn new(days: usize) -> Result<Self> {
        let sync_at = BASE_NOW_MS;
        let today = paris_date(w1::secs_of(sync_at)).context("base date")?;
        let days = i64::try_from(days)?;
        let first_day = today - chrono::Duration::days(days);
        let load_at = w1::ms_of(paris_midnight(first_day - chrono::Duration::days(1)) + 9 * 3_600);
        let time = Self {
            load_at,
            first_day,
            sync_at,
        };
        ensure!(
            time.evening(days - 1) < sync_at,
            "the month must end before the reconnection"
        );
        Ok(time)
    }

    /// 08:30 on day `d` (0-based).
    fn day_start(&self, d: i64) -> WallMs {
        w1::ms_of(paris_midnight(self.first_day + chrono::Duration::days(d)) + w1::DAY_START_S)
    }

    /// When the other units' devices sync on day `d`.
    fn evening(&self, d: i64) -> WallMs {
        self.day_start(d) + w1::ms_of(w1::DAY_LENGTH_S + EVENING_AFTER_DAY_END_S)
    }
}

/// The month's action stream, for the other CRDTs. Document `u` is unit `u` (0: the laptop's).
#[derive(Debug, Default)]
struct Stream {
    /// Each unit's scheduler load.
    loads: Vec<Vec<Act>>,
    days: Vec<Day>,
}

#[derive(Debug, Default)]
struct Day {
    /// The laptop unit's scheduler's new appointments (on the server).
    scheduler: Vec<Act>,
    /// `devices[u][j]`: the day of device j + 1 of unit u (unit 0: the laptop).
    devices: Vec<Vec<Vec<Act>>>,
}

impl Stream {
    fn acts(&self) -> impl Iterator<Item = &Act> {
        self.loads
            .iter()
            .flatten()
            .chain(self.days.iter().flat_map(|d| {
                d.scheduler
                    .iter()
                    .chain(d.devices.iter().flatten().flatten())
            }))
    }

    fn appointments(&self) -> usize {
        self.acts()
            .flat_map(|a| a.edits.iter())
            .filter(|(_, kind, _)| *kind == Kind::Appointment)
            .map(|(id, _, _)| *id)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// What our run measured, and the stream for the other CRDTs.
struct Ours {
    stream: Stream,
    days: usize,
    session: fleet::Reconnect,
    field_writes: u64,
    delta: w1::Delta,
    replayed: fleet::Replayed,
    changelog: fleet::ChangelogSize,
    /// The laptop's cursor before the month, and after the reconnection.
    cursor_before: u64,
    cursor_after: u64,
    server_bytes_per_appointment: f64,
    appointments: usize,
    dump: Dump,
    converged: bool,
}

/// W3 with `size` days offline and `per_day` new appointments per device per day (W1's 50; the
/// scheduler's initial load of each unit scales with it, as W1's does).
pub(crate) fn run_w3(
    report: &mut Report,
    seed: u64,
    size: usize,
    per_day: usize,
    keep: bool,
) -> Result<()> {
    ensure!(size >= 1, "--n (days offline) must be at least 1 for w3");
    let dir = tempfile::tempdir().context("creating the temporary directory")?;
    eprintln!(
        "w3: seed {seed}, one laptop {size} days offline ({per_day} new appointments a day), {} other units x {DEVICES_PER_OTHER_UNIT} laptops syncing daily, {SCHEDULER_PER_DAY} scheduler appointments a day; files in {}; load average {}",
        OTHER_UNITS.len(),
        dir.path().display(),
        load_average()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let ours = runtime.block_on(ours(seed, size, per_day, dir.path()));
    runtime.shutdown_timeout(Duration::from_secs(5));
    let result = ours.and_then(|ours| push_rows(report, &ours));
    if keep {
        eprintln!("w3: files kept in {}", dir.keep().display());
    }
    result
}

async fn ours(seed: u64, days: usize, per_day: usize, root: &Path) -> Result<Ours> {
    let time = Timeline::new(days)?;
    let units: Vec<&str> = std::iter::once(UNIT)
        .chain(OTHER_UNITS.iter().copied())
        .collect();
    let mut fleet = Fleet::new(root, &units, time.load_at + 3_600_000)?;
    let mut stream = Stream::default();

    // Every unit's scheduler load, before the server starts.
    let mut pools: Vec<Vec<Uuid>> = Vec::with_capacity(units.len());
    {
        let mut store = fleet.scheduler_store()?;
        for (u, unit) in units.iter().enumerate() {
            let mut rng = SeededRng::new(seed ^ 0x5E4F_0000_0000_0001 ^ ((u as u64 + 1) << 40));
            let count = per_day * w1::SERVER_APPOINTMENTS_PER_DAILY;
            let (ids, acts) = w1::load_unit(&mut store, unit, &mut rng, count, time.load_at)?;
            pools.push(ids);
            stream.loads.push(acts);
        }
    }

    // `devices[u]`: unit u's devices (unit 0: the laptop alone).
    let mut devices: Vec<Vec<Laptop>> = vec![vec![fleet.enroll(UNIT, "laptop")?]];
    for unit in OTHER_UNITS {
        let mut ds = Vec::with_capacity(DEVICES_PER_OTHER_UNIT);
        for j in 1..=DEVICES_PER_OTHER_UNIT {
            ds.push(fleet.enroll(unit, &format!("{unit}-laptop-{j}"))?);
        }
        devices.push(ds);
    }
    fleet.start().await?;
    for l in devices.iter_mut().flatten() {
        fleet::sync(l, &fleet.clock).await?;
    }
    let cursor_before = devices[0][0].store.stats()?.cursor;

    // The month.
    let mut rngs: Vec<Vec<SeededRng>> = devices
        .iter()
        .enumerate()
        .map(|(u, ds)| {
            (0..ds.len())
                .map(|j| {
                    SeededRng::new(
                        seed ^ 0x3E3E_0000_0000_0001u64.wrapping_mul((u * 8 + j + 1) as u64),
                    )
                })
                .collect()
        })
        .collect();
    let mut older: Vec<Vec<Vec<Uuid>>> = devices
        .iter()
        .zip(&pools)
        .map(|(ds, pool)| vec![pool.clone(); ds.len()])
        .collect();
    let mut scheduler_rng = SeededRng::new(seed ^ 0x5C4E_D000_0000_0001);
    let t = std::time::Instant::now();
    for d in 0..i64::try_from(days)? {
        let start = time.day_start(d);
        let mut day = Day::default();
        for (u, ds) in devices.iter_mut().enumerate() {
            let mut unit_day = Vec::with_capacity(ds.len());
            for (j, l) in ds.iter_mut().enumerate() {
                let (acts, created) = w1::work_day(
                    &mut l.store,
                    &mut l.touched,
                    units[u],
                    &mut rngs[u][j],
                    start,
                    per_day,
                    &older[u][j],
                )?;
                older[u][j].extend(created);
                unit_day.push(acts);
            }
            day.devices.push(unit_day);
        }
        {
            let mut store = fleet.scheduler_store()?;
            let step = w1::ms_of(w1::DAY_LENGTH_S) / (SCHEDULER_PER_DAY as u64 + 1);
            for i in 1..=SCHEDULER_PER_DAY as u64 {
                let now = start + i * step;
                let with_note = scheduler_rng.chance_percent(30);
                let a = w1::new_appointment(&mut scheduler_rng, now, 42, with_note);
                let (_, action) =
                    w1::add_appointment_in(UNIT, &store, &mut scheduler_rng, now, &a)?;
                store.write_local(now, &action)?;
                day.scheduler.push(Act::of(now, &action));
            }
        }
        fleet.clock.set(time.evening(d));
        for l in devices.iter_mut().skip(1).flatten() {
            fleet::sync(l, &fleet.clock).await?;
        }
        stream.days.push(day);
    }
    eprintln!(
        "w3: {days} days written and synced in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The reconnection: copies of both databases for the replays, then the real session.
    fleet.clock.set(time.sync_at);
    let replay_dir = root.join("replay");
    std::fs::create_dir_all(&replay_dir)?;
    let laptop_db = replay_dir.join("laptop.sqlite");
    let server_db = replay_dir.join("server.sqlite");
    let laptop = &mut devices[0][0];
    let delta = w1::net_delta(laptop)?;
    let field_writes = laptop.store.stats()?.pending;
    laptop.snapshot(&laptop_db)?;
    fleet.stop().await?;
    w1::copy_db(&fleet.data.store(), &server_db)?;
    let changelog = fleet::changelog_size(&server_db)?;
    fleet.start().await?;
    let relay = Relay::start(fleet.addr()?, Faults::none(), seed);
    let session = fleet::reconnect(laptop, &relay, &fleet.clock).await?;
    drop(relay);
    let cursor_after = laptop.store.stats()?.cursor;

    // A final sync of everyone; then every device must hold the server's state for its scope.
    for l in devices.iter_mut().flatten() {
        fleet::sync(l, &fleet.clock).await?;
    }
    let mut converged = true;
    {
        let server_view = fleet.scheduler_store()?;
        for l in devices.iter().flatten() {
            converged &= fleet::same_as_server(l, &server_view)?;
        }
    }
    fleet.stop().await?;

    let auth = fleet::device_auth(&devices[0][0]);
    let names = w1::unit_device_names(&fleet.data.registry(), &auth.unit)?;
    let replayed = fleet::replays(
        &replay_dir,
        &server_db,
        &laptop_db,
        (&auth, &names),
        time.sync_at,
        w1::REPLAY_RUNS,
    )?;

    let server_view = tournee_report::facts::open_server_store(&fleet.data.store())?;
    let dump = fleet::dump_of(&server_view, stream.acts())?;
    server_view.vacuum()?;
    let appointments = server_view.ids_of_kind(Kind::Appointment, None)?.len();
    let server_bytes_per_appointment =
        server_view.bytes_used()? as f64 / appointments.max(1) as f64;
    Ok(Ours {
        stream,
        days,
        session,
        field_writes,
        delta,
        replayed,
        changelog,
        cursor_before,
        cursor_after,
        server_bytes_per_appointment,
        appointments,
        dump,
        converged,
    })
}

/// What another CRDT measured for the laptop's reconnection.
struct Theirs {
    name: &'static str,
    flow: Flow,
    /// Saved server copies after the final syncs: the laptop's unit's document, all documents.
    unit_storage: u64,
    total_storage: u64,
    converged: bool,
    differ_from_ours: usize,
    missing: usize,
}

fn theirs(
    a: &mut dyn Adapter,
    stream: &Stream,
    quic: &QuinnTransport,
    ours: &Dump,
) -> Result<Theirs> {
    let documents = stream.loads.len();
    for (u, load) in stream.loads.iter().enumerate() {
        for act in load {
            a.apply(Replica::server(u), act)?;
        }
    }
    a.start_devices(0, 1)?;
    for u in 1..documents {
        a.start_devices(u, DEVICES_PER_OTHER_UNIT)?;
    }
    let devices = |u: usize| if u == 0 { 1 } else { DEVICES_PER_OTHER_UNIT };
    for day in &stream.days {
        for (u, unit_day) in day.devices.iter().enumerate() {
            for (j, acts) in unit_day.iter().enumerate() {
                for act in acts {
                    a.apply(Replica::device(u, j + 1), act)?;
                }
            }
        }
        for act in &day.scheduler {
            a.apply(Replica::server(0), act)?;
        }
        for u in 1..documents {
            for k in 1..=devices(u) {
                a.sync(Replica::device(u, k), &mut Direct)?;
            }
        }
    }
    let mut session = quic.session()?;
    let mut flow = a.sync(Replica::device(0, 1), &mut session)?;
    (flow.udp_up, flow.udp_down) = session.finish();

    // A final round, then every replica of a document must hold its server's values.
    let mut converged = true;
    let mut all = Dump::new();
    let mut total_storage = 0;
    for u in 0..documents {
        for k in 1..=devices(u) {
            a.sync(Replica::device(u, k), &mut Direct)?;
        }
        let server = a.dump(Replica::server(u))?;
        for k in 1..=devices(u) {
            converged &= a.dump(Replica::device(u, k))? == server;
        }
        all.extend(server);
        total_storage += a.server_storage(u)?;
    }
    let (differ_from_ours, missing) = compare::differences(ours, &all);
    Ok(Theirs {
        name: a.name(),
        flow,
        unit_storage: a.server_storage(0)?,
        total_storage,
        converged,
        differ_from_ours,
        missing,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn push_rows(report: &mut Report, o: &Ours) -> Result<()> {
    let r = &o.session.report;
    let cold = &o.replayed.cold;
    let cpu = o.replayed.cpu_p50();
    let delta = o.delta.deflated.max(1) as f64;
    report.push(
        json!({
            "bench": "w3.ours.laptop",
            "adapter": "ours",
            "transport": "quinn",
            "what": "the laptop's reconnection after a month offline (real agent session through a counting relay; round trips, messages and CPU from sans-IO replays of it)",
            "days_offline": o.days,
            "bytes_up": r.bytes_out,
            "bytes_down": r.bytes_in,
            "udp_bytes_up": o.session.udp_up,
            "udp_bytes_down": o.session.udp_down,
            "changes_up": r.stats.changes_out,
            "changes_down": r.stats.changes_in,
            "field_writes": o.field_writes,
            "deflated_delta_bytes": o.delta.deflated,
            "delta_records": o.delta.records,
            "delta_fields": o.delta.fields,
            "ratio_up_to_delta": round3(r.bytes_out as f64 / delta),
            "target_ratio_w1": w1::TARGET_BYTES_RATIO,
            "messages_up": cold.messages_up,
            "messages_down": cold.messages_down,
            "round_trips": cold.round_trips,
            "server_cpu_ms": ms(cpu),
            "server_cpu_cold_ms": ms(cold.cost.cpu()),
            "server_cpu_note": "p50 of warm sans-IO replays on a synchronous=FULL SQLite file",
            "real_session_store_thread_cpu_ms": o.session.store_cpu.map(ms),
            "server_storage_bytes_per_appointment": round3(o.server_bytes_per_appointment),
            "appointments_on_server": o.appointments,
            "wall_ms": ms(o.session.wall),
            "replay_bytes_up_equal": cold.bytes_up == r.bytes_out,
            "replay_bytes_down_equal": cold.bytes_down == r.bytes_in,
            "converged": o.converged,
            "informational": true,
            "ok": o.converged,
        }),
        format!(
            "up {} / down {} (delta {}, {:.2}x), {} RT, {:.1} ms",
            kb(r.bytes_out),
            kb(r.bytes_in),
            kb(o.delta.deflated as u64),
            r.bytes_out as f64 / delta,
            cold.round_trips,
            ms(cpu)
        ),
        "-".into(),
    );
    let c = &o.changelog;
    report.push(
        json!({
            "bench": "w3.ours.changelog",
            "what": "the server's changelog when the laptop reconnects (every unit's month); the laptop is sent only what its unit and territory scopes select after its cursor",
            "entries": c.entries,
            "rows": c.rows,
            "bytes": c.bytes,
            "bytes_per_entry": round3(c.bytes as f64 / c.entries.max(1) as f64),
            "bytes_note": "pages of the changelog table and its indexes (SQLite dbstat)",
            "server_database_bytes": c.database_bytes,
            "entries_after_laptop_cursor": c.entries.saturating_sub(o.cursor_before),
            "changes_sent_to_laptop": r.stats.changes_in,
            "laptop_cursor_before": o.cursor_before,
            "laptop_cursor_after": o.cursor_after,
            "informational": true,
            "ok": true,
        }),
        format!(
            "{} entries in {} rows, {} ({} after the laptop's cursor, {} sent to it)",
            c.entries,
            c.rows,
            kb(c.bytes),
            c.entries.saturating_sub(o.cursor_before),
            r.stats.changes_in
        ),
        "-".into(),
    );
    report.push(
        json!({
            "bench": "w3.ours.metadata",
            "what": "sync metadata of the reconnection: Hello, Welcome, Ack and UpToDate frames both ways (the changes' own dots and clocks are not counted); a device stores two integers of sync state (cursor, acked seq)",
            "metadata_bytes": cold.metadata_bytes,
            "batches_up": r.stats.batches_out,
            "metadata_note": "one Ack per flight of up to 8 batches the server reads at once: grows with the laptop's batches, not with the server's changelog",
            "server_changelog_entries": c.entries,
            "target_bytes": TARGET_METADATA_BYTES,
            "ok": cold.metadata_bytes <= TARGET_METADATA_BYTES,
        }),
        format!("{} B per session ({} changelog entries on the server)", cold.metadata_bytes, c.entries),
        format!("<= {TARGET_METADATA_BYTES} B"),
    );
    report.push(
        json!({
            "bench": "w3.ours.round_trips",
            "what": "client flights after the QUIC handshake, each waiting for the server (sans-IO replay with the agent's sending rules)",
            "round_trips": cold.round_trips,
            "messages_up": cold.messages_up,
            "messages_down": cold.messages_down,
            "target_round_trips": w1::TARGET_ROUND_TRIPS,
            "ok": cold.round_trips <= w1::TARGET_ROUND_TRIPS,
        }),
        format!(
            "{} ({} messages up, {} down)",
            cold.round_trips, cold.messages_up, cold.messages_down
        ),
        format!("<= {}", w1::TARGET_ROUND_TRIPS),
    );

    // The other CRDTs, on the same stream.
    let quic = QuinnTransport::new()?;
    let appointments = o.stream.appointments();
    let mut all = Vec::new();
    for mut a in compare::adapters(o.stream.loads.len()) {
        let th = theirs(a.as_mut(), &o.stream, &quic, &o.dump)?;
        let f = &th.flow;
        report.push(
            json!({
                "bench": format!("w3.{}.laptop", th.name),
                "adapter": th.name,
                "transport": "quinn",
                "documents": "one per unit; the laptop syncs its unit's only",
                "bytes_note": "stream payload: encoded protocol messages + 4-byte length prefix each",
                "days_offline": o.days,
                "bytes_up": f.bytes_up,
                "bytes_down": f.bytes_down,
                "udp_bytes_up": f.udp_up,
                "udp_bytes_down": f.udp_down,
                "deflated_delta_bytes": o.delta.deflated,
                "ratio_up_to_delta": round3(f.bytes_up as f64 / delta),
                "messages_up": f.messages_up,
                "messages_down": f.messages_down,
                "round_trips": f.round_trips,
                "server_cpu_ms": ms(f.server_cpu),
                "server_cpu_note": "server side of the protocol, in memory, one cold run",
                "server_storage_bytes_per_appointment": round3(th.total_storage as f64 / appointments.max(1) as f64),
                "server_storage_bytes": th.total_storage,
                "unit_document_bytes": th.unit_storage,
                "appointments": appointments,
                "converged": th.converged,
                "fields_differing_from_ours": th.differ_from_ours,
                "fields_missing_vs_ours": th.missing,
                "informational": true,
                "ok": th.converged && th.missing == 0,
            }),
            format!(
                "up {} / down {}, {} RT, {:.1} ms",
                kb(f.bytes_up),
                kb(f.bytes_down),
                f.round_trips,
                ms(f.server_cpu)
            ),
            "-".into(),
        );
        all.push((th.name, f.bytes_up, f.bytes_down));
    }
    for (name, up, down) in all {
        let ours_total = (r.bytes_out + r.bytes_in) as f64;
        let ratio = ours_total / ((up + down) as f64).max(1.0);
        let ratio_up = r.bytes_out as f64 / (up as f64).max(1.0);
        let w1_target = if name == "yrs" { 0.5 } else { 0.22 };
        report.push(
            json!({
                "bench": format!("w3.summary.ours_vs_{name}"),
                "what": "bytes both ways of the laptop's reconnection: ours / theirs",
                "ours_bytes_up": r.bytes_out,
                "ours_bytes_down": r.bytes_in,
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
                kb(r.bytes_out + r.bytes_in),
                kb(up + down),
                ratio,
                ratio_up
            ),
            format!("(W1: <= {w1_target})"),
        );
    }
    Ok(())
}
