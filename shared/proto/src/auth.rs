//! Authorization of one change from a device, on the server: kind and field a device may write,
//! the record's scope, the scope and kind of the record a reference names, the writer's
//! identity, the clock drift bound, and the domain guards.
//!
//! Pure function of (device, change, the record as the server holds it, the referenced record
//! as the server holds it, server time). It does not decide who the device is (the TLS layer
//! did that), nor look records up (the store hands them in, inside the flight's transaction).

use tournee_core::clock::WallMs;
use tournee_core::limits::HLC_FUTURE_DRIFT_MAX_MS;
use tournee_core::model::{check_value, AppointmentStatus, Field, Kind, Scope, Value};
use tournee_core::record::Record;
use tournee_core::register::Actor;
use tournee_core::store::Referenced;

use super::wire::RejectReason;
use tournee_core::record::Change;

/// What the server knows of an authenticated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuth {
    /// Actor number.
    pub actor: Actor,
    /// Its unit.
    pub unit: String,
    /// The unit's territory.
    pub territory: String,
}

impl DeviceAuth {
    /// The scopes the device receives: its unit's records and its territory's stops.
    pub fn scopes(&self) -> [Scope; 2] {
        [
            Scope::Unit(self.unit.clone()),
            Scope::Territory(self.territory.clone()),
        ]
    }
}

/// May a device write this field of this kind? Planning is the scheduler's; the unit's devices
/// record appointments, requests, citizens, walk-ins, collective sessions and the actuals of
/// passages.
pub fn device_may_write(kind: Kind, field: Field) -> bool {
    match kind {
        Kind::Appointment | Kind::Request | Kind::Citizen | Kind::Visit | Kind::Workshop => true,
        Kind::Passage => matches!(
            field,
            Field::ActualStart | Field::ActualEnd | Field::Status | Field::Cause
        ),
        Kind::Stop | Kind::Round => false,
    }
}

/// The kind a reference field names, if `field` is a reference.
fn referenced_kind(field: Field) -> Option<Kind> {
    match field {
        Field::Appointment => Some(Kind::Appointment),
        Field::Passage => Some(Kind::Passage),
        Field::Citizen | Field::MergedInto => Some(Kind::Citizen),
        Field::Visit => Some(Kind::Visit),
        Field::Stop => Some(Kind::Stop),
        Field::Round => Some(Kind::Round),
        _ => None,
    }
}

/// A reference must name a record the server holds (a device writes a record before the
/// ones naming it, in the same batch or an earlier one), that the device may see (its
/// unit's, or its territory's stops), of the kind its field says. A record the server does
/// not hold was refused or lost: naming it would leave a dangling reference.
fn check_reference(
    device: &DeviceAuth,
    field: Field,
    value: &Value,
    target: Option<&Referenced>,
) -> Result<(), RejectReason> {
    let Some(target) = target else {
        return match (value, referenced_kind(field)) {
            (Value::Id(id), Some(kind)) => Err(RejectReason::UnknownRecord {
                kind: kind.code().to_owned(),
                id: id.to_string(),
            }),
            _ => Ok(()),
        };
    };
    if !device.scopes().contains(&target.scope) {
        return Err(RejectReason::OutOfScope {
            scope: target.scope.key(),
        });
    }
    match referenced_kind(field) {
        Some(kind) if kind != target.kind => Err(RejectReason::invalid(format!(
            "{}: {} is a {}, not a {}",
            field.code(),
            target.id,
            target.kind.code(),
            kind.code()
        ))),
        _ => Ok(()),
    }
}

/// Decide whether the server takes `change` from `device`; `referenced` is the record its
/// value names, as the server holds it.
pub fn authorize(
    device: &DeviceAuth,
    change: &Change,
    existing: Option<&Record>,
    referenced: Option<&Referenced>,
    now: WallMs,
) -> Result<(), RejectReason> {
    if change.scope != Scope::Unit(device.unit.clone()) {
        return Err(RejectReason::OutOfScope {
            scope: change.scope.key(),
        });
    }
    if let Some(r) = existing {
        if r.scope != change.scope {
            return Err(RejectReason::OutOfScope {
                scope: r.scope.key(),
            });
        }
    }
    let not_allowed = || RejectReason::FieldNotAllowed {
        kind: change.kind.code().to_owned(),
        field: change.field.code().to_owned(),
    };
    if !device_may_write(change.kind, change.field) {
        return Err(not_allowed());
    }
    if change.kind == Kind::Passage && existing.is_none() {
        // Devices mark passages the scheduler planned; they do not create them. One the
        // server does not hold was lost (a restore) or never planned.
        return Err(RejectReason::UnknownRecord {
            kind: Kind::Passage.code().to_owned(),
            id: change.record.to_string(),
        });
    }
    check_reference(device, change.field, &change.write.value, referenced)?;
    if change.write.dot.actor != device.actor {
        return Err(RejectReason::ForeignDot {
            actor: change.write.dot.actor,
        });
    }
    let stamped = change.write.hlc.wall_ms();
    if stamped > now.saturating_add(HLC_FUTURE_DRIFT_MAX_MS) {
        return Err(RejectReason::ClockAhead {
            ahead_ms: stamped - now,
        });
    }
    let invalid = RejectReason::invalid;
    check_value(change.kind, change.field, &change.write.value, None)
        .map_err(|e| invalid(e.to_string()))?;
    if let Some(r) = existing {
        r.validate_change(change)
            .map_err(|e| invalid(e.to_string()))?;
        if change.kind == Kind::Appointment && change.field == Field::Status {
            let unknown = Value::Text(AppointmentStatus::Unknown.code().to_owned());
            let covers_outcome = r.register(Field::Status).is_some_and(|reg| {
                reg.siblings().iter().any(|s| {
                    s.value != unknown && change.write.ctx.get(&s.dot.actor) >= s.dot.counter
                })
            });
            if change.write.value == unknown && covers_outcome {
                return Err(invalid(
                    "status: a recorded outcome cannot go back to 'unknown'".into(),
                ));
            }
        }
    } else {
        Record::for_change(change).map_err(|e| invalid(e.to_string()))?;
    }
    Ok(())
}
