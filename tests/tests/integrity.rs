//! Nothing lost in a laptop's real life, with real processes over loopback QUIC on real SQLite
//! files: a laptop's data dir restored from yesterday's copy, a data dir cloned onto a second
//! laptop, the server restored from a backup. Each ends with the laptops' digests equal to the
//! server's and every record present.

use std::path::Path;
use std::process::Command;

use tournee_core::store::Store;
use tournee_store::SqliteStore;
use tournee_tests::{day, Agent, Server};
use uuid::Uuid;

/// `cp -a FROM TO`, the way people copy a data dir (TO must not exist).
fn cp_a(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// Put `copy` back in place of `dir`, as a restore does.
fn restore(copy: &Path, dir: &Path) {
    std::fs::remove_dir_all(dir).expect("remove");
    cp_a(copy, dir);
}

/// The ids of the records a laptop's store holds.
fn record_ids(a: &Agent) -> Vec<Uuid> {
    let store = SqliteStore::open(&a.store_file()).expect("store");
    let mut ids = Vec::new();
    store
        .for_each_record(None, &mut |r| {
            ids.push(r.id);
            Ok(())
        })
        .expect("records");
    ids
}

fn ids(list: &[String]) -> Vec<Uuid> {
    list.iter().map(|s| s.parse().expect("uuid")).collect()
}

/// A sync that must end `in sync`.
fn sync_in_sync(a: &Agent) {
    let out = a.sync();
    assert!(out.contains("in sync"), "{out}");
}

fn setup(tmp: &Path, laptops: usize) -> (Server, Vec<Agent>) {
    let mut server = Server::init(&tmp.join("server"), None);
    server.unit("bus-80-1", "80");
    let agents = (1..=laptops)
        .map(|i| {
            let bundle = server.enroll("bus-80-1", &format!("laptop-{i}"));
            Agent::init(&tmp.join(format!("agent-{i}")), &bundle)
        })
        .collect();
    server.start();
    (server, agents)
}

#[test]
fn a_laptop_restored_from_yesterdays_copy_converges_with_nothing_lost() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, agents) = setup(tmp.path(), 1);
    let a = &agents[0];
    let d = day(2);
    let mut made = vec![a.add(&d, "09:00", "before the copy")];
    a.sync();
    let copy = tmp.path().join("yesterday");
    cp_a(&a.dir, &copy);
    made.push(a.add(
        &d,
        "10:00",
        "after the copy, synced, then lost by the restore",
    ));
    a.ok(&[
        "appointment",
        "set",
        &made[0],
        "--note",
        "edited before the restore",
    ]);
    a.sync();
    restore(&copy, &a.dir);
    made.push(a.add(&d, "11:00", "after the restore"));
    a.ok(&[
        "appointment",
        "set",
        &made[0],
        "--note",
        "edited after the restore",
    ]);
    sync_in_sync(a);
    sync_in_sync(a);
    assert_eq!(a.digest(), server.digest("bus-80-1"));
    let mut held = record_ids(a);
    held.sort();
    let mut want = ids(&made);
    want.sort();
    assert_eq!(held, want, "every record, once");
    let shown = a.ok(&["appointment", "show", &made[0]]);
    assert!(shown.contains("edited after the restore"), "{shown}");
    assert_eq!(a.status()["pending_changes"], 0, "{}", a.status());
}

#[test]
fn a_cloned_data_dir_gets_both_copies_records_to_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, agents) = setup(tmp.path(), 1);
    let a = &agents[0];
    let d = day(2);
    let mut made = vec![a.add(&d, "09:00", "before the clone")];
    a.sync();
    let b = Agent {
        dir: tmp.path().join("clone"),
    };
    cp_a(&a.dir, &b.dir);
    made.push(a.add(&d, "10:00", "on the original"));
    made.push(b.add(&d, "11:00", "on the clone"));
    sync_in_sync(a);
    sync_in_sync(&b);
    made.push(a.add(&d, "12:00", "on the original, later"));
    sync_in_sync(a);
    sync_in_sync(&b);
    let digest = server.digest("bus-80-1");
    assert_eq!(a.digest(), digest);
    assert_eq!(b.digest(), digest);
    let mut want = ids(&made);
    want.sort();
    for laptop in [a, &b] {
        let mut held = record_ids(laptop);
        held.sort();
        assert_eq!(held, want, "{}", laptop.dir.display());
    }
}

/// Three laptops sync, the server's state is saved by `take`, the laptops write, edit and sync
/// again, the server is stopped and put back by `put_back` to what was saved, then started:
/// everything the laptops wrote reaches it again, once, and every digest converges.
fn three_laptops_survive_a_server_restore(
    take: impl Fn(&mut Server, &Path),
    put_back: impl Fn(&mut Server, &Path),
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut server, agents) = setup(tmp.path(), 3);
    let d = day(2);
    let mut made = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        made.push(a.add(
            &d,
            &format!("09:{i}0"),
            &format!("laptop {i}, in the backup"),
        ));
        a.sync();
    }
    let backup = tmp.path().join("server.backup");
    take(&mut server, &backup);
    for (i, a) in agents.iter().enumerate() {
        made.push(a.add(
            &d,
            &format!("10:{i}0"),
            &format!("laptop {i}, lost by the server"),
        ));
        a.ok(&[
            "appointment",
            "set",
            &made[i],
            "--note",
            &format!("laptop {i} edited"),
        ]);
        a.sync();
    }
    server.stop();
    put_back(&mut server, &backup);
    server.start();
    for (i, a) in agents.iter().enumerate() {
        made.push(a.add(
            &d,
            &format!("11:{i}0"),
            &format!("laptop {i}, after the restore"),
        ));
    }
    for _ in 0..2 {
        for a in &agents {
            sync_in_sync(a);
        }
    }
    let digest = server.digest("bus-80-1");
    let mut want = ids(&made);
    want.sort();
    for (i, a) in agents.iter().enumerate() {
        assert_eq!(a.digest(), digest, "laptop {i}");
        let mut held = record_ids(a);
        held.sort();
        assert_eq!(held, want, "laptop {i}: every record, once");
        let shown = a.ok(&["appointment", "show", &made[i]]);
        assert!(shown.contains(&format!("laptop {i} edited")), "{shown}");
    }
}

#[test]
fn a_server_restored_from_a_backup_gets_back_what_three_laptops_had_sent() {
    // The backup is a copy of the store file taken with the server stopped.
    three_laptops_survive_a_server_restore(
        |server, backup| {
            server.stop();
            std::fs::copy(server.dir.join("server.sqlite"), backup).expect("backup");
            server.start();
        },
        |server, backup| {
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(server.dir.join(format!("server.sqlite{suffix}")));
            }
            std::fs::copy(backup, server.dir.join("server.sqlite")).expect("restore");
        },
    );
}

#[test]
fn the_backup_and_restore_commands_lose_nothing_the_laptops_wrote_after_the_backup() {
    // `tournee-server backup` while `serve` runs, `tournee-server restore` once it stopped.
    three_laptops_survive_a_server_restore(
        |server, backup| {
            server.ok(&["backup", "--out", backup.to_str().expect("utf-8 path")]);
        },
        |server, backup| {
            server.ok(&["restore", "--from", backup.to_str().expect("utf-8 path")]);
        },
    );
}
