//! The canonical export and its digest: the same function on agent and server, so equal state
//! gives equal bytes and equal SHA-256.
//!
//! Form: `{"records":[…]}` with records sorted by id, each record's fields sorted by name and each
//! field's siblings sorted by (HLC, device), compact JSON, one trailing newline. The digest is the
//! hex SHA-256 of exactly those bytes, so `export | sha256sum` matches `digest`. Local bookkeeping
//! (outbox, cursors, rejected changes) is not part of it.

use std::io::Write;

use sha2::{Digest, Sha256};

use crate::model::Scope;
use crate::store::{Store, StoreError};

/// Write the canonical export of the records in `scopes` (all when `None`) to `out`.
pub fn write_export(
    store: &dyn Store,
    scopes: Option<&[Scope]>,
    out: &mut dyn Write,
) -> Result<(), StoreError> {
    out.write_all(b"{\"records\":[")?;
    let mut first = true;
    store.for_each_record(scopes, &mut |record| {
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        serde_json::to_writer(&mut *out, &record.canonical_json())
            .map_err(|e| StoreError::corrupt("export output", e))
    })?;
    out.write_all(b"]}\n")?;
    Ok(())
}

struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hex SHA-256 of the canonical export of `scopes` (all when `None`).
pub fn digest(store: &dyn Store, scopes: Option<&[Scope]>) -> Result<String, StoreError> {
    let mut h = HashWriter(Sha256::new());
    write_export(store, scopes, &mut h)?;
    Ok(hex::encode(h.0.finalize()))
}
