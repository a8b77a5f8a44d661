//! The canonical export and its digest: the same function on agent and server, so equal state
//! gives equal bytes and equal SHA-256.
//!
//! Form: `{"records":[…]}` with records sorted by id, each record's fields sorted by name and each
//! field's siblings sorted by (HLC, device), compact JSON with every object's keys in byte order
//! (written by `Record::write_canonical_json`, never through a `serde_json::Map`, whose order
//! depends on serde_json's features), one trailing newline. The digest is the hex SHA-256 of
//! exactly those bytes, so `export | sha256sum` matches `digest`. Local bookkeeping (outbox,
//! cursors, rejected changes) is not part of it.

use std::io::Write;

use sha2::{Digest, Sha256};

use crate::model::Scope;
use crate::store::{Store, StoreError};

/// Write the canonical export of the records in `scopes` (all when `None`) to `out`.
///
/// A failing `out` (a reader that went away, a full disk) is `StoreError::Output` with the I/O
/// error as its source.
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
        record.write_canonical_json(out)?;
        Ok(())
    })?;
    out.write_all(b"]}\n")?;
    Ok(())
}

/// Hex SHA-256 of the canonical export of `scopes` (all when `None`): the export is written
/// straight into the hasher.
pub fn digest(store: &dyn Store, scopes: Option<&[Scope]>) -> Result<String, StoreError> {
    let mut hasher = Sha256::new();
    write_export(store, scopes, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::NaiveDate;
    use crdts::{Dot, VClock};
    use uuid::Uuid;

    use crate::clock::WallMs;
    use crate::hlc::Hlc;
    use crate::model::{Field, Kind, Value};
    use crate::record::{Change, Record};
    use crate::register::{Register, Write as RegWrite};
    use crate::reject::Rejection;
    use crate::store::{ApplySummary, Identity, LocalAction, StoreStats};

    /// Records in memory: the export only walks them; nothing else is called.
    struct Fixed(Vec<Record>);

    impl Store for Fixed {
        fn identity(&self) -> Result<Option<Identity>, StoreError> {
            unreachable!("not used by the export")
        }
        fn set_identity(&mut self, _: &Identity) -> Result<(), StoreError> {
            unreachable!("not used by the export")
        }
        fn record(&self, _: Uuid) -> Result<Option<Record>, StoreError> {
            unreachable!("not used by the export")
        }
        fn write_local(&mut self, _: WallMs, _: &LocalAction) -> Result<Vec<Change>, StoreError> {
            unreachable!("not used by the export")
        }
        fn apply_remote(
            &mut self,
            _: &[Change],
            _: Option<u64>,
        ) -> Result<ApplySummary, StoreError> {
            unreachable!("not used by the export")
        }
        fn outbox_after(&self, _: u64, _: usize) -> Result<Vec<(u64, Change)>, StoreError> {
            unreachable!("not used by the export")
        }
        fn records_on(&self, _: Kind, _: NaiveDate) -> Result<Vec<Record>, StoreError> {
            unreachable!("not used by the export")
        }
        fn records_between(
            &self,
            _: Kind,
            _: NaiveDate,
            _: NaiveDate,
        ) -> Result<Vec<Record>, StoreError> {
            unreachable!("not used by the export")
        }
        fn records_of_kind(&self, _: Kind) -> Result<Vec<Record>, StoreError> {
            unreachable!("not used by the export")
        }
        fn ids_with_prefix(&self, _: &str, _: usize) -> Result<Vec<Uuid>, StoreError> {
            unreachable!("not used by the export")
        }
        fn conflicted(&self) -> Result<Vec<Record>, StoreError> {
            unreachable!("not used by the export")
        }
        fn for_each_record(
            &self,
            scopes: Option<&[Scope]>,
            f: &mut dyn FnMut(Record) -> Result<(), StoreError>,
        ) -> Result<(), StoreError> {
            for r in &self.0 {
                if scopes.is_none_or(|s| s.contains(&r.scope)) {
                    f(r.clone())?;
                }
            }
            Ok(())
        }
        fn stats(&self) -> Result<StoreStats, StoreError> {
            unreachable!("not used by the export")
        }
        fn acknowledge(&mut self, _: u64, _: &[Rejection]) -> Result<(), StoreError> {
            unreachable!("not used by the export")
        }
        fn note_sync(&mut self, _: WallMs, _: i64) -> Result<(), StoreError> {
            unreachable!("not used by the export")
        }
        fn last_sync(&self) -> Result<Option<(WallMs, i64)>, StoreError> {
            unreachable!("not used by the export")
        }
        fn rejected(&self) -> Result<Vec<crate::store::RejectedChange>, StoreError> {
            unreachable!("not used by the export")
        }
        fn requeue_clock_ahead(&mut self, _: WallMs) -> Result<usize, StoreError> {
            unreachable!("not used by the export")
        }
        fn undo_rejected(&mut self, _: Option<&[u64]>) -> Result<usize, StoreError> {
            unreachable!("not used by the export")
        }
        fn reenrol(&mut self, _: WallMs, _: &Identity) -> Result<usize, StoreError> {
            unreachable!("not used by the export")
        }
    }

    fn write(actor: u32, counter: u64, hlc: u64, value: Value) -> RegWrite<Value> {
        RegWrite {
            dot: Dot::new(actor, counter),
            hlc: Hlc(hlc),
            ctx: VClock::new(),
            value,
        }
    }

    fn register(writes: Vec<RegWrite<Value>>) -> Register<Value> {
        let mut reg = Register::new();
        for w in writes {
            reg.try_apply(w).expect("a valid write");
        }
        reg
    }

    /// Two records covering every value type, concurrent siblings (one field in conflict), field
    /// names whose enum order differs from their alphabetical order, and text needing every kind
    /// of JSON escape (quote, backslash, short and `\u` control escapes, non-ASCII, DEL, slash).
    fn fixed_store() -> Fixed {
        let unit = Scope::Unit("bus-80-1".into());
        let mut appt = Record::new(
            Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002),
            Kind::Appointment,
            unit.clone(),
        );
        appt.fields.insert(
            Field::Status,
            register(vec![
                write(3, 1, 1_000_002, Value::Text("seen".into())),
                write(7, 4, 1_000_001, Value::Text("noshow".into())),
            ]),
        );
        appt.fields.insert(
            Field::Commune,
            register(vec![write(3, 2, 999, Value::Text("80021".into()))]),
        );
        appt.fields.insert(
            Field::Duration,
            register(vec![write(3, 3, 1_000, Value::Int(-45))]),
        );
        appt.fields.insert(
            Field::Citizen,
            register(vec![write(
                3,
                4,
                1_001,
                Value::Id(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)),
            )]),
        );
        appt.fields.insert(
            Field::Deleted,
            register(vec![write(0, 1, u64::MAX, Value::Bool(false))]),
        );
        let mut citizen = Record::new(
            Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            Kind::Citizen,
            unit,
        );
        citizen.fields.insert(
            Field::Name,
            register(vec![write(
                3,
                1,
                5,
                Value::Text(
                    "Zoé \"Z\" Quintard\\Kerhervé\n\t\r\u{8}\u{c}\u{1}\u{1f}\u{7f}/€😀".into(),
                ),
            )]),
        );
        citizen
            .fields
            .insert(Field::Phone, register(vec![write(3, 2, 6, Value::Null)]));
        let stop = Record::new(
            Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0003),
            Kind::Stop,
            Scope::Territory("80".into()),
        );
        Fixed(vec![citizen, appt, stop])
    }

    /// Computed by the export before it had its own JSON writer (serde_json `Value`s, sorted
    /// maps): the bytes and digest every deployed replica compares with.
    const FIXED_DIGEST: &str = "51f85c1f2c9fd6f9124e7ff72b58c7de5c0394dc214b94c0057d67fbbd4bbb0a";

    /// The same export's bytes, for a readable failure.
    const FIXED_EXPORT: &str = concat!(
        r#"{"records":[{"fields":{"name":[{"counter":1,"device":3,"hlc":5,"#,
        "\"value\":\"Zoé \\\"Z\\\" Quintard\\\\Kerhervé\\n\\t\\r\\b\\f\\u0001\\u001f\u{7f}/€😀\"}],",
        r#""phone":[{"counter":2,"device":3,"hlc":6,"value":null}]},"#,
        r#""id":"01900000-0000-7000-8000-000000000001","kind":"citizen","scope":"unit:bus-80-1"},"#,
        r#"{"fields":{"citizen":[{"counter":4,"device":3,"hlc":1001,"#,
        r#""value":"01900000-0000-7000-8000-000000000001"}],"#,
        r#""commune":[{"counter":2,"device":3,"hlc":999,"value":"80021"}],"#,
        r#""deleted":[{"counter":1,"device":0,"hlc":18446744073709551615,"value":false}],"#,
        r#""duration":[{"counter":3,"device":3,"hlc":1000,"value":-45}],"#,
        r#""status":[{"counter":4,"device":7,"hlc":1000001,"value":"noshow"},"#,
        r#"{"counter":1,"device":3,"hlc":1000002,"value":"seen"}]},"#,
        r#""id":"01900000-0000-7000-8000-000000000002","kind":"appointment","scope":"unit:bus-80-1"},"#,
        r#"{"fields":{},"id":"01900000-0000-7000-8000-000000000003","kind":"stop","scope":"territory:80"}"#,
        "]}\n",
    );

    /// An output that takes `room` bytes, then reports that its reader went away.
    struct ClosedAfter {
        room: usize,
    }

    impl Write for ClosedAfter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// `export | head -c 40`: the reader closes inside a record. The error must keep the I/O
    /// error as its source so the binaries see a broken pipe (and stay quiet), not "damaged".
    #[test]
    fn a_reader_closing_inside_a_record_is_an_output_error_with_its_io_source() {
        let store = fixed_store();
        let err = write_export(&store, None, &mut ClosedAfter { room: 40 })
            .expect_err("the reader went away");
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let mut broken_pipe = false;
        while let Some(e) = cause {
            broken_pipe |= e
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
            cause = e.source();
        }
        assert!(broken_pipe, "{err:?}");
        assert!(matches!(err, StoreError::Output(_)), "{err:?}");
    }

    /// The `Value` form (for comparing and showing records) holds what the export writes.
    #[test]
    fn the_json_value_form_parses_from_the_exported_bytes() {
        for record in fixed_store().0 {
            let mut bytes = Vec::new();
            record
                .write_canonical_json(&mut bytes)
                .expect("writes to memory");
            let parsed: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
            assert_eq!(parsed, record.canonical_json());
        }
    }

    proptest::proptest! {
        /// Any text (control characters, quotes, backslashes, any plane) survives the writer.
        #[test]
        fn any_text_round_trips_through_the_canonical_form(
            text in proptest::prelude::any::<String>(),
            hlc in proptest::prelude::any::<u64>(),
        ) {
            let mut record = fixed_store().0.remove(0);
            record
                .fields
                .insert(Field::Address, register(vec![write(9, 1, hlc, Value::Text(text))]));
            let mut bytes = Vec::new();
            record.write_canonical_json(&mut bytes).expect("writes to memory");
            let parsed: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
            proptest::prop_assert_eq!(parsed, record.canonical_json());
        }
    }

    #[test]
    fn the_digest_of_a_fixed_store_is_the_one_deployed_replicas_compute() {
        let store = fixed_store();
        let mut bytes = Vec::new();
        write_export(&store, None, &mut bytes).expect("exports");
        assert_eq!(std::str::from_utf8(&bytes).expect("UTF-8"), FIXED_EXPORT);
        let all = digest(&store, None).expect("digests");
        assert_eq!(
            all,
            hex::encode(Sha256::digest(&bytes)),
            "digest = sha256(export)"
        );
        assert_eq!(all, FIXED_DIGEST);
    }
}
