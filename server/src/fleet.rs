//! The fleet view's data: what each laptop said at its last contact (program, clock offset,
//! changes still waiting, changes refused so far), kept in the registry by `serve` after every
//! session, and the rows of `device list` and the console's *Postes* page built from it.
//!
//! What it does not do: decide anything about sync (the sessions ignore it) or alert anyone;
//! the flags are read by people. A laptop that never synced has no contact row.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;
use tournee_core::register::Actor;
use tournee_proto::session::PeerReport;

use crate::registry::{Device, Registry, RegistryError};

/// Days without contact after which a laptop is shown "à surveiller" (as CommCare does).
pub const QUIET_DAYS_WARN: i64 = 3;
/// Days without contact after which a laptop is shown "sans nouvelles".
pub const QUIET_DAYS_ALERT: i64 = 7;
/// A clock further off than this, in ms, is pointed out (the sync copes; the times shown on
/// the laptop would be wrong).
pub const CLOCK_OFFSET_SHOWN_MS: i64 = 2 * 60 * 1000;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// How long a laptop has been quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quiet {
    /// Seen within `QUIET_DAYS_WARN` days.
    Recent,
    /// Not seen for `QUIET_DAYS_WARN` days or more.
    Warn,
    /// Not seen for `QUIET_DAYS_ALERT` days or more.
    Alert,
    /// Enrolled, never synced.
    Never,
}

impl Quiet {
    /// The words of the fleet view.
    pub fn label(self) -> &'static str {
        match self {
            Quiet::Recent => "à jour",
            Quiet::Warn => "à surveiller (3 jours ou plus)",
            Quiet::Alert => "sans nouvelles (7 jours ou plus)",
            Quiet::Never => "jamais synchronisé",
        }
    }

    /// The class of its badge.
    pub fn class(self) -> &'static str {
        match self {
            Quiet::Recent => "ok",
            Quiet::Warn => "warn",
            Quiet::Alert | Quiet::Never => "alert",
        }
    }
}

/// One laptop of the fleet view.
#[derive(Debug, Clone, Serialize)]
pub struct FleetRow {
    /// The enrolled device.
    #[serde(flatten)]
    pub device: Device,
    /// Last contact, ms since the epoch (server clock).
    pub last_seen_ms: Option<i64>,
    /// Changes the laptop still had waiting at its last contact.
    pub waiting: Option<u64>,
    /// Its program version.
    pub program: Option<String>,
    /// The server's clock minus the laptop's, ms, as the laptop last measured it.
    pub clock_offset_ms: Option<i64>,
    /// Changes of this laptop the server refused, all sessions together.
    pub refused: u64,
    /// The last session ended cleanly.
    pub last_complete: Option<bool>,
    /// How quiet it is (revoked devices: as of their last contact).
    pub quiet: Quiet,
    /// Whole days since its last contact.
    pub quiet_days: Option<i64>,
}

impl FleetRow {
    /// "il y a 2 jours", "aujourd'hui", "jamais".
    pub fn seen_words(&self) -> String {
        match self.quiet_days {
            None => "jamais".into(),
            Some(0) => "aujourd'hui".into(),
            Some(1) => "hier".into(),
            Some(d) => format!("il y a {d} jours"),
        }
    }

    /// Last contact as `2026-12-03 09:15 UTC`, or "—".
    pub fn seen_at(&self) -> String {
        self.last_seen_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "—".into())
    }

    /// The clock offset in words when it matters ("en retard de 5 min"), else empty.
    pub fn clock_words(&self) -> String {
        match self.clock_offset_ms {
            Some(o) if o.abs() >= CLOCK_OFFSET_SHOWN_MS => {
                let minutes = o.abs() / 60_000;
                let side = if o > 0 { "en retard" } else { "en avance" };
                format!("horloge {side} de {minutes} min")
            }
            _ => String::new(),
        }
    }
}

/// Migration 4 of the registry: one contact row per device that ever synced.
pub const MIGRATION: &str = "CREATE TABLE device_contacts (
         actor           INTEGER PRIMARY KEY REFERENCES devices(actor),
         seen_ms         INTEGER NOT NULL,
         waiting         INTEGER NOT NULL,
         program         TEXT NOT NULL,
         clock_offset_ms INTEGER,
         refused         INTEGER NOT NULL DEFAULT 0,
         complete        INTEGER NOT NULL CHECK (complete IN (0, 1))
     ) STRICT;";

#[derive(Debug)]
struct Contact {
    seen_ms: i64,
    waiting: u64,
    program: String,
    clock_offset_ms: Option<i64>,
    refused: u64,
    complete: bool,
}

impl Registry {
    /// Keep what a session learnt of its laptop: seen at `now_ms`, `refused` more changes
    /// refused, ended cleanly or not.
    pub fn note_contact(
        &self,
        actor: Actor,
        now_ms: i64,
        report: &PeerReport,
        refused: u64,
        complete: bool,
    ) -> Result<(), RegistryError> {
        self.conn().execute(
            "INSERT INTO device_contacts(actor, seen_ms, waiting, program, clock_offset_ms, refused, complete)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(actor) DO UPDATE SET seen_ms = excluded.seen_ms, waiting = excluded.waiting,
                 program = excluded.program, clock_offset_ms = excluded.clock_offset_ms,
                 refused = refused + excluded.refused, complete = excluded.complete",
            params![
                actor,
                now_ms,
                i64::try_from(report.waiting).unwrap_or(i64::MAX),
                report.program,
                report.clock_offset_ms,
                i64::try_from(refused).unwrap_or(i64::MAX),
                complete,
            ],
        )?;
        Ok(())
    }

    /// Every device with its last contact, quietness judged at `now_ms`, by unit then name.
    pub fn fleet(&self, now_ms: i64) -> Result<Vec<FleetRow>, RegistryError> {
        let mut contacts = std::collections::HashMap::new();
        let mut stmt = self.conn().prepare(
            "SELECT actor, seen_ms, waiting, program, clock_offset_ms, refused, complete FROM device_contacts",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Actor>(0)?,
                Contact {
                    seen_ms: r.get(1)?,
                    waiting: r.get::<_, i64>(2)?.max(0).unsigned_abs(),
                    program: r.get(3)?,
                    clock_offset_ms: r.get(4)?,
                    refused: r.get::<_, i64>(5)?.max(0).unsigned_abs(),
                    complete: r.get(6)?,
                },
            ))
        })?;
        for row in rows {
            let (actor, c) = row?;
            contacts.insert(actor, c);
        }
        let mut fleet: Vec<FleetRow> = self
            .devices()?
            .into_iter()
            .map(|d| {
                let c = contacts.remove(&d.actor);
                row(d, c, now_ms)
            })
            .collect();
        fleet.sort_by(|a, b| {
            (&a.device.unit, &a.device.name).cmp(&(&b.device.unit, &b.device.name))
        });
        Ok(fleet)
    }
}

fn row(device: Device, c: Option<Contact>, now_ms: i64) -> FleetRow {
    let quiet_days = c
        .as_ref()
        .map(|c| (now_ms.saturating_sub(c.seen_ms)).max(0) / DAY_MS);
    let quiet = match quiet_days {
        None => Quiet::Never,
        Some(d) if d >= QUIET_DAYS_ALERT => Quiet::Alert,
        Some(d) if d >= QUIET_DAYS_WARN => Quiet::Warn,
        Some(_) => Quiet::Recent,
    };
    FleetRow {
        device,
        last_seen_ms: c.as_ref().map(|c| c.seen_ms),
        waiting: c.as_ref().map(|c| c.waiting),
        program: c.as_ref().map(|c| c.program.clone()),
        clock_offset_ms: c.as_ref().and_then(|c| c.clock_offset_ms),
        refused: c.as_ref().map_or(0, |c| c.refused),
        last_complete: c.as_ref().map(|c| c.complete),
        quiet,
        quiet_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Unit;

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().expect("test setup");
        let reg = Registry::open(&dir.path().join("registry.sqlite")).expect("test setup");
        reg.add_unit(&Unit {
            id: "bus-80".into(),
            name: "Bus de la Somme".into(),
            territory: "80".into(),
            kind: "bus".into(),
        })
        .expect("test setup");
        (dir, reg)
    }

    fn report(waiting: u64) -> PeerReport {
        PeerReport {
            program: "0.1.0".into(),
            clock_offset_ms: Some(-300_000),
            waiting,
        }
    }

    #[test]
    fn contacts_accumulate_refusals_and_quietness_follows_the_days() {
        let (_dir, reg) = registry();
        let a = reg
            .add_device("pc-a", "bus-80", "fa", 0)
            .expect("test setup");
        let b = reg
            .add_device("pc-b", "bus-80", "fb", 0)
            .expect("test setup");
        let c = reg
            .add_device("pc-c", "bus-80", "fc", 0)
            .expect("test setup");
        let day0 = 1_800_000_000_000;
        reg.note_contact(a, day0, &report(4), 2, false)
            .expect("test setup");
        reg.note_contact(a, day0 + DAY_MS, &report(0), 1, true)
            .expect("test setup");
        reg.note_contact(b, day0 - 3 * DAY_MS, &report(7), 0, true)
            .expect("test setup");
        let fleet = reg.fleet(day0 + 5 * DAY_MS).expect("test setup");
        let by = |actor| {
            fleet
                .iter()
                .find(|r| r.device.actor == actor)
                .expect("a row")
        };
        assert_eq!(by(a).refused, 3, "refusals add up across sessions");
        assert_eq!(
            by(a).waiting,
            Some(0),
            "the last contact's waiting count wins"
        );
        assert_eq!(by(a).quiet, Quiet::Warn, "four days: to watch");
        assert_eq!(by(b).quiet, Quiet::Alert, "eight days: no news");
        assert_eq!(by(b).waiting, Some(7));
        assert_eq!(by(c).quiet, Quiet::Never);
        assert_eq!(by(c).seen_words(), "jamais");
        assert_eq!(by(a).clock_words(), "horloge en avance de 5 min");
        let fleet = reg.fleet(day0 + DAY_MS + 1).expect("test setup");
        let a_row = fleet
            .iter()
            .find(|r| r.device.actor == a)
            .expect("test setup");
        assert_eq!(
            (a_row.quiet, a_row.seen_words().as_str()),
            (Quiet::Recent, "aujourd'hui")
        );
    }
}
