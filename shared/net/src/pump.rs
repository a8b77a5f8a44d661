//! The async side of the pump: moves bytes between one quinn bidirectional stream and a
//! `tournee_proto::pump` core, for the server (`serve_stream`) and the agent (`drive_client`).
//!
//! What it adds to the core is only what needs a runtime: reading and writing the stream,
//! waiting for the session's own deadline (`poll_timeout`, read against the injected `Clock`),
//! the changelog-head and shutdown signals of the server, and running the server's store calls
//! where the store lives (`StoreHost`, the server's store thread). Framing, flights, filling and
//! timeouts are the core's, so the simulation, which feeds the same core from its faulty
//! in-memory links, runs the same driving code as production.
//!
//! Deliberately not here: connecting, accepting, identifying devices, closing connections with
//! a code, logging, retries (the binaries' glue), and any protocol decision (the sessions').

use std::future::Future;
use std::time::Duration;

use quinn::{ReadError, RecvStream, SendStream, WriteError};
use tokio::sync::watch;
use tournee_core::clock::{Clock, WallMs};
use tournee_core::limits::{ERROR_FLUSH_WAIT_MS, LOCAL_POLL_MS, READ_CHUNK_BYTES};
use tournee_core::store::{ServerStore, Store};
use tournee_proto::pump::{ClientPump, ServerPump};
use tournee_proto::session::{PeerReport, SessionStats};
use tournee_proto::ProtocolError;

/// Where the server's store lives: pump calls that touch it run through `run`.
pub trait StoreHost: Sync {
    /// Why a call could not run (the store's owner stopped).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Run `job` on the store and return its result.
    fn run<R, F>(&self, job: F) -> impl Future<Output = Result<R, Self::Error>> + Send
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn ServerStore) -> R + Send + 'static;
}

/// Wait until `clock` reads `deadline` or later; never, for `None`.
pub async fn until_due(clock: &dyn Clock, deadline: Option<WallMs>) {
    let Some(deadline) = deadline else {
        return std::future::pending().await;
    };
    loop {
        let now = clock.now_ms();
        if now >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(deadline - now)).await;
    }
}

/// Why a server session ended other than by the agent finishing its stream.
#[derive(Debug, thiserror::Error)]
pub enum ServerEnd {
    /// The session failed; the agent was sent an Error frame saying why.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The server is shutting down.
    #[error("server shutdown")]
    Shutdown,
    /// Reading the stream failed.
    #[error("stream ended: {0}")]
    Read(#[source] ReadError),
    /// Writing the stream failed.
    #[error("send failed: {0}")]
    Write(#[source] WriteError),
    /// The store could not be reached.
    #[error("{0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What the server's side of a session did.
#[derive(Debug)]
pub struct Served {
    /// Bytes read from the agent.
    pub bytes_in: u64,
    /// Bytes written to the agent.
    pub bytes_out: u64,
    /// The session's counts.
    pub stats: SessionStats,
    /// What the agent said about itself and what it still had waiting (`None` before Hello).
    pub peer: Option<PeerReport>,
    /// How it ended: `Ok` when the agent finished its stream and everything was sent.
    pub result: Result<(), ServerEnd>,
}

/// The server's signals a session listens to.
#[derive(Debug)]
pub struct ServerSignals<'a> {
    /// The changelog head: a session advances it after its commits, and fills when it moves.
    pub head: &'a watch::Sender<u64>,
    /// True once the server shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// Move `head` forward to `to` (never back), waking the sessions that watch it.
pub fn advance_head(head: &watch::Sender<u64>, to: u64) {
    head.send_if_modified(|h| {
        if to > *h {
            *h = to;
            true
        } else {
            false
        }
    });
}

struct ServerRun<'a, H> {
    /// The pump, absent while a store call holds it (or after the store was lost).
    pump: Option<ServerPump>,
    send: &'a mut SendStream,
    host: &'a H,
    bytes_in: u64,
    bytes_out: u64,
    stats: SessionStats,
    peer: Option<PeerReport>,
}

impl<H: StoreHost> ServerRun<'_, H> {
    /// Run `job` with the pump on the store.
    async fn with_store<R: Send + 'static>(
        &mut self,
        job: impl FnOnce(&mut ServerPump, &mut dyn ServerStore) -> R + Send + 'static,
    ) -> Result<R, ServerEnd> {
        let Some(mut pump) = self.pump.take() else {
            return Err(ServerEnd::Shutdown);
        };
        let (pump, r) = self
            .host
            .run(move |store| {
                let r = job(&mut pump, store);
                (pump, r)
            })
            .await
            .map_err(|e| ServerEnd::Store(Box::new(e)))?;
        self.stats = pump.stats();
        self.peer = pump.session().peer_report();
        self.pump = Some(pump);
        Ok(r)
    }

    fn pump(&mut self) -> Result<&mut ServerPump, ServerEnd> {
        self.pump.as_mut().ok_or(ServerEnd::Shutdown)
    }

    /// Write what the session queued, filling from the changelog until nothing is pending.
    async fn flush(&mut self) -> Result<(), ServerEnd> {
        loop {
            while let Some(f) = self.pump()?.poll_transmit() {
                self.send.write_all(&f).await.map_err(ServerEnd::Write)?;
                self.bytes_out += f.len() as u64;
            }
            if !self.pump()?.wants_fill() {
                return Ok(());
            }
            self.with_store(|p, s| p.fill(s)).await??;
        }
    }
}

/// Drive `pump` over one stream until the agent finishes it, the session fails, or the server
/// shuts down. A protocol failure sends the agent an Error frame and waits (at most
/// `ERROR_FLUSH_WAIT_MS`) for it to be acknowledged, so the caller may close the connection.
pub async fn serve_stream<H: StoreHost>(
    pump: ServerPump,
    send: &mut SendStream,
    recv: &mut RecvStream,
    host: &H,
    clock: &dyn Clock,
    signals: ServerSignals<'_>,
) -> Served {
    let stats = pump.stats();
    let mut run = ServerRun {
        pump: Some(pump),
        send,
        host,
        bytes_in: 0,
        bytes_out: 0,
        stats,
        peer: None,
    };
    let result = serve_loop(&mut run, recv, clock, signals).await;
    if let Err(ServerEnd::Protocol(e)) = &result {
        let frame = match run.pump.as_mut() {
            Some(p) => p.error_frame(e),
            None => tournee_proto::frame::encode(
                &tournee_proto::session::ServerSession::error_message(e),
            ),
        };
        if run.send.write_all(&frame).await.is_ok() {
            let _ = run.send.finish();
            let _ = tokio::time::timeout(
                Duration::from_millis(ERROR_FLUSH_WAIT_MS),
                run.send.stopped(),
            )
            .await;
        }
    }
    Served {
        bytes_in: run.bytes_in,
        bytes_out: run.bytes_out,
        stats: run.stats,
        peer: run.peer,
        result,
    }
}

async fn serve_loop<H: StoreHost>(
    run: &mut ServerRun<'_, H>,
    recv: &mut RecvStream,
    clock: &dyn Clock,
    mut signals: ServerSignals<'_>,
) -> Result<(), ServerEnd> {
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut head = signals.head.subscribe();
    loop {
        run.flush().await?;
        if run.pump()?.is_ended() {
            return Ok(());
        }
        let deadline = run.pump()?.poll_timeout();
        tokio::select! {
            read = recv.read(&mut buf) => match read {
                Ok(Some(n)) => {
                    run.bytes_in += n as u64;
                    let bytes = buf[..n].to_vec();
                    let now = clock.now_ms();
                    let (r, new_head) = run
                        .with_store(move |p, s| {
                            let r = p.handle_read(now, &bytes, s);
                            (r, s.changelog_head().unwrap_or(0))
                        })
                        .await?;
                    advance_head(signals.head, new_head);
                    r?;
                }
                Ok(None) => run.pump()?.handle_end()?,
                Err(e) => return Err(ServerEnd::Read(e)),
            },
            changed = head.changed() => match changed {
                Ok(()) => run.pump()?.handle_changelog_grew(),
                Err(_) => return Err(ServerEnd::Shutdown),
            },
            _ = signals.shutdown.changed() => return Err(ServerEnd::Shutdown),
            () = until_due(clock, deadline), if deadline.is_some() => {
                run.pump()?.handle_timeout(clock.now_ms())?;
            }
        }
    }
}

/// Why the agent's side of a session ended before it completed.
#[derive(Debug, thiserror::Error)]
pub enum ClientEnd {
    /// The session failed (including the server's Error frame).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Reading the stream failed.
    #[error("{0}")]
    Read(#[source] ReadError),
    /// Writing the stream failed.
    #[error("{0}")]
    Write(#[source] WriteError),
    /// The server finished its stream before the session was done.
    #[error("the server ended the session early")]
    EndedEarly,
}

/// Bytes an agent's session moved.
#[derive(Debug, Clone, Copy, Default)]
pub struct Transfer {
    /// Bytes written.
    pub bytes_out: u64,
    /// Bytes read.
    pub bytes_in: u64,
}

/// Drive the agent's `pump` over one stream. One-shot (`live == false`): returns once both
/// sides are up to date and the server closed. Live: keeps pushing local commits (polled every
/// `LOCAL_POLL_MS`) and taking server pushes until `stop` fires.
pub async fn drive_client<S: Store>(
    pump: &mut ClientPump,
    send: &mut SendStream,
    recv: &mut RecvStream,
    store: &mut S,
    clock: &dyn Clock,
    live: bool,
    stop: &mut watch::Receiver<bool>,
) -> Result<Transfer, ClientEnd> {
    let mut t = Transfer::default();
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut out: Vec<u8> = Vec::new();
    let mut off = 0usize;
    let mut poll = tokio::time::interval(Duration::from_millis(LOCAL_POLL_MS));
    let mut finishing = false;
    loop {
        if off == out.len() {
            // Refill as soon as what was queued is written, not after the server's next
            // message: the whole outbox streams in one round trip. The session's queue bounds
            // memory; QUIC flow control bounds what is in flight.
            out = pump.next_flight(store)?;
            off = 0;
        }
        if off == out.len() && !live && !finishing {
            if pump.ready_to_finish(store)? {
                let _ = send.finish();
                finishing = true;
            } else if pump.has_pending_transmit() {
                continue;
            }
        }
        tokio::select! {
            read = recv.read(&mut buf) => match read {
                Ok(Some(n)) => {
                    t.bytes_in += n as u64;
                    pump.handle_read(clock.now_ms(), &buf[..n], store)?;
                }
                Ok(None) => {
                    pump.handle_end()?;
                    if finishing {
                        return Ok(t);
                    }
                    return Err(ClientEnd::EndedEarly);
                }
                Err(ReadError::ConnectionLost(_)) if finishing => return Ok(t),
                Err(e) => return Err(ClientEnd::Read(e)),
            },
            written = send.write(&out[off..]), if off < out.len() => {
                let n = written.map_err(ClientEnd::Write)?;
                off += n;
                t.bytes_out += n as u64;
            }
            _ = poll.tick(), if live => pump.fill(store)?,
            _ = stop.changed(), if live => {
                let _ = send.finish();
                return Ok(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tournee_core::clock::ManualClock;

    #[tokio::test]
    async fn a_deadline_is_due_by_the_injected_clock_and_no_deadline_never_is() {
        let clock = ManualClock::new(1_000);
        let at_once = Duration::ZERO;
        // `timeout` polls the wait once before its own timer: ready means no sleeping.
        assert!(
            tokio::time::timeout(at_once, until_due(&clock, Some(1_000)))
                .await
                .is_ok(),
            "due when the clock reads the deadline"
        );
        assert!(
            tokio::time::timeout(at_once, until_due(&clock, Some(1_001)))
                .await
                .is_err()
        );
        clock.set(5_000);
        assert!(
            tokio::time::timeout(at_once, until_due(&clock, Some(1_001)))
                .await
                .is_ok()
        );
        assert!(tokio::time::timeout(at_once, until_due(&clock, None))
            .await
            .is_err());
    }

    #[test]
    fn the_head_only_moves_forward() {
        let head = watch::Sender::new(10);
        let mut seen = head.subscribe();
        advance_head(&head, 7);
        assert!(!seen.has_changed().expect("open"));
        advance_head(&head, 12);
        assert!(seen.has_changed().expect("open"));
        assert_eq!(*seen.borrow_and_update(), 12);
    }
}
