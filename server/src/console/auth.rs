//! Signing in to the console: the sign-in form (name and password, the lock after failures
//! told in words), the one-time link of `tournee-server user link` that opens a session and
//! asks for a password, and signing out. Every outcome goes to the audit journal.
//!
//! Not here: the rules (`accounts`), the cookie check on other pages (`guard`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tournee_core::time::show_local;

use super::{session_cookie, with_registry, ConsoleError, ConsoleState, Signed, COOKIE};
use crate::accounts::SignIn;

#[derive(Template)]
#[template(path = "console/signin.html")]
struct SignInPage {
    message: String,
}

#[derive(Template)]
#[template(path = "console/password.html")]
struct PasswordPage {
    name: String,
}

fn cookie(state: &ConsoleState, value: &str, max_age_s: u64) -> String {
    let secure = state
        .data
        .load_config()
        .is_ok_and(|c| c.console_base_url().starts_with("https://"));
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    )
}

fn signed_in(state: &ConsoleState, session: &str, to: &str) -> Response {
    let max_age = tournee_core::limits::CONSOLE_SESSION_LIFETIME_MS / 1000;
    (
        [(header::SET_COOKIE, cookie(state, session, max_age))],
        Redirect::to(to),
    )
        .into_response()
}

/// `GET /connexion`.
pub async fn sign_in_page() -> Result<Html<String>, ConsoleError> {
    Ok(Html(
        SignInPage {
            message: String::new(),
        }
        .render()?,
    ))
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    nom: String,
    mot_de_passe: String,
}

/// `POST /connexion`.
pub async fn sign_in(
    State(state): State<Arc<ConsoleState>>,
    Form(f): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let outcome = with_registry(&state, move |reg, state| {
        let now = state.now_ms();
        let outcome = reg.sign_in(&f.nom, &f.mot_de_passe, now)?;
        let action = match &outcome {
            SignIn::Session(..) => "sign_in",
            SignIn::Refused => "sign_in.refused",
            SignIn::Locked(_) => "sign_in.locked",
        };
        reg.audit(now, &f.nom, action, None, "")?;
        Ok(outcome)
    })
    .await?;
    match outcome {
        SignIn::Session(session, _) => Ok(signed_in(&state, &session, "/")),
        SignIn::Refused => {
            let page = SignInPage {
                message: "Nom ou mot de passe incorrect.".into(),
            };
            Ok((axum::http::StatusCode::UNAUTHORIZED, Html(page.render()?)).into_response())
        }
        SignIn::Locked(until) => Err(ConsoleError::Locked(format!(
            "trop d'essais manqués : ce compte est bloqué jusqu'à {} ; réessayez ensuite, ou demandez un lien de connexion à un administrateur",
            show_local(i64::try_from(until / 1000).unwrap_or(0))
        ))),
    }
}

/// The link's secret.
#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    jeton: String,
}

/// `GET /connexion/lien?jeton=…`: a one-time link opens a session and asks for a password.
pub async fn link(
    State(state): State<Arc<ConsoleState>>,
    Query(q): Query<LinkQuery>,
) -> Result<Response, ConsoleError> {
    let session = with_registry(&state, move |reg, state| {
        let now = state.now_ms();
        let Some(user) = reg.redeem_link(&q.jeton, now)? else {
            return Ok(None);
        };
        reg.audit(now, &user.name, "sign_in.link", None, "")?;
        Ok(Some(reg.open_session(user.id, now)?))
    })
    .await?;
    match session {
        Some(s) => Ok(signed_in(&state, &s, "/mot-de-passe")),
        None => Err(ConsoleError::Forbidden(
            "ce lien de connexion a déjà servi ou a expiré ; demandez-en un autre à un administrateur (`tournee-server user link`)".into(),
        )),
    }
}

/// `GET /mot-de-passe`.
pub async fn password_page(signed: Signed) -> Result<Html<String>, ConsoleError> {
    Ok(Html(
        PasswordPage {
            name: signed.0.name,
        }
        .render()?,
    ))
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    mot_de_passe: String,
    confirmation: String,
}

/// `POST /mot-de-passe`.
pub async fn set_password(
    State(state): State<Arc<ConsoleState>>,
    signed: Signed,
    Form(f): Form<PasswordForm>,
) -> Result<Response, ConsoleError> {
    if f.mot_de_passe != f.confirmation {
        return Err(ConsoleError::Form(
            "les deux mots de passe diffèrent ; tapez le même deux fois".into(),
        ));
    }
    with_registry(&state, move |reg, state| {
        reg.set_password(signed.0.id, &f.mot_de_passe)?;
        reg.audit(state.now_ms(), &signed.0.name, "password.set", None, "")?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/?ok=mot-de-passe").into_response())
}

/// `POST /deconnexion`.
pub async fn sign_out(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    if let Some(token) = session_cookie(&headers) {
        with_registry(&state, move |reg, state| {
            if let Some(u) = reg.session_user(&token, state.now_ms())? {
                reg.audit(state.now_ms(), &u.name, "sign_out", None, "")?;
            }
            Ok(reg.end_session(&token)?)
        })
        .await?;
    }
    Ok((
        [(header::SET_COOKIE, cookie(&state, "", 0))],
        Redirect::to("/connexion"),
    )
        .into_response())
}
