//! Workload `w2` (issue 6), the reconnect storm: `N` devices (three per unit, as W1's), each
//! with a W1-sized week of offline work, reconnect within the same second to one server. The
//! server is the real `serve` code in a process of its own (this binary re-run with
//! `--storm-role server`, default configuration, admission control on); the devices are
//! driven from `STORM_CLIENT_PROCESSES` other processes (`--storm-role client`), each one
//! QUIC endpoint with one connection per device, every device with its own certificate.
//!
//! Each device's backlog is real: its store (in memory, as `tournee-agent init` sets it up)
//! receives its unit's planned appointments, then the week is written through the product's
//! action builders, and the flight the agent would send on reconnecting (Hello and every
//! batch, framed by the real `ClientSession`) is recorded. What it deliberately does not do:
//! a storm client sends that recorded flight instead of running a store, then reads and
//! decodes the server's answers without applying them (the agent's apply is the `store`
//! workload's bulk figure); it counts a device synced when, as `ClientSession::is_synced`
//! decides, its last change is acknowledged and the server has said `UpToDate`.
//!
//! Measured: time from the storm's start until every device is synced, each device's time
//! from its own start to synced (p50/p99/max), failures, the server process's CPU and peak
//! RSS (`VmHWM`), bytes each way. Checked afterwards on the server's file: every device's
//! acknowledged sequence equals its last change and the changelog grew by exactly the
//! changes sent (nothing lost, nothing applied twice).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tournee_agent::setup::identity_of;
use tournee_agent::sync::Remote;
use tournee_core::clock::{Clock, SystemClock, WallMs};
use tournee_core::limits::CONNECT_TIMEOUT_MS;
use tournee_core::model::Scope;
use tournee_core::rng::SeededRng;
use tournee_core::store::{ServerStore, Store};
use tournee_net::bundle::Bundle;
use tournee_net::tls;
use tournee_proto::frame::{self, FrameReader};
use tournee_proto::session::ClientSession;
use tournee_proto::wire::{ClientMsg, ServerMsg};
use tournee_server::admin;
use tournee_server::config::DataDir;
use tournee_server::registry::{Registry, Unit};
use tournee_server::serve;
use tournee_store::SqliteStore;
use uuid::Uuid;

use super::w1::{self, Touched};
use super::{kb, load_average, ms, percentile, Report, TERRITORY};

/// Devices at full size (the brief's storm).
pub const DEFAULT_DEVICES: usize = 2_000;
/// Devices with `--quick`.
pub const QUICK_DEVICES: usize = 12;
/// Devices per unit (W1's three laptops).
const DEVICES_PER_UNIT: usize = 3;
/// Appointments the scheduler planned for each unit before the week (the devices' shared,
/// older appointments). W1 starts its single unit with 2,000; 700 units of 2,000 would make
/// the preload, not the storm, the run's cost.
const UNIT_APPOINTMENTS: usize = 100;
/// Days of offline work per device (W1's week).
const DAYS: i64 = 7;
/// Processes driving the devices.
const STORM_CLIENT_PROCESSES: usize = 2;
/// The devices' reconnections are spread evenly over this window ("within the same second").
const STORM_SPREAD_MS: u64 = 1_000;
/// Delay between telling the clients to go and the storm's first reconnection.
const STORM_LEAD_MS: u64 = 300;
/// The storm is abandoned after this long.
const STORM_TIMEOUT_S: u64 = 600;
/// How long a client process may take to load its devices.
const CLIENT_READY_TIMEOUT_S: u64 = 120;
/// Salt of the devices' generator seeds.
const DEVICE_STREAM_SALT: u64 = 0x5707_3D00_0000_0000;
/// Threads building the devices' backlogs.
const PREPARE_THREADS: usize = 2;

/// §6 targets.
const TARGET_ALL_SYNCED_S: f64 = 10.0;
const TARGET_P99_S: f64 = 5.0;
const TARGET_RSS_MB: f64 = 256.0;

/// One device as a storm client needs it.
#[derive(Debug, Serialize, Deserialize)]
struct DeviceFlight {
    /// Index of the device in the storm (its start offset).
    index: usize,
    /// The enrolment bundle (JSON).
    bundle: String,
    /// Hello and every batch, framed, as the agent sends them on reconnecting.
    flight: Vec<u8>,
    /// The device's last local sequence number: synced once it is acknowledged.
    last_seq: u64,
    /// Changes in the flight.
    changes: u64,
}

/// What a storm client reports for one device.
#[derive(Debug, Serialize, Deserialize)]
struct DeviceOutcome {
    index: usize,
    /// Error, when the device did not sync.
    error: Option<String>,
    /// From the storm's start to this device's start, ms.
    started_ms: f64,
    /// From this device's start to the handshake's end, ms.
    connected_ms: f64,
    /// From this device's start to synced, ms.
    synced_ms: f64,
    bytes_up: u64,
    bytes_down: u64,
    changes_down: u64,
}

/// What a storm client reports about itself at the end.
#[derive(Debug, Serialize, Deserialize)]
struct ClientTotals {
    cpu_ms: f64,
}

fn part_file(dir: &Path, part: usize) -> PathBuf {
    dir.join(format!("devices-{part}.postcard"))
}

/// Run the storm with `devices` devices, each with `per_day` new appointments a day.
pub(crate) fn run(
    report: &mut Report,
    seed: u64,
    devices: usize,
    per_day: usize,
    keep: bool,
) -> Result<()> {
    ensure!(devices >= 1, "--n (devices) must be at least 1 for w2");
    ensure!(per_day >= 1, "w2 needs at least one appointment a day");
    let dir = tempfile::tempdir().context("creating the temporary directory")?;
    let units = devices.div_ceil(DEVICES_PER_UNIT);
    eprintln!(
        "w2: seed {seed}, {devices} devices in {units} units, each {DAYS} days x {per_day} new appointments offline, {UNIT_APPOINTMENTS} planned appointments per unit; {STORM_CLIENT_PROCESSES} client processes; files in {}; load average {}",
        dir.path().display(),
        load_average()
    );
    let result = storm(report, seed, devices, per_day, dir.path());
    if keep {
        eprintln!("w2: files kept in {}", dir.keep().display());
    }
    result
}

fn storm(
    report: &mut Report,
    seed: u64,
    devices: usize,
    per_day: usize,
    root: &Path,
) -> Result<()> {
    let t = Instant::now();
    let data = DataDir::new(root.join("server"));
    let listen: SocketAddr = format!("127.0.0.1:{}", w1::free_port()?).parse()?;
    // The product's defaults, admission control included.
    let config = admin::init_server(
        &data,
        &SystemClock,
        listen,
        Vec::new(),
        ([127, 0, 0, 1], 0).into(),
    )?;

    // Units, their planned appointments (on the server's store, as the scheduler writes them)
    // and the devices' enrolments.
    let now = SystemClock.now_ms();
    let week_start = now - (DAYS as u64 + 1) * 86_400_000;
    let registry = Registry::open(&data.registry())?;
    let mut server = tournee_report::facts::open_server_store(&data.store())?;
    let mut rng = SeededRng::new(seed ^ 0x57_0E3A);
    let mut planned: Vec<Vec<Uuid>> = Vec::new();
    let mut bundles = Vec::with_capacity(devices);
    for u in 0..devices.div_ceil(DEVICES_PER_UNIT) {
        let unit = format!("storm-{u:04}");
        registry.add_unit(&Unit {
            id: unit.clone(),
            name: format!("Bus France services {unit}"),
            territory: TERRITORY.into(),
            kind: "bus".into(),
        })?;
        let (ids, _) = w1::load_unit(
            &mut server,
            &unit,
            &mut rng,
            UNIT_APPOINTMENTS,
            week_start - 86_400_000,
        )?;
        planned.push(ids);
        for k in 0..DEVICES_PER_UNIT {
            if bundles.len() == devices {
                break;
            }
            let name = format!("{unit}-laptop-{}", k + 1);
            bundles.push((u, admin::enroll_device(&data, &SystemClock, &unit, &name)?));
        }
    }
    drop(registry);
    let preload_head = server.changelog_head()?;
    let setup_s = t.elapsed().as_secs_f64();

    // Each device's week and recorded flight, on PREPARE_THREADS threads.
    let t = Instant::now();
    let server = std::sync::Mutex::new(server);
    let jobs: Vec<(usize, usize, Bundle)> = bundles
        .into_iter()
        .enumerate()
        .map(|(i, (u, b))| (i, u, b))
        .collect();
    let mut flights: Vec<DeviceFlight> =
        std::thread::scope(|scope| -> Result<Vec<DeviceFlight>> {
            let handles: Vec<_> = (0..PREPARE_THREADS)
                .map(|th| {
                    let jobs = &jobs;
                    let planned = &planned;
                    let server = &server;
                    scope.spawn(move || -> Result<Vec<DeviceFlight>> {
                        let mut out = Vec::new();
                        for (i, u, bundle) in jobs.iter().skip(th).step_by(PREPARE_THREADS) {
                            out.push(prepare(
                                seed,
                                *i,
                                bundle,
                                &planned[*u],
                                server,
                                preload_head,
                                week_start,
                                per_day,
                            )?);
                        }
                        Ok(out)
                    })
                })
                .collect();
            let mut all = Vec::new();
            for h in handles {
                all.extend(
                    h.join()
                        .map_err(|_| anyhow::anyhow!("a preparing thread panicked"))??,
                );
            }
            Ok(all)
        })?;
    flights.sort_by_key(|f| f.index);
    drop(server);
    let prepare_s = t.elapsed().as_secs_f64();
    let changes_sent: u64 = flights.iter().map(|f| f.changes).sum();
    let expected: BTreeMap<u32, u64> = flights
        .iter()
        .map(|f| -> Result<(u32, u64)> { Ok((Bundle::parse(&f.bundle)?.device, f.last_seq)) })
        .collect::<Result<_>>()?;
    let bytes_up_flights: u64 = flights.iter().map(|f| f.flight.len() as u64).sum();
    for part in 0..STORM_CLIENT_PROCESSES {
        let mine: Vec<&DeviceFlight> = flights
            .iter()
            .filter(|f| f.index % STORM_CLIENT_PROCESSES == part)
            .collect();
        std::fs::write(part_file(root, part), postcard::to_allocvec(&mine)?)?;
    }
    drop(flights);
    eprintln!(
        "w2: set up in {setup_s:.1} s, {devices} backlogs ({changes_sent} changes, {} of flights) in {prepare_s:.1} s",
        kb(bytes_up_flights)
    );

    // The server process, then the clients; go.
    let exe = std::env::current_exe()?;
    let mut server = Proc::spawn(
        Command::new(&exe)
            .args(["--workload", "w2", "--storm-role", "server", "--storm-dir"])
            .arg(root)
            .stderr(std::fs::File::create(root.join("server.log"))?),
        "server",
    )?;
    let addr = server.ready_line(Duration::from_secs(30))?;
    let mut clients = Vec::new();
    for part in 0..STORM_CLIENT_PROCESSES {
        let mut c = Proc::spawn(
            Command::new(&exe)
                .args(["--workload", "w2", "--storm-role", "client", "--storm-dir"])
                .arg(root)
                .args(["--storm-part", &part.to_string(), "--storm-addr", &addr])
                .args(["--storm-devices", &devices.to_string()])
                .stderr(std::fs::File::create(
                    root.join(format!("client-{part}.log")),
                )?),
            "client",
        )?;
        c.ready_line(Duration::from_secs(CLIENT_READY_TIMEOUT_S))?;
        clients.push(c);
    }
    let cpu_before = process_cpu(server.child.id())?;
    let start_ms = SystemClock.now_ms() + STORM_LEAD_MS;
    for c in &mut clients {
        c.say(&start_ms.to_string())?;
    }
    let mut outcomes: Vec<DeviceOutcome> = Vec::new();
    let mut client_cpu_ms = 0.0;
    for c in &mut clients {
        for line in c.lines(Duration::from_secs(STORM_TIMEOUT_S))? {
            if let Ok(o) = serde_json::from_str::<DeviceOutcome>(&line) {
                outcomes.push(o);
            } else if let Ok(t) = serde_json::from_str::<ClientTotals>(&line) {
                client_cpu_ms += t.cpu_ms;
            }
        }
    }
    let server_cpu = process_cpu(server.child.id())?.saturating_sub(cpu_before);
    let rss_mb = peak_rss_kb(server.child.id())? as f64 / 1024.0;
    server.finish(Duration::from_secs(30))?;
    for c in &mut clients {
        c.finish(Duration::from_secs(30))?;
    }

    // The server's file: every device acknowledged to its last change, each change once.
    let server = tournee_report::facts::open_server_store(&data.store())?;
    let mut unacked = 0usize;
    for (device, last) in &expected {
        if server.device_acked(*device)? != *last {
            unacked += 1;
        }
    }
    let head = server.changelog_head()?;
    let logged_once = head - preload_head == changes_sent;

    let failures: Vec<&DeviceOutcome> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    let mut synced: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.error.is_none())
        .map(|o| Duration::from_secs_f64(o.synced_ms / 1000.0))
        .collect();
    synced.sort();
    let mut connected: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.error.is_none())
        .map(|o| Duration::from_secs_f64(o.connected_ms / 1000.0))
        .collect();
    connected.sort();
    let all_synced_s = outcomes
        .iter()
        .map(|o| (o.started_ms + o.synced_ms) / 1000.0)
        .fold(0.0, f64::max);
    let p50 = percentile(&synced, 50.0).as_secs_f64();
    let p99 = percentile(&synced, 99.0).as_secs_f64();
    let missing = devices.saturating_sub(outcomes.len());
    let zero_failures = failures.is_empty() && missing == 0 && unacked == 0 && logged_once;
    let ok = zero_failures
        && all_synced_s <= TARGET_ALL_SYNCED_S
        && p99 <= TARGET_P99_S
        && rss_mb <= TARGET_RSS_MB;
    let bytes_down: u64 = outcomes.iter().map(|o| o.bytes_down).sum();
    let changes_down: u64 = outcomes.iter().map(|o| o.changes_down).sum();
    let first_error = failures
        .first()
        .and_then(|o| o.error.clone())
        .unwrap_or_default();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    report.push(
        json!({
            "bench": "w2.storm",
            "devices": devices,
            "units": devices.div_ceil(DEVICES_PER_UNIT),
            "per_day": per_day,
            "changes_up": changes_sent,
            "changes_down": changes_down,
            "bytes_up": bytes_up_flights,
            "bytes_down": bytes_down,
            "sessions_max": config.sessions_max,
            "client_processes": STORM_CLIENT_PROCESSES,
            "spread_ms": STORM_SPREAD_MS,
            "all_synced_s": round(all_synced_s),
            "synced_p50_s": round(p50),
            "synced_p99_s": round(p99),
            "synced_max_s": round(synced.last().map_or(0.0, Duration::as_secs_f64)),
            "handshake_p50_ms": ms(percentile(&connected, 50.0)),
            "handshake_p99_ms": ms(percentile(&connected, 99.0)),
            "failures": failures.len() + missing,
            "first_error": first_error,
            "server_unacked_devices": unacked,
            "server_changelog_exact": logged_once,
            "server_changelog_growth": head - preload_head,
            "server_cpu_s": round(server_cpu.as_secs_f64()),
            "server_cpu_ms_per_session": round(server_cpu.as_secs_f64() * 1000.0 / devices as f64),
            "server_peak_rss_mb": round(rss_mb),
            "clients_cpu_s": round(client_cpu_ms / 1000.0),
            "load_average": load_average(),
            "target_all_synced_s": TARGET_ALL_SYNCED_S,
            "target_p99_s": TARGET_P99_S,
            "target_rss_mb": TARGET_RSS_MB,
            "ok": ok,
            "what": "devices reconnecting within one second to a server in its own process (real serve code, admission control); clients in other processes send each device's recorded flight and read until acknowledged and up to date",
        }),
        format!(
            "{devices} devices: all synced in {all_synced_s:.1} s, p50 {p50:.2} s, p99 {p99:.2} s, {} failures; server {:.1} s CPU ({:.1} ms/session), peak RSS {rss_mb:.0} MB",
            failures.len() + missing + unacked,
            server_cpu.as_secs_f64(),
            server_cpu.as_secs_f64() * 1000.0 / devices as f64,
        ),
        format!("<= {TARGET_ALL_SYNCED_S} s, p99 <= {TARGET_P99_S} s, 0 failures, <= {TARGET_RSS_MB} MB"),
    );
    ensure!(
        zero_failures,
        "w2: {} device(s) failed ({first_error}), {missing} unreported, {unacked} not acknowledged on the server, changelog exact: {logged_once}",
        failures.len()
    );
    Ok(())
}

/// Build one device: its store as `tournee-agent init` leaves it, its unit's planned
/// appointments received, a week of offline work, and the flight it sends on reconnecting.
#[allow(clippy::too_many_arguments)]
fn prepare(
    seed: u64,
    index: usize,
    bundle: &Bundle,
    planned: &[Uuid],
    server: &std::sync::Mutex<SqliteStore>,
    preload_head: u64,
    week_start: WallMs,
    per_day: usize,
) -> Result<DeviceFlight> {
    let mut store = SqliteStore::open_in_memory()?;
    let identity = identity_of(bundle);
    store.set_identity(&identity)?;
    let received = {
        let server = server
            .lock()
            .map_err(|_| anyhow::anyhow!("server store lock poisoned"))?;
        let scopes = [
            Scope::Unit(identity.unit.clone()),
            Scope::Territory(identity.territory.clone()),
        ];
        let (entries, scanned) = server.changelog_after(0, &scopes, u32::MAX, usize::MAX)?;
        ensure!(scanned == preload_head, "the unit's plan is read whole");
        entries.into_iter().map(|(_, c)| c).collect::<Vec<_>>()
    };
    for chunk in received.chunks(tournee_core::limits::BATCH_CHANGES_MAX) {
        store.apply_remote(chunk, Some(preload_head))?;
    }
    // A stream per device, seeded from one generator's outputs so devices never share a stream.
    let mut rng =
        SeededRng::new(SeededRng::new(seed ^ DEVICE_STREAM_SALT ^ index as u64).next_u64());
    let mut touched = Touched::new();
    let mut older: Vec<Uuid> = planned.to_vec();
    for d in 0..DAYS {
        let start = week_start + d as u64 * 86_400_000 + w1::DAY_START_S as u64 * 1000;
        let (_, created) = w1::work_day(
            &mut store,
            &mut touched,
            &identity.unit,
            &mut rng,
            start,
            per_day,
            &older,
        )?;
        older.extend(created);
    }
    let stats = store.stats()?;
    let mut session = ClientSession::new(&store)?;
    let mut flight = Vec::new();
    let mut changes = 0u64;
    let mut last_seq = 0u64;
    loop {
        session.fill(&store)?;
        let mut sent = 0;
        while let Some(m) = session.poll_transmit() {
            if let ClientMsg::Changes { first_seq, batch } = &m {
                changes += batch.len() as u64;
                last_seq = first_seq + batch.len() as u64 - 1;
            }
            flight.extend_from_slice(&frame::encode(&m));
            sent += 1;
        }
        if sent == 0 {
            break;
        }
    }
    ensure!(
        changes == stats.pending,
        "the flight carries the whole outbox ({changes} of {} changes)",
        stats.pending
    );
    Ok(DeviceFlight {
        index,
        bundle: bundle.to_json(),
        flight,
        last_seq,
        changes,
    })
}

// ---------------------------------------------------------------------------------------------
// The processes

/// A child process of the storm, talking over its stdin/stdout lines.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    what: &'static str,
}

impl Proc {
    fn spawn(cmd: &mut Command, what: &'static str) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the storm's {what}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            stdin: child.stdin.take(),
            child,
            lines,
            what,
        })
    }

    /// The text after `ready ` on the first line the process prints.
    fn ready_line(&mut self, within: Duration) -> Result<String> {
        let line = self
            .lines
            .recv_timeout(within)
            .with_context(|| format!("the storm's {} did not start (see its log)", self.what))?;
        line.strip_prefix("ready ")
            .map(str::to_owned)
            .with_context(|| format!("the storm's {} said {line:?}", self.what))
    }

    fn say(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("child stdin closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Every line until the process closes its stdout.
    fn lines(&mut self, within: Duration) -> Result<Vec<String>> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => out.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(out),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    bail!("the storm's {} did not finish in {within:?}", self.what)
                }
            }
        }
    }

    /// Close its stdin (the signal to stop) and wait for it.
    fn finish(&mut self, within: Duration) -> Result<()> {
        drop(self.stdin.take());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                ensure!(
                    status.success(),
                    "the storm's {} exited with {status}",
                    self.what
                );
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("the storm's {} did not stop", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU time of every thread of a process so far (`/proc/PID/task/*/schedstat`, ns on CPU).
fn process_cpu(pid: u32) -> Result<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        ns += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(Duration::from_nanos(ns))
}

/// Peak resident set size of a process, KiB (`VmHWM`).
fn peak_rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/PID/status")
}

/// `--storm-role server`: the real server on the storm's data dir until stdin closes.
pub(crate) fn serve_role(dir: &Path) -> Result<()> {
    tournee_cli::init_logging("info");
    let data = DataDir::new(dir.join("server"));
    let config = data.load_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = serve::start(&data, &config, Arc::new(SystemClock)).await?;
        println!("ready {}", server.addr());
        std::io::stdout().flush()?;
        // Stop when the bench closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        })
        .await?;
        server.shutdown().await;
        anyhow::Ok(())
    })
}

/// `--storm-role client`: drive this part's devices, one JSON line per device on stdout.
pub(crate) fn client_role(dir: &Path, part: usize, addr: &str, devices: usize) -> Result<()> {
    let flights: Vec<DeviceFlight> = postcard::from_bytes(
        &std::fs::read(part_file(dir, part)).context("reading the devices' flights")?,
    )?;
    let addr: SocketAddr = addr.parse()?;
    let mut prepared = Vec::with_capacity(flights.len());
    for f in flights {
        let remote = Remote::from_bundle(&Bundle::parse(&f.bundle)?)?;
        prepared.push((f, remote.client_config().clone()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let outcomes = runtime.block_on(async move {
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
        println!("ready {}", prepared.len());
        std::io::stdout().flush()?;
        let start_ms: u64 = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await??
        .trim()
        .parse()
        .context("the start time")?;
        let now = SystemClock.now_ms();
        let start =
            tokio::time::Instant::now() + Duration::from_millis(start_ms.saturating_sub(now));
        let mut tasks = tokio::task::JoinSet::new();
        for (f, config) in prepared {
            let endpoint = endpoint.clone();
            let offset = Duration::from_millis(f.index as u64 * STORM_SPREAD_MS / devices as u64);
            tasks.spawn(async move {
                tokio::time::sleep_until(start + offset).await;
                let began = tokio::time::Instant::now();
                let mut o = DeviceOutcome {
                    index: f.index,
                    error: None,
                    started_ms: ms(began.duration_since(start)),
                    connected_ms: 0.0,
                    synced_ms: 0.0,
                    bytes_up: f.flight.len() as u64,
                    bytes_down: 0,
                    changes_down: 0,
                };
                if let Err(e) = reconnect(&endpoint, config, addr, &f, &mut o, began).await {
                    o.error = Some(format!("{e:#}"));
                }
                o
            });
        }
        let mut outcomes = Vec::new();
        while let Some(o) = tasks.join_next().await {
            outcomes.push(o?);
        }
        endpoint.wait_idle().await;
        anyhow::Ok(outcomes)
    })?;
    for o in &outcomes {
        println!("{}", serde_json::to_string(o)?);
    }
    let cpu = process_cpu(std::process::id())?;
    println!(
        "{}",
        serde_json::to_string(&ClientTotals {
            cpu_ms: cpu.as_secs_f64() * 1000.0
        })?
    );
    Ok(())
}

/// One device's reconnection: handshake, the recorded flight, the server's answers until the
/// last change is acknowledged and the server says `UpToDate`, then a clean close.
async fn reconnect(
    endpoint: &quinn::Endpoint,
    config: quinn::ClientConfig,
    addr: SocketAddr,
    f: &DeviceFlight,
    o: &mut DeviceOutcome,
    began: tokio::time::Instant,
) -> Result<()> {
    let connecting = endpoint.connect_with(config, addr, tls::SERVER_NAME)?;
    let conn = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connecting)
        .await
        .context("handshake timed out")??;
    o.connected_ms = ms(began.elapsed());
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(&f.flight).await?;
    let mut reader = FrameReader::new();
    let mut buf = vec![0u8; tournee_core::limits::READ_CHUNK_BYTES];
    let (mut acked, mut up_to_date) = (0u64, false);
    while !(acked >= f.last_seq && up_to_date) {
        let n = recv
            .read(&mut buf)
            .await?
            .context("the server ended the stream before the device was synced")?;
        o.bytes_down += n as u64;
        reader.push(&buf[..n])?;
        while let Some(m) = reader.next_msg::<ServerMsg>()? {
            match m {
                ServerMsg::Ack { seq, rejected, .. } => {
                    ensure!(rejected.is_empty(), "{} change(s) refused", rejected.len());
                    acked = acked.max(seq);
                }
                ServerMsg::Changes { batch, .. } => {
                    o.changes_down += batch.len() as u64;
                    up_to_date = false;
                }
                ServerMsg::UpToDate { .. } => up_to_date = true,
                ServerMsg::Error { code, message } => bail!("server error {code:?}: {message}"),
                ServerMsg::Welcome { .. } => {}
                ServerMsg::Rebase { acked, .. } => bail!("the server asked to rebase at {acked}"),
            }
        }
    }
    o.synced_ms = ms(began.elapsed());
    send.finish()?;
    // The server ends its side once it has read ours, and may close first: synced is synced.
    while let Ok(Some(n)) = recv.read(&mut buf).await {
        o.bytes_down += n as u64;
    }
    conn.close(0u32.into(), b"synced");
    Ok(())
}
