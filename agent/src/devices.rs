//! Names of the unit's devices, to show "Portable 2 (Bus Est)" instead of an actor number in
//! conflicts: this laptop's own name from its bundle, the others' as the server last sent them
//! (`devices.json` in the data directory, rewritten at each sync that brings them).
//!
//! Display only: nothing here decides anything, and a missing or unreadable file falls back to
//! "poste n°N".

use std::collections::BTreeMap;
use std::path::Path;

use tournee_core::limits::DEVICE_NAME_BYTES_MAX;
use tournee_core::store::SERVER_ACTOR;

use crate::sync::BUNDLE_FILE;

/// File name inside the data directory.
pub const DEVICES_FILE: &str = "devices.json";

/// Actor number → device name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceNames {
    names: BTreeMap<u32, String>,
    own: Option<u32>,
}

impl DeviceNames {
    /// Read the names kept in `dir` (and this laptop's own, from its bundle).
    pub fn load(dir: &Path) -> Self {
        let mut names: BTreeMap<u32, String> = std::fs::read(dir.join(DEVICES_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let own = std::fs::read_to_string(dir.join(BUNDLE_FILE))
            .ok()
            .and_then(|t| tournee_net::bundle::Bundle::parse(&t).ok())
            .map(|b| {
                names.insert(b.device, b.device_name.clone());
                b.device
            });
        Self { names, own }
    }

    /// Keep the names the server sent (bounded: longer names are cut) in `dir`.
    pub fn save(dir: &Path, names: &BTreeMap<u32, String>) -> std::io::Result<()> {
        let kept: BTreeMap<u32, String> = names
            .iter()
            .map(|(a, n)| (*a, cut(n, DEVICE_NAME_BYTES_MAX)))
            .collect();
        let bytes = serde_json::to_vec(&kept).map_err(std::io::Error::other)?;
        let tmp = dir.join(format!("{DEVICES_FILE}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, dir.join(DEVICES_FILE))
    }

    /// The name of `actor`, if known.
    pub fn name(&self, actor: u32) -> Option<&str> {
        self.names.get(&actor).map(String::as_str)
    }

    /// How a person reads the writer `actor`: "ce poste (Portable 1)", "Portable 2",
    /// "serveur (planification)", else "poste n°7".
    pub fn label(&self, actor: u32) -> String {
        if actor == SERVER_ACTOR {
            return "serveur (planification)".into();
        }
        match (self.names.get(&actor), self.own == Some(actor)) {
            (Some(n), true) => format!("ce poste ({n})"),
            (None, true) => "ce poste".into(),
            (Some(n), false) => n.clone(),
            (None, false) => format!("poste n°{actor}"),
        }
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_file_and_fall_back_to_the_number() {
        let dir = tempfile::tempdir().expect("tmp");
        let names = BTreeMap::from([(2, "Portable 2".to_owned()), (3, "é".repeat(500))]);
        DeviceNames::save(dir.path(), &names).expect("save");
        let d = DeviceNames::load(dir.path());
        assert_eq!(d.label(2), "Portable 2");
        assert_eq!(d.label(3), "é".repeat(DEVICE_NAME_BYTES_MAX / 2));
        assert_eq!(d.label(9), "poste n°9");
        assert_eq!(d.label(0), "serveur (planification)");
    }
}
