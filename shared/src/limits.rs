//! Every bound Tournée enforces, as a named constant with its unit last and a line saying why.
//!
//! This module holds numbers only; the code that enforces each bound lives where the input is read.
//! Relations between limits are checked at compile time below.

/// Longest free-text note on an appointment, in bytes. A note is a reminder, not a file.
pub const NOTE_BYTES_MAX: usize = 2_000;
/// Longest short text (a citizen's display name, a stop label, a unit name), in bytes.
pub const LABEL_BYTES_MAX: usize = 200;
/// Longest address, in bytes.
pub const ADDRESS_BYTES_MAX: usize = 300;
/// Longest identifier chosen by an administrator (unit id, territory code), in bytes.
pub const ADMIN_ID_BYTES_MAX: usize = 64;
/// Longest appointment or request, in minutes: a working day. Anything longer is a typo.
pub const DURATION_MINUTES_MAX: i64 = 12 * 60;
/// How far back an appointment may be recorded, in days: a year covers late data entry.
pub const APPOINTMENT_PAST_DAYS_MAX: i64 = 366;
/// How far ahead an appointment may be planned, in days: two years covers any real plan.
pub const APPOINTMENT_FUTURE_DAYS_MAX: i64 = 2 * 366;
/// Most concurrent values (siblings) one field may hold. Each device adds at most one per
/// concurrent edit; beyond this the field is refused rather than grown without bound.
pub const SIBLINGS_MAX: usize = 64;
/// Most actors in one field's causal context. Only the devices that wrote the field appear in it.
pub const FIELD_CLOCK_ACTORS_MAX: usize = 256;
/// How long a command waits for another process holding the store's write lock, in milliseconds.
pub const STORE_BUSY_WAIT_MS: u64 = 5_000;
/// How far a change's hybrid logical clock may run ahead of the receiver's wall clock, in
/// milliseconds (10 minutes). Further ahead is a misconfigured laptop clock.
pub const HLC_FUTURE_DRIFT_MAX_MS: u64 = 10 * 60 * 1_000;
/// Bits of a hybrid logical clock given to the logical counter (the rest is milliseconds).
pub const HLC_LOGICAL_BITS: u32 = 16;
/// Most changes written by one local user action (a new appointment with its citizen).
pub const LOCAL_ACTION_CHANGES_MAX: usize = 32;
/// Most changes applied in one remote batch transaction.
pub const APPLY_BATCH_CHANGES_MAX: usize = 4_096;
/// Most bytes of one encoded register state read back from the store.
pub const RECORD_STATE_BYTES_MAX: usize = 256 * 1024;

const _: () = assert!(LABEL_BYTES_MAX < NOTE_BYTES_MAX);
const _: () = assert!(HLC_LOGICAL_BITS < 32);
const _: () = assert!(LOCAL_ACTION_CHANGES_MAX <= APPLY_BATCH_CHANGES_MAX);
const _: () = assert!(DURATION_MINUTES_MAX > 0);
