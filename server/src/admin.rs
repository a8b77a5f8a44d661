//! Administration steps shared by the command line and the demo: create a server (CA, server
//! certificate, configuration, stores) and enrol a device (issue its identity, assign its
//! number, build its bundle).
//!
//! No printing and no argument parsing: callers decide what to show and where files go.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use tournee_cli::{create_private_dir, write_private};
use tournee_core::clock::Clock;
use tournee_core::store::{Identity, Store};
use tournee_net::bundle::{Bundle, BUNDLE_VERSION};

use crate::ca::Ca;
use crate::config::{DataDir, ServerConfig};
use crate::registry::Registry;
use tournee_core::limits::{DEFAULT_SESSIONS_MAX, HORIZON_WEEKS_DEFAULT};

fn now_utc(clock: &dyn Clock) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(i64::try_from(clock.now_ms()).unwrap_or(0))
        .unwrap_or_default()
}

/// The host part of `HOST:PORT` (IPv6 in brackets allowed).
fn host_of(addr: &str) -> String {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return sa.ip().to_string();
    }
    addr.rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_matches(['[', ']'])
        .to_owned()
}

/// Create a server in `data`: private CA, server certificate for the listen and public
/// addresses, configuration file, empty registry and store.
pub fn init_server(
    data: &DataDir,
    clock: &dyn Clock,
    listen: SocketAddr,
    public_addr: Vec<String>,
    console_listen: SocketAddr,
) -> Result<ServerConfig> {
    if data.is_initialised() {
        bail!(
            "{} already holds a Tournée server; use another --data directory",
            data.root().display()
        );
    }
    for addr in &public_addr {
        tournee_core::model::check_text_chars("public-addr", addr)?;
    }
    create_private_dir(data.root())?;
    let now = now_utc(clock);
    let ca = Ca::generate("Tournée CA", now)?;
    let mut hosts: Vec<String> = public_addr
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(listen.to_string().as_str()))
        .map(host_of)
        .collect();
    hosts.sort();
    hosts.dedup();
    let server = ca.issue_server(&hosts, now)?;
    write_private(&data.ca_key(), ca.key_pem.as_bytes())?;
    std::fs::write(data.ca_cert(), &ca.cert_pem)?;
    write_private(&data.server_key(), server.key_pem.as_bytes())?;
    std::fs::write(data.server_cert(), &server.cert_pem)?;
    let config = ServerConfig {
        listen,
        public_addr,
        sessions_max: DEFAULT_SESSIONS_MAX,
        log: "info".into(),
        horizon_weeks: HORIZON_WEEKS_DEFAULT,
        console_listen,
        console_url: None,
        console_tls_cert: None,
        console_tls_key: None,
    };
    Registry::open(&data.registry())?;
    let mut store = data.open_store()?;
    store.set_identity(&Identity::server())?;
    write_private(&data.config(), toml::to_string_pretty(&config)?.as_bytes())?;
    Ok(config)
}

/// Enrol a device of `unit` named `name`: a new key and certificate from the CA, the next actor
/// number, and the bundle the laptop needs.
pub fn enroll_device(data: &DataDir, clock: &dyn Clock, unit: &str, name: &str) -> Result<Bundle> {
    data.require()?;
    let config = data.load_config()?;
    let reg = Registry::open(&data.registry())?;
    let unit = reg
        .unit(unit)?
        .with_context(|| format!("no unit '{unit}': add it with `tournee-server unit add`"))?;
    let ca = Ca::load(
        &std::fs::read_to_string(data.ca_cert()).context("cannot read the CA certificate")?,
        &std::fs::read_to_string(data.ca_key()).context("cannot read the CA key")?,
    )?;
    let issued = ca.issue_device(name, now_utc(clock))?;
    let actor = reg.add_device(
        name,
        &unit.id,
        &issued.fingerprint,
        i64::try_from(clock.now_ms()).unwrap_or(0),
    )?;
    Ok(Bundle {
        version: BUNDLE_VERSION,
        server_addrs: config.bundle_addrs(),
        device: actor,
        device_name: name.to_owned(),
        unit: unit.id.clone(),
        territory: unit.territory.clone(),
        ca_pem: ca.cert_pem.clone(),
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
        fingerprint: issued.fingerprint,
    })
}
