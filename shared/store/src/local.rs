//! The laptop's side of `SqliteStore`: the `Store` impl (records, outbox, cursor,
//! acknowledgements, the rejected list). The server uses `write_local` too (as actor 0, into
//! its changelog instead of an outbox).
//!
//! The server's changelog and device bookkeeping are in `server`.

use std::collections::HashMap;

use chrono::NaiveDate;
use rusqlite::{params, Connection};
use uuid::Uuid;

use tournee_core::clock::WallMs;
use tournee_core::hlc::{Hlc, HlcGen};
use tournee_core::limits::{
    APPLY_BATCH_CHANGES_MAX, HLC_FUTURE_DRIFT_MAX_MS, LOCAL_ACTION_CHANGES_MAX,
    SCHEDULER_ACTION_CHANGES_MAX,
};
use tournee_core::model::{
    check_status_forward, check_value, Field, Kind, Scope, ValidationCtx, Value,
};
use tournee_core::person::PersonEntry;
use tournee_core::record::{check_scope, Change, Record, RecordError};
use tournee_core::register::Actor;
use tournee_core::reject::Rejection;
use tournee_core::store::{
    ApplySummary, Chain, Identity, LocalAction, Rebase, RecordEdit, RejectedChange, Store,
    StoreError, StoreStats,
};
use tournee_core::time::day_key;

use crate::codec::{decode, encode, kind_code, seq_changes};
use crate::records::{
    load_record, load_record_in, query_records, record_of_row, save_record, save_record_in, Table,
};
use crate::server::append_changelog;
use crate::sql_err;
use crate::sqlite::{
    i64_of, map_err, meta_get, meta_set, meta_u64, SqliteStore, META_ACKED_SEQ, META_CLOCK_OFFSET,
    META_CURSOR, META_DEVICE, META_DEVICE_NAMES, META_HLC, META_LAST_SEQ, META_LAST_SYNC,
    META_SERVER_EPOCH, META_TERRITORY, META_UNIT,
};

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
        let count = check_action(action, server, now)?;
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
            let mut record = edit_target(load_record(&tx, edit.id)?, edit)?;
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
                    append_outbox(&tx, seq, &change)?;
                }
                changes.push(change);
            }
            save_record(&tx, &record, projection.as_deref())?;
        }
        if server {
            append_changelog(&tx, me, &changes)?;
        }
        meta_set(&tx, META_HLC, i64_of(hlc.last().0))?;
        meta_set(&tx, META_LAST_SEQ, i64_of(seq))?;
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
        let laptop = self.identity.clone().filter(|_| !server);
        let projection = self.projection.clone().filter(|_| server);
        let path = self.path.clone();
        let tx = self.begin()?;
        let table = crate::resync::download_table(&tx)?;
        let mut hlc = HlcGen::new(Hlc(meta_u64(&tx, META_HLC)?));
        let mut touched: HashMap<Uuid, (Record, bool)> = HashMap::new();
        let mut order: Vec<Uuid> = Vec::new();
        let mut summary = ApplySummary::default();
        for change in changes {
            check_value(change.kind, change.field, &change.write.value, None)?;
            let (record, dirty) = match touched.entry(change.record) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let record = match load_record_in(&tx, table, change.record)? {
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
                match table {
                    Table::Records => save_record(&tx, record, projection.as_deref())?,
                    Table::Resync => save_record_in(&tx, table, record)?,
                }
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
        if let Some(me) = laptop {
            // The server holds these records (it never sends a partial one): what it refused
            // earlier for not holding them goes again (another laptop's creation, re-sent
            // after a server restore, came after our edit of it).
            let unknown = crate::requeue::unknown_record_rows(&tx)?;
            if !unknown.is_empty() {
                let held = changes.iter().map(|c| c.record).collect();
                crate::requeue::reissue_built_on(&tx, me.device, held, unknown)?;
            }
        }
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(summary)
    }

    fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Change)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, change FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(sql_err)?;
        seq_changes(
            &mut stmt,
            params![
                i64::try_from(after).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            "outbox change",
        )
    }

    fn records_on(&self, kind: Kind, day: NaiveDate) -> Result<Vec<Record>, StoreError> {
        let recs = query_records(
            &self.conn,
            "SELECT id, kind, scope, state FROM records WHERE kind = ?1 AND day = ?2",
            params![kind_code(kind), day_key(day)],
        )?;
        Ok(recs.into_iter().filter(|r| !r.is_deleted()).collect())
    }

    fn records_between(
        &self,
        kind: Kind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Record>, StoreError> {
        let recs = query_records(
            &self.conn,
            "SELECT id, kind, scope, state FROM records WHERE kind = ?1 AND day BETWEEN ?2 AND ?3
             ORDER BY day, id",
            params![kind_code(kind), day_key(from), day_key(to)],
        )?;
        Ok(recs.into_iter().filter(|r| !r.is_deleted()).collect())
    }

    fn records_of_kind(&self, kind: Kind) -> Result<Vec<Record>, StoreError> {
        let recs = query_records(
            &self.conn,
            "SELECT id, kind, scope, state FROM records WHERE kind = ?1 ORDER BY id",
            params![kind_code(kind)],
        )?;
        Ok(recs.into_iter().filter(|r| !r.is_deleted()).collect())
    }

    fn person_entries(&self) -> Result<Vec<PersonEntry>, StoreError> {
        crate::persons::entries(&self.conn)
    }

    fn records_where(
        &self,
        kind: Kind,
        field: Field,
        value: &Value,
    ) -> Result<Vec<Record>, StoreError> {
        match crate::links::records_where(&self.conn, kind, field, value)? {
            Some(found) => Ok(found),
            None => tournee_core::store::scan_where(self.records_of_kind(kind)?, field, value),
        }
    }

    fn ids_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Uuid>, StoreError> {
        let Some((low, high)) = crate::records::prefix_range(prefix) else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id FROM records WHERE id >= ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id LIMIT ?3",
            )
            .map_err(sql_err)?;
        let rows = stmt
            .query_map(
                params![low, high, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .map_err(sql_err)?;
        let mut out = Vec::new();
        for bytes in rows {
            let bytes = bytes.map_err(sql_err)?;
            let id = Uuid::from_slice(&bytes).map_err(|e| StoreError::corrupt("record id", e))?;
            out.push(id);
        }
        Ok(out)
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
        let me = self.require_identity()?.device;
        let path = self.path.clone();
        let tx = self.begin()?;
        let prev = meta_u64(&tx, META_ACKED_SEQ)?;
        let last = meta_u64(&tx, META_LAST_SEQ)?;
        let acked = acked.min(last);
        if acked > prev {
            for r in rejected.iter().filter(|r| r.seq > prev && r.seq <= acked) {
                // Kept under the change's seq unless a refusal from before a rebase holds that
                // number (seqs go on from the server's after one): then after the highest.
                tx.prepare_cached(
                    "INSERT INTO rejected(seq, reason, change)
                     SELECT CASE WHEN EXISTS (SELECT 1 FROM rejected WHERE seq = ?1)
                                 THEN (SELECT max(seq) + 1 FROM rejected) ELSE ?1 END,
                            ?2, change
                     FROM outbox WHERE seq = ?1",
                )
                .map_err(sql_err)?
                .execute(params![i64_of(r.seq), r.reason.to_string()])
                .map_err(sql_err)?;
            }
            // Records the server took in this Ack: refusals for not holding one go again.
            let unknown = crate::requeue::unknown_record_rows(&tx)?;
            let taken: std::collections::HashSet<Uuid> = if unknown.is_empty() {
                std::collections::HashSet::new()
            } else {
                let refused: std::collections::HashSet<u64> =
                    rejected.iter().map(|r| r.seq).collect();
                let mut stmt = tx
                    .prepare_cached("SELECT seq, change FROM outbox WHERE seq > ?1 AND seq <= ?2")
                    .map_err(sql_err)?;
                seq_changes(
                    &mut stmt,
                    params![i64_of(prev), i64_of(acked)],
                    "outbox change",
                )?
                .into_iter()
                .filter(|(seq, _)| !refused.contains(seq))
                .map(|(_, c)| c.record)
                .collect()
            };
            crate::heal::fold_acked(&tx, prev, acked)?;
            tx.prepare_cached("DELETE FROM outbox WHERE seq <= ?1")
                .map_err(sql_err)?
                .execute([i64_of(acked)])
                .map_err(sql_err)?;
            meta_set(&tx, META_ACKED_SEQ, i64_of(acked))?;
            crate::requeue::reissue_built_on(&tx, me, taken, unknown)?;
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

    fn set_device_names(&mut self, names: &[(Actor, String)]) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(names).map_err(|e| StoreError::Backend {
            source: Box::new(e),
        })?;
        meta_set(&self.conn, META_DEVICE_NAMES, bytes)
    }

    fn device_names(&self) -> Result<Vec<(Actor, String)>, StoreError> {
        // Display only: names that do not decode are as good as none.
        let bytes: Option<Vec<u8>> = meta_get(&self.conn, META_DEVICE_NAMES)?;
        Ok(bytes
            .and_then(|b| postcard::from_bytes(&b).ok())
            .unwrap_or_default())
    }

    fn server_epoch(&self) -> Result<u64, StoreError> {
        meta_u64(&self.conn, META_SERVER_EPOCH)
    }

    fn adopt_server_epoch(&mut self, epoch: u64) -> Result<(), StoreError> {
        self.resync_adopt(epoch)
    }

    fn resync_pending(&self) -> Result<bool, StoreError> {
        self.resync_pending_in()
    }

    fn finish_resync(&mut self) -> Result<bool, StoreError> {
        self.resync_finish()
    }

    fn last_sync(&self) -> Result<Option<(WallMs, i64)>, StoreError> {
        let at: Option<i64> = meta_get(&self.conn, META_LAST_SYNC)?;
        let offset: Option<i64> = meta_get(&self.conn, META_CLOCK_OFFSET)?;
        Ok(at.map(|a| (u64::try_from(a).unwrap_or(0), offset.unwrap_or(0))))
    }

    fn chain_acked(&self) -> Result<(u64, Chain), StoreError> {
        self.heal_chain_acked()
    }

    fn rebase(&mut self, acked: u64, chain: Chain, why: Rebase) -> Result<(), StoreError> {
        self.heal_rebase(acked, chain, why)
    }

    fn rebase_pending(&self) -> Result<bool, StoreError> {
        self.heal_pending()
    }

    fn finish_rebase(&mut self, now: WallMs) -> Result<usize, StoreError> {
        self.heal_finish(now)
    }

    fn requeue_clock_ahead(&mut self, now: WallMs) -> Result<usize, StoreError> {
        self.requeue_clock_ahead_tx(now)
    }

    fn undo_rejected(&mut self, seqs: Option<&[u64]>) -> Result<usize, StoreError> {
        self.undo_rejected_tx(seqs)
    }

    fn reenrol(&mut self, now: WallMs, identity: &Identity) -> Result<usize, StoreError> {
        self.reenrol_tx(now, identity)
    }

    fn rejected(&self) -> Result<Vec<RejectedChange>, StoreError> {
        rejected_in(&self.conn)
    }
}

/// The rejected list read through `conn` (a transaction too), by seq.
pub(crate) fn rejected_in(conn: &Connection) -> Result<Vec<RejectedChange>, StoreError> {
    let mut stmt = conn
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

/// Check a local action before any write: its size against the limit of the writer (the
/// scheduler writes more at once than a laptop), every edit's scope and every value. Returns
/// the number of changes it will write.
fn check_action(action: &LocalAction, server: bool, now: WallMs) -> Result<usize, StoreError> {
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
    Ok(count)
}

/// The record `edit` writes to: the stored one (`existing`), or a new one when the edit
/// creates it. Refuses creating what exists and editing what does not, or what has another
/// kind or scope than the edit names.
fn edit_target(existing: Option<Record>, edit: &RecordEdit) -> Result<Record, StoreError> {
    match existing {
        Some(r) if edit.create => Err(StoreError::Exists {
            kind: r.kind,
            id: r.id,
        }),
        // The values were validated against the edit's kind and scope, but the changes carry
        // the stored record's: an edit that misnames them would write values the record's kind
        // does not allow, which every peer then refuses.
        Some(r) if r.kind != edit.kind => Err(StoreError::NotFound {
            kind: edit.kind,
            id: edit.id,
        }),
        Some(r) if r.scope != edit.scope => Err(RecordError::Mismatch {
            id: r.id,
            have_kind: r.kind,
            have_scope: r.scope.key(),
            got_kind: edit.kind,
            got_scope: edit.scope.key(),
        }
        .into()),
        Some(r) => Ok(r),
        None if edit.create => Ok(Record::new(edit.id, edit.kind, edit.scope.clone())),
        None => Err(StoreError::NotFound {
            kind: edit.kind,
            id: edit.id,
        }),
    }
}

/// Append one local change to the outbox under `seq`.
pub(crate) fn append_outbox(tx: &Connection, seq: u64, change: &Change) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO outbox(seq, change) VALUES (?1, ?2)")
        .map_err(sql_err)?
        .execute(params![i64_of(seq), encode("change", change)?])
        .map_err(sql_err)?;
    Ok(())
}
