//! Security and hostile-input scenarios with real processes and real quinn on loopback:
//! refused handshakes (self-signed, foreign CA, revoked) fail clearly on the agent and lose
//! nothing; revoking a connected device cuts its live connection; a live daemon receives
//! changes pushed by the server; malformed and oversized frames end only their own connection;
//! a laptop whose clock is a week ahead has its changes refused and kept, one an hour behind
//! syncs.
//!
//! Every wait has a deadline; conditions are polled rather than slept on.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use quinn::ConnectionError;
use tournee_core::limits::FRAME_BYTES_MAX;
use tournee_net::bundle::Bundle;
use tournee_net::tls;
use tournee_proto::frame::{self, FrameReader};
use tournee_proto::wire::{ClientMsg, ErrorCode, ServerMsg};
use tournee_tests::{day, Agent, Server};

/// One week, in milliseconds.
const WEEK_MS: &str = "604800000";
/// One hour behind, in milliseconds.
const HOUR_BEHIND_MS: &str = "-3600000";
/// Deadline of one network step of the raw client.
const STEP: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Poll `cond` every 50 ms until it holds; panic with `what` after `limit`.
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if cond() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not true within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

/// Lines the server logs for a connection it refuses (at the TLS handshake, or after it).
fn refusal_lines(server: &Server) -> usize {
    let log = server.log_text();
    count(&log, "handshake refused") + count(&log, "connection refused")
}

fn read_bundle(path: &Path) -> Bundle {
    Bundle::parse(&std::fs::read_to_string(path).expect("read bundle")).expect("bundle parses")
}

fn write_bundle(path: &Path, bundle: &Bundle) -> PathBuf {
    std::fs::write(path, bundle.to_json()).expect("write bundle");
    path.to_path_buf()
}

/// Appointment ids the agent lists for `date`.
fn listed(a: &Agent, date: &str) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&a.ok(&["appointment", "list", "--date", date, "--format", "json"]))
            .expect("json");
    v["appointments"]
        .as_array()
        .expect("appointments array")
        .iter()
        .filter_map(|x| x["id"].as_str().map(str::to_owned))
        .collect()
}

/// `tournee-agent sync` as an operator runs it: no `RUST_LOG`, so stderr holds only the error.
fn sync_output(a: &Agent) -> Output {
    tournee_tests::run(a.cmd(&["sync", "--timeout", "10"]).env_remove("RUST_LOG"))
}

/// A sync the server must refuse at the handshake: exit 1, one line on stderr containing every
/// word of `expect`, nothing local lost, the server up with exactly one more refusal logged.
/// Returns the line.
fn assert_refused_clearly(
    server: &mut Server,
    a: &Agent,
    date: &str,
    local: &str,
    expect: &[&str],
) -> String {
    let before = a.status();
    let refusals = refusal_lines(server);
    let started = Instant::now();
    let out = sync_output(a);
    let elapsed = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "exit 1: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    let lower = err.to_lowercase();
    for word in expect {
        assert!(lower.contains(word), "{word:?} missing from: {err}");
    }
    assert!(lower.contains("rien n'est perdu"), "{err}");
    assert!(
        elapsed < Duration::from_secs(8),
        "a refusal is final, not retried until the timeout ({elapsed:?})"
    );
    let after = a.status();
    assert_eq!(after["pending_changes"], before["pending_changes"]);
    assert!(before["pending_changes"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(after["records"], before["records"]);
    assert!(listed(a, date).contains(&local.to_owned()), "record kept");
    wait_until(Duration::from_secs(5), "server logs the refusal", || {
        refusal_lines(server) > refusals
    });
    // Give a second line (a retry, a duplicate log) the chance to show up before counting.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        refusal_lines(server),
        refusals + 1,
        "one log line per refused handshake:\n{}",
        server.log_text()
    );
    assert!(server.is_running(), "the server stays up");
    err.trim_end().to_owned()
}

/// A background process killed if the test fails before it is stopped.
#[derive(Debug)]
struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// `tournee-agent run` with `RUST_LOG=info`, stderr to a file.
    fn start(a: &Agent, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("daemon log");
        let child = a
            .cmd(&["run"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn the daemon");
        Self {
            child: Some(child),
            log,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the exit status if it ends within `limit`.
    fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Refused handshakes
// ---------------------------------------------------------------------------------------------

#[test]
fn refused_handshakes_fail_clearly_on_the_agent_and_lose_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80-1", "80");
    let good = Agent::init(&tmp.path().join("good"), &server.enroll("bus-80-1", "good"));
    server.start();
    let d = day(3);

    // (a) A device certificate that signs itself, in an otherwise genuine bundle.
    let mut forged = read_bundle(&server.enroll("bus-80-1", "mallory"));
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mallory");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).expect("self-signed certificate");
    forged.cert_pem = cert.pem();
    forged.key_pem = key.serialize_pem();
    forged.fingerprint = tls::fingerprint(cert.der()).expect("fingerprint");
    let self_signed = Agent::init(
        &tmp.path().join("self-signed"),
        &write_bundle(&tmp.path().join("self-signed.json"), &forged),
    );
    let rec = self_signed.add(&d, "09:00", "self-signed");
    let line = assert_refused_clearly(
        &mut server,
        &self_signed,
        &d,
        &rec,
        &["refused this laptop", "certificate", "another authority"],
    );
    println!("[self-signed] {line}");

    // (b) Another server's CA. First the device certificate of the other CA with our CA as
    // the trust anchor: the server refuses the laptop.
    let mut other = Server::init(&tmp.path().join("other-server"), None);
    other.unit("bus-80-1", "80");
    let foreign = read_bundle(&other.enroll("bus-80-1", "stranger"));
    let mut mixed = foreign.clone();
    mixed.server_addrs = vec![server.addr.to_string()];
    mixed.ca_pem = read_bundle(&server.dir.join("good.bundle.json")).ca_pem;
    let foreign_device = Agent::init(
        &tmp.path().join("foreign-device"),
        &write_bundle(&tmp.path().join("foreign-device.json"), &mixed),
    );
    let rec = foreign_device.add(&d, "09:30", "foreign device");
    let line = assert_refused_clearly(
        &mut server,
        &foreign_device,
        &d,
        &rec,
        &["refused this laptop", "another authority"],
    );
    println!("[foreign device certificate] {line}");

    // Then the whole bundle of the other server, pointed at ours: the laptop refuses the
    // server's certificate, and must not blame the server for refusing it.
    let mut redirected = foreign;
    redirected.server_addrs = vec![server.addr.to_string()];
    let foreign_bundle = Agent::init(
        &tmp.path().join("foreign-bundle"),
        &write_bundle(&tmp.path().join("foreign-bundle.json"), &redirected),
    );
    let rec = foreign_bundle.add(&d, "10:00", "foreign bundle");
    let line = assert_refused_clearly(
        &mut server,
        &foreign_bundle,
        &d,
        &rec,
        &["does not trust the server", "another authority"],
    );
    assert!(
        !line.contains("the server refused this laptop"),
        "the laptop refused the server, not the other way round: {line}"
    );
    println!("[foreign bundle] {line}");
    assert!(!other.is_running(), "the other server never ran");

    // (c) A device that synced once, then was revoked.
    let stolen = Agent::init(
        &tmp.path().join("stolen"),
        &server.enroll("bus-80-1", "stolen"),
    );
    stolen.add(&d, "10:30", "before revocation");
    stolen.sync();
    let rec = stolen.add(&d, "11:00", "after revocation");
    let revoked = server.ok(&["device", "revoke", "stolen"]);
    assert!(revoked.contains("revoked"), "{revoked}");
    let line = assert_refused_clearly(
        &mut server,
        &stolen,
        &d,
        &rec,
        &["refused this laptop", "revoked"],
    );
    println!("[revoked] {line}");
    // Once the server's revocation poll (500 ms) has run, the TLS handshake itself refuses it.
    std::thread::sleep(Duration::from_millis(700));
    let line = assert_refused_clearly(
        &mut server,
        &stolen,
        &d,
        &rec,
        &["refused this laptop", "revoked"],
    );
    println!("[revoked, again] {line}");

    // Nothing refused reached the server; a good laptop still syncs.
    let kept = good.add(&d, "11:30", "good laptop");
    assert!(good.sync().contains("0 refused"));
    assert!(listed(&good, &d).contains(&kept));
    assert_eq!(good.digest(), server.digest("bus-80-1"));
    let export = server.ok(&["export", "--format", "json"]);
    for text in [
        "self-signed",
        "foreign device",
        "foreign bundle",
        "after revocation",
    ] {
        assert!(!export.contains(text), "{text:?} reached the server");
    }
    assert!(export.contains("before revocation"));
    assert!(server.is_running());
    server.stop();
}

// ---------------------------------------------------------------------------------------------
// 2. A live daemon: pushes both ways, cut off on revocation, clean shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn live_daemon_gets_pushes_and_is_cut_off_when_revoked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80-1", "80");
    let a = Agent::init(
        &tmp.path().join("a"),
        &server.enroll("bus-80-1", "laptop-a"),
    );
    let b = Agent::init(
        &tmp.path().join("b"),
        &server.enroll("bus-80-1", "laptop-b"),
    );
    server.start();
    let d = day(2);

    let mut daemon = Daemon::start(&a, tmp.path().join("a-daemon.log"));
    wait_until(Duration::from_secs(15), "the daemon connects", || {
        daemon.log_text().contains("connected")
    });
    // Welcome received: the session is live (the agent records the server's time then).
    wait_until(
        Duration::from_secs(10),
        "the daemon's session starts",
        || !a.status()["last_sync"].is_null(),
    );

    // Server → daemon: B syncs a new appointment; A has it without running `sync`.
    let from_b = b.add(&d, "09:00", "pushed by the server");
    b.sync();
    let took = wait_until(Duration::from_secs(5), "B's appointment reaches A", || {
        listed(&a, &d).contains(&from_b)
    });
    println!("server push reached the daemon in {took:?}");

    // Daemon → server: a local write is sent while connected.
    let from_a = a.add(&d, "10:00", "sent by the daemon");
    let took = wait_until(Duration::from_secs(5), "A's write is acknowledged", || {
        a.status()["pending_changes"] == 0
    });
    println!("daemon pushed its local write in {took:?}");
    b.sync();
    assert!(listed(&b, &d).contains(&from_a));
    assert_eq!(a.digest(), server.digest("bus-80-1"));
    assert_eq!(b.digest(), server.digest("bus-80-1"));

    // Revocation closes the live connection.
    server.ok(&["device", "revoke", "laptop-a"]);
    let took = wait_until(
        Duration::from_secs(5),
        "the server closes the revoked device's connection",
        || {
            server
                .log_text()
                .contains("device revoked: closing its connection")
        },
    );
    println!("server closed the revoked connection {took:?} after `device revoke`");
    wait_until(
        Duration::from_secs(5),
        "the daemon sees its connection refused",
        || {
            let log = daemon.log_text();
            log.contains("refused this laptop") && log.contains("revoked")
        },
    );
    assert!(server.is_running());

    // A revoked laptop backs off instead of hammering the server: with delays doubling from
    // 0.5 s, at most 4 attempts fit in 4 s (a reset backoff would make about 10).
    let window = Instant::now();
    let before = count(&daemon.log_text(), "refused this laptop");
    while window.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let attempts = count(&daemon.log_text(), "refused this laptop") - before;
    println!("{attempts} refused reconnection attempts in 4 s after the revocation");
    assert!(
        attempts <= 5,
        "{attempts} refused attempts in 4 s: the daemon does not back off\n{}",
        daemon.log_text()
    );

    // Local data survives; SIGTERM ends the daemon cleanly.
    let local = a.add(&d, "11:00", "after revocation");
    assert!(listed(&a, &d).contains(&local));
    let status = daemon
        .terminate(Duration::from_secs(5))
        .expect("the daemon exits within 5 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "clean shutdown: {status:?}");
    assert!(!daemon.log_text().contains("panicked"));
    assert!(server.is_running());
    server.stop();
}

// ---------------------------------------------------------------------------------------------
// 3. Malformed peer input from an authenticated device
// ---------------------------------------------------------------------------------------------

/// An endpoint and connection with a valid device identity, as the agent builds them.
async fn raw_connect(bundle: &Bundle, addr: SocketAddr) -> (quinn::Endpoint, quinn::Connection) {
    let ca = tls::pem_to_der_certs(&bundle.ca_pem)
        .expect("CA PEM")
        .remove(0);
    let chain = tls::pem_to_der_certs(&bundle.cert_pem).expect("certificate PEM");
    let key = tls::pem_to_der_key(&bundle.key_pem).expect("key PEM");
    let rustls_config = tls::client_config(&ca, chain, key).expect("client TLS config");
    let config = tournee_net::transport::client_config(rustls_config).expect("client QUIC config");
    let mut endpoint =
        quinn::Endpoint::client(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("endpoint");
    endpoint.set_default_client_config(config);
    let connecting = endpoint
        .connect(addr, tls::SERVER_NAME)
        .expect("connect parameters");
    let conn = tokio::time::timeout(STEP, connecting)
        .await
        .expect("handshake in time")
        .expect("a valid device completes the handshake");
    (endpoint, conn)
}

/// What the server did with one hostile stream: its reply bytes and how it closed.
#[derive(Debug)]
struct Closed {
    reply: Vec<ServerMsg>,
    code: u64,
    reason: String,
}

/// Sends `bytes` on a fresh connection's stream (then FIN when `finish`), reads what the
/// server answers until the stream or the connection ends, and returns the close.
async fn send_hostile(bundle: &Bundle, addr: SocketAddr, bytes: &[u8], finish: bool) -> Closed {
    let (endpoint, conn) = raw_connect(bundle, addr).await;
    let (mut send, mut recv) = tokio::time::timeout(STEP, conn.open_bi())
        .await
        .expect("open_bi in time")
        .expect("stream opens");
    tokio::time::timeout(STEP, send.write_all(bytes))
        .await
        .expect("write in time")
        .expect("write");
    if finish {
        send.finish().expect("finish");
    }
    let mut reader = FrameReader::new();
    let mut reply = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(STEP, async {
        while let Ok(Some(n)) = recv.read(&mut buf).await {
            reader
                .push(&buf[..n])
                .expect("the server sends valid frames");
            while let Some(m) = reader.next_msg::<ServerMsg>().expect("valid message") {
                reply.push(m);
            }
        }
    })
    .await;
    let closed = tokio::time::timeout(STEP, conn.closed())
        .await
        .expect("the server closes the connection in time");
    endpoint.close(0u32.into(), b"bye");
    match closed {
        ConnectionError::ApplicationClosed(c) => Closed {
            reply,
            code: c.error_code.into_inner(),
            reason: String::from_utf8_lossy(&c.reason).into_owned(),
        },
        other => panic!("expected an application close, got {other:?}"),
    }
}

/// The reply must be exactly one `ServerMsg::Error` with `code`; returns its message.
fn error_reply(closed: &Closed, code: ErrorCode) -> String {
    match closed.reply.as_slice() {
        [ServerMsg::Error { code: c, message }] if *c == code => message.clone(),
        other => panic!("expected one Error {code:?} frame, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_frames_end_only_their_connection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80-1", "80");
    let raw = read_bundle(&server.enroll("bus-80-1", "raw"));
    let good = Agent::init(&tmp.path().join("good"), &server.enroll("bus-80-1", "good"));
    server.start();
    let addr = server.addr;
    let malformed = u64::from(ErrorCode::Malformed.close_code());

    // (a) A header announcing more than FRAME_BYTES_MAX: refused before any buffer grows.
    let announced = u32::try_from(FRAME_BYTES_MAX + 1).expect("fits u32");
    let mut oversized = announced.to_be_bytes().to_vec();
    oversized.extend_from_slice(&[0, 1, 2, 3]);
    let c = send_hostile(&raw, addr, &oversized, false).await;
    println!("[oversized] close {} {:?}: {:?}", c.code, c.reason, c.reply);
    assert_eq!(c.code, malformed);
    assert!(c.reason.contains("exceeds"), "{}", c.reason);
    assert!(error_reply(&c, ErrorCode::Malformed).contains("exceeds"));

    // (b) A frame cut short, then the end of the stream.
    let mut truncated = 100u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&[0; 10]);
    let c = send_hostile(&raw, addr, &truncated, true).await;
    println!("[truncated] close {} {:?}", c.code, c.reason);
    assert_eq!(c.code, malformed);
    assert!(
        c.reason.contains("ended in the middle of a frame"),
        "{}",
        c.reason
    );
    error_reply(&c, ErrorCode::Malformed);

    // (c) A well-framed payload that is not a message.
    let mut garbage = 9u32.to_be_bytes().to_vec();
    garbage.push(0);
    garbage.extend_from_slice(&[0xff; 8]);
    let c = send_hostile(&raw, addr, &garbage, false).await;
    println!("[garbage] close {} {:?}", c.code, c.reason);
    assert_eq!(c.code, malformed);
    assert!(c.reason.contains("does not decode"), "{}", c.reason);
    error_reply(&c, ErrorCode::Malformed);

    // (d) A well-formed Hello of a protocol version from the future.
    let hello = frame::encode(&ClientMsg::Hello {
        version: 99,
        cursor: 0,
        acked: 0,
        last: 0,
        chain: [0; 16],
        own: false,
        epoch: 0,
        about: tournee_proto::wire::AgentAbout::default(),
    });
    let c = send_hostile(&raw, addr, &hello, false).await;
    println!(
        "[version 99] close {} {:?}: {:?}",
        c.code, c.reason, c.reply
    );
    assert_eq!(c.code, u64::from(ErrorCode::VersionMismatch.close_code()));
    assert!(c.reason.contains("version"), "{}", c.reason);
    let message = error_reply(&c, ErrorCode::VersionMismatch);
    assert!(message.contains("99"), "{message}");
    assert!(
        message.contains("update the agent"),
        "the specific message says which side to update: {message}"
    );

    // The server logged each session's failure, and stays up.
    let log = server.log_text();
    for needle in [
        "exceeds the",
        "ended in the middle of a frame",
        "does not decode",
        "version mismatch",
    ] {
        assert_eq!(
            log.lines()
                .filter(|l| l.contains("session") && l.contains(needle))
                .count(),
            1,
            "one session line for {needle:?}:\n{log}"
        );
    }
    assert!(!log.contains("panicked"), "{log}");
    assert!(server.is_running(), "the server stays up");

    // And a good laptop still syncs.
    let d = day(1);
    let id = good.add(&d, "09:00", "after the garbage");
    assert!(good.sync().contains("0 refused"));
    assert!(listed(&good, &d).contains(&id));
    assert_eq!(good.digest(), server.digest("bus-80-1"));
    server.stop();
}

// ---------------------------------------------------------------------------------------------
// 4. Clock skew
// ---------------------------------------------------------------------------------------------

fn skewed_ok(a: &Agent, skew: &str, args: &[&str]) -> String {
    tournee_tests::ok(a.cmd(args).env("TOURNEE_CLOCK_SKEW_MS", skew))
}

fn skewed_add(a: &Agent, skew: &str, date: &str, note: &str) -> String {
    skewed_ok(
        a,
        skew,
        &[
            "appointment",
            "add",
            "--start",
            &format!("{date}T10:00"),
            "--duration",
            "30",
            "--location",
            "arret",
            "--commune",
            "80021",
            "--note",
            note,
        ],
    )
    .trim()
    .to_owned()
}

#[test]
fn a_week_ahead_is_refused_and_kept_an_hour_behind_syncs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-ahead", "80");
    server.unit("bus-behind", "80");
    let ahead = Agent::init(
        &tmp.path().join("ahead"),
        &server.enroll("bus-ahead", "ahead"),
    );
    let behind = Agent::init(
        &tmp.path().join("behind"),
        &server.enroll("bus-behind", "behind"),
    );
    server.start();

    // A week ahead: the start is two days after the laptop's (wrong) today.
    let d = day(9);
    let id = skewed_add(&ahead, WEEK_MS, &d, "from the future");
    let out = skewed_ok(&ahead, WEEK_MS, &["sync", "--timeout", "10"]);
    let sent: u64 = out
        .split_once("sent ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("sync reports what it sent");
    assert!(
        sent > 0 && out.contains(&format!("{sent} refused")),
        "{out}"
    );
    let st: serde_json::Value =
        serde_json::from_str(&skewed_ok(&ahead, WEEK_MS, &["status", "--format", "json"]))
            .expect("json");
    assert_eq!(st["rejected_changes"], sent, "every change refused: {st}");
    for r in st["rejected"].as_array().expect("rejected") {
        assert_eq!(r["record"], id.as_str());
        assert!(
            r["reason"]
                .as_str()
                .is_some_and(|s| s.contains("clock ahead")),
            "{r}"
        );
    }
    let offset = st["clock_offset_ms"].as_i64().expect("offset");
    assert!(
        (offset + 604_800_000).abs() < 5_000,
        "offset is minus a week: {offset}"
    );
    assert!(listed(&ahead, &d).contains(&id), "the record is kept");
    let table = skewed_ok(&ahead, WEEK_MS, &["status"]);
    println!("{table}");
    assert!(
        table.contains("WARNING") && table.contains("ahead of the server"),
        "{table}"
    );
    assert!(table.contains("clock ahead"), "{table}");
    let export = server.ok(&["export", "--unit", "bus-ahead", "--format", "json"]);
    assert!(!export.contains(&id), "nothing merged on the server");

    // An hour behind: stamped in the past, which is allowed.
    let id = skewed_add(&behind, HOUR_BEHIND_MS, &day(2), "from the past");
    let out = skewed_ok(&behind, HOUR_BEHIND_MS, &["sync", "--timeout", "10"]);
    assert!(out.contains("0 refused"), "{out}");
    let st: serde_json::Value = serde_json::from_str(&skewed_ok(
        &behind,
        HOUR_BEHIND_MS,
        &["status", "--format", "json"],
    ))
    .expect("json");
    assert_eq!(st["rejected_changes"], 0);
    assert_eq!(st["pending_changes"], 0);
    let offset = st["clock_offset_ms"].as_i64().expect("offset");
    assert!(
        (offset - 3_600_000).abs() < 5_000,
        "offset is an hour: {offset}"
    );
    let table = skewed_ok(&behind, HOUR_BEHIND_MS, &["status"]);
    println!("{table}");
    assert!(table.contains("behind the server"), "{table}");
    assert!(server
        .ok(&["export", "--unit", "bus-behind", "--format", "json"])
        .contains(&id));
    assert_eq!(behind.digest(), server.digest("bus-behind"));
    server.stop();
}
