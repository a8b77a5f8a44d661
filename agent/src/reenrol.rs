//! `tournee-agent reenrol`: give an initialised data directory a new identity (a new bundle:
//! new device actor, maybe another unit) without losing its queue. The store writes every
//! pending and refused change again under the new actor and starts its ack and cursor from 0;
//! then the new bundle replaces the old one. A laptop set up offline (`init --device-id`) with
//! the number the server then gave it only gains the bundle.
//!
//! Deliberately not here: enrolment itself (the server's `device enroll`) and the network.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use tournee_agent::setup::identity_of;
use tournee_agent::sync::{Remote, BUNDLE_FILE};
use tournee_cli::write_private;
use tournee_core::clock::Clock;
use tournee_core::model::{check_admin_id, check_territory};
use tournee_core::store::Store;
use tournee_net::bundle::Bundle;

/// `reenrol`.
#[derive(Debug, Args)]
pub struct ReenrolArgs {
    /// The new enrolment bundle written by `tournee-server device enroll`.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
}

/// Adopt the identity of `a.bundle` for the store in `dir`, keeping its queue.
pub fn run(dir: &Path, clock: &dyn Clock, a: &ReenrolArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.bundle)
        .with_context(|| format!("cannot read the bundle {}", a.bundle.display()))?;
    let bundle = Bundle::parse(&text)?;
    Remote::from_bundle(&bundle)?;
    let identity = identity_of(&bundle);
    check_admin_id("unit", &identity.unit)?;
    check_territory("territory", &identity.territory)?;
    let mut store = crate::commands::open_existing(dir)?;
    let old = store.identity()?.context("the store has no identity")?;
    // The new bundle goes beside the old one first: the store's commit is the switch, and the
    // rename after it cannot fail halfway.
    let staged = dir.join(format!("{BUNDLE_FILE}.new"));
    write_private(&staged, text.as_bytes())?;
    if old == identity && !dir.join(BUNDLE_FILE).exists() {
        // Set up offline with the number the server then gave it: its writes already carry
        // the right dots, so only the bundle is missing.
        std::fs::rename(&staged, dir.join(BUNDLE_FILE))
            .with_context(|| format!("cannot install the bundle in {}", dir.display()))?;
        println!(
            "enrolled {}: device {} of unit {}; {} change(s) wait for the next sync",
            dir.display(),
            identity.device,
            identity.unit,
            store.stats()?.pending
        );
        return Ok(());
    }
    let queued = match store.reenrol(clock.now_ms(), &identity) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e.into());
        }
    };
    std::fs::rename(&staged, dir.join(BUNDLE_FILE))
        .with_context(|| format!("cannot install the bundle in {}", dir.display()))?;
    println!(
        "re-enrolled {}: device {} of unit {} (was device {} of unit {}); {queued} change(s) queued for the next sync",
        dir.display(),
        identity.device,
        identity.unit,
        old.device,
        old.unit
    );
    Ok(())
}
