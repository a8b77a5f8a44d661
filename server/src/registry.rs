//! The device registry: units and enrolled devices (actor number, certificate fingerprint,
//! status), in its own SQLite file beside the replicated store.
//!
//! Server-only administrative data: it is not replicated. Actor numbers are never reused
//! (AUTOINCREMENT), because a reused number would make a new laptop's writes look like an old
//! one's to every CRDT clock.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use tournee_core::limits::STORE_BUSY_WAIT_MS;
use tournee_core::model::{check_admin_id, check_territory, ModelError, UnitKind};
use tournee_core::register::Actor;
use tournee_store::migrate::{migrate, MigrationError};

/// Schema steps of the registry, in order (`tournee_store::migrate` numbers them).
const MIGRATIONS: &[&str] = &["CREATE TABLE units (
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
     ) STRICT;"];

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
    /// A device that is unknown.
    #[error(
        "no device '{0}' (give its actor number or its name; see `tournee-server device list`)"
    )]
    NoDevice(String),
    /// Invalid input.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The registry's schema could not be brought up to date (or is a newer program's).
    #[error("registry: {0}")]
    Schema(#[from] MigrationError),
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
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_millis(STORE_BUSY_WAIT_MS))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )?;
        migrate(&mut conn, MIGRATIONS)?;
        Ok(Self { conn })
    }

    /// Add a unit.
    pub fn add_unit(&self, unit: &Unit) -> Result<(), RegistryError> {
        check_admin_id("id", &unit.id)?;
        check_territory("territory", &unit.territory)?;
        UnitKind::parse(&unit.kind)?;
        if unit.name.trim().is_empty() {
            return Err(ModelError::Empty { field: "name" }.into());
        }
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
        if name.trim().is_empty() {
            return Err(ModelError::Empty { field: "name" }.into());
        }
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

    /// Revoke a device given by actor number or name. Returns it.
    pub fn revoke(&self, which: &str, now_ms: i64) -> Result<Device, RegistryError> {
        let by_actor: Option<i64> = which.parse().ok();
        let device = self
            .conn
            .query_row(
                "SELECT actor, name, unit, fingerprint, status, enrolled_ms FROM devices
                 WHERE actor = ?1 OR name = ?2",
                params![by_actor.unwrap_or(-1), which],
                row_device,
            )
            .optional()?
            .ok_or_else(|| RegistryError::NoDevice(which.to_owned()))?;
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
