//! The links index: for each live record, the shown value of the few fields screens look
//! records up by (`LINKED_FIELDS`: the person an appointment or a walk-in names, the parent a
//! request hangs on, a request's outcome), written with the record in the same transaction,
//! so a person's history or the pending requests read only the records they show.
//!
//! What it does not do: hold any other field, order results, or decide what a view shows
//! (the core's `views`). Like the person index, a cache of the records: rebuilt whole when
//! `LINKS_INDEX_VERSION` changes or the records are replaced at once (a resync).

use rusqlite::{params, Connection};

use tournee_core::model::{Field, Kind, Value};
use tournee_core::record::Record;
use tournee_core::store::StoreError;

use crate::codec::kind_code;
use crate::records::query_records;
use crate::sql_err;
use crate::sqlite::{meta_get, meta_set};

/// The fields indexed, for every kind that has them.
pub(crate) const LINKED_FIELDS: &[Field] = &[
    Field::Citizen,
    Field::Appointment,
    Field::Visit,
    Field::Passage,
    Field::Outcome,
];

/// The version of what the index holds; another is rebuilt on opening.
pub(crate) const LINKS_INDEX_VERSION: i64 = 1;

const META_LINKS_INDEX: &str = "links_index";

/// The value stored for `value`: an id's 16 bytes or a code's text.
fn key(value: &Value) -> Option<rusqlite::types::Value> {
    if let Some(id) = value.as_id() {
        return Some(rusqlite::types::Value::Blob(id.as_bytes().to_vec()));
    }
    value
        .as_text()
        .map(|t| rusqlite::types::Value::Text(t.to_owned()))
}

/// Rewrite `record`'s rows (a deleted record has none).
pub(crate) fn index(conn: &Connection, record: &Record) -> Result<(), StoreError> {
    forget(conn, record.id)?;
    if record.is_deleted() {
        return Ok(());
    }
    for field in LINKED_FIELDS {
        let Some(value) = record.value(*field).and_then(key) else {
            continue;
        };
        conn.prepare_cached("INSERT INTO links(field, value, kind, id) VALUES (?1, ?2, ?3, ?4)")
            .map_err(sql_err)?
            .execute(params![
                field.code(),
                value,
                kind_code(record.kind),
                record.id.as_bytes().as_slice()
            ])
            .map_err(sql_err)?;
    }
    Ok(())
}

/// Drop the rows of the record `id`.
pub(crate) fn forget(conn: &Connection, id: uuid::Uuid) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM links WHERE id = ?1")
        .map_err(sql_err)?
        .execute([id.as_bytes().as_slice()])
        .map_err(sql_err)?;
    Ok(())
}

/// Rebuild every row from the records, inside the caller's transaction.
pub(crate) fn rebuild(conn: &Connection) -> Result<(), StoreError> {
    conn.execute("DELETE FROM links", []).map_err(sql_err)?;
    let mut stmt = conn
        .prepare("SELECT id, kind, scope, state FROM records")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        index(conn, &crate::records::record_of_row(row)?)?;
    }
    meta_set(conn, META_LINKS_INDEX, LINKS_INDEX_VERSION)
}

/// Whether the index was built by this version.
pub(crate) fn is_current(conn: &Connection) -> Result<bool, StoreError> {
    Ok(meta_get::<i64>(conn, META_LINKS_INDEX)? == Some(LINKS_INDEX_VERSION))
}

/// Live records of `kind` whose `field` shows `value`, in id order; `None` when `field` is
/// not indexed (the caller reads the records instead).
pub(crate) fn records_where(
    conn: &Connection,
    kind: Kind,
    field: Field,
    value: &Value,
) -> Result<Option<Vec<Record>>, StoreError> {
    if !LINKED_FIELDS.contains(&field) {
        return Ok(None);
    }
    let Some(value) = key(value) else {
        return Ok(Some(Vec::new()));
    };
    let found = query_records(
        conn,
        "SELECT r.id, r.kind, r.scope, r.state FROM links l JOIN records r ON r.id = l.id
         WHERE l.field = ?1 AND l.value = ?2 AND l.kind = ?3 ORDER BY r.id",
        params![field.code(), value, kind_code(kind)],
    )?;
    Ok(Some(found))
}
