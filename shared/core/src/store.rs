//! The `Store` trait: what the agent and the server need from local storage, in domain terms,
//! and the error type of that boundary.
//!
//! Implementations keep every local action and every applied batch atomic. This module is the
//! port only: it does not know about SQLite (`tournee-store`), the network, or the clock (time
//! is passed in).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::WallMs;
use crate::model::{Field, Kind, ModelError, Scope, Value};
use crate::person::PersonEntry;
use crate::record::{Change, Record, RecordError};
use crate::register::Actor;
use crate::reject::{RejectReason, Rejection};

/// Who this replica is: set once by `init`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The device's actor number (0 is the server).
    pub device: Actor,
    /// The unit the device belongs to.
    pub unit: String,
    /// The unit's territory (département code).
    pub territory: String,
}

/// The server's actor number: device numbers start at 1.
pub const SERVER_ACTOR: Actor = 0;

/// An actor number no device ever gets: the server streams a device its own writes back by
/// excluding this one instead (while a store heals).
pub const NO_ACTOR: Actor = Actor::MAX;

/// A running hash of one device's history: every change it issued, in `seq` order, folded with
/// `chain_next`. Both sides keep it at the device's acknowledged `seq`; equal chains at one
/// `seq` mean equal histories up to it. 16 bytes of SHA-256: the device only proves its own
/// history to the server, so accidental collisions are what matters (2^-64 per comparison).
pub type Chain = [u8; 16];

/// The chain of an empty history.
pub const CHAIN_START: Chain = [0; 16];

/// The chain after `change`, issued right after the history whose chain is `prev`.
pub fn chain_next(prev: &Chain, change: &Change) -> Chain {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(prev);
    // Postcard is deterministic for `Change` (maps are ordered): both sides hash the same bytes.
    match postcard::to_allocvec(change) {
        Ok(bytes) => h.update(&bytes),
        Err(_) => h.update(b"unencodable"),
    }
    let full = h.finalize();
    let mut out = CHAIN_START;
    out.copy_from_slice(&full[..16]);
    out
}

/// What a laptop's store must do to heal a history the server does not share (see `Store::rebase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebase {
    /// The laptop's history after the server's acknowledgement differs from the server's (a
    /// store restored from a copy, or a cloned data dir): re-issue its unacknowledged changes.
    Rewound,
    /// The server holds less than it acknowledged (restored from a backup): also re-send every
    /// write of this device that the laptop's records still hold.
    ServerBehind,
}

impl Identity {
    /// The server's identity (actor 0, no unit: it holds every scope).
    pub fn server() -> Self {
        Self {
            device: SERVER_ACTOR,
            unit: String::new(),
            territory: String::new(),
        }
    }
    /// True for the server's identity.
    pub fn is_server(&self) -> bool {
        self.device == SERVER_ACTOR
    }

    /// The scopes this device replicates: its unit's records and its territory's stops.
    pub fn scopes(&self) -> [Scope; 2] {
        [
            Scope::Unit(self.unit.clone()),
            Scope::Territory(self.territory.clone()),
        ]
    }
}

/// Field values to write on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEdit {
    /// The record (new or existing).
    pub id: Uuid,
    /// Its kind.
    pub kind: Kind,
    /// Its scope.
    pub scope: Scope,
    /// True when the record must not exist yet.
    pub create: bool,
    /// The fields to set.
    pub sets: Vec<(Field, Value)>,
}

/// One user action: every edit is committed together, or none is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocalAction {
    /// The record edits.
    pub edits: Vec<RecordEdit>,
}

/// What applying a remote batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplySummary {
    /// Changes that modified state.
    pub applied: usize,
    /// Changes already seen (replays, duplicates, superseded writes).
    pub already_seen: usize,
}

/// Counts for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct StoreStats {
    /// Records held, tombstoned ones included.
    pub records: u64,
    /// Highest local change sequence number issued.
    pub last_seq: u64,
    /// Highest local sequence number the server acknowledged.
    pub acked_seq: u64,
    /// Local changes not yet acknowledged.
    pub pending: u64,
    /// Records with at least one field in conflict.
    pub conflicted_records: u64,
    /// Local changes the server refused.
    pub rejected: u64,
    /// Highest server sequence number applied here.
    pub cursor: u64,
}

/// Errors at the storage boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the write lock for longer than `STORE_BUSY_WAIT_MS`.
    #[error("the data store {path} is busy: another Tournée process is writing to it; try again in a moment")]
    Busy {
        /// The database file.
        path: String,
    },
    /// The disk is full: the action was not recorded, earlier data is intact.
    #[error(
        "the disk holding {path} is full: nothing was recorded; free some space and try again"
    )]
    DiskFull {
        /// The database file.
        path: String,
    },
    /// The data dir holds no initialised store.
    #[error("no Tournée store in {path}: run `init` first")]
    NotInitialized {
        /// The data dir or file.
        path: String,
    },
    /// `init` on an already initialised store.
    #[error("{path} is already initialised (device {device}, unit {unit}); use another --data directory")]
    AlreadyInitialized {
        /// The database file.
        path: String,
        /// Its device.
        device: Actor,
        /// Its unit.
        unit: String,
    },
    /// Undoing refusals while local changes still wait to be sent.
    #[error("{count} change(s) still wait to be sent: run `sync` first, then undo the refusals")]
    Pending {
        /// Changes waiting.
        count: u64,
    },
    /// Re-enrolment with the identity the store already has.
    #[error("this bundle is for device {device}, which this laptop already is: re-enrolment needs a new bundle (`tournee-server device enroll`)")]
    SameIdentity {
        /// The device.
        device: Actor,
    },
    /// The store was written by a newer version of Tournée.
    #[error(
        "{path} has schema version {found}, newer than this program's {known}; upgrade Tournée"
    )]
    NewerSchema {
        /// The database file.
        path: String,
        /// Version found.
        found: i64,
        /// Newest version known.
        known: i64,
    },
    /// A record id that is not in the store.
    #[error("no {kind} with id {id}")]
    NotFound {
        /// Kind looked for.
        kind: Kind,
        /// The id.
        id: Uuid,
    },
    /// A record to create exists already.
    #[error("{kind} {id} exists already")]
    Exists {
        /// Kind.
        kind: Kind,
        /// The id.
        id: Uuid,
    },
    /// An action bigger than `LOCAL_ACTION_CHANGES_MAX` or a batch bigger than `APPLY_BATCH_CHANGES_MAX`.
    #[error("{what}: {count} changes is more than the limit of {max}")]
    TooBig {
        /// What was too big.
        what: &'static str,
        /// Its size.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Stored bytes that do not decode, or stored data that contradicts itself: the file was
    /// damaged or edited by hand. Build it with `StoreError::corrupt`.
    #[error("stored {what} is damaged: {source}")]
    Corrupt {
        /// What.
        what: &'static str,
        /// The decoder's error (postcard's, uuid's, …), or the words saying what contradicts.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A value or field refused by the model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A change refused by the record.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Writing an export or listing failed (closed pipe, full disk).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// Any other failure of the storage engine; the engine's own error is the source.
    #[error("storage error: {source}")]
    Backend {
        /// The engine's error (SQLite's, for `SqliteStore`).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl StoreError {
    /// Stored `what` is damaged: `source` is the decoder's error, or a message (a `String` or
    /// `&str`) saying what contradicts.
    pub fn corrupt(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        StoreError::Corrupt {
            what,
            source: source.into(),
        }
    }
}

/// The records among `records` whose `field` shows `value` (`Store::records_where` without an
/// index).
pub fn scan_where(
    records: Vec<Record>,
    field: Field,
    value: &Value,
) -> Result<Vec<Record>, StoreError> {
    Ok(records
        .into_iter()
        .filter(|r| r.value(field) == Some(value))
        .collect())
}

/// Local storage of a replica, in domain terms. Calls are short and synchronous.
pub trait Store {
    /// This replica's identity, if initialised.
    fn identity(&self) -> Result<Option<Identity>, StoreError>;
    /// Set the identity, once.
    fn set_identity(&mut self, identity: &Identity) -> Result<(), StoreError>;
    /// A record by id.
    fn record(&self, id: Uuid) -> Result<Option<Record>, StoreError>;
    /// Commit one user action: validate, write the records and append their changes to the
    /// outbox with contiguous `seq`, all in one durable transaction. Returns the changes.
    fn write_local(&mut self, now: WallMs, action: &LocalAction)
        -> Result<Vec<Change>, StoreError>;
    /// Apply a batch of remote changes in one transaction, idempotently, storing `cursor` (the
    /// server sequence number the batch brings this replica to) with it when given.
    fn apply_remote(
        &mut self,
        changes: &[Change],
        cursor: Option<u64>,
    ) -> Result<ApplySummary, StoreError>;
    /// Outbox entries with `seq > after`, in order, at most `limit`.
    fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Change)>, StoreError>;
    /// Records of a kind whose day (appointment start, passage date) is `day`, live ones only.
    fn records_on(&self, kind: Kind, day: NaiveDate) -> Result<Vec<Record>, StoreError>;
    /// Live records of a kind whose day is in `from..=to`, by day.
    fn records_between(
        &self,
        kind: Kind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Record>, StoreError>;
    /// Every live record of a kind, in id order (persons to search, requests to list).
    fn records_of_kind(&self, kind: Kind) -> Result<Vec<Record>, StoreError>;
    /// What a person search compares, one entry per live person, in id order (a store may
    /// keep them folded in advance; by default they are folded from the records here).
    fn person_entries(&self) -> Result<Vec<PersonEntry>, StoreError> {
        Ok(self
            .records_of_kind(Kind::Citizen)?
            .iter()
            .map(PersonEntry::of)
            .collect())
    }
    /// Live records of `kind` whose `field` shows `value`, in id order: an appointment's or a
    /// walk-in's person, a request's parent or outcome (a store may index these; by default
    /// every record of the kind is read).
    fn records_where(
        &self,
        kind: Kind,
        field: Field,
        value: &Value,
    ) -> Result<Vec<Record>, StoreError> {
        scan_where(self.records_of_kind(kind)?, field, value)
    }
    /// Ids of the records whose id starts with `prefix` (hex digits, hyphens ignored), at most
    /// `limit`, in id order: a command's short id.
    fn ids_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Uuid>, StoreError>;
    /// Records with at least one field in conflict.
    fn conflicted(&self) -> Result<Vec<Record>, StoreError>;
    /// Every record, in id order, optionally only those of the given scopes.
    fn for_each_record(
        &self,
        scopes: Option<&[Scope]>,
        f: &mut dyn FnMut(Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Counts for `status`.
    fn stats(&self) -> Result<StoreStats, StoreError>;
    /// Record the server's acknowledgement: local changes up to `acked` are durable on the
    /// server; those in `rejected` were refused and move to the rejected list with their reason.
    /// Acknowledged changes leave the outbox. Never moves `acked` backwards.
    fn acknowledge(&mut self, acked: u64, rejected: &[Rejection]) -> Result<(), StoreError>;
    /// Remember a contact with the server: when, and how far its clock is from ours.
    fn note_sync(&mut self, now: WallMs, clock_offset_ms: i64) -> Result<(), StoreError>;
    /// When the last contact was and the clock offset then, if any.
    fn last_sync(&self) -> Result<Option<(WallMs, i64)>, StoreError>;
    /// Remember the names of the unit's devices as the server sent them (display only).
    fn set_device_names(&mut self, names: &[(Actor, String)]) -> Result<(), StoreError> {
        let _ = names;
        Ok(())
    }
    /// The names `set_device_names` kept, by actor.
    fn device_names(&self) -> Result<Vec<(Actor, String)>, StoreError> {
        Ok(Vec::new())
    }
    /// The server incarnation the changelog cursor counts in (0 until a server named one).
    fn server_epoch(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    /// The server's changelog is another incarnation (restored from a backup, its numbers
    /// given again to other changes, its own writes since the backup gone): take its epoch,
    /// set the cursor back to 0 and start rebuilding the replica from its changelog, together.
    /// Until `finish_resync`, downloaded changes go to the replica being rebuilt.
    fn adopt_server_epoch(&mut self, epoch: u64) -> Result<(), StoreError> {
        let _ = epoch;
        Err(StoreError::Backend {
            source: "this store cannot follow a server restore".into(),
        })
    }
    /// True while a replica is rebuilt after `adopt_server_epoch` (the stream must include
    /// this device's own writes).
    fn resync_pending(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// The changelog was applied up to date: the rebuilt replica, with this device's changes
    /// the server has not taken (queued or refused) applied on it, becomes the records. Call
    /// after `finish_rebase`. Returns whether a rebuild was pending.
    fn finish_resync(&mut self) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Changes the server refused, with the reasons, oldest first.
    fn rejected(&self) -> Result<Vec<RejectedChange>, StoreError>;
    /// The chain of this replica's history up to its acknowledged `seq`, with that `seq`.
    /// The default suits stores that never heal (test doubles): no chain kept.
    fn chain_acked(&self) -> Result<(u64, Chain), StoreError> {
        Ok((self.stats()?.acked_seq, CHAIN_START))
    }
    /// First step of healing, one transaction: the server's history of this device ends at
    /// `acked` with `chain`. Unacknowledged changes move from the outbox to a stash, `seq`
    /// goes on from `acked`, and the changelog cursor goes back to 0 (the server streams
    /// everything again, this device's own writes included). Kept until `finish_rebase`.
    /// The default refuses: a store that cannot heal must not pretend it did.
    fn rebase(&mut self, acked: u64, chain: Chain, why: Rebase) -> Result<(), StoreError> {
        let _ = (acked, chain, why);
        Err(StoreError::Backend {
            source: "this store cannot rebase its history".into(),
        })
    }
    /// True while a rebase waits for its `finish_rebase` (its stream must include own writes).
    fn rebase_pending(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Second step, once the changelog was applied up to date: re-issue the stash as new
    /// writes (fresh dots above everything received) and, after a server restore, this
    /// device's writes the records hold, into the outbox. Returns how many changes it queued.
    fn finish_rebase(&mut self, now: WallMs) -> Result<usize, StoreError> {
        let _ = now;
        Ok(0)
    }
    /// Send again the changes the server refused because this laptop's clock was ahead, once
    /// the clock offset is known (`note_sync`): each refused write still shown is written again
    /// (same value, a new dot covering the refused one, an HLC in server time) under new
    /// contiguous `seq`s, and leaves the rejected list, in one transaction. Refused writes
    /// replaced since are only dropped from the list. Without a known offset nothing happens.
    /// Returns how many changes were queued again.
    fn requeue_clock_ahead(&mut self, now: WallMs) -> Result<usize, StoreError>;
    /// Undo refused changes locally (those of `seqs`, or all with `None`): the refused field is
    /// cleared (a record left with no field is removed) and the cursor goes back to 0, so the
    /// next sync brings the server's values of the field again. Refused while changes are
    /// pending (`StoreError::Pending`): their writes could be lost with the field. Returns how
    /// many refusals were undone.
    fn undo_rejected(&mut self, seqs: Option<&[u64]>) -> Result<usize, StoreError>;
    /// Adopt a new identity (a new device actor, perhaps another unit) keeping the queue: every
    /// pending and refused change still shown is written again by the new actor (fresh dots
    /// covering the old ones, `seq` from 1), the ack and cursor start at 0 (the scope is
    /// downloaded again) and the rejected list is emptied, in one transaction. Returns how many
    /// changes were queued again.
    fn reenrol(&mut self, now: WallMs, identity: &Identity) -> Result<usize, StoreError>;
}

/// A local change the server refused, kept for review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedChange {
    /// Its local sequence number.
    pub seq: u64,
    /// The server's reason.
    pub reason: String,
    /// The change itself.
    pub change: Change,
}

/// What the server did with one batch of a device's changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Highest sequence of the device now durable on the server.
    pub acked: u64,
    /// Changes that modified the server's state (and entered the changelog).
    pub applied: usize,
    /// Changes the server had already received (replays after a cut).
    pub duplicates: usize,
    /// Changes refused.
    pub rejected: Vec<Rejection>,
}

/// What the server holds of the record a change's value names (a `Value::Id`): enough to
/// authorize the reference without the record itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referenced {
    /// The referenced record's id.
    pub id: Uuid,
    /// Its kind.
    pub kind: Kind,
    /// Its scope.
    pub scope: Scope,
}

/// The server's authorization of one incoming change, given the record as the server holds it
/// and, when the change's value names a record the server holds, that record (`None` when the
/// value names no record, or one the server does not have yet: created later in the same
/// flight, or never).
pub type ChangeCheck<'a> =
    dyn FnMut(&Change, Option<&Record>, Option<&Referenced>) -> Result<(), RejectReason> + 'a;

/// The server's side of storage: the changelog with global sequence numbers and the
/// per-device acknowledged sequence.
pub trait ServerStore: Store {
    /// Highest local sequence of `device` durably applied.
    fn device_acked(&self, device: Actor) -> Result<u64, StoreError>;
    /// The chain of `device`'s history up to `device_acked`; `None` when unknown (a device
    /// acknowledged by a version that kept no chain).
    fn device_chain(&self, device: Actor) -> Result<Option<Chain>, StoreError>;
    /// Set an unknown chain of `device` at `acked` (learnt from the device itself); no-op
    /// when the server's ack moved or the chain is known.
    fn adopt_device_chain(
        &mut self,
        device: Actor,
        acked: u64,
        chain: Chain,
    ) -> Result<(), StoreError>;
    /// Apply a device's batch (sequence numbers `first_seq..`) in one transaction: skip what
    /// was already acknowledged, ask `check` about each new change (given the record as the
    /// server holds it, and the record its value names), merge and log the accepted ones, advance the device's ack.
    fn accept_batch(
        &mut self,
        device: Actor,
        first_seq: u64,
        changes: &[Change],
        check: &mut ChangeCheck<'_>,
    ) -> Result<Accepted, StoreError> {
        let mut all = self.accept_batches(device, &[(first_seq, changes)], check)?;
        all.pop()
            .ok_or_else(|| StoreError::corrupt("accepted batches", "no result for the batch"))
    }
    /// Apply consecutive batches of one device (a flight of the session) in one transaction,
    /// each as `accept_batch` would, one result per batch. Records touched by several batches
    /// are read and written once; at most `APPLY_FLIGHT_CHANGES_MAX` changes in all.
    fn accept_batches(
        &mut self,
        device: Actor,
        batches: &[(u64, &[Change])],
        check: &mut ChangeCheck<'_>,
    ) -> Result<Vec<Accepted>, StoreError>;
    /// Changelog entries after `cursor` in `scopes`, not written by `exclude`, at most `limit`.
    /// Returns the entries and the sequence number scanned up to.
    fn changelog_after(
        &self,
        cursor: u64,
        scopes: &[Scope],
        exclude: Actor,
        limit: usize,
    ) -> Result<(Vec<(u64, Change)>, u64), StoreError>;
    /// Highest changelog sequence number.
    fn changelog_head(&self) -> Result<u64, StoreError>;
    /// This changelog's incarnation: a cursor counted in another one means nothing here.
    fn epoch(&self) -> Result<u64, StoreError>;
    /// Start a new incarnation (after a restore from a backup, whose changelog numbers will
    /// be given to other changes than the ones laptops counted): returns it.
    fn renew_epoch(&mut self) -> Result<u64, StoreError>;
    /// A laptop's cursor is past the head (the files were copied back by hand, without
    /// `restore`): renew the epoch, unless that was already done since the last `renew_epoch`
    /// (so a device sending such cursors again cannot make every laptop download everything
    /// at each of its sessions). Returns the epoch now in force.
    fn renew_epoch_once(&mut self) -> Result<u64, StoreError>;
    /// Refusals of `device`'s changes with `after < seq <= upto`, by sequence number.
    fn device_rejections(
        &self,
        device: Actor,
        after: u64,
        upto: u64,
    ) -> Result<Vec<Rejection>, StoreError>;
    /// Drop refusals of `device` up to `upto`: the agent confirmed it has them.
    fn forget_rejections(&mut self, device: Actor, upto: u64) -> Result<(), StoreError>;
}
