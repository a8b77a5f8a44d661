//! The sans-IO sync sessions driven against each other in memory (through real frame encoding,
//! by the same pumps production and the simulation use), on real SQLite stores: convergence,
//! scope isolation, authorization, replays, limits, the Hello deadline.

use tournee_core::clock::{Clock, ManualClock};
use tournee_core::export;
use tournee_core::limits::HELLO_TIMEOUT_MS;
use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::rng::SeededRng;
use tournee_core::store::{Identity, LocalAction, RecordEdit, ServerStore, Store};
use tournee_proto::auth::DeviceAuth;
use tournee_proto::frame::{self, FrameReader};
use tournee_proto::pump::{ClientPump, ServerPump};
use tournee_proto::session::{ClientSession, ServerSession, SessionStats};
use tournee_proto::wire::{pack, ClientMsg, ErrorCode, RejectReason, ServerMsg, PROTOCOL_VERSION};
use tournee_proto::ProtocolError;
use tournee_store::SqliteStore;
use uuid::Uuid;

const NOW: u64 = 1_790_000_000_000;
const UNIT: &str = "bus-80-1";

fn agent(device: u32, unit: &str, territory: &str) -> SqliteStore {
    let mut s = SqliteStore::open_in_memory().expect("store");
    s.set_identity(&Identity {
        device,
        unit: unit.into(),
        territory: territory.into(),
    })
    .expect("identity");
    s
}

fn server() -> SqliteStore {
    let mut s = tournee_report::facts::server_store_in_memory().expect("store");
    s.set_identity(&Identity::server()).expect("identity");
    s
}

fn auth(store: &SqliteStore) -> DeviceAuth {
    let id = store.identity().expect("identity").expect("set");
    DeviceAuth {
        actor: id.device,
        unit: id.unit,
        territory: id.territory,
    }
}

fn through_wire<T: serde::Serialize + serde::de::DeserializeOwned>(msg: &T) -> T {
    let mut r = FrameReader::new();
    r.push(&frame::encode(msg)).expect("frame");
    r.next_msg().expect("decode").expect("whole frame")
}

/// One session, run to completion. Returns both sides' counts.
fn sync(
    agent: &mut SqliteStore,
    server: &mut SqliteStore,
    now: u64,
) -> Result<(SessionStats, SessionStats), ProtocolError> {
    sync_at(agent, server, now, now)
}

/// One session where the laptop's clock reads `agent_now` and the server's `server_now`.
fn sync_at(
    agent: &mut SqliteStore,
    server: &mut SqliteStore,
    agent_now: u64,
    server_now: u64,
) -> Result<(SessionStats, SessionStats), ProtocolError> {
    let mut client = ClientPump::new(agent)?;
    let mut srv = ServerPump::new(ServerSession::new(auth(agent), server_now));
    for _ in 0..10_000 {
        // Each side's whole flight arrives as one read.
        let up = client.next_flight(agent)?;
        if !up.is_empty() {
            srv.handle_read(server_now, &up, server)?;
        }
        let mut down = Vec::new();
        srv.flush(server, |f| down.extend_from_slice(&f))?;
        if !down.is_empty() {
            client.handle_read(agent_now, &down, agent)?;
        }
        if client.ready_to_finish(agent)? {
            srv.handle_end()?;
            return Ok((client.session().stats(), srv.stats()));
        }
    }
    panic!("session did not converge");
}

fn appointment(store: &mut SqliteStore, now: u64, note: &str) -> Uuid {
    let unit = store.identity().expect("id").expect("set").unit;
    let id = Uuid::now_v7();
    let action = LocalAction {
        edits: vec![RecordEdit {
            id,
            kind: Kind::Appointment,
            scope: Scope::Unit(unit),
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

fn set(store: &mut SqliteStore, now: u64, id: Uuid, field: Field, value: Value) {
    let record = store.record(id).expect("read").expect("exists");
    store
        .write_local(
            now,
            &tournee_core::actions::set_fields(&record, vec![(field, value)]),
        )
        .expect("write");
}

fn unit_digest(server: &SqliteStore, unit: &str, territory: &str) -> String {
    export::digest(
        server,
        Some(&[Scope::Unit(unit.into()), Scope::Territory(territory.into())]),
    )
    .expect("digest")
}

fn agent_digest(agent: &SqliteStore) -> String {
    let id = agent.identity().expect("id").expect("set");
    export::digest(agent, Some(&id.scopes())).expect("digest")
}

#[test]
fn three_offline_agents_converge_with_the_server_and_keep_the_conflict() {
    let mut srv = server();
    let mut agents: Vec<SqliteStore> = (1..=3).map(|d| agent(d, UNIT, "80")).collect();
    let shared = appointment(&mut agents[0], NOW, "shared");
    for a in agents.iter_mut() {
        sync(a, &mut srv, NOW).expect("initial sync");
    }
    let mut mine = Vec::new();
    for (i, a) in agents.iter_mut().enumerate() {
        for k in 0..20 {
            mine.push(appointment(a, NOW + 1000 * k, &format!("agent {i} #{k}")));
        }
        set(
            a,
            NOW + 50_000,
            shared,
            Field::Note,
            Value::Text(format!("edit by {i}")),
        );
    }
    for _round in 0..2 {
        for a in agents.iter_mut() {
            sync(a, &mut srv, NOW + 100_000).expect("sync");
        }
    }
    let server_digest = unit_digest(&srv, UNIT, "80");
    for a in &agents {
        assert_eq!(agent_digest(a), server_digest);
        let rec = a.record(shared).expect("read").expect("present");
        assert_eq!(rec.conflicts(), vec![Field::Note]);
        assert_eq!(rec.register(Field::Note).expect("note").siblings().len(), 3);
        for id in &mine {
            assert!(
                a.record(*id).expect("read").is_some(),
                "nothing recorded is missing"
            );
        }
        assert_eq!(a.stats().expect("stats").pending, 0);
    }
    assert_eq!(srv.conflicted().expect("conflicts").len(), 1);
}

#[test]
fn another_unit_never_receives_records_and_crafted_changes_are_refused() {
    let mut srv = server();
    let mut a = agent(1, UNIT, "80");
    let mut other = agent(2, "bus-02-1", "02");
    let a_rec = appointment(&mut a, NOW, "A's");
    sync(&mut a, &mut srv, NOW).expect("sync a");
    sync(&mut other, &mut srv, NOW).expect("sync other");
    assert!(other.record(a_rec).expect("read").is_none(), "isolation");
    assert_eq!(other.stats().expect("stats").records, 0);

    // A crafted change: device 2 writes into unit bus-80-1 (its store accepts anything local).
    let mut crafted = agent(2, "bus-02-1", "02");
    let action = LocalAction {
        edits: vec![RecordEdit {
            id: a_rec,
            kind: Kind::Appointment,
            scope: Scope::Unit(UNIT.into()),
            create: true,
            sets: vec![(Field::Note, Value::Text("hijack".into()))],
        }],
    };
    crafted
        .write_local(NOW, &action)
        .expect("local write is not authorized locally");
    let before = unit_digest(&srv, UNIT, "80");
    let (_, server_stats) = sync(&mut crafted, &mut srv, NOW).expect("session itself succeeds");
    assert_eq!(server_stats.rejected, 1);
    assert_eq!(server_stats.applied, 0);
    assert_eq!(unit_digest(&srv, UNIT, "80"), before, "nothing merged");
    let rejected = crafted.rejected().expect("rejected");
    assert_eq!(rejected.len(), 1);
    assert!(
        rejected[0].reason.contains("out of scope"),
        "{}",
        rejected[0].reason
    );
    assert_eq!(crafted.stats().expect("stats").rejected, 1);
}

#[test]
fn devices_may_not_plan_forge_or_write_from_the_future() {
    let mut srv = server();
    let mut a = agent(1, UNIT, "80");
    appointment(&mut a, NOW, "ok");
    // Planning a passage or a stop is the scheduler's.
    let action = LocalAction {
        edits: vec![RecordEdit {
            id: Uuid::now_v7(),
            kind: Kind::Passage,
            scope: Scope::Unit(UNIT.into()),
            create: true,
            sets: vec![(Field::Date, Value::Text("2026-12-01".into()))],
        }],
    };
    a.write_local(NOW, &action).expect("local");
    // A laptop 7 days ahead.
    appointment(&mut a, NOW + 7 * 86_400_000, "future");
    let (_, stats) = sync(&mut a, &mut srv, NOW).expect("sync");
    assert_eq!(
        stats.rejected,
        1 + 6,
        "the passage field and the 6 future-stamped fields"
    );
    let reasons: Vec<String> = a
        .rejected()
        .expect("rejected")
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert!(reasons[0].contains("not allowed"), "{reasons:?}");
    assert!(
        reasons[1..].iter().all(|r| r.contains("clock ahead")),
        "{reasons:?}"
    );
    // Kept for review, never dropped: the agent still holds the future appointment.
    assert_eq!(a.stats().expect("stats").records, 3);
    let (_, ahead) = a.last_sync().expect("last").expect("synced");
    assert_eq!(ahead, 0, "clock offset recorded (same clock here)");
}

#[test]
fn replayed_batches_are_applied_once_and_gaps_are_refused() {
    let mut srv = server();
    let mut a = agent(1, UNIT, "80");
    for k in 0..5 {
        appointment(&mut a, NOW + k, "x");
    }
    let outbox: Vec<_> = a.outbox_after(0, 1000).expect("outbox");
    let changes: Vec<_> = outbox.iter().map(|(_, c)| c.clone()).collect();
    let batch = pack(&changes).remove(0);
    let dev = auth(&a);
    let mut s = ServerSession::new(dev.clone(), NOW);
    s.handle_message(
        NOW,
        ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            cursor: 0,
            acked: 0,
            last: 0,
            chain: [0; 16],
            own: false,
            epoch: 0,
            about: tournee_proto::wire::AgentAbout::default(),
        },
        &mut srv,
    )
    .expect("hello");
    s.handle_message(
        NOW,
        ClientMsg::Changes {
            first_seq: 1,
            batch: batch.clone(),
        },
        &mut srv,
    )
    .expect("batch");
    s.handle_message(
        NOW,
        ClientMsg::Changes {
            first_seq: 1,
            batch: batch.clone(),
        },
        &mut srv,
    )
    .expect("replay");
    let stats = s.stats();
    assert_eq!(stats.applied, 30);
    assert_eq!(stats.duplicates, 30);
    assert_eq!(srv.changelog_head().expect("head"), 30, "logged once");
    assert_eq!(srv.device_acked(1).expect("acked"), 30);
    let err = s
        .handle_message(
            NOW,
            ClientMsg::Changes {
                first_seq: 40,
                batch,
            },
            &mut srv,
        )
        .expect_err("gap");
    assert_eq!(err.code(), ErrorCode::SequenceGap);
}

#[test]
fn wrong_version_and_out_of_order_messages_end_the_session_with_a_code() {
    let mut srv = server();
    let a = agent(1, UNIT, "80");
    let mut s = ServerSession::new(auth(&a), NOW);
    let err = s
        .handle_message(
            NOW,
            ClientMsg::Hello {
                version: 99,
                cursor: 0,
                acked: 0,
                last: 0,
                chain: [0; 16],
                own: false,
                epoch: 0,
                about: tournee_proto::wire::AgentAbout::default(),
            },
            &mut srv,
        )
        .expect_err("version");
    assert_eq!(err.code(), ErrorCode::VersionMismatch);
    match s.poll_transmit() {
        Some(ServerMsg::Error {
            code: ErrorCode::VersionMismatch,
            message,
        }) => assert!(message.contains("99")),
        other => panic!("expected an error message, got {other:?}"),
    }
    let mut s = ServerSession::new(auth(&a), NOW);
    let err = s
        .handle_message(
            NOW,
            ClientMsg::Changes {
                first_seq: 1,
                batch: Default::default(),
            },
            &mut srv,
        )
        .expect_err("before hello");
    assert_eq!(err.code(), ErrorCode::Unexpected);
    let s = ServerSession::new(auth(&a), NOW);
    assert!(s.poll_timeout().is_some());
    let mut s = s;
    assert!(s.handle_timeout(NOW + 60_000).is_err(), "no Hello in time");
}

#[test]
fn the_scheduler_s_writes_reach_the_unit_and_the_territory_s_stops_reach_every_unit_there() {
    let mut srv = server();
    let mut a = agent(1, UNIT, "80");
    let mut b = agent(2, "bus-80-2", "80");
    let mut far = agent(3, "bus-02-1", "02");
    let stop = Uuid::now_v7();
    let home_visit = Uuid::now_v7();
    let action = LocalAction {
        edits: vec![
            RecordEdit {
                id: stop,
                kind: Kind::Stop,
                scope: Scope::Territory("80".into()),
                create: true,
                sets: vec![
                    (Field::Commune, Value::Text("80001".into())),
                    (Field::Label, Value::Text("Mairie".into())),
                ],
            },
            RecordEdit {
                id: home_visit,
                kind: Kind::Appointment,
                scope: Scope::Unit(UNIT.into()),
                create: true,
                sets: vec![
                    (Field::Location, Value::Text("domicile".into())),
                    (Field::Commune, Value::Text("80001".into())),
                    (Field::Start, Value::Int((NOW / 1000) as i64 + 3600)),
                    (Field::Duration, Value::Int(60)),
                    (Field::Status, Value::Text("unknown".into())),
                ],
            },
        ],
    };
    srv.write_local(NOW, &action).expect("scheduler write");
    for s in [&mut a, &mut b, &mut far] {
        sync(s, &mut srv, NOW).expect("sync");
    }
    assert!(a.record(stop).expect("r").is_some() && a.record(home_visit).expect("r").is_some());
    assert!(b.record(stop).expect("r").is_some() && b.record(home_visit).expect("r").is_none());
    assert!(far.record(stop).expect("r").is_none() && far.record(home_visit).expect("r").is_none());
    assert_eq!(agent_digest(&a), unit_digest(&srv, UNIT, "80"));
    assert_eq!(agent_digest(&b), unit_digest(&srv, "bus-80-2", "80"));
    // The unit marks the home visit; it reaches the server.
    set(
        &mut a,
        NOW + 1,
        home_visit,
        Field::Status,
        Value::Text("seen".into()),
    );
    let (_, st) = sync(&mut a, &mut srv, NOW + 2).expect("sync");
    assert_eq!(st.applied, 1);
    let rec = srv.record(home_visit).expect("r").expect("present");
    assert_eq!(rec.text(Field::Status), Some("seen"));
}

#[test]
fn a_status_going_back_to_unknown_through_a_crafted_write_is_refused() {
    let mut srv = server();
    let mut a = agent(1, UNIT, "80");
    let id = appointment(&mut a, NOW, "x");
    set(
        &mut a,
        NOW + 1,
        id,
        Field::Status,
        Value::Text("seen".into()),
    );
    sync(&mut a, &mut srv, NOW + 2).expect("sync");
    // Craft a write that saw 'seen' and sets 'unknown' (the CLI refuses this locally).
    let rec = a.record(id).expect("r").expect("present");
    let reg = rec.register(Field::Status).expect("status");
    let write = reg.prepare(
        1,
        tournee_core::hlc::Hlc::from_wall(NOW + 3),
        Value::Text("unknown".into()),
    );
    let change = tournee_core::record::Change {
        record: id,
        kind: Kind::Appointment,
        scope: Scope::Unit(UNIT.into()),
        field: Field::Status,
        write,
    };
    let acked = srv.device_acked(1).expect("acked");
    let dev = auth(&a);
    let result = srv
        .accept_batch(1, acked + 1, &[change], &mut |c, existing, referenced| {
            tournee_proto::auth::authorize(&dev, c, existing, referenced, NOW + 3)
        })
        .expect("batch");
    assert_eq!(result.rejected.len(), 1);
    assert!(matches!(
        result.rejected[0].reason,
        RejectReason::Invalid { .. }
    ));
    assert_eq!(
        srv.record(id)
            .expect("r")
            .expect("present")
            .text(Field::Status),
        Some("seen")
    );
}

#[test]
fn a_laptop_whose_clock_runs_a_week_ahead_is_corrected_by_its_first_sync_and_resends_the_refused() {
    let mut srv = server();
    let mut a = agent(1, UNIT, "80");
    let week = 7 * 86_400_000;
    // Before any sync the laptop cannot know: its writes are stamped a week ahead and refused.
    let early = appointment(&mut a, NOW + week, "before the first sync");
    let (_, st) = sync_at(&mut a, &mut srv, NOW + week, NOW).expect("sync");
    assert_eq!(st.rejected, 6);
    // Its clock is still a week ahead, but it learned the offset: new writes are accepted.
    let (_, offset) = a.last_sync().expect("last").expect("synced");
    assert!(offset <= -(week as i64) + 1000, "offset {offset}");
    let later = appointment(&mut a, NOW + week + 60_000, "after the first sync");
    let (_, st) = sync_at(&mut a, &mut srv, NOW + week + 60_000, NOW + 60_000).expect("sync");
    assert_eq!(st.rejected, 0, "corrected stamps are accepted");
    assert!(srv.record(later).expect("r").is_some());
    // The refused ones went again in that second session, stamped in server time.
    let early = srv.record(early).expect("r").expect("re-sent and taken");
    assert!(
        early.register(Field::Note).expect("note").siblings()[0]
            .hlc
            .wall_ms()
            < NOW + 120_000,
        "re-stamped in server time"
    );
    assert!(a.rejected().expect("rejected").is_empty());
    assert_eq!(a.stats().expect("stats").pending, 0);
    let rec = srv.record(later).expect("r").expect("present");
    let stamped = rec.register(Field::Note).expect("note").siblings()[0]
        .hlc
        .wall_ms();
    assert!(
        stamped < NOW + 120_000,
        "stamped in server time, not a week ahead"
    );
}

#[test]
fn a_refusal_whose_ack_was_lost_still_reaches_the_laptop() {
    let mut srv = server();
    let mut a = agent(1, UNIT, "80");
    let week = 7 * 86_400_000;
    appointment(&mut a, NOW + week, "from the future");
    // First session: the server commits the batch (refusing it), then the link drops before
    // its Ack reaches the laptop.
    let mut client = ClientSession::new(&a).expect("client");
    let mut s = ServerSession::new(auth(&a), NOW);
    while let Some(m) = client.poll_transmit() {
        s.handle_message(NOW, through_wire(&m), &mut srv)
            .expect("server");
    }
    assert_eq!(
        srv.device_acked(1).expect("acked"),
        6,
        "committed on the server"
    );
    drop(s);
    drop(client);
    // Second session: the laptop still believes nothing was acknowledged.
    let (_, st) = sync_at(&mut a, &mut srv, NOW + week, NOW).expect("sync");
    assert_eq!(st.duplicates, 6, "the resent batch is recognised");
    let rejected = a.rejected().expect("rejected");
    assert_eq!(rejected.len(), 6, "the refusals were not lost with the Ack");
    assert!(rejected.iter().all(|r| r.reason.contains("clock ahead")));
    assert_eq!(a.stats().expect("stats").pending, 0);
}

#[test]
fn a_changelog_batch_out_of_order_is_refused_without_moving_the_cursor() {
    let mut srv = server();
    let mut writer = agent(1, UNIT, "80");
    for k in 0..3 {
        appointment(&mut writer, NOW + k, "x");
        sync(&mut writer, &mut srv, NOW).expect("sync writer");
    }
    let mut reader = agent(2, UNIT, "80");
    let mut client = ClientSession::new(&reader).expect("client");
    let mut s = ServerSession::new(auth(&reader), NOW);
    while let Some(m) = client.poll_transmit() {
        s.handle_message(NOW, through_wire(&m), &mut srv)
            .expect("hello");
    }
    let mut down: Vec<ServerMsg> = std::iter::from_fn(|| s.poll_transmit()).collect();
    // Welcome, then the changelog: deliver the UpToDate before the batch it follows.
    let welcome = down.remove(0);
    client
        .handle_message(NOW, welcome, &mut reader)
        .expect("welcome");
    let up_to_date = down.pop().expect("UpToDate");
    assert!(matches!(up_to_date, ServerMsg::UpToDate { .. }));
    assert!(!down.is_empty());
    let err = client
        .handle_message(NOW, up_to_date, &mut reader)
        .expect_err("out of order");
    assert_eq!(err.code(), ErrorCode::Unexpected);
    assert_eq!(
        reader.stats().expect("stats").cursor,
        0,
        "the cursor did not skip the batch"
    );
    sync(&mut reader, &mut srv, NOW).expect("a clean session catches up");
    assert_eq!(agent_digest(&reader), unit_digest(&srv, UNIT, "80"));
}

/// The agent's whole first flight (Hello and every batch it queues before waiting).
fn first_flight(agent: &SqliteStore) -> Vec<ClientMsg> {
    let mut client = ClientPump::new(agent).expect("client");
    let mut reader = FrameReader::new();
    let mut flight = Vec::new();
    loop {
        let bytes = client.next_flight(agent).expect("fill");
        if bytes.is_empty() {
            return flight;
        }
        reader.push(&bytes).expect("frames");
        while let Some(m) = reader.next_msg().expect("decode") {
            flight.push(m);
        }
    }
}

/// Acks, in order, from what the server queued.
fn acks(srv: &mut ServerSession) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    while let Some(m) = srv.poll_transmit() {
        if let ServerMsg::Ack { seq, rejected, .. } = m {
            out.push((seq, rejected.len()));
        }
    }
    out
}

#[test]
fn a_flight_of_batches_in_one_transaction_equals_batch_by_batch() {
    let mut a = agent(1, UNIT, "80");
    for k in 0..700 {
        appointment(&mut a, NOW + k, &format!("a #{k}"));
    }
    // Both servers already hold another unit's log.
    let mut by_one = server();
    let mut by_flight = server();
    for srv in [&mut by_one, &mut by_flight] {
        let mut b = agent(2, "bus-80-2", "80");
        for k in 0..5 {
            appointment(&mut b, NOW + k, "other unit");
        }
        sync(&mut b, srv, NOW).expect("other unit");
    }
    let flight = first_flight(&a);
    let batches = flight
        .iter()
        .filter(|m| matches!(m, ClientMsg::Changes { .. }))
        .count();
    assert!(
        batches >= 3,
        "700 appointments make several batches, got {batches}"
    );

    let mut one = ServerSession::new(auth(&a), NOW);
    for m in flight.clone() {
        one.handle_message(NOW, m, &mut by_one).expect("one by one");
    }
    let mut all = ServerSession::new(auth(&a), NOW);
    all.handle_messages(NOW, flight, &mut by_flight)
        .expect("as a flight");

    let (each, once) = (acks(&mut one), acks(&mut all));
    assert_eq!(
        each.len(),
        batches,
        "one Ack per batch when they arrive one by one"
    );
    assert_eq!(once, vec![(4_200, 0)], "one Ack for the flight");
    assert_eq!(each.last(), once.last());
    assert_eq!(one.stats(), all.stats());
    assert_eq!(by_one.device_acked(1).expect("acked"), 4_200);
    assert_eq!(by_flight.device_acked(1).expect("acked"), 4_200);
    assert_eq!(
        unit_digest(&by_one, UNIT, "80"),
        unit_digest(&by_flight, UNIT, "80")
    );
    assert_eq!(
        by_one.changelog_head().expect("head"),
        by_flight.changelog_head().expect("head")
    );
    let scopes = [Scope::Unit(UNIT.into())];
    let (x, _) = by_one
        .changelog_after(0, &scopes, 99, 100_000)
        .expect("log");
    let (y, _) = by_flight
        .changelog_after(0, &scopes, 99, 100_000)
        .expect("log");
    assert_eq!(x.len(), 4_200);
    assert_eq!(x, y, "same changelog, same numbering");
}

#[test]
fn a_gap_inside_a_flight_applies_the_batches_before_it_and_ends_the_session() {
    let mut a = agent(1, UNIT, "80");
    for k in 0..400 {
        appointment(&mut a, NOW + k, &format!("#{k}"));
    }
    let mut flight = first_flight(&a);
    // Drop the second batch: the third now leaves a gap.
    let second = flight
        .iter()
        .enumerate()
        .filter(|(_, m)| matches!(m, ClientMsg::Changes { .. }))
        .nth(1)
        .map(|(i, _)| i)
        .expect("a second batch");
    let dropped = flight.remove(second);
    let ClientMsg::Changes { first_seq, .. } = dropped else {
        unreachable!()
    };
    let mut srv = server();
    let mut s = ServerSession::new(auth(&a), NOW);
    let err = s
        .handle_messages(NOW, flight, &mut srv)
        .expect_err("a gap ends the session");
    assert!(
        matches!(err, ProtocolError::SequenceGap { expected, .. } if expected == first_seq),
        "{err:?}"
    );
    assert_eq!(srv.device_acked(1).expect("acked"), first_seq - 1);
    assert_eq!(
        acks(&mut s),
        vec![(first_seq - 1, 0)],
        "the first batch is acknowledged"
    );
}

#[test]
fn changelog_reads_cut_anywhere_equal_a_change_by_change_log() {
    // Rows of many sizes from three devices in two scopes, read back from every cursor with
    // small limits: the result must be what a log of single changes would give.
    let mut srv = server();
    let mut agents = [
        agent(1, UNIT, "80"),
        agent(2, UNIT, "80"),
        agent(3, "bus-80-2", "80"),
    ];
    let mut expected: Vec<(u64, u32, Scope)> = Vec::new();
    let mut rng = SeededRng::new(7);
    let mut next = || rng.next_u64();
    for round in 0..12 {
        for (i, a) in agents.iter_mut().enumerate() {
            for k in 0..(next() % 40) {
                appointment(a, NOW + round * 100 + k, "x");
            }
            let before = srv.changelog_head().expect("head");
            sync(a, &mut srv, NOW + round * 100).expect("sync");
            let after = srv.changelog_head().expect("head");
            let scope = a.identity().expect("id").expect("set").scopes()[0].clone();
            for g in before + 1..=after {
                expected.push((g, i as u32 + 1, scope.clone()));
            }
        }
    }
    let head = srv.changelog_head().expect("head");
    assert_eq!(expected.len() as u64, head, "every change numbered once");
    let scopes = [Scope::Unit(UNIT.into()), Scope::Unit("bus-80-2".into())];
    for (scope_set, exclude) in [(&scopes[..1], 1u32), (&scopes[..], 2), (&scopes[1..], 99)] {
        let want: Vec<u64> = expected
            .iter()
            .filter(|(_, d, s)| scope_set.contains(s) && *d != exclude)
            .map(|(g, _, _)| *g)
            .collect();
        for limit in [1usize, 3, 17, 64, 1_000] {
            let start = next() % 10;
            let mut cursor = start;
            let mut got: Vec<u64> = Vec::new();
            for _ in 0..100_000 {
                let (entries, scanned) = srv
                    .changelog_after(cursor, scope_set, exclude, limit)
                    .expect("read");
                assert!(entries.len() <= limit);
                assert!(scanned >= cursor);
                got.extend(entries.iter().map(|(g, _)| *g));
                if scanned == head {
                    break;
                }
                assert!(scanned > cursor, "progress at {cursor} with limit {limit}");
                cursor = scanned;
            }
            let want_from: Vec<u64> = want.iter().copied().filter(|g| *g > start).collect();
            assert_eq!(got, want_from, "limit {limit}, exclude {exclude}");
        }
    }
}

#[test]
fn the_server_pump_ends_a_session_without_hello_at_the_session_s_deadline() {
    let mut srv = server();
    let a = agent(1, UNIT, "80");
    let clock = ManualClock::new(NOW);
    let mut pump = ServerPump::new(ServerSession::new(auth(&a), clock.now_ms()));
    let deadline = pump.poll_timeout().expect("a Hello deadline");
    assert_eq!(deadline, NOW + HELLO_TIMEOUT_MS);
    // Part of a Hello is not a Hello: the deadline stands.
    let hello = frame::encode(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        cursor: 0,
        acked: 0,
        last: 0,
        chain: [0; 16],
        own: false,
        epoch: 0,
        about: tournee_proto::wire::AgentAbout::default(),
    });
    clock.set(deadline - 1);
    pump.handle_read(clock.now_ms(), &hello[..3], &mut srv)
        .expect("a partial frame waits");
    pump.handle_timeout(clock.now_ms())
        .expect("not due one millisecond early");
    assert_eq!(pump.poll_timeout(), Some(deadline));
    clock.advance(1);
    let err = pump
        .handle_timeout(clock.now_ms())
        .expect_err("no Hello in time");
    assert!(matches!(err, ProtocolError::Timeout("Hello")), "{err:?}");
    assert_eq!(err.code(), ErrorCode::Unexpected);
    // The agent is told why before the connection closes.
    let mut r = FrameReader::new();
    r.push(&pump.error_frame(&err)).expect("frame");
    match r.next_msg::<ServerMsg>().expect("decode") {
        Some(ServerMsg::Error { code, message }) => {
            assert_eq!(code, ErrorCode::Unexpected);
            assert!(message.contains("Hello"), "{message}");
        }
        other => panic!("expected an Error, got {other:?}"),
    }
    // A session that said Hello in time has no deadline left.
    let mut pump = ServerPump::new(ServerSession::new(auth(&a), NOW));
    pump.handle_read(NOW + 1, &hello, &mut srv).expect("hello");
    assert_eq!(pump.poll_timeout(), None);
    pump.handle_timeout(NOW + 10 * HELLO_TIMEOUT_MS)
        .expect("nothing to time out once active");
}

#[test]
fn the_server_pump_hands_one_read_to_the_session_as_flights_not_message_by_message() {
    let mut a = agent(1, UNIT, "80");
    for k in 0..2_000 {
        appointment(&mut a, NOW + k, &format!("#{k}"));
    }
    let flight = first_flight(&a);
    let batches = flight
        .iter()
        .filter(|m| matches!(m, ClientMsg::Changes { .. }))
        .count();
    assert!(
        batches > tournee_core::limits::SESSION_FLIGHT_BATCHES_MAX,
        "{batches}"
    );
    let bytes: Vec<u8> = flight.iter().flat_map(frame::encode).collect();
    let mut srv = server();
    let mut pump = ServerPump::new(ServerSession::new(auth(&a), NOW));
    pump.handle_read(NOW, &bytes, &mut srv).expect("one read");
    let mut down = Vec::new();
    pump.flush(&srv, |f| down.push(f)).expect("flush");
    let acks: Vec<u64> = down
        .iter()
        .filter_map(|f| match through_wire_bytes(f) {
            ServerMsg::Ack { seq, .. } => Some(seq),
            _ => None,
        })
        .collect();
    // One Ack per flight (message by message would give one per batch).
    let per_flight = tournee_core::limits::SESSION_FLIGHT_BATCHES_MAX;
    assert_eq!(acks.len(), batches.div_ceil(per_flight), "{acks:?}");
    assert_eq!(acks.last().copied(), Some(12_000));
    assert_eq!(srv.device_acked(1).expect("acked"), 12_000);
    assert!(!pump.wants_fill(), "flushed until nothing was pending");
}

fn through_wire_bytes(f: &[u8]) -> ServerMsg {
    let mut r = FrameReader::new();
    r.push(f).expect("frame");
    r.next_msg().expect("decode").expect("whole frame")
}

/// A request at `appointment`, recorded on the laptop at `now`.
fn request_at(store: &mut SqliteStore, now: u64, appointment: Uuid) -> Uuid {
    let unit = store.identity().expect("id").expect("set").unit;
    let id = Uuid::now_v7();
    let action = LocalAction {
        edits: vec![RecordEdit {
            id,
            kind: Kind::Request,
            scope: Scope::Unit(unit),
            create: true,
            sets: vec![
                (Field::Appointment, Value::Id(appointment)),
                (Field::Partner, Value::Text("caf".into())),
                (Field::Theme, Value::Text("social_sante".into())),
                (Field::Level, Value::Text("information".into())),
                (Field::Outcome, Value::Text("resolue_sur_place".into())),
            ],
        }],
    };
    store.write_local(now, &action).expect("write");
    id
}

#[test]
fn changes_built_on_a_refused_creation_are_refused_then_go_again_with_it() {
    let mut srv = server();
    let mut a = agent(1, UNIT, "80");
    let week = 7 * 86_400_000;
    // Stamped a week ahead before the first sync: the appointment is refused.
    let early = appointment(&mut a, NOW + week, "before the first sync");
    sync_at(&mut a, &mut srv, NOW + week, NOW).expect("sync");
    assert!(srv.record(early).expect("r").is_none());
    // The laptop still shows it; the conseillère adds a note and a request at it.
    set(
        &mut a,
        NOW + week + 1_000,
        early,
        Field::Note,
        Value::Text("rappeler".into()),
    );
    let request = request_at(&mut a, NOW + week + 1_000, early);
    // The next session: the note and the request go first (they were queued before the
    // creation is written again, at Welcome), so the server, not holding the appointment yet,
    // refuses them rather than keep an appointment holding only a note or a request naming
    // nothing; the creation follows, then they go again after it.
    sync_at(&mut a, &mut srv, NOW + week + 2_000, NOW + 2_000).expect("sync");
    let rec = srv.record(early).expect("r").expect("created whole");
    assert!(rec.value(Field::Location).is_some());
    assert_eq!(
        rec.value(Field::Note),
        Some(&Value::Text("rappeler".into()))
    );
    let req = srv.record(request).expect("r").expect("request taken");
    assert_eq!(req.value(Field::Appointment), Some(&Value::Id(early)));
    assert!(a.rejected().expect("rejected").is_empty());
    assert_eq!(agent_digest(&a), unit_digest(&srv, UNIT, "80"));
}

#[test]
fn a_record_s_changes_are_never_split_across_batches() {
    // 6 changes per appointment: 1,024 (the batch bound, and the outbox read) is no multiple.
    let mut a = agent(1, UNIT, "80");
    let ids: Vec<Uuid> = (0..400)
        .map(|i| appointment(&mut a, NOW + i, &format!("rendez-vous {i}")))
        .collect();
    let mut client = ClientSession::new(&a).expect("client");
    let mut seen: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::new();
    let mut batches = 0;
    let mut next = 1;
    loop {
        let msgs: Vec<ClientMsg> = std::iter::from_fn(|| client.poll_transmit()).collect();
        let mut any = false;
        for m in msgs {
            if let ClientMsg::Changes { first_seq, batch } = m {
                assert_eq!(first_seq, next, "contiguous");
                let changes = batch.to_changes().expect("changes");
                next += changes.len() as u64;
                let records: std::collections::HashSet<Uuid> =
                    changes.iter().map(|c| c.record).collect();
                for r in records {
                    *seen.entry(r).or_default() += 1;
                }
                batches += 1;
                any = true;
            }
        }
        if !any {
            break;
        }
        client.fill(&a).expect("fill");
    }
    assert!(batches >= 3, "{batches} batches");
    assert_eq!(next - 1, 400 * 6);
    for id in ids {
        assert_eq!(seen.get(&id), Some(&1), "{id} in one batch");
    }
}
