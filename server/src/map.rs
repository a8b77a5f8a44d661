//! The console's map of a département: commune contours compiled into the binary
//! (`server/data/contours.bin`: IGN Admin Express COG 2018 via france-geojson, Licence
//! Ouverte, folded into today's communes by `tests/src/bin/contours.rs`), drawn as one SVG with
//! one link and path per commune, filled by what happened there (solid, dotted or hatched:
//! colour is never the only sign) and named with its figures.
//!
//! What it does not do: compute coverage (the caller gives each commune's state and words),
//! or hold personal data (a commune's counts only).

use std::collections::HashMap;
use std::fmt::Write;
use std::io::Read;
use std::sync::OnceLock;

use tournee_core::refdata::RefData;

/// The packed contours (see `tests/src/bin/contours.rs` for the format).
const PACKED: &[u8] = include_bytes!("../data/contours.bin");

/// Units per degree of the stored coordinates.
const QUANTUM: f64 = 2000.0;

/// Width of the map's coordinate space (its viewBox); the height follows the territory.
const MAP_WIDTH: f64 = 10_000.0;

/// Most bytes the unpacked contours may take (they are about 4.8 MB).
const CONTOURS_BYTES_MAX: u64 = 16 << 20;

/// Why a map cannot be drawn (a defect of the compiled-in data).
#[derive(Debug, Clone, thiserror::Error)]
#[error("contours des communes illisibles : {0}")]
pub struct MapError(String);

type Ring = Vec<(i64, i64)>;

/// The contours, unpacked once, with where each commune's starts.
#[derive(Debug)]
pub struct Contours {
    bytes: Vec<u8>,
    index: HashMap<String, usize>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, MapError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| MapError("fin inattendue".into()))?;
            self.at += 1;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(MapError("nombre trop long".into()))
    }

    fn count(&mut self) -> Result<usize, MapError> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.bytes.len())
            .ok_or_else(|| MapError(format!("compte impossible : {n}")))
    }

    fn delta(&mut self) -> Result<i64, MapError> {
        let z = self.varint()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn code(&mut self) -> Result<String, MapError> {
        let len = usize::from(
            *self
                .bytes
                .get(self.at)
                .ok_or_else(|| MapError("code".into()))?,
        );
        let code = self
            .bytes
            .get(self.at + 1..self.at + 1 + len)
            .ok_or_else(|| MapError("code".into()))?;
        self.at += 1 + len;
        String::from_utf8(code.to_vec()).map_err(|_| MapError("code".into()))
    }

    /// One commune's polygons (rings of quantised points).
    fn polygons(&mut self) -> Result<Vec<Vec<Ring>>, MapError> {
        let mut polys = Vec::new();
        for _ in 0..self.count()? {
            let mut rings = Vec::new();
            for _ in 0..self.count()? {
                let n = self.count()?;
                let (mut x, mut y) = (0i64, 0i64);
                let mut ring = Vec::with_capacity(n);
                for _ in 0..n {
                    x += self.delta()?;
                    y += self.delta()?;
                    ring.push((x, y));
                }
                rings.push(ring);
            }
            polys.push(rings);
        }
        Ok(polys)
    }
}

impl Contours {
    /// The compiled-in contours (unpacked at the first call).
    pub fn get() -> Result<&'static Contours, MapError> {
        static CELL: OnceLock<Result<Contours, MapError>> = OnceLock::new();
        CELL.get_or_init(|| Contours::unpack(PACKED))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn unpack(packed: &[u8]) -> Result<Self, MapError> {
        let mut bytes = Vec::new();
        flate2::read::DeflateDecoder::new(packed)
            .take(CONTOURS_BYTES_MAX)
            .read_to_end(&mut bytes)
            .map_err(|e| MapError(e.to_string()))?;
        if !bytes.starts_with(b"TRNC\x01") {
            return Err(MapError("format inconnu".into()));
        }
        let mut r = Reader {
            bytes: &bytes,
            at: 5,
        };
        let mut index = HashMap::new();
        for _ in 0..r.count()? {
            let code = r.code()?;
            index.insert(code, r.at);
            r.polygons()?;
        }
        Ok(Self { bytes, index })
    }

    fn polygons(&self, code: &str) -> Option<Vec<Vec<Ring>>> {
        let at = *self.index.get(code)?;
        Reader {
            bytes: &self.bytes,
            at,
        }
        .polygons()
        .ok()
    }

    /// The codes of the contours that belong to `territory`: today's communes of that
    /// département, and the codes no current commune carries that look like its own.
    fn of_territory(&self, territory: &str) -> (Vec<&str>, usize) {
        let refdata = RefData::get();
        let mut mine = Vec::new();
        let mut unmapped = 0;
        for code in self.index.keys() {
            match refdata.commune(code) {
                Some(c) if c.departement == territory => mine.push(code.as_str()),
                Some(_) => {}
                None if departement_of_code(code) == territory => unmapped += 1,
                None => {}
            }
        }
        mine.sort_unstable();
        (mine, unmapped)
    }
}

/// The département an INSEE code belongs to by its form (97x overseas, else two characters).
fn departement_of_code(code: &str) -> &str {
    let n = if code.starts_with("97") { 3 } else { 2 };
    code.get(..n).unwrap_or(code)
}

/// What happened in a commune over the period, as the map shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A passage held, or a home visit or walk-in recorded there.
    Reached,
    /// Passages planned, none held (and nobody seen there otherwise).
    PlannedNotHeld,
    /// Nothing planned.
    NotPlanned,
}

impl Reach {
    /// The words of the legend.
    pub fn label(self) -> &'static str {
        match self {
            Reach::Reached => "atteinte (passage tenu, visite à domicile ou accueil)",
            Reach::PlannedNotHeld => "passage prévu, pas encore tenu",
            Reach::NotPlanned => "rien de prévu",
        }
    }

    /// The fill (a colour, or a pattern of the map's `<defs>`).
    fn fill(self) -> &'static str {
        match self {
            Reach::Reached => "#1b6b3a",
            Reach::PlannedNotHeld => "url(#prevue)",
            Reach::NotPlanned => "url(#rien)",
        }
    }

    /// The class tests and styles can find the state by.
    pub fn class(self) -> &'static str {
        match self {
            Reach::Reached => "atteinte",
            Reach::PlannedNotHeld => "prevue",
            Reach::NotPlanned => "rien",
        }
    }
}

/// One commune as the caller describes it.
#[derive(Debug, Clone)]
pub struct Place {
    /// Its state.
    pub reach: Reach,
    /// Its figures in words (« 3 passages tenus, 12 personnes reçues »).
    pub summary: String,
    /// Where a click goes (its line of the table).
    pub href: String,
}

/// A drawn map.
#[derive(Debug, Clone)]
pub struct Map {
    /// The `<svg>` element.
    pub svg: String,
    /// Current communes of the territory that have no contour (re-created since 2018), by name.
    pub without_contour: Vec<String>,
    /// Contours of 2018 of the territory that no current commune carries.
    pub unmapped: usize,
}

/// Most territories whose projected outlines are kept in memory (≈ 0.5 MB each).
pub const MAP_OUTLINES_CACHED_MAX: usize = 16;

/// A territory's communes projected once: each one's SVG path data, and the drawing's height.
#[derive(Debug)]
struct Outlines {
    height: f64,
    paths: Vec<(String, String)>,
    without_contour: Vec<String>,
    unmapped: usize,
}

/// The outlines of `territory`, projected on first use and kept (contours do not change
/// while the program runs; only the fills and figures do).
fn outlines(territory: &str) -> Result<std::sync::Arc<Outlines>, MapError> {
    use std::sync::{Arc, Mutex};
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Outlines>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(o) = cache.lock().ok().and_then(|c| c.get(territory).cloned()) {
        return Ok(o);
    }
    let o = Arc::new(project_outlines(territory)?);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= MAP_OUTLINES_CACHED_MAX {
            c.clear();
        }
        c.insert(territory.to_owned(), o.clone());
    }
    Ok(o)
}

fn project_outlines(territory: &str) -> Result<Outlines, MapError> {
    let contours = Contours::get()?;
    let refdata = RefData::get();
    let (codes, unmapped) = contours.of_territory(territory);
    let shapes: Vec<(&str, Vec<Vec<Ring>>)> = codes
        .iter()
        .filter_map(|c| contours.polygons(c).map(|p| (*c, p)))
        .collect();
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (i64::MAX, i64::MAX, i64::MIN, i64::MIN);
    for (x, y) in shapes
        .iter()
        .flat_map(|(_, p)| p.iter().flatten().flatten())
    {
        (min_x, min_y) = (min_x.min(*x), min_y.min(*y));
        (max_x, max_y) = (max_x.max(*x), max_y.max(*y));
    }
    let without_contour: Vec<String> = refdata
        .communes_of(territory)
        .into_iter()
        .filter(|c| !contours.index.contains_key(&c.code_insee))
        .map(|c| c.name.clone())
        .collect();
    if shapes.is_empty() {
        return Ok(Outlines {
            height: 0.0,
            paths: Vec::new(),
            without_contour,
            unmapped,
        });
    }
    let mid_lat = (min_y + max_y) as f64 / 2.0 / QUANTUM;
    let kx = mid_lat.to_radians().cos();
    let scale = MAP_WIDTH / (((max_x - min_x) as f64 * kx).max(1.0));
    let height = ((max_y - min_y) as f64 * scale).ceil();
    let project = |(x, y): (i64, i64)| -> (i64, i64) {
        (
            ((x - min_x) as f64 * kx * scale).round() as i64,
            ((max_y - y) as f64 * scale).round() as i64,
        )
    };
    let mut paths = Vec::with_capacity(shapes.len());
    for (code, polys) in &shapes {
        let mut d = String::new();
        for ring in polys.iter().flatten() {
            let mut prev: Option<(i64, i64)> = None;
            for p in ring.iter().map(|p| project(*p)) {
                match prev {
                    None => {
                        let _ = write!(d, "M{} {}", p.0, p.1);
                    }
                    Some(q) if q == p => continue,
                    Some(q) => {
                        let _ = write!(d, "l{} {}", p.0 - q.0, p.1 - q.1);
                    }
                }
                prev = Some(p);
            }
            d.push('z');
        }
        paths.push(((*code).to_owned(), d));
    }
    Ok(Outlines {
        height,
        paths,
        without_contour,
        unmapped,
    })
}

/// The map of `territory`: every commune with a contour, filled by `places` (a commune
/// missing from it is « rien de prévu »).
pub fn draw(territory: &str, places: &HashMap<String, Place>) -> Result<Map, MapError> {
    let o = outlines(territory)?;
    let refdata = RefData::get();
    if o.paths.is_empty() {
        return Ok(Map {
            svg: String::new(),
            without_contour: o.without_contour.clone(),
            unmapped: o.unmapped,
        });
    }
    let height = o.height;
    let mut svg = String::with_capacity(256 * 1024);
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {MAP_WIDTH} {height}\" role=\"group\" \
         aria-labelledby=\"titre-carte\" class=\"carte-communes\">\
         <title id=\"titre-carte\">Carte des communes : atteintes, prévues, sans rien de prévu</title>{DEFS}"
    );
    let nothing = Place {
        reach: Reach::NotPlanned,
        summary: "aucun passage prévu".into(),
        href: String::new(),
    };
    for (code, d) in &o.paths {
        let place = places.get(code).unwrap_or(&nothing);
        let name = refdata
            .commune(code)
            .map_or(code.as_str(), |c| c.name.as_str());
        let words = escape(&format!("{name} : {}", place.summary));
        let path = format!(
            "<path d=\"{d}\" fill=\"{}\" stroke=\"#ffffff\" stroke-width=\"6\" data-insee=\"{code}\" class=\"{}\"><title>{words}</title></path>",
            place.reach.fill(),
            place.reach.class()
        );
        if place.href.is_empty() {
            svg.push_str(&path);
        } else {
            let _ = write!(
                svg,
                "<a href=\"{}\" aria-label=\"{words}\">{path}</a>",
                escape(&place.href)
            );
        }
    }
    svg.push_str("</svg>");
    Ok(Map {
        svg,
        without_contour: o.without_contour.clone(),
        unmapped: o.unmapped,
    })
}

/// The patterns: dots on amber for planned, hatching on grey for nothing planned.
const DEFS: &str = "<defs>\
<pattern id=\"prevue\" width=\"60\" height=\"60\" patternUnits=\"userSpaceOnUse\">\
<rect width=\"60\" height=\"60\" fill=\"#f3c15a\"/><circle cx=\"30\" cy=\"30\" r=\"10\" fill=\"#6b4a00\"/></pattern>\
<pattern id=\"rien\" width=\"60\" height=\"60\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
<rect width=\"60\" height=\"60\" fill=\"#e4e4e4\"/><rect width=\"12\" height=\"60\" fill=\"#8a8a8a\"/></pattern>\
</defs>";

/// A small swatch of a state's fill, for the legend (an SVG of its own with the same patterns).
pub fn swatch(reach: Reach) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 120 120\" width=\"24\" height=\"24\" aria-hidden=\"true\" focusable=\"false\">{}<rect width=\"120\" height=\"120\" fill=\"{}\" stroke=\"#1a1a1a\" stroke-width=\"6\"/></svg>",
        DEFS.replace("id=\"prevue\"", "id=\"prevue-l\"").replace("id=\"rien\"", "id=\"rien-l\""),
        reach.fill().replace("#prevue", "#prevue-l").replace("#rien", "#rien-l")
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_somme_is_drawn_with_every_commune_and_the_states_it_is_given() {
        let mut places = HashMap::new();
        places.insert(
            "80021".to_owned(),
            Place {
                reach: Reach::Reached,
                summary: "2 passages tenus".into(),
                href: "#c-80021".into(),
            },
        );
        places.insert(
            "80001".to_owned(),
            Place {
                reach: Reach::PlannedNotHeld,
                summary: "1 passage prévu".into(),
                href: "#c-80001".into(),
            },
        );
        let map = draw("80", &places).expect("map");
        let paths = map.svg.matches("<path ").count();
        let communes = RefData::get().communes_of("80").len();
        assert_eq!(
            paths + map.without_contour.len(),
            communes,
            "{:?}",
            map.without_contour
        );
        assert!(map.svg.contains("data-insee=\"80021\" class=\"atteinte\""));
        assert!(map.svg.contains("data-insee=\"80001\" class=\"prevue\""));
        assert_eq!(map.svg.matches("class=\"atteinte\"").count(), 1);
        assert!(map.svg.contains("<title>Amiens : 2 passages tenus</title>"));
        assert!(map.svg.contains("href=\"#c-80021\""));
        assert!(
            map.svg.contains("role=\"group\""),
            "its communes are links: not an image"
        );
    }

    #[test]
    fn a_packed_file_cut_short_is_an_error_not_a_panic() {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, b"TRNC\x01\x05\x0580021\x02").expect("write");
        let packed = z.finish().expect("finish");
        assert!(Contours::unpack(&packed).is_err());
        assert!(Contours::unpack(b"not deflate at all").is_err());
    }
}
