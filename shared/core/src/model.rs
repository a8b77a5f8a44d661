//! The domain model: record kinds, their fields, field values, the coded lists (statuses,
//! locations…) and validation with errors that name the field and the allowed values.
//!
//! Records are sets of field registers (see `register`); this module says which fields a kind
//! has, what each may hold, and the domain guards (forward-only appointment status). It does no
//! storage and no I/O.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::WallMs;
use crate::limits::{
    ADDRESS_BYTES_MAX, ADMIN_ID_BYTES_MAX, APPOINTMENT_FUTURE_DAYS_MAX, APPOINTMENT_PAST_DAYS_MAX,
    ATTENDEES_MAX, DURATION_MINUTES_MAX, EVERY_WEEKS_MAX, LABEL_BYTES_MAX, NOTE_BYTES_MAX,
};
use crate::refdata::RefData;
use crate::register::Sibling;
use crate::time::paris_date;

/// A validation failure. Each names the field and, where there is a list, the allowed values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A code not in its list.
    #[error("{field}: '{value}' is not allowed; allowed values: {allowed}")]
    NotInList {
        /// The field.
        field: &'static str,
        /// What was given.
        value: String,
        /// The allowed values, comma-separated.
        allowed: String,
    },
    /// An INSEE code not in the shipped commune list.
    #[error("{field}: unknown commune code '{value}' (expected a 5-character INSEE code such as 80021 for Amiens)")]
    UnknownCommune {
        /// The field.
        field: &'static str,
        /// What was given.
        value: String,
    },
    /// A département code not in the shipped list.
    #[error(
        "{field}: unknown territory '{value}' (expected a département code such as 80, 2A or 971)"
    )]
    UnknownTerritory {
        /// The field.
        field: &'static str,
        /// What was given.
        value: String,
    },
    /// A partner that is unknown or not valid on the date.
    #[error("{field}: partner '{value}' is not valid on {day}; allowed values: {allowed}")]
    PartnerNotValid {
        /// The field.
        field: &'static str,
        /// What was given.
        value: String,
        /// The day checked.
        day: NaiveDate,
        /// Partners valid that day.
        allowed: String,
    },
    /// A duration outside 1..=12 h.
    #[error("{field}: {minutes} min is not a valid duration; allowed: 1 to {max} minutes")]
    Duration {
        /// The field.
        field: &'static str,
        /// What was given.
        minutes: i64,
        /// The upper bound.
        max: i64,
    },
    /// A time outside the range an appointment can sensibly have.
    #[error("{field}: {value} is outside the allowed range {from} .. {to}")]
    TimeOutOfRange {
        /// The field.
        field: &'static str,
        /// What was given.
        value: String,
        /// First allowed day.
        from: NaiveDate,
        /// Last allowed day.
        to: NaiveDate,
    },
    /// A time or date that does not parse.
    /// A merge of a person with itself (or with a record already merged into it).
    #[error("person merge : ces deux fiches désignent déjà la même personne ({id})")]
    SamePerson {
        /// The person both ids stand for.
        id: uuid::Uuid,
    },
    #[error("{field}: '{value}' is not a valid {expected}")]
    BadFormat {
        /// The field.
        field: &'static str,
        /// What was given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A local time of the autumn hour that repeats, given without its offset
    /// (`TimeError::Ambiguous`, whose message asks for the offset).
    #[error(transparent)]
    AmbiguousTime(crate::time::TimeError),
    /// A passage's actual time on another day than the passage's (Paris dates).
    #[error("{field} : {value} n'est pas le jour du passage ({date}) ; les heures réelles d'un passage sont celles de son jour, à l'heure de Paris")]
    ActualOffDate {
        /// The field.
        field: &'static str,
        /// What was given, as Paris local time.
        value: String,
        /// The passage's date.
        date: NaiveDate,
    },
    /// A passage's actual end not after its actual start.
    #[error("actual-end : la fin réelle ({end}) doit venir après le début réel ({start})")]
    ActualEndNotAfterStart {
        /// The actual start, Paris local time.
        start: String,
        /// The actual end, Paris local time.
        end: String,
    },
    /// A text longer than its limit.
    #[error("{field}: {len} bytes is longer than the {max}-byte limit")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A text holding a character that could forge a line or reorder what people see.
    #[error("{field} : caractère interdit U+{code:04X} ({what}) en position {position} ; retirez retours à la ligne, tabulations, caractères de contrôle et marques de direction")]
    ForbiddenChar {
        /// The field.
        field: &'static str,
        /// The character's code point.
        code: u32,
        /// What it is, in words.
        what: &'static str,
        /// Its position in the text, in characters from 1.
        position: usize,
    },
    /// A text that must not be empty.
    #[error("{field}: must not be empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A field the record kind does not have.
    #[error("{kind} has no field '{field}'; fields: {allowed}")]
    NoSuchField {
        /// The record kind.
        kind: Kind,
        /// What was given.
        field: String,
        /// The kind's fields.
        allowed: String,
    },
    /// A value of the wrong type for the field.
    #[error("{kind}.{field}: expected {expected}")]
    WrongType {
        /// The record kind.
        kind: Kind,
        /// The field.
        field: Field,
        /// The expected type.
        expected: &'static str,
    },
    /// An appointment outcome may not go back to `unknown`.
    #[error("status: '{from}' is a recorded outcome and cannot go back to 'unknown' (outcomes: seen, excused, revoked, noshow)")]
    StatusBackwards {
        /// The current outcome.
        from: String,
    },
}

impl From<crate::time::TimeError> for ModelError {
    fn from(e: crate::time::TimeError) -> Self {
        match e {
            crate::time::TimeError::Bad {
                field,
                value,
                expected,
            } => ModelError::BadFormat {
                field,
                value,
                expected,
            },
            e @ crate::time::TimeError::Ambiguous { .. } => ModelError::AmbiguousTime(e),
        }
    }
}

/// Generates an enum of French codes with `code()`, `parse()` and the list of codes.
macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident, $field:literal { $($(#[$vm:meta])* $variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The persisted (French) code.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
            /// Parse a code, or say which codes are allowed.
            pub fn parse(s: &str) -> Result<Self, ModelError> {
                match s {
                    $($code => Ok($name::$variant),)+
                    _ => Err(ModelError::NotInList {
                        field: $field,
                        value: s.to_owned(),
                        allowed: Self::allowed(),
                    }),
                }
            }
            /// The allowed codes, comma-separated.
            pub fn allowed() -> String {
                [$($code),+].join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

code_enum!(
    /// Kinds of replicated record.
    Kind, "kind" {
        /// Arrêt: a place where a bus stops.
        Stop => "stop",
        /// Tournée: a unit's recurring plan of stops.
        Round => "round",
        /// One dated visit of a round to a stop.
        Passage => "passage",
        /// Usager (minimised personal data).
        Citizen => "citizen",
        /// Rendez-vous.
        Appointment => "appointment",
        /// Demande.
        Request => "request",
        /// Accueil sans rendez-vous: a walk-in at a passage, a phone call or a home visit
        /// recorded without an appointment; with a person or anonymous.
        Visit => "visit",
        /// Atelier collectif: a group session at a passage (a theme, a number of attendees,
        /// no names).
        Workshop => "workshop",
    }
);

code_enum!(
    /// Appointment status (RDV Service Public values).
    AppointmentStatus, "status" {
        /// Not yet known.
        Unknown => "unknown",
        /// The person came.
        Seen => "seen",
        /// Excused absence.
        Excused => "excused",
        /// Cancelled by the service.
        Revoked => "revoked",
        /// The person did not come.
        NoShow => "noshow",
    }
);

code_enum!(
    /// Where an appointment takes place.
    Location, "location" {
        /// At a bus stop.
        Stop => "arret",
        /// At the person's home.
        Home => "domicile",
        /// By phone.
        Phone => "telephone",
    }
);

code_enum!(
    /// Passage status.
    PassageStatus, "status" {
        /// Planned.
        Planned => "planifie",
        /// Held.
        Held => "effectue",
        /// Cancelled.
        Cancelled => "annule",
    }
);

code_enum!(
    /// Why a passage was cancelled.
    CancelCause, "cause" {
        /// Vehicle breakdown.
        Breakdown => "panne",
        /// Weather.
        Weather => "meteo",
        /// Staff absence.
        StaffAbsent => "absence_conseiller",
        /// Other.
        Other => "autre",
    }
);

code_enum!(
    /// Depth of the help given for a request.
    Level, "level" {
        /// Information.
        Information => "information",
        /// Accompaniment through the procedure.
        Support => "accompagnement",
        /// Referral.
        Referral => "orientation",
    }
);

code_enum!(
    /// How a request ended.
    Outcome, "outcome" {
        /// Resolved on the spot.
        Resolved => "resolue_sur_place",
        /// Referred to the operator.
        Referred => "orientee_operateur",
        /// Waiting for the operator.
        Waiting => "en_attente_operateur",
        /// Not resolved.
        Unresolved => "non_resolue",
    }
);

code_enum!(
    /// Kind of mobile unit.
    UnitKind, "kind" {
        /// A bus touring communes.
        Bus => "bus",
        /// A home-visit team.
        Home => "domicile",
    }
);

code_enum!(
    /// A field of a record. One list for all kinds; each kind allows a subset.
    Field, "field" {
        /// Tombstone: true once the record is deleted.
        Deleted => "deleted",
        /// INSEE code of a commune.
        Commune => "commune",
        /// Short label of a stop.
        Label => "label",
        /// Postal address.
        Address => "address",
        /// A name (round, citizen).
        Name => "name",
        /// A round's stops: `STOP_ID@WEEKDAY@HH:MM-HH:MM` entries separated by `;`.
        Stops => "stops",
        /// A round's recurrence, in weeks.
        EveryWeeks => "every_weeks",
        /// First day of validity.
        ValidFrom => "valid_from",
        /// Last day of validity.
        ValidTo => "valid_to",
        /// The round a passage belongs to.
        Round => "round",
        /// The stop of a passage.
        Stop => "stop",
        /// A calendar day (`YYYY-MM-DD`).
        Date => "date",
        /// Planned start (Unix seconds).
        PlannedStart => "planned_start",
        /// Planned end (Unix seconds).
        PlannedEnd => "planned_end",
        /// Actual start (Unix seconds).
        ActualStart => "actual_start",
        /// Actual end (Unix seconds).
        ActualEnd => "actual_end",
        /// Status code (meaning depends on the kind).
        Status => "status",
        /// Cancellation cause.
        Cause => "cause",
        /// Phone number.
        Phone => "phone",
        /// Birth year.
        BirthYear => "birth_year",
        /// The passage an appointment or request belongs to.
        Passage => "passage",
        /// The citizen of an appointment.
        Citizen => "citizen",
        /// Where an appointment takes place.
        Location => "location",
        /// Start time (Unix seconds).
        Start => "start",
        /// Duration in minutes.
        Duration => "duration",
        /// Free-text note.
        Note => "note",
        /// The appointment a request belongs to.
        Appointment => "appointment",
        /// Partner code.
        Partner => "partner",
        /// Theme code.
        Theme => "theme",
        /// Request level.
        Level => "level",
        /// Request outcome.
        Outcome => "outcome",
        /// The person record this one was merged into (a duplicate created offline).
        MergedInto => "merged_into",
        /// The walk-in a request was made at.
        Visit => "visit",
        /// How many people attended a collective session.
        Attendees => "attendees",
        /// The date a passage was planned on before the scheduler moved it (a moved passage
        /// is the scheduler's choice: regenerating the round leaves it where it is).
        MovedFrom => "moved_from",
        /// The partners present at a passage (a permanence: CAF or France Travail advisers on
        /// board that day), their codes separated by commas; null or empty: none named.
        Partners => "partners",
    }
);

impl Field {
    /// A time: Unix seconds, typed and shown as a time of day in Europe/Paris.
    pub fn is_time(self) -> bool {
        matches!(
            self,
            Field::Start
                | Field::PlannedStart
                | Field::PlannedEnd
                | Field::ActualStart
                | Field::ActualEnd
        )
    }
}

impl Kind {
    /// The fields every creation of this kind sets (the actions and the scheduler write them
    /// together): a record lacking one is partial. The server creates a record a device sends
    /// only from a batch whose accepted changes set them all.
    pub fn created_with(self) -> &'static [Field] {
        use Field as F;
        match self {
            Kind::Stop => &[F::Commune, F::Label],
            Kind::Round => &[F::Name, F::Stops, F::EveryWeeks, F::ValidFrom],
            Kind::Passage => &[
                F::Round,
                F::Stop,
                F::Date,
                F::PlannedStart,
                F::PlannedEnd,
                F::Status,
            ],
            Kind::Citizen => &[F::Name],
            Kind::Appointment => &[F::Location, F::Commune, F::Start, F::Duration, F::Status],
            Kind::Request => &[F::Partner, F::Theme, F::Level, F::Outcome],
            Kind::Visit => &[F::Location, F::Commune, F::Start],
            Kind::Workshop => &[F::Passage, F::Theme, F::Attendees],
        }
    }

    /// Fields of which every creation of this kind sets at least one (a request's parent).
    pub fn created_with_one_of(self) -> &'static [Field] {
        match self {
            Kind::Request => &[Field::Appointment, Field::Passage, Field::Visit],
            _ => &[],
        }
    }

    /// True when `record` holds every field its kind is created with: not a partial record.
    pub fn is_whole(self, record: &crate::record::Record) -> bool {
        let one_of = self.created_with_one_of();
        self.created_with()
            .iter()
            .all(|f| record.value(*f).is_some())
            && (one_of.is_empty() || one_of.iter().any(|f| record.value(*f).is_some()))
    }

    /// The fields this kind of record has.
    pub fn fields(self) -> &'static [Field] {
        use Field as F;
        match self {
            Kind::Stop => &[F::Deleted, F::Commune, F::Label, F::Address],
            Kind::Round => &[
                F::Deleted,
                F::Name,
                F::Stops,
                F::EveryWeeks,
                F::ValidFrom,
                F::ValidTo,
            ],
            Kind::Passage => &[
                F::Deleted,
                F::Round,
                F::Stop,
                F::Date,
                F::PlannedStart,
                F::PlannedEnd,
                F::ActualStart,
                F::ActualEnd,
                F::Status,
                F::Cause,
                F::MovedFrom,
                F::Partners,
            ],
            Kind::Citizen => &[
                F::Deleted,
                F::Name,
                F::Phone,
                F::BirthYear,
                F::Commune,
                F::Address,
                F::MergedInto,
            ],
            Kind::Appointment => &[
                F::Deleted,
                F::Passage,
                F::Citizen,
                F::Location,
                F::Commune,
                F::Start,
                F::Duration,
                F::Status,
                F::Note,
            ],
            Kind::Request => &[
                F::Deleted,
                F::Appointment,
                F::Passage,
                F::Partner,
                F::Theme,
                F::Level,
                F::Outcome,
                F::Duration,
                F::Visit,
            ],
            Kind::Visit => &[
                F::Deleted,
                F::Passage,
                F::Citizen,
                F::Location,
                F::Commune,
                F::Start,
                F::Note,
            ],
            Kind::Workshop => &[F::Deleted, F::Passage, F::Theme, F::Attendees, F::Duration],
        }
    }

    /// Check that `field` belongs to this kind.
    pub fn check_field(self, field: Field) -> Result<(), ModelError> {
        if self.fields().contains(&field) {
            Ok(())
        } else {
            Err(self.no_such_field(field.code()))
        }
    }

    /// Parse a field name of this kind.
    pub fn parse_field(self, name: &str) -> Result<Field, ModelError> {
        match Field::parse(name) {
            Ok(f) if self.fields().contains(&f) => Ok(f),
            _ => Err(self.no_such_field(name)),
        }
    }

    fn no_such_field(self, name: &str) -> ModelError {
        ModelError::NoSuchField {
            kind: self,
            field: name.to_owned(),
            allowed: self
                .fields()
                .iter()
                .map(|f| f.code())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// The scope of a record, fixed at creation: which devices receive it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Records of one unit (appointments, requests, citizens, rounds, passages).
    Unit(String),
    /// Records of a whole territory (stops).
    Territory(String),
}

impl Scope {
    /// `unit:ID` or `territory:CODE`, as stored and exported.
    pub fn key(&self) -> String {
        match self {
            Scope::Unit(u) => format!("unit:{u}"),
            Scope::Territory(t) => format!("territory:{t}"),
        }
    }
    /// Parse `key()`'s form back.
    pub fn from_key(s: &str) -> Option<Self> {
        if let Some(u) = s.strip_prefix("unit:") {
            Some(Scope::Unit(u.to_owned()))
        } else {
            s.strip_prefix("territory:")
                .map(|t| Scope::Territory(t.to_owned()))
        }
    }
}

/// A field's value, as replicated and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// Unset (a cleared optional field).
    Null,
    /// A flag (the tombstone).
    Bool(bool),
    /// A number: minutes, Unix seconds, a year, a week count.
    Int(i64),
    /// A code, a date `YYYY-MM-DD`, or free text.
    Text(String),
    /// A reference to another record.
    Id(Uuid),
}

impl Value {
    /// The text, if this is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
    /// The number, if this is a number.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    /// The id, if this is a reference.
    pub fn as_id(&self) -> Option<Uuid> {
        match self {
            Value::Id(u) => Some(*u),
            _ => None,
        }
    }
    /// The flag, if this is a flag.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The value as JSON for exports: ids and texts as strings, numbers as numbers.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Text(s) => serde_json::Value::String(s.clone()),
            Value::Id(u) => serde_json::Value::String(u.to_string()),
        }
    }
}

/// Context that validation of time-bound values needs.
#[derive(Debug, Clone, Copy)]
pub struct ValidationCtx {
    /// The validator's wall time.
    pub now: WallMs,
}

/// Characters no text of Tournée may hold: C0 and C1 controls (CR, LF, tab, ESC and the
/// terminal sequences it starts, DEL), the Unicode line and paragraph separators, and the
/// bidirectional marks, embeddings, overrides and isolates. Each can forge a line of a table
/// or a log, or show people text in another order than it is stored.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn forbidden_char_name(c: char) -> &'static str {
    match c {
        '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => "retour à la ligne",
        '\t' => "tabulation",
        '\u{1b}' => "échappement",
        c if c.is_control() => "caractère de contrôle",
        _ => "marque de direction",
    }
}

/// Refuse a text holding a forbidden character (`is_forbidden_char`), naming it and where it is.
pub fn check_text_chars(field: &'static str, s: &str) -> Result<(), ModelError> {
    match s.chars().enumerate().find(|(_, c)| is_forbidden_char(*c)) {
        None => Ok(()),
        Some((i, c)) => Err(ModelError::ForbiddenChar {
            field,
            code: u32::from(c),
            what: forbidden_char_name(c),
            position: i + 1,
        }),
    }
}

/// Check a short text typed by an administrator (a unit or device name): not blank, at most
/// `max` bytes, no forbidden character.
pub fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), ModelError> {
    if s.trim().is_empty() {
        return Err(ModelError::Empty { field });
    }
    if s.len() > max {
        return Err(ModelError::TooLong {
            field,
            len: s.len(),
            max,
        });
    }
    check_text_chars(field, s)
}

fn check_len(field: Field, s: &str, max: usize) -> Result<(), ModelError> {
    if s.len() > max {
        return Err(ModelError::TooLong {
            field: field.code(),
            len: s.len(),
            max,
        });
    }
    check_text_chars(field.code(), s)
}

fn check_nonempty(field: Field, s: &str, max: usize) -> Result<(), ModelError> {
    if s.trim().is_empty() {
        return Err(ModelError::Empty {
            field: field.code(),
        });
    }
    check_len(field, s, max)
}

/// Check an INSEE commune code against the shipped list.
pub fn check_commune(field: &'static str, code: &str) -> Result<(), ModelError> {
    if RefData::get().commune(code).is_some() {
        Ok(())
    } else {
        Err(ModelError::UnknownCommune {
            field,
            value: code.to_owned(),
        })
    }
}

/// Check a territory (département) code against the shipped list.
pub fn check_territory(field: &'static str, code: &str) -> Result<(), ModelError> {
    if RefData::get().departement(code).is_some() {
        Ok(())
    } else {
        Err(ModelError::UnknownTerritory {
            field,
            value: code.to_owned(),
        })
    }
}

/// Check an administrator-chosen identifier (unit id): short, no spaces or control characters.
pub fn check_admin_id(field: &'static str, id: &str) -> Result<(), ModelError> {
    let ok = !id.is_empty()
        && id.len() <= ADMIN_ID_BYTES_MAX
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ModelError::BadFormat {
            field,
            value: id.to_owned(),
            expected: "identifier (1 to 64 of A-Z a-z 0-9 - _ .)",
        })
    }
}

/// Check a duration in minutes: 1 to 12 hours.
pub fn check_duration(field: &'static str, minutes: i64) -> Result<(), ModelError> {
    if (1..=DURATION_MINUTES_MAX).contains(&minutes) {
        Ok(())
    } else {
        Err(ModelError::Duration {
            field,
            minutes,
            max: DURATION_MINUTES_MAX,
        })
    }
}

/// Check an appointment start (Unix seconds) against the sensible range around `now`.
pub fn check_appointment_start(
    field: &'static str,
    start: i64,
    now: WallMs,
) -> Result<(), ModelError> {
    let now_s = i64::try_from(now / 1000).unwrap_or(i64::MAX);
    let from = now_s - APPOINTMENT_PAST_DAYS_MAX * 86_400;
    let to = now_s + APPOINTMENT_FUTURE_DAYS_MAX * 86_400;
    if (from..=to).contains(&start) {
        return Ok(());
    }
    let day = |s: i64| paris_date(s).unwrap_or(NaiveDate::MIN);
    let shown = DateTime::<Utc>::from_timestamp(start, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_else(|| start.to_string());
    Err(ModelError::TimeOutOfRange {
        field,
        value: shown,
        from: day(from),
        to: day(to),
    })
}

/// Check a partner code, valid on `day`.
pub fn check_partner(code: &str, day: NaiveDate) -> Result<(), ModelError> {
    let refdata = RefData::get();
    match refdata.partner(code) {
        Some(p) if p.valid_on(day) => Ok(()),
        _ => {
            let allowed = refdata
                .partners()
                .iter()
                .filter(|p| p.valid_on(day))
                .map(|p| p.code.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            Err(ModelError::PartnerNotValid {
                field: "partner",
                value: code.to_owned(),
                day,
                allowed,
            })
        }
    }
}

/// The partner codes of a passage's `partners` field, each known, at most
/// `PASSAGE_PARTNERS_MAX`, in the order written.
pub fn partner_codes(s: &str) -> Result<Vec<&str>, ModelError> {
    let codes: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if codes.len() > crate::limits::PASSAGE_PARTNERS_MAX {
        return Err(ModelError::BadFormat {
            field: "partners",
            value: s.to_owned(),
            expected: "at most 8 partner codes",
        });
    }
    for c in &codes {
        check_partner_known(c)?;
    }
    Ok(codes)
}

/// Check a partner code exists, whatever its validity dates (for changes made elsewhere).
pub fn check_partner_known(code: &str) -> Result<(), ModelError> {
    check_partner(code, NaiveDate::MAX).or_else(|e| match RefData::get().partner(code) {
        Some(_) => Ok(()),
        None => Err(e),
    })
}

/// Check a theme code.
pub fn check_theme(code: &str) -> Result<(), ModelError> {
    let refdata = RefData::get();
    if refdata.theme(code).is_some() {
        return Ok(());
    }
    Err(ModelError::NotInList {
        field: "theme",
        value: code.to_owned(),
        allowed: refdata
            .themes()
            .iter()
            .map(|t| t.code.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn parse_day(field: Field, s: &str) -> Result<NaiveDate, ModelError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| ModelError::BadFormat {
        field: field.code(),
        value: s.to_owned(),
        expected: "date YYYY-MM-DD",
    })
}

/// What an `every_weeks` value must be, in words (a `&'static str` for `ModelError`; the
/// assertion keeps it in step with `EVERY_WEEKS_MAX`).
const EVERY_WEEKS_EXPECTED: &str = "number of weeks from 1 to 52";
const _: () = assert!(EVERY_WEEKS_MAX == 52);

/// What an `attendees` value must be, in words (kept in step with `ATTENDEES_MAX`).
const ATTENDEES_EXPECTED: &str = "number of attendees from 1 to 500";
const _: () = assert!(ATTENDEES_MAX == 500);

/// Check a count from 1 to `max` (weeks of a recurrence, attendees), `expected` saying so.
fn check_count(field: Field, n: i64, max: u32, expected: &'static str) -> Result<(), ModelError> {
    if (1..=i64::from(max)).contains(&n) {
        Ok(())
    } else {
        Err(ModelError::BadFormat {
            field: field.code(),
            value: n.to_string(),
            expected,
        })
    }
}

/// Check one field value of a record kind: type, list membership, ranges, lengths.
///
/// Time-relative checks (an appointment start near `now`) apply to local user input only; a
/// change arriving from a peer was checked where it was made, so `ctx` is `None` for it.
pub fn check_value(
    kind: Kind,
    field: Field,
    value: &Value,
    ctx: Option<ValidationCtx>,
) -> Result<(), ModelError> {
    use Field as F;
    kind.check_field(field)?;
    let wrong = |expected| ModelError::WrongType {
        kind,
        field,
        expected,
    };
    let text = || value.as_text().ok_or_else(|| wrong("text"));
    let int = || value.as_int().ok_or_else(|| wrong("number"));
    let id_or_null = || match value {
        Value::Id(_) | Value::Null => Ok(()),
        _ => Err(wrong("record id or null")),
    };
    let int_or_null = || match value {
        Value::Int(_) | Value::Null => Ok(()),
        _ => Err(wrong("number or null")),
    };
    match (kind, field) {
        (_, F::Deleted) => value
            .as_bool()
            .map(|_| ())
            .ok_or_else(|| wrong("true/false")),
        (_, F::Commune) => check_commune("commune", text()?),
        (_, F::Label) => check_nonempty(field, text()?, LABEL_BYTES_MAX),
        (_, F::Name) => check_nonempty(field, text()?, LABEL_BYTES_MAX),
        (_, F::Address) | (_, F::Phone) => match value {
            Value::Null => Ok(()),
            _ => check_len(field, text()?, ADDRESS_BYTES_MAX),
        },
        (_, F::Note) => check_len(field, text()?, NOTE_BYTES_MAX),
        (_, F::Partners) => match value {
            Value::Null => Ok(()),
            _ => partner_codes(text()?).map(|_| ()),
        },
        (_, F::Stops) => crate::schedule::check_stops_field(text()?),
        (_, F::EveryWeeks) => check_count(field, int()?, EVERY_WEEKS_MAX, EVERY_WEEKS_EXPECTED),
        (_, F::ValidFrom) | (_, F::Date) => parse_day(field, text()?).map(|_| ()),
        (_, F::ValidTo) | (_, F::MovedFrom) => match value {
            Value::Null => Ok(()),
            _ => parse_day(field, text()?).map(|_| ()),
        },
        (_, F::Round)
        | (_, F::Stop)
        | (_, F::Citizen)
        | (_, F::Appointment)
        | (_, F::Passage)
        | (_, F::Visit)
        | (_, F::MergedInto) => id_or_null(),
        (_, F::Attendees) => check_count(field, int()?, ATTENDEES_MAX, ATTENDEES_EXPECTED),
        (_, F::PlannedStart) | (_, F::PlannedEnd) => int().map(|_| ()),
        (_, F::ActualStart) | (_, F::ActualEnd) | (_, F::BirthYear) => int_or_null(),
        (Kind::Passage, F::Status) => PassageStatus::parse(text()?).map(|_| ()),
        (Kind::Appointment, F::Status) => AppointmentStatus::parse(text()?).map(|_| ()),
        (_, F::Cause) => match value {
            Value::Null => Ok(()),
            _ => CancelCause::parse(text()?).map(|_| ()),
        },
        (_, F::Location) => Location::parse(text()?).map(|_| ()),
        (_, F::Start) => {
            let s = int()?;
            match ctx {
                Some(c) => check_appointment_start("start", s, c.now),
                None => Ok(()),
            }
        }
        (_, F::Duration) => check_duration("duration", int()?),
        (_, F::Partner) => {
            let code = text()?;
            match ctx.and_then(|c| paris_date(i64::try_from(c.now / 1000).unwrap_or(0))) {
                Some(day) => check_partner(code, day),
                None => check_partner_known(code),
            }
        }
        (_, F::Theme) => check_theme(text()?),
        (_, F::Level) => Level::parse(text()?).map(|_| ()),
        (_, F::Outcome) => Outcome::parse(text()?).map(|_| ()),
        (_, F::Status) => Err(wrong("a status of this kind")),
    }
}

/// The forward-only status guard, as a view over a status register's siblings: once any sibling
/// holds an outcome, `unknown` siblings are not shown and do not count as a conflict.
///
/// Keeping this a view (rather than dropping values in merge) leaves merge a plain lattice join,
/// so every replica computes the same view from the same state.
pub fn guarded_status_siblings(siblings: &[Sibling<Value>]) -> Vec<&Sibling<Value>> {
    let unknown = Value::Text(AppointmentStatus::Unknown.code().to_owned());
    let any_outcome = siblings.iter().any(|s| s.value != unknown);
    siblings
        .iter()
        .filter(|s| !(any_outcome && s.value == unknown))
        .collect()
}

/// Refuse a local status change that would take a recorded outcome back to `unknown`.
pub fn check_status_forward(current: &[Sibling<Value>], new: &Value) -> Result<(), ModelError> {
    let unknown = Value::Text(AppointmentStatus::Unknown.code().to_owned());
    if *new != unknown {
        return Ok(());
    }
    match guarded_status_siblings(current).last() {
        Some(s) if s.value != unknown => Err(ModelError::StatusBackwards {
            from: s.value.as_text().unwrap_or_default().to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_passage_names_known_partners_only_and_not_too_many() {
        assert_eq!(
            partner_codes(" caf, france_travail ,").expect("known"),
            vec!["caf", "france_travail"]
        );
        assert!(
            partner_codes("caf,pole_emploi_1999").is_err(),
            "unknown code"
        );
        let many = ["caf"; crate::limits::PASSAGE_PARTNERS_MAX + 1].join(",");
        assert!(partner_codes(&many).is_err(), "too many");
        let check = |v: Value| check_value(Kind::Passage, Field::Partners, &v, None);
        assert!(check(Value::Null).is_ok(), "none named");
        assert!(check(Value::Text("caf,msa".into())).is_ok());
        assert!(check(Value::Text("inconnu".into())).is_err());
    }
    use super::*;

    #[test]
    fn a_time_that_does_not_parse_is_a_bad_format_with_the_same_message() {
        let e = crate::time::parse_time("start", "23/11/2026 9h30").expect_err("malformed");
        let shown = e.to_string();
        let m = ModelError::from(e);
        assert!(
            matches!(&m, ModelError::BadFormat { field: "start", value, .. } if value == "23/11/2026 9h30"),
            "{m}"
        );
        assert_eq!(m.to_string(), shown);
    }

    #[test]
    fn code_lists_round_trip_and_name_the_allowed_values() {
        for s in AppointmentStatus::ALL {
            assert_eq!(AppointmentStatus::parse(s.code()), Ok(*s));
        }
        let err = AppointmentStatus::parse("vu")
            .expect_err("not a code")
            .to_string();
        assert!(err.contains("status"), "{err}");
        assert!(
            err.contains("unknown, seen, excused, revoked, noshow"),
            "{err}"
        );
    }

    #[test]
    fn every_kind_has_a_tombstone_and_parses_its_fields() {
        for kind in Kind::ALL {
            assert!(kind.fields().contains(&Field::Deleted));
            for f in kind.fields() {
                assert_eq!(kind.parse_field(f.code()), Ok(*f));
            }
        }
        let err = Kind::Appointment
            .parse_field("partner")
            .expect_err("not an appointment field");
        assert!(err.to_string().contains("start"));
    }

    #[test]
    fn validation_errors_name_field_and_allowed_values() {
        let ctx = Some(ValidationCtx {
            now: 1_780_000_000_000,
        });
        let e = check_value(
            Kind::Appointment,
            Field::Commune,
            &Value::Text("99999".into()),
            ctx,
        )
        .expect_err("unknown commune");
        assert!(e.to_string().contains("commune") && e.to_string().contains("99999"));
        let e = check_value(Kind::Appointment, Field::Duration, &Value::Int(0), ctx)
            .expect_err("zero duration");
        assert!(e.to_string().contains("1 to 720"));
        assert!(check_value(Kind::Appointment, Field::Duration, &Value::Int(721), ctx).is_err());
        assert!(check_value(Kind::Appointment, Field::Duration, &Value::Int(720), ctx).is_ok());
        let e = check_value(
            Kind::Request,
            Field::Partner,
            &Value::Text("urssaf".into()),
            ctx,
        )
        .expect_err("unknown partner");
        assert!(e.to_string().contains("caf"));
        let e = check_value(
            Kind::Request,
            Field::Theme,
            &Value::Text("sport".into()),
            ctx,
        )
        .expect_err("unknown theme");
        assert!(e.to_string().contains("logement"));
        let e = check_value(
            Kind::Appointment,
            Field::Status,
            &Value::Text("vu".into()),
            ctx,
        )
        .expect_err("bad status");
        assert!(e.to_string().contains("noshow"));
        let far = 1_780_000_000 + 3 * 366 * 86_400;
        let e = check_value(Kind::Appointment, Field::Start, &Value::Int(far), ctx)
            .expect_err("too far ahead");
        assert!(e.to_string().contains("start"));
        assert!(check_value(Kind::Appointment, Field::Start, &Value::Int(far), None).is_ok());
    }

    #[test]
    fn texts_with_controls_escapes_or_bidi_overrides_are_refused_wherever_they_come_from() {
        for (kind, field) in [
            (Kind::Appointment, Field::Note),
            (Kind::Citizen, Field::Name),
            (Kind::Stop, Field::Label),
            (Kind::Stop, Field::Address),
        ] {
            for bad in [
                "a\nb",
                "a\rb",
                "a\tb",
                "\u{1b}[31m",
                "x\u{202E}y",
                "x\u{2066}y",
                "a\u{0}",
            ] {
                let e = check_value(kind, field, &Value::Text(bad.into()), None).expect_err(bad);
                assert!(
                    matches!(e, ModelError::ForbiddenChar { .. }),
                    "{bad:?}: {e}"
                );
                assert!(e.to_string().contains("caractère interdit"), "{e}");
            }
            check_value(
                kind,
                field,
                &Value::Text("Éclusier-Vaux, l'église".into()),
                None,
            )
            .expect("accents and punctuation are fine");
        }
        let e = check_text("name", "pc\n2026 INFO", 64).expect_err("newline");
        assert_eq!(
            e.to_string(),
            "name : caractère interdit U+000A (retour à la ligne) en position 3 ; retirez retours \
             à la ligne, tabulations, caractères de contrôle et marques de direction"
        );
        assert!(matches!(
            check_text("name", "   ", 64),
            Err(ModelError::Empty { .. })
        ));
        assert!(matches!(
            check_text("name", &"a".repeat(65), 64),
            Err(ModelError::TooLong { .. })
        ));
    }

    #[test]
    fn status_guard_hides_unknown_beside_an_outcome() {
        use crdts::Dot;
        let sib = |actor, v: &str| Sibling {
            dot: Dot::new(actor, 1),
            hlc: crate::hlc::Hlc(u64::from(actor)),
            value: Value::Text(v.into()),
        };
        let both = [sib(1, "seen"), sib(2, "unknown")];
        let shown = guarded_status_siblings(&both);
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].value, Value::Text("seen".into()));
        assert!(check_status_forward(&both, &Value::Text("unknown".into())).is_err());
        assert!(check_status_forward(&both, &Value::Text("noshow".into())).is_ok());
        let fresh = [sib(1, "unknown")];
        assert!(check_status_forward(&fresh, &Value::Text("unknown".into())).is_ok());
    }
}
