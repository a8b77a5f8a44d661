//! Why the server refuses one incoming change, and the refusal as the laptop keeps it: shared by
//! the protocol (which sends refusals) and the stores (which persist them).
//!
//! Only the reasons and their French-free log form; authorization itself lives in the protocol.

use serde::{Deserialize, Serialize};

use crate::register::Actor;

/// Why the server refused one change. The agent keeps the change and shows the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The record belongs to another unit or territory than the device's.
    OutOfScope {
        /// The change's scope key.
        scope: String,
    },
    /// Devices may not write this kind or field (planning is the scheduler's).
    FieldNotAllowed {
        /// Kind code.
        kind: String,
        /// Field code.
        field: String,
    },
    /// The write claims another device's dot.
    ForeignDot {
        /// The actor named in the dot.
        actor: Actor,
    },
    /// The write is stamped too far in the future: the laptop's clock is wrong.
    ClockAhead {
        /// How far ahead of the server's clock, in milliseconds.
        ahead_ms: u64,
    },
    /// The value, field or register state is invalid.
    Invalid {
        /// What is wrong.
        detail: String,
    },
    /// The change edits, or its value names, a record the server does not hold: its creation
    /// was refused (and may come again), or lost with a server restored from a backup.
    UnknownRecord {
        /// Kind code of the record.
        kind: String,
        /// The record id.
        id: String,
    },
}

impl RejectReason {
    /// An `Invalid` refusal, its explanation cut to `REJECT_DETAIL_BYTES_MAX` bytes (it may quote
    /// the refused value, and a batch of refusals must fit in one frame).
    pub fn invalid(detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if detail.len() > crate::limits::REJECT_DETAIL_BYTES_MAX {
            let mut cut = crate::limits::REJECT_DETAIL_BYTES_MAX - 3;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push_str("...");
        }
        RejectReason::Invalid { detail }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::OutOfScope { scope } => {
                write!(
                    f,
                    "out of scope: {scope} is not this device's unit or territory"
                )
            }
            RejectReason::FieldNotAllowed { kind, field } => {
                write!(f, "not allowed: devices may not write {kind}.{field}")
            }
            RejectReason::ForeignDot { actor } => {
                write!(f, "forged: the change claims device {actor}'s identity")
            }
            RejectReason::ClockAhead { ahead_ms } => write!(
                f,
                "clock ahead: stamped {} s after the server's time; fix the laptop's clock",
                ahead_ms / 1000
            ),
            RejectReason::Invalid { detail } => write!(f, "invalid: {detail}"),
            RejectReason::UnknownRecord { kind, id } => write!(
                f,
                "unknown record: the server does not hold {kind} {id} (its creation was refused or lost)"
            ),
        }
    }
}

/// A refused change, by the sender's sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The agent's local sequence number of the change.
    pub seq: u64,
    /// Why.
    pub reason: RejectReason,
}
