//! The device registry: units and enrolled devices (actor number, certificate fingerprint,
//! status), in its own SQLite file beside the replicated store; the console's accounts keep
//! their tables in the same file (`accounts`).
//!
//! Server-only administrative data: it is not replicated. Actor numbers are never reused
//! (AUTOINCREMENT), because a reused number would make a new laptop's writes look like an old
//! one's to every CRDT clock.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use tournee_core::limits::{DEVICE_NAME_BYTES_MAX, STORE_BUSY_WAIT_MS, UNIT_NAME_BYTES_MAX};
use tournee_core::model::{check_admin_id, check_territory, check_text, ModelError, UnitKind};
use tournee_core::register::Actor;
use tournee_store::migrate::{migrate, MigrationError};

/// Schema steps of the registry, in order (`tournee_store::migrate` numbers them).
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE units (
         id        TEXT PRIMARY KEY,
         name      TEXT NOT NULL,
         territory TEXT NOT NULL,
         kind      TEXT NOT NULL
     ) STRICT;
     CREATE TABLE devices (
         actor       INTEGER PRIMARY KEY AUTOINCREMENT,
         name        TEXT NOT NULL UNIQUE,
         unit        TEXT NOT NULL REFERENCES units(id),
         fingerprint TEXT NOT NULL UNIQUE,
         status      TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
         enrolled_ms INTEGER NOT NULL,
         revoked_ms  INTEGER
     ) STRICT;",
    // 2: the console's accounts (`accounts`): users, one-time sign-in links and sessions (as
    // SHA-256 digests), and the audit journal, which only grows.
    "CREATE TABLE users (
         id              INTEGER PRIMARY KEY AUTOINCREMENT,
         name            TEXT NOT NULL UNIQUE,
         role            TEXT NOT NULL CHECK (role IN ('admin', 'scheduler', 'supervisor')),
         territories     TEXT NOT NULL,
         password        TEXT,
         disabled        INTEGER NOT NULL DEFAULT 0,
         failed          INTEGER NOT NULL DEFAULT 0,
         locked_until_ms INTEGER NOT NULL DEFAULT 0,
         created_ms      INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE signin_links (
         token      TEXT PRIMARY KEY,
         user       INTEGER NOT NULL REFERENCES users(id),
         expires_ms INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE console_sessions (
         token      TEXT PRIMARY KEY,
         user       INTEGER NOT NULL REFERENCES users(id),
         expires_ms INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE audit (
         seq       INTEGER PRIMARY KEY AUTOINCREMENT,
         at_ms     INTEGER NOT NULL,
         who       TEXT NOT NULL,
         action    TEXT NOT NULL,
         territory TEXT,
         detail    TEXT NOT NULL
     ) STRICT;
     CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
         BEGIN SELECT RAISE(ABORT, 'the audit journal is append-only'); END;
     CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
         BEGIN SELECT RAISE(ABORT, 'the audit journal is append-only'); END;",
    // 3: the scheduler's exceptions to the legal public holidays (`holidays`): a day closed
    // (with its name) or a legal holiday worked, per territory.
    "CREATE TABLE holiday_exceptions (
         territory TEXT NOT NULL,
         date      TEXT NOT NULL,
         closed    INTEGER NOT NULL CHECK (closed IN (0, 1)),
         label     TEXT NOT NULL,
         PRIMARY KEY (territory, date)
     ) STRICT;",
    // 4: what each laptop said at its last contact, for the fleet view (`fleet`).
    crate::fleet::MIGRATION,
    // 5: the persons named by home visits planned from the console (`visits`).
    crate::visits::MIGRATION,
];

/// Errors of the registry boundary.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A unit id that is taken.
    #[error("unit '{0}' exists already")]
    UnitExists(String),
    /// A unit id that is unknown.
    #[error("no unit '{0}': add it with `tournee-server unit add`")]
    NoUnit(String),
    /// A device name that is taken.
    #[error("a device named '{0}' is enrolled already; pick another --name")]
    DeviceExists(String),
    /// A device name made of digits only: `device revoke 12` could not tell it from device 12.
    #[error("name : « {0} » n'est fait que de chiffres et se confondrait avec un numéro d'appareil ; choisissez un nom avec au moins une lettre (par exemple pc-{0})")]
    NumericName(String),
    /// A `device revoke` argument that is both one device's number and another's name.
    #[error("« {which} » désigne deux appareils : le numéro {by_number} ({number_name}) et l'appareil nommé « {which} » (numéro {by_name}) ; rien n'a été révoqué. Relancez avec le numéro de celui à révoquer")]
    Ambiguous {
        /// What was given.
        which: String,
        /// The device with that number.
        by_number: Actor,
        /// Its name.
        number_name: String,
        /// The device with that name.
        by_name: Actor,
    },
    /// A device that is unknown.
    #[error(
        "no device '{0}' (give its actor number or its name; see `tournee-server device list`)"
    )]
    NoDevice(String),
    /// Invalid input.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A console account cannot be added, found or used as asked (the words say why).
    #[error("{0}")]
    Account(String),
    /// The registry's schema could not be brought up to date (or is a newer program's).
    #[error("registry: {0}")]
    Schema(#[from] MigrationError),
    /// The registry file could not be made owner-only (0600).
    #[error("cannot restrict {path} to its owner: {source}")]
    Private {
        /// The file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Storage failure.
    #[error("registry storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// A mobile unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unit {
    /// Identifier (e.g. `bus-80-1`).
    pub id: String,
    /// Name for people.
    pub name: String,
    /// Territory (département code).
    pub territory: String,
    /// `bus` or `domicile`.
    pub kind: String,
}

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Actor number.
    pub actor: Actor,
    /// Name (unique).
    pub name: String,
    /// Unit.
    pub unit: String,
    /// SHA-256 of its public key.
    pub fingerprint: String,
    /// `active` or `revoked`.
    pub status: String,
    /// Enrolment time, ms since the epoch.
    pub enrolled_ms: i64,
}

/// The registry on one SQLite file.
#[derive(Debug)]
pub struct Registry {
    conn: Connection,
}

impl Registry {
    /// Open (creating if needed).
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        tournee_store::make_owner_only(path).map_err(|source| RegistryError::Private {
            path: path.display().to_string(),
            source,
        })?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_millis(STORE_BUSY_WAIT_MS))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )?;
        migrate(&mut conn, MIGRATIONS)?;
        Ok(Self { conn })
    }

    /// The connection, for the modules that keep their own tables in the registry file.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Add a unit.
    pub fn add_unit(&self, unit: &Unit) -> Result<(), RegistryError> {
        check_admin_id("id", &unit.id)?;
        check_territory("territory", &unit.territory)?;
        UnitKind::parse(&unit.kind)?;
        check_text("name", &unit.name, UNIT_NAME_BYTES_MAX)?;
        if self.unit(&unit.id)?.is_some() {
            return Err(RegistryError::UnitExists(unit.id.clone()));
        }
        self.conn.execute(
            "INSERT INTO units(id, name, territory, kind) VALUES (?1, ?2, ?3, ?4)",
            params![unit.id, unit.name, unit.territory, unit.kind],
        )?;
        Ok(())
    }

    /// A unit by id.
    pub fn unit(&self, id: &str) -> Result<Option<Unit>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, territory, kind FROM units WHERE id = ?1",
                [id],
                |r| {
                    Ok(Unit {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        territory: r.get(2)?,
                        kind: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// All units, by id.
    pub fn units(&self) -> Result<Vec<Unit>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, territory, kind FROM units ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Unit {
                id: r.get(0)?,
                name: r.get(1)?,
                territory: r.get(2)?,
                kind: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Enrol a device; returns its new actor number.
    pub fn add_device(
        &self,
        name: &str,
        unit: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> Result<Actor, RegistryError> {
        check_device_name(name)?;
        if self.unit(unit)?.is_none() {
            return Err(RegistryError::NoUnit(unit.to_owned()));
        }
        let exists: Option<i64> = self
            .conn
            .query_row("SELECT actor FROM devices WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_some() {
            return Err(RegistryError::DeviceExists(name.to_owned()));
        }
        self.conn.execute(
            "INSERT INTO devices(name, unit, fingerprint, status, enrolled_ms) VALUES (?1, ?2, ?3, 'active', ?4)",
            params![name, unit, fingerprint, now_ms],
        )?;
        Ok(u32::try_from(self.conn.last_insert_rowid()).unwrap_or(u32::MAX))
    }

    /// Undo an enrolment whose bundle could not be written: the laptop never got its key, so
    /// the row goes. Its actor number is not reused (AUTOINCREMENT remembers it).
    pub fn withdraw_enrolment(&self, actor: Actor) -> Result<(), RegistryError> {
        self.conn
            .execute("DELETE FROM devices WHERE actor = ?1", [actor])?;
        Ok(())
    }

    /// All devices, by actor number.
    pub fn devices(&self) -> Result<Vec<Device>, RegistryError> {
        let mut stmt = self.conn.prepare(
            "SELECT actor, name, unit, fingerprint, status, enrolled_ms FROM devices ORDER BY actor",
        )?;
        let rows = stmt.query_map([], row_device)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The device holding a certificate, by fingerprint.
    pub fn device_by_fingerprint(&self, fp: &str) -> Result<Option<Device>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT actor, name, unit, fingerprint, status, enrolled_ms FROM devices WHERE fingerprint = ?1",
                [fp],
                row_device,
            )
            .optional()?)
    }

    /// The device `which` designates: its actor number or its name. A registry written before
    /// all-digit names were refused may hold a device *named* like another's number: then
    /// `which` is ambiguous and nothing is chosen.
    pub fn find_device(&self, which: &str) -> Result<Device, RegistryError> {
        let by_number = match which.parse::<i64>() {
            Ok(n) => self
                .conn
                .query_row(
                    "SELECT actor, name, unit, fingerprint, status, enrolled_ms FROM devices WHERE actor = ?1",
                    [n],
                    row_device,
                )
                .optional()?,
            Err(_) => None,
        };
        let by_name = self
            .conn
            .query_row(
                "SELECT actor, name, unit, fingerprint, status, enrolled_ms FROM devices WHERE name = ?1",
                [which],
                row_device,
            )
            .optional()?;
        match (by_number, by_name) {
            (Some(n), Some(m)) if n.actor != m.actor => Err(RegistryError::Ambiguous {
                which: which.to_owned(),
                by_number: n.actor,
                number_name: n.name,
                by_name: m.actor,
            }),
            (Some(d), _) | (None, Some(d)) => Ok(d),
            (None, None) => Err(RegistryError::NoDevice(which.to_owned())),
        }
    }

    /// Revoke a device given by actor number or name (`find_device`). Returns it.
    pub fn revoke(&self, which: &str, now_ms: i64) -> Result<Device, RegistryError> {
        let device = self.find_device(which)?;
        self.conn.execute(
            "UPDATE devices SET status = 'revoked', revoked_ms = coalesce(revoked_ms, ?2) WHERE actor = ?1",
            params![device.actor, now_ms],
        )?;
        Ok(Device {
            status: "revoked".into(),
            ..device
        })
    }

    /// Fingerprints of revoked devices.
    pub fn revoked_fingerprints(&self) -> Result<Vec<String>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT fingerprint FROM devices WHERE status = 'revoked'")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Check a device name before enrolment: a short text without forbidden characters
/// (`check_text`, `DEVICE_NAME_BYTES_MAX`), and not digits only (it would read as a number).
pub fn check_device_name(name: &str) -> Result<(), RegistryError> {
    check_text("name", name, DEVICE_NAME_BYTES_MAX)?;
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(RegistryError::NumericName(name.to_owned()));
    }
    Ok(())
}

fn row_device(r: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        actor: r.get(0)?,
        name: r.get(1)?,
        unit: r.get(2)?,
        fingerprint: r.get(3)?,
        status: r.get(4)?,
        enrolled_ms: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit() -> Unit {
        Unit {
            id: "bus-80-1".into(),
            name: "Bus de la Somme".into(),
            territory: "80".into(),
            kind: "bus".into(),
        }
    }

    #[test]
    fn a_registry_reopens_with_its_units_and_its_schema_version() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("registry.sqlite");
        Registry::open(&path)
            .expect("create")
            .add_unit(&unit())
            .expect("unit");
        let reg = Registry::open(&path).expect("reopen");
        assert_eq!(reg.units().expect("units"), vec![unit()]);
        let v: i64 = reg
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn all_digit_names_are_refused_and_an_ambiguous_revoke_names_both_devices() {
        let dir = tempfile::tempdir().expect("dir");
        let reg = Registry::open(&dir.path().join("registry.sqlite")).expect("create");
        reg.add_unit(&unit()).expect("unit");
        let first = reg.add_device("pc-a", "bus-80-1", "fp-a", 0).expect("pc-a");
        let err = reg
            .add_device("1", "bus-80-1", "fp-1", 0)
            .expect_err("digits");
        assert!(matches!(err, RegistryError::NumericName(_)), "{err}");
        for bad in ["pc\nb", &"x".repeat(DEVICE_NAME_BYTES_MAX + 1)] {
            let err = reg.add_device(bad, "bus-80-1", "fp-x", 0).expect_err(bad);
            assert!(matches!(err, RegistryError::Model(_)), "{err}");
        }
        // A registry of an earlier program may hold such a name: the ambiguity is refused.
        reg.conn
            .execute(
                "INSERT INTO devices(name, unit, fingerprint, status, enrolled_ms) VALUES ('1', 'bus-80-1', 'fp-1', 'active', 0)",
                [],
            )
            .expect("legacy row");
        let err = reg.revoke("1", 5).expect_err("ambiguous");
        let text = err.to_string();
        assert!(
            matches!(err, RegistryError::Ambiguous { by_number, .. } if by_number == first),
            "{text}"
        );
        assert!(text.contains("pc-a") && text.contains("numéro 2"), "{text}");
        assert!(reg
            .devices()
            .expect("devices")
            .iter()
            .all(|d| d.status == "active"));
        assert_eq!(reg.revoke("pc-a", 5).expect("by name").actor, first);
    }

    #[test]
    fn a_registry_of_a_newer_program_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("registry.sqlite");
        drop(Registry::open(&path).expect("create"));
        let conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "user_version", MIGRATIONS.len() as i64 + 1)
            .expect("bump");
        drop(conn);
        let err = Registry::open(&path).expect_err("newer");
        assert!(
            matches!(err, RegistryError::Schema(MigrationError::Newer { .. })),
            "{err}"
        );
    }
}
