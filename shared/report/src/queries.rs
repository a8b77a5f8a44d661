//! The server's SQL over its reporting projection (`facts`): scheduling look-ups and the raw
//! aggregates of the coverage report. Indexed by (kind, day), by round and by parent record.
//!
//! Aggregation into report rows and all formatting live in `report`; nothing here prints.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use rusqlite::{params, Connection, Row};
use tournee_store::sql_err;
use uuid::Uuid;

use crate::facts::kind_code;
use tournee_core::model::Kind;
use tournee_core::record::Record;
use tournee_core::store::{Store, StoreError};
use tournee_core::time::day_key;
use tournee_core::views::Merges;
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
    /// The Monday of the week (`2027-01-11`): the time series.
    Week,
    /// SIREN of the commune's EPCI (`sans EPCI` for a commune outside any).
    Epci,
}

/// The key of a commune's EPCI group.
pub fn epci_of(commune: &str) -> String {
    tournee_core::refdata::RefData::get()
        .commune(commune)
        .and_then(|c| c.epci_siren.clone())
        .unwrap_or_else(|| NO_EPCI.to_owned())
}

/// The EPCI key of a commune that belongs to none (or is unknown).
pub const NO_EPCI: &str = "sans EPCI";

/// The SQL of the Monday of the week of a `day` column (a `YYYYMMDD` integer).
fn week_of(day: &str) -> String {
    format!(
        "date(substr({day}, 1, 4) || '-' || substr({day}, 5, 2) || '-' || substr({day}, 7, 2), '-6 days', 'weekday 1')"
    )
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
    /// Distinct people received (appointments with status seen, walk-ins), per group.
    pub citizens: HashMap<String, u64>,
    /// Distinct people received over the whole period and territory (a person seen in two
    /// groups counts once; merged persons count once).
    pub citizens_total: u64,
    /// Walk-ins per group.
    pub walk_ins: HashMap<String, u64>,
    /// Collective sessions per group: (sessions, attendees).
    pub workshops: HashMap<String, (u64, u64)>,
    /// Requests.
    pub requests: Vec<RequestCount>,
    /// Communes (INSEE) reached in the period: a passage held, a home visit held, a walk-in.
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

    /// What already happened at a stop: its live passages before `today` or marked by the
    /// unit, and the requests and sessions recorded at any of its passages.
    fn stop_history(&self, stop: Uuid, today: NaiveDate) -> Result<u64, StoreError>;

    /// Only what the weekly charts draw: passages and distinct people received, by week.
    fn weekly_data(
        &self,
        territory: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<CoverageData, StoreError>;

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
    fn stop_history(&self, stop: Uuid, today: NaiveDate) -> Result<u64, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT (SELECT count(*) FROM facts WHERE kind = ?2 AND stop = ?1 AND deleted = 0
                         AND (marked = 1 OR day < ?3))
                      + (SELECT count(*) FROM facts r JOIN facts p ON r.passage = p.id
                         WHERE p.kind = ?2 AND p.stop = ?1 AND r.deleted = 0)",
            )
            .map_err(sql_err)?
            .query_row(
                params![
                    stop.as_bytes().as_slice(),
                    kind_code(Kind::Passage),
                    day_key(today)
                ],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(sql_err)
    }

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

    fn weekly_data(
        &self,
        territory: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<CoverageData, StoreError> {
        let conn = self.conn();
        let w = Window {
            territory,
            from: day_key(from),
            to: day_key(to),
        };
        let people = citizens_received(conn, w, GroupBy::Week, &|k| k.to_owned())?;
        Ok(CoverageData {
            passages: passage_counts(conn, w, GroupBy::Week)?,
            citizens: people.per_group,
            citizens_total: people.total,
            ..CoverageData::default()
        })
    }

    fn coverage_data(
        &self,
        territory: &str,
        from: NaiveDate,
        to: NaiveDate,
        by: GroupBy,
    ) -> Result<CoverageData, StoreError> {
        if by == GroupBy::Epci {
            return epci_data(self, territory, from, to);
        }
        let conn = self.conn();
        let w = Window {
            territory,
            from: day_key(from),
            to: day_key(to),
        };
        let mut data = CoverageData {
            requests: request_counts(conn, w, by)?,
            reached: reached_communes(conn, w)?,
            ..CoverageData::default()
        };
        // Passages and appointments have no partner or theme: those groupings count requests.
        if matches!(by, GroupBy::Commune | GroupBy::Unit | GroupBy::Week) {
            data.passages = passage_counts(conn, w, by)?;
            data.appointments = appointment_counts(conn, w, by)?;
            let people = citizens_received(conn, w, by, &|k| k.to_owned())?;
            data.citizens = people.per_group;
            data.citizens_total = people.total;
            data.walk_ins = walk_in_counts(conn, w, by)?;
            data.workshops = workshop_counts(conn, w, by)?;
        }
        Ok(data)
    }
}

/// The territory and period every coverage aggregate filters on, as its SQL binds them:
/// `?2`..`?3` the days (inclusive), `?4` the département; `?1` is the kind counted.
#[derive(Debug, Clone, Copy)]
struct Window<'a> {
    territory: &'a str,
    from: i64,
    to: i64,
}

/// The coverage of a territory grouped by EPCI: the commune aggregates with each commune's key
/// replaced by its EPCI's, people counted once per EPCI (not the sum of its communes').
fn epci_data(
    store: &SqliteStore,
    territory: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<CoverageData, StoreError> {
    let mut data = store.coverage_data(territory, from, to, GroupBy::Commune)?;
    for p in &mut data.passages {
        p.key = epci_of(&p.key);
    }
    for a in &mut data.appointments {
        a.key = epci_of(&a.key);
    }
    for r in &mut data.requests {
        r.key = epci_of(&r.key);
    }
    let mut walk_ins: HashMap<String, u64> = HashMap::new();
    for (k, v) in std::mem::take(&mut data.walk_ins) {
        *walk_ins.entry(epci_of(&k)).or_default() += v;
    }
    data.walk_ins = walk_ins;
    let mut workshops: HashMap<String, (u64, u64)> = HashMap::new();
    for (k, (n, a)) in std::mem::take(&mut data.workshops) {
        let e = workshops.entry(epci_of(&k)).or_default();
        e.0 += n;
        e.1 += a;
    }
    data.workshops = workshops;
    let w = Window {
        territory,
        from: day_key(from),
        to: day_key(to),
    };
    let people = citizens_received(store.conn(), w, GroupBy::Commune, &|k| epci_of(k))?;
    data.citizens = people.per_group;
    data.citizens_total = people.total;
    Ok(data)
}

/// The column a streamed aggregate reads its group from: the raw `day` for weeks (folded to
/// its Monday in Rust, `Weeks`), the grouping column otherwise.
fn stream_column(by: GroupBy) -> String {
    match by {
        GroupBy::Week => "day".into(),
        other => group_column(other),
    }
}

/// The Monday of a `YYYYMMDD` day key, as `YYYY-MM-DD`, computed once per distinct day.
#[derive(Default)]
struct Weeks(HashMap<i64, String>);

impl Weeks {
    fn of(&mut self, day: i64) -> &str {
        self.0.entry(day).or_insert_with(|| {
            let d = NaiveDate::from_ymd_opt(
                i32::try_from(day / 10_000).unwrap_or(0),
                u32::try_from(day / 100 % 100).unwrap_or(0),
                u32::try_from(day % 100).unwrap_or(0),
            );
            d.map(|d| {
                let back = chrono::Datelike::weekday(&d).num_days_from_monday();
                (d - chrono::Duration::days(i64::from(back))).to_string()
            })
            .unwrap_or_default()
        })
    }
}

/// A group key read from column 0 of a streamed row (text, or a day folded to its week).
fn group_key(
    row: &Row<'_>,
    by: GroupBy,
    weeks: &mut Weeks,
    out: &mut String,
) -> rusqlite::Result<()> {
    use rusqlite::types::ValueRef;
    match (by, row.get_ref(0)?) {
        (GroupBy::Week, ValueRef::Integer(day)) => out.push_str(weeks.of(day)),
        (_, ValueRef::Text(t)) => out.push_str(&String::from_utf8_lossy(t)),
        _ => {}
    }
    Ok(())
}

/// Counts of the live rows of `kind` in the window per (group, `columns`...), with `sum`
/// summed, aggregated in Rust over one streamed scan (SQLite's GROUP BY sorts every row into a
/// temporary B-tree: several times slower on a year of requests). Text columns only.
fn count_by(
    conn: &Connection,
    w: Window<'_>,
    kind: Kind,
    by: GroupBy,
    columns: &[&str],
    sum: Option<&str>,
) -> Result<Vec<(Vec<String>, u64, i64)>, StoreError> {
    let sql = format!(
        "SELECT {}, {}, {} FROM facts
         WHERE kind = ?1 AND deleted = 0 AND day BETWEEN ?2 AND ?3 AND departement = ?4",
        stream_column(by),
        if columns.is_empty() {
            "NULL".to_owned()
        } else {
            columns.join(", ")
        },
        sum.map_or_else(|| "0".to_owned(), |c| format!("coalesce({c}, 0)")),
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
    let mut rows = stmt
        .query(params![kind_code(kind), w.from, w.to, w.territory])
        .map_err(sql_err)?;
    let width = columns.len().max(1);
    let mut weeks = Weeks::default();
    let mut groups: HashMap<String, (u64, i64)> = HashMap::new();
    let mut key = String::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        key.clear();
        group_key(row, by, &mut weeks, &mut key).map_err(sql_err)?;
        for i in 1..=width {
            key.push('\u{1f}');
            if let rusqlite::types::ValueRef::Text(t) = row.get_ref(i).map_err(sql_err)? {
                key.push_str(&String::from_utf8_lossy(t));
            }
        }
        let add: i64 = row.get(width + 1).map_err(sql_err)?;
        match groups.get_mut(key.as_str()) {
            Some(g) => {
                g.0 += 1;
                g.1 += add;
            }
            None => {
                groups.insert(key.clone(), (1, add));
            }
        }
    }
    Ok(groups
        .into_iter()
        .map(|(k, (n, total))| {
            let parts: Vec<String> = k.split('\u{1f}').map(str::to_owned).collect();
            (parts, n, total)
        })
        .collect())
}

/// The projection column (or expression) a request or appointment is grouped by.
fn group_column(by: GroupBy) -> String {
    match by {
        GroupBy::Commune | GroupBy::Epci => "commune".into(),
        GroupBy::Unit => "unit".into(),
        GroupBy::Partner => "partner".into(),
        GroupBy::Theme => "theme".into(),
        GroupBy::Week => week_of("day"),
    }
}

/// Run one aggregate over the live rows of `kind` in the window, one item per result row.
fn aggregate<T, C: FromIterator<T>>(
    conn: &Connection,
    sql: &str,
    kind: Kind,
    w: Window<'_>,
    item: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<C, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(params![kind_code(kind), w.from, w.to, w.territory], item)
        .map_err(sql_err)?;
    rows.collect::<Result<C, _>>().map_err(sql_err)
}

/// A text column, empty when NULL.
fn text(row: &Row<'_>, i: usize) -> rusqlite::Result<String> {
    Ok(row.get::<_, Option<String>>(i)?.unwrap_or_default())
}

/// A `count(*)` column.
fn count(row: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, i64>(i)?.try_into().unwrap_or(0))
}

/// Passages per (group, status, cause), filed under their stop's département; grouped by the
/// stop's commune, or by unit.
fn passage_counts(
    conn: &Connection,
    w: Window<'_>,
    by: GroupBy,
) -> Result<Vec<PassageCount>, StoreError> {
    let key = match by {
        GroupBy::Unit => "p.unit".to_owned(),
        GroupBy::Week => week_of("p.day"),
        _ => "s.commune".to_owned(),
    };
    let sql = format!(
        "SELECT {key}, p.status, p.cause, count(*) FROM facts p
         JOIN facts s ON s.id = p.stop
         WHERE p.kind = ?1 AND p.deleted = 0 AND p.day BETWEEN ?2 AND ?3 AND s.departement = ?4
         GROUP BY 1, 2, 3"
    );
    aggregate(conn, &sql, Kind::Passage, w, |r| {
        Ok(PassageCount {
            key: text(r, 0)?,
            status: text(r, 1)?,
            cause: r.get(2)?,
            count: count(r, 3)?,
        })
    })
}

/// Appointments per (group, location, status).
fn appointment_counts(
    conn: &Connection,
    w: Window<'_>,
    by: GroupBy,
) -> Result<Vec<AppointmentCount>, StoreError> {
    Ok(count_by(
        conn,
        w,
        Kind::Appointment,
        by,
        &["location", "status"],
        None,
    )?
    .into_iter()
    .map(|(mut k, count, _)| AppointmentCount {
        status: k.pop().unwrap_or_default(),
        location: k.pop().unwrap_or_default(),
        key: k.pop().unwrap_or_default(),
        count,
    })
    .collect())
}

/// Distinct people received, per group and in all.
struct People {
    per_group: HashMap<String, u64>,
    total: u64,
}

/// Distinct people received: appointments seen and walk-ins, a person once however many
/// records name them and whichever duplicate of a merge they name; an appointment or walk-in
/// without a person counts as one person.
fn citizens_received(
    conn: &Connection,
    w: Window<'_>,
    by: GroupBy,
    regroup: &dyn Fn(&str) -> String,
) -> Result<People, StoreError> {
    let merges = Merges::new(merged_persons(conn)?);
    let key = stream_column(by);
    let sql = format!(
        "SELECT {key}, citizen, id FROM facts
         WHERE ((kind = ?1 AND status = 'seen') OR kind = {visit}) AND deleted = 0
         AND day BETWEEN ?2 AND ?3 AND departement = ?4",
        visit = kind_code(Kind::Visit)
    );
    let mut weeks = Weeks::default();
    let rows: Vec<(String, Option<Vec<u8>>, Vec<u8>)> =
        aggregate(conn, &sql, Kind::Appointment, w, |r| {
            let mut group = String::new();
            group_key(r, by, &mut weeks, &mut group)?;
            Ok((group, r.get(1)?, r.get(2)?))
        })?;
    let mut groups: HashMap<String, HashSet<Uuid>> = HashMap::new();
    let mut all: HashSet<Uuid> = HashSet::new();
    for (group, citizen, id) in rows {
        let person = match citizen {
            Some(c) => merges.survivor(uuid_of(&c)?),
            None => uuid_of(&id)?,
        };
        groups.entry(regroup(&group)).or_default().insert(person);
        all.insert(person);
    }
    Ok(People {
        per_group: groups
            .into_iter()
            .map(|(k, v)| (k, v.len() as u64))
            .collect(),
        total: all.len() as u64,
    })
}

/// Every merged person's `merged_into` target (few: merges are rare), to count a person once.
fn merged_persons(conn: &Connection) -> Result<HashMap<Uuid, Uuid>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, merged_into FROM facts WHERE kind = ?1 AND merged_into IS NOT NULL",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([kind_code(Kind::Citizen)], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(sql_err)?;
    let mut out = HashMap::new();
    for row in rows {
        let (a, b) = row.map_err(sql_err)?;
        out.insert(uuid_of(&a)?, uuid_of(&b)?);
    }
    Ok(out)
}

/// Walk-ins per group.
fn walk_in_counts(
    conn: &Connection,
    w: Window<'_>,
    by: GroupBy,
) -> Result<HashMap<String, u64>, StoreError> {
    let key = group_column(by);
    let sql = format!(
        "SELECT {key}, count(*) FROM facts
         WHERE kind = ?1 AND deleted = 0 AND day BETWEEN ?2 AND ?3 AND departement = ?4
         GROUP BY 1"
    );
    aggregate(conn, &sql, Kind::Visit, w, |r| {
        Ok((text(r, 0)?, count(r, 1)?))
    })
}

/// Collective sessions and their attendees per group.
fn workshop_counts(
    conn: &Connection,
    w: Window<'_>,
    by: GroupBy,
) -> Result<HashMap<String, (u64, u64)>, StoreError> {
    let key = group_column(by);
    let sql = format!(
        "SELECT {key}, count(*), coalesce(sum(attendees), 0) FROM facts
         WHERE kind = ?1 AND deleted = 0 AND day BETWEEN ?2 AND ?3 AND departement = ?4
         GROUP BY 1"
    );
    aggregate(conn, &sql, Kind::Workshop, w, |r| {
        Ok((text(r, 0)?, (count(r, 1)?, count(r, 2)?)))
    })
}

/// Requests per (group, partner, theme, outcome), with their minutes summed.
fn request_counts(
    conn: &Connection,
    w: Window<'_>,
    by: GroupBy,
) -> Result<Vec<RequestCount>, StoreError> {
    Ok(count_by(
        conn,
        w,
        Kind::Request,
        by,
        &["partner", "theme", "outcome"],
        Some("minutes"),
    )?
    .into_iter()
    .map(|(mut k, count, minutes)| RequestCount {
        outcome: k.pop().unwrap_or_default(),
        theme: k.pop().unwrap_or_default(),
        partner: k.pop().unwrap_or_default(),
        key: k.pop().unwrap_or_default(),
        count,
        minutes,
    })
    .collect())
}

/// Communes of the territory the service reached in the period: a passage held at one of its
/// stops, a home visit held there (an appointment `seen` at home), or a walk-in recorded there.
fn reached_communes(conn: &Connection, w: Window<'_>) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT s.commune FROM facts p JOIN facts s ON s.id = p.stop
         WHERE p.kind = ?1 AND p.deleted = 0 AND p.day BETWEEN ?2 AND ?3 AND p.status = 'effectue'
         AND s.departement = ?4
         UNION
         SELECT commune FROM facts
         WHERE ((kind = {appointment} AND status = 'seen' AND location = 'domicile') OR kind = {visit})
         AND deleted = 0 AND day BETWEEN ?2 AND ?3 AND departement = ?4",
        appointment = kind_code(Kind::Appointment),
        visit = kind_code(Kind::Visit),
    );
    let communes: Vec<Option<String>> = aggregate(conn, &sql, Kind::Passage, w, |r| r.get(0))?;
    Ok(communes.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::server_store_in_memory;
    use std::collections::BTreeMap;

    fn id(n: u128) -> Vec<u8> {
        Uuid::from_u128(n).as_bytes().to_vec()
    }

    /// Insert one projected row, naming only the columns it sets.
    fn fact(store: &SqliteStore, n: u128, kind: Kind, columns: &[(&str, &dyn rusqlite::ToSql)]) {
        let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
        let marks: Vec<String> = (3..columns.len() + 3).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO facts (id, kind, {}) VALUES (?1, ?2, {})",
            names.join(", "),
            marks.join(", ")
        );
        let (id, kind) = (id(n), kind_code(kind));
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&id, &kind];
        values.extend(columns.iter().map(|(_, v)| *v));
        store
            .conn()
            .execute(&sql, values.as_slice())
            .expect("a fact row");
    }

    fn stop(store: &SqliteStore, n: u128, commune: &str) {
        let departement = &commune[..2];
        fact(
            store,
            n,
            Kind::Stop,
            &[("commune", &commune), ("departement", &departement)],
        );
    }

    /// A passage: (unit, day, stop, status, cancel cause, deleted).
    type Passage<'a> = (&'a str, i64, u128, &'a str, Option<&'a str>, bool);

    fn passage(store: &SqliteStore, n: u128, p: Passage) {
        let (unit, day, stop, status, cause, deleted) = p;
        let stop = id(stop);
        fact(
            store,
            n,
            Kind::Passage,
            &[
                ("unit", &unit),
                ("day", &day),
                ("stop", &stop),
                ("status", &status),
                ("cause", &cause),
                ("deleted", &deleted),
            ],
        );
    }

    /// An appointment: (unit, day, commune, location, status, citizen, deleted).
    type Appointment<'a> = (&'a str, i64, &'a str, &'a str, &'a str, Option<u128>, bool);

    fn appointment(store: &SqliteStore, n: u128, a: Appointment) {
        let (unit, day, commune, location, status, citizen, deleted) = a;
        let departement = &commune[..2];
        let citizen = citizen.map(id);
        fact(
            store,
            n,
            Kind::Appointment,
            &[
                ("unit", &unit),
                ("day", &day),
                ("commune", &commune),
                ("departement", &departement),
                ("location", &location),
                ("status", &status),
                ("citizen", &citizen),
                ("deleted", &deleted),
            ],
        );
    }

    /// A request: (unit, day, commune, partner, theme, outcome, minutes).
    type Request<'a> = (
        &'a str,
        i64,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        Option<i64>,
    );

    fn request(store: &SqliteStore, n: u128, r: Request) {
        let (unit, day, commune, partner, theme, outcome, minutes) = r;
        let departement = &commune[..2];
        fact(
            store,
            n,
            Kind::Request,
            &[
                ("unit", &unit),
                ("day", &day),
                ("commune", &commune),
                ("departement", &departement),
                ("partner", &partner),
                ("theme", &theme),
                ("outcome", &outcome),
                ("minutes", &minutes),
            ],
        );
    }

    /// Stops in two communes of the Somme and one of the Aisne; passages held, cancelled (with
    /// and without a cause), planned, deleted, after the period and in the Aisne; appointments
    /// (one citizen seen twice, one seen without a citizen record, one deleted); requests.
    #[rustfmt::skip] // one fact per line reads as a table
    fn store() -> SqliteStore {
        let store = server_store_in_memory().expect("a store");
        let s = &store;
        stop(s, 1, "80021");
        stop(s, 2, "80001");
        stop(s, 3, "02001");
        passage(s, 10, ("bus-1", 20261202, 1, "effectue", None, false));
        passage(s, 11, ("bus-1", 20261203, 2, "annule", Some("panne"), false));
        passage(s, 12, ("bus-2", 20261204, 2, "annule", None, false));
        passage(s, 13, ("bus-2", 20261205, 1, "planifie", None, false));
        passage(s, 14, ("bus-1", 20261206, 2, "effectue", None, true));
        passage(s, 15, ("bus-1", 20270106, 2, "effectue", None, false));
        passage(s, 16, ("bus-1", 20261207, 3, "effectue", None, false));
        appointment(s, 20, ("bus-1", 20261202, "80021", "arret", "seen", Some(90), false));
        appointment(s, 21, ("bus-1", 20261203, "80021", "arret", "seen", Some(90), false));
        appointment(s, 22, ("bus-2", 20261203, "80001", "domicile", "noshow", Some(91), false));
        appointment(s, 23, ("bus-2", 20261204, "80001", "telephone", "seen", None, false));
        appointment(s, 24, ("bus-2", 20261204, "80001", "arret", "seen", Some(92), true));
        let (caf, housing) = ("caf", "logement");
        request(s, 30, ("bus-1", 20261202, "80021", caf, housing, "resolue_sur_place", Some(20)));
        request(s, 31, ("bus-1", 20261202, "80021", caf, housing, "resolue_sur_place", Some(15)));
        request(s, 32, ("bus-2", 20261203, "80001", "msa", "famille_scolarite", "non_resolue", None));
        request(s, 33, ("bus-1", 20261207, "02001", caf, housing, "non_resolue", Some(5)));
        store
    }

    /// The aggregates in a fixed order (SQL's GROUP BY order and HashMap order are not).
    fn text(mut d: CoverageData) -> String {
        d.passages
            .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        d.appointments
            .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        d.requests
            .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        d.reached.sort();
        let mut citizens: Vec<_> = d.citizens.iter().collect();
        citizens.sort();
        format!(
            "{:?}\n{:?}\n{citizens:?}\n{:?}\n{:?}\n",
            d.passages, d.appointments, d.requests, d.reached
        )
    }

    /// `coverage_data` over `store()` for the Somme in December, per grouping, as computed
    /// before the function was split into one query per aggregate.
    const GOLDEN: [(GroupBy, &str); 4] = [
        (
            GroupBy::Commune,
            concat!(
                "[PassageCount { key: \"80001\", status: \"annule\", cause: None, count: 1 }, PassageCount { key: \"80001\", status: \"annule\", cause: Some(\"panne\"), count: 1 }, PassageCount { key: \"80021\", status: \"effectue\", cause: None, count: 1 }, PassageCount { key: \"80021\", status: \"planifie\", cause: None, count: 1 }]\n",
                "[AppointmentCount { key: \"80001\", location: \"domicile\", status: \"noshow\", count: 1 }, AppointmentCount { key: \"80001\", location: \"telephone\", status: \"seen\", count: 1 }, AppointmentCount { key: \"80021\", location: \"arret\", status: \"seen\", count: 2 }]\n",
                "[(\"80001\", 1), (\"80021\", 1)]\n",
                "[RequestCount { key: \"80001\", partner: \"msa\", theme: \"famille_scolarite\", outcome: \"non_resolue\", count: 1, minutes: 0 }, RequestCount { key: \"80021\", partner: \"caf\", theme: \"logement\", outcome: \"resolue_sur_place\", count: 2, minutes: 35 }]\n",
                "[\"80021\"]\n",
            ),
        ),
        (
            GroupBy::Unit,
            concat!(
                "[PassageCount { key: \"bus-1\", status: \"annule\", cause: Some(\"panne\"), count: 1 }, PassageCount { key: \"bus-1\", status: \"effectue\", cause: None, count: 1 }, PassageCount { key: \"bus-2\", status: \"annule\", cause: None, count: 1 }, PassageCount { key: \"bus-2\", status: \"planifie\", cause: None, count: 1 }]\n",
                "[AppointmentCount { key: \"bus-1\", location: \"arret\", status: \"seen\", count: 2 }, AppointmentCount { key: \"bus-2\", location: \"domicile\", status: \"noshow\", count: 1 }, AppointmentCount { key: \"bus-2\", location: \"telephone\", status: \"seen\", count: 1 }]\n",
                "[(\"bus-1\", 1), (\"bus-2\", 1)]\n",
                "[RequestCount { key: \"bus-1\", partner: \"caf\", theme: \"logement\", outcome: \"resolue_sur_place\", count: 2, minutes: 35 }, RequestCount { key: \"bus-2\", partner: \"msa\", theme: \"famille_scolarite\", outcome: \"non_resolue\", count: 1, minutes: 0 }]\n",
                "[\"80021\"]\n",
            ),
        ),
        (
            GroupBy::Partner,
            concat!(
                "[]\n",
                "[]\n",
                "[]\n",
                "[RequestCount { key: \"caf\", partner: \"caf\", theme: \"logement\", outcome: \"resolue_sur_place\", count: 2, minutes: 35 }, RequestCount { key: \"msa\", partner: \"msa\", theme: \"famille_scolarite\", outcome: \"non_resolue\", count: 1, minutes: 0 }]\n",
                "[\"80021\"]\n",
            ),
        ),
        (
            GroupBy::Theme,
            concat!(
                "[]\n",
                "[]\n",
                "[]\n",
                "[RequestCount { key: \"famille_scolarite\", partner: \"msa\", theme: \"famille_scolarite\", outcome: \"non_resolue\", count: 1, minutes: 0 }, RequestCount { key: \"logement\", partner: \"caf\", theme: \"logement\", outcome: \"resolue_sur_place\", count: 2, minutes: 35 }]\n",
                "[\"80021\"]\n",
            ),
        ),
    ];

    #[test]
    fn the_aggregates_of_a_fixed_projection_are_unchanged() {
        let store = store();
        let from = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        let to = NaiveDate::from_ymd_opt(2026, 12, 31).expect("date");
        for (by, want) in GOLDEN {
            let data = store.coverage_data("80", from, to, by).expect("queries");
            assert_eq!(text(data), want, "{by:?}");
        }
    }

    /// A commune is reached by a passage held, a home visit held or a walk-in recorded there;
    /// a home visit missed or deleted, or a visit by phone, reaches nothing.
    #[test]
    fn home_visits_and_walk_ins_reach_their_commune() {
        let s = store();
        appointment(
            &s,
            26,
            (
                "dom-1",
                20261208,
                "80253",
                "domicile",
                "seen",
                Some(95),
                false,
            ),
        );
        appointment(
            &s,
            27,
            (
                "dom-1",
                20261208,
                "80620",
                "domicile",
                "seen",
                Some(96),
                true,
            ),
        );
        appointment(
            &s,
            28,
            (
                "dom-1",
                20261208,
                "80561",
                "telephone",
                "seen",
                Some(97),
                false,
            ),
        );
        let dep = "80";
        fact(
            &s,
            41,
            Kind::Visit,
            &[
                ("unit", &"dom-1"),
                ("day", &20261209i64),
                ("commune", &"80212"),
                ("departement", &dep),
            ],
        );
        let from = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        let to = NaiveDate::from_ymd_opt(2026, 12, 31).expect("date");
        let mut reached = s
            .coverage_data("80", from, to, GroupBy::Commune)
            .expect("queries")
            .reached;
        reached.sort();
        // 80001: only a home visit missed; 80620: deleted; 80561: by phone.
        assert_eq!(reached, ["80021", "80212", "80253"]);
    }

    /// People are counted once: a person seen in two communes once in the total, a duplicate
    /// merged into them as them, a walk-in with them as them, an anonymous walk-in as one;
    /// walk-ins and collective sessions have their own counts.
    #[test]
    fn people_are_counted_once_across_groups_merges_and_walk_ins() {
        let s = store();
        appointment(
            &s,
            25,
            ("bus-2", 20261205, "80001", "arret", "seen", Some(90), false),
        );
        fact(
            &s,
            93,
            Kind::Citizen,
            &[("unit", &"bus-2"), ("merged_into", &id(90))],
        );
        let dep = "80";
        fact(
            &s,
            40,
            Kind::Visit,
            &[
                ("unit", &"bus-2"),
                ("day", &20261205_i64),
                ("commune", &"80001"),
                ("departement", &dep),
                ("citizen", &id(93)),
            ],
        );
        fact(
            &s,
            41,
            Kind::Visit,
            &[
                ("unit", &"bus-1"),
                ("day", &20261202_i64),
                ("commune", &"80021"),
                ("departement", &dep),
            ],
        );
        fact(
            &s,
            42,
            Kind::Visit,
            &[
                ("unit", &"bus-1"),
                ("day", &20261202_i64),
                ("commune", &"80021"),
                ("departement", &dep),
                ("deleted", &1_i64),
            ],
        );
        fact(
            &s,
            50,
            Kind::Workshop,
            &[
                ("unit", &"bus-1"),
                ("day", &20261202_i64),
                ("commune", &"80021"),
                ("departement", &dep),
                ("attendees", &12_i64),
            ],
        );
        let from = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        let to = NaiveDate::from_ymd_opt(2026, 12, 31).expect("date");
        let d = s
            .coverage_data("80", from, to, GroupBy::Commune)
            .expect("queries");
        let people: BTreeMap<_, _> = d.citizens.iter().collect();
        // 80021: person 90 and the anonymous walk-in; 80001: person 90 (an appointment and a
        // walk-in with her duplicate 93) and the appointment without a person.
        assert_eq!(format!("{people:?}"), r#"{"80001": 2, "80021": 2}"#);
        assert_eq!(
            d.citizens_total, 3,
            "90, the anonymous walk-in, appointment 23"
        );
        let walk_ins: BTreeMap<_, _> = d.walk_ins.iter().collect();
        assert_eq!(format!("{walk_ins:?}"), r#"{"80001": 1, "80021": 1}"#);
        let sessions: BTreeMap<_, _> = d.workshops.iter().collect();
        assert_eq!(format!("{sessions:?}"), r#"{"80021": (1, 12)}"#);
    }

    /// The time series puts every record in the week of its day (Monday first), and the EPCI
    /// grouping sums its communes' counts but counts a person seen in two of them once.
    #[test]
    fn weeks_start_on_monday_and_an_epci_counts_a_person_once() {
        let s = server_store_in_memory().expect("a store");
        stop(&s, 1, "80021"); // Amiens, CA Amiens Métropole
        stop(&s, 2, "80164"); // Camon, the same EPCI
        stop(&s, 3, "80001"); // Abbeville, CA de la Baie de Somme
                              // Sunday 10 January 2027 closes the week of Monday 4; Monday 11 opens the next.
        passage(&s, 10, ("bus", 20270110, 1, "effectue", None, false));
        passage(&s, 11, ("bus", 20270111, 2, "effectue", None, false));
        passage(&s, 12, ("bus", 20270113, 3, "planifie", None, false));
        appointment(
            &s,
            20,
            ("bus", 20270111, "80021", "arret", "seen", Some(7), false),
        );
        appointment(
            &s,
            21,
            ("bus", 20270112, "80164", "arret", "seen", Some(7), false),
        );
        appointment(
            &s,
            22,
            ("bus", 20270112, "80001", "arret", "seen", Some(8), false),
        );
        let (from, to) = (
            NaiveDate::from_ymd_opt(2027, 1, 1).expect("day"),
            NaiveDate::from_ymd_opt(2027, 1, 31).expect("day"),
        );
        let weeks = s
            .coverage_data("80", from, to, GroupBy::Week)
            .expect("weeks");
        let mut planned: Vec<(String, u64)> = weeks
            .passages
            .iter()
            .map(|p| (p.key.clone(), p.count))
            .collect();
        planned.sort();
        assert_eq!(
            planned,
            [
                ("2027-01-04".to_owned(), 1),
                ("2027-01-11".to_owned(), 1),
                ("2027-01-11".to_owned(), 1)
            ]
        );
        assert_eq!(weeks.citizens.get("2027-01-11"), Some(&2));
        let epci = s
            .coverage_data("80", from, to, GroupBy::Epci)
            .expect("epci");
        assert_eq!(
            epci.citizens.get("248000531"),
            Some(&1),
            "one person in two communes"
        );
        assert_eq!(epci.citizens.get("200070993"), Some(&1));
        let held: u64 = epci
            .passages
            .iter()
            .filter(|p| p.key == "248000531" && p.status == "effectue")
            .map(|p| p.count)
            .sum();
        assert_eq!(held, 2, "Amiens and Camon together");
        let report = crate::report::build("80", from, to, GroupBy::Epci, &epci);
        assert!(report.rows.iter().any(|r| r.label == "CA Amiens Métropole"));
    }
}
