//! Record rows, shared by the laptop's and the server's side: read a record, write it back (with
//! the server's projection, in the same transaction), list records by a query.
//!
//! Encoding the blobs is `codec`'s; deciding what to write is the callers'.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use std::collections::HashMap;
use tournee_core::model::{Kind, Scope};

use tournee_core::record::{Change, Record};
use tournee_core::store::StoreError;

use crate::codec::{decode, encode, kind_code, kind_from_code, record_day};
use crate::{sql_err, Projection};

pub(crate) fn load_record(conn: &Connection, id: Uuid) -> Result<Option<Record>, StoreError> {
    load_record_in(conn, Table::Records, id)
}

/// The two tables a laptop's records live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// The records the laptop shows and writes on.
    Records,
    /// The replica being rebuilt from a restored server's changelog (`Store::adopt_server_epoch`).
    Resync,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Records => "records",
            Table::Resync => "resync_records",
        }
    }
}

/// `load_record` from `table`.
pub(crate) fn load_record_in(
    conn: &Connection,
    table: Table,
    id: Uuid,
) -> Result<Option<Record>, StoreError> {
    let sql = format!(
        "SELECT kind, scope, state FROM {} WHERE id = ?1",
        table.name()
    );
    let row: Option<(i64, String, Vec<u8>)> = conn
        .prepare_cached(&sql)
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
pub(crate) fn record_of_row(r: &rusqlite::Row<'_>) -> Result<Record, StoreError> {
    let id: Vec<u8> = r.get(0).map_err(sql_err)?;
    let id = Uuid::from_slice(&id).map_err(|e| StoreError::corrupt("record id", e))?;
    let kind: i64 = r.get(1).map_err(sql_err)?;
    let scope: String = r.get(2).map_err(sql_err)?;
    let state: Vec<u8> = r.get(3).map_err(sql_err)?;
    row_to_record(id, kind, &scope, &state)
}

pub(crate) fn row_to_record(
    id: Uuid,
    kind: i64,
    scope: &str,
    state: &[u8],
) -> Result<Record, StoreError> {
    let kind = kind_from_code(kind)?;
    let scope = Scope::from_key(scope)
        .ok_or_else(|| StoreError::corrupt("record scope", scope.to_owned()))?;
    Ok(Record {
        id,
        kind,
        scope,
        fields: decode("record state", state)?,
    })
}

pub(crate) fn save_record(
    conn: &Connection,
    record: &Record,
    projection: Option<&dyn Projection>,
) -> Result<(), StoreError> {
    if let Some(projection) = projection {
        projection.project(conn, record)?;
    }
    save_record_in(conn, Table::Records, record)
}

/// `save_record` into `table`, without a projection (laptops have none).
pub(crate) fn save_record_in(
    conn: &Connection,
    table: Table,
    record: &Record,
) -> Result<(), StoreError> {
    let state = encode("record state", &record.fields)?;
    let conflict = i64::from(!record.conflicts().is_empty());
    let sql = format!(
        "INSERT INTO {}(id, kind, scope, day, conflict, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET day = excluded.day, conflict = excluded.conflict, state = excluded.state",
        table.name()
    );
    conn.prepare_cached(&sql)
        .map_err(sql_err)?
        .execute(params![
            record.id.as_bytes().as_slice(),
            kind_code(record.kind),
            record.scope.key(),
            record_day(record),
            conflict,
            state
        ])
        .map_err(sql_err)?;
    if table == Table::Records {
        crate::persons::index(conn, record)?;
        crate::links::index(conn, record)?;
    }
    Ok(())
}

pub(crate) fn query_records(
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

/// The id range `[low, high)` of ids starting with the hex digits of `prefix` (hyphens
/// ignored; `high` is `None` when the prefix is all `f`s); `None` when `prefix` holds anything
/// but hex digits and hyphens, or more than an id's 32 digits.
pub(crate) fn prefix_range(prefix: &str) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let digits: Vec<u8> = prefix
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    // The prefix as a 128-bit number padded with zeros, and the width of the range it covers.
    let value = digits
        .iter()
        .fold(0u128, |acc, d| (acc << 4) | u128::from(*d))
        << (4 * (32 - digits.len()));
    let span = 1u128.checked_shl(4 * (32 - digits.len()) as u32);
    let high = span
        .and_then(|s| value.checked_add(s))
        .map(|h| h.to_be_bytes().to_vec());
    Some((value.to_be_bytes().to_vec(), high))
}

/// The order to write `changes` again in, record by record: a record's changes together (one
/// run: the server creates a record only from one batch holding all its fields); records a
/// device's records may name first (citizens, then appointments, then visits, then requests
/// and collective sessions, then the
/// rest: the server refuses a reference to a record it does not hold yet), then in the order
/// they first appear; each record's changes in their order.
pub(crate) fn by_record<'c>(changes: impl Iterator<Item = &'c Change>) -> Vec<usize> {
    let rank = |kind: Kind| match kind {
        Kind::Citizen => 0u8,
        Kind::Appointment => 1,
        Kind::Visit => 2,
        Kind::Request | Kind::Workshop => 3,
        _ => 4,
    };
    let mut first: HashMap<Uuid, usize> = HashMap::new();
    let mut order: Vec<(u8, usize, usize)> = changes
        .enumerate()
        .map(|(i, c)| (rank(c.kind), *first.entry(c.record).or_insert(i), i))
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, _, i)| i).collect()
}
