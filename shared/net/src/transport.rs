//! QUIC transport settings shared by agent and server: lowered windows and stream counts (see
//! `limits`), keep-alive and idle timeout, the server's caps on connection attempts not yet
//! accepted, and the quinn configs around our rustls configs.
//!
//! Configuration only: no endpoint is opened here.

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{NoInitialCipherSuite, QuicClientConfig, QuicServerConfig};
use quinn::{IdleTimeout, TransportConfig, VarInt};

use tournee_core::limits::{
    QUIC_BIDI_STREAMS_MAX, QUIC_CONNECTION_RECEIVE_WINDOW_BYTES, QUIC_IDLE_TIMEOUT_MS,
    QUIC_INCOMING_BUFFER_BYTES, QUIC_INCOMING_BUFFER_TOTAL_BYTES, QUIC_INCOMING_MAX,
    QUIC_INITIAL_RTT_MS, QUIC_KEEP_ALIVE_MS, QUIC_SEND_WINDOW_BYTES,
    QUIC_STREAM_RECEIVE_WINDOW_BYTES, QUIC_UNI_STREAMS_MAX,
};

/// Why a QUIC configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// rustls config not usable by QUIC (e.g. no TLS 1.3 suite); quinn's error is the source.
    #[error("TLS configuration unusable for QUIC: {0}")]
    Crypto(#[from] NoInitialCipherSuite),
}

/// The transport limits of every Tournée connection.
pub fn transport_config() -> TransportConfig {
    let mut t = TransportConfig::default();
    t.stream_receive_window(VarInt::from_u32(QUIC_STREAM_RECEIVE_WINDOW_BYTES))
        .receive_window(VarInt::from_u32(QUIC_CONNECTION_RECEIVE_WINDOW_BYTES))
        .send_window(QUIC_SEND_WINDOW_BYTES)
        .max_concurrent_bidi_streams(VarInt::from_u32(QUIC_BIDI_STREAMS_MAX))
        .max_concurrent_uni_streams(VarInt::from_u32(QUIC_UNI_STREAMS_MAX))
        .initial_rtt(Duration::from_millis(QUIC_INITIAL_RTT_MS))
        .keep_alive_interval(Some(Duration::from_millis(QUIC_KEEP_ALIVE_MS)))
        .max_idle_timeout(Some(IdleTimeout::from(VarInt::from_u32(
            QUIC_IDLE_TIMEOUT_MS,
        ))));
    t
}

/// A quinn server config around our rustls server config, with connection attempts not yet
/// accepted capped in number and buffered bytes (the accept loop caps handshakes in progress).
pub fn server_config(tls: rustls::ServerConfig) -> Result<quinn::ServerConfig, TransportError> {
    let crypto = QuicServerConfig::try_from(tls)?;
    let mut c = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    c.transport_config(Arc::new(transport_config()))
        .max_incoming(QUIC_INCOMING_MAX)
        .incoming_buffer_size(QUIC_INCOMING_BUFFER_BYTES)
        .incoming_buffer_size_total(QUIC_INCOMING_BUFFER_TOTAL_BYTES);
    Ok(c)
}

/// A quinn client config around our rustls client config.
pub fn client_config(tls: rustls::ClientConfig) -> Result<quinn::ClientConfig, TransportError> {
    let crypto = QuicClientConfig::try_from(tls)?;
    let mut c = quinn::ClientConfig::new(Arc::new(crypto));
    c.transport_config(Arc::new(transport_config()));
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_config_without_tls_1_3_is_refused_with_quinns_error_as_source() {
        // Only a TLS 1.2 suite: QUIC's initial packets need a TLS 1.3 one.
        let provider = Arc::new(rustls::crypto::CryptoProvider {
            cipher_suites: vec![
                rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ],
            ..rustls::crypto::ring::default_provider()
        });
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("TLS 1.2 is supported")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let err = client_config(tls).expect_err("QUIC needs TLS 1.3");
        assert!(
            err.to_string()
                .starts_with("TLS configuration unusable for QUIC: "),
            "{err}"
        );
        let source = std::error::Error::source(&err).expect("a source");
        assert!(
            source.downcast_ref::<NoInitialCipherSuite>().is_some(),
            "{source}"
        );
    }
}
