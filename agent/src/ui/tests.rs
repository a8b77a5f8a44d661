//! In-process tests of the UI: the `Router` driven with `oneshot` against a temporary store,
//! no sockets, no sleeps. Not here: browser behaviour (the `tests` crate drives a browser).

use std::sync::Arc;

use crate::setup::{init_store, STORE_FILE};
use crate::sync::LinkState;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use tournee_core::actions::people::{self, NewPerson, PersonUpdate};
use tournee_core::clock::{Clock, SystemClock};
use tournee_core::model::{Field, Kind, Outcome};
use tournee_core::refdata::RefData;
use tournee_core::store::{Identity, Store};
use tournee_core::views::{self, RequestFilter};
use tournee_store::SqliteStore;
use tower::ServiceExt;

use super::auth::{issue_token, COOKIE};
use super::{router, UiState};

const HOST: &str = "127.0.0.1:4480";
const NAME: &str = "Mme Zoé Lefèvre";
const PHONE: &str = "06 12 34 56 78";

struct Fixture {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    key: String,
    app: Router,
}

fn identity(device: u32) -> Identity {
    Identity {
        device,
        unit: "bus-80-1".into(),
        territory: "80".into(),
    }
}

fn new_store(device: u32) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tmp");
    init_store(dir.path(), &identity(device), None).expect("init");
    let store = SqliteStore::open(&dir.path().join(STORE_FILE)).expect("open");
    (dir, store)
}

fn fixture_from(dir: tempfile::TempDir) -> Fixture {
    let key = super::auth::ensure_key(dir.path()).expect("key");
    let (_tx, link) = tokio::sync::watch::channel(LinkState::default());
    let id = SqliteStore::open(&dir.path().join(STORE_FILE))
        .and_then(|s| s.identity())
        .expect("identity");
    let addr = HOST.parse().expect("addr");
    let state = UiState::open(
        dir.path(),
        id,
        Arc::new(SystemClock),
        link,
        key.clone(),
        addr,
    )
    .expect("state");
    Fixture {
        dir: dir.path().to_owned(),
        _dir: dir,
        key,
        app: router(state),
    }
}

fn fixture() -> Fixture {
    let (dir, store) = new_store(1);
    drop(store);
    fixture_from(dir)
}

fn encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Fixture {
    fn get(&self, uri: &str) -> Request<Body> {
        Request::get(uri)
            .header(header::HOST, HOST)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .body(Body::empty())
            .expect("request")
    }

    fn post(&self, uri: &str, form: &[(&str, &str)]) -> Request<Body> {
        Request::post(uri)
            .header(header::HOST, HOST)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(encode(form)))
            .expect("request")
    }

    async fn send(&self, req: Request<Body>) -> Response {
        self.app.clone().oneshot(req).await.expect("response")
    }

    async fn page(&self, uri: &str) -> String {
        let resp = self.send(self.get(uri)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{uri}");
        body(resp).await
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.join(STORE_FILE)).expect("open")
    }
}

async fn body(resp: Response) -> String {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn location(resp: &Response) -> &str {
    resp.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn today() -> chrono::NaiveDate {
    tournee_core::time::paris_date(i64::try_from(SystemClock.now_ms() / 1000).unwrap_or(0))
        .expect("today")
}

fn a_partner() -> String {
    RefData::get()
        .partners()
        .iter()
        .find(|p| p.valid_on(today()))
        .expect("a partner")
        .code
        .clone()
}

fn a_theme() -> String {
    RefData::get().themes()[0].code.clone()
}

#[tokio::test]
async fn without_a_session_or_key_every_page_is_401_in_french() {
    let f = fixture();
    for uri in ["/", "/demandes", "/conflits", "/synchronisation"] {
        let req = Request::get(uri)
            .header(header::HOST, HOST)
            .body(Body::empty())
            .expect("req");
        let resp = f.send(req).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert!(body(resp).await.contains("tournee-agent ui"), "{uri}");
    }
    let wrong = Request::get("/")
        .header(header::HOST, HOST)
        .header(header::AUTHORIZATION, "Bearer not-the-key")
        .body(Body::empty())
        .expect("req");
    assert_eq!(f.send(wrong).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(f.send(f.get("/")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_one_time_token_opens_a_session_once() {
    let f = fixture();
    let token = issue_token(&f.dir, SystemClock.now_ms()).expect("token");
    let stored = std::fs::read_to_string(f.dir.join(super::auth::TOKEN_FILE)).expect("file");
    assert!(!stored.contains(&token), "only the token's hash is kept");
    let login = |t: &str| {
        Request::get(format!("/connexion?jeton={t}"))
            .header(header::HOST, HOST)
            .body(Body::empty())
            .expect("req")
    };
    let resp = f.send(login(&token)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/");
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_owned();
    assert!(cookie.starts_with(&format!("{COOKIE}=")), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let session = cookie.split(';').next().expect("pair").to_owned();
    let with_cookie = Request::get("/")
        .header(header::HOST, HOST)
        .header(header::COOKIE, &session)
        .body(Body::empty())
        .expect("req");
    assert_eq!(f.send(with_cookie).await.status(), StatusCode::OK);
    assert_eq!(
        f.send(login(&token)).await.status(),
        StatusCode::UNAUTHORIZED,
        "a token is used once"
    );
    let forged = Request::get("/")
        .header(header::HOST, HOST)
        .header(header::COOKIE, format!("{COOKIE}=0000"))
        .body(Body::empty())
        .expect("req");
    assert_eq!(f.send(forged).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn foreign_hosts_and_cross_site_posts_are_refused_and_headers_are_set() {
    let f = fixture();
    let mut req = f.get("/");
    req.headers_mut()
        .insert(header::HOST, "evil.example:4480".parse().expect("host"));
    let resp = f.send(req).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().contains_key(header::CONTENT_SECURITY_POLICY));

    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let mut req = f.post("/demandes/00000000-0000-0000-0000-000000000000", &[]);
        req.headers_mut().insert(name, value.parse().expect("v"));
        assert_eq!(f.send(req).await.status(), StatusCode::FORBIDDEN, "{value}");
    }
    let mut req = f.post("/accueillir", &[]);
    req.headers_mut().remove("sec-fetch-site");
    req.headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().expect("o"));
    assert_eq!(f.send(req).await.status(), StatusCode::FORBIDDEN);

    for host in ["localhost:4480", "[::1]:4480"] {
        let mut req = f.get("/");
        req.headers_mut()
            .insert(header::HOST, host.parse().expect("host"));
        assert_eq!(f.send(req).await.status(), StatusCode::OK, "{host}");
    }
    let resp = f.send(f.get("/")).await;
    let h = resp.headers();
    let get = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert_eq!(get(header::CONTENT_SECURITY_POLICY), super::guard::CSP);
    assert!(get(header::CONTENT_SECURITY_POLICY).contains("default-src 'none'"));
    assert_eq!(get(header::X_FRAME_OPTIONS), "DENY");
    assert_eq!(get(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(get(header::REFERRER_POLICY), "no-referrer");
    assert_eq!(get(header::CACHE_CONTROL), "no-store");
    let js = f.send(f.get("/assets/htmx-2.0.11.min.js")).await;
    assert_eq!(js.status(), StatusCode::OK);
    let cache = js.headers().get(header::CACHE_CONTROL).cloned();
    assert_eq!(
        cache.as_ref().and_then(|v| v.to_str().ok()),
        Some("public, max-age=31536000, immutable")
    );
}

async fn walk_in(f: &Fixture, outcome: &str) -> Response {
    let (partner, theme) = (a_partner(), a_theme());
    let form = [
        ("recherche", ""),
        ("personne", "nouvelle"),
        ("nouveau_nom", NAME),
        ("nouveau_telephone", PHONE),
        ("nouveau_commune", "80021"),
        ("nouveau_adresse", "3 rue des Lilas"),
        ("passage", ""),
        ("commune", "80021"),
        ("lieu", "domicile"),
        ("partenaire_1", partner.as_str()),
        ("theme_1", theme.as_str()),
        ("niveau_1", "accompagnement"),
        ("issue_1", outcome),
        ("minutes_1", "20"),
        ("partenaire_2", ""),
        ("theme_2", ""),
        ("partenaire_3", ""),
    ];
    f.send(f.post("/accueillir", &form)).await
}

#[tokio::test]
async fn a_walk_in_posted_without_javascript_is_stored_with_its_request() {
    let f = fixture();
    let resp = walk_in(&f, "resolue_sur_place").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/?ok=accueil");
    let store = f.store();
    let visits = store.records_of_kind(Kind::Visit).expect("visits");
    assert_eq!(visits.len(), 1);
    let person = visits[0].id_ref(Field::Citizen).expect("a person");
    let p = store.record(person).expect("read").expect("person");
    assert_eq!(p.text(Field::Name), Some(NAME));
    assert_eq!(p.text(Field::Phone), Some(PHONE));
    assert_eq!(visits[0].text(Field::Location), Some("domicile"));
    let requests = store.records_of_kind(Kind::Request).expect("requests");
    assert_eq!(requests.len(), 1, "only the filled request slot");
    assert_eq!(requests[0].id_ref(Field::Visit), Some(visits[0].id));
    assert_eq!(requests[0].int(Field::Duration), Some(20));
    let partner = a_partner();
    let bad = [
        ("personne", "nouvelle"),
        ("nouveau_nom", "Quelqu'un"),
        ("commune", "80021"),
        ("partenaire_1", partner.as_str()),
        ("theme_1", ""),
    ];
    let resp = f.send(f.post("/accueillir", &bad)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(body(resp).await.contains("Thème de la demande 1"));
    let persons = f.store().records_of_kind(Kind::Citizen).expect("persons");
    assert_eq!(persons.len(), 1, "a refused form leaves no new person");
    let home = f.page("/?ok=accueil").await;
    assert!(home.contains("Accueil enregistré"), "{home}");
    assert!(home.contains("1 personne(s) accueillie(s)"), "{home}");
}

#[tokio::test]
async fn a_pending_request_is_closed_and_another_deleted_from_the_requests_page() {
    let f = fixture();
    walk_in(&f, "en_attente_operateur").await;
    walk_in(&f, "en_attente_operateur").await;
    let pending = || {
        let filter = RequestFilter {
            pending: true,
            ..RequestFilter::default()
        };
        views::list_requests(&f.store(), filter).expect("list")
    };
    let rows = pending();
    assert_eq!(rows.len(), 2);
    let (first, second) = (rows[0].request.id, rows[1].request.id);
    let page = f.page("/demandes").await;
    assert!(
        page.contains(&format!("action=\"/demandes/{first}\"")),
        "{page}"
    );
    let resp = f
        .send(f.post(
            &format!("/demandes/{first}"),
            &[("issue", "resolue_sur_place"), ("minutes", "35")],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/demandes?ok=demande");
    let closed = f.store().record(first).expect("read").expect("request");
    assert_eq!(closed.text(Field::Outcome), Some(Outcome::Resolved.code()));
    assert_eq!(closed.int(Field::Duration), Some(35));

    let confirm = f.page(&format!("/demandes/{second}/supprimer")).await;
    assert!(confirm.contains("confirmer-suppression"), "{confirm}");
    assert!(f
        .store()
        .record(second)
        .expect("read")
        .is_some_and(|r| !r.is_deleted()));
    let resp = f
        .send(f.post(&format!("/demandes/{second}/supprimer"), &[]))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(pending().is_empty());
}

#[tokio::test]
async fn a_conflict_is_resolved_from_the_conflicts_page() {
    let (dir, mut mine) = new_store(1);
    let (_other_dir, mut other) = new_store(2);
    let now = SystemClock.now_ms();
    let new = NewPerson {
        name: "Jean D.".into(),
        ..NewPerson::default()
    };
    let (id, action) = people::add_person(now, "bus-80-1", &new).expect("person");
    let created = other.write_local(now, &action).expect("write");
    mine.apply_remote(&created, None).expect("apply");
    let rename = |store: &mut SqliteStore, name: &str| {
        let rec = store.record(id).expect("read").expect("person");
        let u = PersonUpdate {
            name: Some(name.into()),
            ..PersonUpdate::default()
        };
        let action = people::set_person(now, &rec, &u).expect("set");
        store.write_local(now + 1, &action).expect("write")
    };
    rename(&mut mine, "Jean Dupont");
    let theirs = rename(&mut other, "Jean Dupond");
    mine.apply_remote(&theirs, None).expect("apply");
    assert_eq!(mine.conflicted().expect("conflicts").len(), 1);
    drop(mine);
    let f = fixture_from(dir);

    let page = f.page("/conflits").await;
    assert!(
        page.contains("Jean Dupont") && page.contains("Jean Dupond"),
        "{page}"
    );
    assert!(
        page.contains("poste n°2"),
        "the other device by name: {page}"
    );
    assert!(page.contains("Garder cette valeur"), "{page}");
    assert!(page.contains(&format!("garder-{id}-name-1")), "{page}");
    assert!(page.contains("Conflits (1)"), "{page}");

    let resp = f
        .send(f.post(
            &format!("/conflits/{id}"),
            &[("champ", "name"), ("valeur", "Jean Dupond")],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let store = f.store();
    assert!(store.conflicted().expect("conflicts").is_empty());
    let rec = store.record(id).expect("read").expect("person");
    assert_eq!(rec.text(Field::Name), Some("Jean Dupond"));
    let again = f
        .send(f.post(
            &format!("/conflits/{id}"),
            &[("champ", "name"), ("valeur", "x")],
        ))
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "no conflict left");
}

/// Every URL a page names: href, action, src, hx-get, hx-post, formaction.
fn urls(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "action=\"", "src=\"", "hx-get=\"", "hx-post=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap_or(rest.len());
            out.push(rest[..end].to_owned());
        }
    }
    out
}

#[tokio::test]
async fn the_person_search_is_a_post_and_no_page_puts_personal_data_in_a_url() {
    let f = fixture();
    walk_in(&f, "en_attente_operateur").await;
    let person = f.store().records_of_kind(Kind::Citizen).expect("persons")[0].id;
    let welcome = f.page("/accueillir").await;
    assert!(
        welcome.contains("hx-post=\"/personnes/recherche\""),
        "{welcome}"
    );
    assert!(
        welcome.contains("formaction=\"/personnes/recherche\""),
        "{welcome}"
    );
    assert!(
        !welcome.to_lowercase().contains("method=\"get\""),
        "{welcome}"
    );
    let get = f.send(f.get("/personnes/recherche")).await;
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);

    let found = f
        .send(f.post("/personnes/recherche", &[("recherche", "lefevre")]))
        .await;
    assert_eq!(found.status(), StatusCode::OK);
    let found = body(found).await;
    assert!(
        found.contains(NAME) && found.contains(&format!("value=\"{person}\"")),
        "{found}"
    );
    let mut htmx = f.post("/personnes/recherche", &[("recherche", "zoe")]);
    htmx.headers_mut()
        .insert("hx-request", "true".parse().expect("h"));
    let fragment = body(f.send(htmx).await).await;
    assert!(
        fragment.contains(NAME) && !fragment.contains("<html"),
        "{fragment}"
    );

    let mut pages = vec![found, fragment];
    for uri in [
        "/",
        "/accueillir",
        "/demandes",
        "/semaine",
        "/synchronisation",
        "/conflits",
    ] {
        pages.push(f.page(uri).await);
    }
    pages.push(f.page(&format!("/personnes/{person}")).await);
    pages.push(f.page(&format!("/feuille?date={}", today())).await);
    for html in &pages {
        for url in urls(html) {
            let lower = url.to_lowercase();
            // (ids are hex: "06" alone could be part of one, the phone's forms cannot)
            for secret in [
                "lef",
                "zo",
                "06 12",
                "06+12",
                "06%20",
                "lilas",
                "recherche=",
            ] {
                assert!(!lower.contains(secret), "{url} names personal data");
            }
        }
    }
    assert!(pages.last().is_some_and(|p| p.contains("Feuille du jour")));
}

/// A stop and today's passage at it, written as the scheduler would (test set-up only).
fn add_passage(f: &Fixture) -> uuid::Uuid {
    use tournee_core::actions::create_record;
    use tournee_core::model::{Scope, Value};
    let mut store = f.store();
    let now = SystemClock.now_ms();
    let day = today();
    let stop = tournee_core::actions::new_id(now);
    let text = |s: &str| Value::Text(s.into());
    let create = create_record(
        stop,
        Kind::Stop,
        Scope::Territory("80".into()),
        vec![
            (Field::Commune, text("80001")),
            (Field::Label, text("Place de la mairie")),
            (Field::Address, text("1 place de la Mairie")),
        ],
    );
    store.write_local(now, &create).expect("stop");
    let (start, end) = tournee_core::time::paris_planned(
        day,
        chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("9:00"),
        chrono::NaiveTime::from_hms_opt(12, 0, 0).expect("12:00"),
    );
    let passage = tournee_core::actions::new_id(now + 1);
    let create = create_record(
        passage,
        Kind::Passage,
        Scope::Unit("bus-80-1".into()),
        vec![
            (
                Field::Round,
                Value::Id(tournee_core::actions::new_id(now + 2)),
            ),
            (Field::Stop, Value::Id(stop)),
            (Field::Date, text(&day.to_string())),
            (Field::PlannedStart, Value::Int(start)),
            (Field::PlannedEnd, Value::Int(end)),
            (Field::Status, text("planifie")),
        ],
    );
    store.write_local(now, &create).expect("passage");
    passage
}

#[tokio::test]
async fn a_passage_is_marked_held_or_cancelled_and_a_walk_in_and_workshop_recorded_at_it() {
    let f = fixture();
    let passage = add_passage(&f);
    let home = f.page("/").await;
    assert!(
        home.contains("Place de la mairie") && home.contains("09:00–12:00"),
        "{home}"
    );
    assert!(
        home.contains(&format!("id=\"effectue-{passage}\"")),
        "{home}"
    );
    let resp = f
        .send(f.post(
            &format!("/passages/{passage}"),
            &[
                ("statut", "effectue"),
                ("debut", "09:10"),
                ("fin", "11:50"),
                ("cause", ""),
            ],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let p = f.store().record(passage).expect("read").expect("passage");
    assert_eq!(p.text(Field::Status), Some("effectue"));
    assert!(p.int(Field::ActualEnd) > p.int(Field::ActualStart));
    let refused = f
        .send(f.post(
            &format!("/passages/{passage}"),
            &[("statut", "annule"), ("cause", "")],
        ))
        .await;
    assert_eq!(
        refused.status(),
        StatusCode::BAD_REQUEST,
        "a cancellation needs a cause"
    );
    let resp = f
        .send(f.post(
            &format!("/passages/{passage}"),
            &[("statut", "annule"), ("cause", "meteo")],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let p = f.store().record(passage).expect("read").expect("passage");
    assert_eq!(p.text(Field::Cause), Some("meteo"));

    let id = passage.to_string();
    let resp = f
        .send(f.post("/accueillir", &[("personne", "anonyme"), ("passage", &id)]))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let visits = f.store().records_of_kind(Kind::Visit).expect("visits");
    assert_eq!(visits[0].id_ref(Field::Passage), Some(passage));
    assert_eq!(visits[0].text(Field::Commune), Some("80001"));
    let theme = a_theme();
    let resp = f
        .send(f.post(
            "/atelier",
            &[
                ("atelier_passage", &id),
                ("atelier_theme", &theme),
                ("atelier_participants", "6"),
                ("atelier_minutes", "90"),
            ],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let w = f
        .store()
        .records_of_kind(Kind::Workshop)
        .expect("workshops");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].int(Field::Attendees), Some(6));
}

#[tokio::test]
async fn an_expired_token_is_refused_and_deleted() {
    let f = fixture();
    let long_ago = SystemClock.now_ms() - tournee_core::limits::UI_TOKEN_LIFETIME_MS - 1;
    let token = issue_token(&f.dir, long_ago).expect("token");
    let req = Request::get(format!("/connexion?jeton={token}"))
        .header(header::HOST, HOST)
        .body(Body::empty())
        .expect("req");
    assert_eq!(f.send(req).await.status(), StatusCode::UNAUTHORIZED);
    assert!(!f.dir.join(super::auth::TOKEN_FILE).exists());
}

#[tokio::test]
async fn a_person_is_edited_and_a_duplicate_merged_and_an_appointment_marked_seen() {
    let f = fixture();
    walk_in(&f, "resolue_sur_place").await;
    walk_in(&f, "resolue_sur_place").await;
    let persons = f.store().records_of_kind(Kind::Citizen).expect("persons");
    let (keep, dup) = (persons[0].id, persons[1].id);
    let resp = f
        .send(f.post(
            &format!("/personnes/{keep}"),
            &[
                ("nom", "Mme Z. Lefèvre"),
                ("telephone", ""),
                ("naissance", "1957"),
                ("commune", "80021"),
                ("adresse", ""),
            ],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let p = f.store().record(keep).expect("read").expect("person");
    assert_eq!(p.text(Field::Name), Some("Mme Z. Lefèvre"));
    assert_eq!(p.text(Field::Phone), None, "an empty phone clears it");
    assert_eq!(p.int(Field::BirthYear), Some(1957));
    assert!(f
        .page(&format!("/personnes/{keep}"))
        .await
        .contains("value=\"1957\""));
    let resp = f
        .send(f.post(
            &format!("/personnes/{keep}"),
            &[("nom", "Mme Z. Lefèvre"), ("naissance", "57")],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        body(resp)
            .await
            .contains("année de naissance : « 57 » n&#39;est pas une année"),
        "the refusal says why in French"
    );
    let p = f.store().record(keep).expect("read").expect("person");
    assert_eq!(
        p.int(Field::BirthYear),
        Some(1957),
        "a refused form changes nothing"
    );

    let found = f
        .send(f.post(
            &format!("/personnes/{keep}/doublons"),
            &[("recherche", "zoé")],
        ))
        .await;
    let found = body(found).await;
    assert!(found.contains(&format!("id=\"doublon-{dup}\"")), "{found}");
    assert!(
        !found.contains(&format!("id=\"doublon-{keep}\"")),
        "not itself: {found}"
    );
    let resp = f
        .send(f.post(
            &format!("/personnes/{keep}/fusion"),
            &[("doublon", &dup.to_string())],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), format!("/personnes/{keep}?ok=fusion"));
    let history = f.page(&format!("/personnes/{dup}")).await;
    assert!(
        history.contains("Mme Z. Lefèvre"),
        "the duplicate shows the survivor: {history}"
    );
    assert_eq!(
        history.matches("<strong>accueil</strong>").count(),
        2,
        "{history}"
    );

    let now = SystemClock.now_ms();
    let a = tournee_core::actions::NewAppointment {
        start: i64::try_from(now / 1000).expect("now") + 60,
        duration: 30,
        location: tournee_core::model::Location::Home,
        commune: "80021".into(),
        citizen: None,
        person: Some(keep),
        passage: None,
        note: None,
    };
    let (appt, action) =
        tournee_core::actions::add_appointment(&f.store(), now, "bus-80-1", &a).expect("appt");
    f.store().write_local(now, &action).expect("write");
    let home = f.page("/").await;
    assert!(home.contains(&format!("id=\"vu-{appt}\"")), "{home}");
    let resp = f
        .send(f.post(&format!("/rendez-vous/{appt}"), &[("statut", "seen")]))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let r = f.store().record(appt).expect("read").expect("appointment");
    assert_eq!(r.text(Field::Status), Some("seen"));
}

#[tokio::test]
async fn the_pending_page_shows_the_most_recent_requests_and_says_how_many_wait() {
    use tournee_core::actions::visits::{add_visit, NewVisit, VisitPlace};
    use tournee_core::actions::{add_request_in, NewRequest};
    use tournee_core::limits::UI_PENDING_SHOWN_MAX;
    use tournee_core::model::{Level, Location, Scope};
    let f = fixture();
    let mut store = f.store();
    let now = SystemClock.now_ms();
    let visit = NewVisit {
        place: VisitPlace::Commune {
            commune: "80021".into(),
            location: Location::Phone,
        },
        person: None,
        at: i64::try_from(now / 1000).expect("fits"),
    };
    let (id, action) = add_visit(&store, now, "bus-80-1", &visit).expect("visit");
    store.write_local(now, &action).expect("write");
    let total = UI_PENDING_SHOWN_MAX + 2;
    for _ in 0..total {
        let r = NewRequest {
            appointment: None,
            passage: None,
            visit: Some(id),
            partner: a_partner(),
            theme: a_theme(),
            level: Level::Information,
            outcome: Outcome::Waiting,
            minutes: None,
        };
        let (_, a) = add_request_in(Scope::Unit("bus-80-1".into()), now, &r).expect("request");
        store.write_local(now, &a).expect("write");
    }
    let page = f.page("/demandes").await;
    assert_eq!(
        page.matches("action=\"/demandes/").count(),
        UI_PENDING_SHOWN_MAX,
        "one form per request shown"
    );
    assert!(
        page.contains(&format!(
            "{total} demandes attendent une réponse ; voici les {UI_PENDING_SHOWN_MAX} plus récentes"
        )),
        "{page}"
    );
}
