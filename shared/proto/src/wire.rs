//! Wire messages of protocol `tournee/1` and the compact batch form of changes.
//!
//! A batch is a struct of arrays: record heads (id, kind, scope, how many fields follow), field
//! writes (HLC as a delta from the previous write), and the causal-context entries of all writes
//! concatenated. Consecutive changes of one record share one head, so a new appointment costs
//! its id once. Every array is a `BVec`, bounded while decoding. No I/O here.

use crdts::{Dot, VClock};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::bounded::BVec;
use tournee_core::hlc::Hlc;
use tournee_core::limits::{
    ACK_REJECTIONS_MAX, BATCH_BYTES_TARGET, BATCH_CHANGES_MAX, BATCH_RECORDS_MAX,
    FIELD_CLOCK_ACTORS_MAX, UNIT_DEVICES_MAX,
};
use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::record::Change;
use tournee_core::register::{Actor, Write};
pub use tournee_core::reject::{RejectReason, Rejection};
use tournee_core::store::Chain;

/// Protocol version carried in Hello and Welcome; bumped on any incompatible change.
/// 2: Hello carries the agent's last `seq`, the chain of its acknowledged history and whether
/// it heals; `Rebase` and `Rebased` heal a history the two sides do not share.
/// 3: Hello and Welcome carry the server store's epoch: a cursor counted in a changelog since
/// restored from a backup starts over.
/// 4: records of kinds `visit` and `workshop`, fields `merged_into`, `visit` and `attendees`
/// (an older agent could not decode them: it is told to update instead).
/// 5: Hello says which program the agent runs and the clock offset it last measured, for the
/// fleet view; field `partners` of passages (an older agent could not decode it).
pub const PROTOCOL_VERSION: u16 = 5;

/// Most causal-context entries in one batch (re-exported from `limits`, where it is defined).
pub use tournee_core::limits::BATCH_CLOCK_ENTRIES_MAX;

/// The head of a run of changes of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordHead {
    /// Record id (16 bytes).
    pub id: [u8; 16],
    /// Kind.
    pub kind: Kind,
    /// Scope.
    pub scope: Scope,
    /// How many entries of `fields` belong to this record.
    pub fields: u16,
}

/// One field write, compactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldWrite {
    /// Field.
    pub field: Field,
    /// Writer.
    pub actor: Actor,
    /// Writer's counter for this field.
    pub counter: u64,
    /// HLC minus the previous write's HLC in this batch (the first is relative to zero).
    pub hlc_delta: i64,
    /// How many entries of `clocks` form this write's context.
    pub ctx_len: u16,
    /// Value written.
    pub value: Value,
}

/// A batch of changes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Batch {
    /// Record heads, in order.
    pub records: BVec<RecordHead, BATCH_RECORDS_MAX>,
    /// Field writes, in order.
    pub fields: BVec<FieldWrite, BATCH_CHANGES_MAX>,
    /// Context entries (actor, counter), concatenated in field order.
    pub clocks: BVec<(Actor, u64), BATCH_CLOCK_ENTRIES_MAX>,
}

/// Why a batch does not decode into changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Heads and arrays disagree on counts.
    #[error("batch structure is inconsistent: {0}")]
    Inconsistent(&'static str),
    /// An HLC delta leads outside the u64 range.
    #[error("batch HLC out of range")]
    HlcRange,
}

impl Batch {
    /// Number of changes carried.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when no change is carried.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Decode into domain changes, checking the structure.
    pub fn to_changes(&self) -> Result<Vec<Change>, BatchError> {
        let mut out = Vec::with_capacity(self.fields.len());
        let mut fields = self.fields.0.iter();
        let mut clocks = self.clocks.0.iter();
        let mut hlc: u64 = 0;
        for head in &self.records.0 {
            if head.fields == 0 {
                return Err(BatchError::Inconsistent("a record head without fields"));
            }
            for _ in 0..head.fields {
                let f = fields.next().ok_or(BatchError::Inconsistent(
                    "fewer field writes than heads announce",
                ))?;
                hlc = hlc
                    .checked_add_signed(f.hlc_delta)
                    .ok_or(BatchError::HlcRange)?;
                if usize::from(f.ctx_len) > FIELD_CLOCK_ACTORS_MAX {
                    return Err(BatchError::Inconsistent("a context wider than the limit"));
                }
                let mut ctx = VClock::new();
                for _ in 0..f.ctx_len {
                    let (a, c) = clocks.next().ok_or(BatchError::Inconsistent(
                        "fewer clock entries than writes announce",
                    ))?;
                    ctx.dots.insert(*a, *c);
                }
                out.push(Change {
                    record: Uuid::from_bytes(head.id),
                    kind: head.kind,
                    scope: head.scope.clone(),
                    field: f.field,
                    write: Write {
                        dot: Dot::new(f.actor, f.counter),
                        hlc: Hlc(hlc),
                        ctx,
                        value: f.value.clone(),
                    },
                });
            }
        }
        if fields.next().is_some() {
            return Err(BatchError::Inconsistent(
                "field writes without a record head",
            ));
        }
        if clocks.next().is_some() {
            return Err(BatchError::Inconsistent("clock entries without a write"));
        }
        Ok(out)
    }
}

fn approx_size(c: &Change) -> usize {
    let value = match &c.write.value {
        Value::Text(s) => s.len(),
        Value::Id(_) => 17,
        _ => 9,
    };
    40 + value + c.write.ctx.dots.len() * 10 + c.scope.key().len()
}

/// True when two changes are of the same record (one run of a batch).
pub fn same_record(a: &Change, b: &Change) -> bool {
    a.record == b.record && a.kind == b.kind && a.scope == b.scope
}

/// The length of the run of changes of one record that starts `changes`.
fn record_run_len(changes: &[Change]) -> usize {
    let Some(first) = changes.first() else {
        return 0;
    };
    changes.iter().take_while(|c| same_record(c, first)).count()
}

/// True when `run` fits beside what `cur` (of `bytes`) holds, by the limits `pack` keeps.
fn run_fits(cur: &Batch, bytes: usize, run: &[Change]) -> bool {
    let ctx: usize = run.iter().map(|c| c.write.ctx.dots.len()).sum();
    let size: usize = run.iter().map(approx_size).sum();
    cur.fields.len() + run.len() <= BATCH_CHANGES_MAX
        && cur.clocks.len() + ctx <= BATCH_CLOCK_ENTRIES_MAX
        && bytes + size <= BATCH_BYTES_TARGET
        && cur.records.len() < BATCH_RECORDS_MAX
}

/// Pack changes, in order, into as few batches as the limits allow. Returns each batch with the
/// number of changes it holds, so callers can map batches back to sequence numbers. A run of
/// changes of one record (its creation, say) is never split across batches unless it alone
/// breaks a limit: the server creates a record only from one batch that sets all its fields.
pub fn pack(changes: &[Change]) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut cur = Batch::default();
    let mut bytes = 0usize;
    let mut prev_hlc: u64 = 0;
    let mut run_left = 0usize;
    for (i, c) in changes.iter().enumerate() {
        if run_left == 0 {
            let rest = &changes[i..];
            run_left = record_run_len(rest);
            if !cur.is_empty() && !run_fits(&cur, bytes, &rest[..run_left]) {
                out.push(std::mem::take(&mut cur));
                bytes = 0;
                prev_hlc = 0;
            }
        }
        run_left -= 1;
        let ctx_len = c.write.ctx.dots.len();
        let size = approx_size(c);
        let full = cur.fields.len() + 1 > BATCH_CHANGES_MAX
            || cur.clocks.len() + ctx_len > BATCH_CLOCK_ENTRIES_MAX
            || (bytes + size > BATCH_BYTES_TARGET && !cur.is_empty());
        let same_record = cur.records.0.last().is_some_and(|h| {
            h.id == *c.record.as_bytes()
                && h.kind == c.kind
                && h.scope == c.scope
                && usize::from(h.fields) < usize::from(u16::MAX)
        });
        if full {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
            prev_hlc = 0;
        }
        if full || !same_record {
            if cur.records.len() >= BATCH_RECORDS_MAX {
                out.push(std::mem::take(&mut cur));
                bytes = 0;
                prev_hlc = 0;
            }
            cur.records.0.push(RecordHead {
                id: *c.record.as_bytes(),
                kind: c.kind,
                scope: c.scope.clone(),
                fields: 0,
            });
        }
        if let Some(h) = cur.records.0.last_mut() {
            h.fields += 1;
        }
        let hlc = c.write.hlc.0;
        cur.fields.0.push(FieldWrite {
            field: c.field,
            actor: c.write.dot.actor,
            counter: c.write.dot.counter,
            hlc_delta: (hlc as i128 - prev_hlc as i128).clamp(i64::MIN as i128, i64::MAX as i128)
                as i64,
            ctx_len: u16::try_from(ctx_len).unwrap_or(u16::MAX),
            value: c.write.value.clone(),
        });
        prev_hlc = hlc;
        for (a, n) in &c.write.ctx.dots {
            cur.clocks.0.push((*a, *n));
        }
        bytes += size;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Application error codes carried in `ServerMsg::Error` and used as QUIC close codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The peer speaks another protocol version.
    VersionMismatch,
    /// A frame or message that does not decode, or breaks a limit.
    Malformed,
    /// A message out of order (e.g. a batch before Hello).
    Unexpected,
    /// The device is not enrolled, or revoked.
    Unauthorized,
    /// The server is shutting down or failed internally; retry later.
    Unavailable,
    /// The sequence numbers of a batch leave a gap after what the server acknowledged.
    SequenceGap,
    /// A newer connection of the same device took this one's place (one live connection per
    /// device): the same data dir may be running twice.
    Superseded,
}

impl ErrorCode {
    /// The QUIC application close code for this error.
    pub fn close_code(self) -> u32 {
        match self {
            ErrorCode::VersionMismatch => 1,
            ErrorCode::Malformed => 2,
            ErrorCode::Unexpected => 3,
            ErrorCode::Unauthorized => 4,
            ErrorCode::Unavailable => 5,
            ErrorCode::SequenceGap => 6,
            ErrorCode::Superseded => 7,
        }
    }
    /// The error for a QUIC application close code.
    pub fn from_close_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => ErrorCode::VersionMismatch,
            2 => ErrorCode::Malformed,
            3 => ErrorCode::Unexpected,
            4 => ErrorCode::Unauthorized,
            5 => ErrorCode::Unavailable,
            6 => ErrorCode::SequenceGap,
            7 => ErrorCode::Superseded,
            _ => return None,
        })
    }
}

/// Messages from agent to server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// Opens the session: version, the server sequence number applied so far, and the local
    /// sequence number the agent believes acknowledged.
    Hello {
        /// Protocol version.
        version: u16,
        /// Highest server changelog sequence applied by the agent.
        cursor: u64,
        /// Highest local sequence the agent knows acknowledged.
        acked: u64,
        /// Highest local sequence issued: the server knows at once whether the agent still
        /// holds every change it acknowledged.
        last: u64,
        /// The chain of the agent's history up to `acked`: with the changes it re-sends, it
        /// proves its history is the one the server acknowledged.
        chain: Chain,
        /// The agent is healing (`Rebase` received, not finished): stream its own writes too.
        own: bool,
        /// The server epoch `cursor` counts in: another one sends the changelog from its start.
        epoch: u64,
        /// The agent's program and clock, shown in the fleet view (never trusted for sync).
        about: AgentAbout,
    },
    /// Local changes with sequence numbers `first_seq ..= first_seq + len - 1`.
    Changes {
        /// Sequence number of the first change.
        first_seq: u64,
        /// The changes.
        batch: Batch,
    },
    /// The agent took `Rebase` and re-issued its changes: batches from here on follow the
    /// `acked` of that `Rebase`; the server ignored every batch between the two.
    Rebased,
}

/// What an agent says about itself in Hello: the fleet view shows it, the sync ignores it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAbout {
    /// Program version, e.g. `0.1.0` (the server keeps `AGENT_PROGRAM_BYTES_MAX` bytes).
    pub program: String,
    /// The server's clock minus the laptop's, in ms, as measured at the previous session.
    pub clock_offset_ms: Option<i64>,
}

impl AgentAbout {
    /// This build of Tournée, with the offset its store last measured.
    pub fn this_build(clock_offset_ms: Option<i64>) -> Self {
        Self {
            program: env!("CARGO_PKG_VERSION").to_owned(),
            clock_offset_ms,
        }
    }
}

/// A device of the unit and its name, as `device enroll` gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceName {
    /// Actor number.
    pub actor: u32,
    /// Name (at most `DEVICE_NAME_BYTES_MAX` bytes are kept).
    pub name: String,
}

/// Messages from server to agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Answers Hello.
    Welcome {
        /// Protocol version.
        version: u16,
        /// Server wall time, ms since the epoch (the agent derives its clock offset).
        server_time_ms: u64,
        /// Highest local sequence of this device the server has durably applied.
        acked: u64,
        /// The server store's epoch, renewed when it is restored from a backup.
        epoch: u64,
        /// The names of the unit's devices, to show who wrote a value (display only).
        devices: BVec<DeviceName, UNIT_DEVICES_MAX>,
    },
    /// A batch was committed: everything up to `seq` is durable on the server.
    Ack {
        /// Sequence number this acknowledgement follows: the agent must already be there, or an
        /// earlier Ack (and its refusals) was lost or overtaken.
        after: u64,
        /// Highest sequence now acknowledged.
        seq: u64,
        /// Changes of the batch that were refused.
        rejected: BVec<Rejection, ACK_REJECTIONS_MAX>,
    },
    /// Changelog entries for the device's scope after server sequence `after`, up to `cursor`.
    Changes {
        /// Server sequence number this batch follows: the agent must already be there, or the
        /// batch arrived out of order and applying it would skip the one before.
        after: u64,
        /// Server sequence number the agent reaches once this batch is applied.
        cursor: u64,
        /// The changes.
        batch: Batch,
    },
    /// The agent has everything up to `cursor`.
    UpToDate {
        /// Server sequence number this message follows (as for `Changes`).
        after: u64,
        /// Server sequence number reached.
        cursor: u64,
    },
    /// The session ends with an error.
    Error {
        /// Code.
        code: ErrorCode,
        /// Human-readable message.
        message: String,
    },
    /// The agent's history is not the server's (its store went back in time or was copied,
    /// or the server was restored): the server holds the agent's changes up to `acked`, whose
    /// chain is `chain`. The agent renumbers what it has not had acknowledged after `acked`;
    /// the changelog starts again from 0, the agent's own writes included; batches are
    /// ignored until `Rebased`. Sent instead of any acknowledgement.
    Rebase {
        /// The server's acknowledged sequence of this device.
        acked: u64,
        /// The chain of the device's history up to it.
        chain: Chain,
    },
}
