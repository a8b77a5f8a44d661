//! The schema of a Tournée store: its migrations, in order, and the version this program writes.
//!
//! Only the SQL lives here; applying it (in one transaction, refusing newer files) is
//! `migrate`'s job, and reading or writing rows is the other modules'.

use rusqlite::{Connection, TransactionBehavior};

use tournee_core::store::StoreError;

use crate::sql_err;
use crate::sqlite::map_err;

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: records, outbox, bookkeeping.
    "CREATE TABLE meta (
         key   TEXT PRIMARY KEY,
         value ANY
     ) STRICT, WITHOUT ROWID;
     CREATE TABLE records (
         id       BLOB PRIMARY KEY,
         kind     INTEGER NOT NULL,
         scope    TEXT NOT NULL,
         day      INTEGER,
         conflict INTEGER NOT NULL DEFAULT 0,
         state    BLOB NOT NULL
     ) STRICT, WITHOUT ROWID;
     CREATE INDEX records_day ON records(kind, day) WHERE day IS NOT NULL;
     CREATE INDEX records_conflict ON records(conflict) WHERE conflict = 1;
     CREATE TABLE outbox (
         seq    INTEGER PRIMARY KEY,
         change BLOB NOT NULL
     ) STRICT;
     CREATE TABLE rejected (
         seq    INTEGER PRIMARY KEY,
         reason TEXT NOT NULL,
         change BLOB NOT NULL
     ) STRICT;",
    // 2: the server's changelog and per-device acknowledgements (empty on agents).
    "CREATE TABLE changelog (
         gseq   INTEGER PRIMARY KEY,
         device INTEGER NOT NULL,
         scope  TEXT NOT NULL,
         change BLOB NOT NULL
     ) STRICT;
     CREATE INDEX changelog_scope ON changelog(scope, gseq);
     CREATE TABLE device_acks (
         device INTEGER PRIMARY KEY,
         acked  INTEGER NOT NULL
     ) STRICT;",
    // 3: the server's reporting projection (empty on agents).
    crate::FACTS_SCHEMA,
    // 4: refusals kept until the device confirms it received them (a lost Ack must not lose them).
    "CREATE TABLE device_rejections (
         device INTEGER NOT NULL,
         seq    INTEGER NOT NULL,
         reason BLOB NOT NULL,
         PRIMARY KEY (device, seq)
     ) STRICT, WITHOUT ROWID;",
    // 5: the changelog holds one row per accepted batch and scope (its changes numbered
    // `first..=last`) instead of one row per change: a W1 session wrote ~3,200 rows. A
    // one-change postcard sequence is the change's bytes after a length byte of 1.
    "CREATE TABLE changelog_rows (
         first   INTEGER PRIMARY KEY,
         last    INTEGER NOT NULL,
         device  INTEGER NOT NULL,
         scope   TEXT NOT NULL,
         changes BLOB NOT NULL
     ) STRICT;
     INSERT INTO changelog_rows(first, last, device, scope, changes)
         SELECT gseq, gseq, device, scope, CAST(X'01' || change AS BLOB) FROM changelog;
     DROP TABLE changelog;
     ALTER TABLE changelog_rows RENAME TO changelog;
     CREATE INDEX changelog_scope ON changelog(scope, last);",
];

/// Schema version this program writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the schema of `conn` (the file shown as `path`) up to `SCHEMA_VERSION`, in one
/// transaction; a file written by a newer program is refused.
pub(crate) fn migrate(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| map_err(path, e))?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.execute_batch(sql).map_err(sql_err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(sql_err)?;
    }
    tx.commit().map_err(|e| map_err(path, e))?;
    Ok(())
}
