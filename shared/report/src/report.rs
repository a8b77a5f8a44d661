//! The supervisor's coverage report: rows per commune (or unit, partner, theme) for one
//! territory and period, the communes no passage reached, and their renderings as an aligned
//! table (laid out by `comfy-table`), CSV (RFC 4180 with CRLF rows, UTF-8, header row; written
//! by the `csv` crate) and JSON.
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
    /// Distinct people received (appointments with status `seen` and walk-ins; in the totals,
    /// distinct over the whole period, not the sum of the rows).
    pub citizens_received: u64,
    /// Walk-ins (accueils sans rendez-vous).
    pub walk_ins: u64,
    /// Collective sessions (ateliers).
    pub workshops: u64,
    /// Attendees of those sessions (nobody named).
    pub workshop_attendees: u64,
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

/// A commune of the territory the service did not reach in the period (no passage held, no
/// home visit held, no walk-in).
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
    /// Communes of the territory not reached, most populous first.
    pub unreached: Vec<Unreached>,
}

fn by_name(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Commune => "commune",
        GroupBy::Unit => "unit",
        GroupBy::Partner => "partner",
        GroupBy::Theme => "theme",
        GroupBy::Week => "week",
        GroupBy::Epci => "epci",
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
    total.walk_ins += r.walk_ins;
    total.workshops += r.workshops;
    total.workshop_attendees += r.workshop_attendees;
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
    let mut rows: Vec<CoverageRow> = group_rows(data).into_values().collect();
    let mut totals = CoverageRow {
        key: "total".into(),
        label: "Total".into(),
        ..CoverageRow::default()
    };
    for r in &mut rows {
        r.resolved_on_spot_pct = pct(r.resolved_on_spot, r.requests);
        name_row(r, by, refdata);
        fold(&mut totals, r);
    }
    totals.resolved_on_spot_pct = pct(totals.resolved_on_spot, totals.requests);
    // People are counted once over the period: the rows' sum would count twice a person
    // received in two communes.
    totals.citizens_received = data.citizens_total;
    Coverage {
        territory: territory.to_owned(),
        territory_name: refdata
            .departement(territory)
            .map(|d| d.name.clone())
            .unwrap_or_default(),
        from,
        to,
        by: by_name(by),
        rows,
        totals,
        unreached: unreached_communes(refdata, territory, &data.reached),
    }
}

/// The aggregates summed into one row per group key, by key.
fn group_rows(data: &CoverageData) -> BTreeMap<String, CoverageRow> {
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
    for (k, n) in &data.walk_ins {
        row(&mut rows, k).walk_ins += n;
    }
    for (k, (n, attendees)) in &data.workshops {
        let r = row(&mut rows, k);
        r.workshops += n;
        r.workshop_attendees += attendees;
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
    rows
}

/// A row's label for people: the commune's name and its population when grouped by commune,
/// else the key itself.
fn name_row(r: &mut CoverageRow, by: GroupBy, refdata: &RefData) {
    match by {
        GroupBy::Commune => {
            if let Some(c) = refdata.commune(&r.key) {
                r.label = c.name.clone();
                r.population = Some(c.population);
            }
        }
        GroupBy::Epci => {
            if let Some(name) = refdata.epci_name(&r.key) {
                r.label = name.to_owned();
            }
        }
        GroupBy::Week => {
            if let Ok(d) = NaiveDate::parse_from_str(&r.key, "%Y-%m-%d") {
                r.label = format!("semaine du {}", d.format("%d/%m/%Y"));
            }
        }
        GroupBy::Unit | GroupBy::Partner | GroupBy::Theme => {}
    }
    if r.label.is_empty() {
        r.label = r.key.clone();
    }
}

/// Communes of the territory outside `reached`, most populous first (then by INSEE code).
fn unreached_communes(refdata: &RefData, territory: &str, reached: &[String]) -> Vec<Unreached> {
    let reached: HashSet<&str> = reached.iter().map(String::as_str).collect();
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
    unreached
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
    "walk_ins",
    "workshops",
    "workshop_attendees",
];

/// The report's CSV dialect (RFC 4180): comma, `"` quotes only where a field holds a comma, a
/// quote or a line break, CRLF after every row. Rows of another width than the first are an
/// error (the rows and `CSV_COLUMNS` must agree).
fn csv_writer(out: &mut dyn Write) -> csv::Writer<&mut dyn Write> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out)
}

/// The CSV writer's error as an I/O error. A failing output keeps its own error (a closed pipe
/// stays `BrokenPipe`, which the binaries do not report); any other is the source of an `Other`.
fn io_error(e: csv::Error) -> std::io::Error {
    if !e.is_io_error() {
        return std::io::Error::other(e);
    }
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
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
        r.walk_ins.to_string(),
        r.workshops.to_string(),
        r.workshop_attendees.to_string(),
    ]
}

/// Rows for the communes of the territory not reached that are not group rows already
/// (when grouped by commune; none otherwise).
fn unreached_rows(c: &Coverage) -> Vec<CoverageRow> {
    if c.by != "commune" {
        return Vec::new();
    }
    let listed: HashSet<&str> = c.rows.iter().map(|r| r.key.as_str()).collect();
    c.unreached
        .iter()
        .filter(|u| !listed.contains(u.code_insee.as_str()))
        .map(|u| CoverageRow {
            key: u.code_insee.clone(),
            label: u.name.clone(),
            population: Some(u.population),
            ..CoverageRow::default()
        })
        .collect()
}

/// Write the report as CSV: a header row, one row per group, a `total` row, then (when grouped
/// by commune) one row per unreached commune with `reached` = false.
pub fn write_csv(c: &Coverage, out: &mut dyn Write) -> std::io::Result<()> {
    let mut csv = csv_writer(out);
    csv.write_record(CSV_COLUMNS).map_err(io_error)?;
    for row in export_rows(c) {
        csv.write_record(row).map_err(io_error)?;
    }
    csv.flush()
}

/// The rows of the exports under `CSV_COLUMNS`, as text: one per group, the total, then (by
/// commune) the communes not reached. CSV and ODS write the same rows.
pub fn export_rows(c: &Coverage) -> Vec<Vec<String>> {
    let unreached: HashSet<&str> = c.unreached.iter().map(|u| u.code_insee.as_str()).collect();
    let reached_of =
        |r: &CoverageRow| (c.by == "commune").then(|| !unreached.contains(r.key.as_str()));
    let mut rows: Vec<Vec<String>> = c
        .rows
        .iter()
        .map(|r| row_cells(c.by, r, reached_of(r)))
        .collect();
    rows.push(row_cells("total", &c.totals, None));
    rows.extend(
        unreached_rows(c)
            .iter()
            .map(|r| row_cells("commune", r, Some(false))),
    );
    rows
}

/// The export columns that hold a number (the others are codes, names and lists).
pub fn is_number_column(column: &str) -> bool {
    !matches!(
        column,
        "group"
            | "key"
            | "label"
            | "cancel_causes"
            | "requests_by_partner"
            | "requests_by_theme"
            | "reached"
    )
}

/// Write the report as one JSON document.
pub fn write_json(c: &Coverage, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, c)?;
    writeln!(out)
}

/// How many unreached communes the table shows before summarising the rest.
const TABLE_UNREACHED_SHOWN: usize = 15;

/// Spaces between two columns of the table.
const TABLE_COLUMN_GAP: u16 = 2;

/// Write the report as an aligned table for people: a title line, the counts per group and in
/// total, the totals' breakdowns, then (by commune) the most populous unreached communes.
pub fn write_table(c: &Coverage, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "Coverage — {} ({}), {} to {}, by {}",
        c.territory_name, c.territory, c.from, c.to, c.by
    )?;
    writeln!(out, "{}", counts_table(c))?;
    write_breakdowns(&c.totals, out)?;
    if c.by == "commune" {
        write_unreached(c, out)?;
    }
    Ok(())
}

/// The counts, one line per group then the total (laid out by `comfy-table`): the group's name
/// left-aligned, numbers right-aligned, `TABLE_COLUMN_GAP` spaces apart, no borders.
fn counts_table(c: &Coverage) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(table_headers(c.by).to_vec());
    for r in c.rows.iter().chain(std::iter::once(&c.totals)) {
        table.add_row(table_cells(r));
    }
    for (i, column) in table.column_iter_mut().enumerate() {
        if i == 0 {
            column.set_padding((0, 0));
        } else {
            column
                .set_padding((TABLE_COLUMN_GAP, 0))
                .set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    table.to_string()
}

fn table_headers(by: &'static str) -> [&'static str; 14] {
    [
        by, "pop.", "planned", "held", "cancel.", "people", "arret", "domicile", "tél.",
        "walk-ins", "requests", "on spot", "minutes", "sessions",
    ]
}

/// A row's cells under `table_headers`.
fn table_cells(r: &CoverageRow) -> Vec<String> {
    let at = |k: &str| {
        r.appointments_by_location
            .get(k)
            .copied()
            .unwrap_or(0)
            .to_string()
    };
    let name = if r.key == "total" || r.label == r.key {
        r.label.clone()
    } else {
        format!("{} ({})", r.label, r.key)
    };
    vec![
        name,
        r.population.map(|p| p.to_string()).unwrap_or_default(),
        r.passages_planned.to_string(),
        r.passages_held.to_string(),
        r.passages_cancelled.to_string(),
        r.citizens_received.to_string(),
        at("arret"),
        at("domicile"),
        at("telephone"),
        r.walk_ins.to_string(),
        r.requests.to_string(),
        r.resolved_on_spot_pct
            .map(|p| format!("{p:.0} %"))
            .unwrap_or_else(|| "-".into()),
        r.request_minutes.to_string(),
        if r.workshops == 0 {
            "-".into()
        } else {
            format!("{} ({} pers.)", r.workshops, r.workshop_attendees)
        },
    ]
}

/// The totals' cancellations by cause and requests by partner and theme, when there are any.
fn write_breakdowns(totals: &CoverageRow, out: &mut dyn Write) -> std::io::Result<()> {
    if !totals.cancel_causes.is_empty() {
        writeln!(
            out,
            "cancellations by cause: {}",
            map_text(&totals.cancel_causes)
        )?;
    }
    if !totals.requests_by_partner.is_empty() {
        writeln!(
            out,
            "requests by partner: {}",
            map_text(&totals.requests_by_partner)
        )?;
        writeln!(
            out,
            "requests by theme: {}",
            map_text(&totals.requests_by_theme)
        )?;
    }
    Ok(())
}

/// How many communes no passage reached, and the `TABLE_UNREACHED_SHOWN` most populous.
fn write_unreached(c: &Coverage, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "communes not reached (no passage held, home visit or walk-in): {} of {}",
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use crate::queries::{AppointmentCount, PassageCount, RequestCount};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).expect("a date")
    }

    fn passage(key: &str, status: &str, cause: Option<&str>, count: u64) -> PassageCount {
        PassageCount {
            key: key.into(),
            status: status.into(),
            cause: cause.map(Into::into),
            count,
        }
    }

    fn appointment(key: &str, location: &str, status: &str, count: u64) -> AppointmentCount {
        AppointmentCount {
            key: key.into(),
            location: location.into(),
            status: status.into(),
            count,
        }
    }

    fn request(key: &str, partner: &str, outcome: &str, count: u64, minutes: i64) -> RequestCount {
        RequestCount {
            key: key.into(),
            partner: partner.into(),
            theme: "logement".into(),
            outcome: outcome.into(),
            count,
            minutes,
        }
    }

    /// Mayotte (17 communes): two communes with activity, one reached, so 16 unreached (one
    /// more than the table shows).
    fn by_commune() -> Coverage {
        let data = CoverageData {
            passages: vec![
                passage("97611", "effectue", None, 3),
                passage("97611", "annule", Some("panne"), 1),
                passage("97602", "annule", None, 2),
                passage("97602", "planifie", None, 1),
            ],
            appointments: vec![
                appointment("97611", "arret", "seen", 4),
                appointment("97611", "domicile", "noshow", 1),
                appointment("97602", "telephone", "seen", 2),
            ],
            citizens: [("97611".to_owned(), 3), ("97602".to_owned(), 2)].into(),
            // One person was received in both communes.
            citizens_total: 4,
            walk_ins: [("97611".to_owned(), 2)].into(),
            workshops: [("97602".to_owned(), (1, 7))].into(),
            requests: vec![
                request("97611", "caf", "resolue_sur_place", 2, 40),
                request("97611", "msa", "non_resolue", 1, 15),
            ],
            reached: vec!["97611".into()],
        };
        build("976", day(1), day(31), GroupBy::Commune, &data)
    }

    /// Units whose ids need CSV quoting.
    fn by_unit() -> Coverage {
        let data = CoverageData {
            passages: vec![passage("bus,1", "effectue", None, 1)],
            appointments: vec![appointment("say \"hi\"", "arret", "seen", 1)],
            citizens: HashMap::new(),
            citizens_total: 0,
            walk_ins: HashMap::new(),
            workshops: HashMap::new(),
            requests: vec![request("bus,1", "caf", "resolue_sur_place", 1, 5)],
            reached: vec![],
        };
        build("80", day(1), day(31), GroupBy::Unit, &data)
    }

    fn text(
        write: impl Fn(&Coverage, &mut dyn Write) -> std::io::Result<()>,
        c: &Coverage,
    ) -> String {
        let mut out = Vec::new();
        write(c, &mut out).expect("writes to memory");
        String::from_utf8(out).expect("UTF-8")
    }

    // The renderings of the two reports above, as written before the `csv` crate and the split
    // of `write_table` (byte for byte).
    /// By commune in Mayotte, as CSV.
    const COMMUNE_CSV: &str = concat!(
        "group,key,label,population,passages_planned,passages_held,passages_cancelled,cancel_causes,citizens_received,appointments_arret,appointments_domicile,appointments_telephone,appointments_seen,appointments_noshow,appointments_excused,appointments_revoked,appointments_unknown,requests,requests_resolved_on_spot,requests_resolved_on_spot_pct,request_minutes,requests_by_partner,requests_by_theme,reached,walk_ins,workshops,workshop_attendees\r\n",
        "commune,97602,Bandraboua,13989,3,0,2,autre:2,2,0,0,2,2,0,0,0,0,0,0,,0,,,false,0,1,7\r\n",
        "commune,97611,Mamoudzou,71437,4,3,1,panne:1,3,4,1,0,4,1,0,0,0,3,2,66.7,55,caf:2 msa:1,logement:3,true,2,0,0\r\n",
        "total,total,Total,,7,3,3,autre:2 panne:1,4,4,1,2,6,1,0,0,0,3,2,66.7,55,caf:2 msa:1,logement:3,,2,1,7\r\n",
        "commune,97610,Koungou,32156,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97608,Dzaoudzi,17831,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97607,Dembeni,15848,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97617,Tsingoni,13934,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97615,Pamandzi,11442,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97616,Sada,11156,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97603,Bandrele,10282,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97614,Ouangani,10203,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97606,Chirongui,8920,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97605,Chiconi,8295,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97612,Mtsamboro,7705,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97613,M'Tsangamouji,6432,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97604,Bouéni,6189,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97609,Kani-Kéli,5507,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
        "commune,97601,Acoua,5192,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,,0,,,false,0,0,0\r\n",
    );

    /// By commune in Mayotte, as a table.
    const COMMUNE_TABLE: &str = concat!(
        "Coverage — Mayotte (976), 2026-12-01 to 2026-12-31, by commune\n",
        "commune              pop.  planned  held  cancel.  people  arret  domicile  tél.  walk-ins  requests  on spot  minutes     sessions\n",
        "Bandraboua (97602)  13989        3     0        2       2      0         0     2         0         0        -        0  1 (7 pers.)\n",
        "Mamoudzou (97611)   71437        4     3        1       3      4         1     0         2         3     67 %       55            -\n",
        "Total                            7     3        3       4      4         1     2         2         3     67 %       55  1 (7 pers.)\n",
        "cancellations by cause: autre:2 panne:1\n",
        "requests by partner: caf:2 msa:1\n",
        "requests by theme: logement:3\n",
        "communes not reached (no passage held, home visit or walk-in): 16 of 17\n",
        "  Koungou (97610) — 32156 inhabitants\n",
        "  Dzaoudzi (97608) — 17831 inhabitants\n",
        "  Dembeni (97607) — 15848 inhabitants\n",
        "  Bandraboua (97602) — 13989 inhabitants\n",
        "  Tsingoni (97617) — 13934 inhabitants\n",
        "  Pamandzi (97615) — 11442 inhabitants\n",
        "  Sada (97616) — 11156 inhabitants\n",
        "  Bandrele (97603) — 10282 inhabitants\n",
        "  Ouangani (97614) — 10203 inhabitants\n",
        "  Chirongui (97606) — 8920 inhabitants\n",
        "  Chiconi (97605) — 8295 inhabitants\n",
        "  Mtsamboro (97612) — 7705 inhabitants\n",
        "  M'Tsangamouji (97613) — 6432 inhabitants\n",
        "  Bouéni (97604) — 6189 inhabitants\n",
        "  Kani-Kéli (97609) — 5507 inhabitants\n",
        "  … and 1 more (see --format csv)\n",
    );

    /// By unit, ids needing quotes, as CSV.
    const UNIT_CSV: &str = concat!(
        "group,key,label,population,passages_planned,passages_held,passages_cancelled,cancel_causes,citizens_received,appointments_arret,appointments_domicile,appointments_telephone,appointments_seen,appointments_noshow,appointments_excused,appointments_revoked,appointments_unknown,requests,requests_resolved_on_spot,requests_resolved_on_spot_pct,request_minutes,requests_by_partner,requests_by_theme,reached,walk_ins,workshops,workshop_attendees\r\n",
        "unit,\"bus,1\",\"bus,1\",,1,1,0,,0,0,0,0,0,0,0,0,0,1,1,100.0,5,caf:1,logement:1,,0,0,0\r\n",
        "unit,\"say \"\"hi\"\"\",\"say \"\"hi\"\"\",,0,0,0,,0,1,0,0,1,0,0,0,0,0,0,,0,,,,0,0,0\r\n",
        "total,total,Total,,1,1,0,,0,1,0,0,1,0,0,0,0,1,1,100.0,5,caf:1,logement:1,,0,0,0\r\n",
    );

    /// By unit, as a table.
    const UNIT_TABLE: &str = concat!(
        "Coverage — Somme (80), 2026-12-01 to 2026-12-31, by unit\n",
        "unit      pop.  planned  held  cancel.  people  arret  domicile  tél.  walk-ins  requests  on spot  minutes  sessions\n",
        "bus,1                 1     1        0       0      0         0     0         0         1    100 %        5         -\n",
        "say \"hi\"              0     0        0       0      1         0     0         0         0        -        0         -\n",
        "Total                 1     1        0       0      1         0     0         0         1    100 %        5         -\n",
        "requests by partner: caf:1\n",
        "requests by theme: logement:1\n",
    );

    #[test]
    fn the_renderings_keep_their_bytes() {
        let (commune, unit) = (by_commune(), by_unit());
        assert_eq!(text(write_csv, &commune), COMMUNE_CSV);
        assert_eq!(text(write_table, &commune), COMMUNE_TABLE);
        assert_eq!(text(write_csv, &unit), UNIT_CSV);
        assert_eq!(text(write_table, &unit), UNIT_TABLE);
    }

    /// An output that takes `room` bytes, then reports that its reader went away.
    struct ClosedAfter {
        room: usize,
    }

    impl Write for ClosedAfter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// `coverage --format csv | head`: the binaries stay quiet on a broken pipe, so the error
    /// must still be one, also from the middle of a report longer than any write buffer.
    #[test]
    fn a_reader_closing_mid_report_is_a_broken_pipe() {
        let somme = build(
            "80",
            day(1),
            day(31),
            GroupBy::Commune,
            &CoverageData::default(),
        );
        assert!(somme.unreached.len() > 700, "a long report");
        for room in [0, 100, 20_000] {
            let err = write_csv(&somme, &mut ClosedAfter { room }).expect_err("reader gone");
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err:?}");
        }
    }

    /// One field as the report's CSV writer writes it.
    fn csv_cell(s: &str) -> String {
        let mut out = Vec::new();
        let mut csv = csv_writer(&mut out);
        csv.write_record([s]).expect("writes to memory");
        csv.flush().expect("writes to memory");
        drop(csv);
        let line = String::from_utf8(out).expect("UTF-8");
        line.strip_suffix("\r\n").expect("a CRLF row").to_owned()
    }

    #[test]
    fn csv_cells_are_quoted_per_rfc_4180() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("L'Étoile"), "L'Étoile");
    }
}
