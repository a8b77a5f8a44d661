//! `SqliteStore`: the `Store` on one SQLite file (WAL, `synchronous=FULL`, foreign keys on,
//! schema versioned in code). The one place a store is opened, so encryption at rest can later
//! be added here alone.
//!
//! Records are stored one row each, their registers encoded with postcard in one blob; the
//! columns beside the blob (`day`, `conflict`) exist only to be indexed. Deliberately not here:
//! deciding what to write (that is `write_local`'s caller) or any network code.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use rusqlite::{
    params, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior,
};
use uuid::Uuid;

use crate::{sql_err, Projection};

use tournee_core::clock::WallMs;
use tournee_core::hlc::{Hlc, HlcGen};
use tournee_core::limits::{
    APPLY_BATCH_CHANGES_MAX, APPLY_FLIGHT_CHANGES_MAX, BATCH_CHANGES_MAX, CHANGELOG_ROW_BYTES_MAX,
    HLC_FUTURE_DRIFT_MAX_MS, LOCAL_ACTION_CHANGES_MAX, RECORD_STATE_BYTES_MAX,
    SCHEDULER_ACTION_CHANGES_MAX, SERVER_PAGE_CACHE_KIB, SERVER_WAL_CHECKPOINT_PAGES,
    STORE_BUSY_WAIT_MS,
};
use tournee_core::model::{check_status_forward, check_value, Field, Kind, Scope, ValidationCtx};
use tournee_core::record::{check_scope, Change, Record, RecordError};
use tournee_core::register::Actor;
use tournee_core::reject::{RejectReason, Rejection};
use tournee_core::store::{
    Accepted, ApplySummary, ChangeCheck, Identity, LocalAction, RejectedChange, ServerStore, Store,
    StoreError, StoreStats,
};
use tournee_core::time::{day_key, paris_date};

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
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

const META_DEVICE: &str = "device";
const META_UNIT: &str = "unit";
const META_TERRITORY: &str = "territory";
const META_HLC: &str = "hlc";
const META_LAST_SEQ: &str = "last_seq";
const META_ACKED_SEQ: &str = "acked_seq";
const META_CURSOR: &str = "cursor";
const META_LAST_SYNC: &str = "last_sync_ms";
const META_CLOCK_OFFSET: &str = "clock_offset_ms";

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
    conn: Connection,
    path: String,
    identity: Option<Identity>,
    projection: Option<Arc<dyn Projection>>,
}

fn kind_code(kind: Kind) -> i64 {
    Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .map_or(-1, |i| i as i64)
}

fn kind_from_code(code: i64) -> Result<Kind, StoreError> {
    usize::try_from(code)
        .ok()
        .and_then(|i| Kind::ALL.get(i).copied())
        .ok_or_else(|| StoreError::Corrupt {
            what: "record kind",
            detail: format!("code {code}"),
        })
}

fn encode<T: serde::Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(v).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    if bytes.len() > RECORD_STATE_BYTES_MAX {
        return Err(StoreError::Corrupt {
            what,
            detail: format!("{} bytes exceeds {RECORD_STATE_BYTES_MAX}", bytes.len()),
        });
    }
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// The indexed day of a record: appointment start day or passage date, in Paris.
fn record_day(record: &Record) -> Option<i64> {
    match record.kind {
        Kind::Appointment => record.int(Field::Start).and_then(paris_date).map(day_key),
        Kind::Passage => record
            .text(Field::Date)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .map(day_key),
        _ => None,
    }
}

impl SqliteStore {
    /// Open (creating if needed) the store at `path` with full durability.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// Open with an explicit durability (tests and the power-cut harness only).
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let conn = Connection::open(path).map_err(|e| map_err(&shown, e))?;
        Self::setup(conn, shown, durability)
    }

    /// A private in-memory store, for tests and simulations.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(sql_err)?;
        Self::setup(conn, ":memory:".to_owned(), Durability::Full)
    }

    fn setup(conn: Connection, path: String, durability: Durability) -> Result<Self, StoreError> {
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
        store.migrate()?;
        store.identity = store.load_identity()?;
        if store.identity.as_ref().is_some_and(Identity::is_server) {
            store.tune_for_server()?;
        }
        Ok(store)
    }

    /// The server's store serves many sessions: a larger page cache and rarer checkpoints.
    fn tune_for_server(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(&format!(
                "PRAGMA cache_size = -{SERVER_PAGE_CACHE_KIB}; PRAGMA wal_autocheckpoint = {SERVER_WAL_CHECKPOINT_PAGES};"
            ))
            .map_err(|e| map_err(&self.path, e))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| map_err(&path, e))?;
        let found: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_err)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path,
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
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(())
    }

    fn load_identity(&self) -> Result<Option<Identity>, StoreError> {
        let device: Option<i64> = meta_get(&self.conn, META_DEVICE)?;
        let Some(device) = device else {
            return Ok(None);
        };
        let unit: Option<String> = meta_get(&self.conn, META_UNIT)?;
        let territory: Option<String> = meta_get(&self.conn, META_TERRITORY)?;
        Ok(Some(Identity {
            device: u32::try_from(device).map_err(|_| StoreError::Corrupt {
                what: "device id",
                detail: device.to_string(),
            })?,
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

    fn require_identity(&self) -> Result<&Identity, StoreError> {
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
            Err(StoreError::Corrupt {
                what: "database file",
                detail: verdict,
            })
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

    fn begin(&mut self) -> Result<Transaction<'_>, StoreError> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| map_err(&path, e))
    }
}

fn map_err(path: &str, e: rusqlite::Error) -> StoreError {
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

fn meta_get<T: rusqlite::types::FromSql>(
    conn: &Connection,
    key: &str,
) -> Result<Option<T>, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .map_err(sql_err)?
        .query_row([key], |r| r.get(0))
        .optional()
        .map_err(sql_err)
}

fn meta_set<T: rusqlite::types::ToSql>(
    conn: &Connection,
    key: &str,
    value: T,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value").map_err(sql_err)?
        .execute(params![key, value]).map_err(sql_err)?;
    Ok(())
}

fn meta_u64(conn: &Connection, key: &str) -> Result<u64, StoreError> {
    let v: Option<i64> = meta_get(conn, key)?;
    Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
}

fn load_record(conn: &Connection, id: Uuid) -> Result<Option<Record>, StoreError> {
    let row: Option<(i64, String, Vec<u8>)> = conn
        .prepare_cached("SELECT kind, scope, state FROM records WHERE id = ?1")
        .map_err(sql_err)?
        .query_row([id.as_bytes().as_slice()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(sql_err)?;
    row.map(|(kind, scope, state)| row_to_record(id, kind, &scope, &state))
        .transpose()
}

/// A record from a row of `SELECT id, kind, scope, state FROM records`.
fn record_of_row(r: &rusqlite::Row<'_>) -> Result<Record, StoreError> {
    let id: Vec<u8> = r.get(0).map_err(sql_err)?;
    let id = Uuid::from_slice(&id).map_err(|e| StoreError::Corrupt {
        what: "record id",
        detail: e.to_string(),
    })?;
    let kind: i64 = r.get(1).map_err(sql_err)?;
    let scope: String = r.get(2).map_err(sql_err)?;
    let state: Vec<u8> = r.get(3).map_err(sql_err)?;
    row_to_record(id, kind, &scope, &state)
}

fn row_to_record(id: Uuid, kind: i64, scope: &str, state: &[u8]) -> Result<Record, StoreError> {
    let kind = kind_from_code(kind)?;
    let scope = Scope::from_key(scope).ok_or_else(|| StoreError::Corrupt {
        what: "record scope",
        detail: scope.to_owned(),
    })?;
    Ok(Record {
        id,
        kind,
        scope,
        fields: decode("record state", state)?,
    })
}

fn save_record(
    conn: &Connection,
    record: &Record,
    projection: Option<&dyn Projection>,
) -> Result<(), StoreError> {
    if let Some(projection) = projection {
        projection.project(conn, record)?;
    }
    let state = encode("record state", &record.fields)?;
    let conflict = i64::from(!record.conflicts().is_empty());
    conn.prepare_cached(
        "INSERT INTO records(id, kind, scope, day, conflict, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET day = excluded.day, conflict = excluded.conflict, state = excluded.state",
    ).map_err(sql_err)?
    .execute(params![
        record.id.as_bytes().as_slice(),
        kind_code(record.kind),
        record.scope.key(),
        record_day(record),
        conflict,
        state
    ]).map_err(sql_err)?;
    Ok(())
}

/// Append changes applied in one transaction to the changelog: one row per scope (and per
/// `BATCH_CHANGES_MAX` changes), numbered on from the current head in the order given.
fn append_changelog<'a>(
    conn: &Connection,
    device: Actor,
    changes: impl IntoIterator<Item = &'a Change>,
) -> Result<(), StoreError> {
    let mut groups: Vec<(&Scope, Vec<&Change>)> = Vec::new();
    for change in changes {
        match groups.iter_mut().find(|(s, _)| **s == change.scope) {
            Some((_, v)) => v.push(change),
            None => groups.push((&change.scope, vec![change])),
        }
    }
    let mut head = log_head(conn)?;
    for (scope, all) in &groups {
        for row in all.chunks(BATCH_CHANGES_MAX) {
            let first = head + 1;
            let last = head + row.len() as u64;
            conn.prepare_cached(
                "INSERT INTO changelog(first, last, device, scope, changes) VALUES (?1, ?2, ?3, ?4, ?5)",
            ).map_err(sql_err)?
            .execute(params![
                i64_of(first),
                i64_of(last),
                i64::from(device),
                scope.key(),
                encode("changelog row", &row)?
            ]).map_err(sql_err)?;
            head = last;
        }
    }
    Ok(())
}

/// Highest sequence of `device` the server has applied (0 before its first batch).
fn device_acked_in(conn: &Connection, device: Actor) -> Result<u64, StoreError> {
    let v: Option<i64> = conn
        .prepare_cached("SELECT acked FROM device_acks WHERE device = ?1")
        .map_err(sql_err)?
        .query_row([i64::from(device)], |r| r.get(0))
        .optional()
        .map_err(sql_err)?;
    Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
}

/// Number of the last change in the changelog (0 when empty).
fn log_head(conn: &Connection) -> Result<u64, StoreError> {
    let v: Option<i64> = conn
        .prepare_cached("SELECT last FROM changelog ORDER BY first DESC LIMIT 1")
        .map_err(sql_err)?
        .query_row([], |r| r.get(0))
        .optional()
        .map_err(sql_err)?;
    Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
}

/// One changelog row as read back, its changes still encoded.
struct LogRow {
    first: u64,
    last: u64,
    device: Actor,
    changes: Vec<u8>,
}

impl LogRow {
    fn decode(&self) -> Result<Vec<Change>, StoreError> {
        if self.changes.len() > CHANGELOG_ROW_BYTES_MAX {
            return Err(StoreError::Corrupt {
                what: "changelog row",
                detail: format!(
                    "{} bytes exceeds {CHANGELOG_ROW_BYTES_MAX}",
                    self.changes.len()
                ),
            });
        }
        let changes: Vec<Change> =
            postcard::from_bytes(&self.changes).map_err(|e| StoreError::Corrupt {
                what: "changelog row",
                detail: e.to_string(),
            })?;
        if changes.len() as u64 != self.last - self.first + 1 {
            return Err(StoreError::Corrupt {
                what: "changelog row",
                detail: format!(
                    "{} changes numbered {}..={}",
                    changes.len(),
                    self.first,
                    self.last
                ),
            });
        }
        Ok(changes)
    }
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn query_records(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Record>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_err)?;
    let mut rows = stmt.query(args).map_err(sql_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(sql_err)? {
        out.push(record_of_row(r)?);
    }
    Ok(out)
}

impl Store for SqliteStore {
    fn identity(&self) -> Result<Option<Identity>, StoreError> {
        Ok(self.identity.clone())
    }

    fn set_identity(&mut self, identity: &Identity) -> Result<(), StoreError> {
        if let Some(have) = &self.identity {
            return Err(StoreError::AlreadyInitialized {
                path: self.path.clone(),
                device: have.device,
                unit: have.unit.clone(),
            });
        }
        let path = self.path.clone();
        let tx = self.begin()?;
        meta_set(&tx, META_DEVICE, i64::from(identity.device))?;
        meta_set(&tx, META_UNIT, &identity.unit)?;
        meta_set(&tx, META_TERRITORY, &identity.territory)?;
        tx.commit().map_err(|e| map_err(&path, e))?;
        self.identity = Some(identity.clone());
        if identity.is_server() {
            self.tune_for_server()?;
        }
        Ok(())
    }

    fn record(&self, id: Uuid) -> Result<Option<Record>, StoreError> {
        load_record(&self.conn, id)
    }

    fn write_local(
        &mut self,
        now: WallMs,
        action: &LocalAction,
    ) -> Result<Vec<Change>, StoreError> {
        let me = self.require_identity()?.device;
        let server = self.require_identity()?.is_server();
        let projection = self.projection.clone().filter(|_| server);
        let count: usize = action.edits.iter().map(|e| e.sets.len()).sum();
        let max = if server {
            SCHEDULER_ACTION_CHANGES_MAX
        } else {
            LOCAL_ACTION_CHANGES_MAX
        };
        if count > max {
            return Err(StoreError::TooBig {
                what: "local action",
                count,
                max,
            });
        }
        let ctx = Some(ValidationCtx { now });
        for edit in &action.edits {
            check_scope(edit.kind, &edit.scope)?;
            for (field, value) in &edit.sets {
                check_value(edit.kind, *field, value, ctx)?;
            }
        }
        let path = self.path.clone();
        let tx = self.begin()?;
        let mut hlc = HlcGen::new(Hlc(meta_u64(&tx, META_HLC)?));
        // Stamp in server time once the offset is known: a laptop whose clock is wrong keeps
        // writing, and its changes are not refused as coming from the future.
        let offset: Option<i64> = meta_get(&tx, META_CLOCK_OFFSET)?;
        let stamp_now = now.saturating_add_signed(offset.unwrap_or(0));
        let mut seq = meta_u64(&tx, META_LAST_SEQ)?;
        let mut changes = Vec::with_capacity(count);
        for edit in &action.edits {
            let existing = load_record(&tx, edit.id)?;
            let mut record = match existing {
                Some(r) if edit.create => {
                    return Err(StoreError::Exists {
                        kind: r.kind,
                        id: r.id,
                    })
                }
                // The values were validated against the edit's kind and scope, but the changes
                // carry the stored record's: an edit that misnames them would write values the
                // record's kind does not allow, which every peer then refuses.
                Some(r) if r.kind != edit.kind => {
                    return Err(StoreError::NotFound {
                        kind: edit.kind,
                        id: edit.id,
                    })
                }
                Some(r) if r.scope != edit.scope => {
                    return Err(RecordError::Mismatch {
                        id: r.id,
                        have_kind: r.kind,
                        have_scope: r.scope.key(),
                        got_kind: edit.kind,
                        got_scope: edit.scope.key(),
                    }
                    .into())
                }
                Some(r) => r,
                None if edit.create => Record::new(edit.id, edit.kind, edit.scope.clone()),
                None => {
                    return Err(StoreError::NotFound {
                        kind: edit.kind,
                        id: edit.id,
                    })
                }
            };
            for (field, value) in &edit.sets {
                let reg = record.fields.get(field).cloned().unwrap_or_default();
                if record.kind == Kind::Appointment && *field == Field::Status {
                    check_status_forward(reg.siblings(), value)?;
                }
                let change = Change {
                    record: record.id,
                    kind: record.kind,
                    scope: record.scope.clone(),
                    field: *field,
                    write: reg.prepare(me, hlc.tick(stamp_now), value.clone()),
                };
                record.apply_change(change.clone())?;
                if !server {
                    seq += 1;
                    tx.prepare_cached("INSERT INTO outbox(seq, change) VALUES (?1, ?2)")
                        .map_err(sql_err)?
                        .execute(params![
                            i64::try_from(seq).unwrap_or(i64::MAX),
                            encode("change", &change)?
                        ])
                        .map_err(sql_err)?;
                }
                changes.push(change);
            }
            save_record(&tx, &record, projection.as_deref())?;
        }
        if server {
            append_changelog(&tx, me, &changes)?;
        }
        meta_set(
            &tx,
            META_HLC,
            i64::try_from(hlc.last().0).unwrap_or(i64::MAX),
        )?;
        meta_set(&tx, META_LAST_SEQ, i64::try_from(seq).unwrap_or(i64::MAX))?;
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(changes)
    }

    fn apply_remote(
        &mut self,
        changes: &[Change],
        cursor: Option<u64>,
    ) -> Result<ApplySummary, StoreError> {
        if changes.len() > APPLY_BATCH_CHANGES_MAX {
            return Err(StoreError::TooBig {
                what: "remote batch",
                count: changes.len(),
                max: APPLY_BATCH_CHANGES_MAX,
            });
        }
        let server = self.identity.as_ref().is_some_and(Identity::is_server);
        let projection = self.projection.clone().filter(|_| server);
        let path = self.path.clone();
        let tx = self.begin()?;
        let mut hlc = HlcGen::new(Hlc(meta_u64(&tx, META_HLC)?));
        let mut touched: HashMap<Uuid, (Record, bool)> = HashMap::new();
        let mut order: Vec<Uuid> = Vec::new();
        let mut summary = ApplySummary::default();
        for change in changes {
            check_value(change.kind, change.field, &change.write.value, None)?;
            let (record, dirty) = match touched.entry(change.record) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let record = match load_record(&tx, change.record)? {
                        Some(r) => r,
                        None => Record::for_change(change)?,
                    };
                    order.push(change.record);
                    e.insert((record, false))
                }
            };
            if record.apply_change(change.clone())? {
                *dirty = true;
                summary.applied += 1;
            } else {
                summary.already_seen += 1;
            }
            hlc.observe(change.write.hlc);
        }
        for id in order {
            if let Some((record, true)) = touched.get(&id) {
                save_record(&tx, record, projection.as_deref())?;
            }
        }
        meta_set(
            &tx,
            META_HLC,
            i64::try_from(hlc.last().0).unwrap_or(i64::MAX),
        )?;
        if let Some(c) = cursor {
            let prev = meta_u64(&tx, META_CURSOR)?;
            meta_set(
                &tx,
                META_CURSOR,
                i64::try_from(c.max(prev)).unwrap_or(i64::MAX),
            )?;
        }
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(summary)
    }

    fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Change)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, change FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(sql_err)?;
        let mut rows = stmt
            .query(params![
                i64::try_from(after).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ])
            .map_err(sql_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sql_err)? {
            let seq: i64 = r.get(0).map_err(sql_err)?;
            let bytes: Vec<u8> = r.get(1).map_err(sql_err)?;
            out.push((
                u64::try_from(seq).unwrap_or(0),
                decode("outbox change", &bytes)?,
            ));
        }
        Ok(out)
    }

    fn records_on(&self, kind: Kind, day: NaiveDate) -> Result<Vec<Record>, StoreError> {
        let recs = query_records(
            &self.conn,
            "SELECT id, kind, scope, state FROM records WHERE kind = ?1 AND day = ?2",
            params![kind_code(kind), day_key(day)],
        )?;
        Ok(recs.into_iter().filter(|r| !r.is_deleted()).collect())
    }

    fn conflicted(&self) -> Result<Vec<Record>, StoreError> {
        query_records(
            &self.conn,
            "SELECT id, kind, scope, state FROM records WHERE conflict = 1 ORDER BY id",
            [],
        )
    }

    fn for_each_record(
        &self,
        scopes: Option<&[Scope]>,
        f: &mut dyn FnMut(Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let keys: Option<Vec<String>> = scopes.map(|s| s.iter().map(Scope::key).collect());
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, kind, scope, state FROM records ORDER BY id")
            .map_err(sql_err)?;
        let mut rows = stmt.query([]).map_err(sql_err)?;
        while let Some(r) = rows.next().map_err(sql_err)? {
            if let Some(keys) = &keys {
                let scope: String = r.get(2).map_err(sql_err)?;
                if !keys.contains(&scope) {
                    continue;
                }
            }
            f(record_of_row(r)?)?;
        }
        Ok(())
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let count = |sql: &str| -> Result<u64, StoreError> {
            let n: i64 = self
                .conn
                .query_row(sql, [], |r| r.get(0))
                .map_err(sql_err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let last_seq = meta_u64(&self.conn, META_LAST_SEQ)?;
        let acked_seq = meta_u64(&self.conn, META_ACKED_SEQ)?;
        Ok(StoreStats {
            records: count("SELECT count(*) FROM records")?,
            last_seq,
            acked_seq,
            pending: last_seq.saturating_sub(acked_seq),
            conflicted_records: count("SELECT count(*) FROM records WHERE conflict = 1")?,
            rejected: count("SELECT count(*) FROM rejected")?,
            cursor: meta_u64(&self.conn, META_CURSOR)?,
        })
    }

    fn acknowledge(&mut self, acked: u64, rejected: &[Rejection]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.begin()?;
        let prev = meta_u64(&tx, META_ACKED_SEQ)?;
        let last = meta_u64(&tx, META_LAST_SEQ)?;
        let acked = acked.min(last);
        if acked > prev {
            for r in rejected.iter().filter(|r| r.seq > prev && r.seq <= acked) {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO rejected(seq, reason, change)
                     SELECT seq, ?2, change FROM outbox WHERE seq = ?1",
                )
                .map_err(sql_err)?
                .execute(params![i64_of(r.seq), r.reason.to_string()])
                .map_err(sql_err)?;
            }
            tx.prepare_cached("DELETE FROM outbox WHERE seq <= ?1")
                .map_err(sql_err)?
                .execute([i64_of(acked)])
                .map_err(sql_err)?;
            meta_set(&tx, META_ACKED_SEQ, i64_of(acked))?;
        }
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(())
    }

    fn note_sync(&mut self, now: WallMs, clock_offset_ms: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.begin()?;
        meta_set(&tx, META_LAST_SYNC, i64_of(now))?;
        meta_set(&tx, META_CLOCK_OFFSET, clock_offset_ms)?;
        // A clock that ran ahead pushed the HLC ahead too, and an HLC never goes back on its
        // own: bring it back to server time. HLCs only order siblings for display, so this
        // cannot lose or resurrect a write.
        let server_now = now.saturating_add_signed(clock_offset_ms);
        let hlc = Hlc(meta_u64(&tx, META_HLC)?);
        if hlc.wall_ms() > server_now.saturating_add(HLC_FUTURE_DRIFT_MAX_MS / 2) {
            meta_set(&tx, META_HLC, i64_of(Hlc::from_wall(server_now).0))?;
        }
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(())
    }

    fn last_sync(&self) -> Result<Option<(WallMs, i64)>, StoreError> {
        let at: Option<i64> = meta_get(&self.conn, META_LAST_SYNC)?;
        let offset: Option<i64> = meta_get(&self.conn, META_CLOCK_OFFSET)?;
        Ok(at.map(|a| (u64::try_from(a).unwrap_or(0), offset.unwrap_or(0))))
    }

    fn rejected(&self) -> Result<Vec<RejectedChange>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, reason, change FROM rejected ORDER BY seq")
            .map_err(sql_err)?;
        let mut rows = stmt.query([]).map_err(sql_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sql_err)? {
            let seq: i64 = r.get(0).map_err(sql_err)?;
            let reason: String = r.get(1).map_err(sql_err)?;
            let bytes: Vec<u8> = r.get(2).map_err(sql_err)?;
            out.push(RejectedChange {
                seq: u64::try_from(seq).unwrap_or(0),
                reason,
                change: decode("rejected change", &bytes)?,
            });
        }
        Ok(out)
    }
}

impl ServerStore for SqliteStore {
    fn device_acked(&self, device: Actor) -> Result<u64, StoreError> {
        device_acked_in(&self.conn, device)
    }

    fn accept_batches(
        &mut self,
        device: Actor,
        batches: &[(u64, &[Change])],
        check: &mut ChangeCheck<'_>,
    ) -> Result<Vec<Accepted>, StoreError> {
        let total: usize = batches.iter().map(|(_, c)| c.len()).sum();
        if total > APPLY_FLIGHT_CHANGES_MAX {
            return Err(StoreError::TooBig {
                what: "device batches",
                count: total,
                max: APPLY_FLIGHT_CHANGES_MAX,
            });
        }
        let path = self.path.clone();
        let projection = self.projection.clone();
        let tx = self.begin()?;
        let mut prev = device_acked_in(&tx, device)?;
        let acked_before = prev;
        let mut hlc = HlcGen::new(Hlc(meta_u64(&tx, META_HLC)?));
        // Records read once and written once per transaction, however many batches touch them.
        let mut touched: HashMap<Uuid, Option<Record>> = HashMap::new();
        let mut dirty: Vec<Uuid> = Vec::new();
        let mut logged: Vec<&Change> = Vec::new();
        let mut results = Vec::with_capacity(batches.len());
        for (first_seq, changes) in batches {
            let mut out = Accepted {
                acked: prev,
                ..Accepted::default()
            };
            for (i, change) in changes.iter().enumerate() {
                let seq = first_seq + i as u64;
                if seq <= prev {
                    out.duplicates += 1;
                    continue;
                }
                out.acked = seq;
                let slot = match touched.entry(change.record) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(load_record(&tx, change.record)?)
                    }
                };
                if let Err(reason) = check(change, slot.as_ref()) {
                    out.rejected.push(Rejection { seq, reason });
                    continue;
                }
                let record = match slot {
                    Some(r) => r,
                    None => slot.insert(Record::for_change(change)?),
                };
                match record.apply_change(change.clone()) {
                    Ok(true) => {
                        logged.push(change);
                        hlc.observe(change.write.hlc);
                        if !dirty.contains(&change.record) {
                            dirty.push(change.record);
                        }
                        out.applied += 1;
                    }
                    Ok(false) => out.duplicates += 1,
                    Err(e) => out.rejected.push(Rejection {
                        seq,
                        reason: RejectReason::invalid(e.to_string()),
                    }),
                }
            }
            prev = out.acked;
            results.push(out);
        }
        for id in &dirty {
            if let Some(Some(record)) = touched.get(id) {
                save_record(&tx, record, projection.as_deref())?;
            }
        }
        append_changelog(&tx, device, logged)?;
        for r in results.iter().flat_map(|a| &a.rejected) {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO device_rejections(device, seq, reason) VALUES (?1, ?2, ?3)",
            )
            .map_err(sql_err)?
            .execute(params![
                i64::from(device),
                i64_of(r.seq),
                encode("rejection", &r.reason)?
            ])
            .map_err(sql_err)?;
        }
        if prev > acked_before {
            tx.prepare_cached(
                "INSERT INTO device_acks(device, acked) VALUES (?1, ?2)
                 ON CONFLICT(device) DO UPDATE SET acked = excluded.acked",
            )
            .map_err(sql_err)?
            .execute(params![i64::from(device), i64_of(prev)])
            .map_err(sql_err)?;
        }
        meta_set(&tx, META_HLC, i64_of(hlc.last().0))?;
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(results)
    }

    fn changelog_after(
        &self,
        cursor: u64,
        scopes: &[Scope],
        exclude: Actor,
        limit: usize,
    ) -> Result<(Vec<(u64, Change)>, u64), StoreError> {
        let head = self.changelog_head()?;
        let from = cursor.saturating_add(1);
        // Rows of each scope (one index range each), up to `limit` changes per scope.
        let mut rows: Vec<LogRow> = Vec::new();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT first, last, device, changes FROM changelog WHERE scope = ?1 AND last > ?2
             ORDER BY last",
            )
            .map_err(sql_err)?;
        for scope in scopes {
            let mut q = stmt
                .query(params![scope.key(), i64_of(cursor)])
                .map_err(sql_err)?;
            let mut taken = 0u64;
            while taken < limit as u64 {
                let Some(r) = q.next().map_err(sql_err)? else {
                    break;
                };
                let row = LogRow {
                    first: u64::try_from(r.get::<_, i64>(0).map_err(sql_err)?).unwrap_or(0),
                    last: u64::try_from(r.get::<_, i64>(1).map_err(sql_err)?).unwrap_or(0),
                    device: u32::try_from(r.get::<_, i64>(2).map_err(sql_err)?).unwrap_or(u32::MAX),
                    changes: r.get(3).map_err(sql_err)?,
                };
                if row.last < row.first {
                    return Err(StoreError::Corrupt {
                        what: "changelog row",
                        detail: format!("numbered {}..={}", row.first, row.last),
                    });
                }
                taken += row.last - row.first.max(from) + 1;
                rows.push(row);
            }
        }
        rows.sort_by_key(|r| r.first);
        // Complete only up to the `limit`-th change: a scope that hit the limit has more.
        let mut complete_to = head;
        let mut seen = 0u64;
        for row in &rows {
            let n = row.last - row.first.max(from) + 1;
            if seen + n >= limit as u64 {
                complete_to = row.first.max(from) + (limit as u64 - seen) - 1;
                break;
            }
            seen += n;
        }
        let mut entries: Vec<(u64, Change)> = Vec::new();
        for row in &rows {
            if row.first.max(from) > complete_to {
                break;
            }
            if row.device == exclude {
                continue;
            }
            for (g, change) in (row.first..).zip(row.decode()?) {
                if g >= from && g <= complete_to {
                    entries.push((g, change));
                }
            }
        }
        Ok((entries, complete_to.max(cursor)))
    }

    fn device_rejections(
        &self,
        device: Actor,
        after: u64,
        upto: u64,
    ) -> Result<Vec<Rejection>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, reason FROM device_rejections WHERE device = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
        ).map_err(sql_err)?;
        let mut rows = stmt
            .query(params![i64::from(device), i64_of(after), i64_of(upto)])
            .map_err(sql_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sql_err)? {
            let seq: i64 = r.get(0).map_err(sql_err)?;
            let bytes: Vec<u8> = r.get(1).map_err(sql_err)?;
            out.push(Rejection {
                seq: u64::try_from(seq).unwrap_or(0),
                reason: decode("rejection", &bytes)?,
            });
        }
        Ok(out)
    }

    fn forget_rejections(&mut self, device: Actor, upto: u64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM device_rejections WHERE device = ?1 AND seq <= ?2")
            .map_err(sql_err)?
            .execute(params![i64::from(device), i64_of(upto)])
            .map_err(sql_err)?;
        Ok(())
    }

    fn changelog_head(&self) -> Result<u64, StoreError> {
        log_head(&self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tournee_core::model::Value;
    use tournee_core::store::RecordEdit;

    const NOW: WallMs = 1_790_000_000_000;

    /// Changes the server wrote itself: two appointments in a unit, one stop in a territory.
    fn server_changes() -> Vec<(u64, Change)> {
        let mut s = SqliteStore::open_in_memory().expect("store");
        s.set_identity(&Identity::server()).expect("identity");
        for (k, scope) in [
            Scope::Unit("bus-80-1".into()),
            Scope::Unit("bus-80-1".into()),
        ]
        .into_iter()
        .enumerate()
        {
            let action = LocalAction {
                edits: vec![RecordEdit {
                    id: Uuid::now_v7(),
                    kind: Kind::Appointment,
                    scope,
                    create: true,
                    sets: vec![
                        (Field::Location, Value::Text("arret".into())),
                        (Field::Commune, Value::Text("80021".into())),
                        (
                            Field::Start,
                            Value::Int((NOW / 1000) as i64 + 86_400 * (k as i64 + 1)),
                        ),
                        (Field::Duration, Value::Int(30)),
                    ],
                }],
            };
            s.write_local(NOW, &action).expect("write");
        }
        let scopes = [Scope::Unit("bus-80-1".into())];
        let (entries, scanned) = s.changelog_after(0, &scopes, 99, 1_000).expect("log");
        assert_eq!(scanned, 8);
        entries
    }

    #[test]
    fn a_version_4_changelog_of_single_changes_migrates_to_rows_with_the_same_numbers() {
        let entries = server_changes();
        let conn = Connection::open_in_memory().expect("open");
        for sql in &MIGRATIONS[..4] {
            conn.execute_batch(sql).expect("old schema");
        }
        conn.pragma_update(None, "user_version", 4)
            .expect("version");
        for (g, change) in &entries {
            conn.execute(
                "INSERT INTO changelog(gseq, device, scope, change) VALUES (?1, 0, ?2, ?3)",
                params![
                    i64_of(*g),
                    change.scope.key(),
                    postcard::to_allocvec(change).expect("encode")
                ],
            )
            .expect("old row");
        }
        let mut store =
            SqliteStore::setup(conn, ":memory:".into(), Durability::Full).expect("migrates");
        store.set_identity(&Identity::server()).expect("identity");
        assert_eq!(store.changelog_head().expect("head"), 8);
        let scopes = [Scope::Unit("bus-80-1".into())];
        let (after, scanned) = store.changelog_after(0, &scopes, 99, 1_000).expect("log");
        assert_eq!(scanned, 8);
        assert_eq!(after, entries, "same changes, same numbers");
        let (tail, _) = store.changelog_after(5, &scopes, 99, 2).expect("log");
        assert_eq!(tail, entries[5..7].to_vec());
        // New rows number on from the migrated head.
        let action = LocalAction {
            edits: vec![RecordEdit {
                id: Uuid::now_v7(),
                kind: Kind::Appointment,
                scope: Scope::Unit("bus-80-1".into()),
                create: true,
                sets: vec![
                    (Field::Location, Value::Text("domicile".into())),
                    (Field::Commune, Value::Text("80021".into())),
                    (Field::Start, Value::Int((NOW / 1000) as i64 + 3_600)),
                ],
            }],
        };
        store.write_local(NOW, &action).expect("write");
        assert_eq!(store.changelog_head().expect("head"), 11);
        let (last, _) = store.changelog_after(8, &scopes, 99, 10).expect("log");
        assert_eq!(
            last.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![9, 10, 11]
        );
    }

    #[test]
    fn a_changelog_row_whose_count_disagrees_with_its_numbers_is_corrupt() {
        let mut store = SqliteStore::open_in_memory().expect("store");
        store.set_identity(&Identity::server()).expect("identity");
        let (_, change) = server_changes().remove(0);
        store
            .conn
            .execute(
                "INSERT INTO changelog(first, last, device, scope, changes) VALUES (1, 3, 0, ?1, ?2)",
                params![change.scope.key(), postcard::to_allocvec(&vec![change.clone()]).expect("encode")],
            )
            .expect("row");
        let err = store
            .changelog_after(0, std::slice::from_ref(&change.scope), 99, 10)
            .expect_err("corrupt");
        assert!(err.to_string().contains("changelog row"), "{err}");
    }
}
