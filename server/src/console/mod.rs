//! The web console of schedulers, supervisors and admins, served by `tournee-server serve` on
//! `console_listen`: sign-in (`auth`), then the pages of the account's role and territories
//! (`pages`). Server-rendered HTML (askama), the laptop UI's stylesheet and security headers,
//! works with JavaScript off.
//!
//! What it does not do: hold accounts (`accounts`, on the registry file), compute coverage
//! (`tournee-report`), or trust a link it hides: every handler checks the account's role and
//! territory itself (`Access`). Store and registry work runs on blocking threads, each
//! request with its own connections (WAL).

mod auth;
mod conflicts;
mod fleet;
mod pages;
mod planning;
mod public;
pub mod tls;
mod visits;

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;
use tournee_core::clock::Clock;
use tournee_core::store::StoreError;

use crate::accounts::{Role, User};
use crate::config::DataDir;
use crate::registry::{Registry, RegistryError};

/// The session cookie's name.
pub const COOKIE: &str = "tournee_console";

/// What every request of the console shares.
pub struct ConsoleState {
    data: DataDir,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ConsoleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleState")
            .field("data", &self.data.root())
            .finish_non_exhaustive()
    }
}

impl ConsoleState {
    /// The console of the server in `data`.
    pub fn new(data: DataDir, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self { data, clock })
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

/// Why a console request did not get its page; shown as a French page with its status.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session (a GET goes to the sign-in page instead).
    #[error("connectez-vous pour continuer")]
    Unauthorized,
    /// The account may not see this page or territory, or the form came from elsewhere.
    #[error("accès refusé : {0}")]
    Forbidden(String),
    /// A form field missing or malformed.
    #[error("{0}")]
    Form(String),
    /// Too many failed sign-ins.
    #[error("{0}")]
    Locked(String),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A template failed to render (a defect).
    #[error("la page n'a pas pu être affichée : {0}")]
    Render(#[from] askama::Error),
    /// Anything else (a defect or the system).
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    title: &'static str,
    message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            ConsoleError::Unauthorized => (StatusCode::UNAUTHORIZED, "Connexion nécessaire"),
            ConsoleError::Forbidden(_) => (StatusCode::FORBIDDEN, "Accès refusé"),
            ConsoleError::Form(_) | ConsoleError::Registry(RegistryError::Account(_)) => {
                (StatusCode::BAD_REQUEST, "Formulaire à corriger")
            }
            ConsoleError::Registry(RegistryError::Model(_)) => {
                (StatusCode::BAD_REQUEST, "Formulaire à corriger")
            }
            ConsoleError::Locked(_) => (StatusCode::TOO_MANY_REQUESTS, "Trop d'essais"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Erreur du serveur"),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "console request failed");
        }
        let page = ErrorPage {
            title,
            message: self.to_string(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}

/// Run `f` with the registry on a blocking thread.
async fn with_registry<T: Send + 'static>(
    state: &Arc<ConsoleState>,
    f: impl FnOnce(&Registry, &ConsoleState) -> Result<T, ConsoleError> + Send + 'static,
) -> Result<T, ConsoleError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let reg = Registry::open(&state.data.registry())?;
        f(&reg, &state)
    })
    .await
    .map_err(|e| ConsoleError::Other(anyhow::anyhow!("console task failed: {e}")))?
}

/// The signed-in account of a request, put there by `guard`.
#[derive(Debug, Clone)]
pub struct Signed(pub User);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Signed>()
            .cloned()
            .ok_or(ConsoleError::Unauthorized)
    }
}

/// What a role may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Coverage tables and exports (no personal data).
    Coverage,
    /// Stops, rounds, passages.
    Planning,
    /// The audit journal and accounts.
    Admin,
}

impl Signed {
    /// The account, if its role opens `area` and it sees `territory` (when one is named).
    pub fn may(&self, area: Area, territory: Option<&str>) -> Result<&User, ConsoleError> {
        let u = &self.0;
        let role_ok = match area {
            Area::Coverage => true,
            Area::Planning => matches!(u.role, Role::Admin | Role::Scheduler),
            Area::Admin => u.role == Role::Admin,
        };
        if !role_ok {
            return Err(ConsoleError::Forbidden(format!(
                "cette page n'est pas ouverte au rôle {}",
                u.role.label()
            )));
        }
        if let Some(t) = territory.filter(|t| !u.sees(t)) {
            return Err(ConsoleError::Forbidden(format!(
                "le territoire {t} n'est pas parmi ceux de votre compte"
            )));
        }
        Ok(u)
    }
}

impl Signed {
    /// `may`, with a refusal written to the audit journal (who tried what, where).
    pub fn may_or_journal(
        &self,
        reg: &Registry,
        now_ms: u64,
        area: Area,
        territory: Option<&str>,
        page: &str,
    ) -> Result<&User, ConsoleError> {
        self.may(area, territory).or_else(|e| {
            reg.audit(now_ms, &self.0.name, "access.refused", territory, page)?;
            Err(e)
        })
    }
}

fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn public(path: &str) -> bool {
    path.starts_with("/connexion") || path.starts_with("/assets/") || path.starts_with("/horaires")
}

/// Cross-site forms refused, the session looked up, security headers on every response.
async fn guard(State(state): State<Arc<ConsoleState>>, mut req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut resp = if !safe && !tournee_agent::ui::guard::same_site(req.headers()) {
        ConsoleError::Forbidden("ce formulaire ne vient pas de la console".into()).into_response()
    } else {
        let signed = match session_cookie(req.headers()) {
            Some(token) => {
                with_registry(&state, move |reg, state| {
                    Ok(reg.session_user(&token, state.now_ms())?)
                })
                .await
            }
            None => Ok(None),
        };
        match signed {
            Err(e) => e.into_response(),
            Ok(None) if !public(req.uri().path()) && safe => {
                Redirect::to("/connexion").into_response()
            }
            Ok(None) if !public(req.uri().path()) => ConsoleError::Unauthorized.into_response(),
            Ok(user) => {
                if let Some(u) = user {
                    req.extensions_mut().insert(Signed(u));
                }
                next.run(req).await
            }
        }
    };
    tournee_agent::ui::guard::security_headers(&mut resp);
    resp
}

/// The console's own rules, after the laptop UI's stylesheet.
const CONSOLE_STYLE: &str = include_str!("../../assets/console.css");

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, tournee_agent::ui::pages::IMMUTABLE),
        ],
        format!("{}\n{CONSOLE_STYLE}", tournee_agent::ui::pages::STYLE),
    )
        .into_response()
}

/// The console's routes.
pub fn router(state: Arc<ConsoleState>) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/connexion", get(auth::sign_in_page).post(auth::sign_in))
        .route("/connexion/lien", get(auth::link))
        .route(
            "/mot-de-passe",
            get(auth::password_page).post(auth::set_password),
        )
        .route("/deconnexion", post(auth::sign_out))
        .route("/couverture", get(pages::coverage))
        .route("/couverture.csv", get(pages::coverage_csv))
        .route("/couverture.ods", get(pages::coverage_ods))
        .route("/couverture/carte.svg", get(pages::coverage_svg))
        .route("/arrets", get(planning::stops).post(planning::stop_add))
        .route(
            "/arrets/modifier",
            get(planning::stop_edit).post(planning::stop_save),
        )
        .route("/arrets/archiver", post(planning::stop_archive))
        .route("/tournees", get(planning::rounds))
        .route("/tournees/nouvelle", get(planning::round_new))
        .route("/tournees/modifier", get(planning::round_edit))
        .route("/tournees/enregistrer", post(planning::round_save))
        .route("/tournees/supprimer", post(planning::round_delete))
        .route("/passages", get(planning::passages))
        .route("/passages/changer", get(planning::passage))
        .route("/passages/annuler", post(planning::passage_cancel))
        .route("/passages/deplacer", post(planning::passage_move))
        .route("/passages/partenaires", post(planning::passage_partners))
        .route("/visites", get(visits::visits))
        .route("/visites/planifier", post(visits::plan))
        .route("/conflits", get(conflicts::conflicts))
        .route("/conflits/regler", post(conflicts::resolve))
        .route("/postes", get(fleet::fleet))
        .route("/postes/inscrire", post(fleet::enrol))
        .route("/postes/revoquer", post(fleet::revoke))
        .route("/feries", get(planning::holidays))
        .route("/feries/ajouter", post(planning::holiday_add))
        .route("/feries/retirer", post(planning::holiday_remove))
        .route("/journal", get(pages::journal))
        .route("/horaires", get(public::page))
        .route("/horaires.csv", get(public::csv))
        .route("/horaires.ics", get(public::ics))
        .route("/assets/style.css", get(stylesheet))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .layer(axum::extract::DefaultBodyLimit::max(
            tournee_core::limits::UI_FORM_BYTES_MAX,
        ))
        .with_state(state)
}

/// Serve the console on `listener` until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ConsoleState>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "console listening (http)");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await?;
    Ok(())
}

/// Serve the console over HTTPS on `listener` until `stop` turns true.
pub async fn serve_tls(
    listener: tls::TlsListener,
    state: Arc<ConsoleState>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let addr: SocketAddr = listener.tcp.local_addr()?;
    tracing::info!(%addr, "console listening (https)");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
