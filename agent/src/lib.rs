//! Tournée agent library: the network glue of a laptop (`sync`), used by the `tournee-agent`
//! binary and by the server's demo, which runs agents as in-process tasks.
//!
//! The command line itself lives in the binary; protocol, storage and network in the `shared/` crates.

pub mod config;
pub mod devices;
pub mod setup;
pub mod sync;
