//! The person index: one row per live person (`PersonEntry`: folded name, commune and
//! address words, phone digits, merge target), written with the person's record in the same
//! transaction, so a search reads small rows of text instead of decoding every record.
//!
//! What it does not do: decide what matches (the core's `person::Query`) or rank results.
//! The rows are a cache of the records: rebuilt whole when `PERSON_INDEX_VERSION` changes
//! (a new folding rule or reference data naming communes differently) or when the records
//! are replaced at once (a resync).

use rusqlite::{params, Connection};
use uuid::Uuid;

use tournee_core::model::Kind;
use tournee_core::person::PersonEntry;
use tournee_core::record::Record;
use tournee_core::store::StoreError;

use crate::codec::kind_code;
use crate::records::query_records;
use crate::sql_err;
use crate::sqlite::{meta_get, meta_set};

/// The version of what an entry holds; a store whose index was built by another is rebuilt
/// on opening.
pub(crate) const PERSON_INDEX_VERSION: i64 = 1;

const META_PERSON_INDEX: &str = "person_index";

/// Write, rewrite or drop `record`'s entry (only persons have one; an erased person none).
pub(crate) fn index(conn: &Connection, record: &Record) -> Result<(), StoreError> {
    if record.kind != Kind::Citizen {
        return Ok(());
    }
    if record.is_deleted() {
        return forget(conn, record.id);
    }
    let e = PersonEntry::of(record);
    conn.prepare_cached(
        "INSERT INTO person_index(id, name, other, commune, phone, merged_into)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, other = excluded.other,
             commune = excluded.commune, phone = excluded.phone, merged_into = excluded.merged_into",
    )
    .map_err(sql_err)?
    .execute(params![
        e.id.as_bytes().as_slice(),
        e.name,
        e.other,
        e.commune,
        e.phone,
        e.merged_into.map(|m| m.as_bytes().to_vec()),
    ])
    .map_err(sql_err)?;
    Ok(())
}

/// Drop the entry of the record `id`, if it has one.
pub(crate) fn forget(conn: &Connection, id: Uuid) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM person_index WHERE id = ?1")
        .map_err(sql_err)?
        .execute([id.as_bytes().as_slice()])
        .map_err(sql_err)?;
    Ok(())
}

/// Rebuild every entry from the records, inside the caller's transaction.
pub(crate) fn rebuild(conn: &Connection) -> Result<(), StoreError> {
    conn.execute("DELETE FROM person_index", [])
        .map_err(sql_err)?;
    let persons = query_records(
        conn,
        "SELECT id, kind, scope, state FROM records WHERE kind = ?1",
        [kind_code(Kind::Citizen)],
    )?;
    for p in &persons {
        index(conn, p)?;
    }
    meta_set(conn, META_PERSON_INDEX, PERSON_INDEX_VERSION)
}

/// Whether the index was built by this version (`rebuild` otherwise).
pub(crate) fn is_current(conn: &Connection) -> Result<bool, StoreError> {
    Ok(meta_get::<i64>(conn, META_PERSON_INDEX)? == Some(PERSON_INDEX_VERSION))
}

/// Every entry, in id order.
pub(crate) fn entries(conn: &Connection) -> Result<Vec<PersonEntry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, name, other, commune, phone, merged_into FROM person_index ORDER BY id",
        )
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let uuid = |b: Vec<u8>| Uuid::from_slice(&b).map_err(|e| StoreError::corrupt("person id", e));
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(sql_err)? {
        out.push(PersonEntry {
            id: uuid(r.get(0).map_err(sql_err)?)?,
            name: r.get(1).map_err(sql_err)?,
            other: r.get(2).map_err(sql_err)?,
            commune: r.get(3).map_err(sql_err)?,
            phone: r.get(4).map_err(sql_err)?,
            merged_into: r
                .get::<_, Option<Vec<u8>>>(5)
                .map_err(sql_err)?
                .map(uuid)
                .transpose()?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;
    use tournee_core::actions::people::{add_person, set_person, NewPerson, PersonUpdate};
    use tournee_core::actions::visits::{add_visit, NewVisit, VisitPlace};
    use tournee_core::model::{Field, Location, Value};
    use tournee_core::store::{Identity, Store};

    const NOW: u64 = 1_790_000_000_000;

    fn entries_from_records(store: &SqliteStore) -> Vec<PersonEntry> {
        store
            .records_of_kind(Kind::Citizen)
            .expect("persons")
            .iter()
            .map(PersonEntry::of)
            .collect()
    }

    #[test]
    fn the_indexes_follow_edits_and_are_rebuilt_when_missing_or_outdated() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("agent.sqlite");
        let mut store = SqliteStore::open(&path).expect("open");
        store
            .set_identity(&Identity {
                device: 1,
                unit: "bus-80-1".into(),
                territory: "80".into(),
            })
            .expect("identity");
        let new = NewPerson {
            name: "Mme Lefèvre".into(),
            phone: Some("+33 6 12 34 56 78".into()),
            commune: Some("80021".into()),
            ..NewPerson::default()
        };
        let (id, action) = add_person(NOW, "bus-80-1", &new).expect("person");
        store.write_local(NOW, &action).expect("write");
        let rename = PersonUpdate {
            name: Some("Mme Lefèvre-Martin".into()),
            ..PersonUpdate::default()
        };
        let person = store.record(id).expect("read").expect("held");
        let action = set_person(NOW + 1, &person, &rename).expect("set");
        store.write_local(NOW + 1, &action).expect("write");
        let visit = NewVisit {
            place: VisitPlace::Commune {
                commune: "80021".into(),
                location: Location::Phone,
            },
            person: Some(id),
            at: 1_790_000_000,
        };
        let (visit, action) = add_visit(&store, NOW + 2, "bus-80-1", &visit).expect("visit");
        store.write_local(NOW + 2, &action).expect("write");
        let naming = |s: &SqliteStore| -> Vec<Uuid> {
            s.records_where(Kind::Visit, Field::Citizen, &Value::Id(id))
                .expect("links")
                .iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(naming(&store), vec![visit]);
        let entries = store.person_entries().expect("entries");
        assert_eq!(entries, entries_from_records(&store));
        assert_eq!(entries[0].name, "mme lefevre-martin");
        assert_eq!(entries[0].phone, "0612345678");
        assert!(entries[0].other.starts_with("amiens"), "{:?}", entries[0]);

        // A store written before the index (or by another folding) is indexed on opening.
        store
            .conn
            .execute_batch(
                "DELETE FROM person_index; DELETE FROM links;
                 DELETE FROM meta WHERE key IN ('person_index', 'links_index');",
            )
            .expect("forget");
        assert!(store.person_entries().expect("entries").is_empty());
        assert!(naming(&store).is_empty());
        drop(store);
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.person_entries().expect("entries"), entries);
        assert_eq!(naming(&store), vec![visit]);
        store
            .conn
            .execute_batch(
                "UPDATE meta SET value = 0 WHERE key = 'person_index'; DELETE FROM person_index;",
            )
            .expect("outdate");
        drop(store);
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.person_entries().expect("entries"), entries);
    }
}
