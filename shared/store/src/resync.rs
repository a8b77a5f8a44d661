//! Following a server restored from a backup: the laptop rebuilds its replica from the
//! restored changelog (`Store::adopt_server_epoch`, `Store::finish_resync`).
//!
//! A restored server lost its own writes since the backup (the scheduler's: no laptop may
//! send them back, they carry the server's dots) and gives its changelog numbers again to
//! other changes. The laptop adopts the new epoch, downloads the whole changelog (its own
//! writes included) into `resync_records` beside the records it keeps showing, and once up to
//! date swaps it in with every change of its own the server has not taken (queued or refused)
//! applied on top; other laptops' writes the server lost come back when those laptops re-send
//! them. It does not decide when (the session does), and it never drops a change of this
//! laptop: those are in the outbox, the refused list or the rebase stash throughout.

use rusqlite::Connection;

use tournee_core::record::Record;
use tournee_core::store::StoreError;

use crate::records::{load_record_in, save_record_in, Table};
use crate::requeue::{outbox_rows, rejected_rows};
use crate::sql_err;
use crate::sqlite::{
    i64_of, map_err, meta_set, meta_u64, SqliteStore, META_CURSOR, META_SERVER_EPOCH,
};

/// 1 while `resync_records` is being rebuilt.
const META_RESYNC: &str = "resync";

/// Where downloaded changes go in the transaction `tx`.
pub(crate) fn download_table(tx: &Connection) -> Result<Table, StoreError> {
    Ok(if meta_u64(tx, META_RESYNC)? != 0 {
        Table::Resync
    } else {
        Table::Records
    })
}

impl SqliteStore {
    /// `Store::adopt_server_epoch`.
    pub(crate) fn resync_adopt(&mut self, epoch: u64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.begin()?;
        meta_set(&tx, META_SERVER_EPOCH, i64_of(epoch))?;
        meta_set(&tx, META_CURSOR, 0i64)?;
        meta_set(&tx, META_RESYNC, 1i64)?;
        tx.execute("DELETE FROM resync_records", [])
            .map_err(sql_err)?;
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(())
    }

    /// `Store::resync_pending`.
    pub(crate) fn resync_pending_in(&self) -> Result<bool, StoreError> {
        Ok(download_table(&self.conn)? == Table::Resync)
    }

    /// `Store::finish_resync`.
    pub(crate) fn resync_finish(&mut self) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let tx = self.begin()?;
        if download_table(&tx)? != Table::Resync {
            return Ok(false);
        }
        let mut ours = outbox_rows(&tx)?;
        ours.extend(rejected_rows(&tx, None)?);
        for (_, change) in ours {
            let mut record = match load_record_in(&tx, Table::Resync, change.record)? {
                Some(r) => r,
                None => Record::for_change(&change)?,
            };
            // Already there when the server took it after all (same dot).
            record.apply_change(change)?;
            save_record_in(&tx, Table::Resync, &record)?;
        }
        tx.execute_batch(
            "DELETE FROM records;
             INSERT INTO records(id, kind, scope, day, conflict, state)
                 SELECT id, kind, scope, day, conflict, state FROM resync_records;
             DELETE FROM resync_records;",
        )
        .map_err(sql_err)?;
        crate::persons::rebuild(&tx)?;
        crate::links::rebuild(&tx)?;
        meta_set(&tx, META_RESYNC, 0i64)?;
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(true)
    }
}
