//! `tournee-server`: the central server's command line — initialise a server, run the sync
//! daemon, manage units and devices, export and digest the canonical state.
//!
//! Exit status: 0 on success, 1 on a user error (one line on stderr), 2 on a usage error.

mod commands;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tournee_cli::output::Format;
pub use tournee_cli::output::{ExportFormat, FormatArg};
use tournee_server::config::DEFAULT_LISTEN;

/// Tournée server: device registry, sync endpoint, scheduling and coverage.
#[derive(Debug, Parser)]
#[command(name = "tournee-server", version, about, long_about = None)]
pub struct Cli {
    /// Data directory of the server (default: $TOURNEE_DATA, else the platform data dir).
    #[arg(long, global = true, env = "TOURNEE_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a server: CA, server certificate, configuration, stores.
    Init(InitArgs),
    /// Run the sync daemon in the foreground (SIGTERM or Ctrl-C stops it cleanly).
    Serve(ServeArgs),
    /// Mobile units.
    #[command(subcommand)]
    Unit(UnitCmd),
    /// Devices (laptops): enrol, list, revoke.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Canonical state (all, or one unit's scope) as JSON.
    Export(ExportArgs),
    /// One line: hex SHA-256 of the canonical export.
    Digest(UnitScope),
    /// Fields with concurrent values, across all units.
    Conflicts(FormatArg),
    /// Stops (arrêts) of a territory.
    #[command(subcommand)]
    Stop(StopCmd),
    /// Rounds (tournées): a unit's recurring plan of stops; passages follow from them.
    #[command(subcommand)]
    Round(RoundCmd),
    /// Passages of a period: planned and actual side by side.
    Passages(PassagesArgs),
    /// One passage: cancel or move it.
    #[command(subcommand)]
    Passage(ServerPassageCmd),
    /// Public holidays and closures of a territory (no passage is planned on them).
    #[command(subcommand)]
    Holiday(tournee_server::holidays::HolidayCmd),
    /// Plan an appointment for a unit (e.g. a home visit); it reaches the unit's laptops.
    #[command(subcommand)]
    Appointment(ServerAppointmentCmd),
    /// Coverage of a territory over a period: passages, people, requests, unreached communes.
    Coverage(CoverageArgs),
    /// Run the whole service on this machine: a server, two units of the Somme, three laptops
    /// working offline through a week, sync, a coverage summary and a digest check per device.
    Demo(DemoArgs),
    /// Back up the data directory into one file, online while `serve` runs.
    Backup(tournee_server::backup::BackupArgs),
    /// Restore the data directory from a backup (`serve` stopped); replaced files kept aside.
    Restore(tournee_server::backup::RestoreArgs),
    /// Console accounts: add, list, disable, a one-time sign-in link.
    #[command(subcommand)]
    User(tournee_server::users::UserCmd),
    /// The audit journal of console and account actions.
    Audit(tournee_server::users::AuditArgs),
    /// The public timetable of coming passages of a unit or a territory (no personal data).
    Timetable(tournee_server::timetable::TimetableArgs),
}

/// `stop …`.
#[derive(Debug, Subcommand)]
pub enum StopCmd {
    /// Add a stop; prints its id.
    Add(StopAdd),
    /// List a territory's stops (ids to give to `round add --stop`).
    List(StopList),
    /// Change a stop's label or address (a new place in another commune is a new stop).
    Set(StopSet),
    /// Archive a stop no live round visits any more.
    Archive(StopId),
}

/// `stop set`.
#[derive(Debug, Args)]
pub struct StopSet {
    /// The stop's id (see `stop list`).
    pub id: String,
    /// New label.
    #[arg(long)]
    pub label: Option<String>,
    /// New postal address ("" clears it).
    #[arg(long)]
    pub address: Option<String>,
    /// New commune (INSEE code, same territory), while nothing happened at the stop yet.
    #[arg(long, value_name = "INSEE")]
    pub commune: Option<String>,
}

/// A stop's id.
#[derive(Debug, Args)]
pub struct StopId {
    /// The stop's id (see `stop list`).
    pub id: String,
}

/// `stop list`.
#[derive(Debug, Args)]
pub struct StopList {
    /// Territory (département code).
    #[arg(long, value_name = "CODE")]
    pub territory: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `stop add`.
#[derive(Debug, Args)]
pub struct StopAdd {
    /// Territory (département code).
    #[arg(long, value_name = "CODE")]
    pub territory: String,
    /// INSEE code of the commune.
    #[arg(long, value_name = "INSEE")]
    pub commune: String,
    /// Label ("Place de la mairie").
    #[arg(long)]
    pub label: String,
    /// Postal address.
    #[arg(long)]
    pub address: Option<String>,
}

/// `round …`.
#[derive(Debug, Subcommand)]
pub enum RoundCmd {
    /// Add a round and generate its passages over the horizon; prints its id.
    Add(RoundAdd),
    /// Change a round; future passages the unit has not marked are regenerated.
    Set(RoundSet),
    /// List rounds.
    List(RoundList),
    /// Delete a round: its future passages the unit has not marked go; past and marked stay.
    Delete(RoundDelete),
}

/// `round delete`.
#[derive(Debug, Args)]
pub struct RoundDelete {
    /// The round's id (see `round list`).
    pub id: String,
}

/// `passage …` (server).
#[derive(Debug, Subcommand)]
pub enum ServerPassageCmd {
    /// Cancel one passage (the unit's laptops see it cancelled at their next sync).
    Cancel(PassageCancel),
    /// Move one passage to another day or window (regenerating its round leaves it there).
    Move(PassageMove),
}

/// `passage move`.
#[derive(Debug, Args)]
pub struct PassageMove {
    /// The passage's id (see `passages`).
    pub id: String,
    /// The new day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub date: String,
    /// New start (HH:MM); default: the passage's.
    #[arg(long, value_name = "HH:MM", requires = "end")]
    pub start: Option<String>,
    /// New end (HH:MM); default: the passage's.
    #[arg(long, value_name = "HH:MM", requires = "start")]
    pub end: Option<String>,
}

/// `passage cancel`.
#[derive(Debug, Args)]
pub struct PassageCancel {
    /// The passage's id (see `passages`).
    pub id: String,
    /// Why: panne, meteo, absence_conseiller or autre.
    #[arg(long, default_value = "autre")]
    pub cause: String,
}

/// `round add`.
#[derive(Debug, Args)]
pub struct RoundAdd {
    /// Unit.
    #[arg(long, value_name = "ID")]
    pub unit: String,
    /// Name.
    #[arg(long)]
    pub name: String,
    /// First day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: String,
    /// Last day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Recurrence: every N weeks (1 to 52).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub every_weeks: u32,
    /// A stop of the round: STOP_ID@WEEKDAY@HH:MM-HH:MM (repeatable; weekday mon…sun or lundi…dimanche).
    #[arg(
        long = "stop",
        value_name = "STOP_ID@WEEKDAY@HH:MM-HH:MM",
        required = true
    )]
    pub stops: Vec<String>,
}

/// `round set`.
#[derive(Debug, Args)]
pub struct RoundSet {
    /// Round id.
    pub id: String,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// New last day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// New recurrence.
    #[arg(long, value_name = "N")]
    pub every_weeks: Option<u32>,
    /// New list of stops (replaces the old one; repeatable).
    #[arg(long = "stop", value_name = "STOP_ID@WEEKDAY@HH:MM-HH:MM")]
    pub stops: Vec<String>,
}

/// `round list`.
#[derive(Debug, Args)]
pub struct RoundList {
    /// Only this unit.
    #[arg(long, value_name = "ID")]
    pub unit: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `passages`.
#[derive(Debug, Args)]
pub struct PassagesArgs {
    /// Only this unit.
    #[arg(long, value_name = "ID")]
    pub unit: Option<String>,
    /// First day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: String,
    /// Last day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `appointment …` (server).
#[derive(Debug, Subcommand)]
pub enum ServerAppointmentCmd {
    /// Plan an appointment for a unit; prints its id.
    Add(ServerAppointmentAdd),
}

/// `appointment add` (server).
#[derive(Debug, Args)]
pub struct ServerAppointmentAdd {
    /// Unit.
    #[arg(long, value_name = "ID")]
    pub unit: String,
    #[command(flatten)]
    pub fields: tournee_cli::AppointmentArgs,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned text.
    Table,
    /// RFC 4180 CSV, UTF-8, header row.
    Csv,
    /// One JSON document.
    Json,
}

/// Grouping of the coverage report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CoverageBy {
    /// Per commune.
    Commune,
    /// Per unit.
    Unit,
    /// Per partner.
    Partner,
    /// Per theme.
    Theme,
}

/// `coverage`.
#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Territory (département code).
    #[arg(long, value_name = "CODE")]
    pub territory: String,
    /// First day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: String,
    /// Last day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: String,
    /// Grouping.
    #[arg(long, value_enum, default_value_t = CoverageBy::Commune)]
    pub by: CoverageBy,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop when the week is done (otherwise the server keeps running for a real agent).
    #[arg(long)]
    pub exit: bool,
    /// Seed of the simulated week.
    #[arg(long, default_value_t = 80)]
    pub seed: u64,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// UDP address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Address agents use to reach the server (repeatable); written into bundles and the
    /// server certificate. Default: the listen address.
    #[arg(long, value_name = "HOST:PORT")]
    pub public_addr: Vec<String>,
    /// TCP address the web console listens on (written to server.toml).
    #[arg(long, value_name = "ADDR", default_value = tournee_server::config::CONSOLE_LISTEN_DEFAULT)]
    pub console_listen: SocketAddr,
}

/// `serve` (flags override `server.toml` in the data directory).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on this address instead of the configured one.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Sync sessions served at once; more connections queue.
    #[arg(long, value_name = "N")]
    pub sessions_max: Option<usize>,
    /// Weeks of passages materialised ahead of today.
    #[arg(long, value_name = "WEEKS")]
    pub horizon_weeks: Option<u32>,
    /// Log filter when RUST_LOG is not set.
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Serve the web console on this TCP address instead of the configured one.
    #[arg(long, value_name = "ADDR")]
    pub console_listen: Option<SocketAddr>,
}

/// `unit …`.
#[derive(Debug, Subcommand)]
pub enum UnitCmd {
    /// Add a unit.
    Add(UnitAdd),
    /// List units.
    List(FormatArg),
}

/// `unit add`.
#[derive(Debug, Args)]
pub struct UnitAdd {
    /// Identifier (letters, digits, - _ .), e.g. bus-80-1.
    #[arg(long)]
    pub id: String,
    /// Name for people.
    #[arg(long)]
    pub name: String,
    /// Territory: département code (e.g. 80).
    #[arg(long, value_name = "CODE")]
    pub territory: String,
    /// bus or domicile.
    #[arg(long, default_value = "bus")]
    pub kind: String,
}

/// `device …`.
#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    /// Enrol a laptop: issue its key and certificate, assign its number, write its bundle (0600).
    Enroll(DeviceEnroll),
    /// List devices.
    List(FormatArg),
    /// Revoke a device (by number or name); closes its live connection.
    Revoke(DeviceRevoke),
}

/// `device enroll`.
#[derive(Debug, Args)]
pub struct DeviceEnroll {
    /// The unit the laptop belongs to.
    #[arg(long, value_name = "ID")]
    pub unit: String,
    /// A unique name for the laptop.
    #[arg(long)]
    pub name: String,
    /// Where to write the enrolment bundle.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `device revoke`.
#[derive(Debug, Args)]
pub struct DeviceRevoke {
    /// Device number or name.
    pub device: String,
}

/// `--unit` for scoped commands.
#[derive(Debug, Args)]
pub struct UnitScope {
    /// Only this unit's scope (its records and its territory's stops).
    #[arg(long, value_name = "ID")]
    pub unit: Option<String>,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only this unit's scope.
    #[arg(long, value_name = "ID")]
    pub unit: Option<String>,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
}

fn main() -> ExitCode {
    tournee_cli::output::exit_code("tournee-server", commands::run(Cli::parse()))
}
