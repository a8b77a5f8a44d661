//! The server's reporting: the `facts` projection (plain columns per record, written in the
//! record's transaction), the scheduling and coverage queries over it, and the coverage report's
//! renderings (table, CSV, JSON).
//!
//! Server-only: the agent binary does not depend on this crate. Holds no personal data.

pub mod facts;
pub mod queries;
pub mod report;

pub use facts::Facts;
