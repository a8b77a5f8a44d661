//! The enrolment bundle: everything a laptop needs to reach and trust the server, and to be
//! trusted by it. Written by `tournee-server device enroll` and kept by `tournee-agent init
//! --bundle`, both through `tournee_cli::write_private` (mode 0600, replaced atomically: it holds
//! the device's private key).
//!
//! Just the format and its checks; files are written by the callers.

use serde::{Deserialize, Serialize};

use tournee_core::register::Actor;

/// Version of the bundle format.
pub const BUNDLE_VERSION: u32 = 1;

/// An enrolment bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Format version.
    pub version: u32,
    /// Server addresses (`host:port`), tried in order.
    pub server_addrs: Vec<String>,
    /// The device's actor number.
    pub device: Actor,
    /// The device's name.
    pub device_name: String,
    /// Its unit.
    pub unit: String,
    /// The unit's territory.
    pub territory: String,
    /// The CA certificate (PEM) the server's certificate chains to.
    pub ca_pem: String,
    /// The device's certificate (PEM).
    pub cert_pem: String,
    /// The device's private key (PEM).
    pub key_pem: String,
    /// SHA-256 of the device's public key.
    pub fingerprint: String,
}

/// Why a bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Not JSON of the expected shape.
    #[error("not a Tournée enrolment bundle: {0}")]
    Format(#[from] serde_json::Error),
    /// A version this program does not know.
    #[error("bundle format {found} is not supported (this program reads {BUNDLE_VERSION}); re-enrol with a matching server")]
    Version {
        /// Version found.
        found: u32,
    },
    /// A required part is empty.
    #[error("bundle has no {0}")]
    Missing(&'static str),
}

impl Bundle {
    /// Parse and check a bundle.
    pub fn parse(text: &str) -> Result<Self, BundleError> {
        let b: Bundle = serde_json::from_str(text)?;
        if b.version != BUNDLE_VERSION {
            return Err(BundleError::Version { found: b.version });
        }
        if b.server_addrs.is_empty() {
            return Err(BundleError::Missing("server address"));
        }
        for (part, what) in [
            (&b.ca_pem, "CA certificate"),
            (&b.cert_pem, "device certificate"),
            (&b.key_pem, "device key"),
        ] {
            if part.trim().is_empty() {
                return Err(BundleError::Missing(what));
            }
        }
        if b.device == 0 {
            return Err(BundleError::Missing("device number"));
        }
        Ok(b)
    }

    /// Serialise for writing.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
