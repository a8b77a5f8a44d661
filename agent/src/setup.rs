//! Setting up a laptop's data directory: the store with its identity and, when the laptop was
//! enrolled, the bundle that says how to reach the server.
//!
//! Used by `tournee-agent init` and by the server's demo. No network here.

use std::path::Path;

use anyhow::{bail, Result};
use tournee_cli::{create_private_dir, write_private};
use tournee_core::model::{check_admin_id, check_territory};
use tournee_core::store::{Identity, Store};
use tournee_net::bundle::Bundle;
use tournee_store::SqliteStore;

use crate::sync::{Remote, BUNDLE_FILE};

/// File name of the agent's store inside the data directory.
pub const STORE_FILE: &str = "agent.sqlite";

/// The identity a bundle gives.
pub fn identity_of(bundle: &Bundle) -> Identity {
    Identity {
        device: bundle.device,
        unit: bundle.unit.clone(),
        territory: bundle.territory.clone(),
    }
}

/// Create the store in `dir` for `identity`, keeping `bundle_text` beside it (0600) when the
/// laptop was enrolled. Refuses a directory that already holds a store.
pub fn init_store(
    dir: &Path,
    identity: &Identity,
    bundle_text: Option<&str>,
) -> Result<SqliteStore> {
    check_admin_id("unit", &identity.unit)?;
    check_territory("territory", &identity.territory)?;
    if identity.is_server() {
        bail!("device-id: 0 is the server's actor number; use the number the server assigned");
    }
    if let Some(text) = bundle_text {
        Remote::from_bundle(&Bundle::parse(text)?)?;
    }
    let file = dir.join(STORE_FILE);
    if file.exists() {
        if let Some(have) = SqliteStore::open(&file)?.identity()? {
            bail!(
                "{} is already initialised (device {}, unit {}); use another --data directory",
                dir.display(),
                have.device,
                have.unit
            );
        }
    }
    create_private_dir(dir)?;
    if let Some(text) = bundle_text {
        write_private(&dir.join(BUNDLE_FILE), text.as_bytes())?;
    }
    let mut store = SqliteStore::open(&file)?;
    store.set_identity(identity)?;
    let config = dir.join(crate::config::CONFIG_FILE);
    if !config.exists() {
        write_private(&config, crate::config::CONFIG_TEMPLATE.as_bytes())?;
    }
    Ok(store)
}
