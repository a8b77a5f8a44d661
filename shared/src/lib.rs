//! Tournée's shared core: the domain model, the CRDT field register, the local store, the
//! canonical export and reference data — everything the agent and the server must compute the
//! same way.
//!
//! This crate does no network I/O and never reads the clock on its own (see `clock`).

pub mod actions;
pub mod bundle;
pub mod cli;
pub mod clock;
pub mod export;
pub mod hlc;
pub mod limits;
pub mod model;
pub mod output;
pub mod protocol;
pub mod record;
pub mod refdata;
pub mod register;
pub mod report;
pub mod rng;
pub mod schedule;
pub mod store;
pub mod time;
pub mod tls;
pub mod transport;

pub use uuid::Uuid;
