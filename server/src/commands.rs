//! The server's commands: each opens what it needs in the data directory, does one thing and
//! prints the result. The daemon itself is `serve`.
//!
//! No protocol or merge logic here.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::json;
use tournee_cli::output::{escape, print_json, print_line, print_table, Format};
use tournee_cli::{init_logging, wait_for_signal, write_private};
use tournee_core::actions;
use tournee_core::clock::{Clock, SkewedClock};
use tournee_core::export;
use tournee_core::limits::{FINGERPRINT_SHOWN_CHARS, HORIZON_WEEKS_MAX};
use tournee_core::model::Scope;
use tournee_core::model::{Field, Kind};
use tournee_core::refdata::RefData;
use tournee_core::store::Store;
use tournee_core::time::{parse_date, show_rfc3339};
use tournee_report::queries::GroupBy;
use tournee_report::queries::Queries;
use tournee_report::report;
use tournee_server::admin;
use tournee_server::config::DataDir;
use tournee_server::registry::{Registry, Unit};
use tournee_server::scheduling::{self, RoundSpec};
use tournee_server::serve;
use tournee_store::SqliteStore;

use crate::{
    Cli, Command, CoverageBy, DeviceCmd, ReportFormat, RoundCmd, ServerAppointmentCmd, StopCmd,
    UnitCmd,
};

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
        Command::Backup(a) => tournee_server::backup::backup_cmd(&data, &a, clock.now_ms()),
        Command::Restore(a) => tournee_server::backup::restore_cmd(&data, &a, clock.now_ms()),
        Command::User(c) => tournee_server::users::user_cmd(&data, c, clock.now_ms()),
        Command::Audit(a) => tournee_server::users::audit_cmd(&data, &a),
        Command::Timetable(a) => {
            tournee_server::timetable::timetable_cmd(&data, &a, clock.now_ms())
        }
        Command::Stop(StopCmd::Add(a)) => stop_add(&data, &clock, a),
        Command::Stop(StopCmd::List(a)) => stop_list(&data, &a),
        Command::Stop(StopCmd::Set(a)) => stop_set(&data, &clock, &a),
        Command::Stop(StopCmd::Archive(a)) => {
            data.require()?;
            let id = parse_uuid_arg("id", &a.id)?;
            scheduling::archive_stop(&mut data.open_store()?, clock.now_ms(), id)?;
            print_line(format_args!("stop {id} archived"))
        }
        Command::Round(RoundCmd::Add(a)) => round_add(&data, &clock, a),
        Command::Round(RoundCmd::Set(a)) => round_set(&data, &clock, a),
        Command::Round(RoundCmd::List(a)) => round_list(&data, a),
        Command::Round(RoundCmd::Delete(a)) => round_delete(&data, &clock, &a),
        Command::Passage(crate::ServerPassageCmd::Cancel(a)) => passage_cancel(&data, &clock, &a),
        Command::Passage(crate::ServerPassageCmd::Move(a)) => passage_move(&data, &clock, &a),
        Command::Holiday(c) => {
            tournee_server::holidays::holiday_cmd(&data, c, clock.now_ms(), today(&clock))
        }
        Command::Passages(a) => passages(&data, a),
        Command::Appointment(ServerAppointmentCmd::Add(a)) => appointment_add(&data, &clock, a),
        Command::Coverage(a) => coverage(&data, a),
        Command::Unit(UnitCmd::Add(a)) => unit_add(&data, a),
        Command::Unit(UnitCmd::List(f)) => unit_list(&data, f.format),
        Command::Device(DeviceCmd::Enroll(a)) => enroll(&data, &clock, a),
        Command::Device(DeviceCmd::List(f)) => device_list(&data, &clock, f.format),
        Command::Device(DeviceCmd::Revoke(a)) => device_revoke(&data, &clock, a),
        Command::Export(a) => {
            let (store, scopes) = open_scoped(&data, a.unit.as_deref())?;
            let mut out = std::io::stdout().lock();
            export::write_export(&store, scopes.as_deref(), &mut out)?;
            Ok(())
        }
        Command::Digest(a) => {
            let (store, scopes) = open_scoped(&data, a.unit.as_deref())?;
            print_line(format_args!(
                "{}",
                export::digest(&store, scopes.as_deref())?
            ))?;
            Ok(())
        }
        Command::Conflicts(f) => {
            data.require()?;
            let store = data.open_store()?;
            let names = tournee_agent::devices::DeviceNames::new(
                Registry::open(&data.registry())?
                    .devices()?
                    .into_iter()
                    .map(|d| (d.actor, d.name)),
            );
            tournee_cli::print_conflicts(&store, f.format, &|actor| names.label(actor))
        }
    }
}

fn stop_set(data: &DataDir, clock: &dyn Clock, a: &crate::StopSet) -> Result<()> {
    data.require()?;
    let id = parse_uuid_arg("id", &a.id)?;
    let address = a
        .address
        .as_deref()
        .map(|s| Some(s).filter(|s| !s.is_empty()));
    scheduling::set_stop(
        &mut data.open_store()?,
        clock.now_ms(),
        id,
        a.label.as_deref(),
        address,
        a.commune.as_deref().map(|c| (c.trim(), today(clock))),
    )?;
    print_line(format_args!("stop {id} changed"))
}

fn stop_list(data: &DataDir, a: &crate::StopList) -> Result<()> {
    data.require()?;
    tournee_core::model::check_territory("territory", &a.territory)?;
    let stops = scheduling::stops_of(&data.open_store()?, &a.territory)?;
    match a.format {
        Format::Json => print_json(&json!({ "territory": a.territory, "stops": stops })),
        Format::Table => print_table(
            &["id", "commune", "label", "address"],
            &stops
                .iter()
                .map(|s| {
                    vec![
                        s.id.to_string(),
                        format!("{} ({})", s.commune_name, s.commune),
                        s.label.clone(),
                        s.address.clone().unwrap_or_default(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
}

fn stop_add(data: &DataDir, clock: &dyn Clock, a: crate::StopAdd) -> Result<()> {
    data.require()?;
    let mut store = data.open_store()?;
    let id = scheduling::add_stop(
        &mut store,
        clock.now_ms(),
        &a.territory,
        &a.commune,
        &a.label,
        a.address.as_deref(),
    )?;
    print_line(format_args!("{id}"))?;
    Ok(())
}

fn round_delete(data: &DataDir, clock: &dyn Clock, a: &crate::RoundDelete) -> Result<()> {
    data.require()?;
    let config = data.load_config()?;
    let id = parse_uuid_arg("id", &a.id)?;
    let now = clock.now_ms();
    let today = today(clock);
    let mut store = data.open_store()?;
    let r = scheduling::delete_round(&mut store, now, today, config.horizon_weeks, id)?;
    print_line(format_args!(
        "round {id} deleted: {} future passage(s) removed, {} kept (marked by the unit)",
        r.removed, r.kept
    ))
}

fn passage_cancel(data: &DataDir, clock: &dyn Clock, a: &crate::PassageCancel) -> Result<()> {
    data.require()?;
    let id = parse_uuid_arg("id", &a.id)?;
    let cause = tournee_core::model::CancelCause::parse(&a.cause)?;
    let mut store = data.open_store()?;
    scheduling::cancel_passage(&mut store, clock.now_ms(), id, cause)?;
    print_line(format_args!("passage {id} cancelled ({})", cause.code()))
}

fn passage_move(data: &DataDir, clock: &dyn Clock, a: &crate::PassageMove) -> Result<()> {
    data.require()?;
    let id = parse_uuid_arg("id", &a.id)?;
    let date = parse_date("date", &a.date)?;
    let hm = |what: &str, s: &str| {
        chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M")
            .map_err(|_| anyhow::anyhow!("{what} : « {s} » n'est pas une heure HH:MM"))
    };
    let window = match (&a.start, &a.end) {
        (Some(s), Some(e)) => Some((hm("start", s)?, hm("end", e)?)),
        _ => None,
    };
    let mut store = data.open_store()?;
    scheduling::move_passage(&mut store, clock.now_ms(), today(clock), id, date, window)?;
    print_line(format_args!("passage {id} moved to {date}"))
}

fn parse_uuid_arg(what: &str, s: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(s.trim()).map_err(|_| {
        anyhow::anyhow!("{what}: « {s} » n'est pas un identifiant (36 caractères, voir les listes)")
    })
}

fn round_list(data: &DataDir, a: crate::RoundList) -> Result<()> {
    data.require()?;
    let store = data.open_store()?;
    let rounds = scheduling::list_rounds(&store, a.unit.as_deref())?;
    match a.format {
        Format::Json => print_json(&json!({ "rounds": rounds })),
        Format::Table => print_table(
            &["id", "unit", "name", "from", "to", "every", "stops"],
            &rounds
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.unit.clone(),
                        r.name.clone(),
                        r.from.clone(),
                        r.to.clone().unwrap_or_default(),
                        format!("{} wk", r.every_weeks),
                        round_stops_cell(&r.stops),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
}

/// A round's stops in one table cell: `weekday start-end commune; …`.
fn round_stops_cell(stops: &[serde_json::Value]) -> String {
    stops
        .iter()
        .map(|s| {
            format!(
                "{} {}-{} {}",
                s["weekday"].as_str().unwrap_or(""),
                s["start"].as_str().unwrap_or(""),
                s["end"].as_str().unwrap_or(""),
                s["commune_name"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn unit_add(data: &DataDir, a: crate::UnitAdd) -> Result<()> {
    data.require()?;
    let reg = Registry::open(&data.registry())?;
    reg.add_unit(&Unit {
        id: a.id.clone(),
        name: a.name,
        territory: a.territory,
        kind: a.kind,
    })?;
    print_line(format_args!("{}", a.id))?;
    Ok(())
}

fn unit_list(data: &DataDir, format: Format) -> Result<()> {
    data.require()?;
    let units = Registry::open(&data.registry())?.units()?;
    match format {
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

fn device_list(data: &DataDir, clock: &dyn Clock, format: Format) -> Result<()> {
    data.require()?;
    let now = i64::try_from(clock.now_ms()).unwrap_or(i64::MAX);
    let fleet = Registry::open(&data.registry())?.fleet(now)?;
    match format {
        Format::Json => print_json(&json!({ "devices": fleet })),
        Format::Table => print_table(
            &[
                "device",
                "name",
                "unit",
                "status",
                "last seen",
                "waiting",
                "version",
                "refused",
                "fingerprint",
            ],
            &fleet
                .iter()
                .map(|r| {
                    let d = &r.device;
                    vec![
                        d.actor.to_string(),
                        d.name.clone(),
                        d.unit.clone(),
                        d.status.clone(),
                        match r.quiet_days {
                            None => "never".into(),
                            Some(days) => format!("{} ({days} d)", r.seen_at()),
                        },
                        r.waiting.map_or_else(|| "-".into(), |w| w.to_string()),
                        r.program.clone().unwrap_or_else(|| "-".into()),
                        r.refused.to_string(),
                        d.fingerprint
                            .chars()
                            .take(FINGERPRINT_SHOWN_CHARS)
                            .collect(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
}

fn device_revoke(data: &DataDir, clock: &dyn Clock, a: crate::DeviceRevoke) -> Result<()> {
    data.require()?;
    let now = i64::try_from(clock.now_ms()).unwrap_or(0);
    let d = Registry::open(&data.registry())?.revoke(&a.device, now)?;
    print_line(format_args!(
        "revoked device {} ({}) of unit {}",
        d.actor,
        escape(&d.name),
        d.unit
    ))?;
    Ok(())
}

fn open_scoped(data: &DataDir, unit: Option<&str>) -> Result<(SqliteStore, Option<Vec<Scope>>)> {
    data.require()?;
    let store = data.open_store()?;
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
    let config = admin::init_server(data, clock, a.listen, a.public_addr, a.console_listen)?;
    print_line(format_args!(
        "initialised a Tournée server in {} (listening on {} once `serve` runs)",
        data.root().display(),
        config.listen
    ))?;
    Ok(())
}

fn enroll(data: &DataDir, clock: &dyn Clock, a: crate::DeviceEnroll) -> Result<()> {
    if a.out.exists() {
        bail!(
            "out : {} existe déjà ; choisissez un autre --out (un bundle contient une clé privée, il n'est jamais écrasé)",
            a.out.display()
        );
    }
    let parent = match a.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "out : le dossier {} n'existe pas ; créez-le ou choisissez un autre --out (aucun appareil n'a été inscrit)",
            parent.display()
        );
    }
    let bundle = admin::enroll_device(data, clock, &a.unit, &a.name)?;
    if let Err(e) = write_private(&a.out, bundle.to_json().as_bytes()) {
        // The laptop can never get this key: leave no device behind that nobody holds.
        let _ = std::fs::remove_file(&a.out);
        Registry::open(&data.registry())?
            .withdraw_enrolment(bundle.device)
            .context("the bundle could not be written, and withdrawing the enrolment failed")?;
        return Err(anyhow::Error::new(e).context(format!(
            "out : le bundle n'a pas pu être écrit dans {} ; l'appareil « {} » n'a pas été inscrit",
            a.out.display(),
            a.name
        )));
    }
    print_line(format_args!(
        "enrolled device {} ({}) in unit {}; bundle written to {} — copy it to the laptop and run `tournee-agent init --bundle FILE`",
        bundle.device,
        escape(&a.name),
        bundle.unit,
        a.out.display()
    ))
}

fn serve_cmd(data: &DataDir, a: crate::ServeArgs) -> Result<()> {
    data.require()?;
    let mut config = data.load_config()?;
    if let Some(l) = a.listen {
        config.listen = l;
    }
    if let Some(n) = a.sessions_max {
        config.sessions_max = n;
    }
    if let Some(w) = a.horizon_weeks {
        anyhow::ensure!(
            (1..=HORIZON_WEEKS_MAX).contains(&w),
            "horizon-weeks: {w} is not allowed; allowed: 1 to {HORIZON_WEEKS_MAX}"
        );
        config.horizon_weeks = w;
    }
    if let Some(l) = a.log {
        config.log = l;
    }
    if let Some(c) = a.console_listen {
        config.console_listen = c;
    }
    init_logging(&config.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let server = serve::start(data, &config, Arc::new(SkewedClock::from_env())).await?;
        print_line(format_args!(
            "tournee-server listening on {}",
            server.addr()
        ))?;
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

fn today(clock: &dyn Clock) -> chrono::NaiveDate {
    tournee_core::time::paris_date(i64::try_from(clock.now_ms() / 1000).unwrap_or(0))
        .unwrap_or_default()
}

fn unit_of(data: &DataDir, id: &str) -> Result<Unit> {
    Registry::open(&data.registry())?
        .unit(id)?
        .with_context(|| format!("unit: no unit '{id}' (see `tournee-server unit list`)"))
}

fn round_add(data: &DataDir, clock: &dyn Clock, a: crate::RoundAdd) -> Result<()> {
    data.require()?;
    let config = data.load_config()?;
    let unit = unit_of(data, &a.unit)?;
    let spec = RoundSpec {
        name: a.name,
        from: parse_date("from", &a.from)?,
        to: a.to.as_deref().map(|t| parse_date("to", t)).transpose()?,
        every_weeks: a.every_weeks,
        stops: scheduling::parse_stops(&a.stops)?,
    };
    let days_off = scheduling::DaysOff::load(&Registry::open(&data.registry())?)?;
    let mut store = data.open_store()?;
    let window = scheduling::Window {
        today: today(clock),
        horizon_weeks: config.horizon_weeks,
        days_off: &days_off,
    };
    let (id, r) = scheduling::add_round(&mut store, clock.now_ms(), &window, &unit, &spec)?;
    print_line(format_args!("{id}"))?;
    eprintln!(
        "{} passage(s) planned over the next {} weeks",
        r.created, config.horizon_weeks
    );
    print_plan_notes(&spec, &unit.id, &window);
    Ok(())
}

/// One line on stderr per visit a day off keeps from being planned, then per window that
/// touches a daylight-saving change.
fn print_plan_notes(spec: &RoundSpec, unit: &str, w: &scheduling::Window<'_>) {
    for o in scheduling::occurrences(spec, unit, w.days_off, w.today, w.horizon_weeks) {
        if let Some(name) = o.day_off {
            eprintln!("note : pas de passage le {} ({name})", o.date);
        }
    }
    for note in scheduling::clock_change_notes(spec, w.today, w.horizon_weeks) {
        eprintln!("{note}");
    }
}

fn round_set(data: &DataDir, clock: &dyn Clock, a: crate::RoundSet) -> Result<()> {
    data.require()?;
    let config = data.load_config()?;
    let id = uuid::Uuid::parse_str(&a.id).map_err(|_| {
        anyhow::anyhow!(
            "id: '{}' is not a round id (see `tournee-server round list`)",
            a.id
        )
    })?;
    let mut store = data.open_store()?;
    let (mut spec, unit) = scheduling::round_spec(&store, id)?;
    if let Some(n) = a.name {
        spec.name = n;
    }
    if let Some(t) = a.to {
        spec.to = Some(parse_date("to", &t)?);
    }
    if let Some(n) = a.every_weeks {
        spec.every_weeks = n;
    }
    if !a.stops.is_empty() {
        spec.stops = scheduling::parse_stops(&a.stops)?;
    }
    let unit = unit_of(data, &unit)?;
    let days_off = scheduling::DaysOff::load(&Registry::open(&data.registry())?)?;
    let window = scheduling::Window {
        today: today(clock),
        horizon_weeks: config.horizon_weeks,
        days_off: &days_off,
    };
    let r = scheduling::edit_round(&mut store, clock.now_ms(), &window, &unit, id, &spec)?;
    print_line(format_args!("{id}"))?;
    print_plan_notes(&spec, &unit.id, &window);
    eprintln!(
        "passages: {} created, {} updated, {} removed, {} kept (past or already marked by the unit)",
        r.created, r.updated, r.removed, r.kept
    );
    Ok(())
}

fn passages(data: &DataDir, a: crate::PassagesArgs) -> Result<()> {
    data.require()?;
    let from = parse_date("from", &a.from)?;
    let to = parse_date("to", &a.to)?;
    if to < from {
        bail!("to: {to} is before --from {from}");
    }
    if let Some(u) = &a.unit {
        unit_of(data, u)?;
    }
    let store = data.open_store()?;
    let list = store.passages_between(a.unit.as_deref(), from, to)?;
    let mut views = Vec::new();
    for p in &list {
        let stop = match p.id_ref(Field::Stop) {
            Some(s) => store.record(s)?,
            None => None,
        };
        let commune = stop
            .as_ref()
            .and_then(|s| s.text(Field::Commune))
            .map(str::to_owned);
        views.push(json!({
            "id": p.id.to_string(),
            "unit": match &p.scope { Scope::Unit(u) | Scope::Territory(u) => u.clone() },
            "date": p.text(Field::Date),
            "stop": p.id_ref(Field::Stop).map(|s| s.to_string()),
            "stop_label": stop.as_ref().and_then(|s| s.text(Field::Label)),
            "commune": commune,
            "commune_name": commune.as_deref().and_then(|c| RefData::get().commune(c)).map(|c| c.name.clone()),
            "planned_start": p.int(Field::PlannedStart).map(show_rfc3339),
            "planned_end": p.int(Field::PlannedEnd).map(show_rfc3339),
            "status": p.text(Field::Status),
            "cause": p.text(Field::Cause),
            "moved_from": p.text(Field::MovedFrom),
            "actual_start": p.int(Field::ActualStart).map(show_rfc3339),
            "actual_end": p.int(Field::ActualEnd).map(show_rfc3339),
        }));
    }
    match a.format {
        Format::Json => print_json(
            &json!({ "from": from.to_string(), "to": to.to_string(), "passages": views }),
        ),
        Format::Table => {
            let hm = |v: &serde_json::Value| {
                v.as_str()
                    .and_then(|s| s.get(11..16))
                    .unwrap_or("")
                    .to_owned()
            };
            print_table(
                &[
                    "date", "unit", "stop", "commune", "planned", "status", "actual", "cause",
                ],
                &views
                    .iter()
                    .map(|v| {
                        vec![
                            v["date"].as_str().unwrap_or("").to_owned(),
                            v["unit"].as_str().unwrap_or("").to_owned(),
                            v["stop_label"].as_str().unwrap_or("").to_owned(),
                            v["commune_name"].as_str().unwrap_or("").to_owned(),
                            format!("{}-{}", hm(&v["planned_start"]), hm(&v["planned_end"])),
                            v["status"].as_str().unwrap_or("").to_owned(),
                            if v["actual_start"].is_null() && v["actual_end"].is_null() {
                                String::new()
                            } else {
                                format!("{}-{}", hm(&v["actual_start"]), hm(&v["actual_end"]))
                            },
                            v["cause"].as_str().unwrap_or("").to_owned(),
                        ]
                    })
                    .collect::<Vec<_>>(),
            )
        }
    }
}

fn appointment_add(
    data: &DataDir,
    clock: &dyn Clock,
    a: crate::ServerAppointmentAdd,
) -> Result<()> {
    data.require()?;
    let unit = unit_of(data, &a.unit)?;
    let now = clock.now_ms();
    let mut store = data.open_store()?;
    let new = a.fields.to_new(&store, now)?;
    if let Some(p) = new.passage {
        let passage = actions::require_kind(&store, p, Kind::Passage)?;
        if passage.scope != Scope::Unit(unit.id.clone()) {
            bail!(
                "passage: {p} is a passage of another unit, not of {}",
                unit.id
            );
        }
    }
    let (id, action) = actions::add_appointment(&store, now, &unit.id, &new)?;
    store.write_local(now, &action)?;
    print_line(format_args!("{id}"))?;
    Ok(())
}

fn coverage(data: &DataDir, a: crate::CoverageArgs) -> Result<()> {
    data.require()?;
    tournee_core::model::check_territory("territory", &a.territory)?;
    let from = parse_date("from", &a.from)?;
    let to = parse_date("to", &a.to)?;
    if to < from {
        bail!("to: {to} is before --from {from}");
    }
    let by = match a.by {
        CoverageBy::Commune => GroupBy::Commune,
        CoverageBy::Unit => GroupBy::Unit,
        CoverageBy::Partner => GroupBy::Partner,
        CoverageBy::Theme => GroupBy::Theme,
    };
    let store = data.open_store()?;
    let raw = store.coverage_data(&a.territory, from, to, by)?;
    let report = report::build(&a.territory, from, to, by, &raw);
    let mut out = std::io::stdout().lock();
    match a.format {
        ReportFormat::Table => report::write_table(&report, &mut out)?,
        ReportFormat::Csv => report::write_csv(&report, &mut out)?,
        ReportFormat::Json => report::write_json(&report, &mut out)?,
    }
    Ok(())
}
