//! Deterministic fault simulation: one server and 3–5 agents running the real sans-IO sessions,
//! store and merge code on real SQLite files, under a nemesis drawn from a seed — link cuts,
//! one-way and full partitions, duplicated and reordered frames, crashes and restarts of any
//! process at any step (including between a commit and its acknowledgement), clock skew of
//! ±1 h and ±7 days and clock jumps — interleaved with user actions on shared records.
//! At quiescence a checker states the oracles: no loss, convergence, isolation, integrity.
//!
//! The workload covers every record kind through the domain's own actions: laptops record
//! appointments (with citizens), mark passages (held, cancelled, actual times), record requests
//! at appointments or marked passages and edit citizens and requests; the scheduler lays out
//! stops and rounds, edits rounds (the server's `scheduling` code regenerates their passages,
//! tombstoning dropped ones) and stops, and plans home visits. Rules per kind: a passage a
//! laptop marked stays live and marked everywhere whatever the scheduler tombstoned; a request
//! has one live parent in its scope; an appointment's citizen and passage, a passage's round and
//! stop exist where it is; every stop of a territory reaches its laptops and no other.
//! Ids come from the seed, not the OS, so a run replays bit for bit. Not covered: round deletion,
//! the daily horizon extension, conflict resolution (see `workload` and `oracles`).
//!
//! The network is simulated at the session level: frames are real encoded bytes in per-
//! connection queues; QUIC itself is not in the loop (its own loss recovery is tested through
//! the UDP relay). Both ends are driven by the production pump (`tournee_proto::pump`, the
//! core `serve` and the agent run over quinn): the simulation only decides which bytes arrive,
//! when, how often and in which order. Everything random comes from the seed, so a failing
//! seed replays bit for bit.

mod history;
mod oracles;
mod workload;

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};

use tournee_core::export;
use tournee_core::model::{Kind, Scope};
use tournee_core::record::Change;
use tournee_core::rng::SeededRng;
use tournee_core::store::{Identity, LocalAction, ServerStore, Store, StoreError};
use tournee_proto::auth::DeviceAuth;
use tournee_proto::frame::FrameReader;
use tournee_proto::pump::{ClientPump, ServerPump};
use tournee_proto::session::ServerSession;
use tournee_proto::wire::{ClientMsg, ServerMsg};
use tournee_server::registry::Unit;
use tournee_store::{Durability, SqliteStore};
use uuid::Uuid;

/// Start of simulated time (ms since the epoch): a Monday morning in 2026.
const T0: u64 = 1_790_000_000_000;
/// Simulated time per step, in ms.
const STEP_MS: u64 = 1_000;
const HOUR: i64 = 3_600_000;
const WEEK: i64 = 7 * 24 * HOUR;
/// Most sessions run per agent at quiescence before declaring non-convergence.
const QUIESCENCE_ROUNDS: usize = 4;
/// Most message deliveries per quiescence session.
const SESSION_STEPS_MAX: usize = 10_000;
/// Most queued frames one delivery hands to the server together (a flight read at once).
const SIM_FLIGHT_FRAMES_MAX: usize = 4;

/// Counts of what the nemesis and the users did in one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// User actions committed locally.
    pub actions: u64,
    /// Laptops rolled back to an earlier copy of their files.
    pub agent_rollbacks: u64,
    /// Laptops whose files were copied to a second laptop.
    pub clones: u64,
    /// Server restores from a backup.
    pub server_rollbacks: u64,
    /// Rebases the agents took (histories healed), in sessions that ended before the check.
    pub rebases: u64,
    /// User actions refused locally (e.g. status going back).
    pub refused: u64,
    /// Scheduler actions on the server.
    pub scheduler: u64,
    /// Sessions opened.
    pub sessions: u64,
    /// Frames delivered.
    pub delivered: u64,
    /// Links cut.
    pub cuts: u64,
    /// Partitions (one-way or full) started.
    pub partitions: u64,
    /// Frames duplicated.
    pub duplicated: u64,
    /// Frames reordered.
    pub reordered: u64,
    /// Agent crashes.
    pub agent_crashes: u64,
    /// Server crashes.
    pub server_crashes: u64,
    /// Server crashes with an acknowledgement committed but not delivered.
    pub crash_before_ack: u64,
    /// Clock skew changes and jumps.
    pub clock_faults: u64,
    /// Sessions ended by a protocol error (expected under reordering and duplication).
    pub session_errors: u64,
    /// Changes the server refused (clock ahead before the first sync, …).
    pub rejected: u64,
    /// Passage marks (held, cancelled, actual times) committed on laptops.
    pub passages_marked: u64,
    /// Requests recorded.
    pub requests: u64,
    /// Citizens recorded (with an appointment, by a laptop or the scheduler).
    pub citizens: u64,
    /// Walk-ins recorded.
    pub visits: u64,
    /// Collective sessions recorded.
    pub workshops: u64,
    /// Person merges written.
    pub merges: u64,
    /// Requests deleted (tombstoned).
    pub requests_deleted: u64,
    /// Stops the scheduler created.
    pub stops: u64,
    /// Round edits the scheduler made (each regenerating the round's passages).
    pub round_edits: u64,
    /// Unmarked passages those edits tombstoned.
    pub passages_removed: u64,
    /// Scheduler edits the server's validation refused.
    pub scheduler_refused: u64,
    /// Marked passages carrying a tombstone at the end, kept live by the marked-passage guard.
    pub marks_over_tombstone: u64,
    /// Partial records and dangling references on laptops that keep refused writes for review
    /// (an edit of a record whose creation was refused, a marking of a passage a server restore
    /// lost); excused unless `strict_refusals`. The server never holds any.
    pub orphans_after_refusal: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        let f = |a: &mut u64, b: u64| *a += b;
        f(&mut self.actions, o.actions);
        f(&mut self.agent_rollbacks, o.agent_rollbacks);
        f(&mut self.clones, o.clones);
        f(&mut self.server_rollbacks, o.server_rollbacks);
        f(&mut self.rebases, o.rebases);
        f(&mut self.refused, o.refused);
        f(&mut self.scheduler, o.scheduler);
        f(&mut self.sessions, o.sessions);
        f(&mut self.delivered, o.delivered);
        f(&mut self.cuts, o.cuts);
        f(&mut self.partitions, o.partitions);
        f(&mut self.duplicated, o.duplicated);
        f(&mut self.reordered, o.reordered);
        f(&mut self.agent_crashes, o.agent_crashes);
        f(&mut self.server_crashes, o.server_crashes);
        f(&mut self.crash_before_ack, o.crash_before_ack);
        f(&mut self.clock_faults, o.clock_faults);
        f(&mut self.session_errors, o.session_errors);
        f(&mut self.rejected, o.rejected);
        f(&mut self.passages_marked, o.passages_marked);
        f(&mut self.requests, o.requests);
        f(&mut self.citizens, o.citizens);
        f(&mut self.visits, o.visits);
        f(&mut self.workshops, o.workshops);
        f(&mut self.merges, o.merges);
        f(&mut self.requests_deleted, o.requests_deleted);
        f(&mut self.stops, o.stops);
        f(&mut self.round_edits, o.round_edits);
        f(&mut self.passages_removed, o.passages_removed);
        f(&mut self.scheduler_refused, o.scheduler_refused);
        f(&mut self.marks_over_tombstone, o.marks_over_tombstone);
        f(&mut self.orphans_after_refusal, o.orphans_after_refusal);
    }

    /// Sum of several runs.
    pub fn total<'a>(runs: impl IntoIterator<Item = &'a Counts>) -> Counts {
        let mut t = Counts::default();
        for r in runs {
            t.add(r);
        }
        t
    }
}

/// What a run proved.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Counts.
    pub counts: Counts,
    /// SHA-256 of the server's canonical export at the end (equal for equal seeds).
    pub final_digest: String,
}

/// A violated oracle, with what is needed to replay it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What went wrong.
    pub what: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}: {}\nreplay: cargo run --release -p tournee-tests --bin sim -- --seed {} --verbose",
            self.seed, self.what, self.seed
        )
    }
}

struct Conn {
    client: ClientPump,
    server: ServerPump,
    up: VecDeque<Vec<u8>>,
    down: VecDeque<Vec<u8>>,
}

struct Agent {
    auth: DeviceAuth,
    path: PathBuf,
    store: SqliteStore,
    skew_ms: i64,
    /// Steps during which frames from the agent (`.0`) or to it (`.1`) are lost.
    partition: (u64, u64),
    conn: Option<Conn>,
    /// Appointments of its unit it knows about (created or received), for edits.
    known: Vec<Uuid>,
    /// Live passages of its unit it received, to mark.
    passages: Vec<Uuid>,
    /// Citizens of its unit it knows about.
    citizens: Vec<Uuid>,
    /// Requests of its unit it knows about.
    requests: Vec<Uuid>,
    /// Collective sessions of its unit it knows about.
    workshops: Vec<Uuid>,
    /// A copy of its files taken earlier, to roll back to.
    snapshot: Option<PathBuf>,
}

impl Agent {
    /// Remember the records one of its actions created, for later edits.
    fn learn(&mut self, action: &LocalAction) {
        for e in action.edits.iter().filter(|e| e.create) {
            match e.kind {
                Kind::Appointment => self.known.push(e.id),
                Kind::Citizen => self.citizens.push(e.id),
                Kind::Request => self.requests.push(e.id),
                Kind::Workshop => self.workshops.push(e.id),
                _ => {}
            }
        }
    }
}

struct World {
    seed: u64,
    rng: SeededRng,
    step: u64,
    server_path: PathBuf,
    server: SqliteStore,
    agents: Vec<Agent>,
    /// The units the agents belong to, as the scheduler sees them (the Somme's first).
    units: Vec<Unit>,
    counts: Counts,
    /// Every change committed on an agent: (agent index, change).
    ledger: Vec<(usize, Change)>,
    /// A copy of the server's files, to restore.
    server_backup: Option<PathBuf>,
    verbose: bool,
    /// Fail on a laptop's partial records and dangling references even where its refused
    /// writes explain them.
    strict_refusals: bool,
}

fn open(path: &Path) -> Result<SqliteStore, String> {
    // Process crashes lose nothing that committed even with NORMAL (the WAL is in the OS);
    // power loss is a separate harness.
    // The reporting projection is plugged into every store; only the server's writes use it.
    tournee_report::facts::open_server_store_with(path, Durability::Normal)
        .map_err(|e| format!("open {}: {e}", path.display()))
}

impl World {
    fn now(&self) -> u64 {
        T0 + self.step * STEP_MS
    }

    fn agent_now(&self, i: usize) -> u64 {
        self.now().saturating_add_signed(self.agents[i].skew_ms)
    }

    fn trace(&self, what: impl fmt::Display) {
        if self.verbose {
            eprintln!("[{:>5}] {what}", self.step);
        }
    }

    fn fail(&self, what: impl Into<String>) -> Failure {
        Failure {
            seed: self.seed,
            what: format!("step {}: {}", self.step, what.into()),
        }
    }

    fn user_action(&mut self, i: usize) -> Result<(), Failure> {
        let now = self.agent_now(i);
        let pick = self.rng.below(24);
        // Each kind of edit needs a record the laptop knows; without one it records a new
        // appointment instead.
        let built = match pick {
            0..=5 => Ok(None),
            6..=9 => self.edit_appointment(i, now, pick),
            10..=13 => self.mark_passage(i),
            14..=16 => self.new_request(i, now),
            17 => self.edit_request(i),
            18 | 19 => self.edit_citizen(i),
            20 => self.new_visit(i, now),
            21 => self.merge_persons(i),
            22 => self.workshop(i, now),
            _ => self.delete_request(i),
        };
        let built = match built {
            Ok(Some(action)) => Ok(action),
            Ok(None) => self.new_appointment(i, now),
            Err(e) => Err(e),
        };
        let action = match built {
            Ok(action) => action,
            Err(e) if is_refusal(&e) => {
                self.counts.refused += 1;
                return Ok(());
            }
            Err(e) => return Err(self.fail(format!("agent {i} action: {e}"))),
        };
        match self.agents[i].store.write_local(now, &action) {
            Ok(changes) => {
                self.counts.actions += 1;
                self.count_action(&action);
                self.agents[i].learn(&action);
                let last = self.agents[i]
                    .store
                    .stats()
                    .map(|s| s.last_seq)
                    .unwrap_or(0);
                self.trace(format_args!(
                    "agent {i} writes {} change(s), up to seq {last}, records {:?}",
                    changes.len(),
                    changes
                        .iter()
                        .map(|c| format!("{} {}", c.kind, &c.record.to_string()[..8]))
                        .collect::<std::collections::BTreeSet<_>>()
                ));
                for c in changes {
                    self.ledger.push((i, c));
                }
                Ok(())
            }
            Err(e) if is_refusal(&e) => {
                self.counts.refused += 1;
                Ok(())
            }
            Err(e) => Err(self.fail(format!("agent {i} local write failed: {e}"))),
        }
    }

    fn scheduler_action(&mut self) -> Result<(), Failure> {
        // Mostly the Somme's unit (three or more laptops share it), sometimes the other one.
        let u = usize::from(!self.rng.chance_per_mille(750));
        let unit = self.units[u].clone();
        match self.rng.below(10) {
            0..=3 => self.scheduler_appointment(&unit)?,
            4..=6 => self.scheduler_edit_round(&unit)?,
            7 => self.scheduler_add_stop(&unit.territory)?,
            8 => self.scheduler_edit_stop(&unit.territory)?,
            _ => self.scheduler_add_round(&unit)?,
        }
        self.counts.scheduler += 1;
        Ok(())
    }

    fn connect(&mut self, i: usize) -> Result<(), Failure> {
        if self.agents[i].conn.is_some() {
            return Ok(());
        }
        let client = ClientPump::new(&self.agents[i].store)
            .map_err(|e| self.fail(format!("client session: {e}")))?;
        let server = ServerPump::new(ServerSession::new(self.agents[i].auth.clone(), self.now()));
        let mut conn = Conn {
            client,
            server,
            up: VecDeque::new(),
            down: VecDeque::new(),
        };
        while let Some(f) = conn.client.poll_transmit() {
            conn.up.push_back(f);
        }
        self.agents[i].conn = Some(conn);
        self.counts.sessions += 1;
        self.trace(format_args!("agent {i} connects"));
        // A copy of this laptop's files connected as the same device: `serve` closes the older
        // connection (superseded), though its last flights may still be on their way; the
        // simulation leaves it up a quarter of the time to play that race.
        let actor = self.agents[i].auth.actor;
        for j in 0..self.agents.len() {
            if j != i
                && self.agents[j].auth.actor == actor
                && self.agents[j].conn.is_some()
                && self.rng.chance_per_mille(750)
            {
                self.drop_conn(j, "superseded");
            }
        }
        Ok(())
    }

    fn drop_conn(&mut self, i: usize, why: &str) {
        if let Some(c) = self.agents[i].conn.take() {
            self.counts.rebases += c.client.session().stats().rebases as u64;
            self.trace(format_args!("agent {i} connection ends: {why}"));
        }
    }

    /// Deliver one frame of agent `i`'s connection, `up` (to the server) or down.
    fn deliver(&mut self, i: usize, up: bool) -> Result<(), Failure> {
        let step = self.step;
        let dup = self.rng.chance_per_mille(30);
        let reorder = self.rng.chance_per_mille(30);
        // Frames that reach the server in one read are handled as one flight (one store
        // transaction), as `serve` does.
        let coalesce = up && self.rng.chance_per_mille(500);
        let a = &mut self.agents[i];
        let Some(conn) = a.conn.as_mut() else {
            return Ok(());
        };
        let queue = if up { &mut conn.up } else { &mut conn.down };
        if queue.is_empty() {
            return Ok(());
        }
        if reorder && queue.len() > 1 {
            queue.swap(0, 1);
            self.counts.reordered += 1;
        }
        let Some(mut bytes) = queue.pop_front() else {
            return Ok(());
        };
        if coalesce {
            for _ in 0..SIM_FLIGHT_FRAMES_MAX - 1 {
                match queue.pop_front() {
                    Some(more) => bytes.extend_from_slice(&more),
                    None => break,
                }
            }
        }
        let lost = if up {
            a.partition.0 > step
        } else {
            a.partition.1 > step
        };
        if lost {
            // A frame lost beyond QUIC's recovery: the connection dies.
            self.drop_conn(i, "partition");
            return Ok(());
        }
        let copies = if dup { 2 } else { 1 };
        if dup {
            self.counts.duplicated += 1;
        }
        for _ in 0..copies {
            self.counts.delivered += 1;
            let result = self.handle_frame(i, up, &bytes);
            if let Err(e) = result {
                if e.contains("storage error") || e.contains("damaged") {
                    return Err(self.fail(format!("agent {i} session storage failure: {e}")));
                }
                self.counts.session_errors += 1;
                self.drop_conn(i, &e);
                break;
            }
        }
        Ok(())
    }

    fn crash_agent(&mut self, i: usize) -> Result<(), Failure> {
        self.drop_conn(i, "agent crash");
        let path = self.agents[i].path.clone();
        // Dropping the store closes it as a killed process would leave it: every committed
        // transaction is in the file, nothing else.
        let reopened = open(&path).map_err(|e| self.fail(e))?;
        self.agents[i].store = reopened;
        self.counts.agent_crashes += 1;
        self.trace(format_args!("agent {i} crashes and restarts"));
        Ok(())
    }

    fn crash_server(&mut self) -> Result<(), Failure> {
        for i in 0..self.agents.len() {
            if let Some(c) = &self.agents[i].conn {
                if c.down.iter().any(|f| {
                    let mut r = FrameReader::new();
                    r.push(f).is_ok()
                        && matches!(r.next_msg::<ServerMsg>(), Ok(Some(ServerMsg::Ack { .. })))
                }) {
                    self.counts.crash_before_ack += 1;
                }
            }
            self.drop_conn(i, "server crash");
        }
        self.server = open(&self.server_path).map_err(|e| self.fail(e))?;
        self.counts.server_crashes += 1;
        self.trace("server crashes and restarts");
        Ok(())
    }

    fn step_once(&mut self) -> Result<(), Failure> {
        self.step += 1;
        let n = self.agents.len() as u64;
        let i = usize::try_from(self.rng.below(n)).unwrap_or(0);
        match self.rng.below(100) {
            0..=24 => self.user_action(i)?,
            25..=27 => self.scheduler_action()?,
            28..=39 => self.connect(i)?,
            40..=79 => {
                let up = self.rng.chance_per_mille(500);
                self.deliver(i, up)?;
            }
            80..=83 => {
                if self.agents[i].conn.is_some() {
                    self.counts.cuts += 1;
                    self.drop_conn(i, "link cut");
                }
            }
            84..=86 => {
                let len = 5 + self.rng.below(40);
                let until = self.step + len;
                match self.rng.below(3) {
                    0 => self.agents[i].partition.0 = until,
                    1 => self.agents[i].partition.1 = until,
                    _ => self.agents[i].partition = (until, until),
                }
                self.counts.partitions += 1;
                self.trace(format_args!("agent {i} partitioned for {len} steps"));
            }
            87..=89 => self.crash_agent(i)?,
            90 => self.crash_server()?,
            91..=93 => {
                let skews = [0, HOUR, -HOUR, WEEK, -WEEK];
                let s = skews[usize::try_from(self.rng.below(5)).unwrap_or(0)];
                let jump = i64::try_from(self.rng.below(600_000)).unwrap_or(0) - 300_000;
                self.agents[i].skew_ms = if self.rng.chance_per_mille(500) {
                    s
                } else {
                    self.agents[i].skew_ms + jump
                };
                self.counts.clock_faults += 1;
                self.trace(format_args!(
                    "agent {i} clock skew now {} ms",
                    self.agents[i].skew_ms
                ));
            }
            94 => self.history_fault(i)?,
            _ => {
                // Time passes; a live session notices new local commits.
                let a = &mut self.agents[i];
                if let Some(conn) = a.conn.as_mut() {
                    if conn.client.fill(&a.store).is_ok() {
                        while let Some(f) = conn.client.poll_transmit() {
                            conn.up.push_back(f);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Heal everything and sync each agent to completion, a few rounds.
    fn quiesce(&mut self) -> Result<(), Failure> {
        for i in 0..self.agents.len() {
            self.drop_conn(i, "quiescence");
            self.agents[i].partition = (0, 0);
            self.agents[i].skew_ms = 0;
        }
        for _round in 0..QUIESCENCE_ROUNDS {
            for i in 0..self.agents.len() {
                self.step += 1;
                self.connect(i)?;
                let mut done = false;
                for _ in 0..SESSION_STEPS_MAX {
                    let a = &self.agents[i];
                    let Some(conn) = a.conn.as_ref() else { break };
                    if conn.up.is_empty() && conn.down.is_empty() {
                        if conn.client.is_synced() {
                            done = true;
                            break;
                        }
                        let a = &mut self.agents[i];
                        if let Some(conn) = a.conn.as_mut() {
                            conn.client.fill(&a.store).map_err(|e| Failure {
                                seed: self.seed,
                                what: e.to_string(),
                            })?;
                            while let Some(f) = conn.client.poll_transmit() {
                                conn.up.push_back(f);
                            }
                            if conn.up.is_empty() {
                                break;
                            }
                        }
                    }
                    let up = !self.agents[i]
                        .conn
                        .as_ref()
                        .is_some_and(|c| c.up.is_empty());
                    // No faults at quiescence: plain delivery.
                    self.deliver_plain(i, up)?;
                }
                if !done {
                    return Err(self.fail(format!("agent {i} did not reach sync at quiescence")));
                }
                self.drop_conn(i, "synced");
            }
        }
        Ok(())
    }

    fn deliver_plain(&mut self, i: usize, up: bool) -> Result<(), Failure> {
        let a = &mut self.agents[i];
        let Some(conn) = a.conn.as_mut() else {
            return Ok(());
        };
        let queue = if up { &mut conn.up } else { &mut conn.down };
        let Some(bytes) = queue.pop_front() else {
            return Ok(());
        };
        self.handle_frame(i, up, &bytes)
            .map_err(|e| self.fail(format!("agent {i} session failed at quiescence: {e}")))
    }

    /// Hand the bytes of one delivery to the server's (`up`) or the agent's pump of agent `i`'s
    /// connection, as one read, and queue the frames that pump answers.
    fn handle_frame(&mut self, i: usize, up: bool, bytes: &[u8]) -> Result<(), String> {
        let server_now = self.now();
        let agent_now = self.agent_now(i);
        if self.verbose {
            self.trace_delivery(i, up, bytes);
        }
        let a = &mut self.agents[i];
        let Some(conn) = a.conn.as_mut() else {
            return Ok(());
        };
        if up {
            conn.server
                .handle_read(server_now, bytes, &mut self.server)
                .map_err(|e| e.to_string())?;
            let down = &mut conn.down;
            conn.server
                .flush(&self.server, |f| down.push_back(f))
                .map_err(|e| e.to_string())?;
        } else {
            // Refusals are counted as they arrive: clock-ahead ones are sent again later, so
            // the rejected list at the end no longer holds them.
            let before = conn.client.session().stats().rejected;
            let read = conn.client.handle_read(agent_now, bytes, &mut a.store);
            let refused = conn.client.session().stats().rejected - before;
            self.counts.rejected += refused as u64;
            read.map_err(|e| e.to_string())?;
            while let Some(f) = conn.client.poll_transmit() {
                conn.up.push_back(f);
            }
        }
        Ok(())
    }

    /// Print the messages of one delivery (decoded apart: the pump decodes its own copy).
    fn trace_delivery(&self, i: usize, up: bool, bytes: &[u8]) {
        let step = self.step;
        let mut reader = FrameReader::new();
        if reader.push(bytes).is_err() {
            return;
        }
        if up {
            while let Ok(Some(msg)) = reader.next_msg::<ClientMsg>() {
                eprintln!(
                    "[{step:>5}]   agent {i} -> server: {}",
                    describe_client(&msg)
                );
            }
        } else {
            while let Ok(Some(msg)) = reader.next_msg::<ServerMsg>() {
                eprintln!(
                    "[{step:>5}]   server -> agent {i}: {}",
                    describe_server(&msg)
                );
            }
        }
    }

    /// The first record whose canonical form differs between agent `i` and the server.
    fn first_difference(&self, i: usize) -> String {
        let a = &self.agents[i];
        let scopes = a.auth.scopes();
        let mut mine = std::collections::BTreeMap::new();
        let mut theirs = std::collections::BTreeMap::new();
        let _ = a.store.for_each_record(Some(&scopes), &mut |r| {
            mine.insert(r.id, r.canonical_json());
            Ok(())
        });
        let _ = self.server.for_each_record(Some(&scopes), &mut |r| {
            theirs.insert(r.id, r.canonical_json());
            Ok(())
        });
        for (id, m) in &mine {
            match theirs.get(id) {
                None => return format!("record {id} only on the agent: {m}"),
                Some(t) if t != m => return format!("record {id}\n agent:  {m}\n server: {t}"),
                _ => {}
            }
        }
        for (id, t) in &theirs {
            if !mine.contains_key(id) {
                return format!("record {id} only on the server: {t}");
            }
        }
        "no record differs".into()
    }

    fn check(&mut self) -> Result<(), Failure> {
        self.server
            .integrity_check()
            .map_err(|e| self.fail(format!("server integrity: {e}")))?;
        for (i, a) in self.agents.iter().enumerate() {
            a.store
                .integrity_check()
                .map_err(|e| self.fail(format!("agent {i} integrity: {e}")))?;
            let scopes = a.auth.scopes();
            // Isolation.
            let mut foreign = None;
            a.store
                .for_each_record(None, &mut |r| {
                    if !scopes.contains(&r.scope) && foreign.is_none() {
                        foreign = Some(r.id);
                    }
                    Ok(())
                })
                .map_err(|e| self.fail(e.to_string()))?;
            if let Some(id) = foreign {
                // Only its own refused writes may name another scope; none are made here.
                return Err(self.fail(format!("agent {i} holds out-of-scope record {id}")));
            }
            let rejected = a.store.rejected().map_err(|e| self.fail(e.to_string()))?;
            let stats = a.store.stats().map_err(|e| self.fail(e.to_string()))?;
            if stats.pending != 0 {
                return Err(self.fail(format!(
                    "agent {i} still has {} pending changes",
                    stats.pending
                )));
            }
            // Convergence.
            let mine =
                export::digest(&a.store, Some(&scopes)).map_err(|e| self.fail(e.to_string()))?;
            let server = export::digest(&self.server, Some(&scopes))
                .map_err(|e| self.fail(e.to_string()))?;
            if rejected.is_empty() {
                if mine != server {
                    return Err(self.fail(format!(
                        "agent {i} digest {mine} differs from the server's {server}: {}",
                        self.first_difference(i)
                    )));
                }
            } else {
                // The agent keeps its refused writes for review; apart from them it must hold
                // everything the server holds for its scope.
                let mut missing = None;
                self.server
                    .for_each_record(Some(&scopes), &mut |srv| {
                        match a.store.record(srv.id)? {
                            Some(mut local) => {
                                let before = local.clone();
                                local.merge(srv.clone())?;
                                if local != before && missing.is_none() {
                                    missing = Some(srv.id);
                                }
                            }
                            None => {
                                if missing.is_none() {
                                    missing = Some(srv.id);
                                }
                            }
                        }
                        Ok(())
                    })
                    .map_err(|e| self.fail(e.to_string()))?;
                if let Some(id) = missing {
                    return Err(self.fail(format!("agent {i} lacks server state of record {id}")));
                }
            }
            // No loss: every committed change is on the server (present or causally replaced),
            // unless the server refused it and the agent keeps it with a reason.
            for (_, c) in self.ledger.iter().filter(|(j, _)| *j == i) {
                if kept_refused(&rejected, c) {
                    continue;
                }
                let on_server = self
                    .server
                    .record(c.record)
                    .map_err(|e| self.fail(e.to_string()))?
                    .and_then(|r| {
                        r.register(c.field)
                            .map(|reg| reg.clock().get(&c.write.dot.actor) >= c.write.dot.counter)
                    });
                if on_server != Some(true) {
                    return Err(self.fail(format!(
                        "lost: agent {i}'s write {}:{} of {}.{} is not on the server",
                        c.write.dot.actor, c.write.dot.counter, c.record, c.field
                    )));
                }
            }
        }
        let (entries, _) = self
            .server
            .changelog_after(
                0,
                &[Scope::Unit(self.agents[0].auth.unit.clone())],
                u32::MAX,
                usize::MAX >> 1,
            )
            .map_err(|e| self.fail(e.to_string()))?;
        // Nothing applied twice: each changelog entry is a distinct write.
        let mut dots = std::collections::HashSet::new();
        for (_, c) in &entries {
            if !dots.insert((c.record, c.field, c.write.dot.actor, c.write.dot.counter)) {
                return Err(self.fail(format!(
                    "write {:?} logged twice",
                    (c.record, c.field, c.write.dot)
                )));
            }
        }
        let (over_tombstone, excused) = self.check_kinds()?;
        self.counts.marks_over_tombstone = over_tombstone;
        self.counts.orphans_after_refusal = excused;
        Ok(())
    }
}

/// True when the laptop keeps `c` in its rejected list with a reason: as written, or written
/// again over it (a rebase's or requeue's re-issue, whose context covers the first write's dot).
pub(crate) fn kept_refused(rejected: &[tournee_core::store::RejectedChange], c: &Change) -> bool {
    rejected.iter().any(|r| {
        r.change == *c
            || (r.change.record == c.record
                && r.change.field == c.field
                && r.change.write.ctx.get(&c.write.dot.actor) >= c.write.dot.counter)
    })
}

/// A refusal of a user's or scheduler's action by the domain (a status going back, a record
/// gone), as opposed to a failure of the store.
fn is_refusal(e: &StoreError) -> bool {
    matches!(e, StoreError::Model(_) | StoreError::NotFound { .. })
}

fn describe_client(m: &ClientMsg) -> String {
    match m {
        ClientMsg::Hello { cursor, acked, .. } => format!("Hello cursor {cursor} acked {acked}"),
        ClientMsg::Changes { first_seq, batch } => format!("Changes {first_seq}..+{}", batch.len()),
        ClientMsg::Rebased => "Rebased".to_owned(),
    }
}

fn describe_server(m: &ServerMsg) -> String {
    match m {
        ServerMsg::Welcome { acked, .. } => format!("Welcome acked {acked}"),
        ServerMsg::Ack {
            after,
            seq,
            rejected,
        } => format!(
            "Ack {after}..{seq} (rejected: {})",
            rejected
                .0
                .iter()
                .map(|r| format!("{} {}", r.seq, r.reason))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        ServerMsg::Changes {
            after,
            cursor,
            batch,
        } => format!("Changes {after}..{cursor} ({})", batch.len()),
        ServerMsg::UpToDate { after, cursor } => format!("UpToDate {after}..{cursor}"),
        ServerMsg::Error { message, .. } => format!("Error {message}"),
        ServerMsg::Rebase { acked, .. } => format!("Rebase acked {acked}"),
    }
}

/// Run one seed in `dir` (which must be empty). `steps` user/nemesis steps, then quiescence.
pub fn run(seed: u64, steps: u64, dir: &Path, verbose: bool) -> Result<Outcome, Failure> {
    run_with(seed, steps, dir, verbose, false)
}

/// `run`, optionally failing on a laptop's partial records and dangling references that its
/// refused writes explain (`Counts::orphans_after_refusal` counts them otherwise).
pub fn run_with(
    seed: u64,
    steps: u64,
    dir: &Path,
    verbose: bool,
    strict_refusals: bool,
) -> Result<Outcome, Failure> {
    let fail = |what: String| Failure { seed, what };
    let mut rng = SeededRng::new(seed);
    let n_agents = 3 + usize::try_from(rng.below(3)).unwrap_or(0);
    let server_path = dir.join("server.sqlite");
    let mut server = open(&server_path).map_err(fail)?;
    server
        .set_identity(&Identity::server())
        .map_err(|e| fail(e.to_string()))?;
    let mut agents = Vec::new();
    for k in 0..n_agents {
        // The last agent belongs to another unit and territory: it must never see the others.
        let (unit, territory) = if k + 1 == n_agents {
            ("bus-02-1", "02")
        } else {
            ("bus-80-1", "80")
        };
        let path = dir.join(format!("agent-{k}.sqlite"));
        let mut store = open(&path).map_err(fail)?;
        let actor = u32::try_from(k + 1).unwrap_or(u32::MAX);
        store
            .set_identity(&Identity {
                device: actor,
                unit: unit.into(),
                territory: territory.into(),
            })
            .map_err(|e| fail(e.to_string()))?;
        agents.push(Agent {
            auth: DeviceAuth {
                actor,
                unit: unit.into(),
                territory: territory.into(),
            },
            path,
            store,
            skew_ms: 0,
            partition: (0, 0),
            conn: None,
            known: Vec::new(),
            passages: Vec::new(),
            citizens: Vec::new(),
            requests: Vec::new(),
            workshops: Vec::new(),
            snapshot: None,
        });
    }
    let mut w = World {
        seed,
        rng,
        step: 0,
        server_path,
        server,
        agents,
        units: [("bus-80-1", "80"), ("bus-02-1", "02")]
            .map(|(id, territory)| Unit {
                id: id.into(),
                name: id.into(),
                territory: territory.into(),
                kind: "bus".into(),
            })
            .into(),
        counts: Counts::default(),
        ledger: Vec::new(),
        server_backup: None,
        verbose,
        strict_refusals,
    };
    w.initial_plan()?;
    for _ in 0..steps {
        w.step_once()?;
        // Agents learn of records received, so later edits touch shared records.
        if w.step.is_multiple_of(10) {
            w.refresh_known()?;
        }
    }
    w.quiesce()?;
    w.check()?;
    let final_digest = export::digest(&w.server, None).map_err(|e| fail(e.to_string()))?;
    Ok(Outcome {
        seed,
        counts: w.counts,
        final_digest,
    })
}

/// Run one seed in a fresh temporary directory, turning a panic anywhere into a `Failure` that
/// names the seed and how to replay it.
pub fn run_seed(seed: u64, steps: u64, verbose: bool) -> Result<Outcome, Failure> {
    run_seed_with(seed, steps, verbose, false)
}

/// `run_seed`, optionally with `strict_refusals` (see `run_with`).
pub fn run_seed_with(
    seed: u64,
    steps: u64,
    verbose: bool,
    strict_refusals: bool,
) -> Result<Outcome, Failure> {
    let dir = tempfile::tempdir().map_err(|e| Failure {
        seed,
        what: e.to_string(),
    })?;
    let result =
        std::panic::catch_unwind(|| run_with(seed, steps, dir.path(), verbose, strict_refusals));
    match result {
        Ok(r) => r,
        Err(p) => Err(Failure {
            seed,
            what: format!(
                "panic: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            ),
        }),
    }
}
