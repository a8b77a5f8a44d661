//! Names of the unit's devices, to show "Portable 2" instead of an actor number in conflicts:
//! this laptop's own name from its bundle, the others' as the server last sent them in Welcome
//! (kept in the store by the session).
//!
//! Display only: nothing here decides anything; an unknown writer shows as "poste n°N".

use std::collections::BTreeMap;
use std::path::Path;

use tournee_core::store::{Store, StoreError, SERVER_ACTOR};

use crate::sync::BUNDLE_FILE;

/// Actor number → device name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceNames {
    names: BTreeMap<u32, String>,
    own: Option<u32>,
}

impl DeviceNames {
    /// Names as a registry holds them, none of them "this laptop" (the server's view).
    pub fn new(names: impl IntoIterator<Item = (u32, String)>) -> Self {
        Self {
            names: names.into_iter().collect(),
            own: None,
        }
    }

    /// The names `store` keeps, and this laptop's own (from the bundle in `dir`, else its
    /// identity).
    pub fn of(store: &dyn Store, dir: &Path) -> Result<Self, StoreError> {
        let mut names: BTreeMap<u32, String> = store.device_names()?.into_iter().collect();
        let bundle = std::fs::read_to_string(dir.join(BUNDLE_FILE))
            .ok()
            .and_then(|t| tournee_net::bundle::Bundle::parse(&t).ok());
        if let Some(b) = &bundle {
            names.insert(b.device, b.device_name.clone());
        }
        let own = match bundle {
            Some(b) => Some(b.device),
            None => store.identity()?.map(|i| i.device),
        };
        Ok(Self { names, own })
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

#[cfg(test)]
mod tests {
    use super::*;
    use tournee_core::store::Identity;
    use tournee_store::SqliteStore;

    #[test]
    fn names_come_from_the_store_and_fall_back_to_the_number() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut store = SqliteStore::open(&dir.path().join("a.sqlite")).expect("store");
        store
            .set_identity(&Identity {
                device: 4,
                unit: "bus-80-1".into(),
                territory: "80".into(),
            })
            .expect("identity");
        store
            .set_device_names(&[(2, "Portable 2".to_owned())])
            .expect("names");
        let d = DeviceNames::of(&store, dir.path()).expect("names");
        assert_eq!(d.label(2), "Portable 2");
        assert_eq!(d.label(4), "ce poste");
        assert_eq!(d.label(9), "poste n°9");
        assert_eq!(d.label(0), "serveur (planification)");
    }
}
