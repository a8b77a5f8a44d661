//! The agent's commands: each opens the store, does one thing, prints the result.
//!
//! Validation and record building live in `tournee_core::actions`; this module only parses
//! what a person typed and shows results. No network here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use serde_json::json;
use tournee_agent::config::AgentConfig;
use tournee_agent::setup::{identity_of, init_store, STORE_FILE};
use tournee_cli::{init_logging, wait_for_signal};
use tournee_core::actions::{
    self, add_appointment, add_request, people, require_kind, set_fields, NewRequest, PassageUpdate,
};
use tournee_core::clock::{Clock, SkewedClock};
use tournee_core::export;
use tournee_core::limits::CLOCK_OFFSET_WARN_MS;
use tournee_core::model::{
    check_commune, check_duration, check_text_chars, AppointmentStatus, CancelCause, Field, Kind,
    Level, Location, ModelError, Outcome, PassageStatus, Value,
};
use tournee_core::record::Record;
use tournee_core::refdata::RefData;
use tournee_core::store::{Identity, Store};
use tournee_core::time::{paris_date, parse_date, parse_time, show_local, show_rfc3339};
use tournee_net::bundle::Bundle;
use tournee_store::SqliteStore;
use uuid::Uuid;

use crate::{AppointmentCmd, Cli, Command, PassageCmd, RequestCmd};
use tournee_cli::output::{escape, print_json, print_line, print_pairs, print_table, Format};

fn data_dir(cli_data: Option<PathBuf>) -> Result<PathBuf> {
    match cli_data {
        Some(d) => Ok(d),
        None => dirs::data_dir()
            .map(|d| d.join("tournee-agent"))
            .context("no data directory: pass --data DIR or set TOURNEE_DATA"),
    }
}

pub(crate) fn open_existing(dir: &Path) -> Result<SqliteStore> {
    let file = dir.join(STORE_FILE);
    if !file.exists() {
        bail!(
            "no Tournée agent store in {}: run `tournee-agent init` first (or pass the right --data)",
            dir.display()
        );
    }
    let store = SqliteStore::open(&file)?;
    if store.identity()?.is_none() {
        bail!(
            "{} is not initialised: run `tournee-agent init`",
            dir.display()
        );
    }
    Ok(store)
}

pub(crate) fn identity(store: &SqliteStore) -> Result<Identity> {
    store
        .identity()?
        .context("store is not initialised: run `tournee-agent init`")
}

/// A record id typed in full or by a unique prefix of at least `ID_PREFIX_MIN` characters.
pub(crate) fn parse_id(store: &dyn Store, what: &'static str, s: &str) -> Result<Uuid> {
    Ok(actions::find_id(store, what, s)?)
}

pub(crate) fn parse_int(what: &'static str, s: &str) -> Result<i64> {
    s.trim().parse::<i64>().map_err(|_| {
        ModelError::BadFormat {
            field: what,
            value: s.to_owned(),
            expected: "whole number",
        }
        .into()
    })
}

fn today(now_ms: u64) -> NaiveDate {
    paris_date(i64::try_from(now_ms / 1000).unwrap_or(0)).unwrap_or_default()
}

pub(crate) fn day_arg(date: Option<&str>, now_ms: u64) -> Result<NaiveDate> {
    match date {
        Some(d) => Ok(parse_date("date", d)?),
        None => Ok(today(now_ms)),
    }
}

/// Run one command.
pub fn run(cli: Cli) -> Result<()> {
    let clock = SkewedClock::from_env();
    let dir = data_dir(cli.data)?;
    match cli.command {
        Command::Init(a) => init(&dir, a),
        Command::Sync(a) => sync_cmd(&dir, &clock, a.timeout),
        Command::Run(a) => run_cmd(&dir, clock, a),
        Command::Appointment(cmd) => appointment(&dir, &clock, cmd),
        Command::Request(RequestCmd::Add(a)) => request_add(&dir, &clock, a),
        Command::Request(RequestCmd::List(a)) => crate::workflows::request_list(&dir, a),
        Command::Request(RequestCmd::Set(a)) => crate::workflows::request_set(&dir, &clock, a),
        Command::Request(RequestCmd::Delete(a)) => {
            crate::workflows::request_delete(&dir, &clock, a)
        }
        Command::Person(cmd) => crate::workflows::person(&dir, &clock, cmd),
        Command::Visit(cmd) => crate::workflows::visit(&dir, &clock, cmd),
        Command::Session(cmd) => crate::workflows::session(&dir, &clock, cmd),
        Command::Passage(cmd) => passage(&dir, &clock, cmd),
        Command::Ui(a) => ui_cmd(&dir, &clock, &a),
        Command::Conflicts(f) => conflicts(&dir, f.format),
        Command::Resolve(a) => resolve(&dir, &clock, a),
        Command::Status(f) => status(&dir, f.format),
        Command::Reenrol(a) => crate::reenrol::run(&dir, &clock, &a),
        Command::Rejected(cmd) => crate::rejected::run(&dir, cmd),
        Command::Export(_) => {
            let store = open_existing(&dir)?;
            let id = identity(&store)?;
            let mut out = std::io::stdout().lock();
            export::write_export(&store, Some(&id.scopes()), &mut out)?;
            Ok(())
        }
        Command::Digest => {
            let store = open_existing(&dir)?;
            let id = identity(&store)?;
            print_line(format_args!(
                "{}",
                export::digest(&store, Some(&id.scopes()))?
            ))?;
            Ok(())
        }
    }
}

fn init(dir: &Path, a: crate::InitArgs) -> Result<()> {
    let (identity, bundle) = match (&a.bundle, a.device_id, &a.unit, &a.territory) {
        (Some(path), _, _, _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the bundle {}", path.display()))?;
            (identity_of(&Bundle::parse(&text)?), Some(text))
        }
        (None, Some(device), Some(unit), Some(territory)) => (
            Identity {
                device,
                unit: unit.clone(),
                territory: territory.clone(),
            },
            None,
        ),
        _ => bail!("give --bundle FILE, or --device-id, --unit and --territory together"),
    };
    init_store(dir, &identity, bundle.as_deref())?;
    print_line(format_args!(
        "initialised {} for device {} of unit {} (territory {}){}",
        dir.display(),
        identity.device,
        identity.unit,
        identity.territory,
        if bundle.is_some() {
            ""
        } else {
            "; offline only: no server configured"
        }
    ))?;
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn sync_cmd(dir: &Path, clock: &dyn Clock, timeout: u64) -> Result<()> {
    let mut store = open_existing(dir)?;
    let config = AgentConfig::load(dir)?;
    let remote = tournee_agent::sync::Remote::load(dir)?.with_addrs(&config.server_addr);
    init_logging("warn");
    let result = runtime()?.block_on(tournee_agent::sync::sync_once(
        &mut store, &remote, clock, timeout,
    ));
    match result {
        Ok(r) => {
            let s = store.stats()?;
            print_line(format_args!(
                "in sync: sent {} change(s), received {}, {} refused (see `status`); {} conflict(s)",
                r.stats.changes_out, r.stats.changes_in, r.stats.rejected, s.conflicted_records
            ))?;
            Ok(())
        }
        Err(e) => {
            let pending = store.stats().map(|s| s.pending).unwrap_or(0);
            bail!("{}", sync_failure_message(&e, pending))
        }
    }
}

/// The one line `sync` prints when it fails. A full disk is said apart: the failure came while
/// recording the server's answer, so what was sent reached the server; the laptop catches up
/// at its next sync once space is freed.
fn sync_failure_message(e: &tournee_agent::sync::SyncError, pending: u64) -> String {
    use tournee_core::store::StoreError;
    use tournee_proto::ProtocolError;
    if let tournee_agent::sync::SyncError::Protocol(ProtocolError::Store(StoreError::DiskFull {
        path,
    })) = e
    {
        return format!(
            "le disque qui contient {} est plein : le serveur a reçu les changements envoyés, mais cet ordinateur n'a pas pu enregistrer sa réponse ; libérez de la place et relancez `tournee-agent sync` : il se mettra à jour, rien n'est perdu ({pending} changement(s) attendent ici la confirmation du serveur)",
            escape(path)
        );
    }
    let detail = if tournee_agent::words::sync_failure_is_french(e) {
        String::new()
    } else {
        format!(" (détail technique : {})", escape(&e.to_string()))
    };
    format!(
        "{} ; rien n'est perdu : {pending} changement(s) restent en attente sur cet ordinateur{detail}",
        tournee_agent::words::sync_failure_fr(e)
    )
}

fn run_cmd(dir: &Path, clock: SkewedClock, a: crate::RunArgs) -> Result<()> {
    let mut store = open_existing(dir)?;
    let config = AgentConfig::load(dir)?;
    let ui_addr = config.ui_addr()?;
    for addr in &a.server {
        check_text_chars("server", addr)?;
    }
    let servers = if a.server.is_empty() {
        &config.server_addr
    } else {
        &a.server
    };
    let remote = tournee_agent::sync::Remote::load(dir)?.with_addrs(servers);
    init_logging(a.log.as_deref().unwrap_or(&config.log));
    let backoff = tournee_agent::sync::Backoff::with_bounds(
        clock.now_ms(),
        config.backoff_min_ms,
        config.backoff_max_ms,
    );
    runtime()?.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = stop_tx.send(true);
        });
        // The interface is a convenience beside the sync loop: an address already in use
        // (another agent on this computer) is said once and sync goes on without it.
        let listener = match tokio::net::TcpListener::bind(ui_addr).await {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!(%ui_addr, error = %e, "the web interface cannot listen (change ui_listen in agent.toml); sync goes on without it");
                None
            }
        };
        tournee_agent::daemon::run(dir, &mut store, &remote, Arc::new(clock), backoff, listener, stop_rx)
            .await
    })
}

/// `ui`: a fresh one-time link to the running daemon's interface, printed or opened.
fn ui_cmd(dir: &Path, clock: &dyn Clock, a: &crate::UiArgs) -> Result<()> {
    open_existing(dir)?;
    let addr = AgentConfig::load(dir)?.ui_addr()?;
    // The configured address itself only when it names one other than loopback or "any".
    let host = match addr.ip() {
        ip if ip.is_loopback() || ip.is_unspecified() => format!("127.0.0.1:{}", addr.port()),
        _ => addr.to_string(),
    };
    let token = tournee_agent::ui::auth::issue_token(dir, clock.now_ms())?;
    let url = format!("http://{host}/connexion?jeton={token}");
    if a.print_url {
        return print_line(url);
    }
    let opened = std::process::Command::new("xdg-open")
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match opened {
        Ok(s) if s.success() => {
            print_line("interface ouverte dans le navigateur (lien valable 2 minutes)")
        }
        _ => print_line(format_args!(
            "ouvrez ce lien dans le navigateur (valable 2 minutes) : {url}"
        )),
    }
}

fn appointment(dir: &Path, clock: &dyn Clock, cmd: AppointmentCmd) -> Result<()> {
    match cmd {
        AppointmentCmd::Add(a) => {
            let now = clock.now_ms();
            let mut store = open_existing(dir)?;
            let new = a.fields.to_new(&store, now)?;
            let unit = identity(&store)?.unit;
            let (id, action) = add_appointment(&store, now, &unit, &new)?;
            store.write_local(now, &action)?;
            print_line(format_args!("{id}"))?;
            Ok(())
        }
        AppointmentCmd::Set(a) => {
            let now = clock.now_ms();
            let mut store = open_existing(dir)?;
            let id = parse_id(&store, "id", &a.id)?;
            let mut sets = Vec::new();
            if let Some(s) = &a.status {
                sets.push((
                    Field::Status,
                    Value::Text(AppointmentStatus::parse(s)?.code().into()),
                ));
            }
            if let Some(s) = &a.start {
                sets.push((Field::Start, Value::Int(parse_time("start", s)?)));
            }
            if let Some(d) = &a.duration {
                sets.push((Field::Duration, Value::Int(parse_int("duration", d)?)));
            }
            if let Some(n) = &a.note {
                sets.push((Field::Note, Value::Text(n.clone())));
            }
            if let Some(l) = &a.location {
                sets.push((
                    Field::Location,
                    Value::Text(Location::parse(l)?.code().into()),
                ));
            }
            if let Some(c) = &a.commune {
                check_commune("commune", c)?;
                sets.push((Field::Commune, Value::Text(c.clone())));
            }
            if let Some(p) = &a.person {
                let p = parse_id(&store, "person", p)?;
                sets.push((
                    Field::Citizen,
                    Value::Id(people::require_person(&store, p)?),
                ));
            }
            if sets.is_empty() {
                return Err(actions::nothing_to_change(
                    "--status, --start, --duration, --note, --location, --commune or --person",
                )
                .into());
            }
            let record = require_kind(&store, id, Kind::Appointment)?;
            store.write_local(now, &set_fields(&record, sets))?;
            print_line(format_args!("{id}"))?;
            Ok(())
        }
        AppointmentCmd::Cancel(a) => crate::workflows::appointment_cancel(dir, clock, a),
        AppointmentCmd::List(l) if l.week.is_some() => {
            let week = l.week.as_deref().unwrap_or_default();
            crate::workflows::appointment_week(dir, clock, week, l.format)
        }
        AppointmentCmd::List(l) => {
            let store = open_existing(dir)?;
            let day = day_arg(l.date.as_deref(), clock.now_ms())?;
            let mut recs = store.records_on(Kind::Appointment, day)?;
            recs.sort_by_key(|r| (r.int(Field::Start), r.id));
            let refused = crate::rejected::refused_by_record(&store)?;
            let mut views: Vec<serde_json::Value> = recs
                .iter()
                .map(|r| appointment_json(&store, r))
                .collect::<Result<_>>()?;
            for (r, v) in recs.iter().zip(views.iter_mut()) {
                v["refused"] = crate::rejected::refused_json(refused.get(&r.id));
            }
            match l.format {
                Format::Json => {
                    print_json(&json!({ "date": day.to_string(), "appointments": views }))
                }
                Format::Table => {
                    let rows = recs
                        .iter()
                        .zip(&views)
                        .map(|(r, v)| {
                            vec![
                                r.int(Field::Start).map(show_local).unwrap_or_default(),
                                format!("{} min", r.int(Field::Duration).unwrap_or(0)),
                                r.text(Field::Location).unwrap_or("").to_owned(),
                                commune_label(r.text(Field::Commune)),
                                v["citizen_name"].as_str().unwrap_or("").to_owned(),
                                r.text(Field::Status).unwrap_or("").to_owned(),
                                conflict_mark(r),
                                crate::rejected::refused_mark(refused.get(&r.id)),
                                r.id.to_string(),
                            ]
                        })
                        .collect::<Vec<_>>();
                    print_table(
                        &[
                            "start", "duration", "location", "commune", "citizen", "status",
                            "conflict", "refused", "id",
                        ],
                        &rows,
                    )
                }
            }
        }
        AppointmentCmd::Show(s) => {
            let store = open_existing(dir)?;
            let id = parse_id(&store, "id", &s.id)?;
            let record = require_kind(&store, id, Kind::Appointment)?;
            let names = tournee_agent::devices::DeviceNames::of(&store, dir)?;
            show_record(&store, &record, &names, s.format)
        }
    }
}

fn conflict_mark(r: &Record) -> String {
    r.conflicts()
        .iter()
        .map(|f| f.code())
        .collect::<Vec<_>>()
        .join(",")
}

fn commune_label(code: Option<&str>) -> String {
    match code {
        Some(c) => match RefData::get().commune(c) {
            Some(com) => format!("{} ({c})", com.name),
            None => c.to_owned(),
        },
        None => String::new(),
    }
}

fn appointment_json(store: &SqliteStore, r: &Record) -> Result<serde_json::Value> {
    let citizen = r.id_ref(Field::Citizen);
    let citizen_name = match citizen {
        Some(c) => store
            .record(c)?
            .and_then(|c| c.text(Field::Name).map(str::to_owned)),
        None => None,
    };
    Ok(json!({
        "id": r.id.to_string(),
        "start": r.int(Field::Start).map(show_rfc3339),
        "duration_min": r.int(Field::Duration),
        "location": r.text(Field::Location),
        "commune": r.text(Field::Commune),
        "commune_name": r.text(Field::Commune).and_then(|c| RefData::get().commune(c)).map(|c| c.name.clone()),
        "citizen": citizen.map(|c| c.to_string()),
        "citizen_name": citizen_name,
        "passage": r.id_ref(Field::Passage).map(|p| p.to_string()),
        "status": r.text(Field::Status),
        "note": r.text(Field::Note),
        "conflicts": r.conflicts().iter().map(|f| f.code()).collect::<Vec<_>>(),
    }))
}

fn show_value(field: Field, v: &Value) -> String {
    match (field, v) {
        (f, Value::Int(t)) if f.is_time() => show_local(*t),
        (Field::Commune, Value::Text(c)) => commune_label(Some(c)),
        (_, Value::Null) => "(none)".into(),
        (_, Value::Bool(b)) => b.to_string(),
        (_, Value::Int(i)) => i.to_string(),
        (_, Value::Text(s)) => s.clone(),
        (_, Value::Id(u)) => u.to_string(),
    }
}

fn show_record(
    store: &SqliteStore,
    record: &Record,
    names: &tournee_agent::devices::DeviceNames,
    format: Format,
) -> Result<()> {
    let refused = crate::rejected::refused_by_record(store)?.remove(&record.id);
    let refused_of = |f: &Field| -> Vec<(u64, String)> {
        refused
            .iter()
            .flatten()
            .filter(|m| m.field == *f)
            .map(|m| (m.seq, m.reason.clone()))
            .collect()
    };
    match format {
        Format::Json => {
            let mut fields = serde_json::Map::new();
            for f in record.kind.fields() {
                let shown = record.shown_siblings(*f);
                if shown.is_empty() {
                    continue;
                }
                let siblings: Vec<serde_json::Value> = shown
                    .iter()
                    .map(|s| {
                        json!({
                            "value": s.value.to_json(),
                            "device": s.dot.actor,
                            "device_name": names.label(s.dot.actor),
                            "hlc": s.hlc.0,
                        })
                    })
                    .collect();
                fields.insert(
                    f.code().to_owned(),
                    json!({
                        "value": record.value(*f).map(Value::to_json),
                        "conflict": record.conflicts().contains(f),
                        "siblings": siblings,
                        "refused": refused_of(f).iter().map(|(seq, reason)| json!({
                            "seq": seq, "reason": reason, "reason_fr": tournee_agent::words::reason_fr(reason),
                        })).collect::<Vec<_>>(),
                    }),
                );
            }
            print_json(&json!({
                "id": record.id.to_string(),
                "kind": record.kind.code(),
                "scope": record.scope.key(),
                "fields": fields,
            }))
        }
        Format::Table => {
            let conflicts = record.conflicts();
            let mut rows = vec![
                vec!["id".to_owned(), record.id.to_string()],
                vec!["kind".to_owned(), record.kind.code().to_owned()],
            ];
            for f in record.kind.fields() {
                let Some(v) = record.value(*f) else { continue };
                rows.push(vec![f.code().to_owned(), show_value(*f, v)]);
                for (seq, reason) in refused_of(f) {
                    rows.push(vec![
                        String::new(),
                        format!(
                            "  REFUSÉ (#{seq}) : {}",
                            tournee_agent::words::reason_fr(&reason)
                        ),
                    ]);
                }
                if conflicts.contains(f) {
                    for s in record.shown_siblings(*f) {
                        rows.push(vec![
                            String::new(),
                            format!(
                                "  conflict: {} ({})",
                                show_value(*f, &s.value),
                                names.label(s.dot.actor)
                            ),
                        ]);
                    }
                }
            }
            print_table(&["field", "value"], &rows)
        }
    }
}

fn request_add(dir: &Path, clock: &dyn Clock, a: crate::RequestAdd) -> Result<()> {
    let now = clock.now_ms();
    let mut store = open_existing(dir)?;
    let id_of = |what, typed: &Option<String>| -> Result<Option<Uuid>> {
        typed
            .as_deref()
            .map(|s| parse_id(&store, what, s))
            .transpose()
    };
    let req = NewRequest {
        appointment: id_of("appointment", &a.appointment)?,
        passage: id_of("passage", &a.passage)?,
        visit: id_of("visit", &a.visit)?,
        partner: a.partner,
        theme: a.theme,
        level: Level::parse(&a.level)?,
        outcome: Outcome::parse(&a.outcome)?,
        minutes: a
            .minutes
            .as_deref()
            .map(|m| {
                let n = parse_int("--minutes", m)?;
                check_duration("--minutes", n)?;
                Ok::<_, anyhow::Error>(n)
            })
            .transpose()?,
    };
    let (id, action) = add_request(&store, now, &req)?;
    store.write_local(now, &action)?;
    print_line(format_args!("{id}"))?;
    Ok(())
}

fn passage(dir: &Path, clock: &dyn Clock, cmd: PassageCmd) -> Result<()> {
    match cmd {
        PassageCmd::List(l) => {
            let store = open_existing(dir)?;
            let day = day_arg(l.date.as_deref(), clock.now_ms())?;
            let mut recs = store.records_on(Kind::Passage, day)?;
            recs.sort_by_key(|r| (r.int(Field::PlannedStart), r.id));
            let mut views = Vec::new();
            let mut rows = Vec::new();
            for r in &recs {
                let stop = match r.id_ref(Field::Stop) {
                    Some(s) => store.record(s)?,
                    None => None,
                };
                let label = stop
                    .as_ref()
                    .and_then(|s| s.text(Field::Label))
                    .unwrap_or("")
                    .to_owned();
                let commune = stop
                    .as_ref()
                    .and_then(|s| s.text(Field::Commune))
                    .map(str::to_owned);
                let t = |f| r.int(f).map(show_local);
                views.push(json!({
                    "id": r.id.to_string(),
                    "date": r.text(Field::Date),
                    "planned_start": r.int(Field::PlannedStart).map(show_rfc3339),
                    "planned_end": r.int(Field::PlannedEnd).map(show_rfc3339),
                    "stop": r.id_ref(Field::Stop).map(|s| s.to_string()),
                    "stop_label": label,
                    "commune": commune,
                    "commune_name": commune.as_deref().and_then(|c| RefData::get().commune(c)).map(|c| c.name.clone()),
                    "status": r.text(Field::Status),
                    "cause": r.text(Field::Cause),
                    "partners": tournee_core::views::passage_partners(r),
                    "actual_start": r.int(Field::ActualStart).map(show_rfc3339),
                    "actual_end": r.int(Field::ActualEnd).map(show_rfc3339),
                    "conflicts": r.conflicts().iter().map(|f| f.code()).collect::<Vec<_>>(),
                }));
                let hm = |v: Option<String>| {
                    v.map(|s| s.get(11..).unwrap_or("").to_owned())
                        .unwrap_or_default()
                };
                rows.push(vec![
                    format!(
                        "{}-{}",
                        hm(t(Field::PlannedStart)),
                        hm(t(Field::PlannedEnd))
                    ),
                    label,
                    commune_label(commune.as_deref()),
                    r.text(Field::Status).unwrap_or("").to_owned(),
                    r.text(Field::Cause).unwrap_or("").to_owned(),
                    match (t(Field::ActualStart), t(Field::ActualEnd)) {
                        (None, None) => String::new(),
                        (s, e) => format!("{}-{}", hm(s), hm(e)),
                    },
                    conflict_mark(r),
                    r.id.to_string(),
                ]);
            }
            match l.format {
                Format::Json => print_json(&json!({ "date": day.to_string(), "passages": views })),
                Format::Table => print_table(
                    &[
                        "planned", "stop", "commune", "status", "cause", "actual", "conflict", "id",
                    ],
                    &rows,
                ),
            }
        }
        PassageCmd::Set(a) => {
            let now = clock.now_ms();
            let mut store = open_existing(dir)?;
            let id = parse_id(&store, "id", &a.id)?;
            let update = PassageUpdate {
                status: a.status.as_deref().map(PassageStatus::parse).transpose()?,
                cause: a.cause.as_deref().map(CancelCause::parse).transpose()?,
                actual_start: a
                    .actual_start
                    .as_deref()
                    .map(|t| parse_time("actual-start", t))
                    .transpose()?,
                actual_end: a
                    .actual_end
                    .as_deref()
                    .map(|t| parse_time("actual-end", t))
                    .transpose()?,
            };
            let record = require_kind(&store, id, Kind::Passage)?;
            let action = actions::set_passage(&record, &update)?;
            store.write_local(now, &action)?;
            print_line(format_args!("{id}"))?;
            Ok(())
        }
    }
}

fn conflicts(dir: &Path, format: Format) -> Result<()> {
    let store = open_existing(dir)?;
    let names = tournee_agent::devices::DeviceNames::of(&store, dir)?;
    tournee_cli::print_conflicts(&store, format, &|actor| names.label(actor))
}

fn resolve(dir: &Path, clock: &dyn Clock, a: crate::ResolveArgs) -> Result<()> {
    let now = clock.now_ms();
    let mut store = open_existing(dir)?;
    let id = parse_id(&store, "record", &a.record_id)?;
    let record = store
        .record(id)?
        .with_context(|| format!("no record with id {id}"))?;
    let action = actions::resolve_conflict(&record, &a.field, &a.value)?;
    store.write_local(now, &action)?;
    print_line(format_args!("{id}"))?;
    Ok(())
}

fn status(dir: &Path, format: Format) -> Result<()> {
    let store = open_existing(dir)?;
    let id = identity(&store)?;
    let s = store.stats()?;
    let last = store.last_sync()?;
    let rejected = store.rejected()?;
    let server = tournee_agent::sync::Remote::load(dir)
        .ok()
        .map(|r| r.addrs().join(", "));
    let rejected_json: Vec<serde_json::Value> = rejected
        .iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "reason": r.reason,
                "record": r.change.record.to_string(),
                "kind": r.change.kind.code(),
                "field": r.change.field.code(),
                "value": r.change.write.value.to_json(),
                "reason_fr": tournee_agent::words::reason_fr(&r.reason),
            })
        })
        .collect();
    let doc = json!({
        "device": id.device,
        "unit": id.unit,
        "territory": id.territory,
        "server": server,
        "records": s.records,
        "pending_changes": s.pending,
        "last_seq": s.last_seq,
        "acked_seq": s.acked_seq,
        "server_cursor": s.cursor,
        "last_sync": last.map(|(at, _)| show_rfc3339(i64::try_from(at / 1000).unwrap_or(0))),
        "clock_offset_ms": last.map(|(_, off)| off),
        "rejected_changes": s.rejected,
        "rejected": rejected_json,
        "conflicted_records": s.conflicted_records,
    });
    match format {
        Format::Json => print_json(&doc),
        Format::Table => {
            let offset = match last {
                None => "unknown (no sync yet)".to_owned(),
                Some((_, off)) if off.abs() > CLOCK_OFFSET_WARN_MS => format!(
                    "{} s — WARNING: this laptop's clock is {} the server's; fix the date and time",
                    off / 1000,
                    if off > 0 { "behind" } else { "ahead of" }
                ),
                Some((_, off)) => format!("{} ms", off),
            };
            let mut rows = vec![
                ("device", id.device.to_string()),
                ("unit", format!("{} (territory {})", id.unit, id.territory)),
                (
                    "server",
                    server.unwrap_or_else(|| "none (offline only)".into()),
                ),
                ("records", s.records.to_string()),
                ("pending changes", s.pending.to_string()),
                (
                    "last sync",
                    last.map_or("never".into(), |(at, _)| {
                        show_local(i64::try_from(at / 1000).unwrap_or(0))
                    }),
                ),
                ("clock offset", offset),
                ("rejected changes", s.rejected.to_string()),
                ("conflicts", format!("{} record(s)", s.conflicted_records)),
            ];
            for r in &rejected {
                rows.push((
                    "  rejected",
                    format!(
                        "#{} {}.{} of {}: {} — {}",
                        r.seq,
                        r.change.kind,
                        r.change.field,
                        r.change.record,
                        r.reason,
                        tournee_agent::words::reason_fr(&r.reason)
                    ),
                ));
            }
            print_pairs(&rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tournee_agent::sync::SyncError;
    use tournee_core::store::StoreError;
    use tournee_proto::ProtocolError;

    #[test]
    fn a_full_disk_during_sync_says_the_server_has_the_changes_and_the_laptop_will_catch_up() {
        let e = SyncError::Protocol(ProtocolError::Store(StoreError::DiskFull {
            path: "/data/agent.sqlite".into(),
        }));
        let text = sync_failure_message(&e, 3);
        assert!(text.contains("le serveur a reçu les changements"), "{text}");
        assert!(text.contains("libérez de la place"), "{text}");
        assert!(!text.contains("nothing was recorded"), "{text}");
        assert!(
            text.contains("/data/agent.sqlite") && text.contains("3 changement"),
            "{text}"
        );
        let clock = sync_failure_message(&SyncError::ClockWrong("l'horloge…".into()), 4);
        assert!(
            clock.ends_with("4 changement(s) restent en attente sur cet ordinateur"),
            "{clock}"
        );
        let other = sync_failure_message(&SyncError::EndedEarly, 2);
        assert!(
            other.starts_with("le serveur est injoignable")
                && other.contains("rien n'est perdu : 2 changement(s) restent en attente")
                && other.ends_with("(détail technique : the connection dropped during sync: the server ended the session early)"),
            "{other}"
        );
    }
}
