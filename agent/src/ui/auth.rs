//! Who may use the UI: a browser session opened with the one-time token `tournee-agent ui`
//! prints, or a script holding the API key file `ui.key` (`Authorization: Bearer`).
//!
//! Deliberately not here: passwords (the laptop's own login protects it), persistent sessions
//! (they live in memory and end with the daemon), the token itself on disk (only its SHA-256).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tournee_cli::secret::{random_hex, same, sha256_hex, SECRET_BYTES};
use tournee_core::limits::{UI_SESSIONS_MAX, UI_SESSION_LIFETIME_MS, UI_TOKEN_LIFETIME_MS};

use super::{UiError, UiState};

/// The API key file in the data directory.
pub const KEY_FILE: &str = "ui.key";
/// The pending one-time token (its SHA-256 and expiry) in the data directory.
pub const TOKEN_FILE: &str = "ui.token";
/// The session cookie's name.
pub const COOKIE: &str = "tournee_session";
/// A fresh random secret, hex.
pub fn random_secret() -> Result<String, UiError> {
    random_hex().map_err(|e| UiError::File(format!("aléa indisponible : {e}")))
}

/// The API key of `dir`, created (0600) when absent.
pub fn ensure_key(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(KEY_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let key = text.trim().to_owned();
        if key.len() >= SECRET_BYTES {
            return Ok(key);
        }
    }
    let key = random_secret()?;
    tournee_cli::write_private(&path, key.as_bytes())?;
    Ok(key)
}

/// Write a fresh one-time token for `dir` (valid `UI_TOKEN_LIFETIME_MS` from `now_ms`) and
/// return it; only its SHA-256 is kept.
pub fn issue_token(dir: &Path, now_ms: u64) -> anyhow::Result<String> {
    let token = random_secret()?;
    let line = format!("{} {}\n", sha256_hex(&token), now_ms + UI_TOKEN_LIFETIME_MS);
    tournee_cli::write_private(&dir.join(TOKEN_FILE), line.as_bytes())?;
    Ok(token)
}

/// Check `token` against the pending one and delete it (valid or expired: one use only).
fn take_token(dir: &Path, token: &str, now_ms: u64) -> bool {
    let path = dir.join(TOKEN_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return false;
    };
    let Some((hash, expiry)) = text.trim().split_once(' ') else {
        return false;
    };
    let valid = same(hash, &sha256_hex(token)) && expiry.parse::<u64>().is_ok_and(|e| now_ms < e);
    if valid || expiry.parse::<u64>().is_ok_and(|e| now_ms >= e) {
        let _ = std::fs::remove_file(&path);
    }
    valid
}

/// Open sessions: SHA-256 of the id → expiry (wall ms), at most `UI_SESSIONS_MAX`.
#[derive(Debug, Default)]
pub struct Sessions(HashMap<String, u64>);

impl Sessions {
    fn open(&mut self, now_ms: u64) -> Result<String, UiError> {
        self.0.retain(|_, e| *e > now_ms);
        while self.0.len() >= UI_SESSIONS_MAX {
            let oldest = self
                .0
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.0.remove(&k);
            }
        }
        let id = random_secret()?;
        self.0
            .insert(sha256_hex(&id), now_ms + UI_SESSION_LIFETIME_MS);
        Ok(id)
    }

    fn valid(&self, id: &str, now_ms: u64) -> bool {
        self.0.get(&sha256_hex(id)).is_some_and(|e| *e > now_ms)
    }
}

fn cookie_session(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Whether the request carries the API key or a live session.
pub fn allowed(state: &UiState, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|k| same(k.trim(), &state.key)) {
        return true;
    }
    let now = state.now_ms();
    match (cookie_session(headers), state.sessions.lock()) {
        (Some(id), Ok(s)) => s.valid(id, now),
        _ => false,
    }
}

/// `/connexion?jeton=…`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    jeton: String,
}

/// Exchange the one-time token for a session cookie, then go to `/` (the token leaves the
/// address bar).
pub async fn login(
    State(state): State<Arc<UiState>>,
    Query(q): Query<LoginQuery>,
) -> Result<Response, UiError> {
    let now = state.now_ms();
    if !take_token(&state.dir, &q.jeton, now) {
        return Err(UiError::Unauthorized);
    }
    let id = state
        .sessions
        .lock()
        .map_err(|_| UiError::Poisoned)?
        .open(now)?;
    let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/");
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|_| UiError::Unauthorized)?,
    );
    Ok(resp)
}
