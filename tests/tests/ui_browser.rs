//! The laptop's web UI in a real browser (Debian's Chromium through WebDriver) against a real
//! `tournee-agent run` daemon and a real server: the conseillère's day from the login link to
//! the server's coverage, with axe-core on every page and no request leaving the laptop; the
//! same walk-in with JavaScript off; a browser without the login link gets nothing.
//!
//! "Today" is Tuesday 12 January 2027 on every process (`TOURNEE_CLOCK_SKEW_MS`). Browser
//! tests run one at a time (a mutex): two Chromiums on two cores would starve the daemons.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::Value as Json;
use tournee_tests::browser::{
    appears, available, body, choose, click, fill, free_tcp_port, set_time, shots_dir, submit,
    Browser,
};
use tournee_tests::{Agent, Server};

const SKEW: &str = "TOURNEE_CLOCK_SKEW_MS";
const TODAY: &str = "2027-01-12";
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn skew() -> String {
    tournee_tests::skew_to_day(TODAY)
}

fn agent(a: &Agent, args: &[&str]) -> String {
    tournee_tests::ok(a.cmd(args).env(SKEW, skew()))
        .trim()
        .to_owned()
}

fn agent_json(a: &Agent, args: &[&str]) -> Json {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    serde_json::from_str(&agent(a, &args)).expect("json")
}

fn srv(server: &Server, args: &[&str]) -> String {
    tournee_tests::ok(server.cmd(args).env(SKEW, skew()))
}

/// Poll `cond` (a state another process changes) until it holds, at most `limit`.
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < limit,
            "{what}: not true within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn server(dir: &Path) -> Server {
    tournee_tests::server_with_tuesday_round(dir, &skew())
}

/// `tournee-agent run` with the UI on `port`, started once it says the UI listens.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(a: &Agent) -> Self {
        let port = free_tcp_port();
        let config = a.dir.join("agent.toml");
        let mut text = std::fs::read_to_string(&config).unwrap_or_default();
        text.push_str(&format!("\nui_listen = \"127.0.0.1:{port}\"\n"));
        std::fs::write(&config, text).expect("agent.toml");
        let mut child = a
            .cmd(&["run", "--log", "info"])
            .env(SKEW, skew())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run");
        let err = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(err).lines();
        let up = lines
            .by_ref()
            .take(200)
            .map_while(Result::ok)
            .any(|l| l.contains("web interface listening"));
        assert!(up, "the daemon's UI did not start");
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, port }
    }

    /// A fresh one-time login link.
    fn login_url(&self, a: &Agent) -> String {
        let url = agent(a, &["ui", "--print-url"]);
        assert!(
            url.starts_with(&format!("http://127.0.0.1:{}/connexion?jeton=", self.port)),
            "{url}"
        );
        url
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Open `path`, check axe finds nothing serious and every URL the page loaded is the laptop's
/// own, and keep a screenshot for people to look at.
async fn look(b: &Browser, d: &Daemon, path: &str, shots: &Path, name: &str) {
    b.client.goto(&d.url(path)).await.expect("page");
    let violations = b.axe().await;
    assert!(violations.is_empty(), "{path}: {violations:#?}");
    for url in b.loaded_urls().await {
        assert!(
            url.starts_with(&format!("http://127.0.0.1:{}/", d.port)) || url.starts_with('#'),
            "{path} loaded {url}"
        );
    }
    b.screenshot(&shots.join(format!("{name}.png"))).await;
}

/// The walk-in form filled for `person` (a radio id) at `passage`, with `requests` as
/// (partner, outcome), then submitted.
async fn walk_in(
    b: &Browser,
    d: &Daemon,
    search: Option<&str>,
    person: &str,
    passage: &str,
    requests: &[(&str, &str)],
) {
    b.client.goto(&d.url("/accueillir")).await.expect("page");
    if let Some(typed) = search {
        // Search as she types: htmx brings the matching persons in.
        fill(b, "recherche", typed).await;
    }
    if person != "personne-anonyme" {
        let found = b.client.wait().for_element(Locator::Id(person)).await;
        if found.is_err() {
            panic!("{person} not offered: {}", body(b).await);
        }
    }
    click(b, person).await;
    choose(b, "passage", passage).await;
    for (i, (partner, outcome)) in requests.iter().enumerate() {
        let n = i + 1;
        choose(b, &format!("partenaire_{n}"), partner).await;
        choose(b, &format!("theme_{n}"), "logement").await;
        choose(b, &format!("issue_{n}"), outcome).await;
        fill(b, &format!("minutes_{n}"), "15").await;
    }
    submit(b, "enregistrer-accueil", "accueil").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_in_the_browser_reaches_the_server_with_each_person_counted_once() {
    if !available() {
        eprintln!("skipped: no /usr/bin/chromium or chromedriver (.ci/run installs them)");
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let shots = shots_dir();
    let mut server = server(tmp.path());
    let one = Agent::init(
        &tmp.path().join("laptop-1"),
        &server.enroll("bus-80-1", "laptop-1"),
    );
    let two = Agent::init(
        &tmp.path().join("laptop-2"),
        &server.enroll("bus-80-1", "laptop-2"),
    );
    server.start_with_env(&[(SKEW, &skew())]);
    let her = agent(
        &one,
        &[
            "person",
            "add",
            "--name",
            "Mme Lefèvre",
            "--commune",
            "80001",
        ],
    );
    let booked = agent(
        &one,
        &[
            "appointment",
            "add",
            "--start",
            "2027-01-12T15:00",
            "--duration",
            "30",
            "--location",
            "domicile",
            "--commune",
            "80001",
            "--person",
            &her,
        ],
    );
    let daemon = Daemon::start(&one);
    let passages = || agent_json(&one, &["passage", "list", "--date", TODAY]);
    wait_until(
        Duration::from_secs(30),
        "today's passage on the laptop",
        || {
            passages()["passages"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
        },
    );
    let passage = passages()["passages"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    tournee_tests::ok(two.cmd(&["sync", "--timeout", "60"]).env(SKEW, skew()));

    let b = Browser::start(true).await;
    // Without the login link: refused.
    b.client.goto(&daemon.url("/")).await.expect("page");
    assert!(
        body(&b).await.contains("tournee-agent ui"),
        "the 401 page says what to run"
    );
    b.client.goto(&daemon.login_url(&one)).await.expect("login");
    assert_eq!(b.client.current_url().await.expect("url").path(), "/");
    look(&b, &daemon, "/", &shots, "aujourdhui").await;

    // The passage is held, with its actual times.
    set_time(&b, &format!("debut-{passage}"), "09:05").await;
    set_time(&b, &format!("fin-{passage}"), "11:55").await;
    submit(&b, &format!("effectue-{passage}"), "passage").await;
    let shown = agent_json(&one, &["passage", "list", "--date", TODAY]);
    assert_eq!(shown["passages"][0]["status"], "effectue", "{shown}");

    // A walk-in for her, found by typing part of her name without its accent; two requests.
    walk_in(
        &b,
        &daemon,
        Some("lefev"),
        &format!("personne-{her}"),
        &passage,
        &[
            ("caf", "en_attente_operateur"),
            ("caf", "resolue_sur_place"),
        ],
    )
    .await;
    // An anonymous walk-in.
    walk_in(&b, &daemon, None, "personne-anonyme", &passage, &[]).await;
    for (path, name) in [
        ("/accueillir", "accueillir"),
        ("/demandes", "demandes"),
        ("/semaine", "semaine"),
        (&format!("/personnes/{her}") as &str, "personne"),
        ("/synchronisation", "synchronisation"),
        (&format!("/feuille?date={TODAY}") as &str, "feuille"),
    ] {
        look(&b, &daemon, path, &shots, name).await;
    }

    // Offline: the server stops; she keeps working and closes the pending request.
    server.stop();
    let pending = agent_json(&one, &["request", "list", "--pending"]);
    let pending_id = pending["requests"][0]["id"]
        .as_str()
        .expect("a pending request")
        .to_owned();
    b.client.goto(&daemon.url("/demandes")).await.expect("page");
    choose(&b, &format!("issue-{pending_id}"), "resolue_sur_place").await;
    submit(&b, &format!("enregistrer-{pending_id}"), "demande").await;
    let still = agent_json(&one, &["request", "list", "--pending"]);
    assert_eq!(
        still["requests"].as_array().map(Vec::len),
        Some(0),
        "{still}"
    );
    look(&b, &daemon, "/synchronisation", &shots, "hors-ligne").await;

    // Laptop 2 changed the appointment's note meanwhile; so did laptop 1: a conflict, resolved
    // from the browser.
    agent(
        &two,
        &["appointment", "set", &booked, "--note", "sonner fort"],
    );
    agent(
        &one,
        &["appointment", "set", &booked, "--note", "digicode 1234"],
    );
    server.start_with_env(&[(SKEW, &skew())]);
    tournee_tests::ok(two.cmd(&["sync", "--timeout", "60"]).env(SKEW, skew()));
    wait_until(Duration::from_secs(30), "the conflict on laptop 1", || {
        agent_json(&one, &["conflicts"])["conflicts"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    });
    look(&b, &daemon, "/conflits", &shots, "conflits").await;
    let page = body(&b).await;
    assert!(
        page.contains("laptop-2"),
        "the other laptop is named: {page}"
    );
    assert!(
        page.contains("Rendez-vous de Mme Lefèvre, mar. 12 janv. 15:00 — note"),
        "the record is named as she knows it: {page}"
    );
    submit(&b, &format!("garder-{booked}-note-1"), "conflit").await;
    let left = agent_json(&one, &["conflicts"]);
    assert_eq!(
        left["conflicts"].as_array().map(Vec::len),
        Some(0),
        "{left}"
    );

    // Everything reaches the server: two people received (her once, the anonymous walk-in).
    wait_until(
        Duration::from_secs(30),
        "laptop 1 has nothing waiting",
        || {
            let s = agent_json(&one, &["status"]);
            s["pending_changes"] == 0
        },
    );
    b.quit().await;
    drop(daemon);
    server.stop();
    let report: Json = serde_json::from_str(&srv(
        &server,
        &[
            "coverage",
            "--territory",
            "80",
            "--from",
            TODAY,
            "--to",
            TODAY,
            "--format",
            "json",
        ],
    ))
    .expect("json");
    let t = &report["totals"];
    assert_eq!(t["passages_held"], 1, "{report}");
    assert_eq!(t["walk_ins"], 2, "{report}");
    assert_eq!(t["citizens_received"], 2, "{report}");
    assert_eq!(t["requests"], 2, "{report}");
    assert_eq!(t["resolved_on_spot"], 2, "{report}");
    // The one value kept from the browser is the server's, with no conflict left.
    let conflicts: Json =
        serde_json::from_str(&srv(&server, &["conflicts", "--format", "json"])).expect("json");
    assert_eq!(
        conflicts["conflicts"].as_array().map(Vec::len),
        Some(0),
        "{conflicts}"
    );
    let export = srv(
        &server,
        &["export", "--unit", "bus-80-1", "--format", "json"],
    );
    assert!(
        export.contains("digicode 1234") != export.contains("sonner fort"),
        "exactly one of the two notes on the server"
    );
}

/// A laptop that synced its plan once, its server gone since (the UI works from the laptop's
/// store alone), and "Mme Lefèvre" recorded on it; returns the laptop and her id.
fn offline_laptop_knowing_her(root: &Path) -> (Agent, String) {
    let mut server = server(root);
    let one = Agent::init(
        &root.join("laptop-1"),
        &server.enroll("bus-80-1", "laptop-1"),
    );
    server.start_with_env(&[(SKEW, &skew())]);
    tournee_tests::ok(one.cmd(&["sync", "--timeout", "60"]).env(SKEW, skew()));
    server.stop();
    let her = agent(&one, &["person", "add", "--name", "Mme Lefèvre"]);
    (one, her)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_javascript_off_a_walk_in_is_found_recorded_and_listed() {
    if !available() {
        eprintln!("skipped: no /usr/bin/chromium or chromedriver (.ci/run installs them)");
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let (one, her) = offline_laptop_knowing_her(tmp.path());
    let passage = agent_json(&one, &["passage", "list", "--date", TODAY])["passages"][0]["id"]
        .as_str()
        .expect("today's passage")
        .to_owned();
    let daemon = Daemon::start(&one);
    let b = Browser::start(false).await;
    b.client.goto(&daemon.login_url(&one)).await.expect("login");
    b.client
        .goto(&daemon.url("/accueillir"))
        .await
        .expect("page");
    fill(&b, "recherche", "lefevre").await;
    click(&b, "chercher").await;
    // The search posts the form and the page comes back with her among the results.
    let radio = format!("personne-{her}");
    appears(&b, &radio, "not found without JavaScript").await;
    assert!(
        !b.client
            .current_url()
            .await
            .expect("url")
            .as_str()
            .contains("lef"),
        "no name in the URL"
    );
    click(&b, &format!("personne-{her}")).await;
    choose(&b, "passage", &passage).await;
    choose(&b, "partenaire_1", "caf").await;
    choose(&b, "theme_1", "logement").await;
    choose(&b, "issue_1", "en_attente_operateur").await;
    submit(&b, "enregistrer-accueil", "accueil").await;
    let listed = agent_json(&one, &["request", "list", "--person", &her]);
    let ids: BTreeSet<&str> = listed["requests"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(ids, BTreeSet::from(["en_attente_operateur"]), "{listed}");
    b.quit().await;
}

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const UP: &str = "\u{E013}";
const DOWN: &str = "\u{E015}";

/// Press `key` where the focus is, as a keyboard would.
async fn press(b: &Browser, key: &str) {
    b.client
        .active_element()
        .await
        .expect("an element has the focus")
        .send_keys(key)
        .await
        .expect("key");
}

/// The focused element: its id (or its class when it has none), whether a radio or checkbox
/// is checked, and whether a focus ring shows.
async fn focused(b: &Browser) -> (String, bool, bool) {
    let v = b
        .client
        .execute(
            "const e = document.activeElement; const s = getComputedStyle(e);
             return [e.id || e.className, !!e.checked, s.outlineStyle !== 'none' && s.outlineWidth !== '0px'];",
            vec![],
        )
        .await
        .expect("focus");
    (
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_bool().unwrap_or(false),
        v[2].as_bool().unwrap_or(false),
    )
}

/// The keyboard alone (Tab, arrows, Enter; no click): from the top of *Accueillir* the skip
/// link comes first and jumps to the form; typing part of a name finds her; the focus then
/// walks the form in reading order with a visible ring on every stop; the walk-in with a
/// request is recorded with Enter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_keyboard_alone_a_walk_in_is_recorded_in_reading_order() {
    if !available() {
        eprintln!("skipped: no /usr/bin/chromium or chromedriver (.ci/run installs them)");
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let (one, her) = offline_laptop_knowing_her(tmp.path());
    let daemon = Daemon::start(&one);
    let b = Browser::start(true).await;
    b.client.goto(&daemon.login_url(&one)).await.expect("login");
    b.client
        .goto(&daemon.url("/accueillir"))
        .await
        .expect("page");
    press(&b, TAB).await;
    let (first, _, ring) = focused(&b).await;
    assert_eq!(first, "skip", "the skip link comes first");
    assert!(ring, "the skip link shows its focus");
    press(&b, ENTER).await;
    press(&b, TAB).await;
    assert_eq!(
        focused(&b).await.0,
        "recherche",
        "the skip link leads to the form"
    );
    press(&b, "lefe").await;
    let radio = format!("personne-{her}");
    appears(&b, &radio, "search as she types found nobody").await;
    press(&b, TAB).await;
    assert_eq!(focused(&b).await.0, "chercher");
    // The persons are one radio group: Tab enters it at the checked choice, an arrow moves.
    press(&b, TAB).await;
    assert_eq!(
        focused(&b).await,
        ("personne-anonyme".to_owned(), true, true)
    );
    press(&b, UP).await;
    assert_eq!(
        focused(&b).await,
        (radio.clone(), true, true),
        "the arrow picks her"
    );
    let order: Vec<String> = serde_json::from_value(
        b.client
            .execute(
                "return Array.from(document.querySelectorAll('#form-accueil [id]')).map(e => e.id);",
                vec![],
            )
            .await
            .expect("ids"),
    )
    .expect("a list");
    let at = |id: &str| order.iter().position(|o| o == id);
    let mut walked = vec![radio.clone()];
    for _ in 0..60 {
        press(&b, TAB).await;
        let (id, _, ring) = focused(&b).await;
        assert!(ring, "#{id} shows its focus");
        let (Some(now), Some(before)) = (at(&id), walked.last().and_then(|w| at(w))) else {
            panic!("#{id} is not in the form, after {walked:?}");
        };
        assert!(
            now > before,
            "#{id} comes after #{walked:?} in reading order"
        );
        walked.push(id.clone());
        match id.as_str() {
            // Closed selects change with the arrows.
            "passage" | "partenaire_1" | "theme_1" => press(&b, DOWN).await,
            "enregistrer-accueil" => break,
            _ => {}
        }
    }
    for id in [
        "nouveau_nom",
        "passage",
        "lieu",
        "partenaire_1",
        "issue_1",
        "minutes_1",
    ] {
        assert!(walked.iter().any(|w| w == id), "#{id} reached: {walked:?}");
    }
    assert_eq!(
        walked.last().map(String::as_str),
        Some("enregistrer-accueil")
    );
    press(&b, ENTER).await;
    let started = Instant::now();
    while b.client.current_url().await.expect("url").query() != Some("ok=accueil") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "Enter did not record the walk-in: {}",
            body(&b).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = agent_json(&one, &["request", "list", "--person", &her]);
    assert_eq!(
        listed["requests"].as_array().map(Vec::len),
        Some(1),
        "her walk-in and its request: {listed}"
    );
    b.quit().await;
}

/// The console in a real browser against a real `serve`: a supervisor's one-time link, her
/// password, then home and coverage (and an admin's journal) with axe-core finding nothing
/// serious, no request leaving for another host, and a screenshot of each page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_from_a_link_and_its_pages_pass_axe() {
    if !available() {
        eprintln!("skipped: no /usr/bin/chromium or chromedriver (.ci/run installs them)");
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = server(tmp.path());
    srv(
        &server,
        &[
            "user",
            "add",
            "--name",
            "sup",
            "--role",
            "supervisor",
            "--territory",
            "80",
        ],
    );
    srv(
        &server,
        &["user", "add", "--name", "admin", "--role", "admin"],
    );
    let link = srv(&server, &["user", "link", "sup"]).trim().to_owned();
    server.start_with_env(&[(SKEW, &skew())]);
    let base = format!("http://{}", server.console);
    let shots = shots_dir();
    // Scripts on for axe; the console's pages themselves have none.
    let b = Browser::start(true).await;
    let look_console = |path: &'static str, name: &'static str| {
        let (b, base, shots) = (&b, base.clone(), shots.clone());
        async move {
            b.client.goto(&format!("{base}{path}")).await.expect("page");
            let violations = b.axe().await;
            assert!(violations.is_empty(), "{path}: {violations:#?}");
            for url in b.loaded_urls().await {
                assert!(url.starts_with(&format!("{base}/")), "{path} loaded {url}");
            }
            b.screenshot(&shots.join(format!("{name}.png"))).await;
        }
    };
    b.client.goto(&link).await.expect("link");
    assert!(
        b.client.current_url().await.expect("url").path() == "/mot-de-passe",
        "the link asks for a password"
    );
    look_console("/mot-de-passe", "console-mot-de-passe").await;
    fill(&b, "mot_de_passe", "une phrase assez longue").await;
    fill(&b, "confirmation", "une phrase assez longue").await;
    submit(&b, "enregistrer-mot-de-passe", "mot-de-passe").await;
    look_console("/", "console-accueil").await;
    look_console("/couverture?territoire=80", "console-couverture").await;
    let page = body(&b).await;
    assert!(page.contains("Abbeville"), "the Somme's communes: {page}");
    click(&b, "deconnexion").await;
    look_console("/connexion", "console-connexion").await;
    let admin = srv(&server, &["user", "link", "admin"]).trim().to_owned();
    b.client.goto(&admin).await.expect("link");
    fill(&b, "mot_de_passe", "une autre phrase assez longue").await;
    fill(&b, "confirmation", "une autre phrase assez longue").await;
    submit(&b, "enregistrer-mot-de-passe", "mot-de-passe").await;
    look_console("/journal", "console-journal").await;
    look_console("/arrets?territoire=80", "console-arrets").await;
    look_console("/horaires?territoire=80", "console-horaires").await;
    b.quit().await;
    server.stop();
}
