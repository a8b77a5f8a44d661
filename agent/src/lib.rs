//! Tournée agent library: what a laptop runs beside its command line — the network glue
//! (`sync`), the daemon (`daemon`: sync loop and web UI), the web UI itself (`ui`), the words
//! shown for stored things (`words`) — used by the `tournee-agent` binary and by the server's
//! demo, which runs laptops as in-process tasks.
//!
//! The command line itself lives in the binary; protocol, storage and network in the `shared/` crates.

pub mod config;
pub mod daemon;
pub mod devices;
pub mod setup;
pub mod sync;
pub mod ui;
pub mod words;
