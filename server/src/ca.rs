//! The server's private certificate authority: creates the CA, issues the server certificate and
//! device certificates (fresh ECDSA P-256 keys), and reports each device's fingerprint.
//!
//! This module neither reads the clock (the caller passes `not_before`) nor touches files
//! (callers store the PEM texts, keys through `tournee_cli::write_private`: mode 0600, replaced
//! atomically). It keeps no record of what it issued and
//! does not revoke: the device registry and `tournee_net::tls::RevocationList` do that.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Datelike, Months, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use tournee_net::tls;

/// How long the CA certificate is valid.
const CA_VALIDITY_YEARS: u32 = 20;
/// How long server and device certificates are valid.
const LEAF_VALIDITY_YEARS: u32 = 5;

/// Errors creating, loading or using the CA.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// rcgen refused to generate a key or a certificate.
    #[error("could not generate the key or certificate: {0}")]
    Generate(#[source] rcgen::Error),
    /// The CA private key PEM could not be read.
    #[error("could not read the CA private key: {0}")]
    Key(#[source] rcgen::Error),
    /// The CA certificate PEM or DER could not be read.
    #[error("could not read the CA certificate: {0}")]
    Certificate(#[source] tls::TlsError),
    /// The CA certificate and key do not belong together, or the certificate was not made by
    /// [`Ca::generate`].
    #[error("the CA certificate and key are unusable: {0}")]
    Mismatch(&'static str),
    /// A subject alternative name is neither an IP address nor a valid DNS name.
    #[error("invalid server name {0:?}: expected an IP address or a DNS name")]
    InvalidName(String),
    /// The validity period falls outside what certificates can encode here (years 1950–9999).
    #[error("invalid certificate validity: {0}")]
    InvalidTime(String),
}

/// The CA as PEM texts. Construct it with [`Ca::generate`] or [`Ca::load`]; every issuing call
/// re-reads and re-checks the PEM texts.
#[derive(Clone)]
pub struct Ca {
    /// The self-signed CA certificate.
    pub cert_pem: String,
    /// The CA private key (PKCS#8). Secret.
    pub key_pem: String,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A freshly issued certificate with its new private key.
#[derive(Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key (PKCS#8), PEM. Secret.
    pub key_pem: String,
    /// The device id: hex SHA-256 of the public key ([`tls::fingerprint`]).
    pub fingerprint: String,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl Ca {
    /// Creates a self-signed CA (ECDSA P-256) named `name`, valid for 20 years from 00:00 UTC of
    /// `not_before`'s day.
    pub fn generate(name: &str, not_before: DateTime<Utc>) -> Result<Ca, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CaError::Generate)?;
        let mut params = ca_params(name);
        set_validity(&mut params, not_before, CA_VALIDITY_YEARS)?;
        let cert = params.self_signed(&key).map_err(CaError::Generate)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Loads a CA made by [`Ca::generate`], checking that the key belongs to the certificate.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Ca, CaError> {
        let ca = Ca {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        };
        ca.signer()?;
        Ok(ca)
    }

    /// The CA certificate, DER (the trust anchor for both ends).
    pub fn cert_der(&self) -> Result<rustls_pki_types::CertificateDer<'static>, CaError> {
        let mut certs = tls::pem_to_der_certs(&self.cert_pem).map_err(CaError::Certificate)?;
        if certs.len() != 1 {
            return Err(CaError::Mismatch("expected exactly one CA certificate"));
        }
        Ok(certs.remove(0))
    }

    /// Issues the server certificate: SAN DNS [`tls::SERVER_NAME`] plus `extra_sans` (IP
    /// addresses or DNS names), server-auth usage, valid 5 years from 00:00 UTC of
    /// `not_before`'s day.
    pub fn issue_server(
        &self,
        extra_sans: &[String],
        not_before: DateTime<Utc>,
    ) -> Result<Issued, CaError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, tls::SERVER_NAME);
        params.subject_alt_names = std::iter::once(tls::SERVER_NAME)
            .chain(extra_sans.iter().map(String::as_str))
            .map(san)
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, not_before)
    }

    /// Issues a device certificate with a fresh key: CN = `device_name`, client-auth usage,
    /// valid 5 years from 00:00 UTC of `not_before`'s day.
    pub fn issue_device(
        &self,
        device_name: &str,
        not_before: DateTime<Utc>,
    ) -> Result<Issued, CaError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, device_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, not_before)
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        not_before: DateTime<Utc>,
    ) -> Result<Issued, CaError> {
        let (issuer, issuer_key) = self.signer()?;
        set_validity(&mut params, not_before, LEAF_VALIDITY_YEARS)?;
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CaError::Generate)?;
        let cert = params
            .signed_by(&key, &issuer, &issuer_key)
            .map_err(CaError::Generate)?;
        let fingerprint = tls::fingerprint(cert.der()).map_err(CaError::Certificate)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            fingerprint,
        })
    }

    /// Rebuilds an rcgen issuer from the PEM texts.
    ///
    /// rcgen 0.13 signs with an in-memory `Certificate` and cannot parse one without its
    /// `x509-parser` feature, so the CA certificate is re-derived from its name and key. What an
    /// issued certificate takes from its issuer (subject name, key identifier, key) is then
    /// identical, which is checked here byte for byte against the stored certificate.
    fn signer(&self) -> Result<(rcgen::Certificate, KeyPair), CaError> {
        let key = KeyPair::from_pem(&self.key_pem).map_err(CaError::Key)?;
        let stored = self.cert_der()?;
        let name = tls::common_name(&stored)
            .map_err(CaError::Certificate)?
            .ok_or(CaError::Mismatch("the CA certificate has no common name"))?;
        let rebuilt = ca_params(&name)
            .self_signed(&key)
            .map_err(CaError::Generate)?;
        let spki_matches = tls::spki_der(&stored).map_err(CaError::Certificate)?
            == tls::spki_der(rebuilt.der()).map_err(CaError::Certificate)?;
        if !spki_matches {
            return Err(CaError::Mismatch(
                "the private key does not belong to the CA certificate",
            ));
        }
        let subject_matches = tls::subject_der(&stored).map_err(CaError::Certificate)?
            == tls::subject_der(rebuilt.der()).map_err(CaError::Certificate)?;
        if !subject_matches {
            return Err(CaError::Mismatch(
                "the CA certificate's subject was not written by this CA",
            ));
        }
        Ok((rebuilt, key))
    }
}

/// CA parameters apart from validity (which does not affect what issued certificates contain).
fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn san(name: &str) -> Result<SanType, CaError> {
    let name = name.trim();
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(CaError::InvalidName(name.to_owned()));
    }
    let ia5 = name
        .to_owned()
        .try_into()
        .map_err(|_| CaError::InvalidName(name.to_owned()))?;
    Ok(SanType::DnsName(ia5))
}

/// Sets `not_before` to 00:00 UTC of the given day (a little slack for clocks running behind)
/// and `not_after` `years` later (29 February becomes 28 February when needed).
fn set_validity(
    params: &mut CertificateParams,
    not_before: DateTime<Utc>,
    years: u32,
) -> Result<(), CaError> {
    let start = not_before.date_naive();
    let end = start
        .checked_add_months(Months::new(years * 12))
        .ok_or_else(|| CaError::InvalidTime(format!("{start} + {years} years overflows")))?;
    let (y, m, d) = ymd(start)?;
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = ymd(end)?;
    params.not_after = rcgen::date_time_ymd(y, m, d);
    Ok(())
}

/// A date as `rcgen::date_time_ymd` takes it, refusing years it would panic on or that X.509
/// time types cannot carry.
fn ymd(date: chrono::NaiveDate) -> Result<(i32, u8, u8), CaError> {
    let year = date.year();
    if !(1950..=9999).contains(&year) {
        return Err(CaError::InvalidTime(format!("{date} is outside 1950-9999")));
    }
    let month = u8::try_from(date.month())
        .map_err(|_| CaError::InvalidTime(format!("{date}: month out of range")))?;
    let day = u8::try_from(date.day())
        .map_err(|_| CaError::InvalidTime(format!("{date}: day out of range")))?;
    Ok((year, month, day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 15, 30, 0)
            .single()
            .expect("valid test date")
    }

    #[test]
    fn load_round_trips_and_checks_the_key() {
        let ca = Ca::generate("Tournée CA", at(2025, 3, 1)).expect("generate");
        let loaded = Ca::load(&ca.cert_pem, &ca.key_pem).expect("load");
        let device = loaded
            .issue_device("laptop-anna", at(2025, 3, 2))
            .expect("issue");
        let der = tls::pem_to_der_certs(&device.cert_pem).expect("pem");
        assert_eq!(
            tls::fingerprint(&der[0]).expect("fingerprint"),
            device.fingerprint
        );
        assert_eq!(
            tls::common_name(&der[0]).expect("cn").as_deref(),
            Some("laptop-anna")
        );
        assert_eq!(device.fingerprint.len(), 64);
        // Every truncation of a real certificate is refused, none panics.
        for end in 0..der[0].len() {
            assert!(tls::fingerprint(&der[0][..end]).is_err(), "prefix {end}");
        }

        let other = Ca::generate("Tournée CA", at(2025, 3, 1)).expect("generate");
        assert!(matches!(
            Ca::load(&ca.cert_pem, &other.key_pem),
            Err(CaError::Mismatch(_))
        ));
        assert!(Ca::load("garbage", &ca.key_pem).is_err());
        assert!(Ca::load(&ca.cert_pem, "garbage").is_err());
    }

    #[test]
    fn errors_keep_their_source() {
        let ca = Ca::generate("Tournée CA", at(2025, 3, 1)).expect("generate");
        let err = Ca::load("garbage", &ca.key_pem).expect_err("not a certificate");
        assert!(matches!(err, CaError::Certificate(_)), "{err:?}");
        assert!(err
            .to_string()
            .starts_with("could not read the CA certificate: "));
        let source = std::error::Error::source(&err).expect("keeps its source");
        assert!(source.downcast_ref::<tls::TlsError>().is_some());
    }

    #[test]
    fn leap_day_and_out_of_range_dates() {
        let ca = Ca::generate("Tournée CA", at(2024, 2, 29)).expect("leap-day CA");
        ca.issue_device("laptop", at(2028, 2, 29))
            .expect("leap-day device");
        assert!(matches!(
            Ca::generate("Tournée CA", at(9990, 1, 1)),
            Err(CaError::InvalidTime(_))
        ));
    }

    #[test]
    fn server_names_are_checked() {
        let ca = Ca::generate("Tournée CA", at(2025, 3, 1)).expect("generate");
        ca.issue_server(
            &["10.0.0.5".into(), "::1".into(), "sync.example.org".into()],
            at(2025, 3, 1),
        )
        .expect("valid names");
        for bad in ["", "bad name", "-x.org", "a..b", "é.org"] {
            assert!(
                matches!(
                    ca.issue_server(&[bad.to_owned()], at(2025, 3, 1)),
                    Err(CaError::InvalidName(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_hides_private_keys() {
        let ca = Ca::generate("Tournée CA", at(2025, 3, 1)).expect("generate");
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
        let device = ca.issue_device("laptop", at(2025, 3, 1)).expect("issue");
        assert!(!format!("{device:?}").contains("PRIVATE KEY"));
    }
}
