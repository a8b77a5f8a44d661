//! `UiError`: every way a UI request fails, rendered as a short French page with the right
//! status; the source is kept for the caller, and the log line names only the status and kind
//! (a validation message may quote what was typed: personal data never goes to the logs).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use tournee_core::actions::ResolveError;
use tournee_core::model::ModelError;
use tournee_core::store::StoreError;
use tournee_core::time::TimeError;

/// Why a UI request failed.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No valid session or key.
    #[error(
        "accès réservé : lancez `tournee-agent ui` sur cet ordinateur pour ouvrir l'interface"
    )]
    Unauthorized,
    /// A foreign Host or a cross-site form.
    #[error("requête refusée : {0}")]
    Forbidden(&'static str),
    /// A form field missing or malformed.
    #[error("{0}")]
    Form(String),
    /// No such page or record.
    #[error("page ou fiche introuvable sur cet ordinateur")]
    NotFound,
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value is not valid.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A date or time is not valid.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// A conflict could not be resolved as asked.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A template failed to render (a defect).
    #[error("la page n'a pas pu être affichée : {0}")]
    Render(#[from] askama::Error),
    /// A blocking task died (a defect).
    #[error("tâche interrompue : {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A lock was poisoned by a panic (a defect).
    #[error("état interne inutilisable : relancez `tournee-agent run`")]
    Poisoned,
    /// A file of the data directory could not be read or written.
    #[error("fichier de l'interface : {0}")]
    File(String),
}

impl UiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::Store(StoreError::NotFound { .. }) => StatusCode::NOT_FOUND,
            Self::Form(_)
            | Self::Model(_)
            | Self::Time(_)
            | Self::Resolve(_)
            | Self::Store(StoreError::Model(_)) => StatusCode::BAD_REQUEST,
            Self::Store(StoreError::Busy { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self.status() {
            StatusCode::UNAUTHORIZED => "Connexion nécessaire",
            StatusCode::FORBIDDEN => "Requête refusée",
            StatusCode::NOT_FOUND => "Introuvable",
            StatusCode::BAD_REQUEST => "Saisie à corriger",
            _ => "Erreur",
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
    back: bool,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), "web interface: {}", kind(&self));
        }
        let page = ErrorPage {
            title: self.title(),
            message: self.to_string(),
            back: status == StatusCode::BAD_REQUEST,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.title()).into_response(),
        }
    }
}

/// The variant's name only: what a log line may say.
fn kind(e: &UiError) -> &'static str {
    match e {
        UiError::Store(_) => "store",
        UiError::Render(_) => "template",
        UiError::Task(_) => "task",
        UiError::Poisoned => "poisoned lock",
        UiError::File(_) => "file",
        _ => "request",
    }
}
