//! Regenerates `server/data/contours.bin`, the commune contours the console draws its maps
//! from, out of the france-geojson files (IGN Admin Express COG 2018, Licence Ouverte):
//! every 2018 code is mapped to today's commune (a commune déléguée or associée to the commune
//! it is attached to, after `communes-rattachees.csv`), coordinates are quantised to
//! 1/2000 of a degree (about 55 m) and delta-coded, and the whole is deflated.
//!
//! `cargo run -p tournee-tests --bin contours -- ../shared/data/contours
//! ../shared/data/communes-rattachees.csv server/data/contours.bin`. The format is read by
//! `tournee_server::map`; a code with no current commune is kept as it is (the map counts it).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tournee_core::refdata::RefData;

/// Units per degree of the stored coordinates.
const QUANTUM: f64 = 2000.0;

type Ring = Vec<(i64, i64)>;
type Polygon = Vec<Ring>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, rattachees, out] = args.as_slice() else {
        bail!("usage: contours CONTOURS_DIR COMMUNES_RATTACHEES_CSV OUT_FILE");
    };
    let attached = attachments(rattachees)?;
    let refdata = RefData::get();
    let mut communes: BTreeMap<String, Vec<Polygon>> = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "geojson"))
        .collect();
    files.sort();
    let (mut seen, mut moved) = (0usize, 0usize);
    for path in &files {
        let doc: Value = serde_json::from_slice(&std::fs::read(path)?)
            .with_context(|| format!("{}", path.display()))?;
        for feature in doc["features"].as_array().context("features")? {
            let code = feature["properties"]["code"]
                .as_str()
                .context("a feature without code")?;
            seen += 1;
            let current = if refdata.commune(code).is_some() {
                code.to_owned()
            } else if let Some(c) = attached.get(code) {
                moved += 1;
                c.clone()
            } else {
                code.to_owned()
            };
            communes
                .entry(current)
                .or_default()
                .extend(polygons(&feature["geometry"])?);
        }
    }
    let mut bytes = b"TRNC\x01".to_vec();
    varint(communes.len() as u64, &mut bytes);
    for (code, polys) in &communes {
        bytes.push(u8::try_from(code.len())?);
        bytes.extend_from_slice(code.as_bytes());
        varint(polys.len() as u64, &mut bytes);
        for poly in polys {
            varint(poly.len() as u64, &mut bytes);
            for ring in poly {
                varint(ring.len() as u64, &mut bytes);
                let (mut px, mut py) = (0i64, 0i64);
                for &(x, y) in ring {
                    varint(zigzag(x - px), &mut bytes);
                    varint(zigzag(y - py), &mut bytes);
                    (px, py) = (x, y);
                }
            }
        }
    }
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&bytes)?;
    let packed = z.finish()?;
    std::fs::write(out, &packed)?;
    eprintln!(
        "{seen} contours of 2018, {moved} folded into the commune they are attached to; \
         {} communes; {} bytes ({} deflated)",
        communes.len(),
        bytes.len(),
        packed.len()
    );
    Ok(())
}

/// 2018 code → today's commune, for the communes déléguées and associées.
fn attachments(path: &str) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty file")?.split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("no column {name}"))
    };
    let (code, to) = (col("code_insee")?, col("commune_de_rattachement")?);
    let mut map = HashMap::new();
    for line in lines {
        // Names may hold commas inside quotes; the two codes never do.
        let cells = split_csv(line);
        if let (Some(a), Some(b)) = (cells.get(code), cells.get(to)) {
            if a != b {
                map.insert(a.clone(), b.clone());
            }
        }
    }
    Ok(map)
}

fn split_csv(line: &str) -> Vec<String> {
    let (mut cells, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    cells.push(cur);
    cells
}

fn polygons(geometry: &Value) -> Result<Vec<Polygon>> {
    let coords = &geometry["coordinates"];
    let list = match geometry["type"].as_str() {
        Some("Polygon") => vec![coords],
        Some("MultiPolygon") => coords.as_array().context("coordinates")?.iter().collect(),
        other => bail!("geometry {other:?}"),
    };
    list.into_iter()
        .map(|poly| {
            poly.as_array()
                .context("rings")?
                .iter()
                .map(ring)
                .collect::<Result<Polygon>>()
        })
        .collect()
}

fn ring(points: &Value) -> Result<Ring> {
    let mut out: Ring = Vec::new();
    for p in points.as_array().context("points")? {
        let x = p[0].as_f64().context("x")?;
        let y = p[1].as_f64().context("y")?;
        let q = ((x * QUANTUM).round() as i64, (y * QUANTUM).round() as i64);
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
    Ok(out)
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}
