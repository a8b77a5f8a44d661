//! `tournee-agent`: the command line a conseiller's laptop runs — record appointments, requests
//! and passage outcomes offline, review conflicts, export and digest the local store.
//!
//! Exit status: 0 on success, 1 on a user error (one line on stderr), 2 on a usage error.
//! Deliberately not here yet: sync and the daemon (they arrive with the QUIC transport).

mod commands;
mod reenrol;
mod rejected;
mod workflows;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use tournee_cli::output::Format;
pub use tournee_cli::output::{ExportFormat, FormatArg};
use tournee_core::limits::{SYNC_TIMEOUT_DEFAULT_S, SYNC_TIMEOUT_MAX_S};

/// Tournée agent: offline-first records of a France Services mobile unit.
#[derive(Debug, Parser)]
#[command(name = "tournee-agent", version, about, long_about = None)]
pub struct Cli {
    /// Data directory of this laptop's store (default: $TOURNEE_DATA, else the platform data dir).
    #[arg(long, global = true, env = "TOURNEE_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this laptop's store from an enrolment bundle (or, offline only, explicit ids).
    Init(InitArgs),
    /// Run the daemon: stay connected, sync whenever the server is reachable, back off otherwise.
    Run(RunArgs),
    /// One reconciliation with the server; exit 1 if it cannot be reached (nothing is lost).
    Sync(SyncArgs),
    /// Record, change and list appointments.
    #[command(subcommand)]
    Appointment(AppointmentCmd),
    /// Record requests (demandes) made at an appointment or a passage.
    #[command(subcommand)]
    Request(RequestCmd),
    /// The round's passages: list a day, record held / cancelled and actual times.
    #[command(subcommand)]
    Passage(PassageCmd),
    /// List fields with concurrent values (conflicts).
    Conflicts(FormatArg),
    /// Resolve a conflict: write a value that replaces every concurrent one.
    Resolve(ResolveArgs),
    /// Pending changes, last sync, clock offset, rejected changes, conflicts.
    Status(FormatArg),
    /// Canonical state of this device's scope, as JSON.
    Export(ExportArgs),
    /// One line: hex SHA-256 of the canonical export.
    Digest,
    /// Give this data directory a new identity (a new bundle), keeping its queued changes.
    Reenrol(reenrol::ReenrolArgs),
    /// Changes the server refused: list them, or undo them on this laptop.
    #[command(subcommand)]
    Rejected(rejected::RejectedCmd),
    /// Persons (usagers): search, record, history, change, merge duplicates.
    #[command(subcommand)]
    Person(workflows::PersonCmd),
    /// Walk-ins (accueil sans rendez-vous), with a person or anonymous.
    #[command(subcommand)]
    Visit(workflows::VisitCmd),
    /// Collective sessions (ateliers) at a passage.
    #[command(subcommand)]
    Session(workflows::SessionCmd),
    /// Open the web interface of `run` in the browser (a one-time link, valid 2 minutes).
    Ui(UiArgs),
}

/// `ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Print the link instead of opening the browser.
    #[arg(long)]
    pub print_url: bool,
}

/// `init`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("how").required(true).args(["bundle", "device_id"])))]
pub struct InitArgs {
    /// Enrolment bundle written by `tournee-server device enroll`.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Offline-only set-up: actor number of this device (no server configured).
    #[arg(long, value_name = "N", requires_all = ["unit", "territory"], conflicts_with = "bundle")]
    pub device_id: Option<u32>,
    /// Offline-only set-up: the unit.
    #[arg(long, value_name = "ID", conflicts_with = "bundle")]
    pub unit: Option<String>,
    /// Offline-only set-up: the unit's territory (département code).
    #[arg(long, value_name = "CODE", conflicts_with = "bundle")]
    pub territory: Option<String>,
}

/// `run` (flags override `agent.toml` in the data directory).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Log filter when RUST_LOG is not set (default from agent.toml, else info).
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Server address to use instead of the bundle's (repeatable).
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Vec<String>,
}

/// `sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Give up after this many seconds, 1 to 86400 (retrying a dropped link meanwhile).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = SYNC_TIMEOUT_DEFAULT_S,
        value_parser = clap::value_parser!(u64).range(1..=SYNC_TIMEOUT_MAX_S)
    )]
    pub timeout: u64,
}

// `--timeout`'s help names the bound in seconds.
const _: () = assert!(SYNC_TIMEOUT_MAX_S == 86_400);

/// `appointment …`.
#[derive(Debug, Subcommand)]
pub enum AppointmentCmd {
    /// Record a new appointment; prints its id.
    Add(AppointmentAdd),
    /// Change an appointment (status, time, duration, place, person, note).
    Set(AppointmentSet),
    /// Cancel an appointment (status revoked; it stays in the history).
    Cancel(workflows::IdArg),
    /// Appointments of a day, or of a week.
    List(workflows::AppointmentList),
    /// One appointment with every field, and the competing values of conflicting fields.
    Show(ShowArgs),
}

/// `appointment add`.
#[derive(Debug, Args)]
pub struct AppointmentAdd {
    #[command(flatten)]
    pub fields: tournee_cli::AppointmentArgs,
}

/// `appointment set`.
#[derive(Debug, Args)]
pub struct AppointmentSet {
    /// Appointment id.
    pub id: String,
    /// unknown, seen, excused, revoked or noshow (an outcome never goes back to unknown).
    #[arg(long)]
    pub status: Option<String>,
    /// New start: RFC 3339 or YYYY-MM-DDTHH:MM.
    #[arg(long)]
    pub start: Option<String>,
    /// New duration in minutes.
    #[arg(long, value_name = "MIN", allow_hyphen_values = true)]
    pub duration: Option<String>,
    /// New note.
    #[arg(long)]
    pub note: Option<String>,
    /// New place: arret, domicile or telephone.
    #[arg(long)]
    pub location: Option<String>,
    /// New commune (INSEE code).
    #[arg(long, value_name = "INSEE")]
    pub commune: Option<String>,
    /// Another person (id or unique prefix).
    #[arg(long, value_name = "ID")]
    pub person: Option<String>,
}

/// A day listing.
#[derive(Debug, Args)]
pub struct DayList {
    /// Day YYYY-MM-DD (default: today, Europe/Paris).
    #[arg(long)]
    pub date: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `… show ID`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Record id.
    pub id: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `request …`.
#[derive(Debug, Subcommand)]
pub enum RequestCmd {
    /// Record a request; prints its id.
    Add(RequestAdd),
    /// Requests: pending with a partner, of a person, of a day.
    List(workflows::RequestList),
    /// Change a request's outcome, partner, theme, level or minutes.
    Set(workflows::RequestSet),
    /// Delete a request (a tombstone, replicated).
    Delete(workflows::IdArg),
}

/// `request add`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("link").required(true).args(["appointment", "passage", "visit"])))]
pub struct RequestAdd {
    /// The appointment the request was made at.
    #[arg(long, value_name = "ID")]
    pub appointment: Option<String>,
    /// The passage (walk-in at a stop).
    #[arg(long, value_name = "ID")]
    pub passage: Option<String>,
    /// The walk-in (`visit add`) it was made at.
    #[arg(long, value_name = "ID")]
    pub visit: Option<String>,
    /// Partner code (caf, assurance_maladie, france_travail, dgfip, …).
    #[arg(long, value_name = "CODE")]
    pub partner: String,
    /// Theme code (logement, social_sante, papiers_citoyennete, …).
    #[arg(long, value_name = "CODE")]
    pub theme: String,
    /// information, accompagnement or orientation.
    #[arg(long)]
    pub level: String,
    /// resolue_sur_place, orientee_operateur, en_attente_operateur or non_resolue.
    #[arg(long)]
    pub outcome: String,
    /// Minutes spent.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub minutes: Option<String>,
}

/// `passage …`.
#[derive(Debug, Subcommand)]
pub enum PassageCmd {
    /// The day's round, in order, with stops and communes.
    List(DayList),
    /// Record a passage as held (effectue) or cancelled (annule, with a cause), and actual times.
    Set(PassageSet),
}

/// `passage set`.
#[derive(Debug, Args)]
pub struct PassageSet {
    /// Passage id.
    pub id: String,
    /// effectue or annule.
    #[arg(long)]
    pub status: Option<String>,
    /// Why it was cancelled: panne, meteo, absence_conseiller or autre.
    #[arg(long)]
    pub cause: Option<String>,
    /// Actual start: RFC 3339 or YYYY-MM-DDTHH:MM.
    #[arg(long, value_name = "TIME")]
    pub actual_start: Option<String>,
    /// Actual end: RFC 3339 or YYYY-MM-DDTHH:MM.
    #[arg(long, value_name = "TIME")]
    pub actual_end: Option<String>,
}

/// `resolve`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// Record id.
    pub record_id: String,
    /// Field name (as listed by `conflicts`).
    pub field: String,
    /// The value to keep (times as RFC 3339 or YYYY-MM-DDTHH:MM).
    #[arg(long)]
    pub value: String,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
}

fn main() -> ExitCode {
    tournee_cli::output::exit_code("tournee-agent", commands::run(Cli::parse()))
}
