//! The agent's network glue: connect to the server over QUIC with the enrolment bundle's
//! identity, drive a `ClientSession` over one stream through the pump
//! (`tournee_net::pump::drive_client`, the same core the simulation runs), and map failures to
//! messages a conseiller can act on, keeping the underlying error as the source. `sync` runs
//! one reconciliation; `run` stays connected and retries with exponential backoff (`backon`)
//! and full jitter.
//!
//! No protocol decisions here (see `tournee_proto::session`), no framing or session driving
//! (see `tournee_proto::pump`).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use quinn::{Connection, ConnectionError, Endpoint, ReadError, VarInt, WriteError};
use tournee_core::clock::Clock;
use tournee_core::limits::{
    BACKOFF_MAX_MS, BACKOFF_MIN_MS, CONNECT_TIMEOUT_MS, QUIC_CLOSE_WAIT_MS, SYNC_TIMEOUT_MAX_S,
};
use tournee_core::rng::SeededRng;
use tournee_net::bundle::Bundle;
use tournee_net::pump::{drive_client, ClientEnd};
use tournee_net::tls;
use tournee_proto::pump::ClientPump;
use tournee_proto::session::SessionStats;
use tournee_proto::wire::ErrorCode;
use tournee_proto::ProtocolError;
use tournee_store::SqliteStore;
use tracing::{info, warn};

/// File holding the enrolment bundle inside the agent's data directory (0600).
pub const BUNDLE_FILE: &str = "bundle.json";

/// How the server is reached.
#[derive(Debug, Clone)]
pub struct Remote {
    addrs: Vec<String>,
    config: quinn::ClientConfig,
}

impl Remote {
    /// From the bundle stored in the data directory.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(BUNDLE_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "this laptop has no server configured ({} is missing): initialise it with `tournee-agent init --bundle FILE`",
                path.display()
            )
        })?;
        let bundle = Bundle::parse(&text)?;
        Self::from_bundle(&bundle)
    }

    /// From a bundle.
    pub fn from_bundle(bundle: &Bundle) -> Result<Self> {
        let ca = tls::pem_to_der_certs(&bundle.ca_pem)?
            .into_iter()
            .next()
            .context("bundle has no CA certificate")?;
        let chain = tls::pem_to_der_certs(&bundle.cert_pem)?;
        let key = tls::pem_to_der_key(&bundle.key_pem)?;
        let tls_config = tls::client_config(&ca, chain, key)?;
        Ok(Self {
            addrs: bundle.server_addrs.clone(),
            config: tournee_net::transport::client_config(tls_config)?,
        })
    }

    /// The QUIC client configuration (this device's certificate, the CA it trusts).
    pub fn client_config(&self) -> &quinn::ClientConfig {
        &self.config
    }

    /// The server addresses, as configured.
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// Use these addresses instead of the bundle's (when not empty).
    pub fn with_addrs(mut self, addrs: &[String]) -> Self {
        if !addrs.is_empty() {
            self.addrs = addrs.to_vec();
        }
        self
    }
}

/// Why a reconciliation did not complete. Every variant leaves local data intact.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No server answered.
    #[error("cannot reach the server at {addrs}: {detail}")]
    Unreachable {
        /// Addresses tried.
        addrs: String,
        /// What happened (for each address tried, the last).
        detail: String,
    },
    /// No UDP socket could be opened to reach the server.
    #[error("cannot reach the server at {addrs}: cannot open a UDP socket: {source}")]
    Socket {
        /// Addresses tried.
        addrs: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused this laptop (certificate or enrolment).
    #[error("the server refused this laptop: {0}")]
    Refused(String),
    /// This laptop refused the server's certificate: another server, or someone in between.
    #[error("this laptop does not trust the server: {0}; check the server address, or re-enrol this laptop (`tournee-agent reenrol --bundle FILE` keeps its queued changes)")]
    Untrusted(String),
    /// This laptop's clock is outside the server certificate's validity: the certificate is
    /// fine, the laptop's date is wrong (far behind, or far ahead).
    #[error("{0}")]
    ClockWrong(String),
    /// Another connection of this same device replaced this one at the server: the same data
    /// dir is running twice (two daemons, or a copy of it on another laptop).
    #[error("une autre connexion de ce même appareil a pris la place de celle-ci : ce dossier de données tourne-t-il deux fois (deux `tournee-agent run`, ou une copie sur un autre ordinateur) ? Rien n'est perdu ; nouvel essai plus tard")]
    Superseded,
    /// The server closed the connection with a reason this agent has no code for.
    #[error("the connection dropped during sync: closed by the server: {reason}")]
    ClosedByServer {
        /// The reason it gave.
        reason: String,
        /// How the connection ended.
        #[source]
        source: ConnectionError,
    },
    /// The server stopped answering.
    #[error("the connection dropped during sync: no answer from the server (timed out)")]
    TimedOut(#[source] ConnectionError),
    /// The connection was lost otherwise.
    #[error("the connection dropped during sync: {0}")]
    Connection(#[source] ConnectionError),
    /// Reading from the server failed.
    #[error("the connection dropped during sync: {0}")]
    Read(#[source] ReadError),
    /// Writing to the server failed.
    #[error("the connection dropped during sync: {0}")]
    Write(#[source] WriteError),
    /// The server finished its stream before the session was done.
    #[error("the connection dropped during sync: the server ended the session early")]
    EndedEarly,
    /// The session failed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The whole reconciliation took longer than allowed.
    #[error("sync did not finish within {0} s")]
    Timeout(u64),
}

impl From<tournee_core::store::StoreError> for SyncError {
    fn from(e: tournee_core::store::StoreError) -> Self {
        SyncError::Protocol(e.into())
    }
}

/// TLS alert names for the crypto error codes a server sends when it refuses a certificate.
fn alert_text(code: u64) -> Option<&'static str> {
    // QUIC carries TLS alerts as transport error 0x100 + alert (RFC 9001 §4.8).
    Some(match code.checked_sub(0x100)? {
        42 => "its certificate was refused (bad certificate)",
        44 => "its certificate has been revoked",
        45 => "its certificate has expired",
        46 => "its certificate is unknown to the server",
        48 | 51 => "its certificate was issued by another authority (unknown CA)",
        116 => "it presented no certificate",
        40 => "the TLS handshake failed",
        _ => return None,
    })
}

/// A date for people, in Paris time (`2026-12-01 23:05`), from Unix seconds.
fn show_date(unix_s: u64) -> String {
    match i64::try_from(unix_s) {
        Ok(s) => tournee_core::time::show_local(s),
        Err(_) => format!("{unix_s} (Unix)"),
    }
}

/// The number after `label` in rustls's text (`… verification time 1764630000 (UNIX) …`).
fn number_after(text: &str, label: &str) -> Option<u64> {
    let rest = &text[text.find(label)? + label.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// When our TLS stack refused the server's certificate for its validity period, the message
/// that says what is wrong: rustls names both times (the laptop's clock and the certificate's
/// bound), and a server certificate is issued at the server's `init`, so a laptop that finds
/// it "not yet valid" has a clock behind. A certificate past its end may be truly expired:
/// then both possibilities are said.
fn clock_wrong(reason: &str) -> Option<String> {
    let now = number_after(reason, "verification time")?;
    if let Some(not_before) = number_after(reason, "not valid before") {
        return Some(format!(
            "l'horloge de cet ordinateur est en retard : elle indique le {}, or le certificat du serveur n'est valable qu'à partir du {} ; corrigez la date et l'heure de l'ordinateur, puis relancez la synchronisation",
            show_date(now),
            show_date(not_before)
        ));
    }
    let not_after = number_after(reason, "not valid after")?;
    Some(format!(
        "le certificat du serveur n'est plus valable depuis le {} et l'horloge de cet ordinateur indique le {} : si cette date est fausse, corrigez-la ; sinon l'administrateur doit renouveler le certificat du serveur",
        show_date(not_after),
        show_date(now)
    ))
}

fn describe(e: &ConnectionError) -> SyncError {
    let closed = |reason: String| SyncError::ClosedByServer {
        reason,
        source: e.clone(),
    };
    match e {
        ConnectionError::ApplicationClosed(c) => {
            let reason = String::from_utf8_lossy(&c.reason).into_owned();
            match ErrorCode::from_close_code(c.error_code.into_inner()) {
                Some(ErrorCode::Unauthorized) => SyncError::Refused(format!(
                    "{reason}; ask the administrator to check this device's enrolment (with a new bundle, `tournee-agent reenrol --bundle FILE` keeps the queued changes)"
                )),
                Some(ErrorCode::Superseded) => SyncError::Superseded,
                Some(code) => SyncError::Protocol(ProtocolError::Remote {
                    code,
                    message: reason,
                }),
                None => closed(reason),
            }
        }
        ConnectionError::ConnectionClosed(c) => match alert_text(u64::from(c.error_code)) {
            Some(t) => SyncError::Refused(format!("{t}; re-enrol this laptop with a new bundle: `tournee-agent reenrol --bundle FILE` keeps its queued changes")),
            None => closed(c.to_string()),
        },
        // Raised by our own TLS stack: it is the server's certificate that was refused. A
        // validity-period refusal is this laptop's clock, unless the dates say otherwise.
        ConnectionError::TransportError(t) => match clock_wrong(&t.reason) {
            Some(text) => SyncError::ClockWrong(text),
            None => match alert_text(u64::from(t.code)) {
                Some(text) => SyncError::Untrusted(format!("{text} ({t})")),
                None => SyncError::Connection(e.clone()),
            },
        },
        ConnectionError::TimedOut => SyncError::TimedOut(e.clone()),
        other => SyncError::Connection(other.clone()),
    }
}

fn resolve(addrs: &[String]) -> Vec<SocketAddr> {
    addrs
        .iter()
        .flat_map(|a| {
            a.to_socket_addrs()
                .map(|i| i.collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect()
}

/// Open a QUIC connection to the first server address that answers.
pub async fn connect(remote: &Remote) -> Result<(Endpoint, Connection), SyncError> {
    let targets = resolve(&remote.addrs);
    let shown = remote.addrs.join(", ");
    if targets.is_empty() {
        return Err(SyncError::Unreachable {
            addrs: shown,
            detail: "the address does not resolve".into(),
        });
    }
    let mut last = String::new();
    for addr in targets {
        let bind = if addr.is_ipv6() {
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
        } else {
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
        };
        let mut endpoint = Endpoint::client(bind).map_err(|source| SyncError::Socket {
            addrs: shown.clone(),
            source,
        })?;
        endpoint.set_default_client_config(remote.config.clone());
        let connecting = match endpoint.connect(addr, tls::SERVER_NAME) {
            Ok(c) => c,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        match tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connecting).await {
            Ok(Ok(conn)) => return Ok((endpoint, conn)),
            Ok(Err(e)) => match describe(&e) {
                refused @ (SyncError::Refused(_)
                | SyncError::Untrusted(_)
                | SyncError::ClockWrong(_)) => return Err(refused),
                other => last = other.to_string(),
            },
            Err(_) => last = format!("no answer within {} s", CONNECT_TIMEOUT_MS / 1000),
        }
    }
    Err(SyncError::Unreachable {
        addrs: shown,
        detail: last,
    })
}

/// What one session did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    /// Session counts.
    pub stats: SessionStats,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Server clock minus ours, in ms.
    pub clock_offset_ms: Option<i64>,
}

/// Run a session on an open connection. One-shot (`live == false`): returns once both sides are
/// up to date. Live: keeps pushing local commits and taking server pushes until `stop` fires.
pub async fn session(
    conn: &Connection,
    store: &mut SqliteStore,
    clock: &dyn Clock,
    live: bool,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Report, SyncError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| describe(&e))?;
    let mut pump = ClientPump::new(store)?;
    if live {
        pump.resend_refused_at_once();
    }
    let moved = drive_client(&mut pump, &mut send, &mut recv, store, clock, live, stop)
        .await
        .map_err(|e| match e {
            ClientEnd::Protocol(e) => SyncError::Protocol(e),
            ClientEnd::Read(ReadError::ConnectionLost(c)) => describe(&c),
            ClientEnd::Read(e) => SyncError::Read(e),
            ClientEnd::Write(WriteError::ConnectionLost(c)) => describe(&c),
            ClientEnd::Write(e) => SyncError::Write(e),
            ClientEnd::EndedEarly => SyncError::EndedEarly,
        })?;
    let client = pump.session();
    let report = Report {
        stats: client.stats(),
        bytes_out: moved.bytes_out,
        bytes_in: moved.bytes_in,
        clock_offset_ms: client.clock_offset_ms(),
    };
    conn.close(VarInt::from_u32(0), b"done");
    Ok(report)
}

/// After a session: let the connection finish closing, for at most `QUIC_CLOSE_WAIT_MS`. The
/// server closes once it has read our end of the stream; quinn's draining period after that
/// (3 PTO, ~1 s on a 200 ms link) carries nothing and would only make the user wait.
pub async fn wait_closed(endpoint: &Endpoint) {
    let _ = tokio::time::timeout(
        Duration::from_millis(QUIC_CLOSE_WAIT_MS),
        endpoint.wait_idle(),
    )
    .await;
}

/// One reconciliation, retrying a dropped link until `timeout_s` has passed.
pub async fn sync_once(
    store: &mut SqliteStore,
    remote: &Remote,
    clock: &dyn Clock,
    timeout_s: u64,
) -> Result<Report, SyncError> {
    let now = tokio::time::Instant::now();
    // The command line bounds `timeout_s` (SYNC_TIMEOUT_MAX_S); a library caller's huge value
    // means "no deadline we could represent", not a panic.
    let deadline = now
        .checked_add(Duration::from_secs(timeout_s))
        .unwrap_or_else(|| now + Duration::from_secs(SYNC_TIMEOUT_MAX_S));
    let mut backoff = Backoff::new(clock.now_ms());
    let (_never, mut stop) = tokio::sync::watch::channel(false);
    loop {
        let attempt = async {
            let (endpoint, conn) = connect(remote).await?;
            let r = session(&conn, store, clock, false, &mut stop).await;
            wait_closed(&endpoint).await;
            r
        };
        let result = tokio::time::timeout_at(deadline, attempt).await;
        match result {
            Err(_) => return Err(SyncError::Timeout(timeout_s)),
            Ok(Ok(report)) => return Ok(report),
            Ok(Err(
                e @ (SyncError::Refused(_)
                | SyncError::Untrusted(_)
                | SyncError::ClockWrong(_)
                | SyncError::Protocol(_)),
            )) => return Err(e),
            Ok(Err(e)) => {
                let wait = backoff.next_delay();
                if tokio::time::Instant::now() + wait >= deadline {
                    return Err(e);
                }
                warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "sync interrupted; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The daemon's link to the server as the local UI shows it (published through a
/// `tokio::sync::watch`; the UI never waits on the network itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkState {
    /// When the daemon last tried to connect (wall ms).
    pub last_attempt_ms: Option<u64>,
    /// Whether that attempt reached the server (`None` before the first).
    pub reachable: Option<bool>,
    /// The last failure, in French words with what to do (`words::sync_failure_fr`).
    pub last_error: Option<String>,
    /// Its technical detail (English, for a support call).
    pub last_detail: Option<String>,
}

fn publish(
    link: &tokio::sync::watch::Sender<LinkState>,
    clock: &dyn Clock,
    error: Option<&SyncError>,
) {
    link.send_replace(LinkState {
        last_attempt_ms: Some(clock.now_ms()),
        reachable: Some(error.is_none()),
        last_error: error.map(crate::words::sync_failure_fr),
        last_detail: error
            .filter(|e| !crate::words::sync_failure_is_french(e))
            .map(ToString::to_string),
    });
}

/// Stay connected: sync whenever the server is reachable, back off otherwise, until `stop`;
/// each attempt's outcome goes to `link`.
pub async fn run_daemon(
    store: &mut SqliteStore,
    remote: &Remote,
    clock: &dyn Clock,
    mut backoff: Backoff,
    mut stop: tokio::sync::watch::Receiver<bool>,
    link: &tokio::sync::watch::Sender<LinkState>,
) -> Result<()> {
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let result = match connect(remote).await {
            Ok((endpoint, conn)) => {
                info!(server = %conn.remote_address(), "connected; starting a session");
                publish(link, clock, None);
                let r = session(&conn, store, clock, true, &mut stop).await;
                endpoint.close(VarInt::from_u32(0), b"bye");
                // The client's side of a TLS 1.3 handshake completes before the server has
                // checked its certificate: a refused laptop gets here too, and must keep
                // backing off rather than retry at the shortest delay forever.
                if !matches!(r, Err(SyncError::Refused(_))) {
                    backoff.reset();
                }
                r
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(report) => {
                publish(link, clock, None);
                info!(
                    changes_out = report.stats.changes_out,
                    changes_in = report.stats.changes_in,
                    bytes_out = report.bytes_out,
                    bytes_in = report.bytes_in,
                    "session closed"
                );
                if *stop.borrow() {
                    return Ok(());
                }
            }
            Err(e) => {
                // Log fields are escaped by `tournee_cli::log_fields` (a server's close reason
                // is peer text).
                let error = e.to_string();
                publish(link, clock, Some(&e));
                let wait = match &e {
                    // Retrying sooner cannot help: an administrator must act (re-enrol the
                    // laptop) or someone must fix its clock.
                    // Superseded: another process holds this device's connection; coming back
                    // at once would only take it back (two daemons kicking each other).
                    SyncError::Refused(_)
                    | SyncError::Untrusted(_)
                    | SyncError::ClockWrong(_)
                    | SyncError::Superseded => backoff.longest(),
                    _ => backoff.next_delay(),
                };
                let retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                match &e {
                    SyncError::Refused(_) => {
                        warn!(%error, retry_in_ms, "refused by the server (this laptop is revoked or not enrolled); changes stay queued")
                    }
                    SyncError::Untrusted(_) => {
                        warn!(%error, retry_in_ms, "the server's certificate is not trusted; changes stay queued")
                    }
                    SyncError::ClockWrong(_) => {
                        warn!(%error, retry_in_ms, "this laptop's clock is wrong; changes stay queued")
                    }
                    SyncError::Superseded => {
                        warn!(%error, retry_in_ms, "superseded by another connection of this device (the same data dir running twice?); backing off")
                    }
                    _ => warn!(%error, retry_in_ms, "server unreachable; changes stay queued"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return Ok(()),
                }
            }
        }
    }
}

/// Exponential backoff with full jitter between `BACKOFF_MIN_MS` and `BACKOFF_MAX_MS`: the
/// ceiling doubles per attempt from the minimum up to the maximum (`backon`'s exponential
/// schedule), and each delay is drawn uniformly between the minimum and that ceiling, so
/// laptops that lost the server together do not come back together.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    ceilings: ExponentialBackoff,
    rng: SeededRng,
    min_ms: u64,
    max_ms: u64,
}

impl Backoff {
    /// A backoff between the default bounds, seeded from `seed` (e.g. the time).
    pub fn new(seed: u64) -> Self {
        Self::with_bounds(seed, BACKOFF_MIN_MS, BACKOFF_MAX_MS)
    }
    /// A backoff between `min_ms` and `max_ms`.
    pub fn with_bounds(seed: u64, min_ms: u64, max_ms: u64) -> Self {
        let min_ms = min_ms.max(1);
        let max_ms = max_ms.max(min_ms);
        let builder = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(min_ms))
            .with_max_delay(Duration::from_millis(max_ms))
            .with_factor(2.0)
            .without_max_times();
        Self {
            builder,
            ceilings: builder.build(),
            // Two laptops started in the same millisecond still draw apart.
            rng: SeededRng::new(seed ^ u64::from(std::process::id()).rotate_left(32)),
            min_ms,
            max_ms,
        }
    }
    /// The longest delay, for failures that retrying sooner cannot fix (a refused laptop).
    pub fn longest(&self) -> Duration {
        Duration::from_millis(self.max_ms)
    }
    /// Back to the shortest delay (after a successful connection).
    pub fn reset(&mut self) {
        self.ceilings = self.builder.build();
    }
    /// The next delay: uniform in [minimum, ceiling], the ceiling doubling per attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .ceilings
            .next()
            .map_or(self.max_ms, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
            })
            .clamp(self.min_ms, self.max_ms);
        Duration::from_millis(self.min_ms + self.rng.below(ceiling - self.min_ms + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_ceiling_with_jitter() {
        let mut b = Backoff::new(42);
        let delays: Vec<u64> = (0..12).map(|_| b.next_delay().as_millis() as u64).collect();
        assert!(delays[0] >= BACKOFF_MIN_MS / 2 && delays[0] <= BACKOFF_MIN_MS);
        assert!(delays.iter().all(|d| *d <= BACKOFF_MAX_MS));
        assert!(delays.iter().all(|d| *d >= BACKOFF_MIN_MS), "{delays:?}");
        // The ceiling doubles per attempt: attempt k waits at most min * 2^k.
        for (k, d) in delays.iter().enumerate() {
            assert!(*d <= BACKOFF_MIN_MS << k, "attempt {k}: {delays:?}");
        }
        // At the ceiling, full jitter spreads delays over the whole range, below half of it
        // too (equal jitter would not), and never past it.
        let late: Vec<u64> = (0..200)
            .map(|_| b.next_delay().as_millis() as u64)
            .collect();
        assert!(late.iter().all(|d| *d <= BACKOFF_MAX_MS));
        assert!(late.iter().any(|d| *d < BACKOFF_MAX_MS / 2), "{late:?}");
        assert!(late.iter().any(|d| *d > BACKOFF_MAX_MS / 2), "{late:?}");
        b.reset();
        assert!(b.next_delay().as_millis() as u64 <= BACKOFF_MIN_MS);
    }

    #[test]
    fn link_failures_keep_their_cause_and_their_message() {
        use std::error::Error as _;
        let e = describe(&ConnectionError::TimedOut);
        assert_eq!(
            e.to_string(),
            "the connection dropped during sync: no answer from the server (timed out)"
        );
        assert!(e
            .source()
            .and_then(|s| s.downcast_ref::<ConnectionError>())
            .is_some_and(|c| *c == ConnectionError::TimedOut));
        let e = describe(&ConnectionError::Reset);
        assert_eq!(
            e.to_string(),
            "the connection dropped during sync: reset by peer"
        );
        assert!(e.source().is_some());
    }

    #[test]
    fn a_server_certificate_not_yet_valid_says_the_laptop_clock_is_behind_with_both_dates() {
        // rustls 0.23's words for a server certificate issued after the laptop's "now".
        let reason = "invalid peer certificate: certificate not valid yet: verification time \
                      1764547200 (UNIX), but certificate is not valid before 1767225600 \
                      (2678400 seconds in future)";
        let text = clock_wrong(reason).expect("recognised");
        assert!(
            text.contains("horloge de cet ordinateur est en retard"),
            "{text}"
        );
        assert!(
            text.contains("2025-12-01 01:00") && text.contains("2026-01-01 01:00"),
            "{text}"
        );
        assert!(!text.contains("expired"), "{text}");
        let expired = "invalid peer certificate: certificate expired: verification time \
                       1767225600 (UNIX), but certificate is not valid after 1764547200 \
                       (2678400 seconds ago)";
        let text = clock_wrong(expired).expect("recognised");
        assert!(
            text.contains("2025-12-01 01:00") && text.contains("2026-01-01 01:00"),
            "{text}"
        );
        assert!(clock_wrong("invalid peer certificate: UnknownIssuer").is_none());
    }

    #[test]
    fn refused_certificates_read_as_such() {
        assert!(alert_text(0x100 + 44).is_some_and(|t| t.contains("revoked")));
        assert!(alert_text(0x100 + 116).is_some_and(|t| t.contains("no certificate")));
        assert_eq!(alert_text(0x0a), None);
    }
}
