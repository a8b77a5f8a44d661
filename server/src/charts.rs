//! The supervisor's charts as SVG (plotters' SVG backend): bars of two series per category
//! (passages planned and held per week; requests and those resolved on the spot per partner or
//! theme) and of one series (people received per week). Each chart is drawn for a table the
//! page shows next to it: colour and shape are never the only way to read a figure.
//!
//! What it does not do: compute figures (`tournee-report`), or load fonts (the SVG names a
//! generic family; the browser draws the text).

use plotters::prelude::*;

/// Most categories one chart draws (a year of weeks; the table beside it has them all).
pub const CHART_CATEGORIES_MAX: usize = 60;
/// Chart width and height, in SVG user units (the page scales it to its column).
const WIDTH: u32 = 760;
const HEIGHT: u32 = 300;
/// The two series' colours: dark enough against white for graphics (≥ 3:1), told apart by
/// the legend's words too.
const FIRST: RGBColor = RGBColor(0x0a, 0x4f, 0xa6);
const SECOND: RGBColor = RGBColor(0x1e, 0x6b, 0x30);

/// Why a chart could not be drawn (a defect: the inputs are counts).
#[derive(Debug, thiserror::Error)]
#[error("chart: {0}")]
pub struct ChartError(String);

fn err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError(format!("{e:?}"))
}

/// One category of a chart and its values (the second may be absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// Category label (`12/01`, `France Travail`).
    pub label: String,
    /// First series.
    pub first: u64,
    /// Second series, drawn beside the first.
    pub second: Option<u64>,
}

/// What a chart says: its title (the SVG's accessible name), the series' names, the y axis.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// Short title, also the SVG's `<title>`.
    pub title: &'a str,
    /// The first series' name.
    pub first: &'a str,
    /// The second series' name, if the bars have one.
    pub second: Option<&'a str>,
    /// Bars lie along a horizontal axis (weeks) or are stacked down (partners).
    pub horizontal: bool,
}

/// A chart of `bars` as one SVG document, labelled for assistive technology by `spec.title`.
pub fn bars(spec: Spec<'_>, bars: &[Bar]) -> Result<String, ChartError> {
    let bars = &bars[..bars.len().min(CHART_CATEGORIES_MAX)];
    let n = bars.len().max(1);
    let max = bars
        .iter()
        .map(|b| b.first.max(b.second.unwrap_or(0)))
        .max()
        .unwrap_or(0)
        .max(1);
    let top = (max as f64 * 1.1).ceil();
    let height = if spec.horizontal {
        HEIGHT
    } else {
        u32::try_from(60 + 28 * n).unwrap_or(HEIGHT).max(160)
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let label_of = |x: f64| -> String {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            let i = i as usize;
            // Down the chart, the first category is on top.
            let i = if spec.horizontal {
                Some(i)
            } else {
                (n - 1).checked_sub(i)
            };
            i.and_then(|i| bars.get(i))
                .map(|b| b.label.clone())
                .unwrap_or_default()
        };
        let series = if spec.second.is_some() { 2.0 } else { 1.0 };
        let width = 0.8 / series;
        let rect = |i: usize, k: f64, v: u64, color: RGBColor| {
            let at = if spec.horizontal { i } else { n - 1 - i };
            let a = at as f64 - 0.4 + k * width;
            let b = a + width;
            if spec.horizontal {
                Rectangle::new([(a, 0.0), (b, v as f64)], color.filled())
            } else {
                Rectangle::new([(0.0, a), (v as f64, b)], color.filled())
            }
        };
        let mut chart = if spec.horizontal {
            ChartBuilder::on(&root)
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(48)
                .build_cartesian_2d(-0.6..(n as f64 - 0.4), 0.0..top)
                .map_err(err)?
        } else {
            ChartBuilder::on(&root)
                .margin(12)
                .x_label_area_size(30)
                .y_label_area_size(250)
                .build_cartesian_2d(0.0..top, -0.6..(n as f64 - 0.4))
                .map_err(err)?
        };
        let step = n.div_ceil(12).max(1);
        let categories: Vec<f64> = (0..n).step_by(step).map(|i| i as f64).collect();
        let count = |v: &f64| format!("{v:.0}");
        let along = |x: &f64| {
            if categories.iter().any(|c| (c - x).abs() < 1e-6) {
                label_of(*x)
            } else {
                String::new()
            }
        };
        let down = |y: &f64| label_of(*y);
        let mut mesh = chart.configure_mesh();
        mesh.disable_mesh()
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13));
        if spec.horizontal {
            mesh.x_labels(categories.len() * 4)
                .x_label_formatter(&along)
                .y_labels(5)
                .y_label_formatter(&count);
        } else {
            mesh.y_labels(n * 4)
                .y_label_formatter(&down)
                .x_labels(5)
                .x_label_formatter(&count);
        }
        mesh.draw().map_err(err)?;
        chart
            .draw_series(
                bars.iter()
                    .enumerate()
                    .map(|(i, b)| rect(i, 0.0, b.first, FIRST)),
            )
            .map_err(err)?
            .label(spec.first)
            .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], FIRST.filled()));
        if let Some(name) = spec.second {
            chart
                .draw_series(
                    bars.iter()
                        .enumerate()
                        .map(|(i, b)| rect(i, 1.0, b.second.unwrap_or(0), SECOND)),
                )
                .map_err(err)?
                .label(name)
                .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], SECOND.filled()));
        }
        chart
            .configure_series_labels()
            .position(if spec.horizontal {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::LowerRight
            })
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(accessible(&svg, spec.title))
}

/// The SVG with `role="img"`, a `<title>` and a scalable `viewBox` (plotters writes fixed
/// width and height).
fn accessible(svg: &str, title: &str) -> String {
    let title = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    match svg.find('>') {
        Some(end) if svg.starts_with("<svg") => {
            let head = &svg[..end];
            let size = |name: &str| {
                head.split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("0")
                    .to_owned()
            };
            format!(
                "<svg role=\"img\" class=\"graphique\" viewBox=\"0 0 {} {}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{title}</title>{}",
                size("width"),
                size("height"),
                &svg[end + 1..]
            )
        }
        _ => svg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_an_accessible_svg_with_one_bar_per_value() {
        let weeks: Vec<Bar> = (1..=3)
            .map(|i| Bar {
                label: format!("{i:02}/01"),
                first: 4,
                second: Some(i),
            })
            .collect();
        let svg = bars(
            Spec {
                title: "Passages prévus et tenus par semaine",
                first: "prévus",
                second: Some("tenus"),
                horizontal: true,
            },
            &weeks,
        )
        .expect("a chart");
        assert!(svg.starts_with("<svg role=\"img\""), "{}", &svg[..80]);
        assert!(svg.contains("<title>Passages prévus et tenus par semaine</title>"));
        assert!(svg.contains("viewBox=\"0 0 760 300\""));
        assert!(svg.contains("02/01") && svg.contains("tenus"));
        // Three bars of each series and two legend swatches, at least.
        assert!(
            svg.matches("fill=\"#0A4FA6\"").count() + svg.matches("fill=\"#0a4fa6\"").count() >= 4,
            "{svg}"
        );
        let partners = bars(
            Spec {
                title: "Demandes par partenaire",
                first: "demandes",
                second: None,
                horizontal: false,
            },
            &[Bar {
                label: "Caisse d'allocations familiales".into(),
                first: 12,
                second: None,
            }],
        )
        .expect("a chart");
        assert!(
            partners.contains("Caisse d&apos;allocations familiales")
                || partners.contains("Caisse d'allocations familiales")
        );
    }
}
