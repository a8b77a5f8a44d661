//! HTTPS for the console when `server.toml` names `console_tls_cert` and `console_tls_key`:
//! rustls (ring) over the console's TCP listener, as an `axum::serve` listener.
//!
//! What it does not do: obtain or renew the certificate (a deployment's ACME client or its
//! administrator does, then restarts `serve`), or redirect plain HTTP (nothing listens on it).
//! Handshakes run one at a time in `accept`, each bounded by `CONSOLE_TLS_HANDSHAKE_MS`: the
//! console serves a handful of people, not the public.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest TLS handshake of a console client before it is dropped.
pub const CONSOLE_TLS_HANDSHAKE_MS: u64 = 10_000;
/// Pause after a failed `accept` (no file descriptor left, say) before the next.
const ACCEPT_RETRY_MS: u64 = 100;

/// The acceptor of `cert` (a PEM chain, leaf first) and `key`; errors say which file and why.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("console_tls_cert : {} est illisible", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "console_tls_cert : {} n'est pas un certificat PEM",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        bail!(
            "console_tls_cert : {} ne contient aucun certificat",
            cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "console_tls_key : {} n'est pas une clé privée PEM lisible",
            key.display()
        )
    })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("console_tls_cert et console_tls_key ne vont pas ensemble")?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The console's TCP listener, each connection through the TLS handshake first.
pub struct TlsListener {
    /// The TCP listener.
    pub tcp: TcpListener,
    /// The handshake.
    pub tls: TlsAcceptor,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("tcp", &self.tcp.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = match self.tcp.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "console: accept failed");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                    continue;
                }
            };
            let handshake = tokio::time::timeout(
                Duration::from_millis(CONSOLE_TLS_HANDSHAKE_MS),
                self.tls.accept(tcp),
            );
            match handshake.await {
                Ok(Ok(stream)) => return (stream, addr),
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "console: TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "console: TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
