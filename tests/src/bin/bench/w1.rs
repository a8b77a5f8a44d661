//! Workload `w1`, the design brief's W1 (§6): three laptops of one unit each work a week
//! offline — 50 new appointments a day (40 % rescheduled, 90 % given a status, 20 % a note
//! edit) and 10 edits a day to older appointments they share — and then reconnect, one after
//! the other, to a real server.
//!
//! Everything is the product's code: the server runs in process (`serve::start`, real data
//! dir, CA, registry, enrolment), the laptops are `init_store` + `sync_once` over loopback
//! QUIC (the measured reconnection runs what `sync_once` runs — `connect`, `session`, waiting
//! for the close — without its retry loop, to read the connection's QUIC statistics), user
//! actions go through `tournee_core::actions` and `Store::write_local`. Time is
//! injected: the server's clock is a `ManualClock` set to the end of the simulated week, the
//! laptops write with `now` advancing through the week before it. Certificates are issued with
//! the system clock, which is what TLS checks them against.
//!
//! Measured per laptop:
//! - bytes each way: the stream payload the agent's `Report` counts (frames: length prefix,
//!   flags, deflated postcard) and the UDP payload bytes through a fault-free relay (QUIC
//!   packets: handshake with both certificates, MTU probes, ACKs, close);
//! - the net delta floor: for every record the laptop changed during the week, the final
//!   values of the fields it changed, as compact JSON, deflated (default level);
//! - round trips after the handshake, from the session's message flow: a sans-IO replay of the
//!   same session through the production pumps (`ClientPump` on a copy of the laptop's store,
//!   `ServerPump` on a copy of the server's) following the agent's sending rules
//!   (`tournee_net::pump::drive_client`);
//! - server CPU per session: the server side of that replay (`ServerPump::handle_read`: frame
//!   decoding and `handle_messages`; `ServerPump::flush`: `fill` and frame encoding) on a file
//!   store with `synchronous=FULL`, as thread CPU time, after a warm-up session of another
//!   device on the same connection; p50 of several runs. The real session's store-thread CPU
//!   is reported beside it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use chrono::NaiveDate;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use serde_json::json;
use tournee_agent::setup::{identity_of, init_store, STORE_FILE};
use tournee_agent::sync::{connect, session, sync_once, Remote};
use tournee_core::actions::{self, NewAppointment};
use tournee_core::clock::{Clock, ManualClock, SystemClock, WallMs};
use tournee_core::export;
use tournee_core::limits::SCHEDULER_ACTION_CHANGES_MAX;
use tournee_core::model::{AppointmentStatus, Field, Kind, Location, Value};
use tournee_core::rng::SeededRng;
use tournee_core::store::{Identity, LocalAction, ServerStore, Store};
use tournee_core::time::{paris_date, paris_midnight};
use tournee_net::bundle::Bundle;
use tournee_proto::auth::DeviceAuth;
use tournee_proto::frame::{self, FrameReader};
use tournee_proto::pump::{ClientPump, ServerPump};
use tournee_proto::session::ServerSession;
use tournee_proto::wire::{pack, ClientMsg, ServerMsg, PROTOCOL_VERSION};
use tournee_report::queries::Queries;
use tournee_server::admin;
use tournee_server::config::DataDir;
use tournee_server::registry::{Registry, Unit};
use tournee_server::serve;
use tournee_store::SqliteStore;
use tournee_tests::relay::{Faults, Relay};
use uuid::Uuid;

use super::{
    kb, load_average, ms, other_thread_cpu, percentile, thread_cpu, thread_named, Report,
    BASE_NOW_MS, TERRITORY, UNIT,
};

/// New appointments per laptop per day (the brief's 50).
pub const DEFAULT_PER_DAY: usize = 50;
/// New appointments per laptop per day with `--quick`.
pub const QUICK_PER_DAY: usize = 5;

const LAPTOPS: usize = 3;
const DAYS: i64 = 7;
/// Appointments on the server at the start, per new appointment a laptop makes in a day
/// (2,000 for 50 a day).
pub(crate) const SERVER_APPOINTMENTS_PER_DAILY: usize = 40;
/// Edits a day to older shared appointments, per five new appointments (10 for 50 a day).
pub(crate) const OLD_EDITS_PER_FIVE: usize = 1;
pub(crate) const RESCHEDULE_PCT: u64 = 40;
pub(crate) const STATUS_PCT: u64 = 90;
pub(crate) const NOTE_PCT: u64 = 20;
/// New appointments recorded with a citizen (which adds a citizen record).
const CITIZEN_PCT: u64 = 80;
/// A working day: 08:30 to 17:30, Paris time.
pub(crate) const DAY_START_S: i64 = 8 * 3_600 + 1_800;
pub(crate) const DAY_LENGTH_S: i64 = 9 * 3_600;
/// How long one sync may take before the workload gives up.
pub(crate) const SYNC_TIMEOUT_S: u64 = 120;
/// Timed replays of each session (the median is reported).
pub(crate) const REPLAY_RUNS: usize = 5;
/// Actor number of the warm-up device of the replays (never enrolled).
const WARMUP_ACTOR: u32 = 60_000;

/// §6 targets.
pub(crate) const TARGET_BYTES_RATIO: f64 = 1.25;
pub(crate) const TARGET_ROUND_TRIPS: usize = 1;
const TARGET_SERVER_CPU_MS: f64 = 3.0;

/// Communes the unit serves (Somme).
const COMMUNES: &[&str] = &[
    "80016", "80253", "80620", "80685", "80410", "80021", "80001",
];
const NAMES: &[&str] = &[
    "Mme Lefebvre",
    "M. Dubois",
    "Mme Leroy",
    "M. Moreau",
    "Mme Fournier",
    "M. Girard",
    "Mme Lambert",
    "M. Bonnet",
    "Mme Mercier",
    "M. Caron",
];
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
/// Outcomes a status edit records (never back to `unknown`), weighted.
const OUTCOMES: &[AppointmentStatus] = &[
    AppointmentStatus::Seen,
    AppointmentStatus::Seen,
    AppointmentStatus::Seen,
    AppointmentStatus::Seen,
    AppointmentStatus::Seen,
    AppointmentStatus::Seen,
    AppointmentStatus::Seen,
    AppointmentStatus::NoShow,
    AppointmentStatus::Excused,
    AppointmentStatus::Revoked,
];

/// Sizes of one run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    per_day: usize,
    server_appointments: usize,
    old_edits_per_day: usize,
}

/// One record's part of an action: its id, kind and the fields set, in order.
pub(crate) type RecordSets = (Uuid, Kind, Vec<(Field, Value)>);

/// One abstract user action, replayable into any store: the record edits of one product
/// action (what `tournee_core::actions` built), each a record id, its kind and the fields set.
#[derive(Debug, Clone)]
pub(crate) struct Act {
    /// When the user did it.
    pub at: WallMs,
    /// Record id, kind, fields set (in order).
    pub edits: Vec<RecordSets>,
}

impl Act {
    pub(crate) fn of(at: WallMs, action: &LocalAction) -> Self {
        Self {
            at,
            edits: action
                .edits
                .iter()
                .map(|e| (e.id, e.kind, e.sets.clone()))
                .collect(),
        }
    }
}

/// The whole W1 action stream of a seed: the server's initial load, then per laptop per day
/// the actions in time order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Streams {
    /// The scheduler's appointments, one action per appointment (written on the server in
    /// large batches by the product).
    pub server: Vec<Act>,
    /// `laptops[k][day]`: laptop k's actions on that day, in time order.
    pub laptops: Vec<Vec<Vec<Act>>>,
}

/// What our product measured for one laptop (for the comparison workload).
#[derive(Debug, Clone)]
pub(crate) struct OursRow {
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub deflated_delta: usize,
    pub messages_up: usize,
    pub messages_down: usize,
    pub round_trips: usize,
    pub server_cpu_ms_p50: f64,
}

/// What a W1 run leaves for the comparison.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub streams: Streams,
    pub rows: Vec<OursRow>,
    /// Final values on the server of every field the stream wrote: record → field → JSON.
    pub dump: BTreeMap<Uuid, BTreeMap<String, serde_json::Value>>,
    /// Bytes of the server's SQLite file (after VACUUM) per appointment.
    pub server_bytes_per_appointment: f64,
    pub converged: bool,
    /// The files of the reconnections, to replay them over other links (`w1-rural`).
    pub reconnections: Reconnections,
}

/// What replaying W1's reconnections needs: the server's data dir and, per laptop, its
/// enrolment and the two stores as they were before it reconnected. Paths under `run_in`'s root.
#[derive(Debug, Clone)]
pub(crate) struct Reconnections {
    /// The server's data dir: CA, certificates, `server.toml`, registry with the laptops enrolled.
    pub server_dir: PathBuf,
    pub config: tournee_server::config::ServerConfig,
    /// The server's clock (and the laptops') during the reconnections.
    pub sync_at: WallMs,
    /// In reconnection order.
    pub laptops: Vec<Reconnection>,
}

/// One laptop's reconnection, before it happened.
#[derive(Debug, Clone)]
pub(crate) struct Reconnection {
    pub name: String,
    pub bundle: Bundle,
    /// The server's store as this laptop found it: the loaded store for the first laptop, for
    /// the others the state after the (sans-IO) replays of the laptops before it.
    pub server_db: PathBuf,
    /// The laptop's store before it reconnected.
    pub laptop_db: PathBuf,
}

/// One laptop: its data dir, store, enrolment and what it changed during the week.
pub(crate) struct Laptop {
    /// Its actions, per day of the week.
    pub(crate) days: Vec<Vec<Act>>,
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) bundle: Bundle,
    pub(crate) store: SqliteStore,
    /// Record → fields this laptop wrote during the offline week.
    pub(crate) touched: BTreeMap<Uuid, BTreeSet<Field>>,
}

impl Laptop {
    fn store_path(&self) -> PathBuf {
        self.dir.join(STORE_FILE)
    }

    /// Close the store, copy its file to `to`, open it again.
    pub(crate) fn snapshot(&mut self, to: &Path) -> Result<()> {
        let placeholder = SqliteStore::open_in_memory()?;
        drop(std::mem::replace(&mut self.store, placeholder));
        copy_db(&self.store_path(), to)?;
        self.store = SqliteStore::open(&self.store_path())?;
        Ok(())
    }
}

/// Copy a closed SQLite database (and its WAL, if one was left).
pub(crate) fn copy_db(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    let wal = |p: &Path| PathBuf::from(format!("{}-wal", p.display()));
    let _ = std::fs::remove_file(wal(to));
    if wal(from).exists() {
        std::fs::copy(wal(from), wal(to))?;
    }
    Ok(())
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn deflated_len(bytes: &[u8]) -> Result<usize> {
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes)?;
    Ok(enc.finish()?.len())
}

pub(crate) fn ms_of(secs: i64) -> WallMs {
    u64::try_from(secs).unwrap_or(0) * 1000
}

pub(crate) fn secs_of(ms: WallMs) -> i64 {
    i64::try_from(ms / 1000).unwrap_or(i64::MAX)
}

/// A start time (Unix seconds) between one hour and `days` days after `now`, on a 15-minute slot.
pub(crate) fn slot_after(rng: &mut SeededRng, now: WallMs, days: u64) -> i64 {
    let offset = 3_600 + rng.below(days * 86_400) as i64;
    (secs_of(now) + offset) / 900 * 900
}

pub(crate) fn new_appointment(
    rng: &mut SeededRng,
    now: WallMs,
    horizon_days: u64,
    note: bool,
) -> NewAppointment {
    let location = *rng.pick(&[
        Location::Stop,
        Location::Stop,
        Location::Stop,
        Location::Stop,
        Location::Stop,
        Location::Stop,
        Location::Home,
        Location::Home,
        Location::Home,
        Location::Phone,
    ]);
    NewAppointment {
        start: slot_after(rng, now, horizon_days),
        duration: 15 * (1 + rng.below(4) as i64),
        location,
        commune: (*rng.pick(COMMUNES)).to_owned(),
        citizen: rng.chance_percent(CITIZEN_PCT).then(|| {
            format!(
                "{} {}.",
                rng.pick(NAMES),
                (b'A' + rng.below(26) as u8) as char
            )
        }),
        person: None,
        passage: None,
        note: note.then(|| format!("{} #{:03}", rng.pick(NOTES), rng.below(1000))),
    }
}

/// The action `actions::add_appointment` builds, with its record ids drawn from the generator
/// instead of the OS (so a seed gives the same bytes). Returns the appointment id and the action.
pub(crate) fn add_appointment(
    store: &dyn Store,
    rng: &mut SeededRng,
    now: WallMs,
    a: &NewAppointment,
) -> Result<(Uuid, LocalAction)> {
    let (_, mut action) = actions::add_appointment(store, now, UNIT, a)?;
    let mut renamed = Vec::with_capacity(action.edits.len());
    for edit in &mut action.edits {
        let id = rng.uuid_v7(now);
        renamed.push((edit.id, id));
        edit.id = id;
    }
    for edit in &mut action.edits {
        for (_, value) in &mut edit.sets {
            if let Value::Id(old) = value {
                if let Some((_, new)) = renamed.iter().find(|(o, _)| o == old) {
                    *value = Value::Id(*new);
                }
            }
        }
    }
    let id = action
        .edits
        .iter()
        .find(|e| e.kind == Kind::Appointment)
        .map(|e| e.id)
        .context("add_appointment built no appointment")?;
    Ok((id, action))
}

/// The action `add_appointment` builds, for `unit` instead of the bench's unit.
pub(crate) fn add_appointment_in(
    unit: &str,
    store: &dyn Store,
    rng: &mut SeededRng,
    now: WallMs,
    a: &NewAppointment,
) -> Result<(Uuid, LocalAction)> {
    let (id, mut action) = add_appointment(store, rng, now, a)?;
    for e in &mut action.edits {
        e.scope = tournee_core::model::Scope::Unit(unit.to_owned());
    }
    Ok((id, action))
}

/// Set one field of an appointment through the product's action builder.
pub(crate) fn edit(
    store: &mut SqliteStore,
    now: WallMs,
    id: Uuid,
    field: Field,
    value: Value,
) -> Result<LocalAction> {
    let record = actions::require_kind(store, id, Kind::Appointment)?;
    let action = actions::set_fields(&record, vec![(field, value)]);
    store.write_local(now, &action)?;
    Ok(action)
}

pub(crate) fn outcome(rng: &mut SeededRng) -> Value {
    Value::Text(rng.pick(OUTCOMES).code().to_owned())
}

pub(crate) fn note(rng: &mut SeededRng) -> Value {
    Value::Text(format!("{} #{:03}", rng.pick(NOTES), rng.below(1000)))
}

pub(crate) fn run(report: &mut Report, seed: u64, per_day: usize, keep: bool) -> Result<()> {
    run_outcome(report, seed, per_day, keep).map(|_| ())
}

/// Run W1 and return its action stream and our measurements.
pub(crate) fn run_outcome(
    report: &mut Report,
    seed: u64,
    per_day: usize,
    keep: bool,
) -> Result<Outcome> {
    let dir = tempfile::tempdir().context("creating the temporary directory")?;
    let result = run_in(report, seed, per_day, dir.path());
    if keep {
        eprintln!("w1: files kept in {}", dir.keep().display());
    }
    result
}

/// Run W1 with its files under `root`; the files `Outcome::reconnections` names live there.
pub(crate) fn run_in(
    report: &mut Report,
    seed: u64,
    per_day: usize,
    root: &Path,
) -> Result<Outcome> {
    ensure!(per_day >= 1, "--n must be at least 1 for w1");
    let sizes = Sizes {
        per_day,
        server_appointments: per_day * SERVER_APPOINTMENTS_PER_DAILY,
        old_edits_per_day: (per_day * OLD_EDITS_PER_FIVE / 5).max(1),
    };
    eprintln!(
        "w1: seed {seed}, {} laptops x {DAYS} days x {} new appointments, server starts with {}, {} shared edits a day; files in {}; load average {}",
        LAPTOPS,
        sizes.per_day,
        sizes.server_appointments,
        sizes.old_edits_per_day,
        root.display(),
        load_average()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(w1(report, seed, sizes, root));
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// The instants of the run: the server's load, the offline week, the reconnection.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    /// The scheduler writes the server's appointments (day −8, 09:00).
    load_at: WallMs,
    /// First day of the offline week (day −7).
    first_day: NaiveDate,
    /// The laptops reconnect (the server's clock from then on).
    sync_at: WallMs,
}

impl Timeline {
    fn new() -> Result<Self> {
        let sync_at = BASE_NOW_MS;
        let today = paris_date(secs_of(sync_at)).context("base date")?;
        let day = |n: i64| today - chrono::Duration::days(n);
        let load_at = ms_of(paris_midnight(day(8)) + 9 * 3_600);
        let first_day = day(DAYS);
        // The last working day ends before the reconnection.
        let last_end = ms_of(paris_midnight(day(1)) + DAY_START_S + DAY_LENGTH_S + 4 * 3_600);
        ensure!(
            last_end < sync_at,
            "the week must end before the reconnection"
        );
        Ok(Self {
            load_at,
            first_day,
            sync_at,
        })
    }

    /// 08:30 on day `d` of the week (0-based), in ms.
    fn day_start(&self, d: i64) -> WallMs {
        ms_of(paris_midnight(self.first_day + chrono::Duration::days(d)) + DAY_START_S)
    }
}

async fn w1(report: &mut Report, seed: u64, sizes: Sizes, root: &Path) -> Result<Outcome> {
    let time = Timeline::new()?;
    let replay_dir = root.join("replay");
    std::fs::create_dir_all(&replay_dir)?;

    // The server: CA, certificate, registry, the unit, and the scheduler's appointments.
    let data = DataDir::new(root.join("server"));
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let config = admin::init_server(
        &data,
        &SystemClock,
        listen,
        Vec::new(),
        ([127, 0, 0, 1], 0).into(),
    )?;
    Registry::open(&data.registry())?.add_unit(&Unit {
        id: UNIT.into(),
        name: "Bus France services — Est de la Somme".into(),
        territory: TERRITORY.into(),
        kind: "bus".into(),
    })?;
    let (shared, server_stream) =
        load_server(&data, seed, sizes.server_appointments, time.load_at)?;
    copy_db(&data.store(), &replay_dir.join("server-0.sqlite"))?;

    let mut laptops = Vec::with_capacity(LAPTOPS);
    for k in 0..LAPTOPS {
        let name = format!("laptop-{}", k + 1);
        let bundle = admin::enroll_device(&data, &SystemClock, UNIT, &name)?;
        let dir = root.join(&name);
        let store = init_store(&dir, &identity_of(&bundle), Some(&bundle.to_json()))?;
        laptops.push(Laptop {
            name,
            dir,
            bundle,
            store,
            touched: BTreeMap::new(),
            days: Vec::new(),
        });
    }

    let clock = ManualClock::new(time.load_at + 3_600_000);
    let server_clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let server = serve::start(&data, &config, server_clock).await?;

    // Before the week: every laptop has the unit's calendar.
    for l in &mut laptops {
        let remote = Remote::from_bundle(&l.bundle)?;
        let r = sync_once(&mut l.store, &remote, &clock, SYNC_TIMEOUT_S)
            .await
            .with_context(|| format!("initial sync of {}", l.name))?;
        ensure!(
            r.stats.changes_in > 0 && l.store.stats()?.pending == 0,
            "{}: the initial sync brought nothing",
            l.name
        );
    }

    // The offline week.
    let t = Instant::now();
    for (k, l) in laptops.iter_mut().enumerate() {
        let mut rng = SeededRng::new(seed ^ (0x5EED_0000_0000_0001u64.wrapping_mul(k as u64 + 1)));
        offline_week(l, &mut rng, &time, sizes, &shared)?;
    }
    eprintln!(
        "w1: offline week written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // What each laptop will send: the net delta floor, and copies for the replays.
    let mut deltas = Vec::with_capacity(LAPTOPS);
    for (k, l) in laptops.iter_mut().enumerate() {
        deltas.push(net_delta(l)?);
        l.snapshot(&replay_dir.join(format!("laptop-{}.sqlite", k + 1)))?;
    }

    // The reconnection, one laptop after the other, each through a fault-free relay that
    // counts UDP bytes.
    clock.set(time.sync_at);
    let store_tid = thread_named("tournee-store");
    let mut sessions = Vec::with_capacity(LAPTOPS);
    for (k, l) in laptops.iter_mut().enumerate() {
        let pending = l.store.stats()?.pending;
        let relay = Relay::start(server.addr(), Faults::none(), seed.wrapping_add(k as u64));
        let mut via_relay = l.bundle.clone();
        via_relay.server_addrs = vec![relay.addr().to_string()];
        let remote = Remote::from_bundle(&via_relay)?;
        let cpu_before = store_tid.map(other_thread_cpu).transpose()?;
        // What `sync_once` runs (connect, session, wait for the close), without its retry
        // loop, so that the connection's own statistics can be read.
        let t = Instant::now();
        let (r, quic, until_session_end) =
            tokio::time::timeout(Duration::from_secs(SYNC_TIMEOUT_S), async {
                let (endpoint, conn) = connect(&remote).await?;
                let (_keep, mut stop) = tokio::sync::watch::channel(false);
                let r = session(&conn, &mut l.store, &clock, false, &mut stop).await;
                let done = t.elapsed();
                let quic = conn.stats();
                tournee_agent::sync::wait_closed(&endpoint).await;
                r.map(|r| (r, quic, done))
            })
            .await
            .with_context(|| format!("reconnection of {} timed out", l.name))?
            .with_context(|| format!("reconnection of {}", l.name))?;
        let wall = t.elapsed();
        let store_cpu = match (store_tid, cpu_before) {
            (Some(tid), Some(before)) => Some(other_thread_cpu(tid)?.saturating_sub(before)),
            _ => None,
        };
        let stats = l.store.stats()?;
        ensure!(
            stats.pending == 0 && r.stats.rejected == 0,
            "{}: {} change(s) still pending, {} rejected after reconnecting",
            l.name,
            stats.pending,
            r.stats.rejected
        );
        sessions.push(Session {
            field_writes: pending,
            report: r,
            wall,
            udp_up: relay
                .stats()
                .up_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
            udp_down: relay
                .stats()
                .down_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
            store_cpu,
            quic,
            until_session_end,
        });
    }

    // Everyone syncs once more; then every laptop must hold exactly the server's state.
    for l in &mut laptops {
        let remote = Remote::from_bundle(&l.bundle)?;
        sync_once(&mut l.store, &remote, &clock, SYNC_TIMEOUT_S)
            .await
            .with_context(|| format!("final sync of {}", l.name))?;
    }
    let mut converged = true;
    {
        let server_view = tournee_report::facts::open_server_store(&data.store())?;
        for l in &laptops {
            let id = l.store.identity()?.context("laptop identity")?;
            let mine = export::digest(&l.store, Some(&id.scopes()))?;
            let theirs = export::digest(&server_view, Some(&id.scopes()))?;
            converged &= mine == theirs;
        }
    }
    server.shutdown().await;

    // The replays, on the server's state as each laptop found it, on an otherwise idle process.
    let mut rows = Vec::with_capacity(LAPTOPS);
    let mut server_db = replay_dir.join("server-0.sqlite");
    let mut reconnections = Reconnections {
        server_dir: data.root().to_path_buf(),
        config: config.clone(),
        sync_at: time.sync_at,
        laptops: Vec::with_capacity(LAPTOPS),
    };
    for (k, l) in laptops.iter().enumerate() {
        let laptop_db = replay_dir.join(format!("laptop-{}.sqlite", k + 1));
        reconnections.laptops.push(Reconnection {
            name: l.name.clone(),
            bundle: l.bundle.clone(),
            server_db: server_db.clone(),
            laptop_db: laptop_db.clone(),
        });
        let device = DeviceAuth {
            actor: l.bundle.device,
            unit: UNIT.into(),
            territory: TERRITORY.into(),
        };
        let names = unit_device_names(&data.registry(), UNIT)?;
        let replays = replay_all(
            &replay_dir,
            k,
            &server_db,
            &laptop_db,
            (&device, &names),
            &time,
        )?;
        server_db = replays.next_server.clone();
        rows.push(push_rows(report, k, l, &sessions[k], &deltas[k], &replays));
    }
    report.push(
        json!({
            "bench": "w1.converged",
            "what": "after a second sync of every laptop, each laptop's digest equals the server's for its scope",
            "converged": converged,
            "informational": true,
            "ok": converged,
        }),
        if converged {
            "all digests equal".into()
        } else {
            "DIGESTS DIFFER".into()
        },
        "equal".into(),
    );

    // The stream and the server's final values, for comparisons with other CRDTs.
    let streams = Streams {
        server: server_stream,
        laptops: laptops
            .iter_mut()
            .map(|l| std::mem::take(&mut l.days))
            .collect(),
    };
    let mut written: BTreeMap<Uuid, BTreeSet<Field>> = BTreeMap::new();
    for act in streams
        .server
        .iter()
        .chain(streams.laptops.iter().flatten().flatten())
    {
        for (id, _, sets) in &act.edits {
            written
                .entry(*id)
                .or_default()
                .extend(sets.iter().map(|(f, _)| *f));
        }
    }
    let server_view = tournee_report::facts::open_server_store(&data.store())?;
    let mut dump = BTreeMap::new();
    for (id, fields) in &written {
        let record = server_view
            .record(*id)?
            .context("a written record is gone")?;
        let values: BTreeMap<String, serde_json::Value> = fields
            .iter()
            .map(|f| {
                let v = record
                    .value(*f)
                    .map_or(serde_json::Value::Null, Value::to_json);
                (f.code().to_owned(), v)
            })
            .collect();
        dump.insert(*id, values);
    }
    server_view.vacuum()?;
    let appointments = server_view.ids_of_kind(Kind::Appointment, None)?.len();
    let server_bytes_per_appointment =
        server_view.bytes_used()? as f64 / appointments.max(1) as f64;
    Ok(Outcome {
        streams,
        rows,
        dump,
        server_bytes_per_appointment,
        converged,
        reconnections,
    })
}

/// The scheduler's appointments of the unit, written on the server before the week (big
/// actions, as the scheduler's tools do). Returns their ids.
fn load_server(
    data: &DataDir,
    seed: u64,
    count: usize,
    now: WallMs,
) -> Result<(Vec<Uuid>, Vec<Act>)> {
    let mut store = tournee_report::facts::open_server_store(&data.store())?;
    let mut rng = SeededRng::new(seed ^ 0x5E4F_0000_0000_0001);
    load_unit(&mut store, UNIT, &mut rng, count, now)
}

/// The scheduler's appointments of `unit`, planned over the coming two months (30 % with a
/// note), written on the server in actions of at most `SCHEDULER_ACTION_CHANGES_MAX` changes as
/// W1's load does. Returns their ids and one `Act` per appointment.
pub(crate) fn load_unit(
    store: &mut SqliteStore,
    unit: &str,
    rng: &mut SeededRng,
    count: usize,
    now: WallMs,
) -> Result<(Vec<Uuid>, Vec<Act>)> {
    let mut ids = Vec::with_capacity(count);
    let mut acts = Vec::with_capacity(count);
    let mut action = LocalAction::default();
    let mut changes = 0;
    for _ in 0..count {
        let with_note = rng.chance_percent(30);
        let a = new_appointment(rng, now, 60, with_note);
        let (id, one) = add_appointment_in(unit, store, rng, now, &a)?;
        acts.push(Act::of(now, &one));
        let n: usize = one.edits.iter().map(|e| e.sets.len()).sum();
        if changes + n > SCHEDULER_ACTION_CHANGES_MAX {
            store.write_local(now, &std::mem::take(&mut action))?;
            changes = 0;
        }
        action.edits.extend(one.edits);
        changes += n;
        ids.push(id);
    }
    if !action.edits.is_empty() {
        store.write_local(now, &action)?;
    }
    Ok((ids, acts))
}

/// What a device does in a day, in time order.
enum Event {
    Create(usize),
    Reschedule(usize),
    Status(usize),
    Note(usize),
    Older,
}

/// Record → fields a device changed.
pub(crate) type Touched = BTreeMap<Uuid, BTreeSet<Field>>;

/// One device's working day (W1's): `per_day` new appointments of `unit`, each perhaps
/// rescheduled, given a status and a note later that day, and `per_day / 5` (at least one)
/// edits of `older` appointments, written through the product's action builders in time
/// order. Returns the day's acts and the appointments created; `touched` collects the fields.
#[allow(clippy::too_many_arguments)]
pub(crate) fn work_day(
    store: &mut SqliteStore,
    touched: &mut Touched,
    unit: &str,
    rng: &mut SeededRng,
    start: WallMs,
    per_day: usize,
    older: &[Uuid],
) -> Result<(Vec<Act>, Vec<Uuid>)> {
    let step = DAY_LENGTH_S * 1000 / per_day as i64;
    let at = |offset_ms: i64| start.saturating_add_signed(offset_ms);
    let mut events: Vec<(WallMs, Event)> = Vec::new();
    for i in 0..per_day {
        let t = i as i64 * step;
        events.push((at(t), Event::Create(i)));
        let later = |rng: &mut SeededRng| at(t + 60_000 * (1 + rng.below(240) as i64));
        if rng.chance_percent(RESCHEDULE_PCT) {
            events.push((later(rng), Event::Reschedule(i)));
        }
        if rng.chance_percent(STATUS_PCT) {
            events.push((later(rng), Event::Status(i)));
        }
        if rng.chance_percent(NOTE_PCT) {
            events.push((later(rng), Event::Note(i)));
        }
    }
    for _ in 0..(per_day * OLD_EDITS_PER_FIVE / 5).max(1) {
        let t = rng.below(DAY_LENGTH_S as u64 * 1000) as i64;
        events.push((at(t), Event::Older));
    }
    events.sort_by_key(|(t, _)| *t);
    let mut today: Vec<Uuid> = Vec::with_capacity(per_day);
    let mut acts: Vec<Act> = Vec::with_capacity(events.len());
    for (now, event) in events {
        let (id, field) = match event {
            Event::Create(i) => {
                ensure!(i == today.len(), "appointments are created in order");
                let a = new_appointment(rng, now, 21, false);
                let (id, action) = add_appointment_in(unit, store, rng, now, &a)?;
                store.write_local(now, &action)?;
                acts.push(Act::of(now, &action));
                for e in &action.edits {
                    touched
                        .entry(e.id)
                        .or_default()
                        .extend(e.sets.iter().map(|(f, _)| *f));
                }
                today.push(id);
                continue;
            }
            Event::Reschedule(i) | Event::Status(i) | Event::Note(i) => {
                let id = *today.get(i).context("an edit before its appointment")?;
                let (field, value) = match event {
                    Event::Reschedule(_) => (Field::Start, Value::Int(slot_after(rng, now, 21))),
                    Event::Status(_) => (Field::Status, outcome(rng)),
                    _ => (Field::Note, note(rng)),
                };
                acts.push(Act::of(now, &edit(store, now, id, field, value)?));
                (id, field)
            }
            Event::Older => {
                let id = *rng.pick(older);
                let (field, value) = match rng.below(10) {
                    0..=3 => (Field::Status, outcome(rng)),
                    4..=6 => (Field::Start, Value::Int(slot_after(rng, now, 42))),
                    _ => (Field::Note, note(rng)),
                };
                acts.push(Act::of(now, &edit(store, now, id, field, value)?));
                (id, field)
            }
        };
        touched.entry(id).or_default().insert(field);
    }
    Ok((acts, today))
}

/// The offline week of a laptop of the bench's unit, day by day (edits of older appointments
/// go to the server's `shared` ones).
fn offline_week(
    l: &mut Laptop,
    rng: &mut SeededRng,
    time: &Timeline,
    sizes: Sizes,
    shared: &[Uuid],
) -> Result<()> {
    ensure!(
        sizes.old_edits_per_day == (sizes.per_day * OLD_EDITS_PER_FIVE / 5).max(1),
        "the shared edits a day follow the day's size"
    );
    for d in 0..DAYS {
        let (acts, _) = work_day(
            &mut l.store,
            &mut l.touched,
            UNIT,
            rng,
            time.day_start(d),
            sizes.per_day,
            shared,
        )?;
        l.days.push(acts);
    }
    Ok(())
}

/// The floor a sync of this laptop can be compared with: for each record it changed, the final
/// values of the fields it changed, no CRDT metadata, compact JSON, deflated. The canonical JSON
/// of the same records (every field, siblings with HLC, device and counter) is kept beside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delta {
    pub(crate) records: usize,
    pub(crate) fields: usize,
    pub(crate) json_bytes: usize,
    pub(crate) deflated: usize,
    pub(crate) canonical_deflated: usize,
}

pub(crate) fn net_delta(l: &Laptop) -> Result<Delta> {
    let mut compact = Vec::with_capacity(l.touched.len());
    let mut canonical = Vec::with_capacity(l.touched.len());
    let mut fields = 0;
    for (id, written) in &l.touched {
        let record = l.store.record(*id)?.context("a touched record is gone")?;
        let mut values = serde_json::Map::new();
        for f in written {
            let v = record
                .value(*f)
                .map_or(serde_json::Value::Null, Value::to_json);
            values.insert(f.code().to_owned(), v);
        }
        fields += written.len();
        compact.push(json!([id.to_string(), record.kind.code(), values]));
        canonical.push(record.canonical_json());
    }
    let json_bytes = serde_json::to_vec(&compact)?;
    Ok(Delta {
        records: l.touched.len(),
        fields,
        json_bytes: json_bytes.len(),
        deflated: deflated_len(&json_bytes)?,
        canonical_deflated: deflated_len(&serde_json::to_vec(&canonical)?)?,
    })
}

/// One real reconnection.
struct Session {
    field_writes: u64,
    report: tournee_agent::sync::Report,
    wall: Duration,
    udp_up: u64,
    udp_down: u64,
    /// CPU time of the server's store thread during the session, when the thread was found.
    store_cpu: Option<Duration>,
    /// The client connection's QUIC statistics at the end of the session.
    quic: quinn::ConnectionStats,
    /// From the start of the connection to the end of the session (before the close drains).
    until_session_end: Duration,
}

/// The server-side cost of one replayed session.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ServerCost {
    /// Thread CPU of `ServerPump::handle_read`: decoding frames, `handle_messages`
    /// (authorization, merge, SQLite, commit).
    pub(crate) read: Duration,
    /// Thread CPU of `ServerPump::flush`: `fill` (changelog reads) and encoding (and deflating)
    /// frames.
    pub(crate) flush: Duration,
    /// Wall time of the same work (includes waiting for `fsync`).
    pub(crate) wall: Duration,
}

impl ServerCost {
    pub(crate) fn cpu(&self) -> Duration {
        self.read + self.flush
    }
}

/// What a replay saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flow {
    pub(crate) bytes_up: u64,
    pub(crate) bytes_down: u64,
    pub(crate) messages_up: usize,
    pub(crate) messages_down: usize,
    /// Client flights carrying messages, each followed by a wait for the server.
    pub(crate) round_trips: usize,
    /// Hello, Welcome, Ack and UpToDate frames, both ways.
    pub(crate) metadata_bytes: u64,
    pub(crate) changes_up: usize,
    pub(crate) changes_down: usize,
    pub(crate) cost: ServerCost,
    /// Changes the server refused (none expected).
    pub(crate) rejected: usize,
}

/// Replay one laptop's reconnection sans-IO: a `ClientPump` on `laptop_db`, a `ServerPump` on
/// `server_db` (both modified), exchanging the real frames in lockstep.
///
/// The client sends as `tournee_net::pump::drive_client` does: what the session queued (Hello
/// and the first batches), refilling from the outbox whenever its queue has been written, then
/// after each read of server frames whatever `fill` queues; when it is synced with nothing
/// queued it refills or finishes. Each flight of client frames that has to wait for the
/// server's answer costs one round trip, and reaches the server as one read. `names` are the
/// unit's device names the real server's Welcome carried.
///
/// The server's side is timed: `handle_read` for the flight (frames decoded, one store
/// transaction per flight of batches, as `serve` does when one read completes them), then
/// `flush` (`fill` until nothing is left, frames encoded), the pump `serve` runs.
pub(crate) fn replay(
    server_db: &Path,
    laptop_db: &Path,
    device: &DeviceAuth,
    names: &[(u32, String)],
    now: WallMs,
    warm: bool,
) -> Result<Flow> {
    let mut server = tournee_report::facts::open_server_store(server_db)?;
    let mut laptop = SqliteStore::open(laptop_db)?;
    if warm {
        warm_up(&mut server, now)?;
    }
    let mut flow = Flow::default();
    let mut client = ClientPump::new(&laptop)?;
    // The Welcome the real server sent named the unit's devices: so does the replay's.
    let session = ServerSession::new(device.clone(), now).with_device_names(names.iter().cloned());
    let mut pump = ServerPump::new(session);
    let mut finished = false;
    for _ in 0..1_000 {
        // The client's flight.
        let mut up: Vec<u8> = Vec::new();
        let mut sent = 0;
        loop {
            // The agent refills its queue whenever what it queued has been written.
            let mut drained = 0;
            client.fill(&laptop)?;
            while let Some(f) = client.poll_transmit() {
                match decode_one::<ClientMsg>(&f)? {
                    ClientMsg::Changes { batch, .. } => flow.changes_up += batch.len(),
                    ClientMsg::Hello { .. } | ClientMsg::Rebased => {
                        flow.metadata_bytes += f.len() as u64
                    }
                }
                up.extend_from_slice(&f);
                drained += 1;
            }
            sent += drained;
            if drained > 0 {
                continue;
            }
            if !finished && client.ready_to_finish(&laptop)? {
                finished = true;
            } else if client.has_pending_transmit() {
                continue;
            }
            break;
        }
        if sent == 0 {
            if finished {
                return Ok(flow);
            }
            bail!("replay stalled: the client waits with nothing sent");
        }
        flow.round_trips += 1;
        flow.messages_up += sent;
        flow.bytes_up += up.len() as u64;

        // The server's turn, timed.
        let wall = Instant::now();
        let c0 = thread_cpu()?;
        pump.handle_read(now, &up, &mut server)?;
        let c1 = thread_cpu()?;
        let mut frames: Vec<Vec<u8>> = Vec::new();
        pump.flush(&server, |f| frames.push(f))?;
        let c2 = thread_cpu()?;
        flow.cost.wall += wall.elapsed();
        flow.cost.read += c1.saturating_sub(c0);
        flow.cost.flush += c2.saturating_sub(c1);

        // The client takes the answers, as one read.
        let mut down = Vec::new();
        for f in &frames {
            flow.bytes_down += f.len() as u64;
            flow.messages_down += 1;
            match decode_one::<ServerMsg>(f)? {
                ServerMsg::Changes { batch, .. } => flow.changes_down += batch.len(),
                ServerMsg::Ack { rejected, .. } => {
                    flow.rejected += rejected.len();
                    flow.metadata_bytes += f.len() as u64;
                }
                _ => flow.metadata_bytes += f.len() as u64,
            }
            down.extend_from_slice(f);
        }
        if !down.is_empty() {
            client.handle_read(now, &down, &mut laptop)?;
        }
    }
    bail!("replay did not finish in 1000 flights")
}

/// The message in one whole frame, for the replay's accounting (not part of the timed work).
fn decode_one<T: serde::de::DeserializeOwned>(f: &[u8]) -> Result<T> {
    let mut r = FrameReader::new();
    r.push(f)?;
    r.next_msg()?.context("a whole frame")
}

/// A short session of another device of the unit on the same connection (Hello and a batch
/// creating one appointment), so the measured session finds SQLite's statement cache and upper
/// B-tree pages as a long-running server has them.
fn warm_up(server: &mut SqliteStore, now: WallMs) -> Result<()> {
    let mut other = SqliteStore::open_in_memory()?;
    other.set_identity(&Identity {
        device: WARMUP_ACTOR,
        unit: UNIT.into(),
        territory: TERRITORY.into(),
    })?;
    let mut rng = SeededRng::new(now);
    let a = new_appointment(&mut rng, now - 60_000, 7, true);
    let (_, action) = add_appointment(&other, &mut rng, now - 60_000, &a)?;
    other.write_local(now - 60_000, &action)?;
    let changes: Vec<_> = other
        .outbox_after(0, 100)?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let device = DeviceAuth {
        actor: WARMUP_ACTOR,
        unit: UNIT.into(),
        territory: TERRITORY.into(),
    };
    let mut pump = ServerPump::new(ServerSession::new(device, now));
    let head = server.changelog_head()?;
    let mut bytes = frame::encode(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        cursor: head,
        acked: 0,
        last: 0,
        chain: [0; 16],
        own: false,
        epoch: server.epoch()?,
        about: tournee_proto::wire::AgentAbout::default(),
    });
    for batch in pack(&changes) {
        bytes.extend(frame::encode(&ClientMsg::Changes {
            first_seq: 1,
            batch,
        }));
    }
    pump.handle_read(now, &bytes, server)?;
    pump.flush(server, drop)?;
    Ok(())
}

/// The replays of one laptop's session.
struct Replays {
    /// The cold replay: fresh connection, as the real session's byte check.
    cold: Flow,
    /// Warm replays, in run order.
    warm: Vec<Flow>,
    /// The server's state after this laptop's session (the next laptop's starting point).
    next_server: PathBuf,
}

fn replay_all(
    dir: &Path,
    k: usize,
    server_db: &Path,
    laptop_db: &Path,
    (device, names): (&DeviceAuth, &[(u32, String)]),
    time: &Timeline,
) -> Result<Replays> {
    let fresh = |tag: &str| -> Result<(PathBuf, PathBuf)> {
        let s = dir.join(format!("run-server-{}-{tag}.sqlite", k + 1));
        let l = dir.join(format!("run-laptop-{}-{tag}.sqlite", k + 1));
        copy_db(server_db, &s)?;
        copy_db(laptop_db, &l)?;
        Ok((s, l))
    };
    let remove = |p: &Path| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    };
    let (s, l) = fresh("cold")?;
    let cold = replay(&s, &l, device, names, time.sync_at, false)?;
    remove(&l);
    let next_server = s;
    let mut warm = Vec::with_capacity(REPLAY_RUNS);
    for run in 0..REPLAY_RUNS {
        let (s, l) = fresh(&format!("warm{run}"))?;
        warm.push(replay(&s, &l, device, names, time.sync_at, true)?);
        remove(&s);
        remove(&l);
    }
    Ok(Replays {
        cold,
        warm,
        next_server,
    })
}

fn push_rows(
    report: &mut Report,
    k: usize,
    l: &Laptop,
    s: &Session,
    delta: &Delta,
    replays: &Replays,
) -> OursRow {
    let name = &l.name;
    let r = &s.report;
    let ratio = r.bytes_out as f64 / delta.deflated.max(1) as f64;
    let udp_ratio = s.udp_up as f64 / delta.deflated.max(1) as f64;
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    report.push(
        json!({
            "bench": format!("w1.{name}.bytes_up"),
            "what": "stream payload bytes the agent sent (frames), over the deflated net delta of its week",
            "bytes_up": r.bytes_out,
            "udp_bytes_up": s.udp_up,
            "deflated_delta_bytes": delta.deflated,
            "delta_json_bytes": delta.json_bytes,
            "delta_records": delta.records,
            "delta_fields": delta.fields,
            "canonical_json_deflated_bytes": delta.canonical_deflated,
            "field_writes": s.field_writes,
            "ratio": round(ratio),
            "udp_ratio": round(udp_ratio),
            "target_ratio": TARGET_BYTES_RATIO,
            "ok_udp": udp_ratio <= TARGET_BYTES_RATIO,
            "ok": ratio <= TARGET_BYTES_RATIO,
        }),
        format!(
            "{} up = {:.2}x delta {} (UDP {} = {:.2}x)",
            kb(r.bytes_out),
            ratio,
            kb(delta.deflated as u64),
            kb(s.udp_up),
            udp_ratio
        ),
        format!("<= {TARGET_BYTES_RATIO}x deflated delta"),
    );

    let cold = &replays.cold;
    report.push(
        json!({
            "bench": format!("w1.{name}.round_trips"),
            "what": "client flights of messages after the QUIC handshake, each waiting for the server (sans-IO replay of the session with the agent's sending rules)",
            "round_trips": cold.round_trips,
            "messages_up": cold.messages_up,
            "messages_down": cold.messages_down,
            "batches_up": r.stats.batches_out,
            "closing": "then FIN both ways: one more round trip before sync_once returns, carrying no data",
            "target_round_trips": TARGET_ROUND_TRIPS,
            "ok": cold.round_trips <= TARGET_ROUND_TRIPS,
        }),
        format!(
            "{} ({} messages up, {} down)",
            cold.round_trips, cold.messages_up, cold.messages_down
        ),
        format!("<= {TARGET_ROUND_TRIPS}"),
    );

    let mut cpu: Vec<Duration> = replays.warm.iter().map(|f| f.cost.cpu()).collect();
    cpu.sort_unstable();
    let mut wall: Vec<Duration> = replays.warm.iter().map(|f| f.cost.wall).collect();
    wall.sort_unstable();
    let med = |f: fn(&ServerCost) -> Duration| {
        let mut v: Vec<Duration> = replays.warm.iter().map(|x| f(&x.cost)).collect();
        v.sort_unstable();
        ms(percentile(&v, 50.0))
    };
    let p50 = percentile(&cpu, 50.0);
    let ok = ms(p50) <= TARGET_SERVER_CPU_MS;
    let changes = cold.changes_up + cold.changes_down;
    report.push(
        json!({
            "bench": format!("w1.{name}.server_cpu"),
            "what": "server thread CPU of one session replayed sans-IO on a synchronous=FULL file store after a warm-up session: the pump's handle_read (frame decode + handle_messages) + flush (fill + frame encode) (no QUIC/TLS), p50",
            "cpu_ms_p50": ms(p50),
            "cpu_ms_max": ms(cpu.last().copied().unwrap_or_default()),
            "read_ms_p50": med(|c| c.read),
            "flush_ms_p50": med(|c| c.flush),
            "wall_ms_p50": ms(percentile(&wall, 50.0)),
            "cold_cpu_ms": ms(cold.cost.cpu()),
            "cold_wall_ms": ms(cold.cost.wall),
            "real_session_store_thread_cpu_ms": s.store_cpu.map(ms),
            "changes_up": cold.changes_up,
            "changes_down": cold.changes_down,
            "us_per_change": (us_f(p50) / changes.max(1) as f64 * 10.0).round() / 10.0,
            "runs": replays.warm.len(),
            "target_cpu_ms": TARGET_SERVER_CPU_MS,
            "ok": ok,
        }),
        format!(
            "p50 {:.1} ms CPU ({:.1} ms wall; real store thread {})",
            ms(p50),
            ms(percentile(&wall, 50.0)),
            s.store_cpu
                .map_or_else(|| "n/a".to_owned(), |d| format!("{:.1} ms", ms(d)))
        ),
        format!("<= {TARGET_SERVER_CPU_MS} ms"),
    );

    let same_up = cold.bytes_up == r.bytes_out;
    report.push(
        json!({
            "bench": format!("w1.{name}.session"),
            "what": "the real reconnection (the agent's connect + session + wait_closed, as sync_once runs them, over loopback QUIC through a fault-free relay counting UDP bytes)",
            "order": k + 1,
            "bytes_up": r.bytes_out,
            "bytes_down": r.bytes_in,
            "udp_bytes_up": s.udp_up,
            "udp_bytes_down": s.udp_down,
            "changes_up": r.stats.changes_out,
            "changes_down": r.stats.changes_in,
            "applied_down": r.stats.applied,
            "batches_up": r.stats.batches_out,
            "batches_down": r.stats.batches_in,
            "wall_ms": ms(s.wall),
            "connect_and_session_ms": ms(s.until_session_end),
            "quic_client": {
                "udp_datagrams_up": s.quic.udp_tx.datagrams,
                "udp_bytes_up": s.quic.udp_tx.bytes,
                "udp_datagrams_down": s.quic.udp_rx.datagrams,
                "udp_bytes_down": s.quic.udp_rx.bytes,
                "ack_frames_up": s.quic.frame_tx.acks,
                "crypto_frames_up": s.quic.frame_tx.crypto,
                "stream_frames_up": s.quic.frame_tx.stream,
                "ping_frames_up": s.quic.frame_tx.ping,
                "max_data_frames_up": s.quic.frame_tx.max_data + s.quic.frame_tx.max_stream_data,
                "packets_sent": s.quic.path.sent_packets,
                "mtu_probes_sent": s.quic.path.sent_plpmtud_probes,
                "mtu": s.quic.path.current_mtu,
                "lost_packets": s.quic.path.lost_packets,
                "rtt_us": s.quic.path.rtt.as_micros() as u64,
            },
            "metadata_bytes": cold.metadata_bytes,
            "replay_bytes_up": cold.bytes_up,
            "replay_bytes_down": cold.bytes_down,
            "replay_bytes_up_equal": same_up,
            "informational": true,
            "ok": same_up,
        }),
        format!(
            "up {} / down {} ({} / {} changes), UDP {} / {}, {:.0} ms ({:.0} to session end)",
            kb(r.bytes_out),
            kb(r.bytes_in),
            r.stats.changes_out,
            r.stats.changes_in,
            kb(s.udp_up),
            kb(s.udp_down),
            ms(s.wall),
            ms(s.until_session_end)
        ),
        "replay sends the same bytes".into(),
    );
    OursRow {
        bytes_up: r.bytes_out,
        bytes_down: r.bytes_in,
        deflated_delta: delta.deflated,
        messages_up: cold.messages_up,
        messages_down: cold.messages_down,
        round_trips: cold.round_trips,
        server_cpu_ms_p50: ms(p50),
    }
}

fn us_f(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000_000.0
}

/// The names of `unit`'s devices in the registry at `registry`, as `serve` sends them in
/// Welcome (so a replay's bytes equal the real session's).
pub(crate) fn unit_device_names(registry: &Path, unit: &str) -> Result<Vec<(u32, String)>> {
    Ok(Registry::open(registry)?
        .devices()?
        .into_iter()
        .filter(|d| d.unit == unit)
        .map(|d| (d.actor, d.name))
        .collect())
}
