//! The product side shared by the workloads `w3` and `w5`: a real server in process with
//! several units, devices enrolled and initialised as the agent does it, the scheduler's
//! writes beside the running server (as its command line does), unmeasured syncs
//! (`sync_once`) and measured reconnections (what `sync_once` runs — the agent's `connect`,
//! `session`, waiting for the close — through a fault-free relay that counts UDP bytes), and the
//! sans-IO replays of a reconnection (`w1::replay`) for round trips, messages and server CPU.
//!
//! It holds no workload logic: the action builders, the laptop type and the replay are `w1`'s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use tournee_agent::setup::{identity_of, init_store};
use tournee_agent::sync::{connect, session, sync_once, Remote, Report};
use tournee_core::clock::{Clock, ManualClock, SystemClock, WallMs};
use tournee_core::export;
use tournee_core::model::Value;
use tournee_core::store::{ServerStore, Store};
use tournee_proto::auth::DeviceAuth;
use tournee_server::admin;
use tournee_server::config::{DataDir, ServerConfig};
use tournee_server::registry::{Registry, Unit};
use tournee_server::serve::{self, RunningServer};
use tournee_store::SqliteStore;
use tournee_tests::relay::Relay;
use uuid::Uuid;

use super::compare::Dump;
use super::w1::{self, Act, Laptop};
use super::{other_thread_cpu, thread_named, TERRITORY};

/// The name of the server's store thread (`tournee_server::db`).
const STORE_THREAD: &str = "tournee-store";
/// How long the server's store thread may take to start or, once the server is stopped, to
/// close the database and end.
const THREAD_WAIT_MS: u64 = 10_000;

/// A server data dir with its units, and the server when it runs.
pub(crate) struct Fleet {
    root: PathBuf,
    pub(crate) data: DataDir,
    config: ServerConfig,
    /// The server's clock, also the devices' (so their clock offset is zero).
    pub(crate) clock: ManualClock,
    server: Option<RunningServer>,
}

impl Fleet {
    /// Initialise a server under `root/server` (CA, certificate, registry, empty store) with
    /// `units`, all in the bench's territory. The server is not started.
    pub(crate) fn new(root: &Path, units: &[&str], now: WallMs) -> Result<Self> {
        let data = DataDir::new(root.join("server"));
        let listen: SocketAddr = format!("127.0.0.1:{}", w1::free_port()?).parse()?;
        let config = admin::init_server(
            &data,
            &SystemClock,
            listen,
            Vec::new(),
            ([127, 0, 0, 1], 0).into(),
        )?;
        let registry = Registry::open(&data.registry())?;
        for unit in units {
            registry.add_unit(&Unit {
                id: (*unit).to_owned(),
                name: format!("Bus France services {unit}"),
                territory: TERRITORY.into(),
                kind: "bus".into(),
            })?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            data,
            config,
            clock: ManualClock::new(now),
            server: None,
        })
    }

    /// Start serving (on the configured port); returns once the store thread runs (a new thread
    /// takes its name when it is first scheduled, and its CPU clock is found by that name).
    pub(crate) async fn start(&mut self) -> Result<()> {
        ensure!(self.server.is_none(), "the server runs already");
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        // After a stop, the port may stay bound a moment while the old endpoint's task ends.
        let t = Instant::now();
        let server = loop {
            match serve::start(&self.data, &self.config, clock.clone()).await {
                Ok(server) => break server,
                Err(e) if t.elapsed() < Duration::from_millis(THREAD_WAIT_MS) => {
                    tracing::debug!(error = %e, "server start failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.server = Some(server);
        wait_for(
            || threads_named(STORE_THREAD) == 1,
            "the server's store thread to start",
        )
        .await
    }

    /// The running server's address.
    pub(crate) fn addr(&self) -> Result<SocketAddr> {
        Ok(self
            .server
            .as_ref()
            .context("the server is stopped")?
            .addr())
    }

    /// Stop the server and wait until its store thread has ended (and so closed the database),
    /// so that the file can be copied.
    pub(crate) async fn stop(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        wait_for(
            || threads_named(STORE_THREAD) == 0,
            "the server's store thread to stop",
        )
        .await
    }

    /// Enrol a device of `unit` and initialise its store, as `tournee-agent init` does.
    pub(crate) fn enroll(&self, unit: &str, name: &str) -> Result<Laptop> {
        let bundle = admin::enroll_device(&self.data, &SystemClock, unit, name)?;
        let dir = self.root.join(name);
        let store = init_store(&dir, &identity_of(&bundle), Some(&bundle.to_json()))?;
        Ok(Laptop {
            days: Vec::new(),
            name: name.to_owned(),
            dir,
            bundle,
            store,
            touched: Default::default(),
        })
    }

    /// The server's store opened beside the running server, as the scheduler's command line
    /// (`tournee-server appointment add`) opens it.
    pub(crate) fn scheduler_store(&self) -> Result<SqliteStore> {
        Ok(tournee_report::facts::open_server_store(
            &self.data.store(),
        )?)
    }
}

/// Poll `done` every 5 ms for at most `THREAD_WAIT_MS`.
async fn wait_for(done: impl Fn() -> bool, what: &str) -> Result<()> {
    let t = Instant::now();
    while !done() {
        ensure!(
            t.elapsed() < Duration::from_millis(THREAD_WAIT_MS),
            "waited {THREAD_WAIT_MS} ms for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// How many threads of this process are named `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|comm| comm.trim_end() == name)
                })
                .count()
        })
        .unwrap_or(0)
}

/// The authenticated identity the server gives a device.
pub(crate) fn device_auth(l: &Laptop) -> DeviceAuth {
    DeviceAuth {
        actor: l.bundle.device,
        unit: l.bundle.unit.clone(),
        territory: l.bundle.territory.clone(),
    }
}

/// An unmeasured sync (`sync_once`, straight to the server); nothing may stay pending or be
/// refused.
pub(crate) async fn sync(l: &mut Laptop, clock: &ManualClock) -> Result<Report> {
    let remote = Remote::from_bundle(&l.bundle)?;
    let r = sync_once(&mut l.store, &remote, clock, w1::SYNC_TIMEOUT_S)
        .await
        .with_context(|| format!("sync of {}", l.name))?;
    let pending = l.store.stats()?.pending;
    ensure!(
        pending == 0 && r.stats.rejected == 0,
        "{}: {pending} change(s) pending, {} refused after a sync",
        l.name,
        r.stats.rejected
    );
    Ok(r)
}

/// One measured reconnection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reconnect {
    /// What the agent's session counted (stream payload bytes, changes, batches).
    pub(crate) report: Report,
    /// UDP payload bytes through the relay, each way (QUIC and TLS included).
    pub(crate) udp_up: u64,
    pub(crate) udp_down: u64,
    /// Connect to the end of the close.
    pub(crate) wall: Duration,
    /// CPU time of the server's store thread during the reconnection, when found.
    pub(crate) store_cpu: Option<Duration>,
}

/// Reconnect `l` through `relay` as `sync_once` does (connect, session, wait for the close),
/// without its retry loop. The relay may be reused: its counters are read before and after.
pub(crate) async fn reconnect(
    l: &mut Laptop,
    relay: &Relay,
    clock: &ManualClock,
) -> Result<Reconnect> {
    let mut via_relay = l.bundle.clone();
    via_relay.server_addrs = vec![relay.addr().to_string()];
    let remote = Remote::from_bundle(&via_relay)?;
    let store_tid = thread_named(STORE_THREAD);
    if store_tid.is_none() {
        eprintln!(
            "bench: {} threads named {STORE_THREAD}; the store thread's CPU is not measured",
            threads_named(STORE_THREAD)
        );
    }
    let cpu_before = store_tid.map(other_thread_cpu).transpose()?;
    let up_before = relay.stats().up_bytes.load(Ordering::Relaxed);
    let down_before = relay.stats().down_bytes.load(Ordering::Relaxed);
    let t = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(w1::SYNC_TIMEOUT_S), async {
        let (endpoint, conn) = connect(&remote).await?;
        let (_keep, mut stop) = tokio::sync::watch::channel(false);
        let r = session(&conn, &mut l.store, clock, false, &mut stop).await;
        tournee_agent::sync::wait_closed(&endpoint).await;
        r
    })
    .await
    .with_context(|| format!("reconnection of {} timed out", l.name))?
    .with_context(|| format!("reconnection of {}", l.name))?;
    let wall = t.elapsed();
    let store_cpu = match (store_tid, cpu_before) {
        (Some(tid), Some(before)) => Some(other_thread_cpu(tid)?.saturating_sub(before)),
        _ => None,
    };
    let pending = l.store.stats()?.pending;
    ensure!(
        pending == 0 && report.stats.rejected == 0,
        "{}: {pending} change(s) pending, {} refused after reconnecting",
        l.name,
        report.stats.rejected
    );
    Ok(Reconnect {
        report,
        udp_up: relay.stats().up_bytes.load(Ordering::Relaxed) - up_before,
        udp_down: relay.stats().down_bytes.load(Ordering::Relaxed) - down_before,
        wall,
        store_cpu,
    })
}

/// True when the device's digest for its scopes equals the server's for the same scopes.
pub(crate) fn same_as_server(l: &Laptop, server: &SqliteStore) -> Result<bool> {
    let id = l.store.identity()?.context("device identity")?;
    let scopes = id.scopes();
    Ok(export::digest(&l.store, Some(&scopes))? == export::digest(server, Some(&scopes))?)
}

/// The sans-IO replays of one reconnection.
#[derive(Debug, Clone)]
pub(crate) struct Replayed {
    /// On the server database itself (which it advances), for the flow of messages.
    pub(crate) cold: w1::Flow,
    /// Timed runs, each on fresh copies of both databases after a warm-up session.
    pub(crate) warm: Vec<w1::Flow>,
}

impl Replayed {
    /// Median server CPU of the warm runs (the cold run's without any).
    pub(crate) fn cpu_p50(&self) -> Duration {
        let mut cpu: Vec<Duration> = self.warm.iter().map(|f| f.cost.cpu()).collect();
        cpu.sort_unstable();
        if cpu.is_empty() {
            self.cold.cost.cpu()
        } else {
            super::percentile(&cpu, 50.0)
        }
    }
}

/// Replay a reconnection of `device` sans-IO (`w1::replay`): `warm_runs` timed runs on copies
/// of `server_db` and `laptop_db` (in `scratch`, removed after), then the cold run on `server_db`
/// itself and a copy of `laptop_db`. Both databases must be closed.
pub(crate) fn replays(
    scratch: &Path,
    server_db: &Path,
    laptop_db: &Path,
    (device, names): (&DeviceAuth, &[(u32, String)]),
    now: WallMs,
    warm_runs: usize,
) -> Result<Replayed> {
    let server_copy = scratch.join("replay-server.sqlite");
    let laptop_copy = scratch.join("replay-laptop.sqlite");
    let remove = |p: &Path| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    };
    let mut warm = Vec::with_capacity(warm_runs);
    for _ in 0..warm_runs {
        w1::copy_db(server_db, &server_copy)?;
        w1::copy_db(laptop_db, &laptop_copy)?;
        warm.push(w1::replay(
            &server_copy,
            &laptop_copy,
            device,
            names,
            now,
            true,
        )?);
        remove(&server_copy);
        remove(&laptop_copy);
    }
    w1::copy_db(laptop_db, &laptop_copy)?;
    let cold = w1::replay(server_db, &laptop_copy, device, names, now, false)?;
    remove(&laptop_copy);
    if cold.rejected > 0 {
        bail!("the replay saw {} refused change(s)", cold.rejected);
    }
    Ok(Replayed { cold, warm })
}

/// The changelog of a closed server database, whatever its layout: rows, and the bytes of the
/// pages its table and indexes occupy (SQLite's `dbstat`); and the whole file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChangelogSize {
    /// Changes logged (the head sequence number).
    pub(crate) entries: u64,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    /// Bytes of the whole database (pages in use).
    pub(crate) database_bytes: u64,
}

pub(crate) fn changelog_size(db: &Path) -> Result<ChangelogSize> {
    let (entries, database_bytes) = {
        let store = SqliteStore::open(db)?;
        (store.changelog_head()?, store.bytes_used()?)
    };
    let conn = rusqlite::Connection::open(db)?;
    let rows: i64 = conn.query_row("SELECT count(*) FROM changelog", [], |r| r.get(0))?;
    let bytes: i64 = conn.query_row(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat
         WHERE name IN (SELECT name FROM sqlite_schema WHERE tbl_name = 'changelog')",
        [],
        |r| r.get(0),
    )?;
    Ok(ChangelogSize {
        entries,
        rows: u64::try_from(rows)?,
        bytes: u64::try_from(bytes)?,
        database_bytes,
    })
}

/// The values `store` shows for every field `acts` wrote: what the other CRDTs' replicas are
/// compared with.
pub(crate) fn dump_of<'a>(
    store: &SqliteStore,
    acts: impl IntoIterator<Item = &'a Act>,
) -> Result<Dump> {
    let mut written: std::collections::BTreeMap<Uuid, std::collections::BTreeSet<_>> =
        Default::default();
    for act in acts {
        for (id, _, sets) in &act.edits {
            written
                .entry(*id)
                .or_default()
                .extend(sets.iter().map(|(f, _)| *f));
        }
    }
    let mut dump = Dump::new();
    for (id, fields) in written {
        let record = store.record(id)?.context("a written record is gone")?;
        let values = fields
            .iter()
            .map(|f| {
                let v = record
                    .value(*f)
                    .map_or(serde_json::Value::Null, Value::to_json);
                (f.code().to_owned(), v)
            })
            .collect();
        dump.insert(id, values);
    }
    Ok(dump)
}
