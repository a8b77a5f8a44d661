//! Tournée's domain core: the model, the CRDT field register, records and their changes, time and
//! round arithmetic, reference data, the storage port (`store`: the traits every backend
//! implements) and the canonical export — everything the agent and the server must compute the
//! same way.
//!
//! No I/O of its own: no network, no database, no clock reads (time comes in through `clock`).
//! Its dependency list has no tokio, quinn, rusqlite or clap, and a test keeps it so.

pub mod actions;
pub mod clock;
pub mod export;
pub mod hlc;
pub mod holidays;
pub mod limits;
pub mod model;
pub mod person;
pub mod record;
pub mod refdata;
pub mod register;
pub mod reject;
pub mod rng;
pub mod schedule;
pub mod store;
pub mod time;
pub mod views;

pub use uuid::Uuid;
