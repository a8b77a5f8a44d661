//! Persons (usagers), found again and merged: the accent- and case-blind form a search
//! compares, the match of a query against a person, and the record a merged person now
//! stands for.
//!
//! Pure functions over records and reference data; the store hands the persons in. No
//! ranking beyond "name first", no phonetic matching: a conseillère types what she heard.

use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};
use uuid::Uuid;

use crate::limits::PERSON_MERGE_CHAIN_MAX;
use crate::model::Field;
use crate::record::Record;
use crate::refdata::RefData;

/// Lower case without accents or ligatures: "Lefèvre" → "lefevre", "Œuvray" → "oeuvray".
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfd().filter(|c| !is_combining_mark(*c)) {
        match c {
            'œ' | 'Œ' => out.push_str("oe"),
            'æ' | 'Æ' => out.push_str("ae"),
            'ß' => out.push_str("ss"),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The words of a folded text: runs of letters and digits ("Sainte-Marie" → sainte, marie).
fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// A phone number's digits in national form: "+33 6 12 34 56 78" → "0612345678".
pub fn phone_digits(s: &str) -> String {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("33") {
        Some(rest) if s.trim_start().starts_with('+') => format!("0{rest}"),
        _ => digits,
    }
}

/// The long form of a French abbreviation a query may use ("st" → saint, "ste" → sainte).
fn expansion(word: &str) -> Option<&'static str> {
    match word {
        "st" => Some("saint"),
        "ste" => Some("sainte"),
        _ => None,
    }
}

/// A search query, folded once and compared against many persons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    words: Vec<String>,
    /// The query as a phone number's digits, when it is only digits and separators.
    phone: Option<String>,
}

/// How a person matched a query: by name only ranks before by commune or phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    /// Every word of the query begins a word of the name.
    Name,
    /// Some word matched the commune, the phone or the address.
    Other,
}

impl Query {
    /// Fold a typed query; `None` when it has no letter or digit.
    pub fn new(typed: &str) -> Option<Self> {
        let folded = fold(typed);
        let words: Vec<String> = words(&folded).map(str::to_owned).collect();
        let phone_like = typed
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '+'));
        let digits = phone_digits(typed);
        let phone = (phone_like && digits.len() >= 2).then_some(digits);
        (!words.is_empty()).then_some(Self { words, phone })
    }

    /// Does `person` (a citizen record) match every word of the query? See `matches_entry`.
    pub fn matches(&self, person: &Record) -> Option<Match> {
        self.matches_entry(&PersonEntry::of(person))
    }

    /// Does the person `entry` holds match every word of the query? A word matches when it
    /// begins a word of the name, the commune's name or the address, when its expansion does
    /// ("ste" finds "Sainte-…"), when it is the commune's code, or, all digits (at least
    /// two), when it is part of the phone number; a query of digits and separators alone
    /// matches a phone number holding it ("+33 6 12" finds "06 12 …").
    pub fn matches_entry(&self, entry: &PersonEntry) -> Option<Match> {
        if self
            .phone
            .as_ref()
            .is_some_and(|q| entry.phone.contains(q.as_str()))
        {
            return Some(Match::Other);
        }
        let begins = |text: &str, q: &str| {
            words(text).any(|w| w.starts_with(q) || expansion(q).is_some_and(|e| w.starts_with(e)))
        };
        let mut by_name = true;
        for q in &self.words {
            if begins(&entry.name, q) {
                continue;
            }
            by_name = false;
            let digits = q.len() >= 2 && q.chars().all(|c| c.is_ascii_digit());
            let found = begins(&entry.other, q)
                || *q == entry.commune
                || (digits && entry.phone.contains(&phone_digits(q)));
            if !found {
                return None;
            }
        }
        Some(if by_name { Match::Name } else { Match::Other })
    }
}

/// What a search compares of a person, folded once when the record is written (the laptop's
/// store keeps one per person) instead of at every keystroke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonEntry {
    /// The person record.
    pub id: Uuid,
    /// The name, folded (`fold`): matched first, and the order of results.
    pub name: String,
    /// The commune's name and the address, folded.
    pub other: String,
    /// The commune's code (INSEE), as written.
    pub commune: String,
    /// The phone number's digits (`phone_digits`).
    pub phone: String,
    /// The person this one was merged into, if any.
    pub merged_into: Option<Uuid>,
}

impl PersonEntry {
    /// The entry of a citizen record, as the reference data names its commune.
    pub fn of(person: &Record) -> Self {
        let commune = person.text(Field::Commune).unwrap_or_default();
        Self {
            id: person.id,
            name: fold(person.text(Field::Name).unwrap_or_default()),
            other: fold(&format!(
                "{} {}",
                commune_code_name(commune),
                person.text(Field::Address).unwrap_or_default()
            )),
            commune: commune.to_owned(),
            phone: phone_digits(person.text(Field::Phone).unwrap_or_default()),
            merged_into: person.id_ref(Field::MergedInto),
        }
    }
}

fn commune_code_name(code: &str) -> &str {
    RefData::get().commune(code).map_or("", |c| c.name.as_str())
}

/// The record a person now stands for: follow `merged_into` (as `target` reads it) to a
/// record merged into nothing. Two merges made offline in opposite directions make a cycle;
/// every replica then picks the same survivor, the smallest id on the cycle. A chain longer
/// than `PERSON_MERGE_CHAIN_MAX` stops where it got.
pub fn surviving(id: Uuid, mut target: impl FnMut(Uuid) -> Option<Uuid>) -> Uuid {
    let mut path = vec![id];
    let mut current = id;
    while path.len() <= PERSON_MERGE_CHAIN_MAX {
        let Some(next) = target(current).filter(|n| *n != current) else {
            return current;
        };
        if let Some(at) = path.iter().position(|p| *p == next) {
            return path[at..].iter().copied().min().unwrap_or(next);
        }
        path.push(next);
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, Scope, Value};
    use crate::register::Register;
    use crdts::CmRDT;

    fn person(name: &str, phone: Option<&str>, commune: Option<&str>) -> Record {
        let mut r = Record::new(Uuid::from_u128(1), Kind::Citizen, Scope::Unit("u".into()));
        let mut set = |f: Field, v: &str| {
            let mut reg = Register::new();
            let op = reg.prepare(1, crate::hlc::Hlc(1), Value::Text(v.into()));
            reg.apply(op);
            r.fields.insert(f, reg);
        };
        set(Field::Name, name);
        if let Some(p) = phone {
            set(Field::Phone, p);
        }
        if let Some(c) = commune {
            set(Field::Commune, c);
        }
        r
    }

    #[test]
    fn folding_drops_accents_case_and_ligatures() {
        assert_eq!(fold("Lefèvre"), "lefevre");
        assert_eq!(fold("ÉLOÏSE Œuvray"), "eloise oeuvray");
        assert_eq!(phone_digits("+33 6 12 34 56 78"), "0612345678");
        assert_eq!(phone_digits("06.12.34.56.78"), "0612345678");
    }

    #[test]
    fn a_query_finds_names_without_accents_abbreviations_phones_and_communes() {
        let q = |s: &str| Query::new(s).expect("a query");
        let p = person(
            "Mme Lefèvre-Sainte-Croix",
            Some("06 12 34 56 78"),
            Some("80021"),
        );
        assert_eq!(q("lefevre").matches(&p), Some(Match::Name));
        assert_eq!(q("LEFÈ").matches(&p), Some(Match::Name));
        assert_eq!(q("ste").matches(&p), Some(Match::Name));
        assert_eq!(q("lefevre amiens").matches(&p), Some(Match::Other));
        assert_eq!(q("3456").matches(&p), Some(Match::Other));
        assert_eq!(q("+33 6 12").matches(&p), Some(Match::Other));
        assert_eq!(q("80021").matches(&p), Some(Match::Other));
        assert_eq!(q("martin").matches(&p), None);
        assert_eq!(q("lefevre martin").matches(&p), None);
        assert_eq!(q("fevre").matches(&p), None, "words match from their start");
        assert!(Query::new(" - ").is_none());
    }

    #[test]
    fn merges_are_followed_and_opposite_merges_pick_the_smallest_id() {
        let id = Uuid::from_u128;
        let chain = |u: Uuid| match u.as_u128() {
            1 => Some(id(2)),
            2 => Some(id(3)),
            _ => None,
        };
        assert_eq!(surviving(id(1), chain), id(3));
        assert_eq!(surviving(id(4), chain), id(4));
        let cycle = |u: Uuid| match u.as_u128() {
            5 => Some(id(9)),
            9 => Some(id(7)),
            7 => Some(id(9)),
            _ => None,
        };
        assert_eq!(surviving(id(5), cycle), id(7));
        assert_eq!(surviving(id(9), cycle), id(7));
        assert_eq!(surviving(id(7), cycle), id(7));
        let endless = |u: Uuid| Some(Uuid::from_u128(u.as_u128() + 1));
        assert_eq!(
            surviving(id(0), endless),
            id(PERSON_MERGE_CHAIN_MAX as u128)
        );
    }
}
