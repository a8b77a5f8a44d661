//! The UI's front door, as a daemon's local GUI should have one: a `Host` allow-list (DNS
//! rebinding), a Fetch-Metadata check on unsafe methods (cross-site forms), the session or key,
//! and the security headers on every response.
//!
//! Deliberately not here: what a page shows or a form does; nothing here reads the store.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{auth, UiError, UiState};

/// The page's Content-Security-Policy (no inline script or style, nothing from elsewhere).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The `Host` values a request may carry for a UI listening on `addr`.
pub fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ];
    let own = addr.to_string();
    if !hosts.contains(&own) {
        hosts.push(own);
    }
    hosts
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

/// A POST from a page of this UI: `Sec-Fetch-Site` same-origin or none, or without it an
/// `Origin` naming this Host.
pub fn same_site(headers: &HeaderMap) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    match get("sec-fetch-site") {
        Some(site) => matches!(site, "same-origin" | "none"),
        None => match (get("origin"), host(headers)) {
            // The console may serve HTTPS itself (`console_tls_cert`); the laptop UI never does.
            (Some(origin), Some(host)) => {
                origin == format!("http://{host}") || origin == format!("https://{host}")
            }
            (None, _) => true,
            _ => false,
        },
    }
}

fn public(path: &str) -> bool {
    path == "/connexion" || path.starts_with("/assets/")
}

fn check(state: &UiState, req: &Request) -> Result<(), UiError> {
    let headers = req.headers();
    if !host(headers).is_some_and(|h| state.hosts.iter().any(|a| a == h)) {
        return Err(UiError::Forbidden(
            "adresse inattendue : ouvrez l'interface par http://127.0.0.1 (commande `tournee-agent ui`)",
        ));
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe && !same_site(headers) {
        return Err(UiError::Forbidden(
            "ce formulaire ne vient pas de l'interface de cet ordinateur",
        ));
    }
    if !public(req.uri().path()) && !auth::allowed(state, headers) {
        return Err(UiError::Unauthorized);
    }
    Ok(())
}

/// Check the request, run it, and set the security headers on whatever comes back.
pub async fn guard(State(state): State<Arc<UiState>>, req: Request, next: Next) -> Response {
    let mut resp = match check(&state, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    security_headers(&mut resp);
    resp
}

/// The headers every page of Tournée's web interfaces carries (this UI's and the console's):
/// the CSP, no framing, no sniffing, no referrer, not cached unless said.
pub fn security_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}
