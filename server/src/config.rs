//! The server's data directory layout and configuration file (`server.toml`).
//!
//! Only paths and settings; nothing here opens sockets or databases.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tournee_core::limits::{DEFAULT_SESSIONS_MAX, HORIZON_WEEKS_DEFAULT};
use tournee_core::store::StoreError;
use tournee_store::SqliteStore;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4433";

/// `server.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Addresses agents use to reach the server (written into enrolment bundles). Empty: the
    /// listen address.
    #[serde(default)]
    pub public_addr: Vec<String>,
    /// Sync sessions served at once (admission control); others queue.
    #[serde(default = "default_sessions_max")]
    pub sessions_max: usize,
    /// Log level filter when `RUST_LOG` is not set (e.g. `info`, `tournee_server=debug`).
    #[serde(default = "default_log")]
    pub log: String,
    /// Weeks of passages materialised ahead of today for every round.
    #[serde(default = "default_horizon")]
    pub horizon_weeks: u32,
    /// TCP address the web console listens on (`serve`).
    #[serde(default = "default_console_listen")]
    pub console_listen: SocketAddr,
    /// The console's address as people reach it (behind a reverse proxy), used in sign-in
    /// links; default `http://` + `console_listen`.
    #[serde(default)]
    pub console_url: Option<String>,
    /// The console serves HTTPS itself with this certificate chain (PEM) and
    /// `console_tls_key`, instead of HTTP behind a reverse proxy.
    #[serde(default)]
    pub console_tls_cert: Option<PathBuf>,
    /// The private key (PEM, PKCS#8, SEC1 or PKCS#1) of `console_tls_cert`.
    #[serde(default)]
    pub console_tls_key: Option<PathBuf>,
}

/// Where the console listens unless `server.toml` says otherwise.
pub const CONSOLE_LISTEN_DEFAULT: &str = "127.0.0.1:4434";

fn default_console_listen() -> SocketAddr {
    CONSOLE_LISTEN_DEFAULT
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 4434)))
}

fn default_horizon() -> u32 {
    HORIZON_WEEKS_DEFAULT
}

fn default_sessions_max() -> usize {
    DEFAULT_SESSIONS_MAX
}

fn default_log() -> String {
    "info".into()
}

impl ServerConfig {
    /// The console's base URL for people (no trailing slash).
    pub fn console_base_url(&self) -> String {
        self.console_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| {
                let scheme = if self.console_tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{}", self.console_listen)
            })
    }

    /// The addresses to put in a bundle.
    pub fn bundle_addrs(&self) -> Vec<String> {
        if self.public_addr.is_empty() {
            vec![self.listen.to_string()]
        } else {
            self.public_addr.clone()
        }
    }
}

/// Paths inside a server data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The directory.
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }
    /// Root path.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The replicated store.
    pub fn store(&self) -> PathBuf {
        self.root.join("server.sqlite")
    }
    /// Open the replicated store with the reporting projection plugged in.
    pub fn open_store(&self) -> Result<SqliteStore, StoreError> {
        tournee_report::facts::open_server_store(&self.store())
    }
    /// The device registry.
    pub fn registry(&self) -> PathBuf {
        self.root.join("registry.sqlite")
    }
    /// Configuration file.
    pub fn config(&self) -> PathBuf {
        self.root.join("server.toml")
    }
    /// CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.pem")
    }
    /// CA key (0600).
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca.key")
    }
    /// Server certificate.
    pub fn server_cert(&self) -> PathBuf {
        self.root.join("server.pem")
    }
    /// Server key (0600).
    pub fn server_key(&self) -> PathBuf {
        self.root.join("server.key")
    }
    /// True once `init` ran here.
    pub fn is_initialised(&self) -> bool {
        self.config().exists() && self.store().exists()
    }
    /// Check `init` ran, with a clear error otherwise.
    pub fn require(&self) -> Result<()> {
        if !self.is_initialised() {
            anyhow::bail!(
                "no Tournée server in {}: run `tournee-server init --data {}` first",
                self.root.display(),
                self.root.display()
            );
        }
        Ok(())
    }
    /// Read the configuration file.
    pub fn load_config(&self) -> Result<ServerConfig> {
        let text = std::fs::read_to_string(self.config())
            .with_context(|| format!("cannot read {}", self.config().display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid configuration", self.config().display()))
    }
}
