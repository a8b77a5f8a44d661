//! Power cut: a writer commits user actions (or applies remote batches) in a loop and is killed
//! at a seeded random moment; then the disk is put back to what had reached stable storage —
//! the state at each file's last fsync, recorded by an LD_PRELOAD shim (`tests/powercut/shim.c`,
//! the closest real equivalent of a fault-injecting VFS without unsafe Rust: real SQLite, real
//! files, real fsync calls, a write cache that loses everything not synced).
//!
//! With `synchronous=FULL` every transaction that returned survives. The control runs the same
//! harness with `synchronous=NORMAL` and shows that it does lose acknowledged commits.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tournee_core::model::Kind;
use tournee_core::rng::SeededRng;
use tournee_core::store::{Identity, Store};
use tournee_store::SqliteStore;
use tournee_tests::bin;
use uuid::Uuid;

fn build_shim(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("powercut/shim.c");
    let out = dir.join("powercut-shim.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .status()
        .expect("a C compiler (cc) is needed to build the power-cut shim");
    assert!(status.success(), "building the power-cut shim failed");
    out
}

/// Put every store file back to its last synced content (or remove it if never synced).
fn power_cut(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", db.display()));
        let durable = PathBuf::from(format!("{}{suffix}.durable", db.display()));
        if durable.exists() && suffix != "-shm" {
            std::fs::rename(&durable, &file).expect("restore synced copy");
        } else if file.exists() {
            std::fs::remove_file(&file).expect("drop unsynced file");
        }
    }
}

struct Trial {
    acknowledged: Vec<String>,
    lost: Vec<String>,
}

fn trial(shim: &Path, durability: &str, mode: &str, kill_after: Duration) -> Trial {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("agent.sqlite");
    {
        let mut s = SqliteStore::open(&db).expect("create store");
        s.set_identity(&Identity {
            device: 1,
            unit: "bus-80-1".into(),
            territory: "80".into(),
        })
        .expect("identity");
    }
    // The set-up closed cleanly: its state is on disk.
    std::fs::copy(&db, format!("{}.durable", db.display())).expect("initial synced copy");
    let _ = std::fs::remove_file(format!("{}-wal", db.display()));
    let mut child = Command::new(bin("powercut_writer"))
        .args(["--durability", durability, "--mode", mode, "--data"])
        .arg(&db)
        .env("LD_PRELOAD", shim)
        .env("TOURNEE_POWERCUT_DIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("stdout");
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let reader = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().expect("lines").push(l);
            }
        })
    };
    std::thread::sleep(kill_after);
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    reader.join().expect("reader");
    power_cut(&db);
    let store = SqliteStore::open(&db).expect("reopen after the power cut");
    store
        .integrity_check()
        .expect("integrity after the power cut");
    let acknowledged = lines.lock().expect("lines").clone();
    let mut lost = Vec::new();
    if mode == "apply" {
        let cursor = store.stats().expect("stats").cursor;
        for l in &acknowledged {
            let batch: u64 = l
                .trim_start_matches("batch ")
                .parse()
                .expect("batch number");
            let whole = (1..=20u64).all(|j| {
                store
                    .record(Uuid::from_u64_pair(batch, j))
                    .expect("read")
                    .is_some_and(|r| r.kind == Kind::Appointment)
            });
            if batch > cursor || !whole {
                lost.push(l.clone());
            }
        }
    } else {
        for l in &acknowledged {
            let id = Uuid::parse_str(l).expect("uuid");
            if store.record(id).expect("read").is_none() {
                lost.push(l.clone());
            }
        }
    }
    Trial { acknowledged, lost }
}

fn delays(seed: u64, n: usize) -> Vec<Duration> {
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|_| Duration::from_millis(150 + rng.below(600)))
        .collect()
}

#[test]
fn with_synchronous_full_every_acknowledged_transaction_survives_a_power_cut() {
    let tools = tempfile::tempdir().expect("tempdir");
    let shim = build_shim(tools.path());
    for mode in ["write", "apply"] {
        let mut acknowledged = 0;
        for d in delays(7, 6) {
            let t = trial(&shim, "full", mode, d);
            assert!(
                t.lost.is_empty(),
                "{mode}: lost after a power cut at {d:?}: {:?}",
                t.lost
            );
            acknowledged += t.acknowledged.len();
        }
        assert!(
            acknowledged > 20,
            "{mode}: the writer committed too little to prove anything"
        );
    }
}

#[test]
fn control_with_synchronous_normal_the_same_harness_loses_commits() {
    let tools = tempfile::tempdir().expect("tempdir");
    let shim = build_shim(tools.path());
    let mut lost = 0;
    let mut acknowledged = 0;
    for d in delays(11, 6) {
        let t = trial(&shim, "normal", "write", d);
        lost += t.lost.len();
        acknowledged += t.acknowledged.len();
    }
    println!("synchronous=NORMAL: {lost} of {acknowledged} acknowledged commits lost");
    assert!(
        lost > 0,
        "the control must lose commits, or the harness proves nothing"
    );
}
