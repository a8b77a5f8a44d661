//! The server's SQL over its reporting projection (`facts`): scheduling look-ups and the raw
//! aggregates of the coverage report. Indexed by (kind, day), by round and by parent record.
//!
//! Aggregation into report rows and all formatting live in `report`; nothing here prints.

use std::collections::HashMap;

use chrono::NaiveDate;
use rusqlite::params;
use tournee_store::sql_err;
use uuid::Uuid;

use crate::facts::kind_code;
use tournee_core::model::Kind;
use tournee_core::record::Record;
use tournee_core::store::{Store, StoreError};
use tournee_core::time::day_key;
use tournee_store::SqliteStore;

fn uuid_of(bytes: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes).map_err(|e| StoreError::corrupt("record id", e))
}

/// What the grouping key of a coverage row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// INSEE code of the commune.
    Commune,
    /// Unit id.
    Unit,
    /// Partner code (requests only).
    Partner,
    /// Theme code (requests only).
    Theme,
}

/// Passages counted per (group, status, cause).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassageCount {
    /// Group key.
    pub key: String,
    /// Status code.
    pub status: String,
    /// Cancel cause, if any.
    pub cause: Option<String>,
    /// How many.
    pub count: u64,
}

/// Appointments counted per (group, location, status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentCount {
    /// Group key.
    pub key: String,
    /// Location code.
    pub location: String,
    /// Status code.
    pub status: String,
    /// How many.
    pub count: u64,
}

/// Requests counted per (group, partner, theme, outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCount {
    /// Group key.
    pub key: String,
    /// Partner code.
    pub partner: String,
    /// Theme code.
    pub theme: String,
    /// Outcome code.
    pub outcome: String,
    /// How many.
    pub count: u64,
    /// Minutes spent, summed.
    pub minutes: i64,
}

/// Raw aggregates for one territory and period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoverageData {
    /// Passages.
    pub passages: Vec<PassageCount>,
    /// Appointments.
    pub appointments: Vec<AppointmentCount>,
    /// Distinct people received (appointments with status seen), per group.
    pub citizens: HashMap<String, u64>,
    /// Requests.
    pub requests: Vec<RequestCount>,
    /// Communes (INSEE) with at least one passage held in the period.
    pub reached: Vec<String>,
}

/// The server's look-ups over the projection (scheduling and coverage).
pub trait Queries {
    /// Ids of live records of a kind, optionally of one unit (server only).
    fn ids_of_kind(&self, kind: Kind, unit: Option<&str>) -> Result<Vec<Uuid>, StoreError>;

    /// Passages generated from a round on or after `from` (tombstoned ones included), as
    /// (id, marked by the unit).
    fn round_passages(&self, round: Uuid, from: NaiveDate)
        -> Result<Vec<(Uuid, bool)>, StoreError>;

    /// Live passages between two days (inclusive), optionally of one unit, by planned start.
    fn passages_between(
        &self,
        unit: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Record>, StoreError>;

    /// Raw coverage aggregates of a territory over `[from, to]`, grouped by `by`.
    fn coverage_data(
        &self,
        territory: &str,
        from: NaiveDate,
        to: NaiveDate,
        by: GroupBy,
    ) -> Result<CoverageData, StoreError>;
}

impl Queries for SqliteStore {
    fn ids_of_kind(&self, kind: Kind, unit: Option<&str>) -> Result<Vec<Uuid>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id FROM facts WHERE kind = ?1 AND deleted = 0 AND (?2 IS NULL OR unit = ?2) ORDER BY id",
        ).map_err(sql_err)?;
        let rows = stmt
            .query_map(params![kind_code(kind), unit], |r| r.get::<_, Vec<u8>>(0))
            .map_err(sql_err)?;
        rows.map(|r| uuid_of(&r.map_err(sql_err)?)).collect()
    }

    fn round_passages(
        &self,
        round: Uuid,
        from: NaiveDate,
    ) -> Result<Vec<(Uuid, bool)>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT id, marked FROM facts WHERE round = ?1 AND kind = ?2 AND day >= ?3",
            )
            .map_err(sql_err)?;
        let rows = stmt
            .query_map(
                params![
                    round.as_bytes().as_slice(),
                    kind_code(Kind::Passage),
                    day_key(from)
                ],
                |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)),
            )
            .map_err(sql_err)?;
        rows.map(|r| {
            let (id, marked) = r.map_err(sql_err)?;
            Ok((uuid_of(&id)?, marked != 0))
        })
        .collect()
    }

    fn passages_between(
        &self,
        unit: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Record>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT id FROM facts WHERE kind = ?1 AND day BETWEEN ?2 AND ?3 AND deleted = 0
             AND (?4 IS NULL OR unit = ?4) ORDER BY planned_start, id",
            )
            .map_err(sql_err)?;
        let ids = stmt
            .query_map(
                params![kind_code(Kind::Passage), day_key(from), day_key(to), unit],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .map_err(sql_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_err)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = self.record(uuid_of(&id)?)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn coverage_data(
        &self,
        territory: &str,
        from: NaiveDate,
        to: NaiveDate,
        by: GroupBy,
    ) -> Result<CoverageData, StoreError> {
        let (f, t) = (day_key(from), day_key(to));
        let conn = self.conn();
        let mut data = CoverageData::default();
        let passage_key = match by {
            GroupBy::Unit => "p.unit",
            _ => "s.commune",
        };
        if matches!(by, GroupBy::Commune | GroupBy::Unit) {
            let sql = format!(
                "SELECT {passage_key}, p.status, p.cause, count(*) FROM facts p
                 JOIN facts s ON s.id = p.stop
                 WHERE p.kind = ?1 AND p.deleted = 0 AND p.day BETWEEN ?2 AND ?3 AND s.departement = ?4
                 GROUP BY 1, 2, 3"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
            let rows = stmt
                .query_map(params![kind_code(Kind::Passage), f, t, territory], |r| {
                    Ok(PassageCount {
                        key: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        status: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        cause: r.get(2)?,
                        count: r.get::<_, i64>(3)?.try_into().unwrap_or(0),
                    })
                })
                .map_err(sql_err)?;
            data.passages = rows.collect::<Result<_, _>>().map_err(sql_err)?;
            let key = if by == GroupBy::Unit {
                "unit"
            } else {
                "commune"
            };
            let sql = format!(
                "SELECT {key}, location, status, count(*) FROM facts
                 WHERE kind = ?1 AND deleted = 0 AND day BETWEEN ?2 AND ?3 AND departement = ?4
                 GROUP BY 1, 2, 3"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
            let rows = stmt
                .query_map(
                    params![kind_code(Kind::Appointment), f, t, territory],
                    |r| {
                        Ok(AppointmentCount {
                            key: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                            location: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                            status: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                            count: r.get::<_, i64>(3)?.try_into().unwrap_or(0),
                        })
                    },
                )
                .map_err(sql_err)?;
            data.appointments = rows.collect::<Result<_, _>>().map_err(sql_err)?;
            let sql = format!(
                "SELECT {key}, count(DISTINCT coalesce(citizen, id)) FROM facts
                 WHERE kind = ?1 AND deleted = 0 AND day BETWEEN ?2 AND ?3 AND departement = ?4
                 AND status = 'seen' GROUP BY 1"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
            let rows = stmt
                .query_map(
                    params![kind_code(Kind::Appointment), f, t, territory],
                    |r| {
                        Ok((
                            r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                            u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        ))
                    },
                )
                .map_err(sql_err)?;
            data.citizens = rows.collect::<Result<_, _>>().map_err(sql_err)?;
        }
        let request_key = match by {
            GroupBy::Commune => "commune",
            GroupBy::Unit => "unit",
            GroupBy::Partner => "partner",
            GroupBy::Theme => "theme",
        };
        let sql = format!(
            "SELECT {request_key}, partner, theme, outcome, count(*), coalesce(sum(minutes), 0)
             FROM facts
             WHERE kind = ?1 AND deleted = 0 AND day BETWEEN ?2 AND ?3 AND departement = ?4
             GROUP BY 1, 2, 3, 4"
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
        let rows = stmt
            .query_map(params![kind_code(Kind::Request), f, t, territory], |r| {
                Ok(RequestCount {
                    key: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    partner: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    theme: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    outcome: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    count: r.get::<_, i64>(4)?.try_into().unwrap_or(0),
                    minutes: r.get(5)?,
                })
            })
            .map_err(sql_err)?;
        data.requests = rows.collect::<Result<_, _>>().map_err(sql_err)?;
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT s.commune FROM facts p JOIN facts s ON s.id = p.stop
             WHERE p.kind = ?1 AND p.deleted = 0 AND p.day BETWEEN ?2 AND ?3 AND p.status = 'effectue'
             AND s.departement = ?4",
        ).map_err(sql_err)?;
        let rows = stmt
            .query_map(params![kind_code(Kind::Passage), f, t, territory], |r| {
                r.get::<_, Option<String>>(0)
            })
            .map_err(sql_err)?;
        data.reached = rows
            .filter_map(|r| r.transpose())
            .collect::<Result<_, _>>()
            .map_err(sql_err)?;
        Ok(data)
    }
}
