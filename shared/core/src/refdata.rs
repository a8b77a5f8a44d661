//! Reference data compiled into the binary: communes, départements, partners and themes.
//!
//! Loaded once, on first use, from the CSV files in `shared/data/` (see its README for sources,
//! licences and format), read with the `csv` crate: RFC 4180, so a quoted field may hold commas,
//! doubled quotes and newlines. Read-only: agents never edit reference data; a new list ships
//! with a release. `epci.csv` is shipped but not read here yet. A compiled-in file that does not
//! parse is a defect of the release, not an input error: `RefData::get` panics on it, and the
//! tests load every shipped file.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::NaiveDate;
use csv::StringRecord;

/// A French commune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commune {
    /// INSEE code (5 characters, e.g. `80021` for Amiens).
    pub code_insee: String,
    /// Official name.
    pub name: String,
    /// Département code (e.g. `80`, `2A`, `971`).
    pub departement: String,
    /// SIREN of the EPCI the commune belongs to, if any.
    pub epci_siren: Option<String>,
    /// Population (INSEE).
    pub population: u64,
    /// Postal codes.
    pub postal_codes: Vec<String>,
}

/// A département: the territory unit of Tournée.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departement {
    /// Code (`80`).
    pub code: String,
    /// Name (`Somme`).
    pub name: String,
}

/// A partner operator of France Services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// Code (`caf`).
    pub code: String,
    /// Label for people.
    pub label: String,
    /// First day the partner is part of the programme.
    pub valid_from: NaiveDate,
    /// Last day, if it left.
    pub valid_to: Option<NaiveDate>,
}

impl Partner {
    /// Whether a request on `day` may name this partner.
    pub fn valid_on(&self, day: NaiveDate) -> bool {
        day >= self.valid_from && self.valid_to.is_none_or(|to| day <= to)
    }
}

/// A request theme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    /// Code (`logement`).
    pub code: String,
    /// Label for people.
    pub label: String,
}

/// All reference data.
#[derive(Debug)]
pub struct RefData {
    communes: HashMap<String, Commune>,
    departements: Vec<Departement>,
    partners: Vec<Partner>,
    themes: Vec<Theme>,
    /// EPCI names by SIREN (communautés de communes, d'agglomération, métropoles).
    epcis: HashMap<String, String>,
}

const COMMUNES_CSV: &str = include_str!("../../data/communes.csv");
const DEPARTEMENTS_CSV: &str = include_str!("../../data/departements.csv");
const PARTNERS_CSV: &str = include_str!("../../data/partners.csv");
const THEMES_CSV: &str = include_str!("../../data/themes.csv");
const EPCI_CSV: &str = include_str!("../../data/epci.csv");

/// Why a compiled-in reference file does not parse: a defect of the release, never of user
/// input (the tests load every shipped file).
#[derive(Debug, thiserror::Error)]
pub enum RefDataError {
    /// The CSV reader refused the file.
    #[error("reference file {file}: {source}")]
    Csv {
        /// The file, as named in `shared/data/`.
        file: &'static str,
        /// The reader's error, with its position.
        #[source]
        source: csv::Error,
    },
}

/// The data rows of a CSV text with a header row (RFC 4180: quoted fields may hold commas,
/// doubled quotes and newlines).
fn rows(file: &'static str, text: &str) -> Result<Vec<StringRecord>, RefDataError> {
    csv::Reader::from_reader(text.as_bytes())
        .into_records()
        .collect::<Result<_, _>>()
        .map_err(|source| RefDataError::Csv { file, source })
}

fn cell(row: &StringRecord, i: usize) -> String {
    row.get(i).unwrap_or_default().to_owned()
}

fn date_cell(row: &StringRecord, i: usize) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(row.get(i)?, "%Y-%m-%d").ok()
}

fn commune(r: &StringRecord) -> Commune {
    let epci = cell(r, 4);
    Commune {
        code_insee: cell(r, 0),
        name: cell(r, 1),
        departement: cell(r, 2),
        epci_siren: (!epci.is_empty()).then_some(epci),
        population: cell(r, 5).parse().unwrap_or(0),
        postal_codes: cell(r, 6).split_whitespace().map(str::to_owned).collect(),
    }
}

fn partner(r: &StringRecord) -> Partner {
    Partner {
        code: cell(r, 0),
        label: cell(r, 1),
        valid_from: date_cell(r, 2).unwrap_or(NaiveDate::MIN),
        valid_to: date_cell(r, 3),
    }
}

impl RefData {
    fn load() -> Result<Self, RefDataError> {
        let communes = rows("communes.csv", COMMUNES_CSV)?
            .iter()
            .map(commune)
            .map(|c| (c.code_insee.clone(), c))
            .collect();
        let departements = rows("departements.csv", DEPARTEMENTS_CSV)?
            .iter()
            .map(|r| Departement {
                code: cell(r, 0),
                name: cell(r, 1),
            })
            .collect();
        let partners = rows("partners.csv", PARTNERS_CSV)?
            .iter()
            .map(partner)
            .collect();
        let themes = rows("themes.csv", THEMES_CSV)?
            .iter()
            .map(|r| Theme {
                code: cell(r, 0),
                label: cell(r, 1),
            })
            .collect();
        let epcis = rows("epci.csv", EPCI_CSV)?
            .iter()
            .map(|r| (cell(r, 0), cell(r, 1)))
            .collect();
        Ok(Self {
            communes,
            departements,
            partners,
            themes,
            epcis,
        })
    }

    /// The shared, lazily loaded reference data.
    pub fn get() -> &'static RefData {
        static DATA: OnceLock<RefData> = OnceLock::new();
        DATA.get_or_init(|| {
            RefData::load().expect("the compiled-in reference data parses (its tests load it)")
        })
    }

    /// An EPCI's name by SIREN.
    pub fn epci_name(&self, siren: &str) -> Option<&str> {
        self.epcis.get(siren).map(String::as_str)
    }

    /// A commune by INSEE code.
    pub fn commune(&self, code: &str) -> Option<&Commune> {
        self.communes.get(code)
    }

    /// Communes of a département, sorted by INSEE code.
    pub fn communes_of(&self, departement: &str) -> Vec<&Commune> {
        let mut v: Vec<&Commune> = self
            .communes
            .values()
            .filter(|c| c.departement == departement)
            .collect();
        v.sort_by(|a, b| a.code_insee.cmp(&b.code_insee));
        v
    }

    /// A département by code.
    pub fn departement(&self, code: &str) -> Option<&Departement> {
        self.departements.iter().find(|d| d.code == code)
    }

    /// All départements.
    pub fn departements(&self) -> &[Departement] {
        &self.departements
    }

    /// A partner by code.
    pub fn partner(&self, code: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.code == code)
    }

    /// All partners.
    pub fn partners(&self) -> &[Partner] {
        &self.partners
    }

    /// A theme by code.
    pub fn theme(&self, code: &str) -> Option<&Theme> {
        self.themes.iter().find(|t| t.code == code)
    }

    /// All themes.
    pub fn themes(&self) -> &[Theme] {
        &self.themes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_files_load_completely() {
        let r = RefData::get();
        assert_eq!(r.communes.len(), 34_969);
        assert_eq!(r.departements().len(), 109);
        let amiens = r.commune("80021").expect("Amiens is shipped");
        assert_eq!(amiens.name, "Amiens");
        assert_eq!(amiens.departement, "80");
        assert!(amiens.population > 100_000);
        assert_eq!(r.departement("80").map(|d| d.name.as_str()), Some("Somme"));
        assert_eq!(r.partners().len(), 12);
        assert_eq!(r.themes().len(), 11);
        assert!(r.communes_of("80").len() > 700);
    }

    /// Every parsed value of the shipped files, one line per entry, communes by INSEE code.
    fn fingerprint(r: &RefData) -> String {
        use sha2::{Digest, Sha256};
        let mut text = String::new();
        let mut communes: Vec<&Commune> = r.communes.values().collect();
        communes.sort_by(|a, b| a.code_insee.cmp(&b.code_insee));
        for c in communes {
            text.push_str(&format!(
                "{}\t{}\t{}\t{:?}\t{}\t{}\n",
                c.code_insee,
                c.name,
                c.departement,
                c.epci_siren,
                c.population,
                c.postal_codes.join(" ")
            ));
        }
        for d in r.departements() {
            text.push_str(&format!("{}\t{}\n", d.code, d.name));
        }
        for p in r.partners() {
            text.push_str(&format!(
                "{}\t{}\t{}\t{:?}\n",
                p.code, p.label, p.valid_from, p.valid_to
            ));
        }
        for t in r.themes() {
            text.push_str(&format!("{}\t{}\n", t.code, t.label));
        }
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// Computed with the hand-written line splitter this reader replaced: the shipped files
    /// parse to exactly the same values.
    const SHIPPED_FINGERPRINT: &str =
        "a117bd07083ee32bb94595ba428a446d3824403dae578580ba0418feb638fdea";

    #[test]
    fn shipped_files_parse_to_the_same_values_as_before() {
        assert_eq!(fingerprint(RefData::get()), SHIPPED_FINGERPRINT);
    }

    #[test]
    fn quoted_csv_cells_keep_their_commas() {
        let text = "siren,nom,type,x\n1,\"CA Beaune, Côte\",CA,\"a \"\"b\"\"\"\n";
        let row = &rows("test.csv", text).expect("parses")[0];
        assert_eq!(
            row.iter().collect::<Vec<_>>(),
            vec!["1", "CA Beaune, Côte", "CA", "a \"b\""]
        );
    }

    #[test]
    fn quoted_csv_fields_keep_their_commas_quotes_and_newlines() {
        let text =
            "code,label\n1,\"CA Beaune, Côte\"\n2,\"a \"\"b\"\"\"\n3,\"two\nlines, one field\"\n";
        let got: Vec<(String, String)> = rows("test.csv", text)
            .expect("parses")
            .iter()
            .map(|r| (cell(r, 0), cell(r, 1)))
            .collect();
        assert_eq!(
            got,
            [
                ("1", "CA Beaune, Côte"),
                ("2", "a \"b\""),
                ("3", "two\nlines, one field"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    #[test]
    fn a_malformed_file_names_itself_and_keeps_the_reader_error() {
        let err = rows("bad.csv", "a,b\n1,2\n3\n").expect_err("a short row");
        assert!(
            err.to_string().starts_with("reference file bad.csv: "),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn partner_validity_is_dated() {
        let ft = RefData::get().partner("france_travail").expect("shipped");
        assert!(!ft.valid_on(NaiveDate::from_ymd_opt(2023, 6, 1).expect("date")));
        assert!(ft.valid_on(NaiveDate::from_ymd_opt(2026, 6, 1).expect("date")));
    }
}
