//! The sync daemon: a quinn endpoint whose connections are authenticated by client certificate,
//! admitted through a semaphore, and each driven by a `ServerSession` over one stream.
//!
//! Thin glue: protocol decisions are in `tournee_proto`, storage in the store thread
//! (`db`). This module owns sockets, tasks, timers, revocation polling and logging.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use rustls_pki_types::CertificateDer;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tournee_core::clock::Clock;
use tournee_core::limits::{
    HELLO_TIMEOUT_MS, HORIZON_CHECK_MS, READ_CHUNK_BYTES, SERVER_POLL_MS,
    SESSION_FLIGHT_BATCHES_MAX, SHUTDOWN_GRACE_MS,
};
use tournee_core::store::{Identity, ServerStore, Store};
use tournee_net::tls::{self, RevocationList};
use tournee_proto::auth::DeviceAuth;
use tournee_proto::frame::{self, FrameReader};
use tournee_proto::session::ServerSession;
use tournee_proto::wire::{ClientMsg, ErrorCode};
use tournee_proto::ProtocolError;
use tournee_store::SqliteStore;
use tracing::{info, warn};

use crate::ca::Ca;
use crate::config::{DataDir, ServerConfig};
use crate::db::Db;
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
}

/// A running server (in-process), for the CLI and tests.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    endpoint: Endpoint,
    tasks: JoinSet<()>,
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
    });
    let mut tasks = JoinSet::new();
    tasks.spawn(accept_loop(endpoint.clone(), shared.clone()));
    tasks.spawn(poll_loop(shared.clone()));
    tasks.spawn(horizon_loop(shared.clone(), config.horizon_weeks));
    info!(%addr, sessions_max = config.sessions_max, "tournee-server listening");
    Ok(RunningServer {
        addr,
        shared,
        endpoint,
        tasks,
    })
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                conns.spawn(handle_connection(incoming, shared.clone()));
            }
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
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
            advance_head(&shared, head);
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
        let result = shared
            .db
            .call(move |s| {
                crate::scheduling::materialise_all(s, now, today, horizon_weeks)
                    .map_err(|e| e.to_string())
            })
            .await;
        match result {
            Ok(Ok(r)) => {
                done_for = Some(today);
                if r.created + r.updated + r.removed > 0 {
                    info!(created = r.created, updated = r.updated, removed = r.removed, %today, "passages materialised");
                }
            }
            Ok(Err(e)) => warn!(error = %e, "materialising passages failed; retrying later"),
            Err(_) => return,
        }
    }
}

fn advance_head(shared: &Shared, head: u64) {
    shared.head.send_if_modified(|h| {
        if head > *h {
            *h = head;
            true
        } else {
            false
        }
    });
}

async fn handle_connection(incoming: quinn::Incoming, shared: Arc<Shared>) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            warn!(%remote, error = %e, "handshake refused");
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
                VarInt::from_u32(ErrorCode::Unavailable.close_code()),
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

/// Byte and time counts of one session, for its log line.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    bytes_in: u64,
    bytes_out: u64,
    busy_us: u64,
    stats: tournee_proto::session::SessionStats,
}

async fn run_session(
    conn: &Connection,
    device: DeviceAuth,
    shared: &Arc<Shared>,
) -> Result<Tally, (Tally, String)> {
    let mut tally = Tally::default();
    let accepted =
        tokio::time::timeout(Duration::from_millis(HELLO_TIMEOUT_MS), conn.accept_bi()).await;
    let (mut send, mut recv) = match accepted {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err((tally, format!("connection ended before a stream: {e}"))),
        Err(_) => {
            conn.close(
                VarInt::from_u32(ErrorCode::Unexpected.close_code()),
                b"no stream opened",
            );
            return Err((tally, "no stream opened in time".into()));
        }
    };
    let session = Arc::new(Mutex::new(ServerSession::new(
        device,
        shared.clock.now_ms(),
    )));
    let result = drive(&session, &mut send, &mut recv, shared, &mut tally).await;
    if let Ok(s) = session.lock() {
        tally.stats = s.stats();
    }
    match result {
        Ok(()) => {
            let _ = send.finish();
            conn.close(VarInt::from_u32(0), b"done");
            Ok(tally)
        }
        Err(SessionEnd::Protocol(e)) => {
            // The session may have queued a more specific message for this error (a version
            // mismatch says which side to update); otherwise describe the error itself.
            let queued = session.lock().ok().and_then(|mut s| {
                std::iter::from_fn(|| s.poll_transmit())
                    .find(|m| matches!(m, tournee_proto::wire::ServerMsg::Error { .. }))
            });
            let msg = queued.unwrap_or_else(|| ServerSession::error_message(&e));
            let bytes = frame::encode(&msg);
            let _ = send.write_all(&bytes).await;
            let _ = send.finish();
            tokio::time::sleep(Duration::from_millis(50)).await;
            conn.close(
                VarInt::from_u32(e.code().close_code()),
                e.to_string().as_bytes(),
            );
            Err((tally, e.to_string()))
        }
        Err(SessionEnd::Shutdown) => {
            conn.close(
                VarInt::from_u32(ErrorCode::Unavailable.close_code()),
                b"server shutting down; retry later",
            );
            Err((tally, "server shutdown".into()))
        }
        Err(SessionEnd::Link(e)) => Err((tally, e)),
    }
}

enum SessionEnd {
    Protocol(ProtocolError),
    Shutdown,
    Link(String),
}

impl From<ProtocolError> for SessionEnd {
    fn from(e: ProtocolError) -> Self {
        SessionEnd::Protocol(e)
    }
}

async fn drive(
    session: &Arc<Mutex<ServerSession>>,
    send: &mut SendStream,
    recv: &mut RecvStream,
    shared: &Arc<Shared>,
    tally: &mut Tally,
) -> Result<(), SessionEnd> {
    let mut reader = FrameReader::new();
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut head = shared.head.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let hello_deadline = tokio::time::Instant::now() + Duration::from_millis(HELLO_TIMEOUT_MS);
    let mut said_hello = false;
    loop {
        flush(session, send, shared, tally).await?;
        tokio::select! {
            read = recv.read(&mut buf) => {
                match read {
                    Ok(Some(n)) => {
                        tally.bytes_in += n as u64;
                        reader.push(&buf[..n]).map_err(ProtocolError::from)?;
                        // The messages this read completed are handled in one store call
                        // (a flight of batches is one transaction and one commit), a bounded
                        // number at a time.
                        loop {
                            let mut msgs = Vec::new();
                            let mut bad = None;
                            while msgs.len() <= SESSION_FLIGHT_BATCHES_MAX {
                                match reader.next_msg::<ClientMsg>() {
                                    Ok(Some(msg)) => msgs.push(msg),
                                    Ok(None) => break,
                                    Err(e) => {
                                        bad = Some(ProtocolError::from(e));
                                        break;
                                    }
                                }
                            }
                            if msgs.is_empty() && bad.is_none() {
                                break;
                            }
                            if !msgs.is_empty() {
                                said_hello = true;
                                let now = shared.clock.now_ms();
                                let s = session.clone();
                                let started = Instant::now();
                                let (r, new_head) = shared
                                    .db
                                    .call(move |store| {
                                        let r = match s.lock() {
                                            Ok(mut s) => s.handle_messages(now, msgs, store),
                                            Err(_) => Err(ProtocolError::Unexpected("session state poisoned")),
                                        };
                                        (r, store.changelog_head().unwrap_or(0))
                                    })
                                    .await
                                    .map_err(|e| SessionEnd::Link(e.to_string()))?;
                                tally.busy_us += started.elapsed().as_micros() as u64;
                                advance_head(shared, new_head);
                                r?;
                            }
                            if let Some(e) = bad {
                                return Err(e.into());
                            }
                        }
                    }
                    Ok(None) => {
                        reader.finish().map_err(ProtocolError::from)?;
                        flush(session, send, shared, tally).await?;
                        return Ok(());
                    }
                    Err(e) => return Err(SessionEnd::Link(format!("stream ended: {e}"))),
                }
            }
            changed = head.changed() => {
                if changed.is_err() {
                    return Err(SessionEnd::Shutdown);
                }
            }
            _ = shutdown.changed() => return Err(SessionEnd::Shutdown),
            _ = tokio::time::sleep_until(hello_deadline), if !said_hello => {
                return Err(ProtocolError::Timeout("Hello").into());
            }
        }
    }
}

/// Send everything the session has queued, refilling from the changelog until it has nothing.
async fn flush(
    session: &Arc<Mutex<ServerSession>>,
    send: &mut SendStream,
    shared: &Arc<Shared>,
    tally: &mut Tally,
) -> Result<(), SessionEnd> {
    loop {
        let mut frames = Vec::new();
        if let Ok(mut s) = session.lock() {
            while let Some(m) = s.poll_transmit() {
                frames.push(frame::encode(&m));
            }
        }
        for f in &frames {
            send.write_all(f)
                .await
                .map_err(|e| SessionEnd::Link(format!("send failed: {e}")))?;
            tally.bytes_out += f.len() as u64;
        }
        let s = session.clone();
        let started = Instant::now();
        let more = shared
            .db
            .call(move |store| -> Result<bool, ProtocolError> {
                let mut s = s
                    .lock()
                    .map_err(|_| ProtocolError::Unexpected("session state poisoned"))?;
                s.fill(store)?;
                Ok(s.has_pending_transmit())
            })
            .await
            .map_err(|e| SessionEnd::Link(e.to_string()))??;
        tally.busy_us += started.elapsed().as_micros() as u64;
        if !more {
            return Ok(());
        }
    }
}
