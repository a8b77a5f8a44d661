//! The console's conflicts in a real browser against a real `serve`: two laptops of a unit
//! mark the same passage with different arrival times and write different notes on one
//! appointment, offline; the scheduler sees the passage's two times side by side with the
//! laptops' names, and only a count of the appointment's (it holds a person's data), keeps one
//! time, and both laptops then hold it with no conflict left. Every page passes axe-core.
//!
//! "Today" is Tuesday 12 January 2027 on every process (`TOURNEE_CLOCK_SKEW_MS`).

use serde_json::Value as Json;
use tournee_tests::browser::{available, body, check_page, sign_in_from_link, Browser};
use tournee_tests::{json, Agent};

const SKEW: &str = "TOURNEE_CLOCK_SKEW_MS";

fn skew() -> String {
    tournee_tests::skew_to_day("2027-01-12")
}

fn run(a: &Agent, args: &[&str]) -> String {
    tournee_tests::ok(a.cmd(args).env(SKEW, skew()))
}

fn passage_today(a: &Agent) -> Json {
    let v = json(&run(
        a,
        &[
            "passage",
            "list",
            "--date",
            "2027-01-12",
            "--format",
            "json",
        ],
    ));
    v.as_array()
        .or_else(|| v["passages"].as_array())
        .and_then(|l| l.first().cloned())
        .unwrap_or_else(|| panic!("a passage today: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_resolves_a_passage_conflict_and_only_counts_the_laptops_personal_ones() {
    if !available() {
        eprintln!("skipped: no /usr/bin/chromium or chromedriver (.ci/run installs them)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = tournee_tests::server_with_tuesday_round(tmp.path(), &skew());
    let one = Agent::init(
        &tmp.path().join("one"),
        &server.enroll("bus-80-1", "laptop-1"),
    );
    let two = Agent::init(
        &tmp.path().join("two"),
        &server.enroll("bus-80-1", "laptop-2"),
    );
    tournee_tests::ok(
        server
            .cmd(&[
                "user",
                "add",
                "--name",
                "planif",
                "--role",
                "scheduler",
                "--territory",
                "80",
            ])
            .env(SKEW, skew()),
    );
    let link = tournee_tests::ok(server.cmd(&["user", "link", "planif"]).env(SKEW, skew()))
        .trim()
        .to_owned();
    server.start_with_env(&[(SKEW, &skew())]);
    run(&one, &["sync"]);
    run(&two, &["sync"]);
    let passage = passage_today(&one)["id"].as_str().expect("id").to_owned();
    let booked = run(
        &one,
        &[
            "appointment",
            "add",
            "--start",
            "2027-01-12T10:00",
            "--duration",
            "30",
            "--location",
            "arret",
            "--commune",
            "80001",
            "--citizen",
            "Mme Secretine",
            "--passage",
            &passage,
        ],
    )
    .trim()
    .to_owned();
    run(&one, &["sync"]);
    run(&two, &["sync"]);
    // Offline, each laptop marks the passage with its own arrival, and notes the appointment.
    for (a, at, note) in [
        (&one, "2027-01-12T09:05", "digicode secret 1"),
        (&two, "2027-01-12T09:20", "digicode secret 2"),
    ] {
        run(
            a,
            &[
                "passage",
                "set",
                &passage,
                "--status",
                "effectue",
                "--actual-start",
                at,
            ],
        );
        run(a, &["appointment", "set", &booked, "--note", note]);
    }
    run(&one, &["sync"]);
    run(&two, &["sync"]);
    run(&one, &["sync"]);

    let b = Browser::start(true).await;
    sign_in_from_link(&b, &link, "une phrase assez longue").await;
    let base = format!("http://{}", server.console);
    b.client
        .goto(&format!("{base}/conflits?territoire=80"))
        .await
        .expect("page");
    let page = body(&b).await;
    assert!(page.contains("Passage du"), "{page}");
    assert!(
        page.contains("laptop-1") && page.contains("laptop-2"),
        "{page}"
    );
    assert!(page.contains("09:05") && page.contains("09:20"), "{page}");
    assert!(
        page.contains("1 conflit porte sur ce que les postes ont saisi"),
        "{page}"
    );
    for secret in ["Secretine", "digicode"] {
        assert!(!page.contains(secret), "the scheduler sees {secret}");
    }
    check_page(&b, &base, "console-conflits").await;

    // Keep the first laptop's time.
    let keep = b
        .client
        .find(fantoccini::Locator::Css(&format!(
            "button[id^='garder-{passage}-actual_start-']"
        )))
        .await
        .expect("a keep button");
    let kept = keep.text().await.expect("text");
    let kept_0905 = kept.contains("09:05");
    keep.click().await.expect("click");
    tournee_tests::browser::appears(&b, "aucun-conflit", "the page without the conflict").await;
    assert!(body(&b).await.contains("le conflit est réglé"));
    run(&one, &["sync"]);
    run(&two, &["sync"]);
    for a in [&one, &two] {
        let p = passage_today(a);
        let at = p["actual_start"].as_str().expect("actual start");
        assert_eq!(at.contains("09:05"), kept_0905, "{p}");
        assert!(
            p["conflicts"].as_array().is_none_or(|c| c.is_empty()),
            "{p}"
        );
    }
    let journal = tournee_tests::ok(server.cmd(&["audit", "--format", "json"]).env(SKEW, skew()));
    assert!(journal.contains("conflict.resolve"), "{journal}");
    assert!(!journal.contains("09:05"), "no value in the journal");
    b.quit().await;
    server.stop();
}
