//! Tournée's storage on SQLite: `SqliteStore` implements the core's `Store` (the laptop's records,
//! outbox and cursor) and `ServerStore` (the server's records, changelog, device acknowledgements
//! and refusals) on one file each; `migrate` is the schema runner of every SQLite file of
//! Tournée (the server's registry uses it too).
//!
//! Modules: `sqlite` (opening a store, the `meta` table, error mapping), `schema` (the
//! migrations), `codec` (kind codes, postcard blobs), `records` (record rows), `persons` (the person
//! index a search reads), `links` (records looked up by person, parent or outcome), `local` (the
//! `Store` impl), `server` (the `ServerStore` impl), `heal` and `requeue` (a laptop's history
//! healed), `resync` (a laptop following a restored server), `migrate` (the runner).
//!
//! What it does not do: decide what to write (the core's actions and the protocol's
//! authorization), network, clocks, or reporting — the server's reporting projection plugs in
//! through `Projection` from `tournee-report`, so the agent never carries it.

mod codec;
mod heal;
mod links;
mod local;
pub mod migrate;
mod persons;
mod records;
mod requeue;
mod resync;
mod schema;
mod server;
mod sqlite;

use rusqlite::Connection;
use tournee_core::record::Record;
use tournee_core::store::StoreError;

pub use schema::SCHEMA_VERSION;
pub use sqlite::{make_owner_only, Durability, SqliteStore};

/// A projection kept in step with the server's records: called for each record a server
/// transaction writes, inside that transaction, before it commits.
pub trait Projection: Send + Sync + std::fmt::Debug {
    /// Write (or rewrite) what `record` projects to, with `conn` inside the open transaction.
    fn project(&self, conn: &Connection, record: &Record) -> Result<(), StoreError>;
}

/// Schema of the server's reporting projection (migration 3; its rows are written by the
/// `Projection` the server plugs in, and stay empty on laptops).
pub const FACTS_SCHEMA: &str = "CREATE TABLE facts (
         id            BLOB PRIMARY KEY,
         kind          INTEGER NOT NULL,
         unit          TEXT,
         territory     TEXT,
         day           INTEGER,
         commune       TEXT,
         departement   TEXT,
         location      TEXT,
         status        TEXT,
         cause         TEXT,
         partner       TEXT,
         theme         TEXT,
         outcome       TEXT,
         minutes       INTEGER,
         citizen       BLOB,
         passage       BLOB,
         appointment   BLOB,
         stop          BLOB,
         round         BLOB,
         planned_start INTEGER,
         planned_end   INTEGER,
         marked        INTEGER NOT NULL DEFAULT 0,
         deleted       INTEGER NOT NULL DEFAULT 0
     ) STRICT, WITHOUT ROWID;
     CREATE INDEX facts_kind_day ON facts(kind, day);
     CREATE INDEX facts_round ON facts(round) WHERE round IS NOT NULL;
     CREATE INDEX facts_appointment ON facts(appointment) WHERE appointment IS NOT NULL;
     CREATE INDEX facts_passage ON facts(passage) WHERE passage IS NOT NULL;";

/// A SQLite failure that is none of the named `StoreError`s, kept as the error's source.
pub fn sql_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend {
        source: Box::new(e),
    }
}
