//! Writing refused or stranded local changes again: the clock-ahead refusals once the clock
//! offset is known, every queued change under a new identity (re-enrolment), and undoing a
//! refusal locally so the laptop's state can match the server's again.
//!
//! A change is written again as a *new* write of the same value by this replica's actor: its
//! dot is fresh and its context covers the refused (or old-identity) dot, so it replaces that
//! value on every replica, including a server that did take the old write while its Ack was
//! lost. Nothing here talks to the network or reads the clock (`now` is passed in); deciding
//! *when* to re-issue is the session's job.

use rusqlite::{params, Connection, Transaction};

use tournee_core::clock::WallMs;
use tournee_core::hlc::{Hlc, HlcGen};
use tournee_core::record::Change;
use tournee_core::register::Actor;
use tournee_core::reject::RejectReason;
use tournee_core::store::{Identity, StoreError};

use std::collections::HashSet;

use uuid::Uuid;

use crate::codec::seq_changes;
use crate::local::{append_outbox, rejected_in};
use crate::records::{by_record, load_record, save_record};
use crate::sql_err;
use crate::sqlite::{
    i64_of, map_err, meta_get, meta_set, meta_u64, SqliteStore, META_ACKED_SEQ, META_CLOCK_OFFSET,
    META_CURSOR, META_DEVICE, META_HLC, META_LAST_SEQ, META_LAST_SYNC, META_TERRITORY, META_UNIT,
};

/// The start of the stored text of a refusal like `reason`. The rejected list keeps reasons
/// as their text (`RejectReason`'s `Display`), so the kind is read back from that text's head.
fn reason_prefix(reason: &RejectReason) -> String {
    let text = reason.to_string();
    match text.split_once(':') {
        Some((head, _)) => format!("{head}:"),
        None => text,
    }
}

/// The start of the stored reason of a clock-ahead refusal.
pub(crate) fn clock_ahead_prefix() -> String {
    reason_prefix(&RejectReason::ClockAhead { ahead_ms: 0 })
}

/// The start of the stored reason of a refusal for a record the server does not hold.
pub(crate) fn unknown_record_prefix() -> String {
    reason_prefix(&RejectReason::UnknownRecord {
        kind: String::new(),
        id: String::new(),
    })
}

/// Rejected-list rows `(seq, change)` whose reason starts with `prefix` (all with `None`).
pub(crate) fn rejected_rows(
    tx: &Transaction<'_>,
    prefix: Option<&str>,
) -> Result<Vec<(u64, Change)>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT seq, change FROM rejected
             WHERE ?1 IS NULL OR substr(reason, 1, length(?1)) = ?1 ORDER BY seq",
        )
        .map_err(sql_err)?;
    seq_changes(&mut stmt, params![prefix], "rejected change")
}

/// Rejected-list rows refused for a record the server did not hold, with that record (named
/// in the reason's text; the change's own record if the text names none).
pub(crate) fn unknown_record_rows(
    conn: &Connection,
) -> Result<Vec<(u64, Change, Uuid)>, StoreError> {
    let prefix = unknown_record_prefix();
    Ok(rejected_in(conn)?
        .into_iter()
        .filter(|r| r.reason.starts_with(&prefix))
        .map(|r| {
            let named = r
                .reason
                .split_whitespace()
                .find_map(|w| Uuid::parse_str(w).ok())
                .unwrap_or(r.change.record);
            (r.seq, r.change, named)
        })
        .collect())
}

/// Of `unknown` (changes refused for a record the server did not hold, with that record),
/// those whose record is one of `records`, which the server holds now or which goes again,
/// directly or through one another: an edit of such a record, a request naming it. They go
/// again after it; the others (a record lost with a restored server) stay refused.
fn built_on(mut records: HashSet<Uuid>, unknown: Vec<(u64, Change, Uuid)>) -> Vec<(u64, Change)> {
    let (mut taken, mut left): (Vec<_>, Vec<_>) = (Vec::new(), unknown);
    loop {
        let (now, rest): (Vec<_>, Vec<_>) = left
            .into_iter()
            .partition(|(_, _, named)| records.contains(named));
        if now.is_empty() {
            return taken;
        }
        records.extend(now.iter().map(|(_, c, _)| c.record));
        taken.extend(now.into_iter().map(|(seq, c, _)| (seq, c)));
        left = rest;
    }
}

/// Every outbox row `(seq, change)`, in order.
pub(crate) fn outbox_rows(tx: &Transaction<'_>) -> Result<Vec<(u64, Change)>, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT seq, change FROM outbox ORDER BY seq")
        .map_err(sql_err)?;
    seq_changes(&mut stmt, [], "outbox change")
}

/// Where re-issued writes go: the actor writing, the HLC generator, the last `seq` used.
struct Reissue {
    me: Actor,
    stamp_now: WallMs,
    hlc: HlcGen,
    seq: u64,
}

impl Reissue {
    /// Write `old`'s value again if the record still shows `old`'s write; if a later write of
    /// this laptop replaced it (not yet taken either, or the record's creation would go
    /// without that field), the value shown. Returns whether it wrote.
    fn one(&mut self, tx: &Transaction<'_>, old: &Change) -> Result<bool, StoreError> {
        let Some(mut record) = load_record(tx, old.record)? else {
            return Ok(false);
        };
        let Some(reg) = record.fields.get(&old.field) else {
            return Ok(false);
        };
        let value = if reg.siblings().iter().any(|s| s.dot == old.write.dot) {
            old.write.value.clone()
        } else if reg.siblings().iter().all(|s| s.dot.actor == self.me) {
            match reg.value() {
                Some(v) => v.clone(),
                None => return Ok(false),
            }
        } else {
            return Ok(false);
        };
        let write = reg.prepare(self.me, self.hlc.tick(self.stamp_now), value);
        let change = Change {
            record: record.id,
            kind: record.kind,
            scope: record.scope.clone(),
            field: old.field,
            write,
        };
        record.apply_change(change.clone())?;
        self.seq += 1;
        append_outbox(tx, self.seq, &change)?;
        save_record(tx, &record, None)?;
        Ok(true)
    }

    /// Write each of `olds` (ascending seqs) again, record by record (`by_record`). Returns
    /// how many were.
    fn all(&mut self, tx: &Transaction<'_>, olds: &[(u64, Change)]) -> Result<usize, StoreError> {
        let mut n = 0;
        for i in by_record(olds.iter().map(|(_, c)| c)) {
            n += usize::from(self.one(tx, &olds[i].1)?);
        }
        Ok(n)
    }
}

/// Server time now, by the stored clock offset, if one is known.
fn server_now(tx: &Transaction<'_>, now: WallMs) -> Result<Option<WallMs>, StoreError> {
    let synced: Option<i64> = meta_get(tx, META_LAST_SYNC)?;
    let offset: Option<i64> = meta_get(tx, META_CLOCK_OFFSET)?;
    Ok(match (synced, offset) {
        (Some(_), Some(off)) => Some(now.saturating_add_signed(off)),
        _ => None,
    })
}

fn delete_rejected(tx: &Transaction<'_>, seq: u64) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM rejected WHERE seq = ?1")
        .map_err(sql_err)?
        .execute([i64_of(seq)])
        .map_err(sql_err)?;
    Ok(())
}

/// The server holds the records `taken` (an Ack took a change of them, or it sent them): of
/// `unknown` (`unknown_record_rows`), the changes it refused earlier for not holding one of
/// them (an edit, a request naming it, and what builds on those) are written again now, in
/// `tx`, stamped after the last HLC; returns how many. The refusal came before the record's
/// creation reached the server (queued ahead of it, the creation re-sent after a clock-ahead
/// refusal, another laptop's creation re-sent after a server restore).
pub(crate) fn reissue_built_on(
    tx: &Transaction<'_>,
    me: Actor,
    taken: HashSet<Uuid>,
    unknown: Vec<(u64, Change, Uuid)>,
) -> Result<usize, StoreError> {
    if taken.is_empty() || unknown.is_empty() {
        return Ok(0);
    }
    let again = built_on(taken, unknown);
    if again.is_empty() {
        return Ok(0);
    }
    let hlc = Hlc(meta_u64(tx, META_HLC)?);
    let mut re = Reissue {
        me,
        stamp_now: hlc.wall_ms(),
        hlc: HlcGen::new(hlc),
        seq: meta_u64(tx, META_LAST_SEQ)?,
    };
    let n = re.all(tx, &again)?;
    for (seq, _) in &again {
        delete_rejected(tx, *seq)?;
    }
    meta_set(tx, META_HLC, i64_of(re.hlc.last().0))?;
    meta_set(tx, META_LAST_SEQ, i64_of(re.seq))?;
    Ok(n)
}

impl SqliteStore {
    /// `Store::requeue_clock_ahead`.
    pub(crate) fn requeue_clock_ahead_tx(&mut self, now: WallMs) -> Result<usize, StoreError> {
        let me = self.require_identity()?.device;
        let path = self.path.clone();
        let tx = self.begin()?;
        let Some(stamp_now) = server_now(&tx, now)? else {
            return Ok(0);
        };
        let mut refused = rejected_rows(&tx, Some(&clock_ahead_prefix()))?;
        if refused.is_empty() {
            return Ok(0);
        }
        refused.extend(built_on(
            refused.iter().map(|(_, c)| c.record).collect(),
            unknown_record_rows(&tx)?,
        ));
        refused.sort_by_key(|(seq, _)| *seq);
        let mut re = Reissue {
            me,
            stamp_now,
            hlc: HlcGen::new(Hlc(meta_u64(&tx, META_HLC)?)),
            seq: meta_u64(&tx, META_LAST_SEQ)?,
        };
        let n = re.all(&tx, &refused)?;
        for (seq, _) in &refused {
            delete_rejected(&tx, *seq)?;
        }
        meta_set(&tx, META_HLC, i64_of(re.hlc.last().0))?;
        meta_set(&tx, META_LAST_SEQ, i64_of(re.seq))?;
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(n)
    }

    /// `Store::undo_rejected`.
    pub(crate) fn undo_rejected_tx(&mut self, seqs: Option<&[u64]>) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let tx = self.begin()?;
        let pending = meta_u64(&tx, META_LAST_SEQ)?.saturating_sub(meta_u64(&tx, META_ACKED_SEQ)?);
        if pending > 0 {
            return Err(StoreError::Pending { count: pending });
        }
        let chosen: Vec<(u64, Change)> = rejected_rows(&tx, None)?
            .into_iter()
            .filter(|(seq, _)| seqs.is_none_or(|s| s.contains(seq)))
            .collect();
        for (seq, old) in &chosen {
            if let Some(mut record) = load_record(&tx, old.record)? {
                let shown = record
                    .fields
                    .get(&old.field)
                    .is_some_and(|reg| reg.siblings().iter().any(|s| s.dot == old.write.dot));
                if shown {
                    record.fields.remove(&old.field);
                    if record.fields.is_empty() {
                        tx.prepare_cached("DELETE FROM records WHERE id = ?1")
                            .map_err(sql_err)?
                            .execute([record.id.as_bytes().as_slice()])
                            .map_err(sql_err)?;
                        crate::persons::forget(&tx, record.id)?;
                        crate::links::forget(&tx, record.id)?;
                    } else {
                        save_record(&tx, &record, None)?;
                    }
                }
            }
            delete_rejected(&tx, *seq)?;
        }
        if !chosen.is_empty() {
            meta_set(&tx, META_CURSOR, 0_i64)?;
        }
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(chosen.len())
    }

    /// `Store::reenrol`.
    pub(crate) fn reenrol_tx(
        &mut self,
        now: WallMs,
        identity: &Identity,
    ) -> Result<usize, StoreError> {
        let have = self.require_identity()?.clone();
        if have.device == identity.device || identity.is_server() {
            return Err(StoreError::SameIdentity {
                device: identity.device,
            });
        }
        let path = self.path.clone();
        let tx = self.begin()?;
        let stamp_now = server_now(&tx, now)?.unwrap_or(now);
        let mut queue = rejected_rows(&tx, None)?;
        queue.extend(outbox_rows(&tx)?);
        queue.sort_by_key(|(seq, _)| *seq);
        tx.execute_batch("DELETE FROM outbox; DELETE FROM rejected;")
            .map_err(sql_err)?;
        let mut re = Reissue {
            me: identity.device,
            stamp_now,
            hlc: HlcGen::new(Hlc(meta_u64(&tx, META_HLC)?)),
            seq: 0,
        };
        let n = re.all(&tx, &queue)?;
        meta_set(&tx, META_DEVICE, i64::from(identity.device))?;
        meta_set(&tx, META_UNIT, &identity.unit)?;
        meta_set(&tx, META_TERRITORY, &identity.territory)?;
        meta_set(&tx, META_HLC, i64_of(re.hlc.last().0))?;
        meta_set(&tx, META_LAST_SEQ, i64_of(re.seq))?;
        meta_set(&tx, META_ACKED_SEQ, 0_i64)?;
        meta_set(&tx, META_CURSOR, 0_i64)?;
        // A new actor's history starts empty: its chain too (see `heal`).
        crate::heal::reset_chain(&tx)?;
        tx.commit().map_err(|e| map_err(&path, e))?;
        self.identity = Some(identity.clone());
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tournee_core::export;
    use tournee_core::model::{Field, Kind, Scope, Value};
    use tournee_core::reject::Rejection;
    use tournee_core::store::{LocalAction, RecordEdit, ServerStore, Store};
    use uuid::Uuid;

    const NOW: WallMs = 1_780_000_000_000;
    const UNIT: &str = "bus-80";

    fn store(device: Actor) -> SqliteStore {
        let mut s = SqliteStore::open_in_memory().expect("store");
        let identity = if device == 0 {
            Identity::server()
        } else {
            Identity {
                device,
                unit: UNIT.into(),
                territory: "80".into(),
            }
        };
        s.set_identity(&identity).expect("identity");
        s
    }

    fn appointment(s: &mut SqliteStore, now: WallMs, note: &str) -> Uuid {
        let id = Uuid::now_v7();
        let action = LocalAction {
            edits: vec![RecordEdit {
                id,
                kind: Kind::Appointment,
                scope: Scope::Unit(UNIT.into()),
                create: true,
                sets: vec![
                    (Field::Location, Value::Text("arret".into())),
                    (Field::Commune, Value::Text("80021".into())),
                    (Field::Start, Value::Int((now / 1000) as i64 + 86_400)),
                    (Field::Duration, Value::Int(30)),
                    (Field::Status, Value::Text("unknown".into())),
                    (Field::Note, Value::Text(note.into())),
                ],
            }],
        };
        s.write_local(now, &action).expect("write");
        id
    }

    /// The server takes the agent's outbox as device `device`, accepting everything.
    fn upload(agent: &SqliteStore, server: &mut SqliteStore, device: Actor) -> u64 {
        let outbox = agent.outbox_after(0, 1000).expect("outbox");
        let first = outbox.first().map_or(1, |(s, _)| *s);
        let changes: Vec<Change> = outbox.into_iter().map(|(_, c)| c).collect();
        server
            .accept_batch(device, first, &changes, &mut |_, _, _| Ok(()))
            .expect("accept")
            .acked
    }

    fn digest(s: &SqliteStore, scopes: &[Scope]) -> String {
        export::digest(s, Some(scopes)).expect("digest")
    }

    #[test]
    fn the_clock_ahead_prefix_is_the_head_of_the_reasons_text() {
        assert_eq!(clock_ahead_prefix(), "clock ahead:");
        let text = RejectReason::ClockAhead { ahead_ms: 9_000 }.to_string();
        assert!(text.starts_with(&clock_ahead_prefix()));
        assert!(!RejectReason::invalid("clock ahead: no")
            .to_string()
            .starts_with(&clock_ahead_prefix()));
    }

    #[test]
    fn clock_ahead_refusals_wait_for_a_known_offset_then_go_again_under_new_seqs() {
        let mut a = store(1);
        let id = appointment(&mut a, NOW, "en avance");
        // Five refused for the clock, the last one (the note) for another reason: that one
        // stays.
        let mut refusals: Vec<Rejection> = (1..=5)
            .map(|seq| Rejection {
                seq,
                reason: RejectReason::ClockAhead { ahead_ms: 1 },
            })
            .collect();
        refusals.push(Rejection {
            seq: 6,
            reason: RejectReason::invalid("note"),
        });
        a.acknowledge(6, &refusals).expect("ack");
        assert_eq!(
            a.requeue_clock_ahead(NOW).expect("requeue"),
            0,
            "no offset yet"
        );
        assert_eq!(a.rejected().expect("rejected").len(), 6);
        a.note_sync(NOW, -3_600_000).expect("offset");
        assert_eq!(a.requeue_clock_ahead(NOW).expect("requeue"), 5);
        let left: Vec<u64> = a
            .rejected()
            .expect("rejected")
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(left, vec![6]);
        let out = a.outbox_after(6, 100).expect("outbox");
        let seqs: Vec<u64> = out.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![7, 8, 9, 10, 11], "contiguous after the last seq");
        for (_, c) in &out {
            assert_eq!(c.record, id);
            assert_eq!(c.write.dot.counter, 2, "a new dot covering the refused one");
            assert!(
                c.write.hlc.wall_ms() <= NOW - 3_600_000 + 1_000,
                "server time"
            );
        }
        let rec = a.record(id).expect("read").expect("kept");
        assert_eq!(rec.text(Field::Note), Some("en avance"));
        assert!(rec.conflicts().is_empty());
        assert_eq!(a.requeue_clock_ahead(NOW).expect("again"), 0, "once");
    }

    #[test]
    fn reenrol_writes_the_queue_again_and_a_server_that_took_it_already_does_not_double_it() {
        let mut a = store(1);
        let mut srv = store(0);
        let scopes = a.identity().expect("id").expect("set").scopes();
        let sent = appointment(&mut a, NOW, "envoyé");
        let acked = upload(&a, &mut srv, 1);
        a.acknowledge(acked, &[]).expect("ack");
        // The next one reaches the server, but its Ack is lost; then the laptop is re-enrolled.
        let lost_ack = appointment(&mut a, NOW + 1, "ack perdu");
        upload(&a, &mut srv, 1);
        let queued = appointment(&mut a, NOW + 2, "en attente");
        let new = Identity {
            device: 7,
            unit: UNIT.into(),
            territory: "80".into(),
        };
        assert!(matches!(
            a.reenrol(NOW, &a.identity().expect("id").expect("set")),
            Err(StoreError::SameIdentity { device: 1 })
        ));
        assert_eq!(a.reenrol(NOW + 3, &new).expect("reenrol"), 12);
        let st = a.stats().expect("stats");
        assert_eq!((st.last_seq, st.acked_seq, st.cursor), (12, 0, 0));
        assert_eq!(a.identity().expect("id"), Some(new.clone()));
        let out = a.outbox_after(0, 100).expect("outbox");
        assert!(out.iter().all(|(_, c)| c.write.dot.actor == 7));
        assert!(out.iter().all(|(_, c)| c.record != sent));
        upload(&a, &mut srv, 7);
        for id in [lost_ack, queued] {
            let rec = srv.record(id).expect("read").expect("on the server");
            assert!(rec.conflicts().is_empty(), "no second value");
            assert_eq!(rec, a.record(id).expect("read").expect("kept"));
        }
        assert_eq!(digest(&a, &scopes), digest(&srv, &scopes));
    }

    #[test]
    fn undo_clears_the_refused_field_and_removes_a_record_left_empty() {
        let mut a = store(1);
        let id = appointment(&mut a, NOW, "hors périmètre");
        assert!(matches!(
            a.undo_rejected(None),
            Err(StoreError::Pending { count: 6 })
        ));
        let refusals: Vec<Rejection> = (1..=6)
            .map(|seq| Rejection {
                seq,
                reason: RejectReason::ForeignDot { actor: 1 },
            })
            .collect();
        a.acknowledge(6, &refusals).expect("ack");
        a.apply_remote(&[], Some(40)).expect("cursor");
        assert_eq!(a.undo_rejected(Some(&[6])).expect("one"), 1);
        let rec = a.record(id).expect("read").expect("still there");
        assert!(rec.value(Field::Note).is_none());
        assert_eq!(a.stats().expect("stats").cursor, 0, "downloaded again");
        assert_eq!(a.undo_rejected(None).expect("rest"), 5);
        assert!(a.record(id).expect("read").is_none(), "nothing left of it");
        assert_eq!(a.stats().expect("stats").rejected, 0);
    }

    #[test]
    fn a_refusal_after_a_rebase_is_kept_beside_one_from_before_with_the_same_seq() {
        use tournee_core::store::{Rebase, CHAIN_START};
        let mut a = store(1);
        appointment(&mut a, NOW, "refusée avant");
        a.acknowledge(
            6,
            &[Rejection {
                seq: 6,
                reason: RejectReason::invalid("note"),
            }],
        )
        .expect("ack");
        // The server was restored and knows none of it: the laptop renumbers from 0.
        a.rebase(0, CHAIN_START, Rebase::ServerBehind)
            .expect("rebase");
        a.finish_rebase(NOW + 1).expect("finish");
        appointment(&mut a, NOW + 2, "refusée après");
        let last = a.stats().expect("stats").last_seq;
        assert!(last >= 6);
        a.acknowledge(
            last,
            &[Rejection {
                seq: 6,
                reason: RejectReason::invalid("again"),
            }],
        )
        .expect("ack");
        let kept = a.rejected().expect("rejected");
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_ne!(kept[0].seq, kept[1].seq);
    }
}
