//! The supervisor's coverage report: rows per commune (or unit, partner, theme) for one
//! territory and period, the communes no passage reached, and their renderings as an aligned
//! table, CSV (RFC 4180, UTF-8, header row) and JSON.
//!
//! Holds no personal data by construction: its inputs are counts and codes from the server's
//! projection. It does no I/O beyond writing to the given output.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use chrono::NaiveDate;
use serde::Serialize;

use crate::queries::{CoverageData, GroupBy};
use tournee_core::refdata::RefData;

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct CoverageRow {
    /// Group key: INSEE code, unit id, partner or theme code.
    pub key: String,
    /// Name for people (commune name; the key otherwise).
    pub label: String,
    /// Commune population (INSEE), for commune rows.
    pub population: Option<u64>,
    /// Passages planned in the period (held, cancelled or still planned).
    pub passages_planned: u64,
    /// Passages held.
    pub passages_held: u64,
    /// Passages cancelled.
    pub passages_cancelled: u64,
    /// Cancellations by cause.
    pub cancel_causes: BTreeMap<String, u64>,
    /// Distinct people received (appointments with status `seen`).
    pub citizens_received: u64,
    /// Appointments by location (`arret`, `domicile`, `telephone`).
    pub appointments_by_location: BTreeMap<String, u64>,
    /// Appointments by status.
    pub appointments_by_status: BTreeMap<String, u64>,
    /// Requests.
    pub requests: u64,
    /// Requests by partner.
    pub requests_by_partner: BTreeMap<String, u64>,
    /// Requests by theme.
    pub requests_by_theme: BTreeMap<String, u64>,
    /// Requests resolved on the spot.
    pub resolved_on_spot: u64,
    /// Share of requests resolved on the spot, in percent (none without requests).
    pub resolved_on_spot_pct: Option<f64>,
    /// Minutes spent on requests.
    pub request_minutes: i64,
}

/// A commune of the territory with no passage held in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreached {
    /// INSEE code.
    pub code_insee: String,
    /// Name.
    pub name: String,
    /// Population.
    pub population: u64,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// Territory (département code).
    pub territory: String,
    /// Its name.
    pub territory_name: String,
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// Grouping.
    pub by: &'static str,
    /// Rows, by key.
    pub rows: Vec<CoverageRow>,
    /// Totals over all rows.
    pub totals: CoverageRow,
    /// Communes of the territory with no passage held, most populous first.
    pub unreached: Vec<Unreached>,
}

fn by_name(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Commune => "commune",
        GroupBy::Unit => "unit",
        GroupBy::Partner => "partner",
        GroupBy::Theme => "theme",
    }
}

fn add(map: &mut BTreeMap<String, u64>, k: &str, n: u64) {
    *map.entry(k.to_owned()).or_default() += n;
}

fn fold(total: &mut CoverageRow, r: &CoverageRow) {
    total.passages_planned += r.passages_planned;
    total.passages_held += r.passages_held;
    total.passages_cancelled += r.passages_cancelled;
    total.citizens_received += r.citizens_received;
    total.requests += r.requests;
    total.resolved_on_spot += r.resolved_on_spot;
    total.request_minutes += r.request_minutes;
    for (src, dst) in [
        (&r.cancel_causes, &mut total.cancel_causes),
        (
            &r.appointments_by_location,
            &mut total.appointments_by_location,
        ),
        (&r.appointments_by_status, &mut total.appointments_by_status),
        (&r.requests_by_partner, &mut total.requests_by_partner),
        (&r.requests_by_theme, &mut total.requests_by_theme),
    ] {
        for (k, n) in src {
            add(dst, k, *n);
        }
    }
}

fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (1000.0 * part as f64 / whole as f64).round() / 10.0)
}

/// Assemble the report from the store's aggregates.
pub fn build(
    territory: &str,
    from: NaiveDate,
    to: NaiveDate,
    by: GroupBy,
    data: &CoverageData,
) -> Coverage {
    let refdata = RefData::get();
    let mut rows: BTreeMap<String, CoverageRow> = BTreeMap::new();
    fn row<'a>(rows: &'a mut BTreeMap<String, CoverageRow>, key: &str) -> &'a mut CoverageRow {
        rows.entry(key.to_owned()).or_insert_with(|| CoverageRow {
            key: key.to_owned(),
            ..CoverageRow::default()
        })
    }
    for p in &data.passages {
        let r = row(&mut rows, &p.key);
        r.passages_planned += p.count;
        match p.status.as_str() {
            "effectue" => r.passages_held += p.count,
            "annule" => {
                r.passages_cancelled += p.count;
                add(
                    &mut r.cancel_causes,
                    p.cause.as_deref().unwrap_or("autre"),
                    p.count,
                );
            }
            _ => {}
        }
    }
    for a in &data.appointments {
        let r = row(&mut rows, &a.key);
        add(&mut r.appointments_by_location, &a.location, a.count);
        add(&mut r.appointments_by_status, &a.status, a.count);
    }
    for (k, n) in &data.citizens {
        row(&mut rows, k).citizens_received += n;
    }
    for q in &data.requests {
        let r = row(&mut rows, &q.key);
        r.requests += q.count;
        r.request_minutes += q.minutes;
        add(&mut r.requests_by_partner, &q.partner, q.count);
        add(&mut r.requests_by_theme, &q.theme, q.count);
        if q.outcome == "resolue_sur_place" {
            r.resolved_on_spot += q.count;
        }
    }
    let mut totals = CoverageRow {
        key: "total".into(),
        label: "Total".into(),
        ..CoverageRow::default()
    };
    let mut out: Vec<CoverageRow> = rows.into_values().collect();
    for r in &mut out {
        r.resolved_on_spot_pct = pct(r.resolved_on_spot, r.requests);
        if by == GroupBy::Commune {
            if let Some(c) = refdata.commune(&r.key) {
                r.label = c.name.clone();
                r.population = Some(c.population);
            }
        }
        if r.label.is_empty() {
            r.label = r.key.clone();
        }
        fold(&mut totals, r);
    }
    totals.resolved_on_spot_pct = pct(totals.resolved_on_spot, totals.requests);
    let reached: HashSet<&str> = data.reached.iter().map(String::as_str).collect();
    let mut unreached: Vec<Unreached> = refdata
        .communes_of(territory)
        .into_iter()
        .filter(|c| !reached.contains(c.code_insee.as_str()))
        .map(|c| Unreached {
            code_insee: c.code_insee.clone(),
            name: c.name.clone(),
            population: c.population,
        })
        .collect();
    unreached.sort_by(|a, b| {
        b.population
            .cmp(&a.population)
            .then(a.code_insee.cmp(&b.code_insee))
    });
    Coverage {
        territory: territory.to_owned(),
        territory_name: refdata
            .departement(territory)
            .map(|d| d.name.clone())
            .unwrap_or_default(),
        from,
        to,
        by: by_name(by),
        rows: out,
        totals,
        unreached,
    }
}

fn map_text(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CSV columns, in order (documented in the README).
pub const CSV_COLUMNS: &[&str] = &[
    "group",
    "key",
    "label",
    "population",
    "passages_planned",
    "passages_held",
    "passages_cancelled",
    "cancel_causes",
    "citizens_received",
    "appointments_arret",
    "appointments_domicile",
    "appointments_telephone",
    "appointments_seen",
    "appointments_noshow",
    "appointments_excused",
    "appointments_revoked",
    "appointments_unknown",
    "requests",
    "requests_resolved_on_spot",
    "requests_resolved_on_spot_pct",
    "request_minutes",
    "requests_by_partner",
    "requests_by_theme",
    "reached",
];

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_row(out: &mut dyn Write, cells: &[String]) -> std::io::Result<()> {
    let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
    write!(out, "{}\r\n", line.join(","))
}

fn row_cells(group: &str, r: &CoverageRow, reached: Option<bool>) -> Vec<String> {
    let n = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0).to_string();
    vec![
        group.to_owned(),
        r.key.clone(),
        r.label.clone(),
        r.population.map(|p| p.to_string()).unwrap_or_default(),
        r.passages_planned.to_string(),
        r.passages_held.to_string(),
        r.passages_cancelled.to_string(),
        map_text(&r.cancel_causes),
        r.citizens_received.to_string(),
        n(&r.appointments_by_location, "arret"),
        n(&r.appointments_by_location, "domicile"),
        n(&r.appointments_by_location, "telephone"),
        n(&r.appointments_by_status, "seen"),
        n(&r.appointments_by_status, "noshow"),
        n(&r.appointments_by_status, "excused"),
        n(&r.appointments_by_status, "revoked"),
        n(&r.appointments_by_status, "unknown"),
        r.requests.to_string(),
        r.resolved_on_spot.to_string(),
        r.resolved_on_spot_pct
            .map(|p| format!("{p:.1}"))
            .unwrap_or_default(),
        r.request_minutes.to_string(),
        map_text(&r.requests_by_partner),
        map_text(&r.requests_by_theme),
        reached.map(|b| b.to_string()).unwrap_or_default(),
    ]
}

/// Write the report as CSV: a header row, one row per group, a `total` row, then (when grouped
/// by commune) one row per unreached commune with `reached` = false.
pub fn write_csv(c: &Coverage, out: &mut dyn Write) -> std::io::Result<()> {
    csv_row(
        out,
        &CSV_COLUMNS
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>(),
    )?;
    let reached_of = |r: &CoverageRow| (c.by == "commune").then_some(r.passages_held > 0);
    for r in &c.rows {
        csv_row(out, &row_cells(c.by, r, reached_of(r)))?;
    }
    csv_row(out, &row_cells("total", &c.totals, None))?;
    if c.by == "commune" {
        let listed: HashSet<&str> = c.rows.iter().map(|r| r.key.as_str()).collect();
        for u in c
            .unreached
            .iter()
            .filter(|u| !listed.contains(u.code_insee.as_str()))
        {
            let r = CoverageRow {
                key: u.code_insee.clone(),
                label: u.name.clone(),
                population: Some(u.population),
                ..CoverageRow::default()
            };
            csv_row(out, &row_cells("commune", &r, Some(false)))?;
        }
    }
    Ok(())
}

/// Write the report as one JSON document.
pub fn write_json(c: &Coverage, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, c)?;
    writeln!(out)
}

/// How many unreached communes the table shows before summarising the rest.
const TABLE_UNREACHED_SHOWN: usize = 15;

/// Write the report as an aligned table for people.
pub fn write_table(c: &Coverage, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "Coverage — {} ({}), {} to {}, by {}",
        c.territory_name, c.territory, c.from, c.to, c.by
    )?;
    let headers = [
        c.by, "pop.", "planned", "held", "cancel.", "people", "arret", "domicile", "tél.",
        "requests", "on spot", "minutes",
    ];
    let mut lines: Vec<Vec<String>> = Vec::new();
    for r in c.rows.iter().chain(std::iter::once(&c.totals)) {
        let n = |k: &str| {
            r.appointments_by_location
                .get(k)
                .copied()
                .unwrap_or(0)
                .to_string()
        };
        lines.push(vec![
            if r.key == "total" || r.label == r.key {
                r.label.clone()
            } else {
                format!("{} ({})", r.label, r.key)
            },
            r.population.map(|p| p.to_string()).unwrap_or_default(),
            r.passages_planned.to_string(),
            r.passages_held.to_string(),
            r.passages_cancelled.to_string(),
            r.citizens_received.to_string(),
            n("arret"),
            n("domicile"),
            n("telephone"),
            r.requests.to_string(),
            r.resolved_on_spot_pct
                .map(|p| format!("{p:.0} %"))
                .unwrap_or_else(|| "-".into()),
            r.request_minutes.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .chain(std::iter::once(headers[i].chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let fmt = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let pad = widths[i].saturating_sub(s.chars().count());
                if i == 0 {
                    format!("{s}{}", " ".repeat(pad))
                } else {
                    format!("{}{s}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(
        out,
        "{}",
        fmt(headers.iter().map(|h| (*h).to_owned()).collect())
    )?;
    for l in lines {
        writeln!(out, "{}", fmt(l))?;
    }
    if !c.totals.cancel_causes.is_empty() {
        writeln!(
            out,
            "cancellations by cause: {}",
            map_text(&c.totals.cancel_causes)
        )?;
    }
    if !c.totals.requests_by_partner.is_empty() {
        writeln!(
            out,
            "requests by partner: {}",
            map_text(&c.totals.requests_by_partner)
        )?;
        writeln!(
            out,
            "requests by theme: {}",
            map_text(&c.totals.requests_by_theme)
        )?;
    }
    if c.by == "commune" {
        writeln!(
            out,
            "communes with no passage held: {} of {}",
            c.unreached.len(),
            RefData::get().communes_of(&c.territory).len()
        )?;
        for u in c.unreached.iter().take(TABLE_UNREACHED_SHOWN) {
            writeln!(
                out,
                "  {} ({}) — {} inhabitants",
                u.name, u.code_insee, u.population
            )?;
        }
        if c.unreached.len() > TABLE_UNREACHED_SHOWN {
            writeln!(
                out,
                "  … and {} more (see --format csv)",
                c.unreached.len() - TABLE_UNREACHED_SHOWN
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_per_rfc_4180() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("L'Étoile"), "L'Étoile");
    }
}
