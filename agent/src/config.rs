//! The agent daemon's configuration file, `agent.toml` in the data directory: every setting
//! has a default, and `tournee-agent run` flags override the file.
//!
//! Settings only; reading the bundle and the store is elsewhere.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tournee_core::limits::{BACKOFF_MAX_MS, BACKOFF_MIN_MS};

/// File name inside the data directory.
pub const CONFIG_FILE: &str = "agent.toml";

/// `agent.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Log filter when `RUST_LOG` is not set (`info`, `warn`, `tournee_agent=debug`…).
    #[serde(default = "default_log")]
    pub log: String,
    /// Server addresses (`host:port`) to use instead of the bundle's (the server moved).
    #[serde(default)]
    pub server_addr: Vec<String>,
    /// First retry delay after a failed connection, in milliseconds.
    #[serde(default = "default_backoff_min")]
    pub backoff_min_ms: u64,
    /// Longest retry delay, in milliseconds.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_ms: u64,
    /// Address the local web UI listens on (`tournee-agent run`).
    #[serde(default = "default_ui_listen")]
    pub ui_listen: String,
    /// Let the UI listen on an address other machines can reach (off: loopback only).
    #[serde(default)]
    pub ui_allow_non_loopback: bool,
}

fn default_log() -> String {
    "info".into()
}
fn default_backoff_min() -> u64 {
    BACKOFF_MIN_MS
}
fn default_backoff_max() -> u64 {
    BACKOFF_MAX_MS
}
fn default_ui_listen() -> String {
    UI_LISTEN_DEFAULT.into()
}

/// Where the UI listens unless `agent.toml` says otherwise.
pub const UI_LISTEN_DEFAULT: &str = "127.0.0.1:4480";

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            log: default_log(),
            server_addr: Vec::new(),
            backoff_min_ms: BACKOFF_MIN_MS,
            backoff_max_ms: BACKOFF_MAX_MS,
            ui_listen: default_ui_listen(),
            ui_allow_non_loopback: false,
        }
    }
}

/// The file `init` writes: every setting commented out at its default.
pub const CONFIG_TEMPLATE: &str =
    "# tournee-agent daemon settings. Every line is optional; the values shown are the defaults.
# Flags of `tournee-agent run` override this file.

# Log filter when RUST_LOG is not set.
# log = \"info\"

# Server addresses to use instead of the enrolment bundle's (host:port), if the server moved.
# server_addr = [\"tournee.example.fr:4433\"]

# First and longest delay between connection attempts when the server is unreachable (ms).
# The delay doubles from the first to the longest, with random jitter.
# backoff_min_ms = 500
# backoff_max_ms = 60000

# Address of the local web UI (open it with `tournee-agent ui`). Only this computer can reach
# a loopback address; any other address needs ui_allow_non_loopback set to true.
# ui_listen = \"127.0.0.1:4480\"
# ui_allow_non_loopback = false
";

/// A laptop initialised before `init` wrote `agent.toml` 0600 may hold a readable one.
fn restrict_to_owner(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {} to its owner", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl AgentConfig {
    /// The UI's address, refused when other machines could reach it and `agent.toml` does not
    /// say so (`ui_allow_non_loopback`).
    pub fn ui_addr(&self) -> Result<std::net::SocketAddr> {
        let addr: std::net::SocketAddr = self.ui_listen.parse().map_err(|_| {
            anyhow::anyhow!(
                "ui_listen = {:?} dans {CONFIG_FILE} n'est pas une adresse IP:port (par exemple {UI_LISTEN_DEFAULT})",
                self.ui_listen
            )
        })?;
        anyhow::ensure!(
            addr.ip().is_loopback() || self.ui_allow_non_loopback,
            "l'interface refuse d'écouter sur {addr} : d'autres ordinateurs pourraient l'atteindre ; \
             mettez ui_listen = \"{UI_LISTEN_DEFAULT}\" dans {CONFIG_FILE}, ou ajoutez \
             ui_allow_non_loopback = true si c'est vraiment voulu"
        );
        Ok(addr)
    }

    /// Read `agent.toml` from `dir`, or the defaults when there is none.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        if !path.exists() {
            return Ok(Self::default());
        }
        restrict_to_owner(&path)?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let c: Self = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid configuration", path.display()))?;
        anyhow::ensure!(
            c.backoff_min_ms > 0 && c.backoff_min_ms <= c.backoff_max_ms,
            "{}: backoff_min_ms must be positive and at most backoff_max_ms",
            path.display()
        );
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_readable_agent_toml_is_made_owner_only_when_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, CONFIG_TEMPLATE).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(
            AgentConfig::load(dir.path()).expect("load"),
            AgentConfig::default()
        );
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn the_template_parses_to_the_defaults_and_unknown_keys_are_refused() {
        let c: AgentConfig = toml::from_str(CONFIG_TEMPLATE).expect("template");
        assert_eq!(c, AgentConfig::default());
        let uncommented: String = CONFIG_TEMPLATE
            .lines()
            .filter(|l| l.starts_with("# ") && l.contains(" = "))
            .map(|l| format!("{}\n", &l[2..]))
            .collect();
        let c: AgentConfig = toml::from_str(&uncommented).expect("defaults written out");
        assert_eq!(c.backoff_min_ms, BACKOFF_MIN_MS);
        assert_eq!(c.backoff_max_ms, BACKOFF_MAX_MS);
        assert!(toml::from_str::<AgentConfig>("colour = true").is_err());
        assert_eq!(c.ui_listen, UI_LISTEN_DEFAULT);
        assert!(!c.ui_allow_non_loopback);
    }

    #[test]
    fn the_ui_refuses_a_non_loopback_address_unless_allowed() {
        let mut c = AgentConfig {
            ui_listen: "0.0.0.0:4480".into(),
            ..AgentConfig::default()
        };
        let e = c.ui_addr().expect_err("0.0.0.0 refused").to_string();
        assert!(e.contains("ui_allow_non_loopback"), "{e}");
        c.ui_allow_non_loopback = true;
        assert_eq!(c.ui_addr().expect("allowed").port(), 4480);
        assert!(AgentConfig::default()
            .ui_addr()
            .expect("default")
            .ip()
            .is_loopback());
        c.ui_listen = "[::1]:9".into();
        c.ui_allow_non_loopback = false;
        assert!(c.ui_addr().is_ok());
    }
}
