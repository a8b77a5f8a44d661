//! Encodings of stored values: kind codes, postcard blobs of record state and changes, the
//! indexed day of a record.
//!
//! Pure functions, and one reader of `(seq, change)` rows; no SQL of its own.

use chrono::NaiveDate;

use tournee_core::limits::RECORD_STATE_BYTES_MAX;
use tournee_core::model::{Field, Kind};
use tournee_core::record::Record;
use tournee_core::store::StoreError;
use tournee_core::time::{day_key, paris_date};

use crate::sql_err;

pub(crate) fn kind_code(kind: Kind) -> i64 {
    Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .map_or(-1, |i| i as i64)
}

pub(crate) fn kind_from_code(code: i64) -> Result<Kind, StoreError> {
    usize::try_from(code)
        .ok()
        .and_then(|i| Kind::ALL.get(i).copied())
        .ok_or_else(|| StoreError::corrupt("record kind", format!("code {code}")))
}

pub(crate) fn encode<T: serde::Serialize>(
    what: &'static str,
    v: &T,
) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(v).map_err(|e| StoreError::corrupt(what, e))
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    if bytes.len() > RECORD_STATE_BYTES_MAX {
        return Err(StoreError::corrupt(
            what,
            format!("{} bytes exceeds {RECORD_STATE_BYTES_MAX}", bytes.len()),
        ));
    }
    postcard::from_bytes(bytes).map_err(|e| StoreError::corrupt(what, e))
}

/// The indexed day of a record: appointment or walk-in start day, or passage date, in Paris.
pub(crate) fn record_day(record: &Record) -> Option<i64> {
    match record.kind {
        Kind::Appointment | Kind::Visit => {
            record.int(Field::Start).and_then(paris_date).map(day_key)
        }
        Kind::Passage => record
            .text(Field::Date)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .map(day_key),
        _ => None,
    }
}

/// `(seq INTEGER, change BLOB)` rows of `stmt` run with `params`, decoded in order; `what` names
/// the change in errors (the outbox's, the rejected list's).
pub(crate) fn seq_changes<P: rusqlite::Params>(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: P,
    what: &'static str,
) -> Result<Vec<(u64, tournee_core::record::Change)>, StoreError> {
    let mut rows = stmt.query(params).map_err(sql_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(sql_err)? {
        let seq: i64 = r.get(0).map_err(sql_err)?;
        let bytes: Vec<u8> = r.get(1).map_err(sql_err)?;
        out.push((u64::try_from(seq).unwrap_or(0), decode(what, &bytes)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn undecodable_bytes_keep_the_decoders_error_as_source() {
        let err = decode::<Vec<String>>("record state", &[0xff]).expect_err("garbage");
        assert!(err
            .to_string()
            .starts_with("stored record state is damaged: "));
        let source = err.source().expect("a source");
        assert!(
            source.downcast_ref::<postcard::Error>().is_some(),
            "{source}"
        );
    }

    #[test]
    fn an_unknown_kind_code_is_damage_named_by_its_code() {
        let err = kind_from_code(99).expect_err("unknown");
        assert_eq!(err.to_string(), "stored record kind is damaged: code 99");
    }
}
