//! Healing histories the two sides do not share, in memory through real frames on real SQLite
//! files: a laptop's store restored from a copy, a data dir cloned onto a second laptop, the
//! server restored from a backup, and the ordinary lost acknowledgement that must not heal.

use std::path::{Path, PathBuf};

use tournee_core::export;
use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::store::{Identity, LocalAction, RecordEdit, Store};
use tournee_proto::auth::DeviceAuth;
use tournee_proto::pump::{ClientPump, ServerPump};
use tournee_proto::session::{ServerSession, SessionStats};
use tournee_proto::ProtocolError;
use tournee_store::SqliteStore;
use uuid::Uuid;

const NOW: u64 = 1_790_000_000_000;
const UNIT: &str = "bus-80-1";

fn new_agent(path: &Path, device: u32) -> SqliteStore {
    let mut s = SqliteStore::open(path).expect("store");
    s.set_identity(&Identity {
        device,
        unit: UNIT.into(),
        territory: "80".into(),
    })
    .expect("identity");
    s
}

fn new_server(path: &Path) -> SqliteStore {
    let mut s = tournee_report::facts::open_server_store(path).expect("store");
    s.set_identity(&Identity::server()).expect("identity");
    s
}

/// Copy a closed store's files (the database and any WAL) from `from` to `to`, as `cp -a` does.
fn copy_store(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let src = PathBuf::from(format!("{}{suffix}", from.display()));
        let dst = PathBuf::from(format!("{}{suffix}", to.display()));
        if src.exists() {
            std::fs::copy(&src, &dst).expect("copy");
        } else if dst.exists() {
            std::fs::remove_file(&dst).expect("remove stale");
        }
    }
}

fn auth(store: &SqliteStore) -> DeviceAuth {
    let id = store.identity().expect("identity").expect("set");
    DeviceAuth {
        actor: id.device,
        unit: id.unit,
        territory: id.territory,
    }
}

/// One session, run to completion; each side's whole flight arrives as one read.
fn sync(
    agent: &mut SqliteStore,
    server: &mut SqliteStore,
    now: u64,
) -> Result<(SessionStats, SessionStats), ProtocolError> {
    let mut client = ClientPump::new(agent)?;
    let mut srv = ServerPump::new(ServerSession::new(auth(agent), now));
    for _ in 0..1_000 {
        let up = client.next_flight(agent)?;
        if !up.is_empty() {
            srv.handle_read(now, &up, server)?;
        }
        let mut down = Vec::new();
        srv.flush(server, |f| down.extend_from_slice(&f))?;
        if !down.is_empty() {
            client.handle_read(now, &down, agent)?;
        }
        if client.ready_to_finish(agent)? {
            srv.handle_end()?;
            return Ok((client.session().stats(), srv.stats()));
        }
    }
    panic!("session did not converge");
}

fn appointment(store: &mut SqliteStore, now: u64, note: &str) -> Uuid {
    let id = Uuid::now_v7();
    let action = LocalAction {
        edits: vec![RecordEdit {
            id,
            kind: Kind::Appointment,
            scope: Scope::Unit(UNIT.into()),
            create: true,
            sets: vec![
                (Field::Location, Value::Text("arret".into())),
                (Field::Commune, Value::Text("80021".into())),
                (Field::Start, Value::Int((now / 1000) as i64 + 86_400)),
                (Field::Duration, Value::Int(30)),
                (Field::Status, Value::Text("unknown".into())),
                (Field::Note, Value::Text(note.into())),
            ],
        }],
    };
    store.write_local(now, &action).expect("write");
    id
}

fn set_note(store: &mut SqliteStore, now: u64, id: Uuid, note: &str) {
    let record = store.record(id).expect("read").expect("exists");
    store
        .write_local(
            now,
            &tournee_core::actions::set_fields(
                &record,
                vec![(Field::Note, Value::Text(note.into()))],
            ),
        )
        .expect("write");
}

fn note(store: &SqliteStore, id: Uuid) -> Option<Value> {
    store
        .record(id)
        .expect("read")
        .and_then(|r| r.register(Field::Note).and_then(|reg| reg.value().cloned()))
}

fn digest(store: &SqliteStore) -> String {
    let scopes = [Scope::Unit(UNIT.into()), Scope::Territory("80".into())];
    export::digest(store, Some(&scopes)).expect("digest")
}

fn records(store: &SqliteStore) -> usize {
    let mut n = 0;
    store
        .for_each_record(None, &mut |_| {
            n += 1;
            Ok(())
        })
        .expect("records");
    n
}

#[test]
fn a_laptop_restored_from_yesterdays_copy_sends_what_it_wrote_since_and_gets_back_the_rest() {
    let dir = tempfile::tempdir().expect("dir");
    let (a_path, copy, s_path) = (
        dir.path().join("agent.sqlite"),
        dir.path().join("copy.sqlite"),
        dir.path().join("server.sqlite"),
    );
    let mut srv = new_server(&s_path);
    let mut a = new_agent(&a_path, 1);
    let first = appointment(&mut a, NOW, "one");
    sync(&mut a, &mut srv, NOW).expect("sync 1");
    drop(a);
    copy_store(&a_path, &copy);
    let mut a = SqliteStore::open(&a_path).expect("reopen");
    let second = appointment(&mut a, NOW + 1_000, "two");
    set_note(&mut a, NOW + 1_000, first, "one, edited before the restore");
    sync(&mut a, &mut srv, NOW + 1_000).expect("sync 2");
    drop(a);
    // Restore yesterday's copy, then write on it: the same seqs and dots, other content.
    copy_store(&copy, &a_path);
    let mut a = SqliteStore::open(&a_path).expect("restored");
    let third = appointment(&mut a, NOW + 2_000, "three");
    set_note(&mut a, NOW + 2_000, first, "one, edited after the restore");
    let (agent_stats, server_stats) = sync(&mut a, &mut srv, NOW + 2_000).expect("heal");
    assert_eq!(agent_stats.rebases, 1, "{agent_stats:?}");
    assert_eq!(server_stats.rebases, 1, "{server_stats:?}");
    for id in [first, second, third] {
        assert!(
            srv.record(id).expect("read").is_some(),
            "{id} missing on the server"
        );
        assert!(
            a.record(id).expect("read").is_some(),
            "{id} missing on the laptop"
        );
    }
    assert_eq!(records(&srv), 3);
    assert_eq!(
        note(&srv, first),
        Some(Value::Text("one, edited after the restore".into()))
    );
    assert_eq!(digest(&a), digest(&srv));
    assert_eq!(a.stats().expect("stats").pending, 0);
    // Healed for good: the next session is an ordinary one.
    let (again, _) = sync(&mut a, &mut srv, NOW + 3_000).expect("again");
    assert_eq!(again.rebases, 0);
    assert_eq!(digest(&a), digest(&srv));
}

#[test]
fn a_lost_acknowledgement_is_not_taken_for_a_restore() {
    let dir = tempfile::tempdir().expect("dir");
    let mut srv = new_server(&dir.path().join("server.sqlite"));
    let mut a = new_agent(&dir.path().join("agent.sqlite"), 1);
    appointment(&mut a, NOW, "one");
    // The server commits the flight, but its answer never reaches the laptop.
    let mut client = ClientPump::new(&a).expect("client");
    let mut s = ServerPump::new(ServerSession::new(auth(&a), NOW));
    let up = client.next_flight(&a).expect("flight");
    s.handle_read(NOW, &up, &mut srv).expect("server");
    s.flush(&srv, |_| {}).expect("flush");
    assert_eq!(a.stats().expect("stats").acked_seq, 0);
    appointment(&mut a, NOW + 1, "two");
    let (agent_stats, server_stats) = sync(&mut a, &mut srv, NOW + 1).expect("sync");
    assert_eq!(agent_stats.rebases, 0);
    assert_eq!(server_stats.duplicates, 6, "{server_stats:?}");
    assert_eq!(server_stats.applied, 6, "{server_stats:?}");
    assert_eq!(digest(&a), digest(&srv));
}

#[test]
fn a_cloned_data_dir_gets_both_copies_records_to_the_server() {
    let dir = tempfile::tempdir().expect("dir");
    let (a_path, b_path) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
    let mut srv = new_server(&dir.path().join("server.sqlite"));
    let mut a = new_agent(&a_path, 1);
    let shared = appointment(&mut a, NOW, "shared");
    sync(&mut a, &mut srv, NOW).expect("sync");
    drop(a);
    copy_store(&a_path, &b_path);
    let mut a = SqliteStore::open(&a_path).expect("a");
    let mut b = SqliteStore::open(&b_path).expect("b");
    let from_a = appointment(&mut a, NOW + 1_000, "from a");
    let from_b = appointment(&mut b, NOW + 1_000, "from b");
    set_note(&mut b, NOW + 1_000, shared, "b's note");
    sync(&mut a, &mut srv, NOW + 1_000).expect("a");
    let (b_stats, _) = sync(&mut b, &mut srv, NOW + 2_000).expect("b heals");
    assert_eq!(b_stats.rebases, 1);
    let later_a = appointment(&mut a, NOW + 3_000, "a again");
    let (a_stats, _) = sync(&mut a, &mut srv, NOW + 3_000).expect("a heals");
    assert_eq!(
        a_stats.rebases, 1,
        "the original's history moved on without it"
    );
    sync(&mut b, &mut srv, NOW + 4_000).expect("b catches up");
    for id in [shared, from_a, from_b, later_a] {
        assert!(
            srv.record(id).expect("read").is_some(),
            "{id} missing on the server"
        );
    }
    assert_eq!(note(&srv, shared), Some(Value::Text("b's note".into())));
    assert_eq!(digest(&a), digest(&srv));
    assert_eq!(digest(&b), digest(&srv));
}

#[test]
fn a_server_restored_from_a_backup_gets_back_what_the_laptop_had_sent() {
    let dir = tempfile::tempdir().expect("dir");
    let (s_path, backup) = (
        dir.path().join("server.sqlite"),
        dir.path().join("backup.sqlite"),
    );
    let mut srv = new_server(&s_path);
    let mut a = new_agent(&dir.path().join("agent.sqlite"), 1);
    let mut b = new_agent(&dir.path().join("b.sqlite"), 2);
    let first = appointment(&mut a, NOW, "one");
    sync(&mut a, &mut srv, NOW).expect("sync 1");
    drop(srv);
    copy_store(&s_path, &backup);
    let mut srv = tournee_report::facts::open_server_store(&s_path).expect("server");
    let second = appointment(&mut a, NOW + 1_000, "two");
    set_note(
        &mut a,
        NOW + 1_000,
        first,
        "edited, then lost by the server",
    );
    let from_b = appointment(&mut b, NOW + 1_000, "b");
    sync(&mut a, &mut srv, NOW + 1_000).expect("sync 2");
    sync(&mut b, &mut srv, NOW + 1_000).expect("b");
    drop(srv);
    copy_store(&backup, &s_path);
    let mut srv = tournee_report::facts::open_server_store(&s_path).expect("restored");
    let third = appointment(&mut a, NOW + 2_000, "three");
    let (stats, _) = sync(&mut a, &mut srv, NOW + 2_000).expect("heal");
    assert_eq!(stats.rebases, 1, "{stats:?}");
    let (b_stats, _) = sync(&mut b, &mut srv, NOW + 2_000).expect("b heals");
    assert_eq!(b_stats.rebases, 1, "{b_stats:?}");
    sync(&mut a, &mut srv, NOW + 3_000).expect("a catches up");
    for id in [first, second, third, from_b] {
        assert!(
            srv.record(id).expect("read").is_some(),
            "{id} missing on the server"
        );
    }
    assert_eq!(records(&srv), 4);
    assert_eq!(
        note(&srv, first),
        Some(Value::Text("edited, then lost by the server".into()))
    );
    assert_eq!(digest(&a), digest(&srv));
    assert_eq!(digest(&b), digest(&srv));
    let (again, _) = sync(&mut a, &mut srv, NOW + 4_000).expect("again");
    assert_eq!(again.rebases, 0);
}

/// The scheduler's appointment for the unit, written on the server itself.
fn planned(srv: &mut SqliteStore, now: u64, note: &str) -> Uuid {
    appointment(srv, now, note)
}

#[test]
fn laptops_following_a_restored_server_drop_the_plan_it_lost_and_keep_their_own_writes() {
    use tournee_core::store::ServerStore;
    let dir = tempfile::tempdir().expect("dir");
    let (s_path, backup) = (
        dir.path().join("server.sqlite"),
        dir.path().join("backup.sqlite"),
    );
    let mut srv = new_server(&s_path);
    let mut a = new_agent(&dir.path().join("a.sqlite"), 1);
    let mut b = new_agent(&dir.path().join("b.sqlite"), 2);
    let kept = planned(&mut srv, NOW, "planned, in the backup");
    sync(&mut a, &mut srv, NOW).expect("a");
    sync(&mut b, &mut srv, NOW).expect("b");
    drop(srv);
    copy_store(&s_path, &backup);
    let mut srv = tournee_report::facts::open_server_store(&s_path).expect("server");
    // After the backup: the scheduler plans more and edits, a laptop writes; both reach a.
    let lost = planned(&mut srv, NOW + 1_000, "planned after the backup");
    set_note(&mut srv, NOW + 1_000, kept, "edited after the backup");
    let from_a = appointment(&mut a, NOW + 1_000, "a, acknowledged then lost");
    sync(&mut a, &mut srv, NOW + 1_000).expect("a before");
    sync(&mut b, &mut srv, NOW + 1_000).expect("b before");
    assert!(a.record(lost).expect("read").is_some());
    drop(srv);
    // `tournee-server restore`: yesterday's file, a new epoch.
    copy_store(&backup, &s_path);
    let mut srv = tournee_report::facts::open_server_store(&s_path).expect("restored");
    let old_epoch = srv.epoch().expect("epoch");
    let epoch = srv.renew_epoch().expect("renew");
    assert_ne!(epoch, old_epoch);
    let offline = appointment(&mut a, NOW + 2_000, "a, written before the next sync");
    sync(&mut a, &mut srv, NOW + 2_000).expect("a follows the restore");
    assert_eq!(a.server_epoch().expect("epoch"), epoch);
    assert!(
        !a.resync_pending().expect("resync"),
        "rebuilt in one session"
    );
    sync(&mut b, &mut srv, NOW + 2_000).expect("b follows the restore");
    sync(&mut a, &mut srv, NOW + 3_000).expect("a again");
    for id in [kept, from_a, offline] {
        assert!(srv.record(id).expect("read").is_some(), "{id} lost");
        assert!(a.record(id).expect("read").is_some(), "{id} not on a");
        assert!(b.record(id).expect("read").is_some(), "{id} not on b");
    }
    // The server's own writes since the backup are gone for everyone, not kept by some.
    for store in [&a, &b, &srv] {
        assert!(store.record(lost).expect("read").is_none());
        assert_eq!(
            note(store, kept),
            Some(Value::Text("planned, in the backup".into()))
        );
    }
    assert_eq!(digest(&a), digest(&srv));
    assert_eq!(digest(&b), digest(&srv));
    // The next plan reaches the laptops again, in the new numbering.
    let next = planned(&mut srv, NOW + 4_000, "planned after the restore");
    sync(&mut a, &mut srv, NOW + 4_000).expect("a later");
    assert!(a.record(next).expect("read").is_some());
    assert_eq!(digest(&a), digest(&srv));
}

#[test]
fn a_laptop_cut_off_while_it_rebuilds_keeps_showing_its_records_and_finishes_next_time() {
    use tournee_core::store::ServerStore;
    let dir = tempfile::tempdir().expect("dir");
    let mut srv = new_server(&dir.path().join("server.sqlite"));
    let mut a = new_agent(&dir.path().join("a.sqlite"), 1);
    let first = appointment(&mut a, NOW, "one");
    let planned_one = planned(&mut srv, NOW, "plan");
    sync(&mut a, &mut srv, NOW).expect("sync");
    srv.renew_epoch().expect("renew");
    // The Welcome arrives (new epoch, a rebuild starts), then the link drops.
    let mut client = tournee_proto::session::ClientSession::new(&a).expect("client");
    let mut s = ServerSession::new(auth(&a), NOW + 1_000);
    let up: Vec<_> = std::iter::from_fn(|| client.poll_transmit()).collect();
    s.handle_messages(NOW + 1_000, up, &mut srv)
        .expect("server");
    let welcome = s.poll_transmit().expect("welcome");
    assert!(
        matches!(welcome, tournee_proto::wire::ServerMsg::Welcome { .. }),
        "{welcome:?}"
    );
    client
        .handle_message(NOW + 1_000, welcome, &mut a)
        .expect("welcome");
    assert!(a.resync_pending().expect("pending"));
    assert!(a.record(first).expect("read").is_some(), "still shown");
    assert!(
        a.record(planned_one).expect("read").is_some(),
        "still shown"
    );
    let second = appointment(&mut a, NOW + 2_000, "written meanwhile");
    sync(&mut a, &mut srv, NOW + 3_000).expect("finish");
    assert!(!a.resync_pending().expect("pending"));
    for id in [first, planned_one, second] {
        assert!(a.record(id).expect("read").is_some(), "{id} on a");
        assert!(
            srv.record(id).expect("read").is_some(),
            "{id} on the server"
        );
    }
    assert_eq!(digest(&a), digest(&srv));
}

#[test]
fn a_second_connection_that_moved_the_history_ends_the_first_before_it_skips_anything() {
    let dir = tempfile::tempdir().expect("dir");
    let (a_path, b_path) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
    let mut srv = new_server(&dir.path().join("server.sqlite"));
    let mut a = new_agent(&a_path, 1);
    appointment(&mut a, NOW, "shared");
    sync(&mut a, &mut srv, NOW).expect("sync");
    drop(a);
    copy_store(&a_path, &b_path);
    let mut a = SqliteStore::open(&a_path).expect("a");
    let mut b = SqliteStore::open(&b_path).expect("b");
    let from_a = appointment(&mut a, NOW + 1_000, "from a");
    let from_b = appointment(&mut b, NOW + 1_000, "from b");
    // a's connection says Hello; before its changes arrive, the copy's connection of the same
    // device delivers changes with the same seqs.
    let mut client = tournee_proto::session::ClientSession::new(&a).expect("client");
    let mut first = ServerSession::new(auth(&a), NOW + 1_000);
    let hello = client.poll_transmit().expect("hello");
    first
        .handle_message(NOW + 1_000, hello, &mut srv)
        .expect("hello");
    sync(&mut b, &mut srv, NOW + 1_000).expect("the copy");
    let rest: Vec<_> = std::iter::from_fn(|| client.poll_transmit()).collect();
    assert!(!rest.is_empty());
    let err = first
        .handle_messages(NOW + 1_000, rest, &mut srv)
        .expect_err("history moved");
    assert!(matches!(err, ProtocolError::HistoryMoved { .. }), "{err:?}");
    assert_eq!(err.code(), tournee_proto::wire::ErrorCode::Superseded);
    // Nothing of a's was taken for a duplicate of b's: a heals at its next session.
    assert!(srv.record(from_a).expect("read").is_none());
    let (stats, _) = sync(&mut a, &mut srv, NOW + 2_000).expect("a heals");
    assert_eq!(stats.rebases, 1);
    sync(&mut b, &mut srv, NOW + 3_000).expect("b catches up");
    for id in [from_a, from_b] {
        assert!(srv.record(id).expect("read").is_some(), "{id} missing");
    }
    assert_eq!(digest(&a), digest(&srv));
    assert_eq!(digest(&b), digest(&srv));
}

#[test]
fn a_cursor_past_the_head_renews_the_epoch_once_not_at_every_session() {
    use tournee_core::store::ServerStore;
    use tournee_proto::wire::{ClientMsg, ServerMsg, PROTOCOL_VERSION};
    let dir = tempfile::tempdir().expect("dir");
    let mut srv = new_server(&dir.path().join("server.sqlite"));
    let a = new_agent(&dir.path().join("a.sqlite"), 1);
    planned(&mut srv, NOW, "plan");
    let head = srv.changelog_head().expect("head");
    let hello = |epoch: u64| ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        cursor: head + 100,
        acked: 0,
        last: 0,
        chain: tournee_core::store::CHAIN_START,
        own: false,
        epoch,
        about: tournee_proto::wire::AgentAbout::default(),
    };
    let welcome_epoch = |srv: &mut SqliteStore, epoch: u64| {
        let mut s = ServerSession::new(auth(&a), NOW);
        s.handle_message(NOW, hello(epoch), srv).expect("hello");
        match s.poll_transmit() {
            Some(ServerMsg::Welcome { epoch, .. }) => epoch,
            other => panic!("{other:?}"),
        }
    };
    let before = srv.epoch().expect("epoch");
    let renewed = welcome_epoch(&mut srv, before);
    assert_ne!(
        renewed, before,
        "files copied back by hand: laptops start over"
    );
    // A device that keeps claiming such a cursor does not renew it again.
    assert_eq!(welcome_epoch(&mut srv, renewed), renewed);
    assert_eq!(srv.epoch().expect("epoch"), renewed);
    // `restore` renews it whatever was done before.
    assert_ne!(srv.renew_epoch().expect("restore"), renewed);
}

#[test]
fn a_rebased_write_stays_beside_a_value_another_laptop_wrote_concurrently() {
    let dir = tempfile::tempdir().expect("dir");
    let (a_path, b_path) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
    let mut srv = new_server(&dir.path().join("server.sqlite"));
    let mut a = new_agent(&a_path, 1);
    let mut c = new_agent(&dir.path().join("c.sqlite"), 2);
    let shared = appointment(&mut a, NOW, "shared");
    sync(&mut a, &mut srv, NOW).expect("a");
    sync(&mut c, &mut srv, NOW).expect("c");
    drop(a);
    copy_store(&a_path, &b_path);
    let mut a = SqliteStore::open(&a_path).expect("a");
    let mut b = SqliteStore::open(&b_path).expect("b");
    // The original writes first under the shared identity; the copy, offline, writes with the
    // same seq; another laptop writes concurrently with the copy.
    set_note(&mut a, NOW + 1_000, shared, "from a");
    sync(&mut a, &mut srv, NOW + 1_000).expect("a");
    sync(&mut c, &mut srv, NOW + 1_000).expect("c sees a's");
    set_note(&mut c, NOW + 2_000, shared, "from c");
    set_note(&mut b, NOW + 2_000, shared, "from b");
    sync(&mut c, &mut srv, NOW + 2_000).expect("c");
    let (stats, _) = sync(&mut b, &mut srv, NOW + 3_000).expect("b heals");
    assert_eq!(stats.rebases, 1);
    let rec = srv.record(shared).expect("read").expect("held");
    let mut values: Vec<String> = rec
        .register(Field::Note)
        .expect("note")
        .siblings()
        .iter()
        .map(|s| format!("{:?}", s.value))
        .collect();
    values.sort();
    assert_eq!(
        values,
        vec![
            format!("{:?}", Value::Text("from b".into())),
            format!("{:?}", Value::Text("from c".into()))
        ],
        "the copy's note replaces what it replaced (the note it saw, a's under its name), not c's"
    );
    sync(&mut a, &mut srv, NOW + 4_000).expect("a");
    sync(&mut c, &mut srv, NOW + 4_000).expect("c");
    assert_eq!(digest(&b), digest(&srv));
    assert_eq!(digest(&c), digest(&srv));
}
