//! The scheduler's *Postes* page in a real browser against a real `serve`: she enrols a laptop
//! from the console (the bundle comes back once, as the form's answer), the laptop initialises
//! from it and syncs; the page then shows it seen today, with its program version and nothing
//! waiting; `device list` says the same, and
//! flags it after 3 and 7 days of silence (an injected clock). Revoking it from the page stops
//! its next sync, in words. Every page passes axe-core and is kept as a screenshot.

use tournee_tests::browser::{available, body, check_page, sign_in_from_link, submit, Browser};
use tournee_tests::{json, Agent, Server};

const SKEW: &str = "TOURNEE_CLOCK_SKEW_MS";

/// Today: the certificates the console issues are checked by TLS against the real clock.
fn skew() -> String {
    "0".into()
}

fn srv(server: &Server, args: &[&str]) -> String {
    tournee_tests::ok(server.cmd(args).env(SKEW, skew()))
}

/// Days later than `skew()`, as a skew.
fn days_later(days: i64) -> String {
    let base: i64 = skew().parse().expect("skew");
    (base + days * 24 * 3600 * 1000).to_string()
}

fn fleet_row(server: &Server, skew: &str, name: &str) -> serde_json::Value {
    let out = tournee_tests::ok(
        server
            .cmd(&["device", "list", "--format", "json"])
            .env(SKEW, skew),
    );
    json(&out)["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} in device list: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_laptop_enrolled_from_the_console_shows_its_last_contact_and_is_revoked_there() {
    if !available() {
        eprintln!("skipped: no /usr/bin/chromium or chromedriver (.ci/run installs them)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = Server::init(&tmp.path().join("server"), None);
    srv(
        &server,
        &[
            "unit",
            "add",
            "--id",
            "bus-80-1",
            "--name",
            "Bus Ouest",
            "--territory",
            "80",
        ],
    );
    srv(
        &server,
        &[
            "user",
            "add",
            "--name",
            "planif",
            "--role",
            "scheduler",
            "--territory",
            "80",
        ],
    );
    let link = srv(&server, &["user", "link", "planif"]).trim().to_owned();
    server.start_with_env(&[(SKEW, &skew())]);
    let base = format!("http://{}", server.console);
    let b = Browser::start(true).await;
    sign_in_from_link(&b, &link, "une phrase assez longue").await;
    b.client
        .goto(&format!("{base}/postes?territoire=80"))
        .await
        .expect("page");
    assert!(body(&b).await.contains("Aucun poste inscrit"));
    check_page(&b, &base, "console-postes-vide").await;

    // The enrolment form answers with the bundle itself.
    let cookie = b
        .client
        .get_named_cookie(tournee_tests::CONSOLE_COOKIE)
        .await
        .expect("session cookie");
    let cookie = format!("{}={}", cookie.name(), cookie.value());
    let console = server.console.to_string();
    let (head, bundle) = tournee_tests::http_post_form(
        &console,
        "/postes/inscrire",
        Some(&cookie),
        "unite=bus-80-1&nom=pc-ouest-1",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("attachment"), "a download: {head}");
    assert!(head.to_ascii_lowercase().contains("no-store"), "{head}");
    let path = tmp.path().join("inscription.json");
    std::fs::write(&path, &bundle).expect("bundle");
    // The same name twice is refused in the form, nothing enrolled.
    let (head, page) = tournee_tests::http_post_form(
        &console,
        "/postes/inscrire",
        Some(&cookie),
        "unite=bus-80-1&nom=pc-ouest-1",
    );
    assert!(head.starts_with("HTTP/1.1 422"), "{head}");
    assert!(
        String::from_utf8_lossy(&page).contains("pc-ouest-1"),
        "the refusal names the laptop"
    );

    // The laptop starts from that bundle and syncs.
    let laptop = Agent::init(&tmp.path().join("laptop"), &path);
    tournee_tests::ok(laptop.cmd(&["sync"]).env(SKEW, skew()));
    let row = fleet_row(&server, &skew(), "pc-ouest-1");
    assert_eq!(row["quiet"], "recent", "{row}");
    assert_eq!(row["waiting"], 0, "{row}");
    assert_eq!(row["program"], env!("CARGO_PKG_VERSION"), "{row}");
    assert_eq!(row["last_complete"], true, "{row}");

    b.client
        .goto(&format!("{base}/postes?territoire=80"))
        .await
        .expect("page");
    let page = body(&b).await;
    assert!(page.contains("pc-ouest-1"), "{page}");
    assert!(page.contains("aujourd'hui"), "{page}");
    assert!(page.contains("1 poste actif : 1 à jour"), "{page}");
    check_page(&b, &base, "console-postes").await;

    // Silence: flagged after 3 days, then 7 (the registry judges with the clock it is given).
    assert_eq!(
        fleet_row(&server, &days_later(4), "pc-ouest-1")["quiet"],
        "warn"
    );
    assert_eq!(
        fleet_row(&server, &days_later(8), "pc-ouest-1")["quiet"],
        "alert"
    );
    let table = tournee_tests::ok(server.cmd(&["device", "list"]).env(SKEW, days_later(8)));
    assert!(table.contains("(8 d)"), "{table}");

    // Revoked from the page: the next sync is refused in words, the laptop keeps its data.
    submit(&b, "revoquer-pc-ouest-1", "revoque").await;
    assert!(body(&b).await.contains("révoqué"));
    assert_eq!(
        fleet_row(&server, &skew(), "pc-ouest-1")["status"],
        "revoked"
    );
    let out = laptop.run(&["sync"]);
    assert!(!out.status.success(), "a revoked laptop cannot sync");
    let journal = srv(&server, &["audit", "--format", "json"]);
    for action in ["device.enroll", "device.revoke"] {
        assert!(journal.contains(action), "{action}: {journal}");
    }
    b.quit().await;
    server.stop();
}
