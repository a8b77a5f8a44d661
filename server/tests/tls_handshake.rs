//! Mutual-TLS handshakes over real quinn endpoints on loopback: an enrolled device gets in and is
//! identified by its fingerprint; no certificate, a self-signed one, another CA's and a revoked
//! device's are refused before any stream is accepted; 0-RTT and resumption stay off.
//!
//! These tests do not cover the sync protocol, connection limits or closing live connections on
//! revocation; they only pin the TLS policy of `tournee_net::tls` and `tournee_server::ca`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls_pki_types::CertificateDer;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tournee_net::tls::{self, RevocationList};
use tournee_server::ca::{Ca, Issued};

const STEP: Duration = Duration::from_secs(5);

/// What the server side saw for one incoming connection.
#[derive(Debug)]
enum ServerEvent {
    /// Handshake completed; what the server read from the peer's certificate.
    Accepted {
        fingerprint: String,
        common_name: Option<String>,
    },
    /// Handshake failed with this error.
    Refused(String),
}

#[derive(Debug)]
struct TestServer {
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    events: mpsc::UnboundedReceiver<ServerEvent>,
    streams_accepted: Arc<AtomicUsize>,
}

fn chain_and_key(
    issued: &Issued,
) -> (
    Vec<CertificateDer<'static>>,
    rustls_pki_types::PrivateKeyDer<'static>,
) {
    (
        tls::pem_to_der_certs(&issued.cert_pem).expect("issued certificate PEM parses"),
        tls::pem_to_der_key(&issued.key_pem).expect("issued key PEM parses"),
    )
}

fn start_server(ca: &Ca, revoked: RevocationList) -> TestServer {
    let issued = ca
        .issue_server(&["127.0.0.1".to_owned()], Utc::now())
        .expect("server certificate is issued");
    let (chain, key) = chain_and_key(&issued);
    let ca_der = ca.cert_der().expect("CA certificate DER");
    let rustls_config =
        tls::server_config(&ca_der, chain, key, revoked).expect("server TLS config builds");
    let quic = QuicServerConfig::try_from(Arc::new(rustls_config)).expect("QUIC-capable suite");
    let server_config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let endpoint =
        quinn::Endpoint::server(server_config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .expect("server endpoint binds");
    let addr = endpoint.local_addr().expect("server address");
    let (tx, events) = mpsc::unbounded_channel();
    let streams_accepted = Arc::new(AtomicUsize::new(0));
    let accept_endpoint = endpoint.clone();
    let counter = streams_accepted.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accept_endpoint.accept().await {
            let tx = tx.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let connection = match incoming.await {
                    Ok(connection) => connection,
                    Err(e) => {
                        let _ = tx.send(ServerEvent::Refused(format!("{e:?} / {e}")));
                        return;
                    }
                };
                let peer = connection
                    .peer_identity()
                    .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
                    .expect("an accepted connection has a client certificate chain");
                let leaf = peer.first().expect("the chain has a leaf");
                let _ = tx.send(ServerEvent::Accepted {
                    fingerprint: tls::fingerprint(leaf).expect("peer certificate parses"),
                    common_name: tls::common_name(leaf).expect("peer certificate parses"),
                });
                // Echo every bidirectional stream, upper-cased.
                while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let Ok(data) = recv.read_to_end(1024).await else {
                        break;
                    };
                    let _ = send.write_all(&data.to_ascii_uppercase()).await;
                    let _ = send.finish();
                }
            });
        }
    });
    TestServer {
        endpoint,
        addr,
        events,
        streams_accepted,
    }
}

fn client_endpoint(config: rustls::ClientConfig) -> quinn::Endpoint {
    let quic = QuicClientConfig::try_from(Arc::new(config)).expect("QUIC-capable suite");
    let mut endpoint = quinn::Endpoint::client(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .expect("client endpoint binds");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    endpoint
}

/// Connects and exchanges one message; the error text at the first failing step otherwise.
async fn exchange(endpoint: &quinn::Endpoint, addr: SocketAddr) -> Result<Vec<u8>, String> {
    let connecting = endpoint
        .connect(addr, tls::SERVER_NAME)
        .map_err(|e| format!("connect: {e:?}"))?;
    let connection = connecting
        .await
        .map_err(|e| format!("handshake: {e:?} / {e}"))?;
    let (mut send, mut recv) = connection
        .open_bi()
        .await
        .map_err(|e| format!("open_bi: {e:?} / {e}"))?;
    send.write_all(b"hello tournee")
        .await
        .map_err(|e| format!("write: {e:?} / {e}"))?;
    send.finish().map_err(|e| format!("finish: {e:?} / {e}"))?;
    let reply = recv
        .read_to_end(1024)
        .await
        .map_err(|e| format!("read: {e:?} / {e}"))?;
    connection.close(0u32.into(), b"done");
    Ok(reply)
}

/// Asserts that the handshake is refused: the client fails within a few seconds, the server
/// reports a failed handshake and accepts no stream. Returns (client error, server error).
async fn assert_refused(
    server: &mut TestServer,
    client: &quinn::Endpoint,
    case: &str,
) -> (String, String) {
    let client_error = timeout(STEP, exchange(client, server.addr))
        .await
        .unwrap_or_else(|_| panic!("{case}: the client neither failed nor succeeded in time"))
        .expect_err(&format!("{case}: the exchange must fail"));
    let event = timeout(STEP, server.events.recv())
        .await
        .unwrap_or_else(|_| panic!("{case}: the server reported nothing in time"))
        .expect("server task alive");
    let server_error = match event {
        ServerEvent::Refused(e) => e,
        other => panic!("{case}: server accepted the connection: {other:?}"),
    };
    assert_eq!(
        server.streams_accepted.load(Ordering::SeqCst),
        0,
        "{case}: no stream may be accepted"
    );
    println!("[{case}] client sees: {client_error}");
    println!("[{case}] server sees: {server_error}");
    (client_error, server_error)
}

fn new_ca(name: &str) -> Ca {
    Ca::generate(name, Utc::now()).expect("CA is generated")
}

fn device_config(ca: &Ca, device: &Issued) -> rustls::ClientConfig {
    let (chain, key) = chain_and_key(device);
    tls::client_config(&ca.cert_der().expect("CA DER"), chain, key).expect("client config builds")
}

#[tokio::test]
async fn enrolled_device_connects_and_is_identified_by_fingerprint() {
    let ca = new_ca("Tournée CA");
    let mut server = start_server(&ca, RevocationList::new());
    // Issue through a CA re-read from its PEM texts, as `tournee-server enroll` will.
    let loaded = Ca::load(&ca.cert_pem, &ca.key_pem).expect("CA loads");
    let device = loaded
        .issue_device("laptop-anna", Utc::now())
        .expect("device certificate is issued");
    let client = client_endpoint(device_config(&ca, &device));

    let reply = timeout(STEP, exchange(&client, server.addr))
        .await
        .expect("exchange finishes in time")
        .expect("an enrolled device gets through");
    assert_eq!(reply, b"HELLO TOURNEE");

    let event = timeout(STEP, server.events.recv())
        .await
        .expect("server event in time")
        .expect("server task alive");
    match event {
        ServerEvent::Accepted {
            fingerprint,
            common_name,
        } => {
            assert_eq!(fingerprint, device.fingerprint);
            assert_eq!(common_name.as_deref(), Some("laptop-anna"));
        }
        ServerEvent::Refused(e) => panic!("enrolled device refused: {e}"),
    }
    assert_eq!(server.streams_accepted.load(Ordering::SeqCst), 1);
    client.wait_idle().await;
    server.endpoint.close(0u32.into(), b"bye");
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let ca = new_ca("Tournée CA");
    let mut server = start_server(&ca, RevocationList::new());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.cert_der().expect("CA DER"))
        .expect("CA is a usable root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3 is supported")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![tls::ALPN.to_vec()];
    let client = client_endpoint(config);
    assert_refused(&mut server, &client, "no client certificate").await;
    server.endpoint.close(0u32.into(), b"bye");
}

#[tokio::test]
async fn self_signed_client_certificate_is_refused() {
    let ca = new_ca("Tournée CA");
    let mut server = start_server(&ca, RevocationList::new());
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "laptop-mallory");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).expect("self-signed certificate");
    let forged = Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        fingerprint: tls::fingerprint(cert.der()).expect("fingerprint"),
    };
    let client = client_endpoint(device_config(&ca, &forged));
    assert_refused(&mut server, &client, "self-signed client certificate").await;
    server.endpoint.close(0u32.into(), b"bye");
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    let ca = new_ca("Tournée CA");
    let mut server = start_server(&ca, RevocationList::new());
    // Same name as ours: the issuer name matches, only the signature can tell them apart.
    for name in ["Other CA", "Tournée CA"] {
        let other = new_ca(name);
        let device = other
            .issue_device("laptop-anna", Utc::now())
            .expect("device certificate from the other CA");
        let client = client_endpoint(device_config(&ca, &device));
        let case = format!("device of another CA named {name:?}");
        assert_refused(&mut server, &client, &case).await;
    }
    server.endpoint.close(0u32.into(), b"bye");
}

#[tokio::test]
async fn revoked_device_is_refused() {
    let ca = new_ca("Tournée CA");
    let revoked = RevocationList::new();
    let mut server = start_server(&ca, revoked.clone());
    let device = ca
        .issue_device("laptop-stolen", Utc::now())
        .expect("device certificate is issued");
    revoked.revoke(&device.fingerprint);
    let client = client_endpoint(device_config(&ca, &device));
    assert_refused(&mut server, &client, "revoked device").await;
    server.endpoint.close(0u32.into(), b"bye");
}

/// A device that connected before being revoked must not come back through TLS session
/// resumption (which would restore its certificate without running the verifier).
#[tokio::test]
async fn device_revoked_after_connecting_cannot_resume() {
    let ca = new_ca("Tournée CA");
    let revoked = RevocationList::new();
    let mut server = start_server(&ca, revoked.clone());
    let device = ca
        .issue_device("laptop-lost", Utc::now())
        .expect("device certificate is issued");
    let client = client_endpoint(device_config(&ca, &device));
    timeout(STEP, exchange(&client, server.addr))
        .await
        .expect("first exchange in time")
        .expect("first connection succeeds");
    let first = timeout(STEP, server.events.recv())
        .await
        .expect("server event in time")
        .expect("server task alive");
    assert!(matches!(first, ServerEvent::Accepted { .. }), "{first:?}");
    assert_eq!(server.streams_accepted.load(Ordering::SeqCst), 1);

    revoked.revoke(&device.fingerprint);
    server.streams_accepted.store(0, Ordering::SeqCst);
    // Same client endpoint and config: rustls would offer its cached session ticket.
    assert_refused(&mut server, &client, "revoked after a first connection").await;
    server.endpoint.close(0u32.into(), b"bye");
}

#[test]
fn zero_rtt_is_off() {
    let ca = new_ca("Tournée CA");
    let server_cert = ca
        .issue_server(
            &["192.0.2.7".to_owned(), "sync.example.org".to_owned()],
            Utc::now(),
        )
        .expect("server certificate");
    let (chain, key) = chain_and_key(&server_cert);
    let ca_der = ca.cert_der().expect("CA DER");
    let server =
        tls::server_config(&ca_der, chain, key, RevocationList::new()).expect("server config");
    assert_eq!(server.max_early_data_size, 0);
    assert_eq!(server.alpn_protocols, vec![tls::ALPN.to_vec()]);

    let device = ca.issue_device("laptop", Utc::now()).expect("device");
    let client = device_config(&ca, &device);
    assert!(!client.enable_early_data);
    assert_eq!(client.alpn_protocols, vec![tls::ALPN.to_vec()]);
}
