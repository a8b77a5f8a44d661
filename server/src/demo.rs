//! `tournee-server demo`: the whole service on one machine in under a minute — a server on
//! loopback, the Somme (80) with a bus and a home-visit team, three enrolled laptops running
//! the real agent code as tasks (real QUIC, real SQLite files), a week of offline work with a
//! concurrent edit, connectivity that comes and goes, sync, a summary per commune, and a line
//! per device saying whether its digest equals the server's.
//!
//! A showcase and a smoke test, not a load generator: sizes are small and fixed by the seed.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use tournee_agent::daemon;
use tournee_agent::setup::{identity_of, init_store};
use tournee_agent::sync::{sync_once, Backoff, Remote};
use tournee_core::actions::{self, NewAppointment, NewRequest, PassageUpdate};
use tournee_core::clock::{Clock, SystemClock};
use tournee_core::export;
use tournee_core::model::{
    CancelCause, Field, Kind, Level, Location, Outcome, PassageStatus, Value,
};
use tournee_core::refdata::RefData;
use tournee_core::rng::SeededRng;
use tournee_core::schedule::RoundStop;
use tournee_core::store::Store;
use tournee_core::time::{paris_date, parse_time};
use tournee_report::queries::GroupBy;
use tournee_report::queries::Queries;
use tournee_report::report;
use tournee_store::SqliteStore;
use uuid::Uuid;

use crate::admin;
use crate::config::{DataDir, ServerConfig};
use crate::registry::{Registry, Unit};
use crate::scheduling::{self, RoundSpec};
use crate::serve;
use tournee_core::limits::{
    DEMO_OFFLINE_SYNC_TIMEOUT_S, DEMO_SYNC_TIMEOUT_S, HORIZON_WEEKS_DEFAULT, UI_TOKEN_LIFETIME_MS,
};

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where to keep everything (a temporary directory when `None`).
    pub data: Option<PathBuf>,
    /// Stop when done instead of serving on.
    pub exit: bool,
    /// Seed of the simulated week.
    pub seed: u64,
}

const TERRITORY: &str = "80";
const BUS: &str = "bus-80-est";
const HOME: &str = "dom-80-amiens";
/// The bus's weekly round: (weekday, commune INSEE, stop label).
const ROUND: [(Weekday, &str, &str); 5] = [
    (Weekday::Mon, "80016", "Place de la mairie"),
    (Weekday::Tue, "80253", "Parking de la gare"),
    (Weekday::Wed, "80620", "Place du marché"),
    (Weekday::Thu, "80685", "Salle des fêtes"),
    (Weekday::Fri, "80410", "Place de l'église"),
];
const PARTNERS: [&str; 7] = [
    "caf",
    "assurance_maladie",
    "assurance_retraite",
    "france_travail",
    "dgfip",
    "interieur_ants",
    "la_poste",
];
const THEMES: [&str; 6] = [
    "famille_scolarite",
    "social_sante",
    "travail_formation",
    "argent_impots",
    "papiers_citoyennete",
    "numerique",
];

/// A laptop in the demo: its data dir, store and how it reaches the server.
struct Laptop {
    name: String,
    unit: String,
    device: u32,
    store: SqliteStore,
    remote: Remote,
}

fn step(n: u32, text: &str) {
    println!("[{n}/7] {text}");
}

fn free_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Run the demo.
pub async fn run(opts: DemoOptions) -> Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let tmp;
    let root = match &opts.data {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new().prefix("tournee-demo-").tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    println!("Tournée demo — France Services itinérants, Somme ({TERRITORY})");
    let data = DataDir::new(root.join("server"));
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let config = admin::init_server(
        &data,
        clock.as_ref(),
        listen,
        Vec::new(),
        ([127, 0, 0, 1], 0).into(),
    )?;
    let mut server = serve::start(&data, &config, clock.clone()).await?;
    step(
        1,
        &format!(
            "server initialised in {}, listening on {}",
            data.root().display(),
            server.addr()
        ),
    );
    add_units(&data)?;
    step(2, &format!("units: {BUS} (bus), {HOME} (home visits)"));
    let mut laptops = enroll_laptops(&data, clock.as_ref(), &root)?;
    step(3, &format!("enrolled {}", describe(&laptops)));

    let today = paris_date(i64::try_from(clock.now_ms() / 1000)?).context("date")?;
    // Next week: its passages are all ahead of today, inside the planning horizon.
    let monday = today + Duration::days(7 - i64::from(today.weekday().num_days_from_monday()));
    let plan = schedule(&data, clock.as_ref(), monday)?;
    step(
        4,
        &format!(
            "scheduler: a weekly round of {} stops from {monday} (passages planned {HORIZON_WEEKS_DEFAULT} weeks ahead), 3 home visits",
            plan.passages.len()
        ),
    );

    for l in laptops.iter_mut() {
        sync_laptop(l, clock.as_ref(), true, DEMO_SYNC_TIMEOUT_S).await?;
    }
    step(5, "first sync: every laptop has its calendar offline");

    step(
        6,
        "the week (laptops work offline; they sync when the network allows):",
    );
    let mut week = Week {
        clock,
        rng: SeededRng::new(opts.seed),
        monday,
        plan,
        laptops,
        shared_appointment: None,
    };
    for (day_index, day) in ROUND.iter().enumerate() {
        week.day(day_index, *day)?;
        // Tuesday evening the server is down for maintenance.
        if day.0 == Weekday::Tue {
            server = week
                .evening_with_server_down(server, &data, &config)
                .await?;
        } else {
            week.evening(DEMO_SYNC_TIMEOUT_S).await?;
        }
    }
    let Week {
        clock, mut laptops, ..
    } = week;

    step(
        7,
        "end of the week: every laptop syncs (twice, so each sees the others' changes)",
    );
    for _ in 0..2 {
        for l in laptops.iter_mut() {
            sync_laptop(l, clock.as_ref(), false, DEMO_SYNC_TIMEOUT_S).await?;
        }
    }
    let report_store = data.open_store()?;
    print_summary(&report_store, monday)?;
    let conflicts = report_store.conflicted()?;
    println!(
        "\nConflicts kept for review: {} record(s) — e.g. `tournee-agent conflicts --data {}`",
        conflicts.len(),
        root.join("laptop-bus-1").display()
    );
    let all_equal = print_digests(&laptops, &report_store)?;
    if opts.exit {
        server.shutdown().await;
        anyhow::ensure!(all_equal, "a device did not converge");
        println!("\nDemo finished.");
        return Ok(());
    }
    serve_on(server, &root, &data, laptops, clock).await
}

/// The two units of the Somme, in the registry.
fn add_units(data: &DataDir) -> Result<()> {
    let registry = Registry::open(&data.registry())?;
    for (id, name, kind) in [
        (BUS, "Bus France services — Est de la Somme", "bus"),
        (HOME, "Équipe à domicile — Amiens métropole", "domicile"),
    ] {
        registry.add_unit(&Unit {
            id: id.into(),
            name: name.into(),
            territory: TERRITORY.into(),
            kind: kind.into(),
        })?;
    }
    Ok(())
}

/// Enrol the three laptops and initialise their stores under `root`.
fn enroll_laptops(
    data: &DataDir,
    clock: &dyn Clock,
    root: &std::path::Path,
) -> Result<Vec<Laptop>> {
    let mut laptops = Vec::new();
    for (name, unit) in [
        ("laptop-bus-1", BUS),
        ("laptop-bus-2", BUS),
        ("laptop-dom-1", HOME),
    ] {
        let bundle = admin::enroll_device(data, clock, unit, name)?;
        let store = init_store(
            &root.join(name),
            &identity_of(&bundle),
            Some(&bundle.to_json()),
        )?;
        laptops.push(Laptop {
            name: name.into(),
            unit: unit.into(),
            device: bundle.device,
            store,
            remote: Remote::from_bundle(&bundle)?,
        });
    }
    Ok(laptops)
}

/// `name (#device, unit)` of each laptop, comma-separated.
fn describe(laptops: &[Laptop]) -> String {
    laptops
        .iter()
        .map(|l| format!("{} (#{}, {})", l.name, l.device, l.unit))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The simulated week: laptops 0 and 1 share the bus round, laptop 2 does home visits.
struct Week {
    clock: Arc<dyn Clock>,
    rng: SeededRng,
    monday: NaiveDate,
    plan: Plan,
    laptops: Vec<Laptop>,
    /// Monday's first appointment, which both bus laptops move on Wednesday.
    shared_appointment: Option<Uuid>,
}

impl Week {
    /// One day of the round, offline: the bus's passage, the home team's visits, Wednesday's
    /// concurrent edit.
    fn day(&mut self, day_index: usize, stop: (Weekday, &str, &str)) -> Result<()> {
        let (weekday, commune, label) = stop;
        let date = self.monday + Duration::days(day_index as i64);
        println!("  {} {date}:", weekday_fr(weekday));
        let passage = self.plan.passages[day_index];
        if weekday == Weekday::Thu {
            self.cancel_passage(day_index % 2, passage, commune, label)?;
        } else {
            self.hold_passage(day_index % 2, date, weekday, passage, commune, label)?;
        }
        self.home_day(day_index, date)?;
        if weekday == Weekday::Wed {
            self.move_shared_appointment()?;
        }
        Ok(())
    }

    /// The evening: each laptop that finds a network syncs, giving up after `timeout_s`.
    async fn evening(&mut self, timeout_s: u64) -> Result<()> {
        let clock = self.clock.clone();
        sync_some(&mut self.laptops, clock.as_ref(), &mut self.rng, timeout_s).await
    }

    /// Thursday: the bus broke down.
    fn cancel_passage(
        &mut self,
        bus: usize,
        passage: Uuid,
        commune: &str,
        label: &str,
    ) -> Result<()> {
        let bus = &mut self.laptops[bus];
        let rec = actions::require_kind(&bus.store, passage, Kind::Passage)?;
        let update = PassageUpdate {
            status: Some(PassageStatus::Cancelled),
            cause: Some(CancelCause::Breakdown),
            ..PassageUpdate::default()
        };
        bus.store
            .write_local(self.clock.now_ms(), &actions::set_passage(&rec, &update)?)?;
        println!(
            "    {}: passage at {label} ({}) cancelled — breakdown",
            bus.name,
            commune_name(commune)
        );
        Ok(())
    }

    /// A held passage: three to six people received, some with a request, then the actual
    /// times. Monday's first appointment is remembered for Wednesday.
    fn hold_passage(
        &mut self,
        bus: usize,
        date: NaiveDate,
        weekday: Weekday,
        passage: Uuid,
        commune: &str,
        label: &str,
    ) -> Result<()> {
        let clock = self.clock.as_ref();
        let rng = &mut self.rng;
        let bus = &mut self.laptops[bus];
        let n = 3 + rng.below(4);
        let mut requests = 0;
        for k in 0..n {
            let start = parse_time(
                "start",
                &format!("{date}T{:02}:{:02}", 9 + k, 15 * rng.below(4)),
            )?;
            let id = record_visit(
                bus,
                clock,
                rng,
                start,
                Location::Stop,
                commune,
                Some(passage),
            )?;
            requests += 1;
            if rng.chance_percent(40) {
                add_request(bus, clock, rng, id)?;
                requests += 1;
            }
            if weekday == Weekday::Mon && k == 0 {
                self.shared_appointment = Some(id);
            }
        }
        let rec = actions::require_kind(&bus.store, passage, Kind::Passage)?;
        let update = PassageUpdate {
            status: Some(PassageStatus::Held),
            actual_start: Some(parse_time("t", &format!("{date}T09:05"))?),
            actual_end: Some(parse_time("t", &format!("{date}T12:10"))?),
            ..PassageUpdate::default()
        };
        bus.store
            .write_local(clock.now_ms(), &actions::set_passage(&rec, &update)?)?;
        println!(
            "    {}: passage at {label} ({}) held, {n} people received, {requests} requests",
            bus.name,
            commune_name(commune)
        );
        Ok(())
    }

    /// The home-visit team works every day in Amiens: the planned visit of the day, if any,
    /// and one more recorded on the spot.
    fn home_day(&mut self, day_index: usize, date: NaiveDate) -> Result<()> {
        let clock = self.clock.as_ref();
        let rng = &mut self.rng;
        let home = &mut self.laptops[2];
        if let Some(Some(visit)) = self.plan.home_visits.get(day_index) {
            let rec = actions::require_kind(&home.store, *visit, Kind::Appointment)?;
            let status = if rng.chance_percent(85) {
                "seen"
            } else {
                "noshow"
            };
            home.store.write_local(
                clock.now_ms(),
                &actions::set_fields(&rec, vec![(Field::Status, Value::Text(status.into()))]),
            )?;
            if status == "seen" {
                add_request(home, clock, rng, *visit)?;
            }
            println!("    {}: planned home visit — {status}", home.name);
        }
        let start = parse_time("start", &format!("{date}T14:00"))?;
        let extra = record_visit(home, clock, rng, start, Location::Home, "80021", None)?;
        add_request(home, clock, rng, extra)?;
        println!(
            "    {}: one more home visit recorded on the spot",
            home.name
        );
        Ok(())
    }

    /// Wednesday: both bus laptops move Monday's first appointment while offline.
    fn move_shared_appointment(&mut self) -> Result<()> {
        let Some(id) = self.shared_appointment else {
            return Ok(());
        };
        for (i, hhmm) in [(0usize, "16:00"), (1usize, "16:30")] {
            let l = &mut self.laptops[i];
            let rec = actions::require_kind(&l.store, id, Kind::Appointment)?;
            let note = format!("rappeler — {}", l.name);
            let t = parse_time(
                "start",
                &format!("{}T{hhmm}", self.monday + Duration::days(7)),
            )?;
            l.store.write_local(
                self.clock.now_ms(),
                &actions::set_fields(
                    &rec,
                    vec![
                        (Field::Start, Value::Int(t)),
                        (Field::Note, Value::Text(note)),
                    ],
                ),
            )?;
        }
        println!(
            "    laptop-bus-1 and laptop-bus-2 both move the same follow-up appointment, offline"
        );
        Ok(())
    }

    /// An evening with the server down for maintenance: the laptops that try give up
    /// quickly; then the server comes back (on a new port). Returns the restarted server.
    async fn evening_with_server_down(
        &mut self,
        server: serve::RunningServer,
        data: &DataDir,
        config: &ServerConfig,
    ) -> Result<serve::RunningServer> {
        server.shutdown().await;
        println!("    server down for maintenance this evening");
        self.evening(DEMO_OFFLINE_SYNC_TIMEOUT_S).await?;
        let server = serve::start(data, config, self.clock.clone()).await?;
        println!("    server back up on {}", server.addr());
        Ok(server)
    }
}

/// One line per device: its digest and whether it equals the server's for its scopes.
/// Returns true when every device is in sync.
fn print_digests(laptops: &[Laptop], server_store: &SqliteStore) -> Result<bool> {
    println!("\nDevices:");
    let mut all_equal = true;
    for l in laptops {
        let id = l.store.identity()?.context("identity")?;
        let mine = export::digest(&l.store, Some(&id.scopes()))?;
        let theirs = export::digest(server_store, Some(&id.scopes()))?;
        let equal = mine == theirs;
        all_equal &= equal;
        println!(
            "  {:<13} #{} {:<14} digest {}… {}",
            l.name,
            l.device,
            l.unit,
            &mine[..16],
            if equal {
                "= server: in sync"
            } else {
                "≠ server: NOT in sync"
            }
        );
    }
    Ok(all_equal)
}

/// Keep serving until Ctrl-C: the server for a real agent, and each demo laptop as a daemon
/// (its sync loop and its web UI on a free loopback port), saying how to open each UI.
async fn serve_on(
    server: serve::RunningServer,
    root: &std::path::Path,
    data: &DataDir,
    laptops: Vec<Laptop>,
    clock: Arc<dyn Clock>,
) -> Result<()> {
    println!(
        "\nThe server keeps running on {} (data in {}). To point a real agent at it:\n  \
         tournee-server device enroll --data {} --unit {BUS} --name my-laptop --out my-laptop.bundle\n  \
         tournee-agent init --data ./my-laptop --bundle my-laptop.bundle\n  \
         tournee-agent sync --data ./my-laptop",
        server.addr(),
        root.display(),
        data.root().display()
    );
    if let Some(console) = server.console_addr() {
        print_console_links(data, clock.as_ref(), console)?;
    }
    println!(
        "\nEach laptop keeps running too, with the conseillère's web interface (a login link is \
         valid {} minutes and opens once; `tournee-agent ui --data DIR --print-url` gives another):",
        UI_TOKEN_LIFETIME_MS / 60_000
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut daemons = Vec::new();
    for (i, mut l) in laptops.into_iter().enumerate() {
        let dir = root.join(&l.name);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        // `tournee-agent ui` builds its link from agent.toml.
        let config = dir.join(tournee_agent::config::CONFIG_FILE);
        let mut text = std::fs::read_to_string(&config)?;
        text.push_str(&format!("\nui_listen = \"{addr}\"\n"));
        tournee_cli::write_private(&config, text.as_bytes())?;
        let token = tournee_agent::ui::auth::issue_token(&dir, clock.now_ms())?;
        println!(
            "  {}: http://{addr}/connexion?jeton={token}   (DIR = {})",
            l.name,
            dir.display()
        );
        let (clock, stop) = (clock.clone(), stop_rx.clone());
        let backoff = Backoff::new(clock.now_ms() + i as u64);
        daemons.push(tokio::spawn(async move {
            let ran = daemon::run(
                &dir,
                &mut l.store,
                &l.remote,
                clock,
                backoff,
                Some(listener),
                stop,
            )
            .await;
            (l.name, ran)
        }));
    }
    println!("Ctrl-C stops everything.");
    tournee_cli::wait_for_signal().await;
    let _ = stop_tx.send(true);
    for d in daemons {
        let (name, ran) = d.await.context("a laptop's daemon panicked")?;
        if let Err(e) = ran {
            eprintln!("{name}: {e:#}");
        }
    }
    server.shutdown().await;
    Ok(())
}

/// Accounts for the demo's console (an admin, the Somme's scheduler and supervisor) and a
/// one-time sign-in link for each, to the console the running server serves.
fn print_console_links(data: &DataDir, clock: &dyn Clock, console: SocketAddr) -> Result<()> {
    use crate::accounts::Role;
    let registry = Registry::open(&data.registry())?;
    println!(
        "\nThe web console (schedulers, supervisors) is on http://{console}; a sign-in link for each \
         demo account (valid 24 h, opens once, then asks for a password):"
    );
    for (name, role, territories) in [
        ("admin", Role::Admin, vec![]),
        (
            "planification-80",
            Role::Scheduler,
            vec![TERRITORY.to_owned()],
        ),
        (
            "supervision-80",
            Role::Supervisor,
            vec![TERRITORY.to_owned()],
        ),
    ] {
        let now = clock.now_ms();
        registry.add_user(name, role, &territories, now)?;
        let token = registry.issue_link(name, now)?;
        registry.audit(
            now,
            crate::users::CLI_ACTOR,
            "user.add",
            territories.first().map(String::as_str),
            name,
        )?;
        println!("  {name}: http://{console}/connexion/lien?jeton={token}");
    }
    Ok(())
}

fn weekday_fr(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "lundi",
        Weekday::Tue => "mardi",
        Weekday::Wed => "mercredi",
        Weekday::Thu => "jeudi",
        Weekday::Fri => "vendredi",
        Weekday::Sat => "samedi",
        Weekday::Sun => "dimanche",
    }
}

fn commune_name(code: &str) -> String {
    RefData::get()
        .commune(code)
        .map_or_else(|| code.to_owned(), |c| c.name.clone())
}

/// Each laptop finds a network with some probability at the end of the day.
async fn sync_some(
    laptops: &mut [Laptop],
    clock: &dyn Clock,
    rng: &mut SeededRng,
    timeout_s: u64,
) -> Result<()> {
    for l in laptops.iter_mut() {
        if rng.chance_percent(60) {
            sync_laptop(l, clock, false, timeout_s).await?;
        } else {
            let pending = l.store.stats()?.pending;
            println!(
                "    {}: no network — {pending} change(s) stay queued",
                l.name
            );
        }
    }
    Ok(())
}

async fn sync_laptop(l: &mut Laptop, clock: &dyn Clock, quiet: bool, timeout_s: u64) -> Result<()> {
    match sync_once(&mut l.store, &l.remote, clock, timeout_s).await {
        Ok(r) => {
            if !quiet {
                println!(
                    "    {}: synced — sent {}, received {} change(s)",
                    l.name, r.stats.changes_out, r.stats.changes_in
                );
            }
        }
        Err(e) => {
            let pending = l.store.stats()?.pending;
            println!(
                "    {}: sync failed ({e}) — {pending} change(s) stay queued",
                l.name
            );
        }
    }
    Ok(())
}

fn record_visit(
    l: &mut Laptop,
    clock: &dyn Clock,
    rng: &mut SeededRng,
    start: i64,
    location: Location,
    commune: &str,
    passage: Option<Uuid>,
) -> Result<Uuid> {
    let names = [
        "Mme Lefebvre",
        "M. Dubois",
        "Mme Leroy",
        "M. Moreau",
        "Mme Fournier",
        "M. Girard",
    ];
    let a = NewAppointment {
        start,
        duration: 20 + 10 * rng.below(4) as i64,
        location,
        commune: commune.into(),
        citizen: Some((*rng.pick(&names)).into()),
        person: None,
        passage,
        note: None,
    };
    let now = clock.now_ms();
    let (id, action) = actions::add_appointment(&l.store, now, &l.unit, &a)?;
    l.store.write_local(now, &action)?;
    let rec = actions::require_kind(&l.store, id, Kind::Appointment)?;
    let status = if rng.chance_percent(90) {
        "seen"
    } else {
        "noshow"
    };
    l.store.write_local(
        now,
        &actions::set_fields(&rec, vec![(Field::Status, Value::Text(status.into()))]),
    )?;
    add_request(l, clock, rng, id)?;
    Ok(id)
}

fn add_request(
    l: &mut Laptop,
    clock: &dyn Clock,
    rng: &mut SeededRng,
    appointment: Uuid,
) -> Result<()> {
    let outcomes = [
        Outcome::Resolved,
        Outcome::Resolved,
        Outcome::Referred,
        Outcome::Waiting,
    ];
    let r = NewRequest {
        appointment: Some(appointment),
        passage: None,
        visit: None,
        partner: (*rng.pick(&PARTNERS)).into(),
        theme: (*rng.pick(&THEMES)).into(),
        level: *rng.pick(&[Level::Information, Level::Support, Level::Referral]),
        outcome: *rng.pick(&outcomes),
        minutes: Some(10 + 5 * rng.below(5) as i64),
    };
    let now = clock.now_ms();
    let (_, action) = actions::add_request(&l.store, now, &r)?;
    l.store.write_local(now, &action)?;
    Ok(())
}

struct Plan {
    passages: Vec<Uuid>,
    /// Planned home visit of each weekday, if any.
    home_visits: Vec<Option<Uuid>>,
}

/// The scheduler's work, on the server: stops, a weekly round (its passages follow), and
/// planned home visits.
fn schedule(data: &DataDir, clock: &dyn Clock, monday: NaiveDate) -> Result<Plan> {
    let mut store = data.open_store()?;
    let now = clock.now_ms();
    let mut stops = Vec::new();
    for (weekday, commune, label) in ROUND {
        let stop = scheduling::add_stop(&mut store, now, TERRITORY, commune, label, None)?;
        stops.push(RoundStop {
            stop,
            weekday,
            start: chrono::NaiveTime::from_hms_opt(9, 0, 0).context("time")?,
            end: chrono::NaiveTime::from_hms_opt(12, 0, 0).context("time")?,
        });
    }
    let unit = Registry::open(&data.registry())?
        .unit(BUS)?
        .context("bus unit")?;
    let spec = RoundSpec {
        name: "Tournée Est".into(),
        from: monday,
        to: None,
        every_weeks: 1,
        stops,
    };
    let today = paris_date(i64::try_from(now / 1000)?).context("date")?;
    // The demo plays this week's five days whatever the date: its round ignores the public
    // holidays (a real round skips them, `scheduling::DaysOff`).
    let every_day = scheduling::DaysOff::default();
    let window = scheduling::Window {
        today,
        horizon_weeks: HORIZON_WEEKS_DEFAULT,
        days_off: &every_day,
    };
    scheduling::add_round(&mut store, now, &window, &unit, &spec)?;
    let passages: Vec<Uuid> = store
        .passages_between(Some(BUS), monday, monday + Duration::days(4))?
        .iter()
        .map(|p| p.id)
        .collect();
    anyhow::ensure!(
        passages.len() == ROUND.len(),
        "the round gives one passage a day"
    );
    let mut home_visits = vec![None; ROUND.len()];
    for i in [0usize, 2, 4] {
        let date = monday + Duration::days(i as i64);
        let a = NewAppointment {
            start: parse_time("t", &format!("{date}T10:30"))?,
            duration: 45,
            location: Location::Home,
            commune: "80021".into(),
            citizen: Some(format!("Usager {}", i + 1)),
            person: None,
            passage: None,
            note: Some("visite planifiée par la coordination".into()),
        };
        let (id, action) = actions::add_appointment(&store, now, HOME, &a)?;
        store.write_local(now, &action)?;
        home_visits[i] = Some(id);
    }
    Ok(Plan {
        passages,
        home_visits,
    })
}

/// The supervisor's view of the week: the coverage report, as `tournee-server coverage` prints it.
fn print_summary(store: &SqliteStore, monday: NaiveDate) -> Result<()> {
    let friday = monday + Duration::days(4);
    let raw = store.coverage_data(TERRITORY, monday, friday, GroupBy::Commune)?;
    let report = report::build(TERRITORY, monday, friday, GroupBy::Commune, &raw);
    println!();
    report::write_table(&report, &mut std::io::stdout().lock())?;
    Ok(())
}
