//! `tournee-server backup` and `restore` with real processes and real SQLite files: a backup
//! taken while three laptops sync is a consistent snapshot that passes `integrity_check` and
//! restores to the server's state; `restore` is refused while `serve` runs on the data dir and
//! for a damaged file, leaving everything in place; after a restore the server serves again.
//! (Laptops re-sending what a restored server lost is tested with that feature, not here.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::{Connection, OpenFlags};
use tournee_core::store::ServerStore;
use tournee_store::SqliteStore;
use tournee_tests::{bin, day, ok, run, Agent, Server};

/// `tournee-server --data DIR ARGS…`.
fn server_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin("tournee-server"));
    c.arg("--data")
        .arg(dir)
        .args(args)
        .env_remove("TOURNEE_DATA");
    c
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `PRAGMA integrity_check` of a SQLite file.
fn integrity(path: &Path) -> String {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

/// Record ids in `export --format json` of the data dir.
fn record_ids(dir: &Path) -> BTreeSet<String> {
    let out = ok(&mut server_cmd(dir, &["export", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("export json");
    v["records"]
        .as_array()
        .unwrap_or_else(|| panic!("records in export: {out}"))
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

fn digest(dir: &Path, unit: Option<&str>) -> String {
    let mut args = vec!["digest"];
    if let Some(u) = unit {
        args.extend(["--unit", u]);
    }
    ok(&mut server_cmd(dir, &args)).trim().to_owned()
}

fn backup(server: &Server, out: &Path) {
    server.ok(&["backup", "--out", path_str(out)]);
}

fn restore(dir: &Path, from: &Path) -> std::process::Output {
    run(&mut server_cmd(dir, &["restore", "--from", path_str(from)]))
}

/// Directories `replaced-*` in `dir`.
fn set_aside(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("replaced-"))
        })
        .collect()
}

#[test]
fn a_backup_taken_while_three_laptops_sync_restores_to_the_servers_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80-1", "80");
    server.unit("bus-80-2", "80");
    let agents: Vec<(Agent, &str)> = [("a", "bus-80-1"), ("b", "bus-80-1"), ("c", "bus-80-2")]
        .into_iter()
        .map(|(name, unit)| {
            let a = Agent::init(&tmp.path().join(name), &server.enroll(unit, name));
            (a, unit)
        })
        .collect();
    server.start();
    let date = day(2);
    for (a, _) in &agents {
        a.add(&date, "09:00", "avant la sauvegarde");
        a.sync();
    }

    // Laptops keep adding and syncing while the backup runs.
    let under_load = tmp.path().join("under-load.backup");
    std::thread::scope(|s| {
        let workers: Vec<_> = agents
            .iter()
            .map(|(a, _)| {
                s.spawn(|| {
                    for i in 0..3 {
                        a.add(&date, &format!("1{i}:00"), "pendant la sauvegarde");
                        a.sync();
                    }
                })
            })
            .collect();
        backup(&server, &under_load);
        for w in workers {
            w.join().expect("laptop thread");
        }
    });
    assert_eq!(integrity(&under_load), "ok");
    let restored = tmp.path().join("restored-under-load");
    let out = restore(&restored, &under_load);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(integrity(&restored.join("server.sqlite")), "ok");
    assert_eq!(integrity(&restored.join("registry.sqlite")), "ok");
    // A snapshot of a moment: what it holds the server holds, each device's ack no further.
    let then = record_ids(&restored);
    let now = record_ids(&server.dir);
    assert!(then.len() >= 3, "at least the first syncs: {}", then.len());
    assert!(
        then.is_subset(&now),
        "the snapshot holds nothing the server lacks"
    );
    let then_store = SqliteStore::open(&restored.join("server.sqlite")).expect("open");
    let now_store = SqliteStore::open(&server.dir.join("server.sqlite")).expect("open");
    for device in 1..=3 {
        let (t, n) = (
            then_store.device_acked(device).expect("acked"),
            now_store.device_acked(device).expect("acked"),
        );
        assert!(t > 0 && t <= n, "device {device}: acked {t} then, {n} now");
    }

    // Quiet now: a backup taken while the laptops sync (with nothing new) restores exactly.
    let before = digest(&server.dir, None);
    let quiet = tmp.path().join("quiet.backup");
    std::thread::scope(|s| {
        let workers: Vec<_> = agents.iter().map(|(a, _)| s.spawn(|| a.sync())).collect();
        backup(&server, &quiet);
        for w in workers {
            w.join().expect("laptop thread");
        }
    });
    let after = digest(&server.dir, None);
    assert_eq!(before, after, "nothing changed during the quiet backup");
    let restored = tmp.path().join("restored-quiet");
    let out = restore(&restored, &quiet);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(digest(&restored, None), before);
    for (a, unit) in &agents {
        assert_eq!(digest(&restored, Some(unit)), a.digest(), "unit {unit}");
    }
    // The restored store counts its changelog in a new epoch: laptops' cursors start over.
    let epoch = |path: &Path| {
        SqliteStore::open(path)
            .expect("open")
            .epoch()
            .expect("epoch")
    };
    assert_ne!(
        epoch(&restored.join("server.sqlite")),
        epoch(&server.dir.join("server.sqlite"))
    );
    server.stop();
}

#[test]
fn restore_is_refused_while_serving_and_for_a_damaged_file_then_serves_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80-1", "80");
    let writer = Agent::init(&tmp.path().join("w"), &server.enroll("bus-80-1", "w"));
    let reader = Agent::init(&tmp.path().join("r"), &server.enroll("bus-80-1", "r"));
    server.start();
    let date = day(3);
    writer.add(&date, "09:00", "sauvegardé");
    writer.sync();
    let file = tmp.path().join("nightly.backup");
    backup(&server, &file);
    let at_backup = digest(&server.dir, None);
    writer.add(&date, "10:00", "après la sauvegarde");
    writer.sync();
    let live = digest(&server.dir, None);
    assert_ne!(live, at_backup);

    // Into a missing directory: one French line, nothing written.
    let nowhere = tmp.path().join("absent").join("nightly.backup");
    let out = run(&mut server.cmd(&["backup", "--out", path_str(&nowhere)]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("n'existe pas"), "{err}");
    assert!(!tmp.path().join("absent").exists());

    // Refused while serving: one French line, nothing moved.
    let out = restore(&server.dir, &file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains("tournee-server serve"), "{err}");
    assert!(err.contains("rien n'a été modifié"), "{err}");
    assert!(set_aside(&server.dir).is_empty());
    assert_eq!(digest(&server.dir, None), live);
    assert!(server.is_running());
    server.stop();

    // A damaged copy is refused before anything moves.
    let mut bytes = std::fs::read(&file).expect("read backup");
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    let damaged = tmp.path().join("damaged.backup");
    std::fs::write(&damaged, &bytes).expect("write");
    let out = restore(&server.dir, &damaged);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("n'est pas une sauvegarde utilisable"), "{err}");
    assert!(set_aside(&server.dir).is_empty());
    assert_eq!(digest(&server.dir, None), live);

    // Restored: the old files kept aside, the state of the backup, and it serves again.
    let out = restore(&server.dir, &file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let aside = set_aside(&server.dir);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].join("server.sqlite").is_file());
    assert_eq!(
        digest(&aside[0], None),
        live,
        "the replaced store is intact"
    );
    assert_eq!(digest(&server.dir, None), at_backup);
    server.start();
    reader.sync();
    assert_eq!(reader.digest(), digest(&server.dir, Some("bus-80-1")));
    server.stop();
}
