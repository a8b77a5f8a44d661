//! `SqliteStore`: the `Store` on one SQLite file (WAL, `synchronous=FULL`, foreign keys on,
//! schema versioned in code). The one place a store is opened, so encryption at rest can later
//! be added here alone.
//!
//! Records are stored one row each, their registers encoded with postcard in one blob; the
//! columns beside the blob (`day`, `conflict`) exist only to be indexed. This module opens the
//! file and holds what every side shares (the `meta` table, error mapping); the schema is in
//! `schema`, the encodings in `codec`, record rows in `records`, the `Store` impl in `local` and
//! the `ServerStore` impl in `server`. Deliberately not here: deciding what to write (that is
//! `write_local`'s caller) or any network code.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{
    params, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior,
};

use crate::{sql_err, Projection};

use tournee_core::limits::{
    SERVER_PAGE_CACHE_KIB, SERVER_WAL_CHECKPOINT_PAGES, STORE_BUSY_WAIT_MS,
};
use tournee_core::store::{Identity, StoreError};

pub(crate) const META_DEVICE: &str = "device";
pub(crate) const META_UNIT: &str = "unit";
pub(crate) const META_TERRITORY: &str = "territory";
pub(crate) const META_HLC: &str = "hlc";
pub(crate) const META_LAST_SEQ: &str = "last_seq";
pub(crate) const META_ACKED_SEQ: &str = "acked_seq";
pub(crate) const META_CURSOR: &str = "cursor";
pub(crate) const META_LAST_SYNC: &str = "last_sync_ms";
pub(crate) const META_CLOCK_OFFSET: &str = "clock_offset_ms";
/// Laptop: the unit's device names as the server last sent them (postcard pairs).
pub(crate) const META_DEVICE_NAMES: &str = "device_names";
/// Laptop: the server incarnation its cursor counts in.
pub(crate) const META_SERVER_EPOCH: &str = "server_epoch";
/// Server: this changelog's incarnation, renewed by a restore.
pub(crate) const META_EPOCH: &str = "epoch";
/// Server: 1 once the server renewed its epoch itself (a cursor past its head) since the last
/// `renew_epoch`.
pub(crate) const META_EPOCH_SELF: &str = "epoch_self";

/// How strongly commits reach the disk. `Full` is the only setting for real data; `Normal`
/// exists so the power-cut harness can show what it loses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a commit that returned survives power loss.
    Full,
    /// `synchronous=NORMAL`: faster; the last commits can vanish on power loss.
    Normal,
}

/// A store on one SQLite file. Owns its connection; not shared between threads.
#[derive(Debug)]
pub struct SqliteStore {
    pub(crate) conn: Connection,
    pub(crate) path: String,
    pub(crate) identity: Option<Identity>,
    pub(crate) projection: Option<Arc<dyn Projection>>,
}

impl SqliteStore {
    /// Open (creating if needed) the store at `path` with full durability.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// Open with an explicit durability (tests and the power-cut harness only).
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        make_owner_only(path).map_err(|source| StoreError::Backend {
            source: Box::new(std::io::Error::new(
                source.kind(),
                format!("cannot restrict {shown} to its owner: {source}"),
            )),
        })?;
        let conn = Connection::open(path).map_err(|e| map_err(&shown, e))?;
        Self::setup(conn, shown, durability)
    }

    /// A private in-memory store, for tests and simulations.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(sql_err)?;
        Self::setup(conn, ":memory:".to_owned(), Durability::Full)
    }

    pub(crate) fn setup(
        conn: Connection,
        path: String,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_millis(STORE_BUSY_WAIT_MS))
            .map_err(|e| map_err(&path, e))?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON;"
        ))
        .map_err(|e| map_err(&path, e))?;
        let mut store = Self {
            conn,
            path,
            identity: None,
            projection: None,
        };
        crate::schema::migrate(&mut store.conn, &store.path)?;
        store.build_indexes()?;
        store.identity = store.load_identity()?;
        if store.identity.as_ref().is_some_and(Identity::is_server) {
            store.tune_for_server()?;
        }
        Ok(store)
    }

    /// Build the laptop's indexes (`persons`, `links`) when this program fills them
    /// differently from the one that built them (or none did: a store from before migrations
    /// 10 and 11), in one transaction.
    fn build_indexes(&mut self) -> Result<(), StoreError> {
        let current = |c: &Connection| -> Result<(bool, bool), StoreError> {
            Ok((crate::persons::is_current(c)?, crate::links::is_current(c)?))
        };
        if current(&self.conn)? == (true, true) {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| map_err(&self.path, e))?;
        let (persons, links) = current(&tx)?;
        if !persons {
            crate::persons::rebuild(&tx)?;
        }
        if !links {
            crate::links::rebuild(&tx)?;
        }
        tx.commit().map_err(|e| map_err(&self.path, e))
    }

    /// The server's store serves many sessions: a larger page cache and rarer checkpoints.
    pub(crate) fn tune_for_server(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(&format!(
                "PRAGMA cache_size = -{SERVER_PAGE_CACHE_KIB}; PRAGMA wal_autocheckpoint = {SERVER_WAL_CHECKPOINT_PAGES};"
            ))
            .map_err(|e| map_err(&self.path, e))
    }

    fn load_identity(&self) -> Result<Option<Identity>, StoreError> {
        let device: Option<i64> = meta_get(&self.conn, META_DEVICE)?;
        let Some(device) = device else {
            return Ok(None);
        };
        let unit: Option<String> = meta_get(&self.conn, META_UNIT)?;
        let territory: Option<String> = meta_get(&self.conn, META_TERRITORY)?;
        Ok(Some(Identity {
            device: u32::try_from(device)
                .map_err(|_| StoreError::corrupt("device id", device.to_string()))?,
            unit: unit.unwrap_or_default(),
            territory: territory.unwrap_or_default(),
        }))
    }

    /// The connection, for read-only SQL of the server's reporting queries (`tournee-report`).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Keep `projection` current with every record this (server) store writes, in the same
    /// transaction. Set once, right after opening the server's store.
    pub fn set_projection(&mut self, projection: Arc<dyn Projection>) {
        self.projection = Some(projection);
    }

    /// The database file's path as shown in messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn require_identity(&self) -> Result<&Identity, StoreError> {
        self.identity
            .as_ref()
            .ok_or_else(|| StoreError::NotInitialized {
                path: self.path.clone(),
            })
    }

    /// Run `PRAGMA integrity_check`; `Ok(())` when SQLite reports "ok".
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let verdict: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(sql_err)?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(StoreError::corrupt("database file", verdict))
        }
    }

    /// Bytes the database occupies (pages in use × page size), for the storage benchmark.
    pub fn bytes_used(&self) -> Result<u64, StoreError> {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(sql_err)?;
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .map_err(sql_err)?;
        let size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(sql_err)?;
        Ok(u64::try_from((pages - free) * size).unwrap_or(0))
    }

    /// Drop acknowledged outbox entries (sync acks them; the benchmark uses it to measure the
    /// store as it stands after a sync).
    pub fn prune_acked(&mut self, acked: u64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| map_err(&path, e))?;
        let prev: Option<i64> = meta_get(&tx, META_ACKED_SEQ)?;
        let acked = i64::try_from(acked)
            .unwrap_or(i64::MAX)
            .max(prev.unwrap_or(0));
        tx.execute("DELETE FROM outbox WHERE seq <= ?1", [acked])
            .map_err(sql_err)?;
        meta_set(&tx, META_ACKED_SEQ, acked)?;
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(())
    }

    /// Rebuild the file to its minimal size (after bulk loads, for measurements).
    pub fn vacuum(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("VACUUM").map_err(sql_err)?;
        Ok(())
    }

    pub(crate) fn begin(&mut self) -> Result<Transaction<'_>, StoreError> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| map_err(&path, e))
    }
}

/// Make a SQLite database file and its `-wal` and `-shm` companions readable by their owner
/// only (0600), whatever the umask: the file is created 0600 when missing and restricted when
/// it exists. SQLite gives the `-wal` and `-shm` files it creates the main file's mode, so a
/// private main file keeps them private too; existing ones are restricted here as well.
///
/// On other platforms than Unix this does nothing (the data directory's ACL decides).
pub fn make_owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let private = std::fs::Permissions::from_mode(0o600);
        // An existing file is restricted by its path, never opened here: closing any descriptor
        // of a file drops every POSIX lock this process holds on it, so another connection of
        // the same process (the daemon's, beside the web UI's) would lose its SQLite locks.
        if path.exists() {
            std::fs::set_permissions(path, private.clone())?;
        } else {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)?;
            file.set_permissions(private.clone())?;
        }
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            match std::fs::set_permissions(&companion, private.clone()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

pub(crate) fn map_err(path: &str, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Busy {
            path: path.to_owned(),
        },
        Some(ErrorCode::DiskFull) => StoreError::DiskFull {
            path: path.to_owned(),
        },
        _ => sql_err(e),
    }
}

pub(crate) fn meta_get<T: rusqlite::types::FromSql>(
    conn: &Connection,
    key: &str,
) -> Result<Option<T>, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .map_err(sql_err)?
        .query_row([key], |r| r.get(0))
        .optional()
        .map_err(sql_err)
}

pub(crate) fn meta_set<T: rusqlite::types::ToSql>(
    conn: &Connection,
    key: &str,
    value: T,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value").map_err(sql_err)?
        .execute(params![key, value]).map_err(sql_err)?;
    Ok(())
}

pub(crate) fn meta_u64(conn: &Connection, key: &str) -> Result<u64, StoreError> {
    let v: Option<i64> = meta_get(conn, key)?;
    Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
}

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
