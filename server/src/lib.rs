//! Tournée server library: device registry and CA, the sync daemon's glue, and the commands of
//! the `tournee-server` binary.
//!
//! The replicated data model, merge and protocol live in the `shared/` crates (`tournee-core`, `tournee-proto`, `tournee-store`, `tournee-net`, `tournee-report`); nothing here
//! re-implements them.

pub mod accounts;
pub mod admin;
pub mod backup;
pub mod ca;
pub mod charts;
pub mod config;
pub mod console;
pub mod db;
pub mod demo;
pub mod fleet;
pub mod holidays;
pub mod map;
pub mod ods;
pub mod registry;
pub mod scheduling;
pub mod serve;
pub mod timetable;
pub mod users;
pub mod visits;
