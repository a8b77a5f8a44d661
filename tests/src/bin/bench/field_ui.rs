//! The `field-year` store behind the real UI: a `tournee-agent run` daemon (its server
//! stopped: a laptop offline) serving the year's store, its pages fetched over loopback HTTP
//! with the API key — *Aujourd'hui*, a search as she types, the pending requests, a person's
//! page — timed from the request to the last byte, then the daemon's peak RSS.
//!
//! What it does not do: drive a browser (the tests do), or time the store reads alone
//! (`field.rs`). Needs `tournee-server` and `tournee-agent` built next to the bench.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use uuid::Uuid;

use super::{load_average, Report, BASE_NOW_MS, TERRITORY, UNIT};

/// Issue 13's targets.
const TARGET_PAGE_P95_MS: f64 = 50.0;
const TARGET_SEARCH_P95_MS: f64 = 20.0;
const TARGET_RSS_MB: f64 = 64.0;
/// Timed fetches of each page.
const SAMPLES: usize = 100;
/// How long the daemon may take to say its UI listens.
const START_LIMIT: Duration = Duration::from_secs(60);

/// An enrolled laptop's data dir, its server's left stopped; returns the agent's data dir.
pub fn enrolled_laptop(root: &Path) -> Result<PathBuf> {
    for name in ["tournee-server", "tournee-agent"] {
        let exe = std::env::current_exe()?;
        let dir = exe.parent().context("bench dir")?;
        if !dir.join(name).exists() {
            bail!(
                "field-year needs {name} built next to the bench ({}): run `cargo build --release --workspace` first",
                dir.display()
            );
        }
    }
    let server = tournee_tests::Server::init(&root.join("server"), None);
    server.unit(UNIT, TERRITORY);
    let bundle = server.enroll(UNIT, "portable-bus-1");
    let agent = tournee_tests::Agent::init(&root.join("agent"), &bundle);
    Ok(agent.dir)
}

/// The daemon on `dir`, its UI on a free port, "today" being the bench's day.
struct Daemon {
    child: Child,
    port: u16,
    key: String,
}

impl Daemon {
    fn start(dir: &Path) -> Result<Self> {
        let port = tournee_tests::browser::free_tcp_port();
        let config = dir.join("agent.toml");
        let mut text = std::fs::read_to_string(&config).unwrap_or_default();
        text.push_str(&format!("\nui_listen = \"127.0.0.1:{port}\"\n"));
        std::fs::write(&config, text)?;
        let now_ms = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis(),
        )?;
        let skew = i64::try_from(BASE_NOW_MS)? - now_ms;
        let mut child = tournee_tests::Agent {
            dir: dir.to_path_buf(),
        }
        .cmd(&["run", "--log", "info"])
        .env("TOURNEE_CLOCK_SKEW_MS", skew.to_string())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("start tournee-agent run")?;
        let err = child.stderr.take().context("stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("web interface listening") {
                    let _ = tx.send(());
                }
            }
        });
        let mut daemon = Self {
            child,
            port,
            key: String::new(),
        };
        if rx.recv_timeout(START_LIMIT).is_err() {
            bail!("the daemon's UI did not start within {START_LIMIT:?}");
        }
        daemon.key = std::fs::read_to_string(dir.join("ui.key"))?
            .trim()
            .to_owned();
        Ok(daemon)
    }

    /// One request over a fresh loopback connection, read to its last byte; the body.
    fn fetch(&self, method: &str, path: &str, body: &str, headers: &str) -> Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            self.key,
            body.len()
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        if !out.starts_with("HTTP/1.1 200") {
            bail!(
                "{method} {path}: {}",
                out.lines().next().unwrap_or("no answer")
            );
        }
        Ok(out)
    }

    /// (VmRSS, VmHWM) in MB.
    fn rss_mb(&self) -> Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb = |key: &str| -> Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(key))
                .with_context(|| format!("{key} in /proc/PID/status"))?;
            let n: f64 = line
                .split_whitespace()
                .nth(1)
                .context("a number")?
                .parse()?;
            Ok(n / 1024.0)
        };
        Ok((kb("VmRSS:")?, kb("VmHWM:")?))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn timed(mut f: impl FnMut(usize) -> Result<usize>) -> Result<(Vec<Duration>, usize)> {
    let mut out = Vec::with_capacity(SAMPLES);
    let mut bytes = 0;
    for i in 0..SAMPLES {
        let t = Instant::now();
        bytes = f(i)?;
        out.push(t.elapsed());
    }
    Ok((out, bytes))
}

/// Serve the store of `dir` and time its pages; `queries` are typed searches, `persons`
/// person ids to open.
pub fn run(report: &mut Report, dir: &Path, queries: &[String], persons: &[Uuid]) -> Result<()> {
    let d = Daemon::start(dir)?;
    let (idle, _) = d.rss_mb()?;
    let page = |report: &mut Report, bench: &str, target: f64, samples: (Vec<Duration>, usize)| {
        super::field::push(
            report,
            bench,
            samples.0,
            target,
            json!({ "bytes": samples.1, "over": "http" }),
        );
    };
    let today = timed(|_| Ok(d.fetch("GET", "/", "", "")?.len()))?;
    page(report, "field_ui_today_p95", TARGET_PAGE_P95_MS, today);
    let search = timed(|i| {
        let body = format!("recherche={}", queries[i % queries.len()].replace(' ', "+"));
        Ok(d.fetch(
            "POST",
            "/personnes/recherche",
            &body,
            "HX-Request: true\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        )?
        .len())
    })?;
    page(report, "field_ui_search_p95", TARGET_SEARCH_P95_MS, search);
    let pending = timed(|_| Ok(d.fetch("GET", "/demandes", "", "")?.len()))?;
    page(report, "field_ui_pending_p95", TARGET_PAGE_P95_MS, pending);
    let person = timed(|i| {
        Ok(d.fetch(
            "GET",
            &format!("/personnes/{}", persons[i % persons.len()]),
            "",
            "",
        )?
        .len())
    })?;
    page(report, "field_ui_person_p95", TARGET_PAGE_P95_MS, person);
    let (rss, peak) = d.rss_mb()?;
    report.push(
        json!({ "bench": "field_ui_daemon_rss", "rss_mb": rss, "peak_rss_mb": peak, "idle_rss_mb": idle, "target_mb": TARGET_RSS_MB, "ok": peak <= TARGET_RSS_MB, "load_average": load_average() }),
        format!("peak {peak:.1} MB (idle {idle:.1})"),
        format!("≤ {TARGET_RSS_MB} MB"),
    );
    Ok(())
}
