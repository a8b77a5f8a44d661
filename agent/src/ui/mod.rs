//! The laptop's local web UI, served by `tournee-agent run` beside the sync loop: pages
//! rendered from the local store only, forms that work without JavaScript (POST → 303).
//!
//! Deliberately not here: any network wait (the sync loop's state comes through a `watch`),
//! any request to another host (assets are compiled in), personal data in URLs or logs, and
//! validation (that is `tournee_core::actions`, shared with the CLI).

pub mod auth;
mod error;
mod forms;
pub use forms::{record_conflict_rows, ConflictRow, ValueRow};
pub mod guard;
pub mod pages;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::setup::STORE_FILE;
use crate::sync::LinkState;
use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;
use tournee_core::clock::Clock;
use tournee_core::limits::UI_FORM_BYTES_MAX;
use tournee_core::store::Identity;
use tournee_store::SqliteStore;

pub use error::UiError;

/// What every request handler shares.
#[derive(Debug)]
pub struct UiState {
    dir: PathBuf,
    /// Held while a request uses the store: one UI request at a time.
    busy: Mutex<()>,
    clock: Arc<dyn Clock>,
    link: watch::Receiver<LinkState>,
    key: String,
    sessions: Mutex<auth::Sessions>,
    hosts: Vec<String>,
    identity: Identity,
}

impl UiState {
    /// The UI of the store in `dir` (whose `identity` the caller read); each request opens its
    /// own connection (WAL: it reads and writes beside the sync loop).
    pub fn open(
        dir: &Path,
        identity: Option<Identity>,
        clock: Arc<dyn Clock>,
        link: watch::Receiver<LinkState>,
        key: String,
        addr: SocketAddr,
    ) -> anyhow::Result<Arc<Self>> {
        let identity = identity.context("store is not initialised: run `tournee-agent init`")?;
        Ok(Arc::new(Self {
            dir: dir.to_owned(),
            busy: Mutex::new(()),
            clock,
            link,
            key,
            sessions: Mutex::new(auth::Sessions::default()),
            hosts: guard::allowed_hosts(addr),
            identity,
        }))
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn now_s(&self) -> i64 {
        i64::try_from(self.now_ms() / 1000).unwrap_or(0)
    }

    fn today(&self) -> chrono::NaiveDate {
        tournee_core::time::paris_date(self.now_s()).unwrap_or_default()
    }
}

/// Run `f` with the store on a blocking thread: SQLite never stalls the sync loop's runtime.
/// The connection is opened for the request and closed after it: an idle connection held
/// beside the daemon's kept its live session from taking the server's pushes.
async fn with_store<T, F>(state: &Arc<UiState>, f: F) -> Result<T, UiError>
where
    T: Send + 'static,
    F: FnOnce(&mut SqliteStore, &UiState) -> Result<T, UiError> + Send + 'static,
{
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let _one = state.busy.lock().map_err(|_| UiError::Poisoned)?;
        let mut store = SqliteStore::open(&state.dir.join(STORE_FILE))?;
        f(&mut store, &state)
    })
    .await?
}

/// Every route of the UI, behind the guard (Host, cross-site, session or key, headers).
pub fn router(state: Arc<UiState>) -> Router {
    Router::new()
        .route("/", get(pages::today))
        .route("/feuille", get(pages::sheet))
        .route("/semaine", get(pages::week))
        .route("/synchronisation", get(pages::sync_page))
        .route("/etat", get(pages::sync_line))
        .route("/accueillir", get(forms::welcome).post(forms::walk_in))
        .route("/atelier", post(forms::workshop))
        .route("/personnes/recherche", post(forms::search))
        .route(
            "/personnes/{id}",
            get(forms::person).post(forms::person_edit),
        )
        .route("/personnes/{id}/doublons", post(forms::person_duplicates))
        .route("/personnes/{id}/fusion", post(forms::person_merge))
        .route("/passages/{id}", post(forms::passage))
        .route("/rendez-vous/{id}", post(forms::appointment))
        .route("/demandes", get(forms::requests))
        .route("/demandes/{id}", post(forms::request_set))
        .route(
            "/demandes/{id}/supprimer",
            get(forms::request_delete_confirm).post(forms::request_delete),
        )
        .route("/conflits", get(forms::conflicts))
        .route("/conflits/{id}", post(forms::resolve))
        .route("/connexion", get(auth::login))
        .route("/assets/style.css", get(pages::stylesheet))
        .route("/assets/htmx-2.0.11.min.js", get(pages::htmx))
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(UI_FORM_BYTES_MAX))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::guard,
        ))
        .with_state(state)
}

/// Serve the UI on `listener` until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<UiState>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "web interface listening (open it with `tournee-agent ui`)");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
        .context("the web interface failed")
}
