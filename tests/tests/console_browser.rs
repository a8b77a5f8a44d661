//! The scheduler's console in a real browser (Debian's Chromium through WebDriver) against a
//! real `serve`: from a `user link`, she adds two stops with the commune picker, draws a
//! fortnightly round in the weekly grid, sees the preview skip Whit Monday and Ascension,
//! saves, cancels one passage; a laptop of the unit then syncs and has exactly that plan, holds
//! one passage, and a supervisor sees its commune reached on the map and downloads CSV and ODS
//! with the report's numbers. Every page passes axe-core, loads nothing from another host and
//! is kept as a screenshot.
//!
//! "Today" is Tuesday 20 April 2027 on every process (`TOURNEE_CLOCK_SKEW_MS`).

use serde_json::Value as Json;
use tournee_tests::browser::{
    available, body, check_page, choose, click, fill, sign_in_from_link, submit, Browser,
};
use tournee_tests::{json, Agent, Server};

const SKEW: &str = "TOURNEE_CLOCK_SKEW_MS";

fn skew() -> String {
    tournee_tests::skew_to_day("2027-04-20")
}

fn srv(server: &Server, args: &[&str]) -> String {
    tournee_tests::ok(server.cmd(args).env(SKEW, skew()))
}

/// Open `path` on the console, check axe and the hosts, keep a screenshot.
async fn look(b: &Browser, base: &str, path: &str, name: &str) {
    b.client.goto(&format!("{base}{path}")).await.expect("page");
    check_page(b, base, name).await;
}

/// The agent's passages on `day`, as JSON rows.
fn laptop_day(a: &Agent, day: &str) -> Vec<Json> {
    let out = tournee_tests::ok(
        a.cmd(&["passage", "list", "--date", day, "--format", "json"])
            .env(SKEW, skew()),
    );
    let v = json(&out);
    v.as_array()
        .or_else(|| v["passages"].as_array())
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_plans_a_fortnightly_round_in_the_grid_and_the_laptop_receives_it() {
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
    let laptop = Agent::init(
        &tmp.path().join("laptop"),
        &server.enroll("bus-80-1", "laptop-1"),
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

    // Two stops: one picked from the list, one typed by its name alone.
    look(&b, &base, "/arrets?territoire=80", "console-arrets-vide").await;
    fill(&b, "commune", "Abbeville (80001)").await;
    fill(&b, "libelle", "Place de l'Amiral Courbet").await;
    submit(&b, "ajouter-arret", "arret").await;
    fill(&b, "commune", "Lille").await;
    fill(&b, "libelle", "Grand-Place").await;
    click(&b, "ajouter-arret").await;
    tournee_tests::browser::appears(&b, "erreur", "the refused stop's message").await;
    let page = body(&b).await;
    assert!(
        page.contains("n'est pas une commune du territoire 80"),
        "a commune of another département is refused in words: {page}"
    );
    check_page(&b, &base, "console-arret-refuse").await;
    fill(&b, "commune", "amiens").await;
    fill(&b, "libelle", "Mairie de quartier").await;
    submit(&b, "ajouter-arret", "arret").await;
    check_page(&b, &base, "console-arrets").await;
    let stops = json(&srv(
        &server,
        &["stop", "list", "--territory", "80", "--format", "json"],
    ));
    let stop_of = |commune: &str| -> String {
        stops["stops"]
            .as_array()
            .expect("stops")
            .iter()
            .find(|s| s["commune"] == commune)
            .and_then(|s| s["id"].as_str())
            .unwrap_or_else(|| panic!("a stop in {commune}: {stops}"))
            .to_owned()
    };
    let (abbeville, amiens) = (stop_of("80001"), stop_of("80021"));

    // A fortnightly round: Mondays at Abbeville, Thursdays at Amiens, from Monday 19 April.
    look(
        &b,
        &base,
        "/tournees/nouvelle?territoire=80",
        "console-tournee-vide",
    )
    .await;
    fill(&b, "nom", "Tournée Ouest").await;
    b.client
        .execute(
            "document.getElementById('du').value = '2027-04-19';",
            vec![],
        )
        .await
        .expect("date");
    fill(&b, "toutes", "2").await;
    fill(&b, &format!("c-{abbeville}-lun"), "09:00-12:00").await;
    fill(&b, &format!("c-{amiens}-jeu"), "14h-16h30").await;
    click(&b, "apercu").await;
    tournee_tests::browser::appears(&b, "apercu-passages", "the preview").await;
    let skipped = b
        .client
        .find(fantoccini::Locator::Id("sautes"))
        .await
        .expect("skipped list")
        .text()
        .await
        .expect("text");
    assert!(skipped.contains("Lundi de Pentecôte"), "{skipped}");
    assert!(skipped.contains("Ascension"), "{skipped}");
    let rows = b
        .client
        .find_all(fantoccini::Locator::Css("#passages-prevus tbody tr"))
        .await
        .expect("rows");
    // Mondays 3 May, 31 May, 14 June (17 May is Whit Monday); Thursdays 22 April, 20 May,
    // 3 June (6 May is Ascension) — over the eight weeks from 20 April.
    assert_eq!(rows.len(), 6, "{}", body(&b).await);
    check_page(&b, &base, "console-tournee-apercu").await;
    assert!(
        json(&srv(&server, &["round", "list", "--format", "json"]))["rounds"]
            .as_array()
            .expect("rounds")
            .is_empty(),
        "a preview saves nothing"
    );
    submit(&b, "enregistrer", "tournee").await;
    check_page(&b, &base, "console-tournees").await;

    // Cancel the passage of Monday 3 May.
    let passages = json(&srv(
        &server,
        &[
            "passages",
            "--unit",
            "bus-80-1",
            "--from",
            "2027-04-20",
            "--to",
            "2027-06-30",
            "--format",
            "json",
        ],
    ));
    let list = passages["passages"].as_array().expect("passages");
    assert_eq!(list.len(), 6, "{passages}");
    let may3 = list
        .iter()
        .find(|p| p["date"] == "2027-05-03")
        .and_then(|p| p["id"].as_str())
        .expect("3 May")
        .to_owned();
    look(&b, &base, "/passages?unite=bus-80-1", "console-passages").await;
    look(
        &b,
        &base,
        &format!("/passages/changer?id={may3}"),
        "console-passage",
    )
    .await;
    choose(&b, "cause", "meteo").await;
    submit(&b, "annuler", "annule").await;
    assert!(body(&b).await.contains("annulé"));
    // The CAF and France Travail hold a permanence on board on Thursday 20 May.
    let may20 = list
        .iter()
        .find(|p| p["date"] == "2027-05-20")
        .and_then(|p| p["id"].as_str())
        .expect("20 May")
        .to_owned();
    look(
        &b,
        &base,
        &format!("/passages/changer?id={may20}"),
        "console-passage-partenaires",
    )
    .await;
    click(&b, "p-caf").await;
    click(&b, "p-france_travail").await;
    submit(&b, "enregistrer-partenaires", "partenaires").await;
    assert!(body(&b)
        .await
        .contains("Caisse d'allocations familiales, France Travail"));
    look(
        &b,
        &base,
        "/feries?territoire=80&annee=2027",
        "console-feries",
    )
    .await;

    // The laptop syncs and has exactly that plan.
    tournee_tests::ok(laptop.cmd(&["sync"]).env(SKEW, skew()));
    let may3 = laptop_day(&laptop, "2027-05-03");
    assert_eq!(may3.len(), 1, "{may3:?}");
    assert_eq!(may3[0]["status"], "annule");
    assert!(laptop_day(&laptop, "2027-05-17").is_empty(), "Whit Monday");
    assert!(laptop_day(&laptop, "2027-05-06").is_empty(), "Ascension");
    let may20 = laptop_day(&laptop, "2027-05-20");
    assert_eq!(may20.len(), 1);
    assert_eq!(may20[0]["status"], "planifie");
    assert_eq!(
        may20[0]["partners"],
        serde_json::json!(["Caisse d'allocations familiales", "France Travail"]),
        "the laptop's day names the permanence"
    );
    let timetable = srv(
        &server,
        &["timetable", "--unit", "bus-80-1", "--format", "csv"],
    );
    assert!(
        timetable.contains("\"Caisse d'allocations familiales, France Travail\""),
        "{timetable}"
    );
    assert!(
        may20[0]["planned_start"]
            .as_str()
            .is_some_and(|s| s.contains("14:00")),
        "{may20:?}"
    );
    assert_eq!(
        srv(&server, &["digest", "--unit", "bus-80-1"]).trim(),
        tournee_tests::ok(laptop.cmd(&["digest"]).env(SKEW, skew())).trim(),
        "the laptop holds the server's plan, no more, no less"
    );
    let journal = srv(&server, &["audit", "--format", "json"]);
    for action in [
        "stop.add",
        "round.add",
        "passage.cancel",
        "passage.partners",
    ] {
        assert!(journal.contains(action), "{action}: {journal}");
    }

    // The unit holds Thursday's passage at Amiens; the supervisor sees Amiens reached on the
    // map, Abbeville planned, the rest of the Somme with nothing planned, and downloads the
    // CSV and the ODS: the same numbers as `tournee-server coverage --format json`.
    let apr22 = laptop_day(&laptop, "2027-04-22");
    let held = apr22[0]["id"].as_str().expect("22 April").to_owned();
    tournee_tests::ok(
        laptop
            .cmd(&["passage", "set", &held, "--status", "effectue"])
            .env(SKEW, skew()),
    );
    tournee_tests::ok(laptop.cmd(&["sync"]).env(SKEW, skew()));
    srv(
        &server,
        &[
            "user",
            "add",
            "--name",
            "sup80",
            "--role",
            "supervisor",
            "--territory",
            "80",
        ],
    );
    let link = srv(&server, &["user", "link", "sup80"]).trim().to_owned();
    tournee_tests::browser::sign_out(&b).await;
    sign_in_from_link(&b, &link, "une autre phrase assez longue").await;
    let period = "territoire=80&du=2027-04-19&au=2027-06-30";
    look(
        &b,
        &base,
        &format!("/couverture?{period}"),
        "console-couverture-carte",
    )
    .await;
    let class_of = |insee: &'static str| {
        let b = &b;
        async move {
            b.client
                .find(fantoccini::Locator::Css(&format!(
                    "path[data-insee='{insee}']"
                )))
                .await
                .unwrap_or_else(|e| panic!("{insee} on the map: {e}"))
                .attr("class")
                .await
                .expect("class")
                .unwrap_or_default()
        }
    };
    assert_eq!(class_of("80021").await, "atteinte", "Amiens");
    assert_eq!(class_of("80001").await, "prevue", "Abbeville");
    assert_eq!(class_of("80002").await, "rien");
    let page = body(&b).await;
    assert_eq!(page.matches("class=\"atteinte\"").count(), 1, "only Amiens");
    // The time series: the week of 19 April planned one passage and held it.
    assert!(
        page.contains("<th scope=\"row\">19/04</th><td>1</td><td>1</td>"),
        "{page}"
    );
    assert_eq!(
        page.matches("<svg role=\"img\" class=\"graphique\"")
            .count(),
        4
    );
    look(
        &b,
        &base,
        &format!("/couverture?{period}&par=epci"),
        "console-couverture-epci",
    )
    .await;
    let by_epci = body(&b).await;
    assert!(
        by_epci.contains("<th scope=\"row\">CA Amiens Métropole</th><td></td><td>3</td><td>1</td>"),
        "Amiens' three Thursdays, one held: {by_epci}"
    );
    assert!(!page.contains("planif ("), "no other account shown");
    let cookie = b
        .client
        .get_named_cookie(tournee_tests::CONSOLE_COOKIE)
        .await
        .expect("session cookie");
    let cookie = format!("{}={}", cookie.name(), cookie.value());
    let console = server.console.to_string();
    let (head, csv) = tournee_tests::http_get_bytes(
        &console,
        &format!("/couverture.csv?{period}"),
        Some(&cookie),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, ods) = tournee_tests::http_get_bytes(
        &console,
        &format!("/couverture.ods?{period}"),
        Some(&cookie),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("application/vnd.oasis.opendocument.spreadsheet"),
        "{head}"
    );
    let report = json(&srv(
        &server,
        &[
            "coverage",
            "--territory",
            "80",
            "--from",
            "2027-04-19",
            "--to",
            "2027-06-30",
            "--format",
            "json",
        ],
    ));
    let columns = [
        "passages_planned",
        "passages_held",
        "passages_cancelled",
        "citizens_received",
        "requests",
    ];
    let mut csv_rows = csv::Reader::from_reader(csv.as_slice());
    let header = csv_rows.headers().expect("header").clone();
    let at = |name: &str| header.iter().position(|h| h == name).expect("column");
    let csv_of = |key: &str| -> Vec<f64> {
        csv::Reader::from_reader(csv.as_slice())
            .records()
            .map(|r| r.expect("row"))
            .find(|r| &r[0] == "commune" && &r[1] == key)
            .map(|r| {
                columns
                    .iter()
                    .map(|c| r[at(c)].parse().expect("number"))
                    .collect()
            })
            .unwrap_or_else(|| panic!("{key} in the CSV"))
    };
    use calamine::{DataType as _, Reader as _};
    let mut book: calamine::Ods<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(ods)).expect("an ODS file");
    let sheet = book.worksheet_range("couverture").expect("the sheet");
    let ods_of = |key: &str| -> Vec<f64> {
        sheet
            .rows()
            .find(|r| r[0].get_string() == Some("commune") && r[1].get_string() == Some(key))
            .map(|r| {
                columns
                    .iter()
                    .map(|c| r[at(c)].get_float().expect("a number"))
                    .collect()
            })
            .unwrap_or_else(|| panic!("{key} in the ODS"))
    };
    for key in ["80021", "80001"] {
        let row = report["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("{key} in the report"));
        let want: Vec<f64> = columns
            .iter()
            .map(|c| row[*c].as_f64().expect("count"))
            .collect();
        assert_eq!(csv_of(key), want, "CSV {key}");
        assert_eq!(ods_of(key), want, "ODS {key}");
    }
    assert_eq!(csv_of("80021")[1], 1.0, "Amiens: one passage held");
    b.quit().await;
    server.stop();
}
