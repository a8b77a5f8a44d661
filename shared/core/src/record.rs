//! Records as sets of field registers, the `Change` that replicates one field write, and the
//! canonical export form of a record (the input of every digest).
//!
//! A record's kind and scope are fixed when it is created and travel with every change, so a
//! receiver can file and authorize a change without having seen the record before. Nothing here
//! touches storage.

use std::collections::BTreeMap;

use crdts::{CmRDT, CvRDT};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{guarded_status_siblings, Field, Kind, ModelError, Scope, Value};
use crate::register::{Register, RegisterError, Sibling, Write};

/// One field write of one record: the unit of replication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The record written.
    pub record: Uuid,
    /// Its kind.
    pub kind: Kind,
    /// Its scope.
    pub scope: Scope,
    /// The field written.
    pub field: Field,
    /// The register write.
    pub write: Write<Value>,
}

/// Why a change cannot be taken into a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The change names another kind or scope than the record was created with.
    #[error(
        "record {id} is a {have_kind} of {have_scope}; a change claims {got_kind} of {got_scope}"
    )]
    Mismatch {
        /// The record.
        id: Uuid,
        /// Its kind.
        have_kind: Kind,
        /// Its scope key.
        have_scope: String,
        /// The change's kind.
        got_kind: Kind,
        /// The change's scope key.
        got_scope: String,
    },
    /// A stop must be scoped to a territory, everything else to a unit.
    #[error("a {kind} cannot have scope {scope}")]
    BadScope {
        /// The kind.
        kind: Kind,
        /// The scope key.
        scope: String,
    },
    /// The field or value is invalid for the kind.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The register refused the write.
    #[error("{field}: {source}")]
    Register {
        /// The field.
        field: Field,
        /// Why.
        source: RegisterError,
    },
}

/// Check that a kind may have a scope.
pub fn check_scope(kind: Kind, scope: &Scope) -> Result<(), RecordError> {
    let ok = matches!(
        (kind, scope),
        (Kind::Stop, Scope::Territory(_))
            | (
                Kind::Round
                    | Kind::Passage
                    | Kind::Citizen
                    | Kind::Appointment
                    | Kind::Request
                    | Kind::Visit
                    | Kind::Workshop,
                Scope::Unit(_)
            )
    );
    if ok {
        Ok(())
    } else {
        Err(RecordError::BadScope {
            kind,
            scope: scope.key(),
        })
    }
}

/// A replicated record: id, kind, scope and one register per field written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// UUIDv7 made by the creating device.
    pub id: Uuid,
    /// Kind.
    pub kind: Kind,
    /// Scope.
    pub scope: Scope,
    /// Registers of the fields written so far.
    pub fields: BTreeMap<Field, Register<Value>>,
}

impl Record {
    /// An empty record (no field written yet).
    pub fn new(id: Uuid, kind: Kind, scope: Scope) -> Self {
        Self {
            id,
            kind,
            scope,
            fields: BTreeMap::new(),
        }
    }

    /// The record a change creates when it is the first one seen.
    pub fn for_change(change: &Change) -> Result<Self, RecordError> {
        check_scope(change.kind, &change.scope)?;
        Ok(Self::new(change.record, change.kind, change.scope.clone()))
    }

    fn check_identity(&self, id: Uuid, kind: Kind, scope: &Scope) -> Result<(), RecordError> {
        if self.id == id && self.kind == kind && self.scope == *scope {
            return Ok(());
        }
        Err(RecordError::Mismatch {
            id: self.id,
            have_kind: self.kind,
            have_scope: self.scope.key(),
            got_kind: kind,
            got_scope: scope.key(),
        })
    }

    /// Validate a change without taking it.
    pub fn validate_change(&self, change: &Change) -> Result<(), RecordError> {
        self.check_identity(change.record, change.kind, &change.scope)?;
        self.kind.check_field(change.field)?;
        if let Some(reg) = self.fields.get(&change.field) {
            reg.validate_op(&change.write)
                .map_err(|source| RecordError::Register {
                    field: change.field,
                    source,
                })?;
        } else {
            Register::new()
                .validate_op(&change.write)
                .map_err(|source| RecordError::Register {
                    field: change.field,
                    source,
                })?;
        }
        Ok(())
    }

    /// Take a change: validated, idempotent. Returns whether the record changed.
    pub fn apply_change(&mut self, change: Change) -> Result<bool, RecordError> {
        self.validate_change(&change)?;
        let reg = self.fields.entry(change.field).or_default();
        reg.try_apply(change.write)
            .map_err(|source| RecordError::Register {
                field: change.field,
                source,
            })
    }

    /// Join another replica's state of the same record.
    pub fn merge(&mut self, other: Record) -> Result<(), RecordError> {
        self.check_identity(other.id, other.kind, &other.scope)?;
        for (field, reg) in other.fields {
            self.kind.check_field(field)?;
            let mine = self.fields.entry(field).or_default();
            mine.validate_merge(&reg)
                .map_err(|source| RecordError::Register { field, source })?;
            mine.merge(reg);
        }
        Ok(())
    }

    /// The register of a field, if written.
    pub fn register(&self, field: Field) -> Option<&Register<Value>> {
        self.fields.get(&field)
    }

    /// The shown value of a field (the display winner among its siblings).
    pub fn value(&self, field: Field) -> Option<&Value> {
        self.shown_siblings(field).last().map(|s| &s.value)
    }

    /// The shown value as text.
    pub fn text(&self, field: Field) -> Option<&str> {
        self.value(field).and_then(Value::as_text)
    }

    /// The shown value as a number.
    pub fn int(&self, field: Field) -> Option<i64> {
        self.value(field).and_then(Value::as_int)
    }

    /// The shown value as a record id.
    pub fn id_ref(&self, field: Field) -> Option<Uuid> {
        self.value(field).and_then(Value::as_id)
    }

    /// True once the record's tombstone is set. A domain guard, like the status one: a passage
    /// its unit marked stays live even if the scheduler tombstoned it concurrently (a laptop
    /// marked it offline while `round set` dropped it), so what the unit recorded is never lost.
    pub fn is_deleted(&self) -> bool {
        self.value(Field::Deleted).and_then(Value::as_bool) == Some(true)
            && !self.is_marked_passage()
    }

    /// A passage is "marked" once its unit recorded anything on it (held, cancelled, actual
    /// times): regenerating the round's plan leaves it alone.
    pub fn is_marked_passage(&self) -> bool {
        self.kind == Kind::Passage
            && (self.text(Field::Status).is_some_and(|s| s != "planifie")
                || self.int(Field::ActualStart).is_some()
                || self.int(Field::ActualEnd).is_some())
    }

    /// The siblings shown for a field, after domain guards (forward-only appointment status).
    pub fn shown_siblings(&self, field: Field) -> Vec<&Sibling<Value>> {
        let Some(reg) = self.fields.get(&field) else {
            return Vec::new();
        };
        if self.kind == Kind::Appointment && field == Field::Status {
            guarded_status_siblings(reg.siblings())
        } else {
            reg.siblings().iter().collect()
        }
    }

    /// Fields in conflict: more than one distinct value shown, after domain guards.
    pub fn conflicts(&self) -> Vec<Field> {
        self.fields
            .keys()
            .copied()
            .filter(|f| {
                let shown = self.shown_siblings(*f);
                shown.windows(2).any(|w| w[0].value != w[1].value)
            })
            .collect()
    }

    /// The record's fields as (name, register), sorted by name (not by the enum's order).
    fn fields_by_name(&self) -> Vec<(&'static str, &Register<Value>)> {
        let mut by_name: Vec<(&'static str, &Register<Value>)> =
            self.fields.iter().map(|(f, r)| (f.code(), r)).collect();
        by_name.sort_by(|a, b| a.0.cmp(b.0));
        by_name
    }

    /// Write the canonical export form, the input of every digest: compact JSON
    /// `{"fields":{NAME:[SIBLING,…],…},"id":…,"kind":…,"scope":…}` with fields sorted by name,
    /// each field's siblings in register order (HLC, device) as
    /// `{"counter":…,"device":…,"hlc":…,"value":…}`. Every key is in byte order.
    ///
    /// The structure is written here, so no serde_json feature (`preserve_order`) can reorder
    /// keys; each string and number is written by serde_json, so escaping is exactly its compact
    /// output's. Every replica that holds the same state produces the same bytes.
    pub fn write_canonical_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(b"{\"fields\":{")?;
        for (i, (name, reg)) in self.fields_by_name().into_iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write_json_scalar(out, name)?;
            out.write_all(b":[")?;
            for (j, sibling) in reg.siblings().iter().enumerate() {
                if j > 0 {
                    out.write_all(b",")?;
                }
                write_canonical_sibling(out, sibling)?;
            }
            out.write_all(b"]")?;
        }
        out.write_all(b"},\"id\":")?;
        write_json_scalar(out, &self.id.to_string())?;
        out.write_all(b",\"kind\":")?;
        write_json_scalar(out, self.kind.code())?;
        out.write_all(b",\"scope\":")?;
        write_json_scalar(out, &self.scope.key())?;
        out.write_all(b"}")
    }

    /// The canonical form as a JSON value, for comparing and showing records (the simulation's
    /// diagnostics, the benchmarks' sizes). Parsing `write_canonical_json`'s bytes gives this
    /// value; printing it may order keys otherwise (serde_json's `preserve_order`), so the
    /// export and digests never go through it.
    pub fn canonical_json(&self) -> serde_json::Value {
        let mut fields = serde_json::Map::new();
        for (name, reg) in self.fields_by_name() {
            let sibs: Vec<serde_json::Value> = reg
                .siblings()
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "hlc": s.hlc.0,
                        "device": s.dot.actor,
                        "counter": s.dot.counter,
                        "value": s.value.to_json(),
                    })
                })
                .collect();
            fields.insert(name.to_owned(), serde_json::Value::Array(sibs));
        }
        serde_json::json!({
            "id": self.id.to_string(),
            "kind": self.kind.code(),
            "scope": self.scope.key(),
            "fields": fields,
        })
    }
}

/// One sibling of the canonical form, keys in byte order.
fn write_canonical_sibling(
    out: &mut dyn std::io::Write,
    sibling: &Sibling<Value>,
) -> std::io::Result<()> {
    out.write_all(b"{\"counter\":")?;
    write_json_scalar(out, &sibling.dot.counter)?;
    out.write_all(b",\"device\":")?;
    write_json_scalar(out, &sibling.dot.actor)?;
    out.write_all(b",\"hlc\":")?;
    write_json_scalar(out, &sibling.hlc.0)?;
    out.write_all(b",\"value\":")?;
    write_json_scalar(out, &sibling.value.to_json())?;
    out.write_all(b"}")
}

/// A string, number, boolean or null, as serde_json's compact output writes it (a scalar has no
/// keys, so no serde_json feature changes its bytes).
fn write_json_scalar<T: Serialize + ?Sized>(
    out: &mut dyn std::io::Write,
    value: &T,
) -> std::io::Result<()> {
    serde_json::to_writer(out, value).map_err(std::io::Error::from)
}
