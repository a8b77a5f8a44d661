//! The sync daemon: a quinn endpoint whose connections are authenticated by client certificate,
//! admitted through a semaphore, and each driven by a `ServerSession` over one stream.
//!
//! Thin glue: protocol decisions are in `tournee_proto`, storage in the store thread
//! (`db`), and each session is driven by the pump (`tournee_net::pump::serve_stream`, the
//! same core the simulation runs), its Hello deadline included. This module owns the
//! endpoint, tasks, admission, revocation and changelog polling, closing connections with a
//! code, and logging. Handshakes in progress are capped: above a threshold unvalidated
//! addresses must answer a QUIC Retry first, above a hard cap attempts are dropped, and refused
//! handshakes beyond a few per interval are only counted in one summary line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use quinn::{Connection, Endpoint, VarInt};
use rustls_pki_types::CertificateDer;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tournee_core::clock::Clock;
use tournee_core::limits::{
    HANDSHAKE_LOG_INTERVAL_MS, HANDSHAKE_LOG_LINES_PER_INTERVAL, HORIZON_CHECK_MS,
    QUIC_HANDSHAKES_MAX, QUIC_RETRY_ABOVE_HANDSHAKES, SERVER_POLL_MS, SHUTDOWN_GRACE_MS,
};
use tournee_core::store::{Identity, ServerStore, Store};
use tournee_net::pump::{
    advance_head, serve_stream, until_due, ServerEnd, ServerSignals, StoreHost,
};
use tournee_net::tls::{self, RevocationList};
use tournee_proto::auth::DeviceAuth;
use tournee_proto::pump::ServerPump;
use tournee_proto::session::ServerSession;
use tournee_proto::wire::ErrorCode;
use tournee_store::SqliteStore;
use tracing::{info, warn};

use crate::backup::DirLock;
use crate::ca::Ca;
use crate::config::{DataDir, ServerConfig};
use crate::db::{Db, DbGone};
use crate::registry::Registry;

/// What every connection task shares.
#[derive(Debug)]
struct Shared {
    db: Db,
    registry: Mutex<Registry>,
    clock: Arc<dyn Clock>,
    admission: Semaphore,
    head: watch::Sender<u64>,
    live: Mutex<HashMap<u32, Connection>>,
    revoked: RevocationList,
    shutdown: watch::Sender<bool>,
    handshakes: Handshakes,
}

/// Handshakes in progress, and what happened to connection attempts since the last summary.
#[derive(Debug, Default)]
struct Handshakes {
    in_progress: AtomicUsize,
    tally: Mutex<AttemptTally>,
}

/// Counts of one logging interval.
#[derive(Debug, Default, Clone, Copy)]
struct AttemptTally {
    /// Refused handshakes logged one line each.
    refused_logged: u32,
    /// Refused handshakes beyond those.
    refused_unlogged: u64,
    /// Attempts asked for a Retry.
    retried: u64,
    /// Attempts dropped at the cap.
    dropped: u64,
}

impl Handshakes {
    fn count(&self, f: impl FnOnce(&mut AttemptTally)) {
        if let Ok(mut t) = self.tally.lock() {
            f(&mut t);
        }
    }

    /// Keep state for `incoming`, ask it for a Retry, or drop it, by handshakes in progress.
    fn admit(&self, incoming: quinn::Incoming) -> Option<quinn::Incoming> {
        let pending = self.in_progress.load(Ordering::Relaxed);
        if pending >= QUIC_HANDSHAKES_MAX {
            incoming.ignore();
            self.count(|t| t.dropped += 1);
            return None;
        }
        if pending >= QUIC_RETRY_ABOVE_HANDSHAKES && !incoming.remote_address_validated() {
            match incoming.retry() {
                Ok(()) => self.count(|t| t.retried += 1),
                Err(e) => {
                    e.into_incoming().ignore();
                    self.count(|t| t.dropped += 1);
                }
            }
            return None;
        }
        self.in_progress.fetch_add(1, Ordering::Relaxed);
        Some(incoming)
    }

    /// A handshake failed: one line, unless this interval already had its share.
    fn refused(&self, remote: SocketAddr, error: &quinn::ConnectionError) {
        let mut log = false;
        self.count(|t| {
            if t.refused_logged < HANDSHAKE_LOG_LINES_PER_INTERVAL {
                t.refused_logged += 1;
                log = true;
            } else {
                t.refused_unlogged += 1;
            }
        });
        if log {
            warn!(%remote, error = %error, "handshake refused");
        }
    }

    /// End the interval: one line if anything was not logged on its own.
    fn summary(&self) {
        let Ok(mut t) = self.tally.lock() else { return };
        let done = std::mem::take(&mut *t);
        drop(t);
        if done.refused_unlogged + done.retried + done.dropped > 0 {
            warn!(
                refused_logged = done.refused_logged,
                refused_unlogged = done.refused_unlogged,
                retried = done.retried,
                dropped = done.dropped,
                in_progress = self.in_progress.load(Ordering::Relaxed),
                interval_ms = HANDSHAKE_LOG_INTERVAL_MS,
                "connection attempts under load"
            );
        }
    }
}

/// Counts a handshake as finished when dropped (done, failed, or its task aborted).
struct InProgress<'a>(&'a AtomicUsize);

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A running server (in-process), for the CLI and tests.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    console: Option<SocketAddr>,
    shared: Arc<Shared>,
    endpoint: Endpoint,
    tasks: JoinSet<()>,
    /// Held while serving: `restore` refuses to swap files under a running server.
    _lock: DirLock,
}

fn open_server_store(data: &DataDir) -> Result<SqliteStore> {
    let mut store = data.open_store()?;
    if store.identity()?.is_none() {
        store.set_identity(&Identity::server())?;
    }
    Ok(store)
}

/// Start serving on the configured address. Returns once the endpoint is bound.
pub async fn start(
    data: &DataDir,
    config: &ServerConfig,
    clock: Arc<dyn Clock>,
) -> Result<RunningServer> {
    data.require()?;
    let lock = DirLock::acquire(data)?;
    // Load reference data now, not inside the first session.
    tournee_core::refdata::RefData::get();
    let store = open_server_store(data)?;
    let head = store.changelog_head()?;
    let registry = Registry::open(&data.registry())?;
    let revoked = RevocationList::new();
    revoked.replace(registry.revoked_fingerprints()?.into_iter().collect());
    let ca = Ca::load(
        &std::fs::read_to_string(data.ca_cert()).context("cannot read the CA certificate")?,
        &std::fs::read_to_string(data.ca_key()).context("cannot read the CA key")?,
    )?;
    let chain = tls::pem_to_der_certs(&std::fs::read_to_string(data.server_cert())?)?;
    let key = tls::pem_to_der_key(&std::fs::read_to_string(data.server_key())?)?;
    let tls_config = tls::server_config(&ca.cert_der()?, chain, key, revoked.clone())?;
    let quinn_config = tournee_net::transport::server_config(tls_config)?;
    let endpoint = Endpoint::server(quinn_config, config.listen)
        .with_context(|| format!("cannot listen on {} (UDP)", config.listen))?;
    let addr = endpoint.local_addr()?;
    let (db, _thread) = Db::start(store)?;
    let shared = Arc::new(Shared {
        db,
        registry: Mutex::new(registry),
        clock,
        admission: Semaphore::new(config.sessions_max.max(1)),
        head: watch::Sender::new(head),
        live: Mutex::new(HashMap::new()),
        revoked,
        shutdown: watch::Sender::new(false),
        handshakes: Handshakes::default(),
    });
    let mut tasks = JoinSet::new();
    tasks.spawn(accept_loop(endpoint.clone(), shared.clone()));
    tasks.spawn(poll_loop(shared.clone()));
    tasks.spawn(horizon_loop(shared.clone(), config.horizon_weeks));
    // HTTPS asked for but impossible is refused before anything listens (never HTTP instead).
    let tls = match (&config.console_tls_cert, &config.console_tls_key) {
        (Some(cert), Some(key)) => Some(crate::console::tls::acceptor(cert, key)?),
        (None, None) => None,
        _ => anyhow::bail!(
            "server.toml : console_tls_cert et console_tls_key vont ensemble ; donnez les deux, ou aucun (console en HTTP derrière un proxy)"
        ),
    };
    // The console is a convenience beside sync: an address in use is said once, sync goes on.
    let mut console_addr = None;
    match tokio::net::TcpListener::bind(config.console_listen).await {
        Ok(listener) => {
            console_addr = listener.local_addr().ok();
            let console = crate::console::ConsoleState::new(data.clone(), shared.clock.clone());
            let stop = shared.shutdown.subscribe();
            tasks.spawn(async move {
                let served = match tls {
                    Some(tls) => {
                        let listener = crate::console::tls::TlsListener { tcp: listener, tls };
                        crate::console::serve_tls(listener, console, stop).await
                    }
                    None => crate::console::serve(listener, console, stop).await,
                };
                if let Err(e) = served {
                    tracing::error!(error = %e, "the console stopped");
                }
            });
        }
        Err(e) => {
            tracing::warn!(addr = %config.console_listen, error = %e, "the console cannot listen (change console_listen in server.toml); sync goes on without it");
        }
    }
    info!(%addr, sessions_max = config.sessions_max, "tournee-server listening");
    Ok(RunningServer {
        addr,
        console: console_addr,
        shared,
        endpoint,
        tasks,
        _lock: lock,
    })
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The console's bound address, unless it could not listen.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console
    }

    /// Stop accepting, tell live sessions to end, wait for them (bounded), close the endpoint.
    pub async fn shutdown(mut self) {
        let _ = self.shared.shutdown.send(true);
        let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
        let _ = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        self.endpoint.close(
            VarInt::from_u32(ErrorCode::Unavailable.close_code()),
            b"server shutting down",
        );
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
        info!("tournee-server stopped");
    }
}

async fn accept_loop(endpoint: Endpoint, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut conns = JoinSet::new();
    let mut summary = tokio::time::interval(Duration::from_millis(HANDSHAKE_LOG_INTERVAL_MS));
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                if let Some(incoming) = shared.handshakes.admit(incoming) {
                    conns.spawn(handle_connection(incoming, shared.clone()));
                }
            }
            _ = summary.tick() => shared.handshakes.summary(),
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    shared.handshakes.summary();
    while conns.join_next().await.is_some() {}
}

/// Re-read what other processes change: the changelog head (the scheduler's CLI writes) and
/// revocations (`device revoke`), closing revoked devices' live connections.
async fn poll_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(SERVER_POLL_MS));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Ok(Ok(head)) = shared.db.call(|s| s.changelog_head()).await {
            advance_head(&shared.head, head);
        }
        let revoked = match shared.registry.lock() {
            Ok(r) => r.revoked_fingerprints(),
            Err(_) => return,
        };
        let Ok(revoked) = revoked else { continue };
        shared.revoked.replace(revoked.iter().cloned().collect());
        let devices: Vec<(u32, String)> = match shared.registry.lock() {
            Ok(r) => r
                .devices()
                .map(|ds| {
                    ds.into_iter()
                        .filter(|d| d.status == "revoked")
                        .map(|d| (d.actor, d.name))
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => return,
        };
        if let Ok(live) = shared.live.lock() {
            for (actor, name) in devices {
                if let Some(conn) = live.get(&actor) {
                    warn!(device = actor, name = %name, "device revoked: closing its connection");
                    conn.close(
                        VarInt::from_u32(ErrorCode::Unauthorized.close_code()),
                        b"device revoked",
                    );
                }
            }
        }
    }
}

/// Keep every round's passages materialised up to the horizon as days pass: at start, then
/// whenever the date changes.
async fn horizon_loop(shared: Arc<Shared>, horizon_weeks: u32) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(HORIZON_CHECK_MS));
    let mut done_for: Option<chrono::NaiveDate> = None;
    let mut failures = crate::scheduling::FailureMemo::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = shared.clock.now_ms();
        let Some(today) = tournee_core::time::paris_date(i64::try_from(now / 1000).unwrap_or(0))
        else {
            continue;
        };
        if done_for == Some(today) {
            continue;
        }
        let days_off = match shared.registry.lock() {
            Ok(reg) => crate::scheduling::DaysOff::load(&reg),
            Err(_) => return,
        };
        let days_off = match days_off {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "reading the units and holidays failed; retrying later");
                continue;
            }
        };
        let result = shared
            .db
            .call(move |s| {
                let window = crate::scheduling::Window {
                    today,
                    horizon_weeks,
                    days_off: &days_off,
                };
                crate::scheduling::materialise_all(s, now, &window).map_err(|e| e.to_string())
            })
            .await;
        match result {
            Ok(Ok(run)) => {
                let r = run.total;
                if r.created + r.updated + r.removed > 0 {
                    info!(created = r.created, updated = r.updated, removed = r.removed, %today, "passages materialised");
                }
                for (round, e) in failures.fresh(&run.failed) {
                    warn!(%round, error = %e, "materialising this round's passages failed; the other rounds are done; retrying every minute");
                }
                // A failing round is retried at the next tick; the others are then no-ops.
                if run.failed.is_empty() {
                    done_for = Some(today);
                }
            }
            Ok(Err(e)) => warn!(error = %e, "materialising passages failed; retrying later"),
            Err(_) => return,
        }
    }
}

async fn handle_connection(incoming: quinn::Incoming, shared: Arc<Shared>) {
    let remote = incoming.remote_address();
    let handshake = {
        let _counted = InProgress(&shared.handshakes.in_progress);
        incoming.await
    };
    let conn = match handshake {
        Ok(c) => c,
        Err(e) => {
            shared.handshakes.refused(remote, &e);
            return;
        }
    };
    let Some((device, name)) = identify(&conn, &shared) else {
        return;
    };
    if let Ok(mut live) = shared.live.lock() {
        // One live connection per device: a newer one supersedes the old (a laptop that lost
        // its link reconnects before the old connection timed out), so the old session cannot
        // move the device's acknowledgement under the new one.
        if let Some(old) = live.insert(device.actor, conn.clone()) {
            old.close(
                VarInt::from_u32(ErrorCode::Superseded.close_code()),
                b"superseded by a newer connection of this device",
            );
        }
    }
    let started = Instant::now();
    let actor = device.actor;
    let outcome = {
        let Ok(_permit) = shared.admission.acquire().await else {
            return;
        };
        run_session(&conn, device, &shared).await
    };
    if let Ok(mut live) = shared.live.lock() {
        if live
            .get(&actor)
            .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            live.remove(&actor);
        }
    }
    let duration_ms = started.elapsed().as_millis();
    match &outcome {
        Ok(t) => note_contact(&shared, actor, t, true),
        Err((t, _)) => note_contact(&shared, actor, t, false),
    }
    match outcome {
        Ok(t) => info!(
            device = actor, name = %name, %remote, bytes_in = t.bytes_in, bytes_out = t.bytes_out,
            changes_in = t.stats.changes_in, changes_out = t.stats.changes_out,
            applied = t.stats.applied, duplicates = t.stats.duplicates, rejected = t.stats.rejected,
            cpu_us = t.busy_us, duration_ms, outcome = "ok", "session"
        ),
        Err((t, e)) => warn!(
            device = actor, name = %name, %remote, bytes_in = t.bytes_in, bytes_out = t.bytes_out,
            changes_in = t.stats.changes_in, changes_out = t.stats.changes_out,
            applied = t.stats.applied, duplicates = t.stats.duplicates, rejected = t.stats.rejected,
            cpu_us = t.busy_us, duration_ms, outcome = %e, "session"
        ),
    }
}

/// Map the client certificate to an active enrolled device, or close the connection.
fn identify(conn: &Connection, shared: &Shared) -> Option<(DeviceAuth, String)> {
    let refuse = |why: &str| {
        warn!(remote = %conn.remote_address(), why, "connection refused");
        conn.close(
            VarInt::from_u32(ErrorCode::Unauthorized.close_code()),
            why.as_bytes(),
        );
        None
    };
    let certs = conn
        .peer_identity()
        .and_then(|id| id.downcast::<Vec<CertificateDer<'static>>>().ok());
    let Some(leaf) = certs.as_ref().and_then(|c| c.first()) else {
        return refuse("no client certificate");
    };
    let Ok(fp) = tls::fingerprint(leaf) else {
        return refuse("unreadable client certificate");
    };
    let found = match shared.registry.lock() {
        Ok(r) => r.device_by_fingerprint(&fp).ok().flatten().map(|d| {
            let unit = r.unit(&d.unit).ok().flatten();
            (d, unit)
        }),
        Err(_) => None,
    };
    match found {
        Some((d, Some(unit))) if d.status == "active" => Some((
            DeviceAuth {
                actor: d.actor,
                unit: d.unit,
                territory: unit.territory,
            },
            d.name,
        )),
        Some((d, _)) if d.status != "active" => refuse("device revoked"),
        _ => refuse("device not enrolled"),
    }
}

/// Byte and time counts of one session, for its log line, and what the fleet view keeps.
#[derive(Debug, Default, Clone)]
struct Tally {
    bytes_in: u64,
    bytes_out: u64,
    busy_us: u64,
    stats: tournee_proto::session::SessionStats,
    peer: Option<tournee_proto::session::PeerReport>,
}

/// Keep the session's news of its laptop for the fleet view (a failure is logged: the sync
/// itself is done and stays done).
fn note_contact(shared: &Shared, actor: u32, tally: &Tally, complete: bool) {
    let Some(peer) = &tally.peer else {
        return;
    };
    let now = i64::try_from(shared.clock.now_ms()).unwrap_or(i64::MAX);
    let rejected = tally.stats.rejected as u64;
    let noted = match shared.registry.lock() {
        Ok(r) => r
            .note_contact(actor, now, peer, rejected, complete)
            .map_err(|e| e.to_string()),
        Err(_) => Err("registry lock poisoned".into()),
    };
    if let Err(error) = noted {
        warn!(device = actor, %error, "fleet contact not recorded");
    }
}

/// The names of `unit`'s devices (revoked ones too: their writes stay in conflicts), for
/// Welcome; none when the registry cannot be read (names are for display only).
fn unit_device_names(shared: &Shared, unit: &str) -> Vec<(u32, String)> {
    let devices = match shared.registry.lock() {
        Ok(r) => r.devices().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    devices
        .into_iter()
        .filter(|d| d.unit == unit)
        .map(|d| (d.actor, d.name))
        .collect()
}

async fn run_session(
    conn: &Connection,
    device: DeviceAuth,
    shared: &Arc<Shared>,
) -> Result<Tally, (Tally, String)> {
    let mut tally = Tally::default();
    let clock = &*shared.clock;
    // The session's Hello deadline runs from the connection: it also bounds the wait for the
    // agent to open its stream.
    let names = unit_device_names(shared, &device.unit);
    let session = ServerSession::new(device, clock.now_ms()).with_device_names(names);
    let mut pump = ServerPump::new(session);
    let (mut send, mut recv) = loop {
        tokio::select! {
            accepted = conn.accept_bi() => match accepted {
                Ok(s) => break s,
                Err(e) => return Err((tally, format!("connection ended before a stream: {e}"))),
            },
            () = until_due(clock, pump.poll_timeout()) => {
                if pump.handle_timeout(clock.now_ms()).is_err() {
                    conn.close(
                        VarInt::from_u32(ErrorCode::Unexpected.close_code()),
                        b"no stream opened",
                    );
                    return Err((tally, "no stream opened in time".into()));
                }
            }
        }
    };
    let host = StoreThread {
        db: &shared.db,
        busy_us: AtomicU64::new(0),
    };
    let signals = ServerSignals {
        head: &shared.head,
        shutdown: shared.shutdown.subscribe(),
    };
    let served = serve_stream(pump, &mut send, &mut recv, &host, clock, signals).await;
    tally.bytes_in = served.bytes_in;
    tally.bytes_out = served.bytes_out;
    tally.stats = served.stats;
    tally.peer = served.peer;
    tally.busy_us = host.busy_us.load(Ordering::Relaxed);
    match served.result {
        Ok(()) => {
            let _ = send.finish();
            conn.close(VarInt::from_u32(0), b"done");
            Ok(tally)
        }
        Err(ServerEnd::Protocol(e)) => {
            // The pump sent the Error frame and waited for its acknowledgement.
            conn.close(
                VarInt::from_u32(e.code().close_code()),
                e.to_string().as_bytes(),
            );
            Err((tally, e.to_string()))
        }
        Err(ServerEnd::Shutdown) => {
            conn.close(
                VarInt::from_u32(ErrorCode::Unavailable.close_code()),
                b"server shutting down; retry later",
            );
            Err((tally, "server shutdown".into()))
        }
        Err(e) => Err((tally, e.to_string())),
    }
}

/// The store thread as the pump's store host, timing the calls for the session's log line.
struct StoreThread<'a> {
    db: &'a Db,
    busy_us: AtomicU64,
}

impl StoreHost for StoreThread<'_> {
    type Error = DbGone;

    async fn run<R, F>(&self, job: F) -> Result<R, DbGone>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn ServerStore) -> R + Send + 'static,
    {
        let started = Instant::now();
        let r = self.db.call(move |s| job(s)).await;
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.busy_us.fetch_add(us, Ordering::Relaxed);
        r
    }
}
