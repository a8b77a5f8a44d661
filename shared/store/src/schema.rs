//! The schema of a Tournée store: its migrations, in order, and the version this program writes.
//!
//! Only the SQL and the mapping of the runner's errors live here; applying steps (in one
//! transaction, refusing newer files) is `migrate`'s job, reading or writing rows the other
//! modules'.

use rusqlite::Connection;

use tournee_core::store::StoreError;

use crate::migrate::MigrationError;
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
    // 6: healing. The chain of each device's acknowledged history (NULL: acknowledged before
    // chains were kept, learnt from the device at its next Hello), and the laptop's stash of
    // changes waiting to be re-issued after a rebase.
    "ALTER TABLE device_acks ADD COLUMN chain BLOB;
     CREATE TABLE rebase_stash (
         n      INTEGER PRIMARY KEY,
         change BLOB NOT NULL
     ) STRICT;",
    // 7: a laptop rebuilding its replica from a restored server's changelog (empty otherwise;
    // swapped into `records` once the changelog was applied up to date).
    "CREATE TABLE resync_records (
         id       BLOB PRIMARY KEY,
         kind     INTEGER NOT NULL,
         scope    TEXT NOT NULL,
         day      INTEGER,
         conflict INTEGER NOT NULL DEFAULT 0,
         state    BLOB NOT NULL
     ) STRICT, WITHOUT ROWID;",
    // 8: records of a kind listed without a day (persons searched, requests followed up).
    "CREATE INDEX records_kind ON records(kind);",
    // 9: the projection of walk-ins, collective sessions and person merges (server only):
    // a request made at a walk-in follows its day and commune, a session counts attendees,
    // a merged person is counted once.
    "ALTER TABLE facts ADD COLUMN visit BLOB;
     ALTER TABLE facts ADD COLUMN attendees INTEGER;
     ALTER TABLE facts ADD COLUMN merged_into BLOB;
     CREATE INDEX facts_visit ON facts(visit) WHERE visit IS NOT NULL;",
    // 10: the person index (`persons`): what a search compares, folded when written. Filled
    // on opening (`persons::rebuild`), since folding is not SQL.
    "CREATE TABLE person_index (
         id          BLOB PRIMARY KEY,
         name        TEXT NOT NULL,
         other       TEXT NOT NULL,
         commune     TEXT NOT NULL,
         phone       TEXT NOT NULL,
         merged_into BLOB
     ) STRICT, WITHOUT ROWID;",
    // 11: the links index (`links`): the person, parent and outcome records are looked up
    // by. Filled on opening (`links::rebuild`).
    "CREATE TABLE links (
         field TEXT NOT NULL,
         value ANY NOT NULL,
         kind  INTEGER NOT NULL,
         id    BLOB NOT NULL,
         PRIMARY KEY (field, value, kind, id)
     ) STRICT, WITHOUT ROWID;
     CREATE INDEX links_id ON links(id);",
    // The coverage report reads a year of a territory's facts by (kind, day): an index that
    // covers the columns it counts by scans them in order instead of fetching every row by id
    // (≈ 5× faster on a year of requests); same key, so it replaces the narrow one.
    "DROP INDEX facts_kind_day;
     CREATE INDEX facts_kind_day ON facts(kind, day, departement, deleted, commune, unit,
         partner, theme, outcome, status, location, minutes, citizen);",
];

/// Schema version this program writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the schema of `conn` (the file shown as `path`) up to `SCHEMA_VERSION` with the
/// shared runner; a file written by a newer program is `StoreError::NewerSchema`.
pub(crate) fn migrate(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    match crate::migrate::migrate(conn, MIGRATIONS) {
        Ok(_) => Ok(()),
        Err(MigrationError::Newer { found, known }) => Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found,
            known,
        }),
        Err(MigrationError::Sqlite(e)) => Err(map_err(path, e)),
        Err(e @ MigrationError::Step { .. }) => Err(StoreError::Backend {
            source: Box::new(e),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    #[test]
    fn a_store_written_by_a_newer_schema_is_refused_with_both_versions() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.sqlite");
        drop(SqliteStore::open(&path).expect("create"));
        let conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
        drop(conn);
        let err = SqliteStore::open(&path).expect_err("newer");
        assert!(
            matches!(
                err,
                StoreError::NewerSchema { found, known, .. }
                    if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION
            ),
            "{err}"
        );
    }
}
