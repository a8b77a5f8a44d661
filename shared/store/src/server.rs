//! The server's side of `SqliteStore`: the `ServerStore` impl (accepting device batches, the
//! changelog in rows of `first..=last`, device acknowledgements and refusals).
//!
//! Authorization is the caller's (`ChangeCheck`); the laptop's outbox is in `local`.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use tournee_core::hlc::{Hlc, HlcGen};
use tournee_core::limits::{APPLY_FLIGHT_CHANGES_MAX, BATCH_CHANGES_MAX, CHANGELOG_ROW_BYTES_MAX};
use tournee_core::model::Scope;
use tournee_core::model::Value;
use tournee_core::record::{Change, Record};
use tournee_core::register::Actor;
use tournee_core::reject::{RejectReason, Rejection};
use tournee_core::store::{
    chain_next, Accepted, Chain, ChangeCheck, Referenced, ServerStore, StoreError, CHAIN_START,
};

use crate::codec::{decode, encode, kind_from_code};
use crate::records::{load_record, save_record};
use crate::sql_err;
use crate::sqlite::{
    i64_of, map_err, meta_set, meta_u64, SqliteStore, META_EPOCH, META_EPOCH_SELF, META_HLC,
};

/// Append changes applied in one transaction to the changelog: one row per scope (and per
/// `BATCH_CHANGES_MAX` changes), numbered on from the current head in the order given.
pub(crate) fn append_changelog<'a>(
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

/// Keep refusals of `device`'s changes until the device confirms it received them.
fn keep_rejections<'a>(
    conn: &Connection,
    device: Actor,
    rejected: impl IntoIterator<Item = &'a Rejection>,
) -> Result<(), StoreError> {
    for r in rejected {
        conn.prepare_cached(
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
    Ok(())
}

/// Record that the server applied `device`'s changes up to `acked`, whose history has `chain`.
fn set_device_acked(
    conn: &Connection,
    device: Actor,
    acked: u64,
    chain: Option<Chain>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO device_acks(device, acked, chain) VALUES (?1, ?2, ?3)
         ON CONFLICT(device) DO UPDATE SET acked = excluded.acked, chain = excluded.chain",
    )
    .map_err(sql_err)?
    .execute(params![
        i64::from(device),
        i64_of(acked),
        chain.map(|c| c.to_vec())
    ])
    .map_err(sql_err)?;
    Ok(())
}

/// The chain of `device`'s acknowledged history: the empty one before its first batch, `None`
/// when acknowledged before chains were kept.
fn device_chain_in(conn: &Connection, device: Actor) -> Result<Option<Chain>, StoreError> {
    let v: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT chain FROM device_acks WHERE device = ?1")
        .map_err(sql_err)?
        .query_row([i64::from(device)], |r| r.get(0))
        .optional()
        .map_err(sql_err)?;
    match v {
        None => Ok(Some(CHAIN_START)),
        Some(None) => Ok(None),
        Some(Some(bytes)) => crate::heal::chain_of(&bytes).map(Some),
    }
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
            return Err(StoreError::corrupt(
                "changelog row",
                format!(
                    "{} bytes exceeds {CHANGELOG_ROW_BYTES_MAX}",
                    self.changes.len()
                ),
            ));
        }
        let changes: Vec<Change> = postcard::from_bytes(&self.changes)
            .map_err(|e| StoreError::corrupt("changelog row", e))?;
        if changes.len() as u64 != self.last - self.first + 1 {
            return Err(StoreError::corrupt(
                "changelog row",
                format!(
                    "{} changes numbered {}..={}",
                    changes.len(),
                    self.first,
                    self.last
                ),
            ));
        }
        Ok(changes)
    }
}

/// The record a reference names, if the server holds it.
fn referenced_by(
    conn: &Connection,
    touched: &HashMap<Uuid, Option<Record>>,
    change: &Change,
) -> Result<Option<Referenced>, StoreError> {
    match &change.write.value {
        Value::Id(target) => referenced_in(conn, touched, *target),
        _ => Ok(None),
    }
}

/// Count `change`'s verdict in `out`: taken if it changed the record (pushed on `taken`), a
/// duplicate if it did not, or refused with its reason.
fn tally<'c>(
    out: &mut Accepted,
    taken: &mut Vec<&'c Change>,
    seq: u64,
    change: &'c Change,
    verdict: Result<bool, RejectReason>,
) {
    match verdict {
        Ok(true) => {
            taken.push(change);
            out.applied += 1;
        }
        Ok(false) => out.duplicates += 1,
        Err(reason) => out.rejected.push(Rejection { seq, reason }),
    }
}

/// Take a run of a device's changes of a record the server holds (in `touched`), each checked
/// alone. Returns those that changed the record.
fn accept_edits<'c>(
    conn: &Connection,
    touched: &mut HashMap<Uuid, Option<Record>>,
    run: &[(u64, &'c Change)],
    check: &mut ChangeCheck<'_>,
    out: &mut Accepted,
) -> Result<Vec<&'c Change>, StoreError> {
    let mut taken = Vec::new();
    for &(seq, change) in run {
        let referenced = referenced_by(conn, touched, change)?;
        let Some(Some(record)) = touched.get_mut(&change.record) else {
            return Err(StoreError::corrupt(
                "flight",
                "an edit of a record not loaded",
            ));
        };
        let verdict = check(change, Some(record), referenced.as_ref()).and_then(|()| {
            record
                .apply_change(change.clone())
                .map_err(|e| RejectReason::invalid(e.to_string()))
        });
        tally(out, &mut taken, seq, change, verdict);
    }
    Ok(taken)
}

/// Take a run of a device's changes of a record the server does not hold: those that pass
/// their check, if together they set every field the kind is created with; else none (the
/// failing ones with their reason, the others as an unknown record), so the server never
/// holds a partial record. Returns those taken.
fn accept_creation<'c>(
    conn: &Connection,
    touched: &mut HashMap<Uuid, Option<Record>>,
    run: &[(u64, &'c Change)],
    check: &mut ChangeCheck<'_>,
    out: &mut Accepted,
) -> Result<Vec<&'c Change>, StoreError> {
    let Some(&(_, head)) = run.first() else {
        return Ok(Vec::new());
    };
    let mut partial: Option<Record> = None;
    let mut verdicts: Vec<(u64, &'c Change, Result<bool, RejectReason>)> = Vec::new();
    for &(seq, change) in run {
        let referenced = referenced_by(conn, touched, change)?;
        if let Err(reason) = check(change, partial.as_ref(), referenced.as_ref()) {
            verdicts.push((seq, change, Err(reason)));
            continue;
        }
        let record = match &mut partial {
            Some(r) => r,
            None => partial.insert(Record::for_change(change)?),
        };
        let verdict = record
            .apply_change(change.clone())
            .map_err(|e| RejectReason::invalid(e.to_string()));
        verdicts.push((seq, change, verdict));
    }
    // Changes refused alone (a later edit in the same run, a field's bad value) keep their
    // reason; the record exists only if what was taken sets every field it is created with.
    let whole = partial.as_ref().is_some_and(|r| r.kind.is_whole(r));
    if !whole {
        let unknown = RejectReason::UnknownRecord {
            kind: head.kind.code().to_owned(),
            id: head.record.to_string(),
        };
        for (seq, _, verdict) in verdicts {
            out.rejected.push(Rejection {
                seq,
                reason: verdict.err().unwrap_or_else(|| unknown.clone()),
            });
        }
        return Ok(Vec::new());
    }
    let mut taken = Vec::new();
    for (seq, change, verdict) in verdicts {
        tally(out, &mut taken, seq, change, verdict);
    }
    touched.insert(head.record, partial);
    Ok(taken)
}

/// What the server holds of the record `id` a change refers to: the flight's own copy when
/// the flight touched it (possibly created earlier in it), else the stored row's kind and scope.
/// `None` when the server has no such record yet.
fn referenced_in(
    conn: &Connection,
    touched: &HashMap<Uuid, Option<Record>>,
    id: Uuid,
) -> Result<Option<Referenced>, StoreError> {
    if let Some(held) = touched.get(&id) {
        return Ok(held.as_ref().map(|r| Referenced {
            id,
            kind: r.kind,
            scope: r.scope.clone(),
        }));
    }
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT kind, scope FROM records WHERE id = ?1")
        .map_err(sql_err)?
        .query_row([id.as_bytes().as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(sql_err)?;
    row.map(|(kind, scope)| {
        let scope = Scope::from_key(&scope)
            .ok_or_else(|| StoreError::corrupt("record scope", scope.clone()))?;
        Ok(Referenced {
            id,
            kind: kind_from_code(kind)?,
            scope,
        })
    })
    .transpose()
}

impl SqliteStore {
    /// A new random epoch, and whether the server chose it itself (`renew_epoch_once`), in one
    /// transaction. The random bits of a v7 UUID, kept positive (meta values are i64) and never
    /// 0 (the epoch of a store that was never restored).
    fn write_new_epoch(&mut self, by_itself: bool) -> Result<u64, StoreError> {
        let (_, low) = Uuid::now_v7().as_u64_pair();
        let epoch = (low & i64::MAX as u64).max(1);
        let path = self.path.clone();
        let tx = self.begin()?;
        meta_set(&tx, META_EPOCH, i64_of(epoch))?;
        meta_set(&tx, META_EPOCH_SELF, i64::from(by_itself))?;
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(epoch)
    }
}

impl ServerStore for SqliteStore {
    fn device_acked(&self, device: Actor) -> Result<u64, StoreError> {
        device_acked_in(&self.conn, device)
    }

    fn device_chain(&self, device: Actor) -> Result<Option<Chain>, StoreError> {
        device_chain_in(&self.conn, device)
    }

    fn adopt_device_chain(
        &mut self,
        device: Actor,
        acked: u64,
        chain: Chain,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE device_acks SET chain = ?3 WHERE device = ?1 AND acked = ?2 AND chain IS NULL",
            )
            .map_err(sql_err)?
            .execute(params![i64::from(device), i64_of(acked), chain.to_vec()])
            .map_err(sql_err)?;
        Ok(())
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
        let mut chain = device_chain_in(&tx, device)?;
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
            let mut i = 0;
            while i < changes.len() {
                let run_len = changes[i..]
                    .iter()
                    .take_while(|c| c.record == changes[i].record)
                    .count();
                // This run's changes the server has not seen yet, with their seqs.
                let run: Vec<(u64, &Change)> = (i..i + run_len)
                    .map(|j| (first_seq + j as u64, &changes[j]))
                    .filter(|(seq, _)| *seq > prev)
                    .collect();
                out.duplicates += run_len - run.len();
                i += run_len;
                for (seq, change) in &run {
                    out.acked = *seq;
                    chain = chain.map(|c| chain_next(&c, change));
                }
                let Some(&(_, head)) = run.first() else {
                    continue;
                };
                let held = match touched.entry(head.record) {
                    std::collections::hash_map::Entry::Occupied(e) => e.get().is_some(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(load_record(&tx, head.record)?).is_some()
                    }
                };
                let taken = if held {
                    accept_edits(&tx, &mut touched, &run, check, &mut out)?
                } else {
                    accept_creation(&tx, &mut touched, &run, check, &mut out)?
                };
                for change in taken {
                    logged.push(change);
                    hlc.observe(change.write.hlc);
                    if !dirty.contains(&change.record) {
                        dirty.push(change.record);
                    }
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
        keep_rejections(&tx, device, results.iter().flat_map(|a| &a.rejected))?;
        if prev > acked_before {
            set_device_acked(&tx, device, prev, chain)?;
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
                    return Err(StoreError::corrupt(
                        "changelog row",
                        format!("numbered {}..={}", row.first, row.last),
                    ));
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

    fn epoch(&self) -> Result<u64, StoreError> {
        meta_u64(&self.conn, META_EPOCH)
    }

    fn renew_epoch(&mut self) -> Result<u64, StoreError> {
        self.write_new_epoch(false)
    }

    fn renew_epoch_once(&mut self) -> Result<u64, StoreError> {
        if meta_u64(&self.conn, META_EPOCH_SELF)? != 0 {
            return self.epoch();
        }
        self.write_new_epoch(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::MIGRATIONS;
    use crate::sqlite::Durability;
    use tournee_core::clock::WallMs;
    use tournee_core::model::Value;
    use tournee_core::model::{Field, Kind};
    use tournee_core::store::RecordEdit;
    use tournee_core::store::{Identity, LocalAction, Store};

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
