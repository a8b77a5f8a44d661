//! The per-peer sync state machines. `ClientSession` runs on the agent, `ServerSession` on the
//! server, one per connection. Inputs: `handle_message(now, msg, store)`, `handle_timeout(now)`;
//! outputs: `poll_transmit()`, `poll_timeout()`. Sans-IO: no tokio, no quinn, no clock reads.
//!
//! One round trip after the handshake: the agent sends Hello and its pending batches at once;
//! the server answers Welcome, acknowledges each batch after it commits, and streams the
//! changelog of the device's scope; the agent applies each batch with its cursor in one
//! transaction. Replays are harmless on both sides.
//!
//! Healing: Hello carries the agent's last `seq` and the chain of its acknowledged history.
//! When the server acknowledged more than the agent knows, the agent's re-sent changes must
//! chain to the server's; a store that went back in time or was copied does not, nor one that
//! lost changes the server holds, nor an agent ahead of a restored server. Then the server
//! answers `Rebase` instead of an acknowledgement: the agent stashes and renumbers what is not
//! acknowledged, takes the whole changelog again (its own writes included), re-issues the
//! stash with fresh dots, says `Rebased`, and the session goes on. The sessions only decide;
//! what healing does to records is the store's (`Store::rebase`, `finish_rebase`).

use std::collections::VecDeque;

use super::auth::{authorize, DeviceAuth};
use super::bounded::BVec;
use super::wire::{
    pack, same_record, AgentAbout, Batch, ClientMsg, DeviceName, ErrorCode, ServerMsg,
    PROTOCOL_VERSION,
};
use super::ProtocolError;
use tournee_core::clock::WallMs;
use tournee_core::limits::{
    ACK_REJECTIONS_MAX, AGENT_PROGRAM_BYTES_MAX, BATCH_CHANGES_MAX, DEVICE_NAME_BYTES_MAX,
    HELLO_TIMEOUT_MS, SESSION_FLIGHT_BATCHES_MAX, SESSION_QUEUED_BATCHES_MAX, UNIT_DEVICES_MAX,
};
use tournee_core::model::Scope;
use tournee_core::record::Change;
use tournee_core::register::Actor;
use tournee_core::store::{
    chain_next, Chain, Rebase, ServerStore, Store, StoreError, CHAIN_START, NO_ACTOR,
};

/// Counts kept by a session, for its log line and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Changes received.
    pub changes_in: usize,
    /// Changes sent.
    pub changes_out: usize,
    /// Received changes that were new.
    pub applied: usize,
    /// Received changes already known (replays).
    pub duplicates: usize,
    /// Received changes refused.
    pub rejected: usize,
    /// Batches received.
    pub batches_in: usize,
    /// Batches sent.
    pub batches_out: usize,
    /// Rebases: sent (server) or taken (agent).
    pub rebases: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    AwaitWelcome,
    Active,
}

/// The agent's side of a session.
#[derive(Debug)]
pub struct ClientSession {
    state: ClientState,
    scopes: [Scope; 2],
    /// Highest local seq queued for sending.
    sent_to: u64,
    /// Highest local seq the server acknowledged.
    acked: u64,
    /// Server changelog position applied.
    cursor: u64,
    up_to_date: bool,
    out: VecDeque<ClientMsg>,
    clock_offset_ms: Option<i64>,
    stats: SessionStats,
    /// A rebase is under way: nothing is sent until the changelog is applied and the stash
    /// re-issued.
    healing: bool,
    /// Welcome acknowledged less than we know: only a `Rebase` may follow.
    behind: Option<u64>,
    /// Send clock-ahead refusals again as soon as their Ack arrives (a live session).
    resend_at_once: bool,
    /// That was done once in this session already.
    resent_after_ack: bool,
}

impl ClientSession {
    /// Start a session: queues Hello and the first pending batches.
    pub fn new(store: &dyn Store) -> Result<Self, ProtocolError> {
        let identity = store
            .identity()?
            .ok_or_else(|| StoreError::NotInitialized {
                path: "this store".into(),
            })?;
        let stats = store.stats()?;
        let (acked, chain) = store.chain_acked()?;
        let healing = store.rebase_pending()?;
        // A replica rebuilt after a server restore takes our own writes back from it too.
        let own = healing || store.resync_pending()?;
        let mut s = Self {
            state: ClientState::AwaitWelcome,
            scopes: identity.scopes(),
            sent_to: stats.acked_seq,
            acked: stats.acked_seq,
            cursor: stats.cursor,
            up_to_date: false,
            out: VecDeque::new(),
            clock_offset_ms: None,
            stats: SessionStats::default(),
            healing,
            behind: None,
            resend_at_once: false,
            resent_after_ack: false,
        };
        s.out.push_back(ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            cursor: stats.cursor,
            acked,
            last: stats.last_seq,
            chain,
            own,
            epoch: store.server_epoch()?,
            about: AgentAbout::this_build(store.last_sync()?.map(|(_, offset)| offset)),
        });
        s.fill(store)?;
        Ok(s)
    }

    /// Queue pending local changes not yet sent, up to the queue bound. Call again after
    /// acknowledgements or when new local changes were committed.
    pub fn fill(&mut self, store: &dyn Store) -> Result<(), ProtocolError> {
        if self.healing {
            // Whatever is written meanwhile waits for the re-issued stash.
            return Ok(());
        }
        while self.out.len() < SESSION_QUEUED_BATCHES_MAX {
            let mut entries = store.outbox_after(self.sent_to, BATCH_CHANGES_MAX)?;
            if entries.is_empty() {
                break;
            }
            if entries.len() == BATCH_CHANGES_MAX {
                // The last record's run may go on past the read: it goes whole, next time.
                let last = entries[entries.len() - 1].1.clone();
                if let Some(end) = entries.iter().rposition(|(_, c)| !same_record(c, &last)) {
                    entries.truncate(end + 1);
                }
            }
            for (i, (seq, _)) in entries.iter().enumerate() {
                if *seq != self.sent_to + 1 + i as u64 {
                    return Err(StoreError::corrupt(
                        "outbox",
                        format!("sequence {seq} breaks contiguity after {}", self.sent_to),
                    )
                    .into());
                }
            }
            let changes: Vec<_> = entries.into_iter().map(|(_, c)| c).collect();
            for batch in pack(&changes) {
                let first_seq = self.sent_to + 1;
                self.sent_to += batch.len() as u64;
                self.stats.changes_out += batch.len();
                self.stats.batches_out += 1;
                self.out.push_back(ClientMsg::Changes { first_seq, batch });
            }
        }
        Ok(())
    }

    /// Take one server message.
    pub fn handle_message(
        &mut self,
        now: WallMs,
        msg: ServerMsg,
        store: &mut dyn Store,
    ) -> Result<(), ProtocolError> {
        if let Some(had) = self.behind {
            if !matches!(msg, ServerMsg::Rebase { .. } | ServerMsg::Error { .. }) {
                return Err(ProtocolError::ServerBehind {
                    had,
                    now: self.acked,
                });
            }
        }
        match (self.state, msg) {
            (_, ServerMsg::Error { code, message }) => Err(ProtocolError::Remote { code, message }),
            (ClientState::Active, ServerMsg::Rebase { acked, chain }) => {
                self.rebase(acked, chain, store)
            }
            (
                ClientState::AwaitWelcome,
                ServerMsg::Welcome {
                    version,
                    server_time_ms,
                    acked,
                    epoch,
                    devices,
                },
            ) => {
                if version != PROTOCOL_VERSION {
                    return Err(ProtocolError::VersionMismatch {
                        ours: PROTOCOL_VERSION,
                        theirs: version,
                    });
                }
                if epoch != store.server_epoch()? {
                    // The server was restored: its changelog numbers were given again and its
                    // own writes since the backup are gone. It streams everything from the
                    // start (it saw our epoch in Hello), our writes too, into a rebuilt replica.
                    store.adopt_server_epoch(epoch)?;
                    self.cursor = 0;
                }
                if acked < self.acked {
                    // A restored server: it must ask us to rebase, next.
                    self.behind = Some(self.acked);
                }
                let offset = i64::try_from(server_time_ms).unwrap_or(i64::MAX)
                    - i64::try_from(now).unwrap_or(i64::MAX);
                self.clock_offset_ms = Some(offset);
                store.note_sync(now, offset)?;
                let names: Vec<(Actor, String)> = devices
                    .0
                    .into_iter()
                    .map(|d| (d.actor, cut_name(d.name)))
                    .collect();
                store.set_device_names(&names)?;
                // Changes refused earlier for a clock ahead go again, stamped in server time now
                // that the offset is known; this session sends them after the queue.
                if store.requeue_clock_ahead(now)? > 0 {
                    self.fill(store)?;
                }
                // What the server acknowledged beyond our knowledge arrives as an Ack right
                // after, with its refusals: acknowledging here would lose them.
                self.state = ClientState::Active;
                Ok(())
            }
            (ClientState::AwaitWelcome, _) => {
                Err(ProtocolError::Unexpected("a message before Welcome"))
            }
            (ClientState::Active, ServerMsg::Welcome { .. }) => {
                Err(ProtocolError::Unexpected("a second Welcome"))
            }
            (
                ClientState::Active,
                ServerMsg::Ack {
                    after,
                    seq,
                    rejected,
                },
            ) => {
                if after > self.acked {
                    return Err(ProtocolError::Unexpected(
                        "an acknowledgement out of order (it follows one not received)",
                    ));
                }
                // An ack past what this session sent is possible when an older connection of
                // this device delivered more before it died; it must still be a change we have.
                if seq > self.sent_to && seq > store.stats()?.last_seq {
                    return Err(ProtocolError::Unexpected("an ack for changes never made"));
                }
                self.stats.rejected += rejected.len();
                self.on_ack(seq, &rejected.0, store)?;
                self.resend_after_ack(now, &rejected.0, store)
            }
            (
                ClientState::Active,
                ServerMsg::Changes {
                    after,
                    cursor,
                    batch,
                },
            ) => {
                self.check_follows(after, cursor)?;
                let changes = batch.to_changes()?;
                if let Some(c) = changes.iter().find(|c| !self.scopes.contains(&c.scope)) {
                    return Err(ProtocolError::OutOfScope(c.scope.key()));
                }
                self.stats.batches_in += 1;
                self.stats.changes_in += changes.len();
                let summary = store.apply_remote(&changes, Some(cursor))?;
                self.stats.applied += summary.applied;
                self.stats.duplicates += summary.already_seen;
                self.cursor = self.cursor.max(cursor);
                self.up_to_date = false;
                Ok(())
            }
            (ClientState::Active, ServerMsg::UpToDate { after, cursor }) => {
                self.check_follows(after, cursor)?;
                store.apply_remote(&[], Some(cursor))?;
                self.cursor = self.cursor.max(cursor);
                self.up_to_date = true;
                if self.healing {
                    // Everything the server holds is here: re-issue above it, then go on.
                    store.finish_rebase(now)?;
                    self.healing = false;
                    self.out.push_back(ClientMsg::Rebased);
                    self.fill(store)?;
                }
                // After the rebase's re-issue, which reads the records it replaces.
                store.finish_resync()?;
                Ok(())
            }
        }
    }

    /// The server's history of this device ends at `acked`: stash and renumber what it lacks,
    /// and take its whole changelog again before re-issuing.
    fn rebase(
        &mut self,
        acked: u64,
        chain: Chain,
        store: &mut dyn Store,
    ) -> Result<(), ProtocolError> {
        let why = if acked < self.acked {
            Rebase::ServerBehind
        } else {
            Rebase::Rewound
        };
        store.rebase(acked, chain, why)?;
        self.behind = None;
        self.acked = acked;
        self.sent_to = acked;
        self.cursor = 0;
        self.up_to_date = false;
        self.healing = true;
        self.stats.rebases += 1;
        // Batches not yet sent belong to the history the server ignores now.
        self.out.retain(|m| !matches!(m, ClientMsg::Changes { .. }));
        Ok(())
    }

    /// A changelog message must start at or before what we hold: a later start means an
    /// earlier message was lost or overtaken, and taking its cursor would skip changes.
    fn check_follows(&self, after: u64, cursor: u64) -> Result<(), ProtocolError> {
        if after > self.cursor {
            return Err(ProtocolError::Unexpected(
                "a changelog message out of order (it follows one not received)",
            ));
        }
        if cursor < after {
            return Err(ProtocolError::Unexpected(
                "a changelog message ending before it starts",
            ));
        }
        Ok(())
    }

    fn on_ack(
        &mut self,
        seq: u64,
        rejected: &[super::wire::Rejection],
        store: &mut dyn Store,
    ) -> Result<(), ProtocolError> {
        if seq > self.acked {
            store.acknowledge(seq, rejected)?;
            self.acked = seq;
            self.sent_to = self.sent_to.max(seq);
        }
        Ok(())
    }

    /// A live session (the daemon, which may stay connected for hours) sends changes refused
    /// for a clock ahead again as soon as their Ack arrives, stamped in server time, rather
    /// than at the next session; once per session, so a server that keeps refusing them
    /// cannot make it loop.
    pub fn resend_refused_at_once(&mut self) {
        self.resend_at_once = true;
    }

    fn resend_after_ack(
        &mut self,
        now: WallMs,
        rejected: &[super::wire::Rejection],
        store: &mut dyn Store,
    ) -> Result<(), ProtocolError> {
        let clock_ahead = rejected
            .iter()
            .any(|r| matches!(r.reason, super::wire::RejectReason::ClockAhead { .. }));
        if self.resend_at_once && !self.resent_after_ack && clock_ahead {
            self.resent_after_ack = true;
            if store.requeue_clock_ahead(now)? > 0 {
                self.fill(store)?;
            }
        }
        Ok(())
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<ClientMsg> {
        self.out.pop_front()
    }

    /// True when queued messages wait to be sent.
    pub fn has_pending_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// True once the server acknowledged everything sent and the agent has its changelog up to
    /// the last `UpToDate`. Callers also check the outbox holds nothing unsent (`fill`).
    pub fn is_synced(&self) -> bool {
        self.state == ClientState::Active
            && !self.healing
            && self.behind.is_none()
            && self.up_to_date
            && self.acked >= self.sent_to
            && self.out.is_empty()
    }

    /// Server clock minus local clock, once Welcome arrived.
    pub fn clock_offset_ms(&self) -> Option<i64> {
        self.clock_offset_ms
    }

    /// Counts so far.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Highest local sequence acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Server changelog position applied.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitHello { deadline: WallMs },
    Active,
}

/// The agent re-sends changes the server acknowledged but the agent does not know acknowledged:
/// they must chain from the agent's acknowledged history to the server's.
#[derive(Debug, Clone, Copy)]
struct Verify {
    /// What the agent knew acknowledged (refusals after it are sent again).
    agent_acked: u64,
    /// Next sequence to fold.
    next: u64,
    /// The chain up to `next - 1`.
    chain: Chain,
    /// The server's acknowledged sequence.
    target: u64,
    /// The server's chain there (`None`: unknown, learnt from the agent).
    target_chain: Option<Chain>,
}

/// The server's side of a session with one authenticated device.
#[derive(Debug)]
pub struct ServerSession {
    device: DeviceAuth,
    state: ServerState,
    /// Changelog position scanned so far.
    cursor: u64,
    /// Changelog position the agent holds once it took everything sent.
    sent_cursor: u64,
    /// Highest sequence acknowledged to the agent in this session (or known to it at Hello).
    ack_sent: u64,
    announced: Option<u64>,
    out: VecDeque<ServerMsg>,
    stats: SessionStats,
    verify: Option<Verify>,
    /// A `Rebase` was sent: batches are ignored until `Rebased`.
    ignoring: bool,
    /// Whose writes the changelog stream leaves out: the device's, or nobody's while it heals.
    exclude: Actor,
    /// The unit's device names, sent in Welcome.
    device_names: Vec<DeviceName>,
    /// What the agent said about itself in Hello.
    about: Option<AgentAbout>,
    /// Highest local sequence the agent has issued, as far as this session saw.
    agent_last: u64,
}

/// What the fleet view keeps of a session: what the agent said about itself, and how many of
/// its changes were still waiting for an acknowledgement when the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// Program version, at most `AGENT_PROGRAM_BYTES_MAX` bytes.
    pub program: String,
    /// The server's clock minus the laptop's, in ms, as the laptop last measured it.
    pub clock_offset_ms: Option<i64>,
    /// Changes the laptop had that this session did not acknowledge.
    pub waiting: u64,
}

impl ServerSession {
    /// A session for `device`, connected at `now`.
    pub fn new(device: DeviceAuth, now: WallMs) -> Self {
        let exclude = device.actor;
        Self {
            device,
            state: ServerState::AwaitHello {
                deadline: now.saturating_add(HELLO_TIMEOUT_MS),
            },
            cursor: 0,
            sent_cursor: 0,
            ack_sent: 0,
            announced: None,
            out: VecDeque::new(),
            stats: SessionStats::default(),
            verify: None,
            ignoring: false,
            exclude,
            device_names: Vec::new(),
            about: None,
            agent_last: 0,
        }
    }

    /// What the agent said in Hello and what it still had waiting; `None` before Hello.
    pub fn peer_report(&self) -> Option<PeerReport> {
        let about = self.about.as_ref()?;
        Some(PeerReport {
            program: cut_to(about.program.clone(), AGENT_PROGRAM_BYTES_MAX),
            clock_offset_ms: about.clock_offset_ms,
            waiting: self.agent_last.saturating_sub(self.ack_sent),
        })
    }

    /// Name the unit's devices in Welcome (at most `UNIT_DEVICES_MAX`, names cut to
    /// `DEVICE_NAME_BYTES_MAX` bytes), so the laptop shows who wrote a value.
    pub fn with_device_names(mut self, names: impl IntoIterator<Item = (Actor, String)>) -> Self {
        self.device_names = names
            .into_iter()
            .take(UNIT_DEVICES_MAX)
            .map(|(actor, name)| DeviceName {
                actor,
                name: cut_name(name),
            })
            .collect();
        self
    }

    /// The device of this session.
    pub fn device(&self) -> &DeviceAuth {
        &self.device
    }

    /// Take one agent message.
    pub fn handle_message(
        &mut self,
        now: WallMs,
        msg: ClientMsg,
        store: &mut dyn ServerStore,
    ) -> Result<(), ProtocolError> {
        match (self.state, msg) {
            (
                ServerState::AwaitHello { .. },
                ClientMsg::Hello {
                    version,
                    cursor,
                    acked: agent_acked,
                    last,
                    chain,
                    own,
                    epoch: agent_epoch,
                    about,
                },
            ) => {
                if version != PROTOCOL_VERSION {
                    self.out.push_back(ServerMsg::Error {
                        code: ErrorCode::VersionMismatch,
                        message: format!(
                            "server speaks protocol {PROTOCOL_VERSION}, agent {version}; update the agent"
                        ),
                    });
                    return Err(ProtocolError::VersionMismatch {
                        ours: PROTOCOL_VERSION,
                        theirs: version,
                    });
                }
                self.about = Some(about);
                self.agent_last = last;
                let actor = self.device.actor;
                let acked = store.device_acked(actor)?;
                let known = store.device_chain(actor)?;
                let head = store.changelog_head()?;
                let mut epoch = store.epoch()?;
                if agent_epoch == epoch && cursor > head {
                    // A changelog behind a laptop's cursor was restored without `restore`
                    // (its files copied back): every laptop's cursor is suspect now.
                    epoch = store.renew_epoch_once()?;
                }
                let cursor = if agent_epoch == epoch {
                    cursor.min(head)
                } else {
                    // The agent rebuilds its replica from ours: its own writes included.
                    self.exclude = NO_ACTOR;
                    0
                };
                self.out.push_back(ServerMsg::Welcome {
                    version: PROTOCOL_VERSION,
                    server_time_ms: now,
                    acked,
                    epoch,
                    devices: BVec(self.device_names.clone()),
                });
                store.forget_rejections(actor, agent_acked.min(acked))?;
                self.ack_sent = agent_acked;
                if own {
                    self.exclude = NO_ACTOR;
                }
                self.cursor = cursor;
                self.sent_cursor = self.cursor;
                self.state = ServerState::Active;
                let diverged = agent_acked > acked
                    || last < acked
                    || (agent_acked == acked && known.is_some_and(|k| k != chain));
                if diverged {
                    self.rebase(store, acked, known)?;
                } else if acked > agent_acked {
                    // Acknowledgements the agent missed (its link dropped after our commit) are
                    // sent again with their refusals, kept until the agent confirms them; but
                    // only once the changes it re-sends prove they are the ones we took.
                    self.verify = Some(Verify {
                        agent_acked,
                        next: agent_acked + 1,
                        chain,
                        target: acked,
                        target_chain: known,
                    });
                } else if known.is_none() {
                    store.adopt_device_chain(actor, acked, chain)?;
                }
                self.fill(store)
            }
            (ServerState::AwaitHello { .. }, _) => {
                Err(ProtocolError::Unexpected("a message before Hello"))
            }
            (ServerState::Active, ClientMsg::Hello { .. }) => {
                Err(ProtocolError::Unexpected("a second Hello"))
            }
            (ServerState::Active, ClientMsg::Changes { first_seq, batch }) => {
                let batch_last = first_seq.saturating_add(batch.len().saturating_sub(1) as u64);
                self.agent_last = self.agent_last.max(batch_last);
                self.accept(now, vec![(first_seq, batch)], store)
            }
            (ServerState::Active, ClientMsg::Rebased) => {
                // Batches from here on follow the acknowledgement the Rebase named.
                self.ignoring = false;
                Ok(())
            }
        }
    }

    /// Answer a history we do not share: name ours, and stream the changelog from its start,
    /// the device's own writes included; its batches are ignored until `Rebased`.
    fn rebase(
        &mut self,
        store: &mut dyn ServerStore,
        acked: u64,
        known: Option<Chain>,
    ) -> Result<(), ProtocolError> {
        let actor = self.device.actor;
        let chain = match known {
            Some(c) => c,
            None => {
                store.adopt_device_chain(actor, acked, CHAIN_START)?;
                CHAIN_START
            }
        };
        self.verify = None;
        self.ignoring = true;
        self.exclude = NO_ACTOR;
        self.ack_sent = acked;
        self.cursor = 0;
        self.sent_cursor = 0;
        self.announced = None;
        self.stats.rebases += 1;
        // Changelog messages not sent yet would only be sent again.
        self.out
            .retain(|m| !matches!(m, ServerMsg::Changes { .. } | ServerMsg::UpToDate { .. }));
        self.out.push_back(ServerMsg::Rebase { acked, chain });
        Ok(())
    }

    /// Fold re-sent changes into the verification under way. Returns the part of the run left
    /// to accept: empty while the verification needs more, everything after it once it held,
    /// nothing (and a `Rebase` queued) when it failed.
    fn verify_run(
        &mut self,
        store: &mut dyn ServerStore,
        run: Vec<(u64, Batch)>,
    ) -> Result<Vec<(u64, Batch)>, ProtocolError> {
        let mut rest = run.into_iter();
        let Some(mut v) = self.verify else {
            return Ok(rest.collect());
        };
        for (first_seq, batch) in rest.by_ref() {
            let changes = batch.to_changes()?;
            if first_seq > v.next {
                self.rebase(store, v.target, v.target_chain)?;
                return Ok(Vec::new());
            }
            for (i, c) in changes.iter().enumerate() {
                let seq = first_seq + i as u64;
                if seq == v.next && seq <= v.target {
                    v.chain = chain_next(&v.chain, c);
                    v.next += 1;
                }
            }
            if v.next > v.target {
                self.verify = None;
                if v.target_chain.is_some_and(|t| t != v.chain) {
                    self.rebase(store, v.target, v.target_chain)?;
                    return Ok(Vec::new());
                }
                let actor = self.device.actor;
                if v.target_chain.is_none() {
                    store.adopt_device_chain(actor, v.target, v.chain)?;
                }
                let pending = store.device_rejections(actor, v.agent_acked, v.target)?;
                self.push_acks(v.target, pending);
                let mut left = vec![(first_seq, batch)];
                left.extend(rest);
                return Ok(left);
            }
        }
        self.verify = Some(v);
        Ok(Vec::new())
    }

    /// Take the agent messages that arrived together, in order. Consecutive batches (up to
    /// `SESSION_FLIGHT_BATCHES_MAX`) are applied in one store transaction — one commit per
    /// flight instead of one per batch — and acknowledged each as if applied alone.
    pub fn handle_messages(
        &mut self,
        now: WallMs,
        msgs: Vec<ClientMsg>,
        store: &mut dyn ServerStore,
    ) -> Result<(), ProtocolError> {
        let mut run: Vec<(u64, Batch)> = Vec::new();
        for msg in msgs {
            match msg {
                ClientMsg::Changes { first_seq, batch } if self.state == ServerState::Active => {
                    if run.len() == SESSION_FLIGHT_BATCHES_MAX {
                        self.accept(now, std::mem::take(&mut run), store)?;
                    }
                    run.push((first_seq, batch));
                }
                other => {
                    if !run.is_empty() {
                        self.accept(now, std::mem::take(&mut run), store)?;
                    }
                    self.handle_message(now, other, store)?;
                }
            }
        }
        if run.is_empty() {
            Ok(())
        } else {
            self.accept(now, run, store)
        }
    }

    /// Apply consecutive batches in one transaction. A batch out of sequence or undecodable
    /// ends the session after the batches before it are applied and acknowledged.
    fn accept(
        &mut self,
        now: WallMs,
        run: Vec<(u64, Batch)>,
        store: &mut dyn ServerStore,
    ) -> Result<(), ProtocolError> {
        if self.ignoring {
            return Ok(());
        }
        let run = self.verify_run(store, run)?;
        if run.is_empty() {
            return Ok(());
        }
        let acked = store.device_acked(self.device.actor)?;
        if acked != self.ack_sent {
            // Taking these as they come would skip, as duplicates, changes that differ from
            // what another connection of this device had us acknowledge meanwhile.
            return Err(ProtocolError::HistoryMoved {
                had: self.ack_sent,
                now: acked,
            });
        }
        let mut next = acked + 1;
        let mut decoded: Vec<(u64, Vec<Change>)> = Vec::with_capacity(run.len());
        let mut failure = None;
        for (first_seq, batch) in run {
            let changes = match batch.to_changes() {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(e.into());
                    break;
                }
            };
            if first_seq == 0 || first_seq > next {
                failure = Some(ProtocolError::SequenceGap {
                    expected: next,
                    got: first_seq,
                });
                break;
            }
            if !changes.is_empty() {
                next = next.max(first_seq + changes.len() as u64);
            }
            decoded.push((first_seq, changes));
        }
        if !decoded.is_empty() {
            let device = self.device.clone();
            let batches: Vec<(u64, &[Change])> =
                decoded.iter().map(|(f, c)| (*f, c.as_slice())).collect();
            let results =
                store.accept_batches(device.actor, &batches, &mut |c, existing, referenced| {
                    authorize(&device, c, existing, referenced, now)
                })?;
            // One acknowledgement for the whole run: the agent learns the same, in fewer bytes.
            let mut acked = self.ack_sent;
            let mut rejected = Vec::new();
            for ((_, changes), result) in decoded.iter().zip(results) {
                self.stats.batches_in += 1;
                self.stats.changes_in += changes.len();
                self.stats.applied += result.applied;
                self.stats.duplicates += result.duplicates;
                self.stats.rejected += result.rejected.len();
                acked = acked.max(result.acked);
                rejected.extend(result.rejected);
            }
            self.push_acks(acked, rejected);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Acknowledge up to `acked` with `rejected` (ascending), in as many Acks as the refusal
    /// bound needs: each but the last acknowledges up to its last refusal.
    fn push_acks(&mut self, acked: u64, mut rejected: Vec<super::wire::Rejection>) {
        while rejected.len() > ACK_REJECTIONS_MAX {
            let rest = rejected.split_off(ACK_REJECTIONS_MAX);
            let seq = rejected.last().map_or(acked, |r| r.seq);
            self.push_ack(seq, rejected);
            rejected = rest;
        }
        self.push_ack(acked, rejected);
    }

    /// Queue an acknowledgement up to `seq`, chained to the previous one.
    fn push_ack(&mut self, seq: u64, rejected: Vec<super::wire::Rejection>) {
        let after = self.ack_sent;
        self.ack_sent = self.ack_sent.max(seq);
        let mut list = super::bounded::BVec::new();
        for r in rejected {
            let _ = list.try_push(r);
        }
        self.out.push_back(ServerMsg::Ack {
            after,
            seq,
            rejected: list,
        });
    }

    /// Queue changelog batches for the device while the queue has room; when caught up, queue
    /// `UpToDate` once per new position. Call after sending, and when the changelog grew.
    pub fn fill(&mut self, store: &dyn ServerStore) -> Result<(), ProtocolError> {
        if self.state != ServerState::Active {
            return Ok(());
        }
        let scopes = self.device.scopes();
        while self.out.len() < SESSION_QUEUED_BATCHES_MAX {
            let (entries, scanned) =
                store.changelog_after(self.cursor, &scopes, self.exclude, BATCH_CHANGES_MAX)?;
            if entries.is_empty() {
                let after = self.sent_cursor;
                self.cursor = scanned;
                if self.announced != Some(self.cursor) {
                    self.announced = Some(self.cursor);
                    self.sent_cursor = self.cursor;
                    self.out.push_back(ServerMsg::UpToDate {
                        after,
                        cursor: self.cursor,
                    });
                }
                break;
            }
            let gseqs: Vec<u64> = entries.iter().map(|(g, _)| *g).collect();
            let changes: Vec<_> = entries.into_iter().map(|(_, c)| c).collect();
            let batches = pack(&changes);
            let last = batches.len().saturating_sub(1);
            let mut taken = 0usize;
            for (i, batch) in batches.into_iter().enumerate() {
                taken += batch.len();
                let cursor = if i == last {
                    scanned
                } else {
                    gseqs
                        .get(taken.saturating_sub(1))
                        .copied()
                        .unwrap_or(scanned)
                };
                self.stats.changes_out += batch.len();
                self.stats.batches_out += 1;
                let after = self.sent_cursor;
                self.sent_cursor = cursor;
                self.out.push_back(ServerMsg::Changes {
                    after,
                    cursor,
                    batch,
                });
            }
            self.cursor = scanned;
        }
        Ok(())
    }

    /// True when queued messages wait to be sent.
    pub fn has_pending_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<ServerMsg> {
        self.out.pop_front()
    }

    /// When `handle_timeout` must be called, if ever.
    pub fn poll_timeout(&self) -> Option<WallMs> {
        match self.state {
            ServerState::AwaitHello { deadline } => Some(deadline),
            ServerState::Active => None,
        }
    }

    /// Time passed: a session that never said Hello ends.
    pub fn handle_timeout(&mut self, now: WallMs) -> Result<(), ProtocolError> {
        match self.state {
            ServerState::AwaitHello { deadline } if now >= deadline => {
                Err(ProtocolError::Timeout("Hello"))
            }
            _ => Ok(()),
        }
    }

    /// The message that tells the agent why the session ends.
    pub fn error_message(err: &ProtocolError) -> ServerMsg {
        ServerMsg::Error {
            code: err.code(),
            message: err.to_string(),
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Changelog position sent so far.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }
}

/// A device name cut to `DEVICE_NAME_BYTES_MAX` bytes, on a character boundary.
fn cut_name(name: String) -> String {
    cut_to(name, DEVICE_NAME_BYTES_MAX)
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut_to(mut name: String, max: usize) -> String {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}
