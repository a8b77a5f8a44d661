//! The server's commands: each opens what it needs in the data directory, does one thing and
//! prints the result. The daemon itself is `serve`.
//!
//! No protocol or merge logic here.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::json;
use tournee_server::ca::Ca;
use tournee_server::config::{DataDir, ServerConfig, DEFAULT_SESSIONS_MAX};
use tournee_server::registry::{Registry, Unit};
use tournee_server::serve;
use tournee_shared::actions::conflict_views;
use tournee_shared::bundle::{Bundle, BUNDLE_VERSION};
use tournee_shared::cli::{create_private_dir, init_logging, wait_for_signal, write_private};
use tournee_shared::clock::{Clock, SkewedClock};
use tournee_shared::export;
use tournee_shared::model::Scope;
use tournee_shared::output::{print_json, print_table, Format};
use tournee_shared::store::{Identity, SqliteStore, Store};

use crate::{Cli, Command, DeviceCmd, UnitCmd};

fn data_dir(cli: Option<PathBuf>) -> Result<DataDir> {
    match cli {
        Some(d) => Ok(DataDir::new(d)),
        None => dirs::data_dir()
            .map(|d| DataDir::new(d.join("tournee-server")))
            .context("no data directory: pass --data DIR or set TOURNEE_DATA"),
    }
}

fn now_utc(clock: &dyn Clock) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(i64::try_from(clock.now_ms()).unwrap_or(0))
        .unwrap_or_default()
}

/// Run one command.
pub fn run(cli: Cli) -> Result<()> {
    let clock = SkewedClock::from_env();
    let data = data_dir(cli.data)?;
    match cli.command {
        Command::Init(a) => init(&data, &clock, a),
        Command::Serve(a) => serve_cmd(&data, a),
        Command::Unit(UnitCmd::Add(a)) => {
            data.require()?;
            let reg = Registry::open(&data.registry())?;
            reg.add_unit(&Unit {
                id: a.id.clone(),
                name: a.name,
                territory: a.territory,
                kind: a.kind,
            })?;
            println!("{}", a.id);
            Ok(())
        }
        Command::Unit(UnitCmd::List(f)) => {
            data.require()?;
            let units = Registry::open(&data.registry())?.units()?;
            match f.format {
                Format::Json => print_json(&json!({ "units": units })),
                Format::Table => print_table(
                    &["id", "name", "territory", "kind"],
                    &units
                        .iter()
                        .map(|u| {
                            vec![
                                u.id.clone(),
                                u.name.clone(),
                                u.territory.clone(),
                                u.kind.clone(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        Command::Device(DeviceCmd::Enroll(a)) => enroll(&data, &clock, a),
        Command::Device(DeviceCmd::List(f)) => {
            data.require()?;
            let devices = Registry::open(&data.registry())?.devices()?;
            match f.format {
                Format::Json => print_json(&json!({ "devices": devices })),
                Format::Table => print_table(
                    &["device", "name", "unit", "status", "fingerprint"],
                    &devices
                        .iter()
                        .map(|d| {
                            vec![
                                d.actor.to_string(),
                                d.name.clone(),
                                d.unit.clone(),
                                d.status.clone(),
                                d.fingerprint.chars().take(16).collect(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        Command::Device(DeviceCmd::Revoke(a)) => {
            data.require()?;
            let now = i64::try_from(clock.now_ms()).unwrap_or(0);
            let d = Registry::open(&data.registry())?.revoke(&a.device, now)?;
            println!("revoked device {} ({}) of unit {}", d.actor, d.name, d.unit);
            Ok(())
        }
        Command::Export(a) => {
            let (store, scopes) = open_scoped(&data, a.unit.as_deref())?;
            let mut out = std::io::stdout().lock();
            export::write_export(&store, scopes.as_deref(), &mut out)?;
            Ok(())
        }
        Command::Digest(a) => {
            let (store, scopes) = open_scoped(&data, a.unit.as_deref())?;
            println!("{}", export::digest(&store, scopes.as_deref())?);
            Ok(())
        }
        Command::Conflicts(f) => {
            data.require()?;
            let store = SqliteStore::open(&data.store())?;
            let views: Vec<_> = store
                .conflicted()?
                .iter()
                .flat_map(conflict_views)
                .collect();
            match f.format {
                Format::Json => print_json(&json!({ "conflicts": views })),
                Format::Table => print_table(
                    &["record", "kind", "field", "values (last is shown)"],
                    &views
                        .iter()
                        .map(|c| {
                            vec![
                                c.record.to_string(),
                                c.kind.to_owned(),
                                c.field.to_owned(),
                                c.values
                                    .iter()
                                    .map(|v| format!("{} (device {})", v.value, v.device))
                                    .collect::<Vec<_>>()
                                    .join(" | "),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
    }
}

fn open_scoped(data: &DataDir, unit: Option<&str>) -> Result<(SqliteStore, Option<Vec<Scope>>)> {
    data.require()?;
    let store = SqliteStore::open(&data.store())?;
    let scopes = match unit {
        None => None,
        Some(u) => {
            let reg = Registry::open(&data.registry())?;
            let unit = reg
                .unit(u)?
                .with_context(|| format!("no unit '{u}': see `tournee-server unit list`"))?;
            Some(vec![Scope::Unit(unit.id), Scope::Territory(unit.territory)])
        }
    };
    Ok((store, scopes))
}

fn init(data: &DataDir, clock: &dyn Clock, a: crate::InitArgs) -> Result<()> {
    if data.is_initialised() {
        bail!(
            "{} already holds a Tournée server; use another --data directory",
            data.root().display()
        );
    }
    create_private_dir(data.root())?;
    let now = now_utc(clock);
    let ca = Ca::generate("Tournée CA", now)?;
    let hosts: Vec<String> = a
        .public_addr
        .iter()
        .chain(std::iter::once(&a.listen.to_string()))
        .map(|addr| host_of(addr))
        .collect();
    let server = ca.issue_server(&dedup(hosts), now)?;
    write_private(&data.ca_key(), ca.key_pem.as_bytes())?;
    std::fs::write(data.ca_cert(), &ca.cert_pem)?;
    write_private(&data.server_key(), server.key_pem.as_bytes())?;
    std::fs::write(data.server_cert(), &server.cert_pem)?;
    let config = ServerConfig {
        listen: a.listen,
        public_addr: a.public_addr,
        sessions_max: DEFAULT_SESSIONS_MAX,
        log: "info".into(),
    };
    Registry::open(&data.registry())?;
    let mut store = SqliteStore::open(&data.store())?;
    store.set_identity(&Identity::server())?;
    std::fs::write(data.config(), toml::to_string_pretty(&config)?)?;
    println!(
        "initialised a Tournée server in {} (listening on {} once `serve` runs)",
        data.root().display(),
        config.listen
    );
    Ok(())
}

/// The host part of `HOST:PORT` (IPv6 in brackets allowed).
fn host_of(addr: &str) -> String {
    if let Ok(sa) = addr.parse::<std::net::SocketAddr>() {
        return sa.ip().to_string();
    }
    addr.rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_matches(['[', ']'])
        .to_owned()
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn enroll(data: &DataDir, clock: &dyn Clock, a: crate::DeviceEnroll) -> Result<()> {
    data.require()?;
    let config = data.load_config()?;
    let reg = Registry::open(&data.registry())?;
    let unit = reg.unit(&a.unit)?.with_context(|| {
        format!(
            "no unit '{}': add it with `tournee-server unit add`",
            a.unit
        )
    })?;
    if a.out.exists() {
        bail!(
            "{} exists already; choose another --out (a bundle holds a private key)",
            a.out.display()
        );
    }
    let ca = Ca::load(
        &std::fs::read_to_string(data.ca_cert())?,
        &std::fs::read_to_string(data.ca_key())?,
    )?;
    let issued = ca.issue_device(&a.name, now_utc(clock))?;
    let actor = reg.add_device(
        &a.name,
        &unit.id,
        &issued.fingerprint,
        i64::try_from(clock.now_ms()).unwrap_or(0),
    )?;
    let bundle = Bundle {
        version: BUNDLE_VERSION,
        server_addrs: config.bundle_addrs(),
        device: actor,
        device_name: a.name.clone(),
        unit: unit.id.clone(),
        territory: unit.territory.clone(),
        ca_pem: ca.cert_pem.clone(),
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
        fingerprint: issued.fingerprint.clone(),
    };
    write_private(&a.out, bundle.to_json().as_bytes())?;
    println!(
        "enrolled device {actor} ({}) in unit {}; bundle written to {} — copy it to the laptop and run `tournee-agent init --bundle FILE`",
        a.name,
        unit.id,
        a.out.display()
    );
    Ok(())
}

fn serve_cmd(data: &DataDir, a: crate::ServeArgs) -> Result<()> {
    data.require()?;
    let mut config = data.load_config()?;
    if let Some(l) = a.listen {
        config.listen = l;
    }
    init_logging(&config.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let server = serve::start(data, &config, Arc::new(SkewedClock::from_env())).await?;
        println!("tournee-server listening on {}", server.addr());
        wait_for_signal().await;
        server.shutdown().await;
        Ok(())
    })
}
