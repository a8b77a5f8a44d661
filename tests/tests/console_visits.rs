//! Home visits from the console in a real browser against a real `serve`: a scheduler plans a
//! visit for a new person (name, phone, address), finds her again by name for a second visit
//! with a new address; a person the laptop recorded itself is not found; the unit's laptop
//! receives both visits with the person and her new address; a supervisor may not open the
//! page and no coverage page of hers names the person. Every page passes axe-core.

use chrono::Duration;
use tournee_tests::browser::{
    appears, available, body, check_page, click, fill, sign_in_from_link, submit, Browser,
};
use tournee_tests::{json, Agent, Server};

async fn set_date(b: &Browser, id: &str, value: &str) {
    b.client
        .execute(
            &format!("document.getElementById('{id}').value = '{value}';"),
            vec![],
        )
        .await
        .expect("date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_plans_home_visits_for_persons_she_finds_and_the_laptop_receives_them() {
    if !available() {
        eprintln!("skipped: no /usr/bin/chromium or chromedriver (.ci/run installs them)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.ok(&[
        "unit",
        "add",
        "--id",
        "dom-80",
        "--name",
        "Visites Somme",
        "--territory",
        "80",
        "--kind",
        "domicile",
    ]);
    let laptop = Agent::init(
        &tmp.path().join("laptop"),
        &server.enroll("dom-80", "pc-dom"),
    );
    laptop.ok(&[
        "person",
        "add",
        "--name",
        "Mme Dulaptop",
        "--phone",
        "0611111111",
        "--commune",
        "80021",
    ]);
    for (name, role) in [("planif", "scheduler"), ("sup80", "supervisor")] {
        server.ok(&[
            "user",
            "add",
            "--name",
            name,
            "--role",
            role,
            "--territory",
            "80",
        ]);
    }
    let link = server.ok(&["user", "link", "planif"]).trim().to_owned();
    server.start();
    tournee_tests::ok(&mut laptop.cmd(&["sync"]));
    let base = format!("http://{}", server.console);
    let b = Browser::start(true).await;
    sign_in_from_link(&b, &link, "une phrase assez longue").await;
    let day1 = (chrono::Local::now().date_naive() + Duration::days(7)).to_string();
    let day2 = (chrono::Local::now().date_naive() + Duration::days(21)).to_string();

    b.client
        .goto(&format!("{base}/visites?unite=dom-80"))
        .await
        .expect("page");
    assert!(body(&b).await.contains("Aucune visite à domicile prévue"));
    check_page(&b, &base, "console-visites-vide").await;
    // A person recorded on the laptop is not the scheduler's to find.
    fill(&b, "q", "dulaptop").await;
    click(&b, "chercher").await;
    appears(&b, "aucun-resultat", "the empty search").await;
    // Refused in words: a new person needs a name.
    set_date(&b, "date", &day1).await;
    tournee_tests::browser::set_time(&b, "heure", "10:30").await;
    fill(&b, "commune", "Amiens (80021)").await;
    click(&b, "planifier-visite").await;
    appears(&b, "erreur", "the refusal").await;
    assert!(body(&b).await.contains("nom : indiquez le nom"));
    check_page(&b, &base, "console-visite-refusee").await;
    fill(&b, "nom", "Mme Quarvel").await;
    fill(&b, "telephone", "06 01 02 03 04").await;
    fill(&b, "adresse", "3 rue des Lilas").await;
    submit(&b, "planifier-visite", "visite").await;
    let page = body(&b).await;
    assert!(
        page.contains("Mme Quarvel") && page.contains("3 rue des Lilas"),
        "{page}"
    );

    // A second visit: she is found by name, her address replaced.
    fill(&b, "q", "quarvel").await;
    click(&b, "chercher").await;
    appears(&b, "personne-1", "the person found").await;
    assert!(!body(&b).await.contains("Dulaptop"));
    check_page(&b, &base, "console-visite-recherche").await;
    set_date(&b, "date", &day2).await;
    tournee_tests::browser::set_time(&b, "heure", "14:00").await;
    fill(&b, "duree", "60").await;
    fill(&b, "commune", "80021").await;
    fill(&b, "adresse", "5 rue des Roses").await;
    submit(&b, "planifier-visite", "visite").await;
    let page = body(&b).await;
    assert_eq!(page.matches("<td>Mme Quarvel<").count(), 2, "{page}");
    check_page(&b, &base, "console-visites").await;
    let journal = server.ok(&["audit", "--format", "json"]);
    assert_eq!(journal.matches("visit.plan").count(), 2, "{journal}");
    assert!(
        !journal.contains("Quarvel"),
        "no person in the journal: {journal}"
    );

    // The laptop gets both visits, for one person, at her new address.
    tournee_tests::ok(&mut laptop.cmd(&["sync"]));
    let found = json(&laptop.ok(&["person", "search", "quarvel", "--format", "json"]));
    let persons = found
        .as_array()
        .or_else(|| found["persons"].as_array())
        .expect("persons")
        .clone();
    assert_eq!(persons.len(), 1, "{found}");
    let person = persons[0]["id"].as_str().expect("id").to_owned();
    let shown = laptop.ok(&["person", "show", &person, "--format", "json"]);
    assert!(shown.contains("5 rue des Roses"), "{shown}");
    for day in [&day1, &day2] {
        let list = json(&laptop.ok(&["appointment", "list", "--date", day, "--format", "json"]));
        let text = list.to_string();
        assert!(
            text.contains("domicile") && text.contains(&person),
            "{day}: {text}"
        );
    }

    // The supervisor: no access to the page, and her coverage never names the person.
    let link = server.ok(&["user", "link", "sup80"]).trim().to_owned();
    tournee_tests::browser::sign_out(&b).await;
    sign_in_from_link(&b, &link, "une phrase assez longue").await;
    let cookie = b
        .client
        .get_named_cookie(tournee_tests::CONSOLE_COOKIE)
        .await
        .expect("cookie");
    let cookie = format!("{}={}", cookie.name(), cookie.value());
    let console = server.console.to_string();
    let (head, _) =
        tournee_tests::http_get_bytes(&console, "/visites?unite=dom-80&q=quarvel", Some(&cookie));
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let period = format!("territoire=80&du={day1}&au={day2}");
    for path in [
        format!("/couverture?{period}"),
        format!("/couverture.csv?{period}"),
        format!("/couverture/carte.svg?{period}"),
    ] {
        let (head, page) = tournee_tests::http_get_bytes(&console, &path, Some(&cookie));
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        let page = String::from_utf8_lossy(&page);
        for secret in ["Quarvel", "Lilas", "Roses", "06 01 02"] {
            assert!(!page.contains(secret), "{path} shows {secret}");
        }
    }
    b.quit().await;
    server.stop();
}
