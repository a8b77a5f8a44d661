//! The sync protocol `tournee/1`: wire messages and framing, authorization, and the sans-IO
//! sessions of both ends.
//!
//! Nothing in this module does I/O, spawns, sleeps or reads a clock: callers feed it bytes or
//! messages with `now`, and take messages to send. `pump` is the one driver of a session from
//! bytes; `tournee-net`'s pump moves those bytes over one quinn stream, and the simulation
//! over its faulty in-memory links. Its dependency list has no tokio, quinn or rusqlite, and a
//! test keeps it so.

pub mod auth;
pub mod bounded;
pub mod frame;
pub mod pump;
pub mod session;
pub mod wire;

use tournee_core::store::StoreError;
use wire::{BatchError, ErrorCode};

/// Errors of a sync session. Each maps to an application close code.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Bytes that are not a valid frame or message.
    #[error("malformed frame: {0}")]
    Frame(#[from] frame::FrameError),
    /// A batch whose structure is inconsistent.
    #[error("malformed batch: {0}")]
    Batch(#[from] BatchError),
    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: this side speaks {ours}, the peer {theirs}; update the older side")]
    VersionMismatch {
        /// Our version.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// A message that is not valid in the session's state.
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    /// A device batch leaves a gap after what the server acknowledged.
    #[error("sequence gap: expected change {expected}, got {got}")]
    SequenceGap {
        /// Next sequence the server expects.
        expected: u64,
        /// First sequence received.
        got: u64,
    },
    /// The server holds fewer of our changes than it once acknowledged (restored from backup).
    #[error("the server acknowledged change {had} before but now only {now}; it may have been restored from a backup — contact the administrator (local changes are kept)")]
    ServerBehind {
        /// What it acknowledged before.
        had: u64,
        /// What it says now.
        now: u64,
    },
    /// Another connection of the same device moved its acknowledged history on during this
    /// session (a copy of the data dir running elsewhere, or an older connection's last
    /// flight): what this one sends may not follow it, and a new session sorts it out.
    #[error("another connection of this device moved its history from change {had} to {now} during this session; reconnect")]
    HistoryMoved {
        /// Where this session left it.
        had: u64,
        /// Where it is now.
        now: u64,
    },
    /// The server sent a change outside this device's scope.
    #[error("the server sent a record outside this device's scope ({0}); refused")]
    OutOfScope(String),
    /// The peer closed the session with an error.
    #[error("the server refused the session ({code:?}): {message}")]
    Remote {
        /// Its code.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
    /// No message in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// Local storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProtocolError {
    /// The error code sent to the peer when this error ends a session.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::Frame(_) | ProtocolError::Batch(_) => ErrorCode::Malformed,
            ProtocolError::VersionMismatch { .. } => ErrorCode::VersionMismatch,
            ProtocolError::Unexpected(_) | ProtocolError::Timeout(_) => ErrorCode::Unexpected,
            ProtocolError::SequenceGap { .. } => ErrorCode::SequenceGap,
            ProtocolError::HistoryMoved { .. } => ErrorCode::Superseded,
            ProtocolError::OutOfScope(_) => ErrorCode::Unauthorized,
            ProtocolError::Remote { code, .. } => *code,
            ProtocolError::ServerBehind { .. } | ProtocolError::Store(_) => ErrorCode::Unavailable,
        }
    }
}
