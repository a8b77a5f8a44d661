//! Sync under faults, with real processes: `tournee-server serve` and `tournee-agent` over
//! loopback QUIC through the fault-injecting relay (loss, duplication, reordering, bandwidth
//! limits, cuts), and SIGKILL of either side in the middle of an upload.
//!
//! Oracles (BRIEF §7): convergence (agent digest == server `digest --unit`), no loss (every
//! appointment written on the laptop is on the server with every field), nothing applied twice
//! (the server's changelog holds exactly one entry per change written), and resumption (after a
//! cut, acknowledged batches are not sent again: the server's `duplicates=` stay within a batch).
//!
//! Every wait polls a condition under a deadline; background `sync` processes are killed when a
//! test fails, so nothing hangs.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tournee_core::actions::{add_appointment, NewAppointment};
use tournee_core::limits::{BATCH_CHANGES_MAX, QUIC_IDLE_TIMEOUT_MS};
use tournee_core::model::Location;
use tournee_core::rng::SeededRng;
use tournee_core::store::{ServerStore, Store};
use tournee_store::{Durability, SqliteStore};
use tournee_tests::relay::{Faults, Relay};
use tournee_tests::{free_udp_port, Agent, Server};

const UNIT: &str = "bus-80-1";
const TERRITORY: &str = "80";
/// Upstream bandwidth of the "slow rural link" tests, in bits per second: slow enough that a
/// backlog of a few thousand appointments takes several seconds to upload.
const SLOW_UP_BPS: u64 = 80_000;

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).expect("time after 1970")
}

/// Poll `cond` every 20 ms until it holds; panic with `what` after `within`.
fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server whose enrolment bundles point at a relay in front of it, with one unit.
fn server_behind_relay(dir: &Path, faults: Faults, seed: u64) -> (Server, Relay) {
    let relay_addr: SocketAddr = format!("127.0.0.1:{}", free_udp_port())
        .parse()
        .expect("addr");
    let server = Server::init(&dir.join("server"), Some(relay_addr));
    let relay = Relay::start_on(relay_addr, server.addr, faults, seed);
    server.unit(UNIT, TERRITORY);
    (server, relay)
}

/// What a laptop recorded offline.
#[derive(Debug, Default)]
struct Backlog {
    /// Appointment ids.
    ids: Vec<String>,
    /// Field changes written (outbox entries).
    changes: u64,
}

/// Cheap, seeded, incompressible-looking text (so uploads have a realistic size).
fn noise(i: u64) -> String {
    format!("{:016x}", SeededRng::new(i).next_u64())
}

/// Record `n` appointments on the laptop the way `appointment add` does (same action builder,
/// same `write_local`), without spawning a process per appointment.
fn write_backlog(agent: &Agent, n: usize, tag: &str) -> Backlog {
    // NORMAL durability: these are test fixtures, not user actions; saves one fsync each.
    let mut store = SqliteStore::open_with(&agent.store_file(), Durability::Normal)
        .expect("open the agent store");
    let unit = store
        .identity()
        .expect("identity")
        .expect("agent initialised")
        .unit;
    let tomorrow = i64::try_from(now_ms() / 1000).expect("secs") + 86_400;
    let mut out = Backlog::default();
    for i in 0..n {
        let now = now_ms();
        let a = NewAppointment {
            start: tomorrow + (i as i64 % 32) * 900,
            duration: 30,
            location: Location::Stop,
            commune: "80021".into(),
            citizen: None,
            person: None,
            passage: None,
            note: Some(format!("{tag} #{i} {}", noise(i as u64))),
        };
        let (id, action) = add_appointment(&store, now, &unit, &a).expect("appointment action");
        let changes = store.write_local(now, &action).expect("local write");
        out.changes += changes.len() as u64;
        out.ids.push(id.to_string());
    }
    out
}

/// The head of the server's changelog: one entry per change it ever accepted.
fn changelog_head(server: &Server) -> u64 {
    SqliteStore::open(&server.dir.join("server.sqlite"))
        .expect("open the server store")
        .changelog_head()
        .expect("changelog head")
}

/// One `session` line of `serve.log`.
#[derive(Debug, Clone, Default)]
struct SessionLine {
    ok: bool,
    bytes_in: u64,
    bytes_out: u64,
    changes_in: u64,
    applied: u64,
    duplicates: u64,
}

fn sessions(server: &Server) -> Vec<SessionLine> {
    server
        .log_text()
        .lines()
        .filter(|l| l.contains(" session ") && l.contains("duplicates="))
        .map(|l| {
            let mut s = SessionLine::default();
            for (k, v) in l.split_whitespace().filter_map(|t| t.split_once('=')) {
                let n = || v.trim_matches('"').parse::<u64>().unwrap_or(0);
                match k {
                    "bytes_in" => s.bytes_in = n(),
                    "bytes_out" => s.bytes_out = n(),
                    "changes_in" => s.changes_in = n(),
                    "applied" => s.applied = n(),
                    "duplicates" => s.duplicates = n(),
                    "outcome" => s.ok = v.trim_matches('"') == "ok",
                    _ => {}
                }
            }
            s
        })
        .collect()
}

/// Record ids and the total number of field values in a canonical export.
fn export_summary(json: &str) -> (HashSet<String>, u64) {
    let v: serde_json::Value = serde_json::from_str(json).expect("export json");
    let mut ids = HashSet::new();
    let mut values = 0u64;
    for r in v["records"].as_array().expect("records") {
        ids.insert(r["id"].as_str().expect("id").to_owned());
        for sibs in r["fields"].as_object().expect("fields").values() {
            values += sibs.as_array().map_or(0, |a| a.len() as u64);
        }
    }
    (ids, values)
}

/// `tournee-agent sync` running in the background, its stderr collected as it comes.
struct BgSync {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    started: Instant,
}

impl BgSync {
    fn spawn(agent: &Agent, timeout_s: u64) -> Self {
        let mut child = agent
            .cmd(&["sync", "--timeout", &timeout_s.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sync");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr pipe");
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        Self {
            child,
            stderr,
            reader: Some(reader),
            started: Instant::now(),
        }
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Times the agent logged that it lost the link and will retry.
    fn retries(&self) -> usize {
        self.stderr().matches("sync interrupted").count()
    }

    /// Wait for the process to end (killing it after `within`); returns its status and stdout.
    fn wait(&mut self, within: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "sync still running after {within:?}; stderr: {}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let mut stdout = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut stdout);
        }
        (status, stdout)
    }

    /// SIGKILL.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the sync process");
        let _ = self.child.wait();
    }
}

impl Drop for BgSync {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Start the background sync and wait until the server has committed at least `at_least`
/// changes of it, while it still runs (so the fault lands mid-upload). Returns the head then.
fn wait_mid_upload(server: &Server, bg: &mut BgSync, at_least: u64, total: u64) -> u64 {
    let mut head = 0;
    wait_until(
        "the server to commit part of the upload",
        Duration::from_secs(60),
        || {
            head = changelog_head(server);
            head >= at_least || head >= total
        },
    );
    assert!(
        head < total && bg.running(),
        "the upload finished before the fault ({head} of {total} changes committed after \
         {:?}); lower SLOW_UP_BPS or raise the backlog",
        bg.started.elapsed()
    );
    head
}

/// The oracles after the dust settled: the server holds every change exactly once, every
/// appointment with all its fields, and the same state as the laptop; the laptop has nothing
/// pending.
fn assert_converged_nothing_lost_nothing_twice(server: &Server, agent: &Agent, backlog: &Backlog) {
    assert_eq!(
        changelog_head(server),
        backlog.changes,
        "the server's changelog holds each change written exactly once"
    );
    let (ids, values) = export_summary(&server.ok(&["export", "--unit", UNIT, "--format", "json"]));
    for id in &backlog.ids {
        assert!(ids.contains(id), "appointment {id} lost on the way");
    }
    assert_eq!(values, backlog.changes, "every field value arrived, once");
    assert_eq!(
        agent.digest(),
        server.digest(UNIT),
        "laptop and server converged"
    );
    assert_eq!(agent.status()["pending_changes"], 0, "nothing left queued");
}

#[test]
fn three_laptops_sync_through_a_lossy_duplicating_reordering_link_and_converge() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t0 = Instant::now();
    let faults = Faults {
        loss: 0.10,
        duplicate: 0.05,
        reorder: 0.10,
        reorder_ms: 30,
        delay_ms: 5,
        ..Faults::none()
    };
    let (mut server, relay) = server_behind_relay(tmp.path(), faults, 0x5EED_0001);
    let agents: Vec<Agent> = (1..=3)
        .map(|i| {
            let bundle = server.enroll(UNIT, &format!("laptop-{i}"));
            Agent::init(&tmp.path().join(format!("agent-{i}")), &bundle)
        })
        .collect();
    let mut all_ids = Vec::new();
    let mut all_changes = 0;
    for (i, a) in agents.iter().enumerate() {
        let b = write_backlog(a, 30, &format!("laptop {i}"));
        all_ids.extend(b.ids);
        // One through the real CLI as well.
        all_ids.push(a.add(&tournee_tests::day(1), "08:30", &format!("cli {i}")));
        let written = a.status()["last_seq"].as_u64().expect("last_seq");
        assert!(written > b.changes);
        all_changes += written;
    }
    server.start();
    let started = Instant::now();
    // Round one uploads every backlog; round two brings each laptop the others' records.
    for _ in 0..2 {
        for a in &agents {
            a.sync();
        }
    }
    let took = started.elapsed();
    server.stop();

    let server_digest = server.digest(UNIT);
    let (server_ids, _) =
        export_summary(&server.ok(&["export", "--unit", UNIT, "--format", "json"]));
    for a in &agents {
        assert_eq!(a.digest(), server_digest, "{} converged", a.dir.display());
        assert_eq!(a.status()["pending_changes"], 0);
        let (ids, _) = export_summary(&a.ok(&["export", "--format", "json"]));
        for id in &all_ids {
            assert!(ids.contains(id), "{id} missing on {}", a.dir.display());
        }
    }
    for id in &all_ids {
        assert!(server_ids.contains(id), "{id} missing on the server");
    }
    assert_eq!(
        changelog_head(&server),
        all_changes,
        "each change logged once"
    );
    let st = relay.stats();
    let dropped = st.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let duplicated = st.duplicated.load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped > 0 && duplicated > 0, "the link really was faulty");
    let lines = sessions(&server);
    assert_eq!(lines.len(), 6, "one session per sync: {lines:?}");
    assert!(lines.iter().all(|s| s.ok), "{lines:?}");
    eprintln!(
        "[{:.1?}] lossy link: 6 syncs in {took:?}; relay dropped {dropped}, duplicated {duplicated}; \
         server bytes_in {} bytes_out {}",
        t0.elapsed(),
        lines.iter().map(|s| s.bytes_in).sum::<u64>(),
        lines.iter().map(|s| s.bytes_out).sum::<u64>()
    );
}

#[test]
fn a_short_cut_is_bridged_by_quic_within_the_same_session() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t0 = Instant::now();
    let faults = Faults {
        up_bps: SLOW_UP_BPS,
        ..Faults::none()
    };
    let (mut server, relay) = server_behind_relay(tmp.path(), faults, 0x5EED_0002);
    let agent = Agent::init(&tmp.path().join("agent"), &server.enroll(UNIT, "laptop"));
    let backlog = write_backlog(&agent, 1_000, "short cut");
    server.start();
    let mut bg = BgSync::spawn(&agent, 120);
    let at_cut = wait_mid_upload(&server, &mut bg, 1, backlog.changes);
    relay.set_cut(true);
    // A cut well below QUIC's idle timeout: a tunnel under a bridge.
    std::thread::sleep(Duration::from_millis(u64::from(QUIC_IDLE_TIMEOUT_MS) / 5));
    relay.set_cut(false);
    let (status, stdout) = bg.wait(Duration::from_secs(120));
    assert!(status.success(), "{stdout} {}", bg.stderr());
    assert_eq!(bg.retries(), 0, "no reconnection: {}", bg.stderr());
    server.stop();
    let lines = sessions(&server);
    assert_eq!(
        lines.len(),
        1,
        "one session carried the whole upload: {lines:?}"
    );
    assert!(lines[0].ok, "{lines:?}");
    assert_eq!(lines[0].duplicates, 0, "nothing was sent twice");
    assert_eq!(lines[0].applied, backlog.changes);
    assert_converged_nothing_lost_nothing_twice(&server, &agent, &backlog);
    eprintln!(
        "[{:.1?}] short cut: at {at_cut}/{} changes; session bytes_in {}",
        t0.elapsed(),
        backlog.changes,
        lines[0].bytes_in
    );
}

#[test]
fn a_cut_longer_than_the_idle_timeout_resumes_without_resending_acknowledged_batches() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t0 = Instant::now();
    let faults = Faults {
        up_bps: SLOW_UP_BPS,
        ..Faults::none()
    };
    let (mut server, relay) = server_behind_relay(tmp.path(), faults, 0x5EED_0003);
    let agent = Agent::init(&tmp.path().join("agent"), &server.enroll(UNIT, "laptop"));
    let backlog = write_backlog(&agent, 2_000, "long cut");
    assert!(backlog.changes > 10 * BATCH_CHANGES_MAX as u64);
    server.start();
    let mut bg = BgSync::spawn(&agent, 120);
    let at_cut = wait_mid_upload(
        &server,
        &mut bg,
        2 * BATCH_CHANGES_MAX as u64,
        backlog.changes,
    );
    relay.set_cut(true);
    let cut_at = Instant::now();
    // Hold the cut until both sides gave the connection up: the server logged the session as
    // failed and the agent said it will retry. That cannot happen before the idle timeout.
    wait_until(
        "both ends to drop the dead connection",
        Duration::from_secs(120),
        || !bg.running() || bg.retries() > 0 && sessions(&server).iter().any(|s| !s.ok),
    );
    let cut_for = cut_at.elapsed();
    // Either end counts from the last packet it received, a few ms before the cut at most.
    assert!(
        cut_for >= Duration::from_millis(u64::from(QUIC_IDLE_TIMEOUT_MS) * 9 / 10),
        "a connection was dropped after {cut_for:?}, well before the idle timeout"
    );
    let during_cut = changelog_head(&server);
    // The bus reaches town: the link comes back, and a better one.
    relay.set_faults(Faults::none());
    let (status, stdout) = bg.wait(Duration::from_secs(150));
    assert!(status.success(), "{stdout} {}", bg.stderr());
    assert!(stdout.contains("in sync"), "{stdout}");
    let retries = bg.retries();
    assert!(retries >= 1, "{}", bg.stderr());
    server.stop();

    let lines = sessions(&server);
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(lines.last().is_some_and(|s| s.ok), "{lines:?}");
    let duplicates: u64 = lines.iter().map(|s| s.duplicates).sum();
    let applied: u64 = lines.iter().map(|s| s.applied).sum();
    assert!(
        duplicates <= BATCH_CHANGES_MAX as u64,
        "acknowledged batches were sent again: {duplicates} duplicate changes ({lines:?})"
    );
    assert_eq!(applied, backlog.changes, "{lines:?}");
    assert_converged_nothing_lost_nothing_twice(&server, &agent, &backlog);
    eprintln!(
        "[{:.1?}] long cut: {} changes; cut at {at_cut} committed ({during_cut} when healed) for \
         {cut_for:?}; {retries} retries; {} sessions; duplicates {duplicates}; bytes_in {:?}",
        t0.elapsed(),
        backlog.changes,
        lines.len(),
        lines.iter().map(|s| s.bytes_in).collect::<Vec<_>>()
    );
}

#[test]
fn sigkill_of_the_agent_mid_upload_loses_nothing_and_applies_nothing_twice() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t0 = Instant::now();
    let faults = Faults {
        up_bps: SLOW_UP_BPS,
        ..Faults::none()
    };
    let (mut server, relay) = server_behind_relay(tmp.path(), faults, 0x5EED_0004);
    let agent = Agent::init(&tmp.path().join("agent"), &server.enroll(UNIT, "laptop"));
    let backlog = write_backlog(&agent, 2_000, "agent killed");
    server.start();
    let mut bg = BgSync::spawn(&agent, 120);
    let at_kill = wait_mid_upload(
        &server,
        &mut bg,
        2 * BATCH_CHANGES_MAX as u64,
        backlog.changes,
    );
    bg.kill();
    let at_kill_status = agent.status();
    let acked_at_kill = at_kill_status["acked_seq"].clone();
    assert!(
        at_kill_status["pending_changes"].as_u64().expect("pending") > 0,
        "the kill interrupted the upload: {at_kill_status}"
    );
    // The link recovers; the next sync is an ordinary one.
    relay.set_faults(Faults::none());
    let out = agent.sync();
    assert!(out.contains("in sync"), "{out}");
    server.stop();
    let lines = sessions(&server);
    let duplicates: u64 = lines.iter().map(|s| s.duplicates).sum();
    assert_converged_nothing_lost_nothing_twice(&server, &agent, &backlog);
    eprintln!(
        "[{:.1?}] agent killed: at {at_kill}/{} committed (agent had acked_seq {acked_at_kill}); \
         {} sessions, duplicates {duplicates}",
        t0.elapsed(),
        backlog.changes,
        lines.len()
    );
}

#[test]
fn sigkill_of_the_server_mid_upload_then_restart_loses_nothing_and_applies_nothing_twice() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t0 = Instant::now();
    let faults = Faults {
        up_bps: SLOW_UP_BPS,
        ..Faults::none()
    };
    let (mut server, relay) = server_behind_relay(tmp.path(), faults, 0x5EED_0005);
    let agent = Agent::init(&tmp.path().join("agent"), &server.enroll(UNIT, "laptop"));
    let backlog = write_backlog(&agent, 2_000, "server killed");
    server.start();
    let mut bg = BgSync::spawn(&agent, 120);
    let at_kill = wait_mid_upload(
        &server,
        &mut bg,
        2 * BATCH_CHANGES_MAX as u64,
        backlog.changes,
    );
    server.kill();
    let after_kill = changelog_head(&server);
    assert!(after_kill < backlog.changes);
    server.start();
    relay.set_faults(Faults::none());
    // The interrupted sync notices the dead connection, reconnects to the restarted server
    // and finishes on its own.
    let (status, stdout) = bg.wait(Duration::from_secs(150));
    assert!(status.success(), "{stdout} {}", bg.stderr());
    let retries = bg.retries();
    assert!(retries > 0, "the sync had to reconnect: {}", bg.stderr());
    // And a normal sync afterwards has nothing left to do.
    let out = agent.sync();
    assert!(out.contains("sent 0 change(s)"), "{out}");
    server.stop();
    let lines = sessions(&server);
    let duplicates: u64 = lines.iter().map(|s| s.duplicates).sum();
    assert_converged_nothing_lost_nothing_twice(&server, &agent, &backlog);
    eprintln!(
        "[{:.1?}] server killed: at {at_kill}/{} committed ({after_kill} durable after the kill); \
         {retries} retries; {} logged sessions, duplicates {duplicates}",
        t0.elapsed(),
        backlog.changes,
        lines.len()
    );
}
