//! The server's reporting projection: one row of plain columns per record (kind, unit, day,
//! commune, statuses, codes, links), kept up to date in the same transaction as the record, so
//! coverage reports and scheduling look-ups are SQL over indexes instead of decoding blobs.
//!
//! A request carries its parent's day, commune and département (kept current when the parent is
//! projected), so coverage needs no joins. A stop changes commune only while nothing happened
//! there (`Queries::stop_history`), so no copy of its commune is ever stale. Holds no personal data (no names, phones or addresses; citizens appear as ids
//! only, for distinct counts). Only the server maintains it (through `Facts`, plugged into its store); laptops leave it empty.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use tournee_store::{sql_err, Durability, Projection, SqliteStore};

use tournee_core::model::{Field, Kind};
use tournee_core::record::Record;
use tournee_core::refdata::RefData;
use tournee_core::store::StoreError;
use tournee_core::time::{day_key, paris_date};

/// The projection as the server's store plugs it in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts;

impl Projection for Facts {
    fn project(&self, conn: &Connection, record: &Record) -> Result<(), StoreError> {
        project(conn, record)
    }
}

/// Open the server's store at `path` with the projection plugged in: how every server store is
/// opened (the `serve` daemon, the CLI, the benchmarks and the simulation alike).
pub fn open_server_store(path: &Path) -> Result<SqliteStore, StoreError> {
    open_server_store_with(path, Durability::Full)
}

/// `open_server_store` with an explicit durability (the power-cut harness).
pub fn open_server_store_with(
    path: &Path,
    durability: Durability,
) -> Result<SqliteStore, StoreError> {
    let mut store = SqliteStore::open_with(path, durability)?;
    store.set_projection(Arc::new(Facts));
    Ok(store)
}

/// A server store in memory with the projection (tests and simulations).
pub fn server_store_in_memory() -> Result<SqliteStore, StoreError> {
    let mut store = SqliteStore::open_in_memory()?;
    store.set_projection(Arc::new(Facts));
    Ok(store)
}

/// Stable integer code of a kind in the projection (its position in `Kind::ALL`).
pub fn kind_code(kind: Kind) -> i64 {
    Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .map_or(-1, |i| i as i64)
}

fn id_bytes(r: &Record, f: Field) -> Option<Vec<u8>> {
    r.id_ref(f).map(|u| u.as_bytes().to_vec())
}

/// A passage is "marked" once its unit recorded anything on it (held, cancelled, actual times):
/// regenerating the round's plan leaves it alone.
pub fn is_marked(record: &Record) -> bool {
    record.is_marked_passage()
}

/// Write (or rewrite) the projection row of `record`.
pub fn project(conn: &Connection, record: &Record) -> Result<(), StoreError> {
    let (unit, territory) = match &record.scope {
        tournee_core::model::Scope::Unit(u) => (Some(u.as_str()), None),
        tournee_core::model::Scope::Territory(t) => (None, Some(t.as_str())),
    };
    let parent = |sql: &str, id: Option<Vec<u8>>| -> Result<ParentPlace, StoreError> {
        let Some(id) = id else {
            return Ok((None, None, None));
        };
        Ok(conn
            .prepare_cached(sql)
            .map_err(sql_err)?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(sql_err)?
            .unwrap_or((None, None, None)))
    };
    // A request is reported on its appointment's (or passage's) day and commune, copied here so
    // coverage is an index range scan; the parent's projection keeps the copy current.
    let (day, commune, departement): ParentPlace = match record.kind {
        Kind::Request if record.id_ref(Field::Appointment).is_some() => {
            parent(APPOINTMENT_PLACE, id_bytes(record, Field::Appointment))?
        }
        Kind::Request if record.id_ref(Field::Visit).is_some() => {
            parent(APPOINTMENT_PLACE, id_bytes(record, Field::Visit))?
        }
        Kind::Request | Kind::Workshop => parent(PASSAGE_PLACE, id_bytes(record, Field::Passage))?,
        _ => {
            let day = match record.kind {
                Kind::Appointment | Kind::Visit => {
                    record.int(Field::Start).and_then(paris_date).map(day_key)
                }
                Kind::Passage => record
                    .text(Field::Date)
                    .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .map(day_key),
                _ => None,
            };
            let commune = record.text(Field::Commune).map(str::to_owned);
            let departement = commune
                .as_deref()
                .and_then(|c| RefData::get().commune(c))
                .map(|c| c.departement.clone());
            (day, commune, departement)
        }
    };
    let marked = is_marked(record);
    conn.prepare_cached(
        "INSERT OR REPLACE INTO facts(id, kind, unit, territory, day, commune, departement, location,
             status, cause, partner, theme, outcome, minutes, citizen, passage, appointment, stop,
             round, planned_start, planned_end, marked, deleted, visit, attendees, merged_into)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
             ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
    ).map_err(sql_err)?
    .execute(params![
        record.id.as_bytes().as_slice(),
        kind_code(record.kind),
        unit,
        territory,
        day,
        commune.as_deref(),
        departement.as_deref(),
        record.text(Field::Location),
        record.text(Field::Status),
        record.text(Field::Cause),
        record.text(Field::Partner),
        record.text(Field::Theme),
        record.text(Field::Outcome),
        record.int(Field::Duration),
        id_bytes(record, Field::Citizen),
        id_bytes(record, Field::Passage),
        id_bytes(record, Field::Appointment),
        id_bytes(record, Field::Stop),
        id_bytes(record, Field::Round),
        record.int(Field::PlannedStart),
        record.int(Field::PlannedEnd),
        i64::from(marked),
        i64::from(record.is_deleted()),
        id_bytes(record, Field::Visit),
        record.int(Field::Attendees),
        id_bytes(record, Field::MergedInto),
    ]).map_err(sql_err)?;
    match record.kind {
        Kind::Visit => copy_place_to_requests(conn, "visit", record, (day, commune, departement))?,
        Kind::Appointment => {
            copy_place_to_requests(conn, "appointment", record, (day, commune, departement))?
        }
        Kind::Passage => {
            let (d, c, dep) = parent(PASSAGE_PLACE, Some(record.id.as_bytes().to_vec()))?;
            conn.prepare_cached(
                "UPDATE facts SET day = ?1, commune = ?2, departement = ?3
                 WHERE passage = ?4 AND kind IN (?5, ?6) AND appointment IS NULL AND visit IS NULL",
            )
            .map_err(sql_err)?
            .execute(params![
                d,
                c,
                dep,
                record.id.as_bytes().as_slice(),
                kind_code(Kind::Request),
                kind_code(Kind::Workshop)
            ])
            .map_err(sql_err)?;
        }
        _ => {}
    }
    Ok(())
}

/// Copy a walk-in's or an appointment's day and place (`place`) to the requests made at it,
/// found by their `column` naming it.
fn copy_place_to_requests(
    conn: &Connection,
    column: &'static str,
    parent: &Record,
    place: ParentPlace,
) -> Result<(), StoreError> {
    let (day, commune, departement) = place;
    conn.prepare_cached(&format!(
        "UPDATE facts SET day = ?1, commune = ?2, departement = ?3 WHERE {column} = ?4 AND kind = ?5"
    ))
    .map_err(sql_err)?
    .execute(params![
        day,
        commune,
        departement,
        parent.id.as_bytes().as_slice(),
        kind_code(Kind::Request)
    ])
    .map_err(sql_err)?;
    Ok(())
}

/// Day, commune and département of a request's parent.
type ParentPlace = (Option<i64>, Option<String>, Option<String>);

const APPOINTMENT_PLACE: &str = "SELECT day, commune, departement FROM facts WHERE id = ?1";
const PASSAGE_PLACE: &str = "SELECT p.day, s.commune, s.departement FROM facts p
     LEFT JOIN facts s ON s.id = p.stop WHERE p.id = ?1";
