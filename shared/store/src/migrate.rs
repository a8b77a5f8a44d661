//! The one schema-migration runner of Tournée's SQLite files (the replicated store and the
//! server's registry): steps applied in order, numbered by `PRAGMA user_version` (the count of
//! steps applied), all pending steps in one `IMMEDIATE` transaction.
//!
//! The version is read inside that transaction, so two processes opening one fresh file cannot
//! both migrate it (`rusqlite_migration` reads it before opening its transaction, which is why
//! this is a runner of our own). A file whose version is beyond the steps known is refused,
//! never downgraded. What this does not do: define any schema (each file's owner does), or
//! down-migrations.

use rusqlite::{Connection, TransactionBehavior};

/// Why a schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The file was written by a newer program.
    #[error("schema version {found} is newer than this program's {known}; upgrade Tournée")]
    Newer {
        /// Version found in the file.
        found: i64,
        /// Newest version this program knows.
        known: i64,
    },
    /// A step's SQL failed; nothing of this run was kept.
    #[error("schema migration to version {version} failed: {source}")]
    Step {
        /// The version the step would have reached.
        version: i64,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Opening the transaction, reading or writing the version, or committing failed.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Bring `conn` up to `steps.len()`: apply the steps after its `user_version`, in one
/// transaction. Returns the version found before. A file already up to date is only read:
/// no write lock is taken (the web interfaces open their files on every request).
pub fn migrate(conn: &mut Connection, steps: &[&str]) -> Result<i64, MigrationError> {
    let known = i64::try_from(steps.len()).unwrap_or(i64::MAX);
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == known {
        return Ok(current);
    }
    // Another process may migrate meanwhile: the version is read again under the lock.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(MigrationError::Newer { found, known });
    }
    for (version, sql) in (1..).zip(steps).skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(sql)
            .map_err(|source| MigrationError::Step { version, source })?;
        tx.pragma_update(None, "user_version", version)?;
    }
    tx.commit()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[&str] = &[
        "CREATE TABLE a (x INTEGER) STRICT;",
        "CREATE TABLE b (y INTEGER) STRICT;",
    ];

    fn version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version")
    }

    fn has_table(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .expect("schema")
            == 1
    }

    #[test]
    fn pending_steps_apply_in_order_and_a_second_run_applies_none() {
        let mut conn = Connection::open_in_memory().expect("open");
        assert_eq!(migrate(&mut conn, &STEPS[..1]).expect("first"), 0);
        assert_eq!(version(&conn), 1);
        assert_eq!(migrate(&mut conn, STEPS).expect("second"), 1);
        assert_eq!(version(&conn), 2);
        assert!(has_table(&conn, "a") && has_table(&conn, "b"));
        assert_eq!(migrate(&mut conn, STEPS).expect("again"), 2);
        assert_eq!(version(&conn), 2);
    }

    #[test]
    fn a_failing_step_keeps_nothing_of_the_run() {
        let mut conn = Connection::open_in_memory().expect("open");
        let steps = [STEPS[0], STEPS[1], "CREATE TABLE a (z INTEGER);"];
        let err = migrate(&mut conn, &steps).expect_err("third step fails");
        assert!(
            matches!(err, MigrationError::Step { version: 3, .. }),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(version(&conn), 0);
        assert!(!has_table(&conn, "a") && !has_table(&conn, "b"));
    }

    #[test]
    fn a_file_already_up_to_date_opens_while_another_connection_writes() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f.sqlite");
        let mut conn = Connection::open(&path).expect("open");
        conn.execute_batch("PRAGMA journal_mode=WAL;").expect("wal");
        migrate(&mut conn, STEPS).expect("migrate");
        let mut writer = Connection::open(&path).expect("writer");
        let tx = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("write lock");
        let mut other = Connection::open(&path).expect("other");
        // No busy wait set: taking the write lock would fail at once with SQLITE_BUSY.
        assert_eq!(migrate(&mut other, STEPS).expect("only read"), 2);
        drop(tx);
    }

    #[test]
    fn a_file_of_a_newer_program_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn, STEPS).expect("migrate");
        let err = migrate(&mut conn, &STEPS[..1]).expect_err("newer");
        assert!(
            matches!(err, MigrationError::Newer { found: 2, known: 1 }),
            "{err}"
        );
        assert_eq!(version(&conn), 2);
    }
}
