//! Mutual-TLS policy shared by the agent and the server: rustls configurations (TLS 1.3 only,
//! our private CA as the only root, client certificates required, revocation by device
//! fingerprint, 0-RTT and session resumption off), device fingerprints (certificates parsed by
//! `x509-parser`) and PEM helpers.
//!
//! This module does no I/O and knows nothing about QUIC or quinn: it builds
//! `rustls::ServerConfig`/`rustls::ClientConfig` values that the endpoint code wraps. It does not
//! issue certificates (that is the server's CA) and does not log; refusals surface as handshake
//! errors to whoever drives the connection.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls::{ClientConfig, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::prelude::FromDer;
use x509_parser::{asn1_rs, nom};

/// The ALPN protocol both ends must agree on; QUIC refuses a handshake without a common one.
pub const ALPN: &[u8] = b"tournee/1";

/// The fixed DNS name in the server certificate, which clients verify whatever address they dial.
pub const SERVER_NAME: &str = "tournee-server";

/// Errors building the TLS configuration or reading certificates and keys.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The PEM text holding certificates could not be read.
    #[error("could not read PEM certificates: {0}")]
    PemCertificates(#[source] rustls_pki_types::pem::Error),
    /// The PEM text held no certificate at all.
    #[error("no certificate found in the PEM input")]
    NoCertificate,
    /// The PEM text holding the private key could not be read, or held no key.
    #[error("could not read the PEM private key: {0}")]
    PemKey(#[source] rustls_pki_types::pem::Error),
    /// A certificate's DER encoding is not what X.509 prescribes.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(#[source] X509Error),
    /// Bytes follow the certificate's DER encoding.
    #[error("malformed certificate: {0} bytes after its end")]
    TrailingBytes(usize),
    /// The subject's common name is not a string type we read, or not UTF-8.
    #[error("unreadable common name in the certificate subject: {0}")]
    CommonName(#[source] X509Error),
    /// The CA certificate cannot serve as a trust anchor.
    #[error("the CA certificate is unusable as a trust anchor: {0}")]
    CaCertificate(#[source] rustls::Error),
    /// The client-certificate verifier could not be built from the CA.
    #[error("could not build the client-certificate verifier: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// The own certificate chain and key were refused (mismatched or unsupported key, bad chain).
    #[error("the certificate chain or private key was refused: {0}")]
    CertificateOrKey(#[source] rustls::Error),
    /// The crypto provider does not support the protocol versions we insist on.
    #[error("the TLS 1.3 configuration was refused: {0}")]
    Protocol(#[source] rustls::Error),
}

// ---------------------------------------------------------------------------------------------
// Fingerprints and the certificate fields we read
// ---------------------------------------------------------------------------------------------

/// The device id: lowercase hex SHA-256 of the certificate's SubjectPublicKeyInfo (DER).
///
/// The id follows the key, not the certificate, so re-issuing a certificate for the same key keeps
/// the id. Fails on anything that is not one well-formed X.509 certificate.
pub fn fingerprint(cert_der: &[u8]) -> Result<String, TlsError> {
    let spki = spki_der(cert_der)?;
    Ok(hex::encode(Sha256::digest(spki)))
}

/// The SubjectPublicKeyInfo of a certificate, as the DER bytes found in it (tag and length
/// included).
pub fn spki_der(cert_der: &[u8]) -> Result<&[u8], TlsError> {
    Ok(parse(cert_der)?.tbs_certificate.subject_pki.raw)
}

/// The subject Name of a certificate, as the DER bytes found in it (tag and length included).
pub fn subject_der(cert_der: &[u8]) -> Result<&[u8], TlsError> {
    Ok(parse(cert_der)?.tbs_certificate.subject.as_raw())
}

/// The first CommonName of the certificate's subject (UTF8String, PrintableString, IA5String or
/// NumericString), or `None` when the subject has none.
pub fn common_name(cert_der: &[u8]) -> Result<Option<String>, TlsError> {
    let cert = parse(cert_der)?;
    let Some(cn) = cert.tbs_certificate.subject.iter_common_name().next() else {
        return Ok(None);
    };
    cn.as_str()
        .map(|s| Some(s.to_owned()))
        .map_err(TlsError::CommonName)
}

/// Parses exactly one DER certificate (x509-parser); trailing bytes are refused.
fn parse(cert_der: &[u8]) -> Result<X509Certificate<'_>, TlsError> {
    let (rest, cert) = X509Certificate::from_der(cert_der).map_err(|e| {
        TlsError::MalformedCertificate(match e {
            nom::Err::Error(e) | nom::Err::Failure(e) => e,
            nom::Err::Incomplete(needed) => X509Error::Der(asn1_rs::Error::Incomplete(needed)),
        })
    })?;
    if !rest.is_empty() {
        return Err(TlsError::TrailingBytes(rest.len()));
    }
    Ok(cert)
}

// ---------------------------------------------------------------------------------------------
// Revocation
// ---------------------------------------------------------------------------------------------

/// The set of revoked device fingerprints, shared between the registry and the TLS verifier.
///
/// Cloning is cheap and every clone sees the same set; changes apply to the next handshake.
/// Fingerprints are compared as lowercase hex (inputs are trimmed and lowercased).
#[derive(Debug, Clone, Default)]
pub struct RevocationList {
    revoked: Arc<RwLock<HashSet<String>>>,
}

impl RevocationList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks one fingerprint as revoked.
    pub fn revoke(&self, fingerprint: &str) {
        let fp = normalise(fingerprint);
        // A poisoned lock still holds a consistent set: inserts and swaps cannot half-happen.
        self.revoked
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(fp);
    }

    /// Whether `fingerprint` is revoked.
    pub fn is_revoked(&self, fingerprint: &str) -> bool {
        let fp = normalise(fingerprint);
        self.revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&fp)
    }

    /// Replaces the whole set, e.g. after reloading the device registry.
    pub fn replace(&self, fingerprints: HashSet<String>) {
        let set = fingerprints.iter().map(|fp| normalise(fp)).collect();
        *self.revoked.write().unwrap_or_else(PoisonError::into_inner) = set;
    }
}

fn normalise(fingerprint: &str) -> String {
    fingerprint.trim().to_ascii_lowercase()
}

/// The WebPKI client verifier (chain to our CA, validity, client-auth usage) plus a refusal of
/// revoked device fingerprints.
#[derive(Debug)]
struct RevocationCheckingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: RevocationList,
}

impl ClientCertVerifier for RevocationCheckingVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let fp = fingerprint(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.revoked.is_revoked(&fp) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

// ---------------------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------------------

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn ca_roots(ca_der: &CertificateDer<'_>) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca_der.clone().into_owned())
        .map_err(TlsError::CaCertificate)?;
    Ok(Arc::new(roots))
}

/// The server's rustls configuration: TLS 1.3 only, a client certificate chaining to `ca_der`
/// required, revoked fingerprints refused, ALPN [`ALPN`], no 0-RTT and no session resumption.
///
/// Resumption is off on purpose: a resumed TLS 1.3 session restores the client certificate from
/// the server's session cache without running the verifier again, so a device revoked after its
/// first connection could otherwise come back with its cached ticket.
pub fn server_config(
    ca_der: &CertificateDer<'_>,
    server_chain_der: Vec<CertificateDer<'static>>,
    server_key_der: PrivateKeyDer<'static>,
    revoked: RevocationList,
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let inner = WebPkiClientVerifier::builder_with_provider(ca_roots(ca_der)?, provider.clone())
        .build()
        .map_err(TlsError::Verifier)?;
    let verifier = Arc::new(RevocationCheckingVerifier { inner, revoked });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Protocol)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(server_chain_der, server_key_der)
        .map_err(TlsError::CertificateOrKey)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.max_early_data_size = 0;
    config.send_half_rtt_data = false;
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

/// A device's rustls configuration: TLS 1.3 only, `ca_der` as the only root (the server must
/// present a certificate for [`SERVER_NAME`] issued by it), the device certificate for client
/// authentication, ALPN [`ALPN`], no 0-RTT.
pub fn client_config(
    ca_der: &CertificateDer<'_>,
    device_chain_der: Vec<CertificateDer<'static>>,
    device_key_der: PrivateKeyDer<'static>,
) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Protocol)?
        .with_root_certificates(ca_roots(ca_der)?)
        .with_client_auth_cert(device_chain_der, device_key_der)
        .map_err(TlsError::CertificateOrKey)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_early_data = false;
    Ok(config)
}

// ---------------------------------------------------------------------------------------------
// PEM
// ---------------------------------------------------------------------------------------------

/// Every certificate in `pem`, in order (leaf first for a chain). Fails if there is none.
pub fn pem_to_der_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::PemCertificates)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

/// The first private key (PKCS#8, SEC1 or PKCS#1) in `pem`.
pub fn pem_to_der_key(pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(TlsError::PemKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_refuses_garbage_without_panicking() {
        let samples: &[&[u8]] = &[
            &[],
            &[0x30],
            &[0x30, 0x80],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x81, 0x05, 0, 0, 0, 0, 0],
            &[0x30, 0x82, 0xff, 0xff],
            &[0x30, 0x03, 0x30, 0x01],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x30, 0x02, 0x30, 0x00, 0x00],
            &[0x1f, 0x01, 0x00],
        ];
        for sample in samples {
            assert!(fingerprint(sample).is_err(), "{sample:?}");
            assert!(common_name(sample).is_err(), "{sample:?}");
        }
        // Every prefix of a plausible header, and every single byte value.
        for b in 0..=u8::MAX {
            let _ = fingerprint(&[0x30, b, 0x30, b, 0xa0, b]);
        }
    }

    /// A certificate from rcgen with a known key and subject, as the CA issues them.
    fn rcgen_cert(cn: &str) -> (rcgen::KeyPair, rcgen::Certificate) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["laptop.example".to_owned()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).expect("self-signed");
        (key, cert)
    }

    #[test]
    fn parses_the_key_subject_and_name_of_an_rcgen_certificate() {
        let (key, cert) = rcgen_cert("laptop-anna");
        let der: &[u8] = cert.der();
        // The SubjectPublicKeyInfo is the key's own DER, so the id follows the key.
        assert_eq!(
            spki_der(der).expect("spki"),
            key.public_key_der().as_slice()
        );
        assert_eq!(
            fingerprint(der).expect("fingerprint"),
            hex::encode(Sha256::digest(key.public_key_der()))
        );
        // Name ::= SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, UTF8String "laptop-anna" } } }
        let mut subject = vec![0x30, 22, 0x31, 20, 0x30, 18, 0x06, 0x03, 0x55, 0x04, 0x03];
        subject.extend([0x0c, 11]);
        subject.extend(b"laptop-anna");
        assert_eq!(subject_der(der).expect("subject"), subject.as_slice());
        assert_eq!(
            common_name(der).expect("cn").as_deref(),
            Some("laptop-anna")
        );

        let mut params = rcgen::CertificateParams::new(vec![]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        let nameless = params.self_signed(&key).expect("self-signed");
        assert_eq!(common_name(nameless.der()).expect("cn"), None);

        let mut trailing = der.to_vec();
        trailing.push(0);
        assert!(fingerprint(&trailing).is_err(), "trailing bytes refused");
    }

    #[test]
    fn revocation_list_is_shared_and_normalised() {
        let list = RevocationList::new();
        let clone = list.clone();
        list.revoke(" ABCDEF ");
        assert!(clone.is_revoked("abcdef"));
        clone.replace(HashSet::from(["0123".to_owned()]));
        assert!(!list.is_revoked("abcdef"));
        assert!(list.is_revoked("0123"));
    }

    #[test]
    fn pem_helpers_refuse_empty_input() {
        assert!(matches!(
            pem_to_der_certs("nothing here"),
            Err(TlsError::NoCertificate)
        ));
        assert!(pem_to_der_key("nothing here").is_err());
    }
}
