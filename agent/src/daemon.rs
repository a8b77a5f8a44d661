//! The laptop's daemon without its command line: the sync loop and, beside it, the web UI,
//! until `stop` turns true. `tournee-agent run` and the server's demo both run it.
//!
//! What it does not do: read `agent.toml`, bind the UI's address, catch signals or set up
//! logging — the caller's, so that the demo can run several laptops in one process.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tournee_core::clock::Clock;
use tournee_core::store::Store;
use tournee_store::SqliteStore;

use crate::sync::{run_daemon, Backoff, LinkState, Remote};
use crate::ui;

/// Sync `store` (of the data dir `dir`) with `remote` until `stop`, serving the web UI on
/// `ui_listener` when given. The UI is a convenience beside the sync loop: if it fails, the
/// loop's own result is what counts.
pub async fn run(
    dir: &Path,
    store: &mut SqliteStore,
    remote: &Remote,
    clock: Arc<dyn Clock>,
    backoff: Backoff,
    ui_listener: Option<TcpListener>,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let (link_tx, link_rx) = watch::channel(LinkState::default());
    let ui = match ui_listener {
        Some(listener) => {
            let addr = listener.local_addr()?;
            let key = ui::auth::ensure_key(dir)?;
            let state =
                ui::UiState::open(dir, store.identity()?, clock.clone(), link_rx, key, addr)?;
            Some(tokio::spawn(ui::serve(listener, state, stop.clone())))
        }
        None => None,
    };
    let synced = run_daemon(store, remote, clock.as_ref(), backoff, stop, &link_tx).await;
    match ui {
        // The loop returns Ok only when told to stop: the interface is stopping too.
        Some(ui) if synced.is_ok() => {
            ui.await
                .context("the web interface stopped unexpectedly")??;
        }
        Some(ui) => ui.abort(),
        None => {}
    }
    synced
}
