//! Requests followed up and records taken back: `request set` (an outcome that changed, a
//! partner or theme corrected, minutes), `request delete`, `appointment cancel`, and the
//! tombstone every deletion writes.
//!
//! Validation of each value is the store's (`model::check_value` on every local write); here
//! only what needs the record: the partner valid on the request's day, nothing to change.

use super::{nothing_to_change, set_fields, text};
use crate::model::{AppointmentStatus, Field, Level, Outcome, Value};
use crate::record::Record;
use crate::store::{LocalAction, StoreError};

/// What `request set` changes; `Some(None)` clears the minutes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestUpdate {
    /// New outcome (`en_attente_operateur` → `resolue_sur_place`…).
    pub outcome: Option<Outcome>,
    /// New partner code.
    pub partner: Option<String>,
    /// New theme code.
    pub theme: Option<String>,
    /// New level.
    pub level: Option<Level>,
    /// New minutes, or cleared.
    pub minutes: Option<Option<i64>>,
}

/// Build the action that changes a request.
pub fn set_request(request: &Record, u: &RequestUpdate) -> Result<LocalAction, StoreError> {
    let mut sets = Vec::new();
    if let Some(o) = u.outcome {
        sets.push((Field::Outcome, text(o.code())));
    }
    if let Some(p) = &u.partner {
        sets.push((Field::Partner, text(p)));
    }
    if let Some(t) = &u.theme {
        sets.push((Field::Theme, text(t)));
    }
    if let Some(l) = u.level {
        sets.push((Field::Level, text(l.code())));
    }
    if let Some(m) = u.minutes {
        sets.push((Field::Duration, m.map_or(Value::Null, Value::Int)));
    }
    if sets.is_empty() {
        return Err(nothing_to_change(
            "--outcome, --partner, --theme, --level or --minutes",
        ));
    }
    Ok(set_fields(request, sets))
}

/// Build the action that deletes a record: its tombstone (kept, replicated, never undone by
/// an older write).
pub fn delete(record: &Record) -> LocalAction {
    set_fields(record, vec![(Field::Deleted, Value::Bool(true))])
}

/// Build the action that cancels an appointment: status `revoked` (cancelled by the service),
/// an outcome like any other, so the appointment stays in the history and the counts.
pub fn cancel_appointment(appointment: &Record) -> LocalAction {
    set_fields(
        appointment,
        vec![(Field::Status, text(AppointmentStatus::Revoked.code()))],
    )
}
