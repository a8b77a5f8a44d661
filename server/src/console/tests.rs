//! In-process tests of the console: the router driven with `oneshot` against a real server
//! data dir (registry and store files), no sockets. Not here: a browser (the `tests` crate).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use tournee_core::actions::{add_appointment, create_record, NewAppointment};
use tournee_core::clock::{Clock, SystemClock};
use tournee_core::model::{Field, Kind, Location, Scope, Value};
use tournee_core::store::Store;
use tournee_report::queries::Queries;
use tower::ServiceExt;

use super::{router, ConsoleState, COOKIE};
use crate::accounts::Role;
use crate::config::DataDir;
use crate::registry::{Registry, Unit};

const PASSWORD: &str = "une phrase assez longue";
const NAME: &str = "Mme Zoé Lefèvre";
const PHONE: &str = "06 12 34 56 78";

struct Fixture {
    _dir: tempfile::TempDir,
    data: DataDir,
    app: Router,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let data = DataDir::new(dir.path().join("server"));
        let any = ([127, 0, 0, 1], 0).into();
        crate::admin::init_server(&data, &SystemClock, any, Vec::new(), any).expect("init");
        let reg = Registry::open(&data.registry()).expect("registry");
        reg.add_unit(&Unit {
            id: "bus-80-1".into(),
            name: "Bus Est Somme".into(),
            territory: "80".into(),
            kind: "bus".into(),
        })
        .expect("unit");
        let now = SystemClock.now_ms();
        for (name, role, t) in [
            ("admin", Role::Admin, vec![]),
            ("planif80", Role::Scheduler, vec!["80".to_owned()]),
            ("sup80", Role::Supervisor, vec!["80".to_owned()]),
            ("sup59", Role::Supervisor, vec!["59".to_owned()]),
        ] {
            let u = reg.add_user(name, role, &t, now).expect("user");
            reg.set_password(u.id, PASSWORD).expect("password");
        }
        // A stop of the Somme, and a home visit for a named person with a phone.
        let mut store = data.open_store().expect("store");
        let stop = create_record(
            uuid::Uuid::now_v7(),
            Kind::Stop,
            Scope::Territory("80".into()),
            vec![
                (Field::Commune, Value::Text("80021".into())),
                (Field::Label, Value::Text("Place de la mairie".into())),
            ],
        );
        store.write_local(now, &stop).expect("stop");
        let visit = NewAppointment {
            start: i64::try_from(now / 1000).expect("fits"),
            duration: 30,
            location: Location::Home,
            commune: "80021".into(),
            citizen: Some(NAME.into()),
            person: None,
            passage: None,
            note: Some(format!("rappeler au {PHONE}")),
        };
        let (_, action) = add_appointment(&store, now, "bus-80-1", &visit).expect("visit");
        store.write_local(now, &action).expect("write");
        let app = router(ConsoleState::new(data.clone(), Arc::new(SystemClock)));
        Self {
            _dir: dir,
            data,
            app,
        }
    }

    fn registry(&self) -> Registry {
        Registry::open(&self.data.registry()).expect("registry")
    }

    async fn send(&self, req: Request<Body>) -> Response {
        self.app.clone().oneshot(req).await.expect("response")
    }

    async fn get(&self, uri: &str, cookie: Option<&str>) -> Response {
        let mut r = Request::get(uri).header(header::HOST, "console.example.fr");
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, format!("{COOKIE}={c}"));
        }
        self.send(r.body(Body::empty()).expect("request")).await
    }

    async fn post(&self, uri: &str, form: &str, cookie: Option<&str>, site: &str) -> Response {
        let mut r = Request::post(uri)
            .header(header::HOST, "console.example.fr")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", site);
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, format!("{COOKIE}={c}"));
        }
        self.send(r.body(Body::from(form.to_owned())).expect("request"))
            .await
    }

    /// Sign in as `name` with the test password; the session id.
    async fn sign_in(&self, name: &str) -> String {
        let resp = self
            .post(
                "/connexion",
                &format!("nom={name}&mot_de_passe={}", PASSWORD.replace(' ', "+")),
                None,
                "same-origin",
            )
            .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{name} signs in");
        session_of(&resp).expect("a session cookie")
    }
}

fn session_of(resp: &Response) -> Option<String> {
    let c = resp.headers().get(header::SET_COOKIE)?.to_str().ok()?;
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    c.strip_prefix(&format!("{COOKIE}="))?
        .split(';')
        .next()
        .map(str::to_owned)
}

async fn body(resp: Response) -> String {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn location(resp: &Response) -> &str {
    resp.headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_one_time_link_opens_a_session_that_sets_the_password_then_sign_in_works() {
    let f = Fixture::new();
    let now = SystemClock.now_ms();
    let reg = f.registry();
    reg.add_user("nouveau", Role::Supervisor, &["80".into()], now)
        .expect("user");
    let token = reg.issue_link("nouveau", now).expect("link");
    let resp = f.get(&format!("/connexion/lien?jeton={token}"), None).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/mot-de-passe");
    let session = session_of(&resp).expect("session");
    let page = body(f.get("/mot-de-passe", Some(&session)).await).await;
    assert!(page.contains("nouveau"), "{page}");
    let resp = f
        .post(
            "/mot-de-passe",
            "mot_de_passe=une+phrase+assez+longue&confirmation=autre+chose+encore",
            Some(&session),
            "same-origin",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(body(resp)
        .await
        .contains("les deux mots de passe diffèrent"));
    let resp = f
        .post(
            "/mot-de-passe",
            "mot_de_passe=une+phrase+assez+longue&confirmation=une+phrase+assez+longue",
            Some(&session),
            "same-origin",
        )
        .await;
    assert_eq!(location(&resp), "/?ok=mot-de-passe");
    let again = f.get(&format!("/connexion/lien?jeton={token}"), None).await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN, "a link opens once");
    let fresh = f.sign_in("nouveau").await;
    let home = body(f.get("/", Some(&fresh)).await).await;
    assert!(home.contains("Somme (80)"), "{home}");
    let actions: Vec<String> = reg
        .audit_since(0)
        .expect("audit")
        .into_iter()
        .filter(|e| e.who == "nouveau")
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["sign_in.link", "password.set", "sign_in"]);
    let out = f
        .post("/deconnexion", "", Some(&fresh), "same-origin")
        .await;
    assert_eq!(location(&out), "/connexion");
    let after = f.get("/", Some(&fresh)).await;
    assert_eq!(location(&after), "/connexion", "signed out");
}

#[tokio::test]
async fn roles_and_territories_are_enforced_by_url_and_supervisors_get_no_personal_data() {
    let f = Fixture::new();
    let sup59 = f.sign_in("sup59").await;
    for uri in [
        "/couverture?territoire=80",
        "/couverture.csv?territoire=80",
        "/arrets?territoire=80",
        "/arrets",
        "/journal",
    ] {
        let resp = f.get(uri, Some(&sup59)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{uri}");
        assert!(body(resp).await.contains("Accès refusé"), "{uri}");
    }
    let sup80 = f.sign_in("sup80").await;
    let page = f.get("/couverture?territoire=80", Some(&sup80)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = body(page).await;
    assert!(page.contains("Amiens"), "the commune of the visit: {page}");
    let csv = f.get("/couverture.csv?territoire=80", Some(&sup80)).await;
    assert_eq!(csv.status(), StatusCode::OK);
    let csv = body(csv).await;
    assert!(csv.starts_with("group,key,label,"), "{csv}");
    assert!(csv.contains("commune,80021,Amiens,"), "{csv}");
    for text in [&page, &csv] {
        for personal in ["Lefèvre", "Zoé", PHONE, "rappeler"] {
            assert!(!text.contains(personal), "{personal} shown to a supervisor");
        }
    }
    let planif = f.sign_in("planif80").await;
    let stops = body(f.get("/arrets?territoire=80", Some(&planif)).await).await;
    assert!(
        stops.contains("Place de la mairie") && stops.contains("Amiens"),
        "{stops}"
    );
    let other = f.get("/arrets?territoire=59", Some(&planif)).await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let admin = f.sign_in("admin").await;
    let journal = body(f.get("/journal", Some(&admin)).await).await;
    assert!(
        journal.contains("access.refused") && journal.contains("coverage.export"),
        "{journal}"
    );
    let refused: Vec<_> = f
        .registry()
        .audit_since(0)
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "access.refused")
        .map(|e| (e.who, e.territory))
        .collect();
    assert!(
        refused.contains(&("sup59".to_owned(), Some("80".to_owned()))),
        "{refused:?}"
    );
    let anonymous = f.get("/couverture?territoire=80", None).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/connexion");
    let anonymous = f.get("/couverture.csv?territoire=80", None).await;
    assert_eq!(
        location(&anonymous),
        "/connexion",
        "no export without a session"
    );
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_repeated_failures_lock_the_account() {
    let f = Fixture::new();
    let resp = f
        .post(
            "/connexion",
            &format!("nom=sup80&mot_de_passe={}", PASSWORD.replace(' ', "+")),
            None,
            "cross-site",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get(header::SET_COOKIE).is_none());
    let h = resp.headers();
    assert!(h.get(header::CONTENT_SECURITY_POLICY).is_some_and(|v| v
        .to_str()
        .unwrap_or_default()
        .contains("frame-ancestors 'none'")));
    assert_eq!(
        h.get(header::X_FRAME_OPTIONS).map(|v| v.as_bytes()),
        Some(&b"DENY"[..])
    );
    let mut last = StatusCode::OK;
    for _ in 0..tournee_core::limits::CONSOLE_LOGIN_FAILURES_MAX {
        let r = f
            .post(
                "/connexion",
                "nom=sup80&mot_de_passe=faux",
                None,
                "same-origin",
            )
            .await;
        last = r.status();
        if last == StatusCode::TOO_MANY_REQUESTS {
            assert!(body(r).await.contains("bloqué jusqu"));
            break;
        }
        assert_eq!(last, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        last,
        StatusCode::TOO_MANY_REQUESTS,
        "locked after the failures"
    );
    let right = f
        .post(
            "/connexion",
            &format!("nom=sup80&mot_de_passe={}", PASSWORD.replace(' ', "+")),
            None,
            "same-origin",
        )
        .await;
    assert_eq!(
        right.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right one waits"
    );
}

/// The scheduler's forms: every planning URL refuses a supervisor and another territory's
/// scheduler (a POST as much as a GET), a refused form comes back with its values and the
/// reason, and a cross-site POST of a valid form changes nothing.
#[tokio::test]
async fn planning_is_for_the_territory_s_schedulers_and_refusals_are_told_in_the_form() {
    let f = Fixture::new();
    let reg = f.registry();
    let u = reg
        .add_user("planif59", Role::Scheduler, &["59".to_owned()], 0)
        .expect("user");
    reg.set_password(u.id, PASSWORD).expect("password");
    let laptop = reg
        .add_device("pc-80", "bus-80-1", "fingerprint", 0)
        .expect("device");
    let store = f.data.open_store().expect("store");
    let stop = crate::scheduling::stops_of(&store, "80").expect("stops")[0].id;
    drop(store);
    let sup80 = f.sign_in("sup80").await;
    let planif59 = f.sign_in("planif59").await;
    let planif80 = f.sign_in("planif80").await;
    let gets = [
        "/tournees?territoire=80".to_owned(),
        "/tournees/nouvelle?territoire=80".to_owned(),
        "/passages?unite=bus-80-1".to_owned(),
        "/feries?territoire=80".to_owned(),
        "/postes?territoire=80".to_owned(),
        "/conflits?territoire=80".to_owned(),
        "/visites?unite=bus-80-1".to_owned(),
        format!("/arrets/modifier?id={stop}"),
    ];
    let grid = format!(
        "unite=bus-80-1&nom=T&du=2027-01-04&toutes=1&c-{stop}-mar=09%3A00-12%3A00&action=enregistrer"
    );
    let posts = [
        ("/tournees/enregistrer", grid.clone()),
        (
            "/arrets",
            "territoire=80&commune=80021&libelle=X".to_owned(),
        ),
        ("/arrets/archiver", format!("id={stop}")),
        (
            "/feries/ajouter",
            "territoire=80&date=2027-06-04".to_owned(),
        ),
        ("/postes/inscrire", "unite=bus-80-1&nom=pc-vole".to_owned()),
        ("/postes/revoquer", format!("poste={laptop}")),
    ];
    for who in [&sup80, &planif59] {
        for uri in &gets {
            let r = f.get(uri, Some(who)).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{uri}");
        }
        for (uri, form) in &posts {
            let r = f.post(uri, form, Some(who), "same-origin").await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "POST {uri}");
        }
    }
    for uri in &gets {
        let r = f.get(uri, Some(&planif80)).await;
        assert_eq!(r.status(), StatusCode::OK, "{uri}");
    }
    let devices = f.registry().devices().expect("devices");
    assert_eq!(
        devices.len(),
        1,
        "no laptop enrolled by the refused: {devices:?}"
    );
    assert_eq!(devices[0].status, "active", "nor revoked");
    let store = f.data.open_store().expect("store");
    assert!(
        store
            .ids_of_kind(Kind::Round, None)
            .expect("rounds")
            .is_empty(),
        "nothing written by the refused"
    );
    drop(store);
    // A cross-site POST of a valid form is refused before anything is read.
    let r = f
        .post(
            "/tournees/enregistrer",
            &grid,
            Some(&planif80),
            "cross-site",
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A window that ends before it starts comes back in words, with what was typed.
    let bad = grid.replace("09%3A00-12%3A00", "12h-9h");
    let r = f
        .post(
            "/tournees/enregistrer",
            &bad,
            Some(&planif80),
            "same-origin",
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = body(r).await;
    assert!(
        page.contains("la fin (09:00) doit venir après le début (12:00)")
            && page.contains("12h-9h"),
        "{page}"
    );
    let r = f
        .post(
            "/tournees/enregistrer",
            &grid,
            Some(&planif80),
            "same-origin",
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let store = f.data.open_store().expect("store");
    assert_eq!(
        store.ids_of_kind(Kind::Round, None).expect("rounds").len(),
        1
    );
    let actions: Vec<String> = f
        .registry()
        .audit_since(0)
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"round.add".to_owned()), "{actions:?}");
    assert!(
        actions.iter().filter(|a| *a == "access.refused").count() >= 2 * gets.len(),
        "{actions:?}"
    );
}
