//! Input hygiene and honest messages, on real processes, real data directories and loopback
//! QUIC: bounded `--timeout`, a closed stdout, device names that read as numbers, control
//! characters at input, owner-only store files whatever the umask, enrolment into a missing
//! directory, and the messages of a laptop whose clock is far behind or that was revoked.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tournee_tests::{bin, day, ok, run, Agent, Server};

/// Exit 1, nothing on stdout, one line on stderr; returns it.
fn user_error(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "a user error: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

fn offline_agent(dir: &Path) -> Agent {
    let a = Agent {
        dir: dir.to_path_buf(),
    };
    a.ok(&[
        "init",
        "--device-id",
        "7",
        "--unit",
        "bus-80-1",
        "--territory",
        "80",
    ]);
    a
}

fn server_with_unit(dir: &Path) -> Server {
    let s = Server::init(dir, None);
    s.unit("bus-80-1", "80");
    s
}

#[test]
fn a_sync_timeout_beyond_a_day_is_a_usage_error_not_a_panic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = offline_agent(&tmp.path().join("a"));
    for t in ["18446744073709551615", "86401", "0"] {
        let out = a.run(&["sync", "--timeout", t]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--timeout {t}: {err}");
        assert!(err.contains("--timeout"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // At the bound it is accepted: the offline laptop then says it has no server (exit 1).
    let out = a.run(&["sync", "--timeout", "86400"]);
    user_error(&out);
}

/// Run with stdout a pipe whose reader is already gone (`… | head -0`).
fn with_closed_stdout(mut cmd: Command) -> Output {
    let mut child = cmd
        .env_remove("TOURNEE_DATA")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait")
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = server_with_unit(&tmp.path().join("server"));
    server.enroll("bus-80-1", "pc-a");
    let a = offline_agent(&tmp.path().join("a"));
    let d = day(2);
    for hh in ["09", "10", "11"] {
        a.add(&d, &format!("{hh}:00"), "rappel");
    }
    let agent_cmds: &[&[&str]] = &[
        &["status"],
        &["status", "--format", "json"],
        &["appointment", "list", "--date", &d],
        &["appointment", "list", "--date", &d, "--format", "json"],
        &["conflicts", "--format", "json"],
        &["export", "--format", "json"],
        &["digest"],
    ];
    for args in agent_cmds {
        let out = with_closed_stdout(a.cmd(args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "agent {args:?}: {err}");
        assert!(err.is_empty(), "agent {args:?} said: {err}");
    }
    let server_cmds: &[&[&str]] = &[
        &["unit", "list"],
        &["unit", "list", "--format", "json"],
        &["device", "list"],
        &["device", "list", "--format", "json"],
        &["export", "--format", "json"],
        &["digest"],
    ];
    for args in server_cmds {
        let out = with_closed_stdout(server.cmd(args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "server {args:?}: {err}");
        assert!(err.is_empty(), "server {args:?} said: {err}");
    }
}

fn devices(server: &Server) -> Vec<serde_json::Value> {
    let doc: serde_json::Value =
        serde_json::from_str(&server.ok(&["device", "list", "--format", "json"])).expect("json");
    doc["devices"].as_array().cloned().unwrap_or_default()
}

fn enroll_cmd(server: &Server, name: &str, out: &Path) -> Command {
    server.cmd(&[
        "device",
        "enroll",
        "--unit",
        "bus-80-1",
        "--name",
        name,
        "--out",
        out.to_str().expect("utf-8"),
    ])
}

#[test]
fn a_device_cannot_be_named_like_a_number_so_revoke_by_number_is_unambiguous() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = server_with_unit(&tmp.path().join("server"));
    let err = user_error(&run(&mut enroll_cmd(
        &server,
        "2",
        &tmp.path().join("two.json"),
    )));
    assert!(err.contains("chiffres"), "{err}");
    assert!(devices(&server).is_empty(), "nothing was enrolled");
    assert!(!tmp.path().join("two.json").exists());
    server.enroll("bus-80-1", "pc-a");
    server.enroll("bus-80-1", "pc-b");
    let out = server.ok(&["device", "revoke", "2"]);
    assert!(out.contains("pc-b"), "{out}");
    let list = devices(&server);
    assert_eq!(list[0]["status"], "active");
    assert_eq!(list[1]["status"], "revoked");
}

#[test]
fn control_characters_and_overlong_names_are_refused_at_the_server_and_nothing_is_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = server_with_unit(&tmp.path().join("server"));
    let forged = "pc-a\n2026-12-01T10:00:00Z  WARN device revoked: closing its connection";
    for name in [forged, "pc\u{1b}[31m", "pc\u{202E}a", &"p".repeat(65)] {
        let out = tmp.path().join("x.json");
        let err = user_error(&run(&mut enroll_cmd(&server, name, &out)));
        assert!(
            err.contains("caractère interdit") || err.contains("64-byte"),
            "{name:?}: {err}"
        );
        assert!(!out.exists());
    }
    assert!(devices(&server).is_empty());
    let units = |s: &Server| s.ok(&["unit", "list", "--format", "json"]);
    let before = units(&server);
    for name in ["Bus\nde la Somme", &"B".repeat(201)] {
        let err = user_error(&run(&mut server.cmd(&[
            "unit",
            "add",
            "--id",
            "bus-80-2",
            "--name",
            name,
            "--territory",
            "80",
        ])));
        assert!(err.contains("name"), "{err}");
    }
    let err = user_error(&run(&mut server.cmd(&[
        "stop",
        "add",
        "--territory",
        "80",
        "--commune",
        "80021",
        "--label",
        "Mairie",
        "--address",
        "1 place\u{2066} de la mairie",
    ])));
    assert!(err.contains("caractère interdit"), "{err}");
    assert_eq!(units(&server), before);
    assert_eq!(
        server.ok(&["export", "--format", "json"]).trim(),
        "{\"records\":[]}"
    );
}

#[test]
fn enrolling_into_a_missing_directory_registers_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = server_with_unit(&tmp.path().join("server"));
    let missing = tmp.path().join("no-such-dir").join("pc-a.json");
    let err = user_error(&run(&mut enroll_cmd(&server, "pc-a", &missing)));
    assert!(err.contains("n'existe pas"), "{err}");
    assert!(devices(&server).is_empty(), "the device stays unregistered");
    // A write that fails after the checks withdraws the enrolment. Here --out is in /proc: a
    // directory that exists, where no file can be created, not even by root (the tests may
    // run as root, so a read-only directory would not do).
    let unwritable = Path::new("/proc/tournee-hygiene-test.bundle");
    let err = user_error(&run(&mut enroll_cmd(&server, "pc-a", unwritable)));
    assert!(err.contains("n'a pas été inscrit"), "{err}");
    assert!(devices(&server).is_empty(), "the enrolment was withdrawn");
    // The name is still free, and numbers keep counting (never reused).
    server.enroll("bus-80-1", "pc-a");
    let list = devices(&server);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["actor"], 2, "number 1 is not reused");
}

/// `sh -c 'umask U; exec BIN ARGS…'`: the product process runs under that umask.
fn under_umask(umask: &str, bin_name: &str, data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(bin(bin_name))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("TOURNEE_DATA");
    c
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Wait (bounded) until every file exists.
fn wait_for_files(files: &[PathBuf]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !files.iter().all(|f| f.exists()) {
        assert!(Instant::now() < deadline, "never appeared: {files:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn store_files_config_and_data_dirs_are_owner_only_whatever_the_umask() {
    for umask in ["022", "000"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sdir = tmp.path().join("server");
        let adir = tmp.path().join("agent");
        let port = tournee_tests::free_udp_port();
        let listen = format!("127.0.0.1:{port}");
        let server = |args: &[&str]| ok(&mut under_umask(umask, "tournee-server", &sdir, args));
        server(&["init", "--listen", &listen]);
        server(&[
            "unit",
            "add",
            "--id",
            "bus-80-1",
            "--name",
            "Bus",
            "--territory",
            "80",
        ]);
        let bundle = tmp.path().join("pc-a.json");
        server(&[
            "device",
            "enroll",
            "--unit",
            "bus-80-1",
            "--name",
            "pc-a",
            "--out",
            bundle.to_str().expect("utf-8"),
        ]);
        ok(&mut under_umask(
            umask,
            "tournee-agent",
            &adir,
            &["init", "--bundle", bundle.to_str().expect("utf-8")],
        ));
        let mut serve = under_umask(umask, "tournee-server", &sdir, &["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve");
        let mut daemon = under_umask(umask, "tournee-agent", &adir, &["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run");
        let stores = [
            sdir.join("server.sqlite"),
            sdir.join("registry.sqlite"),
            adir.join("agent.sqlite"),
        ];
        // While the daemons hold them open, each store has its -wal and -shm.
        let mut files: Vec<PathBuf> = Vec::new();
        for s in &stores {
            files.extend([s.clone(), with_suffix(s, "-wal"), with_suffix(s, "-shm")]);
        }
        wait_for_files(&files);
        files.push(adir.join("agent.toml"));
        files.push(adir.join("bundle.json"));
        let modes: Vec<(PathBuf, u32)> = files.iter().map(|f| (f.clone(), mode(f))).collect();
        let _ = daemon.kill();
        let _ = daemon.wait();
        let _ = serve.kill();
        let _ = serve.wait();
        for (f, m) in modes {
            assert_eq!(m, 0o600, "umask {umask}: {} is {m:o}", f.display());
        }
        for d in [&sdir, &adir] {
            assert_eq!(mode(d), 0o700, "umask {umask}: {}", d.display());
        }
    }
}

/// Read a child's stderr lines until one satisfies `done` or the deadline passes.
fn read_until(
    reader: &mut impl BufRead,
    deadline: Instant,
    done: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        lines.push(line.trim_end().to_owned());
        if done(&line) {
            break;
        }
    }
    lines
}

#[test]
fn a_revoked_daemon_says_it_is_refused_and_waits_the_longest_delay() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = server_with_unit(&tmp.path().join("server"));
    let bundle = server.enroll("bus-80-1", "pc-a");
    let agent = Agent::init(&tmp.path().join("agent"), &bundle);
    agent.add(&day(2), "10:00", "rappel");
    let pending = agent.status()["pending_changes"].clone();
    assert_ne!(pending, 0);
    server.ok(&["device", "revoke", "pc-a"]);
    server.start();
    let mut daemon = agent
        .cmd(&["run", "--log", "info"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let mut reader = BufReader::new(daemon.stderr.take().expect("stderr"));
    let lines = read_until(&mut reader, Instant::now() + Duration::from_secs(30), |l| {
        l.contains("WARN")
    });
    let _ = daemon.kill();
    let _ = daemon.wait();
    let warn = lines
        .iter()
        .find(|l| l.contains("WARN"))
        .unwrap_or_else(|| panic!("no warning: {lines:?}"));
    assert!(warn.contains("refused by the server"), "{warn}");
    assert!(!warn.contains("unreachable"), "{warn}");
    assert!(warn.contains("retry_in_ms=60000"), "{warn}");
    assert_eq!(
        agent.status()["pending_changes"],
        pending,
        "the changes stay queued"
    );
}

/// Two daemons on one identity (a data dir copied to a second laptop, or `run` started twice):
/// the one whose connection is taken over backs off for the longest delay with a clear line,
/// instead of taking it back at once (they used to kick each other ~3 times a second forever).
#[test]
fn two_daemons_on_one_identity_do_not_kick_each_other_in_a_loop() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = server_with_unit(&tmp.path().join("server"));
    let bundle = server.enroll("bus-80-1", "pc-a");
    let first = Agent::init(&tmp.path().join("agent"), &bundle);
    first.add(&day(2), "10:00", "rappel");
    let copy = tmp.path().join("copy");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&first.dir)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(st.success(), "cp -a");
    server.start();
    let daemon = |dir: &Path| {
        let mut c = Command::new(bin("tournee-agent"));
        c.arg("--data")
            .arg(dir)
            .args(["run", "--log", "info"])
            .env_remove("RUST_LOG")
            .env_remove("TOURNEE_DATA")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c.spawn().expect("run")
    };
    let mut a = daemon(&first.dir);
    let mut a_log = BufReader::new(a.stderr.take().expect("stderr"));
    let connected = read_until(&mut a_log, Instant::now() + Duration::from_secs(30), |l| {
        l.contains("session closed") || l.contains("connected")
    });
    assert!(!connected.is_empty(), "the first daemon reached the server");
    // Its session is live once the server took its change (polled, bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.status()["pending_changes"] != 0 {
        assert!(Instant::now() < deadline, "the first daemon never synced");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut b = daemon(&copy);
    let lines = read_until(&mut a_log, Instant::now() + Duration::from_secs(30), |l| {
        l.contains("superseded")
    });
    let _ = b.kill();
    let _ = b.wait();
    let _ = a.kill();
    let _ = a.wait();
    let warn = lines
        .iter()
        .find(|l| l.contains("superseded"))
        .unwrap_or_else(|| panic!("the first daemon was not told: {lines:?}"));
    assert!(warn.contains("WARN"), "{warn}");
    assert!(warn.contains("retry_in_ms=60000"), "no quick retry: {warn}");
    assert!(
        warn.contains("tourne-t-il deux fois"),
        "the reason, in French: {warn}"
    );
}

#[test]
fn a_laptop_clock_far_behind_is_named_with_both_dates_not_an_expired_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sdir = tmp.path().join("server");
    let listen = format!("127.0.0.1:{}", tournee_tests::free_udp_port());
    // A server set up 40 days "later" than the laptop's clock: to the laptop, the server's
    // certificate is not valid yet, as when the laptop's clock is 40 days behind.
    let ahead = (40_i64 * 86_400_000).to_string();
    let server_cmd = |args: &[&str]| {
        let mut c = Command::new(bin("tournee-server"));
        c.arg("--data")
            .arg(&sdir)
            .args(args)
            .env("TOURNEE_CLOCK_SKEW_MS", &ahead);
        ok(&mut c)
    };
    server_cmd(&["init", "--listen", &listen]);
    server_cmd(&[
        "unit",
        "add",
        "--id",
        "bus-80-1",
        "--name",
        "Bus",
        "--territory",
        "80",
    ]);
    let bundle = tmp.path().join("pc-a.json");
    server_cmd(&[
        "device",
        "enroll",
        "--unit",
        "bus-80-1",
        "--name",
        "pc-a",
        "--out",
        bundle.to_str().expect("utf-8"),
    ]);
    let mut serve = Command::new(bin("tournee-server"))
        .arg("--data")
        .arg(&sdir)
        .arg("serve")
        .env_remove("TOURNEE_DATA")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut out = BufReader::new(serve.stdout.take().expect("stdout"));
    let started = read_until(&mut out, Instant::now() + Duration::from_secs(20), |l| {
        l.contains("listening")
    });
    assert!(
        started.iter().any(|l| l.contains("listening")),
        "{started:?}"
    );
    let agent = Agent::init(&tmp.path().join("agent"), &bundle);
    let result = agent.run(&["sync", "--timeout", "20"]);
    let _ = serve.kill();
    let _ = serve.wait();
    let err = user_error(&result);
    assert!(
        err.contains("horloge de cet ordinateur est en retard"),
        "{err}"
    );
    assert!(!err.contains("expired"), "{err}");
    let today = chrono::Utc::now().date_naive();
    let server_day = today + chrono::Duration::days(40);
    // Shown in Paris time: a day either side of UTC's date.
    assert!(
        (-1..=1).any(|d| err.contains(&(today + chrono::Duration::days(d)).to_string())),
        "the laptop's date: {err}"
    );
    assert!(
        err.contains(&server_day.format("%Y-%m").to_string()),
        "the certificate's date: {err}"
    );
}

/// A registry written before names were checked may hold a device name with a line break and
/// an escape sequence: `device list`, `device revoke` and every server log line show it
/// escaped, on one line.
#[test]
fn a_legacy_device_name_with_a_newline_is_shown_escaped_in_tables_and_logs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = server_with_unit(&tmp.path().join("server"));
    let bundle = server.enroll("bus-80-1", "pc-a");
    let forged = "pc-a\n2026-12-01T10:00:00Z  WARN forged line \u{1b}[2J";
    let conn = rusqlite::Connection::open(server.dir.join("registry.sqlite")).expect("registry");
    conn.execute("UPDATE devices SET name = ?1", [forged])
        .expect("legacy name");
    drop(conn);
    let agent = Agent::init(&tmp.path().join("agent"), &bundle);
    agent.add(&day(2), "10:00", "rappel");
    server.start();
    agent.sync();
    server.stop();
    let log = server.log_text();
    let session: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" session device="))
        .collect();
    assert!(!session.is_empty(), "{log}");
    assert!(
        session
            .iter()
            .all(|l| l.contains("pc-a\\u{000A}2026-12-01T10:00:00Z  WARN forged line \\u{001B}[2J")),
        "{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2026-12-01T10:00:00Z")),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "{log}");
    let table = server.ok(&["device", "list"]);
    assert_eq!(table.lines().count(), 2, "a header and one row: {table}");
    assert!(table.contains("pc-a\\u{000A}2026"), "{table}");
    let revoked = server.ok(&["device", "revoke", "1"]);
    assert_eq!(revoked.lines().count(), 1, "{revoked}");
    assert!(!revoked.contains('\u{1b}'), "{revoked}");
}

/// A laptop that bypasses its own checks (a modified agent) cannot put a line break or a bidi
/// override into the server: the server's authorization applies the same text validation.
#[test]
fn a_peer_change_holding_control_characters_is_refused_by_the_server_authorization() {
    use tournee_core::actions::{add_appointment, NewAppointment};
    use tournee_core::model::{Field, Location, Value};
    use tournee_core::reject::RejectReason;
    use tournee_core::store::{Identity, Store};
    use tournee_proto::auth::{authorize, DeviceAuth};

    let now: u64 = u64::try_from(chrono::Utc::now().timestamp_millis()).expect("now");
    let mut laptop = tournee_store::SqliteStore::open_in_memory().expect("store");
    laptop
        .set_identity(&Identity {
            device: 3,
            unit: "bus-80-1".into(),
            territory: "80".into(),
        })
        .expect("identity");
    let new = NewAppointment {
        start: i64::try_from(now / 1000).expect("s") + 86_400,
        duration: 30,
        location: Location::parse("arret").expect("location"),
        commune: "80021".into(),
        citizen: Some("Mme Martin".into()),
        person: None,
        passage: None,
        note: Some("rappeler".into()),
    };
    let (_, action) = add_appointment(&laptop, now, "bus-80-1", &new).expect("action");
    laptop.write_local(now, &action).expect("write");
    let changes = laptop.outbox_after(0, 100).expect("outbox");
    let device = DeviceAuth {
        actor: 3,
        unit: "bus-80-1".into(),
        territory: "80".into(),
    };
    let mut checked = 0;
    for (_, change) in &changes {
        // The citizen the appointment names, as the server holds it once created.
        let citizen = change
            .write
            .value
            .as_id()
            .map(|id| tournee_core::store::Referenced {
                id,
                kind: tournee_core::model::Kind::Citizen,
                scope: tournee_core::model::Scope::Unit("bus-80-1".into()),
            });
        authorize(&device, change, None, citizen.as_ref(), now)
            .expect("the honest change is taken");
        if !matches!(change.field, Field::Note | Field::Name) {
            continue;
        }
        for bad in ["a\nb", "\u{1b}]0;title\u{7}", "abc\u{202E}fed"] {
            let mut forged = change.clone();
            forged.write.value = Value::Text(bad.into());
            match authorize(&device, &forged, None, None, now) {
                Err(RejectReason::Invalid { detail }) => {
                    assert!(detail.contains("caractère interdit"), "{detail}");
                }
                other => panic!("{bad:?} in {:?} was {other:?}", change.field),
            }
            checked += 1;
        }
    }
    assert_eq!(
        checked, 6,
        "the note and the citizen's name were both tried"
    );
}
