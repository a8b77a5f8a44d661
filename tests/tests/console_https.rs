//! The console serving HTTPS itself (`console_tls_cert` and `console_tls_key` in server.toml):
//! a client that trusts the certificate gets the sign-in page over TLS, plain HTTP on that
//! port gets no page, sign-in links say `https://`, and a certificate without its key stops
//! `serve` at once with a French line (never a console in clear instead).

use std::io::{Read, Write};
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName};
use tournee_tests::Server;

/// GET `path` over TLS to `addr`, trusting only `ca`: the status line and the body.
fn https_get(addr: &str, ca: &CertificateDer<'static>, path: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_console_serves_https_with_its_certificate_and_refuses_half_a_configuration() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = Server::init(&tmp.path().join("server"), None);
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert = tmp.path().join("console.pem");
    let key = tmp.path().join("console.key");
    std::fs::write(&cert, issued.cert.pem()).expect("cert file");
    std::fs::write(&key, issued.key_pair.serialize_pem()).expect("key file");
    let config = server.dir.join("server.toml");
    let plain = std::fs::read_to_string(&config).expect("server.toml");

    // Half a configuration: serve refuses to start, in words.
    std::fs::write(
        &config,
        format!(
            "{plain}console_tls_cert = {:?}\n",
            cert.display().to_string()
        ),
    )
    .expect("write");
    let out = tournee_tests::run(&mut server.cmd(&["serve"]));
    assert!(!out.status.success(), "serve must not start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("console_tls_cert et console_tls_key vont ensemble"),
        "{err}"
    );

    std::fs::write(
        &config,
        format!(
            "{plain}console_tls_cert = {:?}\nconsole_tls_key = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .expect("write");
    server.ok(&["user", "add", "--name", "admin1", "--role", "admin"]);
    let link = server.ok(&["user", "link", "admin1"]);
    assert!(link.trim().starts_with("https://"), "{link}");
    server.start();
    let addr = server.console.to_string();
    let page = https_get(&addr, &issued.cert.der().clone(), "/connexion");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("<form") && page.contains("Connexion"),
        "{page}"
    );
    assert!(
        page.to_ascii_lowercase()
            .contains("content-security-policy:"),
        "the console's headers over TLS too: {page}"
    );
    // Plain HTTP on that port: the handshake fails, the connection closes or is reset.
    let mut plain = std::net::TcpStream::connect(&addr).expect("connect");
    let _ = write!(
        plain,
        "GET /connexion HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "no page in clear"
    );
    server.stop();
}
