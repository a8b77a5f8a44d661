//! The server's commands: each opens what it needs in the data directory, does one thing and
//! prints the result. The daemon itself is `serve`.
//!
//! No protocol or merge logic here.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::json;
use tournee_server::admin;
use tournee_server::config::DataDir;
use tournee_server::registry::{Registry, Unit};
use tournee_server::serve;
use tournee_shared::actions::conflict_views;
use tournee_shared::cli::{init_logging, wait_for_signal, write_private};
use tournee_shared::clock::{Clock, SkewedClock};
use tournee_shared::export;
use tournee_shared::model::Scope;
use tournee_shared::output::{print_json, print_table, Format};
use tournee_shared::store::{SqliteStore, Store};

use crate::{Cli, Command, DeviceCmd, UnitCmd};

fn data_dir(cli: Option<PathBuf>) -> Result<DataDir> {
    match cli {
        Some(d) => Ok(DataDir::new(d)),
        None => dirs::data_dir()
            .map(|d| DataDir::new(d.join("tournee-server")))
            .context("no data directory: pass --data DIR or set TOURNEE_DATA"),
    }
}

/// Run one command.
pub fn run(cli: Cli) -> Result<()> {
    let clock = SkewedClock::from_env();
    let explicit_data = cli.data.clone();
    let data = data_dir(cli.data)?;
    match cli.command {
        Command::Init(a) => init(&data, &clock, a),
        Command::Serve(a) => serve_cmd(&data, a),
        Command::Demo(a) => demo_cmd(explicit_data, a),
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
    let config = admin::init_server(data, clock, a.listen, a.public_addr)?;
    println!(
        "initialised a Tournée server in {} (listening on {} once `serve` runs)",
        data.root().display(),
        config.listen
    );
    Ok(())
}

fn enroll(data: &DataDir, clock: &dyn Clock, a: crate::DeviceEnroll) -> Result<()> {
    if a.out.exists() {
        bail!(
            "{} exists already; choose another --out (a bundle holds a private key)",
            a.out.display()
        );
    }
    let bundle = admin::enroll_device(data, clock, &a.unit, &a.name)?;
    write_private(&a.out, bundle.to_json().as_bytes())?;
    println!(
        "enrolled device {} ({}) in unit {}; bundle written to {} — copy it to the laptop and run `tournee-agent init --bundle FILE`",
        bundle.device,
        a.name,
        bundle.unit,
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

fn demo_cmd(data: Option<PathBuf>, a: crate::DemoArgs) -> Result<()> {
    // The demo narrates on stdout; only errors go to the log.
    init_logging("error");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(tournee_server::demo::run(
        tournee_server::demo::DemoOptions {
            data,
            exit: a.exit,
            seed: a.seed,
        },
    ))
}
