//! Test harness for cross-crate scenarios: real `tournee-server` and `tournee-agent` processes
//! on real data directories and loopback QUIC, plus a fault-injecting UDP relay.
//!
//! Helpers only; the scenarios are in `tests/tests/`. Nothing here is used by the product.

pub mod browser;
pub mod relay;
pub mod sim;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary built next to the running test (`target/<profile>/NAME`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("deps dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace` (it builds every binary)",
        path.display()
    );
    path
}

/// A free UDP port on 127.0.0.1 (bound then released).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Run a command to completion.
pub fn run(cmd: &mut Command) -> Output {
    cmd.env_remove("TOURNEE_DATA").output().expect("spawn")
}

/// Run a command that must succeed; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A server data directory and, when started, its `serve` process.
#[derive(Debug)]
pub struct Server {
    /// Data directory.
    pub dir: PathBuf,
    /// UDP address it listens on.
    pub addr: SocketAddr,
    /// TCP address its web console listens on once started.
    pub console: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    /// `tournee-server init` in `dir`, listening on a free loopback port; agents are told to
    /// reach it at `public` when given (a relay), else at the listen address.
    pub fn init(dir: &Path, public: Option<SocketAddr>) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_udp_port())
            .parse()
            .expect("addr");
        let console = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free tcp port");
        let mut cmd = Command::new(bin("tournee-server"));
        cmd.arg("--data").arg(dir).args([
            "init",
            "--listen",
            &addr.to_string(),
            "--console-listen",
            &console.to_string(),
        ]);
        if let Some(p) = public {
            cmd.args(["--public-addr", &p.to_string()]);
        }
        ok(&mut cmd);
        Self {
            dir: dir.to_path_buf(),
            addr,
            console,
            child: None,
            log: dir.join("serve.log"),
        }
    }

    /// A `tournee-server` command on this data dir.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("tournee-server"));
        c.arg("--data").arg(&self.dir).args(args);
        c
    }

    /// Run a server command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(&mut self.cmd(args))
    }

    /// Add a unit.
    pub fn unit(&self, id: &str, territory: &str) {
        self.ok(&[
            "unit",
            "add",
            "--id",
            id,
            "--name",
            id,
            "--territory",
            territory,
        ]);
    }

    /// Enrol a device; returns the bundle path.
    pub fn enroll(&self, unit: &str, name: &str) -> PathBuf {
        let out = self.dir.join(format!("{name}.bundle.json"));
        self.ok(&[
            "device",
            "enroll",
            "--unit",
            unit,
            "--name",
            name,
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        out
    }

    /// Start `serve` in the background and wait until it listens.
    pub fn start(&mut self) {
        self.start_with_env(&[]);
    }

    /// Start `serve` with extra environment variables.
    pub fn start_with_env(&mut self, env: &[(&str, &str)]) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = self.cmd(&["serve"]);
        cmd.env_remove("TOURNEE_DATA")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd.spawn().expect("spawn serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !line.contains("listening") {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || Instant::now() > deadline {
                panic!("server did not start: {}", self.log_text());
            }
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        self.child = Some(child);
    }

    /// SIGTERM and wait: the clean shutdown path.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("server did not stop within 15 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// SIGKILL: the crash path.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The serve process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// True while the serve process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// What `serve` logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `digest --unit`.
    pub fn digest(&self, unit: &str) -> String {
        self.ok(&["digest", "--unit", unit]).trim().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An agent data directory.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Data directory.
    pub dir: PathBuf,
}

impl Agent {
    /// `tournee-agent init --bundle`.
    pub fn init(dir: &Path, bundle: &Path) -> Self {
        let a = Self {
            dir: dir.to_path_buf(),
        };
        a.ok(&["init", "--bundle", bundle.to_str().expect("utf-8")]);
        a
    }

    /// A `tournee-agent` command on this data dir.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("tournee-agent"));
        c.arg("--data")
            .arg(&self.dir)
            .args(args)
            .env_remove("TOURNEE_DATA");
        c
    }

    /// Run an agent command that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(&mut self.cmd(args))
    }

    /// Run an agent command, whatever its outcome.
    pub fn run(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args))
    }

    /// Record an appointment on `day` at `hhmm`; returns its id.
    pub fn add(&self, day: &str, hhmm: &str, note: &str) -> String {
        self.ok(&[
            "appointment",
            "add",
            "--start",
            &format!("{day}T{hhmm}"),
            "--duration",
            "30",
            "--location",
            "arret",
            "--commune",
            "80021",
            "--note",
            note,
        ])
        .trim()
        .to_owned()
    }

    /// `sync` that must succeed.
    pub fn sync(&self) -> String {
        self.ok(&["sync", "--timeout", "60"])
    }

    /// `digest`.
    pub fn digest(&self) -> String {
        self.ok(&["digest"]).trim().to_owned()
    }

    /// `status --format json`.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", "--format", "json"])).expect("json")
    }

    /// The agent's SQLite file (for assertions through the store).
    pub fn store_file(&self) -> PathBuf {
        self.dir.join("agent.sqlite")
    }
}

/// A day `offset` days from today, `YYYY-MM-DD`.
pub fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset)).to_string()
}

/// The `TOURNEE_CLOCK_SKEW_MS` that makes a process started now see 10:00 UTC (11:00 in
/// Paris in winter) on `day` (`YYYY-MM-DD`): scenarios pinned to a weekday of the plan.
pub fn skew_to_day(day: &str) -> String {
    let target = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .expect("a YYYY-MM-DD day")
        .and_hms_opt(10, 0, 0)
        .expect("10:00")
        .and_utc()
        .timestamp_millis();
    (target - chrono::Utc::now().timestamp_millis()).to_string()
}

/// One HTTP/1.1 GET to `addr` (`host:port`) with the session `cookie` if given, over a fresh
/// connection read to the end: the whole response, status line first.
pub fn http_get(addr: &str, path: &str, cookie: Option<&str>) -> String {
    let (head, body) = http_get_bytes(addr, path, cookie);
    format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&body))
}

/// One HTTP/1.1 GET read to the end: the status line and headers, and the body's bytes.
pub fn http_get_bytes(addr: &str, path: &str, cookie: Option<&str>) -> (String, Vec<u8>) {
    http_exchange(addr, &format!("GET {path} HTTP/1.1\r\n"), cookie, "")
}

/// One form POST from the console's own origin, read to the end like `http_get_bytes`.
pub fn http_post_form(
    addr: &str,
    path: &str,
    cookie: Option<&str>,
    form: &str,
) -> (String, Vec<u8>) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nOrigin: http://{addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        form.len()
    );
    http_exchange(addr, &head, cookie, form)
}

fn http_exchange(addr: &str, head: &str, cookie: Option<&str>, body: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{head}Host: {addr}\r\n{cookie}Connection: close\r\n\r\n{body}"
    )
    .expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let body = out.get(split + 4..).unwrap_or_default().to_vec();
    (head, body)
}

/// The console's session cookie.
pub const CONSOLE_COOKIE: &str = tournee_server::console::COOKIE;

/// One JSON document, or a panic showing what was printed instead.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not one JSON document ({e}): {s}"))
}

/// A server in `dir`/server with unit `bus-80-1` (Somme), a stop in Abbeville (80001) and a
/// weekly round on Tuesdays 09:00–12:00 from Monday 2027-01-11, its commands run with
/// `TOURNEE_CLOCK_SKEW_MS=skew`. Not started.
pub fn server_with_tuesday_round(dir: &Path, skew: &str) -> Server {
    let server = Server::init(&dir.join("server"), None);
    let srv = |args: &[&str]| ok(server.cmd(args).env("TOURNEE_CLOCK_SKEW_MS", skew));
    srv(&[
        "unit",
        "add",
        "--id",
        "bus-80-1",
        "--name",
        "Bus Est",
        "--territory",
        "80",
    ]);
    let stop = srv(&[
        "stop",
        "add",
        "--territory",
        "80",
        "--commune",
        "80001",
        "--label",
        "Place de l'Amiral Courbet",
    ]);
    srv(&[
        "round",
        "add",
        "--unit",
        "bus-80-1",
        "--name",
        "Tournée Est",
        "--from",
        "2027-01-11",
        "--every-weeks",
        "1",
        "--stop",
        &format!("{}@tue@09:00-12:00", stop.trim()),
    ]);
    server
}
