//! The console's pages once signed in: home (what the role opens), coverage of a territory
//! over a period (table and CSV, no personal data), the audit journal.
//!
//! Each handler checks the role and the territory itself (`Signed::may`) before reading.
//! Not here: sign-in (`auth`), the figures (`tournee-report`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use tournee_core::refdata::RefData;
use tournee_core::time::{paris_date, parse_date, show_local};
use tournee_report::queries::{CoverageData, GroupBy, Queries};
use tournee_report::report::{self, Coverage};

use super::{with_registry, Area, ConsoleError, ConsoleState, Signed};
use crate::accounts::User;

/// Most journal lines the page shows (the newest; `tournee-server audit` has them all).
const JOURNAL_SHOWN_MAX: usize = 500;

/// What the layout shows around every page.
pub(super) struct Layout {
    pub(super) title: String,
    pub(super) nav: &'static str,
    pub(super) user: String,
    pub(super) role: &'static str,
    pub(super) planning: bool,
    pub(super) admin: bool,
    pub(super) flash: Option<&'static str>,
}

impl Layout {
    pub(super) fn new(u: &User, title: impl Into<String>, nav: &'static str) -> Self {
        Self {
            title: title.into(),
            nav,
            user: u.name.clone(),
            role: u.role.label(),
            planning: matches!(
                u.role,
                crate::accounts::Role::Admin | crate::accounts::Role::Scheduler
            ),
            admin: u.role == crate::accounts::Role::Admin,
            flash: None,
        }
    }
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    l: Layout,
    territories: Vec<(String, String)>,
}

/// `?ok=` after a form.
#[derive(Debug, Deserialize, Default)]
pub struct Flash {
    ok: Option<String>,
}

pub(super) fn territory_name(code: &str) -> String {
    RefData::get()
        .departement(code)
        .map_or_else(|| code.to_owned(), |d| d.name.clone())
}

/// The territories an account sees, with their names (every département for "all").
pub(super) fn seen_territories(u: &User) -> Vec<(String, String)> {
    if u.territories.is_empty() {
        return RefData::get()
            .departements()
            .iter()
            .map(|d| (d.code.clone(), d.name.clone()))
            .collect();
    }
    u.territories
        .iter()
        .map(|t| (t.clone(), territory_name(t)))
        .collect()
}

/// `GET /`.
pub async fn home(signed: Signed, Query(f): Query<Flash>) -> Result<Html<String>, ConsoleError> {
    let u = &signed.0;
    let mut l = Layout::new(u, "Accueil", "home");
    l.flash = match f.ok.as_deref() {
        Some("mot-de-passe") => Some("votre mot de passe est enregistré."),
        _ => None,
    };
    Ok(Html(
        HomePage {
            territories: seen_territories(u),
            l,
        }
        .render()?,
    ))
}

/// Which coverage: a territory, a period, a grouping.
#[derive(Debug, Deserialize, Default)]
pub struct CoverageQuery {
    territoire: Option<String>,
    du: Option<String>,
    au: Option<String>,
    par: Option<String>,
}

struct Asked {
    territory: String,
    from: NaiveDate,
    to: NaiveDate,
    by: GroupBy,
    by_code: &'static str,
}

fn asked(state: &ConsoleState, u: &User, q: &CoverageQuery) -> Result<Asked, ConsoleError> {
    let territory = match &q.territoire {
        Some(t) if !t.is_empty() => t.clone(),
        _ => seen_territories(u)
            .first()
            .map(|t| t.0.clone())
            .ok_or_else(|| ConsoleError::Form("aucun territoire pour ce compte".into()))?,
    };
    tournee_core::model::check_territory("territoire", &territory)
        .map_err(|e| ConsoleError::Form(e.to_string()))?;
    let today = paris_date(i64::try_from(state.now_ms() / 1000).unwrap_or(0))
        .ok_or_else(|| ConsoleError::Form("date du jour inconnue".into()))?;
    let day = |s: &Option<String>, field, default| -> Result<NaiveDate, ConsoleError> {
        match s.as_deref().filter(|s| !s.is_empty()) {
            Some(d) => parse_date(field, d).map_err(|e| ConsoleError::Form(e.to_string())),
            None => Ok(default),
        }
    };
    let from = day(&q.du, "du", today.with_day(1).unwrap_or(today))?;
    let to = day(&q.au, "au", today)?;
    if to < from {
        return Err(ConsoleError::Form(format!(
            "la période finit ({to}) avant de commencer ({from})"
        )));
    }
    let (by, by_code) = match q.par.as_deref().unwrap_or("commune") {
        "commune" => (GroupBy::Commune, "commune"),
        "unite" => (GroupBy::Unit, "unite"),
        "partenaire" => (GroupBy::Partner, "partenaire"),
        "theme" => (GroupBy::Theme, "theme"),
        "epci" => (GroupBy::Epci, "epci"),
        "semaine" => (GroupBy::Week, "semaine"),
        other => {
            return Err(ConsoleError::Form(format!(
                "par : « {other} » n'est pas un regroupement (commune, epci, unite, semaine, partenaire ou theme)"
            )))
        }
    };
    Ok(Asked {
        territory,
        from,
        to,
        by,
        by_code,
    })
}

/// The coverage `q` asks for, once the account may see its territory (a refusal journaled as
/// an attempt on `page`): the account, what was asked, the report.
fn allowed_coverage(
    reg: &crate::registry::Registry,
    state: &ConsoleState,
    signed: &Signed,
    q: &CoverageQuery,
    page: &str,
) -> Result<(User, Asked, Coverage, CoverageData), ConsoleError> {
    let u = signed.0.clone();
    let a = asked(state, &u, q)?;
    signed.may_or_journal(
        reg,
        state.now_ms(),
        Area::Coverage,
        Some(&a.territory),
        page,
    )?;
    let store = state.data.open_store()?;
    let raw = store.coverage_data(&a.territory, a.from, a.to, a.by)?;
    let c = report::build(&a.territory, a.from, a.to, a.by, &raw);
    Ok((u, a, c, raw))
}

/// One row as the table shows it.
struct Row {
    key: String,
    label: String,
    population: String,
    planned: u64,
    held: u64,
    cancelled: u64,
    people: u64,
    walk_ins: u64,
    workshops: u64,
    requests: u64,
    on_spot: String,
}

/// A count the French way: groups of three digits split by a narrow no-break space.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

impl Row {
    fn of(r: &report::CoverageRow) -> Self {
        Self {
            key: r.key.clone(),
            label: r.label.clone(),
            population: r.population.map(thousands).unwrap_or_default(),
            planned: r.passages_planned,
            held: r.passages_held,
            cancelled: r.passages_cancelled,
            people: r.citizens_received,
            walk_ins: r.walk_ins,
            workshops: r.workshops,
            requests: r.requests,
            on_spot: r
                .resolved_on_spot_pct
                .map(|p| format!("{p:.1} %"))
                .unwrap_or_else(|| "—".into()),
        }
    }
}

/// One line of the map's legend.
struct LegendItem {
    swatch: String,
    label: &'static str,
    count: usize,
}

/// The map of the coverage page, with what it could not draw.
struct MapView {
    svg: String,
    legend: Vec<LegendItem>,
    without_contour: Vec<String>,
    unmapped: usize,
}

/// The communes of the territory on the map, filled by what happened over the period; a
/// click goes to the commune's line of the table by commune.
fn coverage_map(
    store: &tournee_store::SqliteStore,
    a: &Asked,
    c: &Coverage,
) -> Result<MapView, ConsoleError> {
    use crate::map::{Place, Reach};
    let by_commune;
    let c = if a.by == GroupBy::Commune {
        c
    } else {
        let raw = store.coverage_data(&a.territory, a.from, a.to, GroupBy::Commune)?;
        by_commune = report::build(&a.territory, a.from, a.to, GroupBy::Commune, &raw);
        &by_commune
    };
    let unreached: std::collections::HashSet<&str> =
        c.unreached.iter().map(|u| u.code_insee.as_str()).collect();
    let table = format!(
        "/couverture?territoire={}&du={}&au={}&par=commune",
        a.territory, a.from, a.to
    );
    let mut places = std::collections::HashMap::new();
    for r in &c.rows {
        let reach = if !unreached.contains(r.key.as_str()) {
            Reach::Reached
        } else if r.passages_planned > 0 {
            Reach::PlannedNotHeld
        } else {
            Reach::NotPlanned
        };
        let summary = format!(
            "{} passage(s) tenu(s) sur {} prévu(s), {} personne(s) reçue(s), {} demande(s)",
            r.passages_held, r.passages_planned, r.citizens_received, r.requests
        );
        places.insert(
            r.key.clone(),
            Place {
                reach,
                summary,
                href: format!("{table}#c-{}", r.key),
            },
        );
    }
    let map = crate::map::draw(&a.territory, &places).map_err(|e| ConsoleError::Other(e.into()))?;
    let count = |reach: Reach| places.values().filter(|p| p.reach == reach).count();
    let total = RefData::get().communes_of(&a.territory).len();
    let legend = vec![
        LegendItem {
            swatch: crate::map::swatch(Reach::Reached),
            label: Reach::Reached.label(),
            count: count(Reach::Reached),
        },
        LegendItem {
            swatch: crate::map::swatch(Reach::PlannedNotHeld),
            label: Reach::PlannedNotHeld.label(),
            count: count(Reach::PlannedNotHeld),
        },
        LegendItem {
            swatch: crate::map::swatch(Reach::NotPlanned),
            label: Reach::NotPlanned.label(),
            count: total.saturating_sub(count(Reach::Reached) + count(Reach::PlannedNotHeld)),
        },
    ];
    Ok(MapView {
        svg: map.svg,
        legend,
        without_contour: map.without_contour,
        unmapped: map.unmapped,
    })
}

/// One chart of the coverage page and the table of its figures.
struct ChartView {
    id: &'static str,
    title: &'static str,
    svg: String,
    /// Column heads after the category's.
    heads: Vec<&'static str>,
    category: &'static str,
    rows: Vec<(String, Vec<String>)>,
}

/// The time series and the requests' breakdowns of a territory over the period.
fn coverage_charts(
    store: &tournee_store::SqliteStore,
    a: &Asked,
    raw: &CoverageData,
) -> Result<Vec<ChartView>, ConsoleError> {
    use crate::charts::{bars, Bar, Spec};
    let refdata = RefData::get();
    let draw = |spec, b: &[Bar]| bars(spec, b).map_err(|e| ConsoleError::Other(e.into()));
    let weeks = {
        let raw = store.weekly_data(&a.territory, a.from, a.to)?;
        report::build(&a.territory, a.from, a.to, GroupBy::Week, &raw)
    };
    let week_label = |key: &str| {
        NaiveDate::parse_from_str(key, "%Y-%m-%d")
            .map_or_else(|_| key.to_owned(), |d| d.format("%d/%m").to_string())
    };
    let passages: Vec<Bar> = weeks
        .rows
        .iter()
        .map(|r| Bar {
            label: week_label(&r.key),
            first: r.passages_planned,
            second: Some(r.passages_held),
        })
        .collect();
    let people: Vec<Bar> = weeks
        .rows
        .iter()
        .map(|r| Bar {
            label: week_label(&r.key),
            first: r.citizens_received,
            second: None,
        })
        .collect();
    let mut charts = vec![
        ChartView {
            id: "graphique-passages",
            title: "Passages prévus et tenus, par semaine",
            svg: draw(
                Spec {
                    title: "Passages prévus et tenus, par semaine",
                    first: "prévus",
                    second: Some("tenus"),
                    horizontal: true,
                },
                &passages,
            )?,
            heads: vec!["Passages prévus", "Passages tenus"],
            category: "Semaine du",
            rows: passages
                .iter()
                .map(|b| {
                    (
                        b.label.clone(),
                        vec![b.first.to_string(), b.second.unwrap_or(0).to_string()],
                    )
                })
                .collect(),
        },
        ChartView {
            id: "graphique-personnes",
            title: "Personnes reçues, par semaine",
            svg: draw(
                Spec {
                    title: "Personnes reçues, par semaine",
                    first: "personnes reçues",
                    second: None,
                    horizontal: true,
                },
                &people,
            )?,
            heads: vec!["Personnes reçues"],
            category: "Semaine du",
            rows: people
                .iter()
                .map(|b| (b.label.clone(), vec![b.first.to_string()]))
                .collect(),
        },
    ];
    for (by, id, title, category) in [
        (
            GroupBy::Partner,
            "graphique-partenaires",
            "Demandes par partenaire, et résolues sur place",
            "Partenaire",
        ),
        (
            GroupBy::Theme,
            "graphique-themes",
            "Demandes par thème, et résolues sur place",
            "Thème",
        ),
    ] {
        // The page's own aggregates, re-keyed: the same requests, no second scan.
        let rekeyed = CoverageData {
            requests: raw
                .requests
                .iter()
                .map(|r| tournee_report::queries::RequestCount {
                    key: if by == GroupBy::Partner {
                        r.partner.clone()
                    } else {
                        r.theme.clone()
                    },
                    ..r.clone()
                })
                .collect(),
            reached: raw.reached.clone(),
            ..CoverageData::default()
        };
        let c = report::build(&a.territory, a.from, a.to, by, &rekeyed);
        let mut rows: Vec<&report::CoverageRow> = c.rows.iter().collect();
        rows.sort_by(|x, y| y.requests.cmp(&x.requests).then(x.key.cmp(&y.key)));
        let name = |key: &str| {
            match by {
                GroupBy::Partner => refdata.partner(key).map(|p| p.label.clone()),
                _ => refdata.theme(key).map(|t| t.label.clone()),
            }
            .unwrap_or_else(|| key.to_owned())
        };
        let b: Vec<Bar> = rows
            .iter()
            .map(|r| Bar {
                label: name(&r.key),
                first: r.requests,
                second: Some(r.resolved_on_spot),
            })
            .collect();
        charts.push(ChartView {
            id,
            title,
            svg: draw(
                Spec {
                    title,
                    first: "demandes",
                    second: Some("résolues sur place"),
                    horizontal: false,
                },
                &b,
            )?,
            heads: vec!["Demandes", "Résolues sur place", "Part résolue sur place"],
            category,
            rows: rows
                .iter()
                .zip(&b)
                .map(|(r, b)| {
                    (
                        b.label.clone(),
                        vec![
                            r.requests.to_string(),
                            r.resolved_on_spot.to_string(),
                            r.resolved_on_spot_pct
                                .map(|p| format!("{p:.1} %"))
                                .unwrap_or_else(|| "—".into()),
                        ],
                    )
                })
                .collect(),
        });
    }
    Ok(charts)
}

#[derive(Template)]
#[template(path = "console/coverage.html")]
struct CoveragePage {
    charts: Vec<ChartView>,
    map: MapView,
    ods: String,
    l: Layout,
    territories: Vec<(String, String)>,
    territory: String,
    territory_name: String,
    from: String,
    to: String,
    by: &'static str,
    rows: Vec<Row>,
    total: Row,
    unreached: Vec<(String, String, String)>,
    csv: String,
}

/// `GET /couverture`.
pub async fn coverage(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<CoverageQuery>,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let (u, a, c, raw) = allowed_coverage(reg, state, &signed, &q, "couverture")?;
        let store = state.data.open_store()?;
        let map = coverage_map(&store, &a, &c)?;
        let charts = coverage_charts(&store, &a, &raw)?;
        let page = CoveragePage {
            charts,
            map,
            ods: format!(
                "/couverture.ods?territoire={}&du={}&au={}&par={}",
                a.territory, a.from, a.to, a.by_code
            ),
            l: Layout::new(&u, format!("Couverture — {}", c.territory_name), "coverage"),
            territories: seen_territories(&u),
            territory: a.territory.clone(),
            territory_name: c.territory_name.clone(),
            from: a.from.to_string(),
            to: a.to.to_string(),
            by: a.by_code,
            rows: c.rows.iter().map(Row::of).collect(),
            total: Row::of(&c.totals),
            unreached: c
                .unreached
                .iter()
                .map(|u| {
                    (
                        u.code_insee.clone(),
                        u.name.clone(),
                        thousands(u.population),
                    )
                })
                .collect(),
            csv: format!(
                "/couverture.csv?territoire={}&du={}&au={}&par={}",
                a.territory, a.from, a.to, a.by_code
            ),
        };
        Ok(page.render()?)
    })
    .await?;
    Ok(Html(html))
}

/// `GET /couverture.ods`: the CSV's rows as an OpenDocument spreadsheet (numbers as numbers),
/// journaled as an export.
pub async fn coverage_ods(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<CoverageQuery>,
) -> Result<Response, ConsoleError> {
    let (name, bytes) = with_registry(&state, move |reg, state| {
        let (u, a, c, _) = allowed_coverage(reg, state, &signed, &q, "couverture.ods")?;
        let bytes = crate::ods::coverage(&c).map_err(ConsoleError::Other)?;
        reg.audit(
            state.now_ms(),
            &u.name,
            "coverage.export",
            Some(&a.territory),
            &format!("{}..{} par {} (ods)", a.from, a.to, a.by_code),
        )?;
        Ok((
            format!("couverture-{}-{}-{}.ods", a.territory, a.from, a.to),
            bytes,
        ))
    })
    .await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.oasis.opendocument.spreadsheet".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /couverture/carte.svg`: the map alone (the page holds it inline).
pub async fn coverage_svg(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<CoverageQuery>,
) -> Result<Response, ConsoleError> {
    let svg = with_registry(&state, move |reg, state| {
        let (_, a, c, _) = allowed_coverage(reg, state, &signed, &q, "couverture.carte")?;
        Ok(coverage_map(&state.data.open_store()?, &a, &c)?.svg)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// `GET /couverture.csv`: the same rows as the table, RFC 4180, journaled as an export.
pub async fn coverage_csv(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Query(q): Query<CoverageQuery>,
) -> Result<Response, ConsoleError> {
    let (name, bytes) = with_registry(&state, move |reg, state| {
        let (u, a, c, _) = allowed_coverage(reg, state, &signed, &q, "couverture.csv")?;
        let mut out = Vec::new();
        report::write_csv(&c, &mut out).map_err(|e| ConsoleError::Other(e.into()))?;
        reg.audit(
            state.now_ms(),
            &u.name,
            "coverage.export",
            Some(&a.territory),
            &format!("{}..{} par {}", a.from, a.to, a.by_code),
        )?;
        Ok((
            format!("couverture-{}-{}-{}.csv", a.territory, a.from, a.to),
            out,
        ))
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// A journal line as the page shows it.
struct JournalRow {
    when: String,
    who: String,
    action: String,
    territory: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/journal.html")]
struct JournalPage {
    l: Layout,
    rows: Vec<JournalRow>,
}

/// `GET /journal` (admins).
pub async fn journal(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
) -> Result<Html<String>, ConsoleError> {
    let html = with_registry(&state, move |reg, state| {
        let u = signed.0.clone();
        signed.may_or_journal(reg, state.now_ms(), Area::Admin, None, "journal")?;
        let rows = reg
            .audit_since(0)?
            .into_iter()
            .rev()
            .take(JOURNAL_SHOWN_MAX)
            .map(|e| JournalRow {
                when: show_local(e.at_ms / 1000),
                who: e.who,
                action: e.action,
                territory: e.territory.unwrap_or_default(),
                detail: e.detail,
            })
            .collect();
        Ok(JournalPage {
            l: Layout::new(&u, "Journal", "journal"),
            rows,
        }
        .render()?)
    })
    .await?;
    Ok(Html(html))
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_grouped_by_three_digits() {
        assert_eq!(super::thousands(7), "7");
        assert_eq!(super::thousands(22_395), "22\u{202f}395");
        assert_eq!(super::thousands(1_136_449), "1\u{202f}136\u{202f}449");
    }
}
