//! The pump: the one piece of code that drives a session from bytes, for every caller. The
//! server's daemon and the agent (through `tournee_net::pump`), the deterministic simulation,
//! the in-memory protocol tests and the benchmark's sans-IO replay all move a session through a
//! `ServerPump` or a `ClientPump`; none of them frames, coalesces, fills or times out by hand.
//!
//! A pump owns its session and a `FrameReader`. Bytes come in as the peer sent them, with `now`
//! (`handle_read`); the pump unframes them and hands the session what one read completed: on
//! the server, the messages one read completed go to `ServerSession::handle_messages` in
//! flights of at most a Hello and `SESSION_FLIGHT_BATCHES_MAX` batches (one store transaction
//! and one Ack per flight). Frames to send come out one at a time (`poll_transmit`). When the
//! session's queue runs dry the caller asks the pump to `fill` from the store, until the pump
//! no longer `wants_fill`: the session's queue bound, not the pump, limits memory, because the
//! caller writes what was queued before the next fill. Deadlines come from the session
//! (`poll_timeout`) and are honoured with `handle_timeout(now)`: the pump keeps no timer.
//!
//! One type per side rather than one generic over the side: the server takes flights and has a
//! Hello deadline, the agent takes messages one by one and decides when a one-shot session is
//! done. What they share (framing both ways) is `FrameReader` and `frame::encode`.
//!
//! Deliberately not here: sockets, tasks, sleeping, reading a clock, where the store lives
//! (the server runs pump calls on its store thread), and fault injection (the simulation keeps
//! its own schedule of drops, duplicates and reorders, and feeds the pump what survives).

use tournee_core::clock::WallMs;
use tournee_core::limits::SESSION_FLIGHT_BATCHES_MAX;
use tournee_core::store::{ServerStore, Store};

use crate::frame::{self, FrameReader};
use crate::session::{ClientSession, ServerSession, SessionStats};
use crate::wire::{ClientMsg, ServerMsg};
use crate::ProtocolError;

/// Most messages handed to `ServerSession::handle_messages` at once: a Hello and one flight
/// of batches (the session splits longer runs itself; this bounds the decoded messages held).
pub const SERVER_FLIGHT_MESSAGES_MAX: usize = SESSION_FLIGHT_BATCHES_MAX + 1;

/// Drives a `ServerSession` from the bytes an agent sends.
#[derive(Debug)]
pub struct ServerPump {
    session: ServerSession,
    reader: FrameReader,
    /// The session may queue more once what it queued is sent.
    wants_fill: bool,
    /// The agent finished its side of the stream.
    ended: bool,
}

impl ServerPump {
    /// A pump around a new session (its Hello deadline runs from the session's creation).
    pub fn new(session: ServerSession) -> Self {
        Self {
            session,
            reader: FrameReader::new(),
            wants_fill: true,
            ended: false,
        }
    }

    /// Bytes one read returned. Every message they complete is handled, in flights; a frame
    /// that does not decode ends the session after the messages before it were handled.
    pub fn handle_read(
        &mut self,
        now: WallMs,
        bytes: &[u8],
        store: &mut dyn ServerStore,
    ) -> Result<(), ProtocolError> {
        self.wants_fill = true;
        self.reader.push(bytes)?;
        loop {
            let mut msgs = Vec::new();
            let mut bad = None;
            while msgs.len() < SERVER_FLIGHT_MESSAGES_MAX {
                match self.reader.next_msg::<ClientMsg>() {
                    Ok(Some(msg)) => msgs.push(msg),
                    Ok(None) => break,
                    Err(e) => {
                        bad = Some(ProtocolError::from(e));
                        break;
                    }
                }
            }
            if msgs.is_empty() && bad.is_none() {
                return Ok(());
            }
            if !msgs.is_empty() {
                self.session.handle_messages(now, msgs, store)?;
            }
            if let Some(e) = bad {
                return Err(e);
            }
        }
    }

    /// The agent finished its side of the stream: an error if it stopped inside a frame.
    pub fn handle_end(&mut self) -> Result<(), ProtocolError> {
        self.ended = true;
        self.wants_fill = true;
        self.reader.finish()?;
        Ok(())
    }

    /// The changelog grew (another session or the scheduler committed): fill again.
    pub fn handle_changelog_grew(&mut self) {
        self.wants_fill = true;
    }

    /// True when `fill` should run once the frames queued so far are sent.
    pub fn wants_fill(&self) -> bool {
        self.wants_fill
    }

    /// Queue changelog batches (and acknowledgements of position) while the session has room.
    pub fn fill(&mut self, store: &dyn ServerStore) -> Result<(), ProtocolError> {
        self.session.fill(store)?;
        self.wants_fill = self.session.has_pending_transmit();
        Ok(())
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.session.poll_transmit().map(|m| frame::encode(&m))
    }

    /// Send everything there is to send, filling from the store until nothing is pending, for
    /// callers that hold the store and send in memory (simulation, tests, replays). The async
    /// adapter runs the same loop with a write between fills.
    pub fn flush(
        &mut self,
        store: &dyn ServerStore,
        mut send: impl FnMut(Vec<u8>),
    ) -> Result<(), ProtocolError> {
        loop {
            while let Some(f) = self.poll_transmit() {
                send(f);
            }
            if !self.wants_fill {
                return Ok(());
            }
            self.fill(store)?;
        }
    }

    /// When `handle_timeout` must be called, if ever.
    pub fn poll_timeout(&self) -> Option<WallMs> {
        self.session.poll_timeout()
    }

    /// Time passed: an error when a deadline of the session expired.
    pub fn handle_timeout(&mut self, now: WallMs) -> Result<(), ProtocolError> {
        self.session.handle_timeout(now)
    }

    /// True once the agent finished its side of the stream.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The frame telling the agent why `err` ends the session: the message the session queued
    /// for it if any (a version mismatch says which side to update), else one describing it.
    pub fn error_frame(&mut self, err: &ProtocolError) -> Vec<u8> {
        let queued = std::iter::from_fn(|| self.session.poll_transmit())
            .find(|m| matches!(m, ServerMsg::Error { .. }));
        let msg = queued.unwrap_or_else(|| ServerSession::error_message(err));
        frame::encode(&msg)
    }

    /// The session's counts so far.
    pub fn stats(&self) -> SessionStats {
        self.session.stats()
    }

    /// The session.
    pub fn session(&self) -> &ServerSession {
        &self.session
    }
}

/// Drives a `ClientSession` from the bytes the server sends.
#[derive(Debug)]
pub struct ClientPump {
    session: ClientSession,
    reader: FrameReader,
}

impl ClientPump {
    /// Start a session on `store`: Hello and the first pending batches are queued.
    pub fn new(store: &dyn Store) -> Result<Self, ProtocolError> {
        Ok(Self {
            session: ClientSession::new(store)?,
            reader: FrameReader::new(),
        })
    }

    /// Bytes one read returned: every message they complete is handled in order, then the
    /// session refills from the outbox (an Ack makes room).
    pub fn handle_read(
        &mut self,
        now: WallMs,
        bytes: &[u8],
        store: &mut dyn Store,
    ) -> Result<(), ProtocolError> {
        self.reader.push(bytes)?;
        while let Some(msg) = self.reader.next_msg::<ServerMsg>()? {
            self.session.handle_message(now, msg, store)?;
        }
        self.session.fill(store)
    }

    /// The server finished its side of the stream: an error if it stopped inside a frame.
    pub fn handle_end(&mut self) -> Result<(), ProtocolError> {
        Ok(self.reader.finish()?)
    }

    /// Queue local changes committed since (a live session polls this).
    pub fn fill(&mut self, store: &dyn Store) -> Result<(), ProtocolError> {
        self.session.fill(store)
    }

    /// See `ClientSession::resend_refused_at_once` (live sessions).
    pub fn resend_refused_at_once(&mut self) {
        self.session.resend_refused_at_once();
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.session.poll_transmit().map(|m| frame::encode(&m))
    }

    /// Everything the session can send now, refilled from the outbox first: the agent streams
    /// its whole outbox in one round trip, refilling as soon as what it queued was written.
    /// Empty when there is nothing to send.
    pub fn next_flight(&mut self, store: &dyn Store) -> Result<Vec<u8>, ProtocolError> {
        self.session.fill(store)?;
        let mut out = Vec::new();
        while let Some(f) = self.poll_transmit() {
            out.extend_from_slice(&f);
        }
        Ok(out)
    }

    /// For a one-shot session with nothing left to write: true once both sides are up to date
    /// and the outbox holds nothing unacknowledged, so the agent may finish its stream. When
    /// changes were committed meanwhile, queues them and returns false.
    pub fn ready_to_finish(&mut self, store: &dyn Store) -> Result<bool, ProtocolError> {
        if !self.session.is_synced() {
            return Ok(false);
        }
        if store.outbox_after(self.session.acked(), 1)?.is_empty() {
            return Ok(true);
        }
        self.session.fill(store)?;
        Ok(false)
    }

    /// True once the server acknowledged everything sent and the changelog is up to date.
    pub fn is_synced(&self) -> bool {
        self.session.is_synced()
    }

    /// True when frames wait to be sent.
    pub fn has_pending_transmit(&self) -> bool {
        self.session.has_pending_transmit()
    }

    /// The session.
    pub fn session(&self) -> &ClientSession {
        &self.session
    }
}
