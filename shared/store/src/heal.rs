//! Healing a laptop's history the server does not share: the chain of acknowledged changes,
//! and the two steps of a rebase (`Store::rebase`, `Store::finish_rebase`).
//!
//! A store restored from a copy, or copied to a second machine, reuses `seq` numbers and dots
//! the server already holds with other content; a restored server lost changes it once
//! acknowledged. The session detects it (the chain in Hello); here the unacknowledged changes
//! are stashed, `seq` goes on from the server's, and once the whole changelog was applied
//! again the stash is re-issued as new writes whose dots are above everything received. It
//! does not decide when to heal (the sessions do) and never drops a change: the stash is
//! durable until re-issued.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection};
use uuid::Uuid;

use tournee_core::clock::WallMs;
use tournee_core::hlc::{Hlc, HlcGen};
use tournee_core::model::Value;
use tournee_core::record::{Change, Record};
use tournee_core::register::{Actor, Register, Write};
use tournee_core::store::{chain_next, Chain, Rebase, StoreError, CHAIN_START};

use crate::codec::decode;
use crate::local::append_outbox;
use crate::records::{by_record, load_record, query_records, save_record};
use crate::sql_err;
use crate::sqlite::{
    i64_of, map_err, meta_get, meta_set, meta_u64, SqliteStore, META_ACKED_SEQ, META_CLOCK_OFFSET,
    META_CURSOR, META_HLC, META_LAST_SEQ,
};

/// The chain of the laptop's history up to its acknowledged `seq` (a blob of 16 bytes).
const META_CHAIN: &str = "chain_acked";
/// A rebase waiting for `finish_rebase`: 0 none, 1 rewound, 2 the server was behind.
const META_REBASE: &str = "rebase";

fn rebase_code(why: Rebase) -> i64 {
    match why {
        Rebase::Rewound => 1,
        Rebase::ServerBehind => 2,
    }
}

/// The chain stored under `META_CHAIN`, or the empty history's.
pub(crate) fn chain_acked_in(conn: &Connection) -> Result<Chain, StoreError> {
    let v: Option<Vec<u8>> = meta_get(conn, META_CHAIN)?;
    match v {
        None => Ok(CHAIN_START),
        Some(bytes) => chain_of(&bytes),
    }
}

/// The history starts again empty (a new identity): so does its chain.
pub(crate) fn reset_chain(tx: &Connection) -> Result<(), StoreError> {
    meta_set(tx, META_CHAIN, CHAIN_START.to_vec())
}

/// A stored chain blob as a `Chain`.
pub(crate) fn chain_of(bytes: &[u8]) -> Result<Chain, StoreError> {
    Chain::try_from(bytes)
        .map_err(|_| StoreError::corrupt("history chain", format!("{} bytes", bytes.len())))
}

/// The acknowledged `seq` moves from `prev` to `acked` (inside the caller's transaction, before
/// the outbox drops those entries): fold them into the chain.
pub(crate) fn fold_acked(tx: &Connection, prev: u64, acked: u64) -> Result<(), StoreError> {
    let mut chain = chain_acked_in(tx)?;
    let mut stmt = tx
        .prepare_cached("SELECT change FROM outbox WHERE seq > ?1 AND seq <= ?2 ORDER BY seq")
        .map_err(sql_err)?;
    let mut rows = stmt
        .query(params![i64_of(prev), i64_of(acked)])
        .map_err(sql_err)?;
    while let Some(r) = rows.next().map_err(sql_err)? {
        let bytes: Vec<u8> = r.get(0).map_err(sql_err)?;
        let change: Change = decode("outbox change", &bytes)?;
        chain = chain_next(&chain, &change);
    }
    meta_set(tx, META_CHAIN, chain.to_vec())
}

/// The context a write of this device re-sent from state carries: what the register has seen,
/// short of every value it still holds (so it replaces only what it replaced the first time).
fn trim_to_replaced(dots: &mut BTreeMap<Actor, u64>, reg: &Register<Value>) {
    for s in reg.siblings() {
        let floor = s.dot.counter.saturating_sub(1);
        if let Some(c) = dots.get_mut(&s.dot.actor) {
            *c = (*c).min(floor);
        }
    }
    dots.retain(|_, c| *c > 0);
}

impl SqliteStore {
    /// `Store::chain_acked`.
    pub(crate) fn heal_chain_acked(&self) -> Result<(u64, Chain), StoreError> {
        Ok((
            meta_u64(&self.conn, META_ACKED_SEQ)?,
            chain_acked_in(&self.conn)?,
        ))
    }

    /// `Store::rebase_pending`.
    pub(crate) fn heal_pending(&self) -> Result<bool, StoreError> {
        Ok(meta_u64(&self.conn, META_REBASE)? != 0)
    }

    /// `Store::rebase`.
    pub(crate) fn heal_rebase(
        &mut self,
        acked: u64,
        chain: Chain,
        why: Rebase,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.begin()?;
        tx.execute(
            "INSERT INTO rebase_stash(change) SELECT change FROM outbox ORDER BY seq",
            [],
        )
        .map_err(sql_err)?;
        tx.execute("DELETE FROM outbox", []).map_err(sql_err)?;
        meta_set(&tx, META_LAST_SEQ, i64_of(acked))?;
        meta_set(&tx, META_ACKED_SEQ, i64_of(acked))?;
        meta_set(&tx, META_CHAIN, chain.to_vec())?;
        meta_set(&tx, META_CURSOR, 0i64)?;
        let code = rebase_code(why).max(meta_u64(&tx, META_REBASE)? as i64);
        meta_set(&tx, META_REBASE, code)?;
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(())
    }

    /// `Store::finish_rebase`.
    pub(crate) fn heal_finish(&mut self, now: WallMs) -> Result<usize, StoreError> {
        let me = self.require_identity()?.device;
        let path = self.path.clone();
        let tx = self.begin()?;
        let why = meta_u64(&tx, META_REBASE)?;
        if why == 0 {
            return Ok(0);
        }
        let mut seq = meta_u64(&tx, META_LAST_SEQ)?;
        let start = seq;
        if why == rebase_code(Rebase::ServerBehind) as u64 {
            // The server lost writes it acknowledged: send again every write of ours the
            // records hold, as it was (same dot: where the server kept it, it is a duplicate).
            let records = query_records(&tx, "SELECT id, kind, scope, state FROM records", [])?;
            let mut again = Vec::new();
            for record in records {
                for (field, reg) in &record.fields {
                    for s in reg.siblings().iter().filter(|s| s.dot.actor == me) {
                        let mut ctx = reg.clock().clone();
                        trim_to_replaced(&mut ctx.dots, reg);
                        again.push(Change {
                            record: record.id,
                            kind: record.kind,
                            scope: record.scope.clone(),
                            field: *field,
                            write: Write {
                                dot: s.dot,
                                hlc: s.hlc,
                                ctx,
                                value: s.value.clone(),
                            },
                        });
                    }
                }
            }
            for i in by_record(again.iter()) {
                seq += 1;
                append_outbox(&tx, seq, &again[i])?;
            }
        }
        // The stash, re-issued as new writes over everything now held: each dot is above any
        // the server has for that field, so none is taken for an earlier one.
        let mut stash: Vec<Change> = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached("SELECT change FROM rebase_stash ORDER BY n")
                .map_err(sql_err)?;
            let mut rows = stmt.query([]).map_err(sql_err)?;
            while let Some(r) = rows.next().map_err(sql_err)? {
                let bytes: Vec<u8> = r.get(0).map_err(sql_err)?;
                stash.push(decode("stashed change", &bytes)?);
            }
        }
        let mut hlc = HlcGen::new(Hlc(meta_u64(&tx, META_HLC)?));
        let offset: Option<i64> = meta_get(&tx, META_CLOCK_OFFSET)?;
        let stamp_now = now.saturating_add_signed(offset.unwrap_or(0));
        let mut touched: HashMap<Uuid, Record> = HashMap::new();
        let mut order: Vec<Uuid> = Vec::new();
        for old in by_record(stash.iter())
            .into_iter()
            .map(|i| stash[i].clone())
        {
            let record = match touched.entry(old.record) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    order.push(old.record);
                    let r = match load_record(&tx, old.record)? {
                        Some(r) => r,
                        None => Record::for_change(&old)?,
                    };
                    e.insert(r)
                }
            };
            // A new dot above every one this field holds, with the context the write had plus
            // every dot of ours (its first copy, and whatever a copy of this data dir wrote
            // under our name): it replaces what it replaced the first time, and a value another
            // device wrote concurrently stays beside it (a conflict to resolve, not hidden).
            let reg = record.fields.get(&old.field).cloned().unwrap_or_default();
            let mut write = reg.prepare(me, hlc.tick(stamp_now), old.write.value.clone());
            let mut ctx = old.write.ctx.clone();
            let ours = reg.clock().get(&me).max(ctx.get(&me));
            if ours > 0 {
                ctx.dots.insert(me, ours);
            }
            write.ctx = ctx;
            let change = Change { write, ..old };
            record.apply_change(change.clone())?;
            seq += 1;
            append_outbox(&tx, seq, &change)?;
        }
        for id in order {
            if let Some(record) = touched.get(&id) {
                save_record(&tx, record, None)?;
            }
        }
        tx.execute("DELETE FROM rebase_stash", [])
            .map_err(sql_err)?;
        meta_set(&tx, META_REBASE, 0i64)?;
        meta_set(&tx, META_LAST_SEQ, i64_of(seq))?;
        meta_set(&tx, META_HLC, i64_of(hlc.last().0))?;
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(usize::try_from(seq - start).unwrap_or(usize::MAX))
    }
}
