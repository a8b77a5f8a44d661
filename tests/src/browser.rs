//! A real browser for the local UI's tests: Debian's Chromium, headless, driven through
//! `chromedriver` (WebDriver) with fantoccini; axe-core injected into a page to check
//! accessibility; the page's own resource timing read back to prove no request left the
//! laptop.
//!
//! Helpers only (the browser, and driving a page by element ids); the scenarios are in
//! `tests/tests/ui_browser.rs` and `console_browser.rs`. Every host but loopback is
//! made unresolvable in the browser, so a stray CDN link fails visibly as well.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value as Json};

/// axe-core, vendored unmodified (tests/vendor/README.md).
const AXE: &str = include_str!("../vendor/axe-4.14.1.min.js");

/// Longest wait for chromedriver to say it listens, in lines of its output.
const DRIVER_STARTUP_LINES_MAX: usize = 50;

/// The WCAG rule sets axe runs (RGAA AA maps onto WCAG 2.1 AA).
const AXE_TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Is a browser there to drive? (`.ci/run` installs one; a developer machine may not have it.)
pub fn available() -> bool {
    Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists()
}

/// A chromedriver process and one headless Chromium session.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    /// The WebDriver session.
    pub client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver and a browser; with `javascript` false, scripts are off in every page.
    pub async fn start(javascript: bool) -> Self {
        let port = free_tcp_port();
        let mut driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let out = driver.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let started = lines
            .by_ref()
            .take(DRIVER_STARTUP_LINES_MAX)
            .map_while(Result::ok)
            .any(|l| l.contains("started successfully"));
        assert!(started, "chromedriver did not start");
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let profile = tempfile::tempdir().expect("profile dir");
        let mut prefs = json!({});
        if !javascript {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,900".to_owned(),
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"
                .to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": "/usr/bin/chromium", "args": args, "prefs": prefs }),
        );
        let http = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(http)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a browser session");
        Self {
            driver,
            client,
            _profile: profile,
        }
    }

    /// Serious and critical axe violations on the current page, one line each (axe needs
    /// scripts: run it in a browser started with `javascript` on).
    pub async fn axe(&self) -> Vec<String> {
        self.client
            .execute(AXE, vec![])
            .await
            .expect("axe injected");
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: { type: 'tag', values: arguments[0] } })
                   .then(r => done(r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ': ' + v.help + ' — ' +
                          v.nodes.map(n => n.target.join(' ')).join(', '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![json!(AXE_TAGS)],
            )
            .await
            .expect("axe runs");
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_else(|| vec![format!("axe answered {found}")])
    }

    /// Every URL the current page loaded (itself and its resources), from its resource timing;
    /// with scripts off, the page's links, scripts, images and forms instead.
    pub async fn loaded_urls(&self) -> Vec<String> {
        let mut urls = vec![self.client.current_url().await.expect("url").to_string()];
        for tag in ["link", "script", "img", "iframe"] {
            for e in self
                .client
                .find_all(Locator::Css(tag))
                .await
                .expect("elements")
            {
                for attr in ["href", "src"] {
                    if let Some(v) = e.prop(attr).await.expect("attribute") {
                        if !v.is_empty() {
                            urls.push(v);
                        }
                    }
                }
            }
        }
        if let Ok(Json::Array(entries)) = self
            .client
            .execute(
                "return performance.getEntriesByType('resource').map(e => e.name);",
                vec![],
            )
            .await
        {
            urls.extend(entries.iter().filter_map(Json::as_str).map(str::to_owned));
        }
        urls
    }

    /// Save a screenshot of the current page as a PNG.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// End the session and the driver.
    pub async fn quit(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Click the element `id`.
pub async fn click(b: &Browser, id: &str) {
    b.client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click #{id}: {e}"));
}

/// Click a submit button and wait for the page it redirects to (its `ok=` confirmation).
pub async fn submit(b: &Browser, id: &str, ok: &str) {
    click(b, id).await;
    let want = format!("ok={ok}");
    let started = Instant::now();
    loop {
        let url = b.client.current_url().await.expect("url");
        if url.query_pairs().any(|(k, v)| k == "ok" && v == ok) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "#{id}: no {want} after the click, at {url}: {}",
            body(b).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Type `text` into the field `id`, replacing what it held.
pub async fn fill(b: &Browser, id: &str, text: &str) {
    let e = b
        .client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"));
    e.clear().await.expect("clear");
    e.send_keys(text).await.expect("type");
}

/// Set a time input's value (typing into one depends on the browser's locale).
pub async fn set_time(b: &Browser, id: &str, hhmm: &str) {
    b.client
        .execute(
            "document.getElementById(arguments[0]).value = arguments[1];",
            vec![serde_json::json!(id), serde_json::json!(hhmm)],
        )
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"));
}

/// Pick the option `value` of the select `id`.
pub async fn choose(b: &Browser, id: &str, value: &str) {
    b.client
        .find(Locator::Css(&format!("#{id} option[value='{value}']")))
        .await
        .unwrap_or_else(|e| panic!("#{id} = {value}: {e}"))
        .click()
        .await
        .expect("select");
}

/// Wait (at most 10 s) for the element `id` the page is bringing in, or fail saying `what`
/// with the page's source.
pub async fn appears(b: &Browser, id: &str, what: &str) {
    if let Err(e) = b
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id(id))
        .await
    {
        panic!("{what} ({e}): {}", body(b).await);
    }
}

/// The current page's source.
pub async fn body(b: &Browser) -> String {
    b.client.source().await.expect("source")
}

/// Screenshots land here, for people to open.
pub fn shots_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("tournee-ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    dir
}

/// The current page: axe finds nothing serious, nothing was loaded from another host than
/// `base`, and a screenshot `name.png` is kept in `shots_dir()`.
pub async fn check_page(b: &Browser, base: &str, name: &str) {
    let violations = b.axe().await;
    assert!(violations.is_empty(), "{name}: {violations:#?}");
    for url in b.loaded_urls().await {
        assert!(url.starts_with(&format!("{base}/")), "{name} loaded {url}");
    }
    b.screenshot(&shots_dir().join(format!("{name}.png"))).await;
}

/// Sign in to the console from a one-time link (`user link`), setting `password`.
pub async fn sign_in_from_link(b: &Browser, link: &str, password: &str) {
    b.client.goto(link).await.expect("link");
    fill(b, "mot_de_passe", password).await;
    fill(b, "confirmation", password).await;
    submit(b, "enregistrer-mot-de-passe", "mot-de-passe").await;
}

/// Sign out of the console and wait for its sign-in page (so that the next navigation does
/// not race the sign-out's answer).
pub async fn sign_out(b: &Browser) {
    click(b, "deconnexion").await;
    appears(b, "form-connexion", "the sign-in page after signing out").await;
}
