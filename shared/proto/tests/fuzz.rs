//! Fuzzing of the frame decoder and the message handlers of protocol `tournee/1`, by
//! proptest-driven byte and message mutation. cargo-fuzz needs a nightly toolchain (libFuzzer's
//! sanitizer flags); this runs on stable, inside the ordinary test suite.
//!
//! For every input:
//! - `FrameReader` and `decode_body` never panic; every outcome is a message or a typed
//!   `FrameError`; where the stream is cut into chunks does not change the outcome; a drained
//!   reader never holds more than one maximal frame with its header; decoded `BVec`s stay within
//!   their bounds;
//! - `Batch::to_changes` accepts exactly the batches whose structure is consistent;
//! - the sessions (`ServerSession` on a real server store, `ClientSession` on a real agent store)
//!   never panic and fail only with a typed `ProtocolError`; SQLite stays consistent; a device
//!   never gets a change into another unit's (or any territory's) changelog, and an agent never
//!   takes a record outside its scopes; whatever a session sends decodes on the other side;
//! - adversarial length prefixes are refused fast, before anything is allocated for them.
//!
//! "No allocation beyond the limits" is checked structurally: a counting global allocator needs
//! `unsafe impl GlobalAlloc`, which the workspace's `unsafe_code = "forbid"` refuses.
//!
//! The corpus in `tests/corpus/` (seeds of every message variant, edge cases, past crashers) is
//! replayed by `every_corpus_file_replays_without_panic` and mutated by the fuzz tests; see its
//! README. A failing fuzz case prints its input as hex, ready to become a corpus file.
//!
//! Longer runs (the case count applies to every property; `--nocapture` shows each one's rate and
//! what the sessions did): about 6 minutes on 2 cores, most of it in the two session properties,
//! `PROPTEST_CASES=100000 cargo test -p tournee-shared --test fuzz --release -- --nocapture`

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use flate2::write::DeflateEncoder;
use flate2::Compression;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{TestCaseResult, TestRunner};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tournee_core::actions::set_fields;
use tournee_core::export;
use tournee_core::hlc::Hlc;
use tournee_core::limits::{
    ACK_REJECTIONS_MAX, BATCH_CHANGES_MAX, BATCH_RECORDS_MAX, FIELD_CLOCK_ACTORS_MAX,
    FRAME_BYTES_MAX, FRAME_INFLATED_BYTES_MAX, HLC_FUTURE_DRIFT_MAX_MS, READ_CHUNK_BYTES,
};
use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::register::Actor;
use tournee_core::store::{Identity, LocalAction, RecordEdit, ServerStore, Store};
use tournee_proto::auth::DeviceAuth;
use tournee_proto::bounded::BVec;
use tournee_proto::frame::{self, decode_body, FrameError, FrameReader};
use tournee_proto::session::{ClientSession, ServerSession};
use tournee_proto::wire::{
    Batch, ClientMsg, ErrorCode, FieldWrite, RecordHead, RejectReason, Rejection, ServerMsg,
    BATCH_CLOCK_ENTRIES_MAX, PROTOCOL_VERSION,
};
use tournee_proto::ProtocolError;
use tournee_store::SqliteStore;
use uuid::Uuid;

const NOW: u64 = 1_790_000_000_000;
const START: i64 = (NOW / 1000) as i64 + 86_400;
const DEVICE: Actor = 1;
const UNIT: &str = "bus-80-1";
const TERRITORY: &str = "80";
const OTHER_UNIT: &str = "bus-02-1";
const OTHER_TERRITORY: &str = "02";
const HEADER: usize = 4;
/// An actor that writes nothing: `changelog_after` excluding it lists every entry.
const NOBODY: Actor = Actor::MAX;

const ID_BASE: u128 = 0x0199_6a00_0000_7000_8000_0000_0000_0000;
const CITIZEN: Uuid = Uuid::from_u128(ID_BASE | 1);
const APPT: Uuid = Uuid::from_u128(ID_BASE | 2);
const REQUEST: Uuid = Uuid::from_u128(ID_BASE | 3);
const FOREIGN: Uuid = Uuid::from_u128(ID_BASE | 4);
const STOP: Uuid = Uuid::from_u128(ID_BASE | 0x10);
const ROUND: Uuid = Uuid::from_u128(ID_BASE | 0x11);
const PASSAGE: Uuid = Uuid::from_u128(ID_BASE | 0x12);
const PLANNED: Uuid = Uuid::from_u128(ID_BASE | 0x13);
const OTHER_STOP: Uuid = Uuid::from_u128(ID_BASE | 0x20);
const OTHER_APPT: Uuid = Uuid::from_u128(ID_BASE | 0x21);
const KNOWN_IDS: [Uuid; 10] = [
    CITIZEN, APPT, REQUEST, FOREIGN, STOP, ROUND, PASSAGE, PLANNED, OTHER_STOP, OTHER_APPT,
];

// ------------------------------------------------------------------------------------------
// Configuration and small helpers
// ------------------------------------------------------------------------------------------

/// `PROPTEST_CASES` when set, else `default_cases`. Failures are not persisted by proptest: a
/// crasher goes into `tests/corpus/` instead (its hex is printed).
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}

/// Run `body` on the cases of `strategy` (see `config`), then print the rate. A failure panics
/// with the shrunk input.
fn fuzz<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    body: impl Fn(S::Value) -> TestCaseResult,
) {
    let config = config(default_cases);
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let started = Instant::now();
    if let Err(e) = runner.run(&strategy, body) {
        panic!("{name}: {e}");
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{name}: {cases} cases in {secs:.2} s ({:.0} cases/s)",
        f64::from(cases) / secs.max(1e-9)
    );
}

/// Bytes whose `Debug` is hex, so a failing case can be pasted into a corpus file with
/// `echo HEX | xxd -r -p > shared/tests/corpus/crash-NAME.bin`.
#[derive(Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes, hex {}", self.0.len(), hex::encode(&self.0))
    }
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn corpus_files() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let entries = fs::read_dir(corpus_dir()).expect("tests/corpus exists");
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        if path.extension().is_some_and(|e| e == "bin") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((name, fs::read(&path).expect("read corpus file")));
        }
    }
    out.sort();
    out
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("deflate");
    enc.finish().expect("deflate")
}

/// A frame with the given flags byte and payload, whatever they hold.
fn raw_frame(flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len() + 1).expect("small");
    let mut out = len.to_be_bytes().to_vec();
    out.push(flags);
    out.extend_from_slice(payload);
    out
}

fn payload_of<T: Serialize>(msg: &T) -> Vec<u8> {
    postcard::to_allocvec(msg).expect("encode")
}

fn stream_of<T: Serialize>(msgs: &[T]) -> Vec<u8> {
    msgs.iter().flat_map(frame::encode).collect()
}

// ------------------------------------------------------------------------------------------
// Stores and seeds
// ------------------------------------------------------------------------------------------

fn unit(u: &str) -> Scope {
    Scope::Unit(u.into())
}

fn territory(t: &str) -> Scope {
    Scope::Territory(t.into())
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn create(id: Uuid, kind: Kind, scope: Scope, sets: Vec<(Field, Value)>) -> RecordEdit {
    RecordEdit {
        id,
        kind,
        scope,
        create: true,
        sets,
    }
}

fn appointment_sets(note: &str) -> Vec<(Field, Value)> {
    vec![
        (Field::Location, text("arret")),
        (Field::Commune, text("80021")),
        (Field::Start, Value::Int(START)),
        (Field::Duration, Value::Int(30)),
        (Field::Status, text("unknown")),
        (Field::Note, text(note)),
    ]
}

fn set(store: &mut SqliteStore, now: u64, id: Uuid, sets: Vec<(Field, Value)>) {
    let record = store.record(id).expect("read").expect("exists");
    store
        .write_local(now, &set_fields(&record, sets))
        .expect("local edit");
}

/// The device's agent store: its own records pending, and a crafted write into another unit
/// (its local store accepts anything; the server refuses it).
fn agent_fixture() -> SqliteStore {
    let mut s = SqliteStore::open_in_memory().expect("store");
    s.set_identity(&Identity {
        device: DEVICE,
        unit: UNIT.into(),
        territory: TERRITORY.into(),
    })
    .expect("identity");
    let mut appt =
        appointment_sets(&"Apporter le dossier de retraite et l'avis d'imposition. ".repeat(3));
    appt.push((Field::Citizen, Value::Id(CITIZEN)));
    let action = LocalAction {
        edits: vec![
            create(
                CITIZEN,
                Kind::Citizen,
                unit(UNIT),
                vec![
                    (Field::Name, text("Camille Martin")),
                    (Field::BirthYear, Value::Int(1950)),
                    (Field::Commune, text("80021")),
                ],
            ),
            create(APPT, Kind::Appointment, unit(UNIT), appt),
            create(
                REQUEST,
                Kind::Request,
                unit(UNIT),
                vec![
                    (Field::Appointment, Value::Id(APPT)),
                    (Field::Level, text("information")),
                    (Field::Duration, Value::Int(15)),
                ],
            ),
        ],
    };
    s.write_local(NOW, &action).expect("local write");
    set(&mut s, NOW + 1, APPT, vec![(Field::Status, text("seen"))]);
    let crafted = LocalAction {
        edits: vec![create(
            FOREIGN,
            Kind::Appointment,
            unit(OTHER_UNIT),
            vec![(Field::Note, text("hijack"))],
        )],
    };
    s.write_local(NOW + 2, &crafted)
        .expect("crafted local write");
    s
}

/// The server: the scheduler's records for the device's unit and territory, and for another
/// unit and territory.
fn server_fixture() -> SqliteStore {
    let mut s = tournee_report::facts::server_store_in_memory().expect("store");
    s.set_identity(&Identity::server()).expect("identity");
    let mut planned = appointment_sets("planned by the scheduler");
    planned.push((Field::Passage, Value::Id(PASSAGE)));
    let action = LocalAction {
        edits: vec![
            create(
                STOP,
                Kind::Stop,
                territory(TERRITORY),
                vec![
                    (Field::Commune, text("80021")),
                    (Field::Label, text("Mairie")),
                ],
            ),
            create(
                ROUND,
                Kind::Round,
                unit(UNIT),
                vec![
                    (Field::Name, text("Tournée nord")),
                    (Field::EveryWeeks, Value::Int(2)),
                    (Field::ValidFrom, text("2026-09-01")),
                ],
            ),
            create(
                PASSAGE,
                Kind::Passage,
                unit(UNIT),
                vec![
                    (Field::Round, Value::Id(ROUND)),
                    (Field::Stop, Value::Id(STOP)),
                    (Field::Date, text("2026-09-25")),
                    (Field::PlannedStart, Value::Int(START)),
                    (Field::PlannedEnd, Value::Int(START + 3600)),
                    (Field::Status, text("planifie")),
                ],
            ),
            create(PLANNED, Kind::Appointment, unit(UNIT), planned),
            create(
                OTHER_STOP,
                Kind::Stop,
                territory(OTHER_TERRITORY),
                vec![
                    (Field::Commune, text("80021")),
                    (Field::Label, text("Place")),
                ],
            ),
            create(
                OTHER_APPT,
                Kind::Appointment,
                unit(OTHER_UNIT),
                appointment_sets("another unit's"),
            ),
        ],
    };
    s.write_local(NOW, &action).expect("scheduler write");
    s
}

fn device_auth() -> DeviceAuth {
    DeviceAuth {
        actor: DEVICE,
        unit: UNIT.into(),
        territory: TERRITORY.into(),
    }
}

/// One real session between the fixtures, recording every message each way.
fn transcript(
    agent: &mut SqliteStore,
    server: &mut SqliteStore,
    client_log: &mut Vec<ClientMsg>,
    server_log: &mut Vec<ServerMsg>,
) {
    let mut client = ClientSession::new(agent).expect("client session");
    let mut srv = ServerSession::new(device_auth(), NOW);
    for _ in 0..100 {
        while let Some(m) = client.poll_transmit() {
            client_log.push(m.clone());
            srv.handle_message(NOW, m, server).expect("server takes it");
        }
        srv.fill(server).expect("server fill");
        while let Some(m) = srv.poll_transmit() {
            server_log.push(m.clone());
            client
                .handle_message(NOW, m, agent)
                .expect("client takes it");
        }
        client.fill(agent).expect("client fill");
        if client.is_synced() && !client.has_pending_transmit() {
            return;
        }
    }
    panic!("the seed session did not converge");
}

/// Messages of every variant: two real sessions (upload with a refused change, download of the
/// scheduler's records, then a passage marked and a note edited), plus synthesized ones.
struct Seeds {
    client: Vec<ClientMsg>,
    server: Vec<ServerMsg>,
    /// Byte streams to mutate: each message's frame, whole transcripts, edge cases, the corpus.
    streams: Vec<Vec<u8>>,
    /// Postcard payloads (unframed) of every message.
    payloads: Vec<Vec<u8>>,
}

fn seed_messages() -> (Vec<ClientMsg>, Vec<ServerMsg>) {
    let mut agent = agent_fixture();
    let mut server = server_fixture();
    let (mut client, mut srv) = (Vec::new(), Vec::new());
    transcript(&mut agent, &mut server, &mut client, &mut srv);
    set(
        &mut agent,
        NOW + 10,
        PASSAGE,
        vec![
            (Field::Status, text("effectue")),
            (Field::ActualStart, Value::Int(START)),
        ],
    );
    set(
        &mut agent,
        NOW + 11,
        APPT,
        vec![(Field::Note, text("second visit"))],
    );
    transcript(&mut agent, &mut server, &mut client, &mut srv);
    client.push(ClientMsg::Hello {
        version: PROTOCOL_VERSION + 1,
        cursor: u64::MAX,
        acked: u64::MAX,
        last: u64::MAX,
        chain: [0; 16],
        own: false,
        epoch: 0,
        about: tournee_proto::wire::AgentAbout::default(),
    });
    client.push(ClientMsg::Changes {
        first_seq: 1,
        batch: Batch::default(),
    });
    client.push(ClientMsg::Rebased);
    srv.push(ServerMsg::Rebase {
        acked: 3,
        chain: [0xa5; 16],
    });
    srv.push(ServerMsg::Welcome {
        version: PROTOCOL_VERSION + 1,
        server_time_ms: u64::MAX,
        acked: u64::MAX,
        epoch: u64::MAX,
        devices: tournee_proto::bounded::BVec(vec![
            tournee_proto::wire::DeviceName {
                actor: 2,
                name: "Portable 2".into(),
            },
            tournee_proto::wire::DeviceName {
                actor: u32::MAX,
                name: "é".repeat(200),
            },
        ]),
    });
    let reasons = vec![
        RejectReason::OutOfScope {
            scope: "unit:bus-02-1".into(),
        },
        RejectReason::FieldNotAllowed {
            kind: "passage".into(),
            field: "date".into(),
        },
        RejectReason::ForeignDot { actor: 7 },
        RejectReason::ClockAhead {
            ahead_ms: 7 * 86_400_000,
        },
        RejectReason::Invalid {
            detail: "duration: 0 min".into(),
        },
    ];
    srv.push(ServerMsg::Ack {
        after: 0,
        seq: 6,
        rejected: BVec(
            reasons
                .into_iter()
                .zip(2..)
                .map(|(reason, seq)| Rejection { seq, reason })
                .collect(),
        ),
    });
    for code in [
        ErrorCode::VersionMismatch,
        ErrorCode::Malformed,
        ErrorCode::Unexpected,
        ErrorCode::Unauthorized,
        ErrorCode::Unavailable,
        ErrorCode::SequenceGap,
    ] {
        srv.push(ServerMsg::Error {
            code,
            message: format!("{code:?}: the session ends"),
        });
    }
    srv.push(ServerMsg::UpToDate {
        after: u64::MAX,
        cursor: 0,
    });
    (client, srv)
}

static SEEDS: LazyLock<Seeds> = LazyLock::new(|| {
    let (client, server) = seed_messages();
    let mut streams: Vec<Vec<u8>> = client.iter().map(frame::encode).collect();
    streams.extend(server.iter().map(frame::encode));
    streams.push(stream_of(&client));
    streams.push(stream_of(&server));
    streams.extend(edge_cases().into_iter().map(|(_, b)| b));
    streams.extend(corpus_files().into_iter().map(|(_, b)| b));
    let mut payloads: Vec<Vec<u8>> = client.iter().map(payload_of).collect();
    payloads.extend(server.iter().map(payload_of));
    Seeds {
        client,
        server,
        streams,
        payloads,
    }
});

fn variant_of_client(m: &ClientMsg) -> &'static str {
    match m {
        ClientMsg::Hello { .. } => "hello",
        ClientMsg::Changes { .. } => "changes",
        ClientMsg::Rebased => "rebased",
    }
}

fn variant_of_server(m: &ServerMsg) -> &'static str {
    match m {
        ServerMsg::Welcome { .. } => "welcome",
        ServerMsg::Ack { .. } => "ack",
        ServerMsg::Changes { .. } => "changes",
        ServerMsg::UpToDate { .. } => "uptodate",
        ServerMsg::Error { .. } => "error",
        ServerMsg::Rebase { .. } => "rebase",
    }
}

/// A `ClientMsg::Changes` payload whose first record's scope is `Unit(marker)` and whose first
/// write holds `Text(marker)`, for locating a string's length prefix.
fn marked_changes(marker: &str) -> ClientMsg {
    ClientMsg::Changes {
        first_seq: 1,
        batch: Batch {
            records: BVec(vec![RecordHead {
                id: *APPT.as_bytes(),
                kind: Kind::Appointment,
                scope: Scope::Unit(format!("{marker}-scope")),
                fields: 1,
            }]),
            fields: BVec(vec![FieldWrite {
                field: Field::Note,
                actor: DEVICE,
                counter: 1,
                hlc_delta: 1,
                ctx_len: 0,
                value: Value::Text(format!("{marker}-text")),
            }]),
            clocks: BVec::new(),
        },
    }
}

/// Replace the one-byte length prefix of the string `needle` inside `payload` with `len`.
fn with_string_length(payload: &[u8], needle: &str, len: u64) -> Vec<u8> {
    let mut pattern = vec![u8::try_from(needle.len()).expect("short needle")];
    pattern.extend_from_slice(needle.as_bytes());
    let at = payload
        .windows(pattern.len())
        .position(|w| w == pattern.as_slice())
        .expect("needle present");
    let mut out = payload[..at].to_vec();
    out.extend(varint(len));
    out.extend_from_slice(&payload[at + 1..]);
    out
}

/// Which decoder a payload is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Client,
    Server,
}

/// Payloads whose length prefix (of a `BVec` or a string) announces `len` elements or bytes,
/// followed by what a real message would hold (far fewer). Each names its limit, if any.
fn length_prefixed(len: u64) -> Vec<(&'static str, Dir, Option<usize>, Vec<u8>)> {
    let marked = payload_of(&marked_changes("MARKER"));
    let mut p = Vec::new();
    // ClientMsg::Changes (variant 1), first_seq 1, then records / fields / clocks.
    let mut records = vec![1, 1];
    records.extend(varint(len));
    records.extend_from_slice(&marked[3..]);
    p.push(("records", Dir::Client, Some(BATCH_RECORDS_MAX), records));
    let mut fields = vec![1, 1, 0];
    fields.extend(varint(len));
    fields.extend_from_slice(&[25, 1, 1, 2, 0, 0]);
    p.push(("fields", Dir::Client, Some(BATCH_CHANGES_MAX), fields));
    let mut clocks = vec![1, 1, 0, 0];
    clocks.extend(varint(len));
    clocks.extend_from_slice(&[1, 1]);
    p.push(("clocks", Dir::Client, Some(BATCH_CLOCK_ENTRIES_MAX), clocks));
    // ServerMsg::Ack (variant 1), seq 5, then the rejections.
    let mut ack = vec![1, 5];
    ack.extend(varint(len));
    ack.extend_from_slice(&[2, 2, 7]);
    p.push(("rejections", Dir::Server, Some(ACK_REJECTIONS_MAX), ack));
    // ServerMsg::Changes (variant 2), after 0, cursor 1, then the records.
    let mut down = vec![2, 0, 1];
    down.extend(varint(len));
    down.extend_from_slice(&marked[3..]);
    p.push(("records down", Dir::Server, Some(BATCH_RECORDS_MAX), down));
    // ServerMsg::Error (variant 4), code 0, then the message.
    let mut error = vec![4, 0];
    error.extend(varint(len));
    error.extend_from_slice(b"message");
    p.push(("error message", Dir::Server, None, error));
    p.push((
        "scope string",
        Dir::Client,
        None,
        with_string_length(&marked, "MARKER-scope", len),
    ));
    p.push((
        "text value",
        Dir::Client,
        None,
        with_string_length(&marked, "MARKER-text", len),
    ));
    p
}

/// Hand-made streams at the edges of the frame format, plus adversarial length prefixes.
fn edge_cases() -> Vec<(String, Vec<u8>)> {
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
    let over = u32::try_from(FRAME_BYTES_MAX + 1).expect("fits");
    let max = u32::try_from(FRAME_BYTES_MAX).expect("fits");
    let bomb = deflate(&vec![0u8; FRAME_INFLATED_BYTES_MAX + 1024]);
    let mut e: Vec<(String, Vec<u8>)> = vec![
        ("edge-header-only.bin".into(), vec![0, 0, 0]),
        ("edge-empty-frame.bin".into(), vec![0, 0, 0, 0]),
        (
            "edge-oversized-header.bin".into(),
            over.to_be_bytes().to_vec(),
        ),
        ("edge-u32-max-header.bin".into(), vec![0xff; 4]),
        ("edge-maximal-header-no-body.bin".into(), {
            let mut v = max.to_be_bytes().to_vec();
            v.extend_from_slice(&[0, 0, 0]);
            v
        }),
        (
            "edge-truncated-body.bin".into(),
            hello[..hello.len() - 1].to_vec(),
        ),
        (
            "edge-unknown-flags.bin".into(),
            raw_frame(0x80, &[0, 1, 0, 0]),
        ),
        (
            "edge-corrupt-deflate.bin".into(),
            raw_frame(1, &[0xff, 0xff, 0xff]),
        ),
        ("edge-empty-deflate.bin".into(), raw_frame(1, &[])),
        ("edge-deflate-bomb.bin".into(), raw_frame(1, &bomb)),
        ("edge-trailing-garbage.bin".into(), {
            let mut v = hello.clone();
            v.extend_from_slice(&[0, 0, 0, 9, 0, 1, 2]);
            v
        }),
        ("edge-hello-then-oversized.bin".into(), {
            let mut v = hello.clone();
            v.extend_from_slice(&over.to_be_bytes());
            v
        }),
        (
            "edge-unknown-variant.bin".into(),
            raw_frame(0, &[9, 1, 1, 1]),
        ),
        (
            "edge-varint-overflow.bin".into(),
            raw_frame(
                0,
                &[
                    0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                ],
            ),
        ),
    ];
    for (what, _, limit, _) in length_prefixed(0) {
        let over = limit.map(|l| l as u64 + 1);
        for (tag, n) in [("over-limit", over), ("u32-max", Some(u64::from(u32::MAX)))] {
            let Some(n) = n else { continue };
            let payload = length_prefixed(n)
                .into_iter()
                .find(|(w, ..)| *w == what)
                .map(|(.., p)| p)
                .expect("the same list");
            let name = format!("edge-{tag}-{}.bin", what.replace(' ', "-"));
            e.push((name, raw_frame(0, &payload)));
        }
    }
    e
}

/// Every seed file the corpus holds besides past crashers: each message's frame, the two
/// transcripts, and the edge cases.
fn corpus_seed_files() -> Vec<(String, Vec<u8>)> {
    let (client, server) = seed_messages();
    let mut out = Vec::new();
    for (i, m) in client.iter().enumerate() {
        let name = format!("seed-client-{i:02}-{}.bin", variant_of_client(m));
        out.push((name, frame::encode(m)));
    }
    for (i, m) in server.iter().enumerate() {
        let name = format!("seed-server-{i:02}-{}.bin", variant_of_server(m));
        out.push((name, frame::encode(m)));
    }
    out.push(("seed-client-stream.bin".into(), stream_of(&client)));
    out.push(("seed-server-stream.bin".into(), stream_of(&server)));
    out.extend(edge_cases());
    out
}

// ------------------------------------------------------------------------------------------
// Byte mutations
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum ByteMut {
    Flip(Index, u8),
    Set(Index, u8),
    Truncate(Index),
    Delete(Index, u8),
    Insert(Index, Vec<u8>),
    /// Copy a chunk of the input elsewhere in it.
    Duplicate(Index, Index, u8),
    /// Copy a chunk of another seed into the input.
    Splice(Index, Index, Index, u16),
    /// Write a varint (a postcard length or number) over, or into, the input.
    Varint(Index, u64, bool),
    /// Write a big-endian u32 (a frame length) over the input.
    Be32(Index, u32),
}

fn interesting_len() -> BoxedStrategy<u64> {
    prop_oneof![
        2 => 0u64..8,
        3 => select(vec![
            127,
            128,
            255,
            256,
            BATCH_CHANGES_MAX as u64,
            BATCH_CHANGES_MAX as u64 + 1,
            BATCH_CLOCK_ENTRIES_MAX as u64,
            BATCH_CLOCK_ENTRIES_MAX as u64 + 1,
            FIELD_CLOCK_ACTORS_MAX as u64 + 1,
            u64::from(u16::MAX),
            u64::from(u32::MAX),
            u64::MAX,
        ]),
        1 => any::<u64>(),
    ]
    .boxed()
}

fn frame_len_value() -> BoxedStrategy<u32> {
    let max = u32::try_from(FRAME_BYTES_MAX).expect("fits");
    prop_oneof![
        2 => 0u32..64,
        2 => select(vec![0, 1, max - 1, max, max + 1, u32::MAX]),
        1 => any::<u32>(),
    ]
    .boxed()
}

fn byte_mut() -> BoxedStrategy<ByteMut> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteMut::Flip(i, b)),
        2 => (any::<Index>(), prop_oneof![Just(0u8), Just(0x7f), Just(0x80), Just(0xff), any::<u8>()])
            .prop_map(|(i, b)| ByteMut::Set(i, b)),
        1 => any::<Index>().prop_map(ByteMut::Truncate),
        1 => (any::<Index>(), 1u8..16).prop_map(|(i, n)| ByteMut::Delete(i, n)),
        1 => (any::<Index>(), vec(any::<u8>(), 1..8)).prop_map(|(i, b)| ByteMut::Insert(i, b)),
        1 => (any::<Index>(), any::<Index>(), 1u8..32)
            .prop_map(|(a, b, n)| ByteMut::Duplicate(a, b, n)),
        1 => (any::<Index>(), any::<Index>(), any::<Index>(), 1u16..256)
            .prop_map(|(s, a, b, n)| ByteMut::Splice(s, a, b, n)),
        2 => (any::<Index>(), interesting_len(), any::<bool>())
            .prop_map(|(i, v, o)| ByteMut::Varint(i, v, o)),
        1 => (any::<Index>(), frame_len_value()).prop_map(|(i, v)| ByteMut::Be32(i, v)),
    ]
    .boxed()
}

fn overwrite(buf: &mut Vec<u8>, at: &Index, bytes: &[u8]) {
    let k = at.index(buf.len() + 1);
    let end = (k + bytes.len()).min(buf.len());
    buf.splice(k..end, bytes.iter().copied());
}

fn apply(buf: &mut Vec<u8>, m: &ByteMut, pool: &[Vec<u8>]) {
    let len = buf.len();
    match m {
        ByteMut::Flip(i, bit) if len > 0 => buf[i.index(len)] ^= 1u8 << bit,
        ByteMut::Set(i, b) if len > 0 => buf[i.index(len)] = *b,
        ByteMut::Truncate(i) => buf.truncate(i.index(len + 1)),
        ByteMut::Delete(i, n) if len > 0 => {
            let k = i.index(len);
            buf.drain(k..(k + usize::from(*n)).min(len));
        }
        ByteMut::Insert(i, bytes) => {
            let k = i.index(len + 1);
            buf.splice(k..k, bytes.iter().copied());
        }
        ByteMut::Duplicate(from, to, n) if len > 0 => {
            let a = from.index(len);
            let chunk = buf[a..(a + usize::from(*n)).min(len)].to_vec();
            let b = to.index(len + 1);
            buf.splice(b..b, chunk);
        }
        ByteMut::Splice(seed, from, to, n) if !pool.is_empty() => {
            let src = seed.get(pool);
            if !src.is_empty() {
                let a = from.index(src.len());
                let chunk = &src[a..(a + usize::from(*n)).min(src.len())];
                let b = to.index(len + 1);
                buf.splice(b..b, chunk.iter().copied());
            }
        }
        ByteMut::Varint(i, v, true) => overwrite(buf, i, &varint(*v)),
        ByteMut::Varint(i, v, false) => {
            let k = i.index(len + 1);
            buf.splice(k..k, varint(*v));
        }
        ByteMut::Be32(i, v) => overwrite(buf, i, &v.to_be_bytes()),
        _ => {}
    }
}

/// Arbitrary bytes, or a seed stream with byte mutations.
fn stream_input() -> BoxedStrategy<Bytes> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..256).prop_map(Bytes),
        4 => (any::<Index>(), vec(byte_mut(), 1..8)).prop_map(|(seed, muts)| {
            let pool = &SEEDS.streams;
            let mut b = seed.get(pool).clone();
            for m in &muts {
                apply(&mut b, m, pool);
            }
            Bytes(b)
        }),
    ]
    .boxed()
}

#[derive(Debug, Clone, Copy)]
enum Wrap {
    Raw,
    Deflate,
    Flags(u8),
}

/// A frame body (flags + payload): a mutated message payload, sent raw or deflated (so that
/// mutations reach the decoder behind the inflater), then possibly mutated again.
fn body_input() -> BoxedStrategy<Bytes> {
    let wrap = prop_oneof![
        3 => Just(Wrap::Raw),
        3 => Just(Wrap::Deflate),
        1 => any::<u8>().prop_map(Wrap::Flags),
    ];
    (
        any::<Index>(),
        vec(byte_mut(), 0..6),
        wrap,
        vec(byte_mut(), 0..3),
    )
        .prop_map(|(seed, pre, wrap, post)| {
            let pool = &SEEDS.payloads;
            let mut payload = seed.get(pool).clone();
            for m in &pre {
                apply(&mut payload, m, pool);
            }
            let mut body = match wrap {
                Wrap::Raw => vec![0],
                Wrap::Deflate => vec![1],
                Wrap::Flags(f) => vec![f],
            };
            match wrap {
                Wrap::Deflate => body.extend(deflate(&payload)),
                _ => body.extend(payload),
            }
            for m in &post {
                apply(&mut body, m, &[]);
            }
            Bytes(body)
        })
        .boxed()
}

// ------------------------------------------------------------------------------------------
// Message mutations
// ------------------------------------------------------------------------------------------

fn chrono_max_ts() -> i64 {
    chrono::NaiveDateTime::MAX.and_utc().timestamp()
}

fn chrono_min_ts() -> i64 {
    chrono::NaiveDateTime::MIN.and_utc().timestamp()
}

fn any_u64() -> BoxedStrategy<u64> {
    prop_oneof![
        4 => 0u64..12,
        2 => select(vec![
            u64::MAX,
            u64::MAX - 1,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::from(u32::MAX),
            NOW,
            NOW + HLC_FUTURE_DRIFT_MAX_MS + 1,
        ]),
        1 => any::<u64>(),
    ]
    .boxed()
}

fn any_i64() -> BoxedStrategy<i64> {
    let hlc_now = i64::try_from(Hlc::from_wall(NOW).0).expect("fits");
    let drift = i64::try_from(Hlc::from_wall(HLC_FUTURE_DRIFT_MAX_MS + 1).0).expect("fits");
    prop_oneof![
        3 => -4i64..12,
        3 => select(vec![
            i64::MIN,
            i64::MAX,
            -1,
            hlc_now,
            hlc_now + drift,
            -hlc_now,
            START,
            START + 3600,
            1950,
            12 * 60 + 1,
            chrono_max_ts(),
            chrono_max_ts() - 1800,
            chrono_max_ts() + 1,
            chrono_min_ts(),
            chrono_min_ts() - 1,
        ]),
        1 => any::<i64>(),
    ]
    .boxed()
}

const CODES: &[&str] = &[
    "unknown",
    "seen",
    "excused",
    "revoked",
    "noshow",
    "arret",
    "domicile",
    "telephone",
    "planifie",
    "effectue",
    "annule",
    "panne",
    "autre",
    "information",
    "accompagnement",
    "80021",
    "2A",
    "80",
    "2026-09-25",
    "2026-02-30",
    "+262143-01-01",
    "",
    " ",
    "unit:bus-80-1",
];

fn any_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(CODES).prop_map(String::from),
        2 => "[a-z0-9 :-]{0,12}",
        1 => any::<String>(),
        1 => select(vec![200usize, 201, 300, 301, 2000, 2001, 5000]).prop_map(|n| "é".repeat(n / 2)),
    ]
    .boxed()
}

fn any_id() -> BoxedStrategy<Uuid> {
    prop_oneof![
        3 => select(KNOWN_IDS.to_vec()),
        1 => any::<u128>().prop_map(Uuid::from_u128),
    ]
    .boxed()
}

fn any_value() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => any_i64().prop_map(Value::Int),
        3 => any_text().prop_map(Value::Text),
        2 => any_id().prop_map(Value::Id),
    ]
    .boxed()
}

fn any_scope() -> BoxedStrategy<Scope> {
    prop_oneof![
        4 => select(vec![
            unit(UNIT),
            unit(OTHER_UNIT),
            territory(TERRITORY),
            territory(OTHER_TERRITORY),
            unit(""),
            territory(""),
            unit("bus-80-1 "),
            unit("BUS-80-1"),
            territory(UNIT),
        ]),
        1 => "[a-z0-9:-]{0,10}".prop_map(Scope::Unit),
        1 => "[a-z0-9:-]{0,10}".prop_map(Scope::Territory),
    ]
    .boxed()
}

fn any_kind() -> BoxedStrategy<Kind> {
    select(Kind::ALL).boxed()
}

fn any_field() -> BoxedStrategy<Field> {
    select(Field::ALL).boxed()
}

fn any_actor() -> BoxedStrategy<Actor> {
    prop_oneof![
        3 => Just(DEVICE),
        1 => select(vec![0, 2, 7, Actor::MAX]),
        1 => any::<Actor>(),
    ]
    .boxed()
}

fn any_count() -> BoxedStrategy<u16> {
    prop_oneof![
        4 => 0u16..6,
        1 => select(vec![FIELD_CLOCK_ACTORS_MAX as u16, FIELD_CLOCK_ACTORS_MAX as u16 + 1, u16::MAX]),
    ]
    .boxed()
}

fn any_reason() -> BoxedStrategy<RejectReason> {
    prop_oneof![
        any_text().prop_map(|scope| RejectReason::OutOfScope { scope }),
        (any_text(), any_text())
            .prop_map(|(kind, field)| RejectReason::FieldNotAllowed { kind, field }),
        any_actor().prop_map(|actor| RejectReason::ForeignDot { actor }),
        any_u64().prop_map(|ahead_ms| RejectReason::ClockAhead { ahead_ms }),
        any_text().prop_map(|detail| RejectReason::Invalid { detail }),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum HeadMut {
    Id(Uuid),
    Kind(Kind),
    Scope(Scope),
    Fields(u16),
}

#[derive(Debug, Clone)]
enum WriteMut {
    Field(Field),
    Actor(Actor),
    Counter(u64),
    Hlc(i64),
    CtxLen(u16),
    Value(Value),
}

/// One change to a decoded message. `Number` goes to `first_seq` / `cursor` / `acked` (Welcome)
/// / `seq`, `Number2` to `acked` (Hello) / `server_time_ms` / `after`.
#[derive(Debug, Clone)]
enum MsgMut {
    Number(u64),
    Number2(u64),
    Version(u16),
    Head(Index, HeadMut),
    Write(Index, WriteMut),
    Clock(Index, Actor, u64),
    PushClock(Actor, u64),
    PopClock,
    CopyHead(Index),
    DropHead(Index),
    CopyWrite(Index),
    DropWrite(Index),
    Reject(u64, RejectReason),
    Code(ErrorCode),
    Message(String),
    /// Byte mutations of the message's postcard payload, kept when it still decodes.
    Bytes(Vec<ByteMut>),
}

fn msg_mut() -> BoxedStrategy<MsgMut> {
    let head = prop_oneof![
        any_id().prop_map(HeadMut::Id),
        any_kind().prop_map(HeadMut::Kind),
        any_scope().prop_map(HeadMut::Scope),
        any_count().prop_map(HeadMut::Fields),
    ];
    let write = prop_oneof![
        1 => any_field().prop_map(WriteMut::Field),
        1 => any_actor().prop_map(WriteMut::Actor),
        1 => any_u64().prop_map(WriteMut::Counter),
        1 => any_i64().prop_map(WriteMut::Hlc),
        1 => any_count().prop_map(WriteMut::CtxLen),
        3 => any_value().prop_map(WriteMut::Value),
    ];
    let code = select(vec![
        ErrorCode::VersionMismatch,
        ErrorCode::Malformed,
        ErrorCode::Unexpected,
        ErrorCode::Unauthorized,
        ErrorCode::Unavailable,
        ErrorCode::SequenceGap,
    ]);
    prop_oneof![
        2 => any_u64().prop_map(MsgMut::Number),
        1 => any_u64().prop_map(MsgMut::Number2),
        1 => prop_oneof![Just(PROTOCOL_VERSION), any::<u16>()].prop_map(MsgMut::Version),
        4 => (any::<Index>(), head).prop_map(|(i, h)| MsgMut::Head(i, h)),
        6 => (any::<Index>(), write).prop_map(|(i, w)| MsgMut::Write(i, w)),
        1 => (any::<Index>(), any_actor(), any_u64()).prop_map(|(i, a, c)| MsgMut::Clock(i, a, c)),
        1 => (any_actor(), any_u64()).prop_map(|(a, c)| MsgMut::PushClock(a, c)),
        1 => Just(MsgMut::PopClock),
        1 => any::<Index>().prop_map(MsgMut::CopyHead),
        1 => any::<Index>().prop_map(MsgMut::DropHead),
        1 => any::<Index>().prop_map(MsgMut::CopyWrite),
        1 => any::<Index>().prop_map(MsgMut::DropWrite),
        1 => (any_u64(), any_reason()).prop_map(|(s, r)| MsgMut::Reject(s, r)),
        1 => code.prop_map(MsgMut::Code),
        1 => any_text().prop_map(MsgMut::Message),
        2 => vec(byte_mut(), 1..4).prop_map(MsgMut::Bytes),
    ]
    .boxed()
}

fn mutate_batch(b: &mut Batch, m: &MsgMut) {
    match m {
        MsgMut::Head(i, h) if !b.records.is_empty() => {
            let head = i.get_mut(&mut b.records.0);
            match h {
                HeadMut::Id(id) => head.id = *id.as_bytes(),
                HeadMut::Kind(k) => head.kind = *k,
                HeadMut::Scope(s) => head.scope = s.clone(),
                HeadMut::Fields(n) => head.fields = *n,
            }
        }
        MsgMut::Write(i, w) if !b.fields.is_empty() => {
            let f = i.get_mut(&mut b.fields.0);
            match w {
                WriteMut::Field(x) => f.field = *x,
                WriteMut::Actor(x) => f.actor = *x,
                WriteMut::Counter(x) => f.counter = *x,
                WriteMut::Hlc(x) => f.hlc_delta = *x,
                WriteMut::CtxLen(x) => f.ctx_len = *x,
                WriteMut::Value(x) => f.value = x.clone(),
            }
        }
        MsgMut::Clock(i, a, c) if !b.clocks.is_empty() => *i.get_mut(&mut b.clocks.0) = (*a, *c),
        MsgMut::PushClock(a, c) => {
            let _ = b.clocks.try_push((*a, *c));
        }
        MsgMut::PopClock => {
            b.clocks.0.pop();
        }
        MsgMut::CopyHead(i) if !b.records.is_empty() => {
            let h = i.get(&b.records.0).clone();
            let _ = b.records.try_push(h);
        }
        MsgMut::DropHead(i) if !b.records.is_empty() => {
            b.records.0.remove(i.index(b.records.len()));
        }
        MsgMut::CopyWrite(i) if !b.fields.is_empty() => {
            let w = i.get(&b.fields.0).clone();
            let _ = b.fields.try_push(w);
        }
        MsgMut::DropWrite(i) if !b.fields.is_empty() => {
            b.fields.0.remove(i.index(b.fields.len()));
        }
        _ => {}
    }
}

fn mutate_bytes<T: Serialize + DeserializeOwned>(msg: &mut T, muts: &[ByteMut]) {
    let mut bytes = payload_of(msg);
    for m in muts {
        apply(&mut bytes, m, &SEEDS.payloads);
    }
    if let Ok(decoded) = postcard::from_bytes(&bytes) {
        *msg = decoded;
    }
}

fn mutate_client(msg: &mut ClientMsg, m: &MsgMut) {
    if let MsgMut::Bytes(muts) = m {
        return mutate_bytes(msg, muts);
    }
    match msg {
        ClientMsg::Hello {
            version,
            cursor,
            acked,
            ..
        } => match m {
            MsgMut::Version(v) => *version = *v,
            MsgMut::Number(n) => *cursor = *n,
            MsgMut::Number2(n) => *acked = *n,
            _ => {}
        },
        ClientMsg::Changes { first_seq, batch } => match m {
            MsgMut::Number(n) => *first_seq = *n,
            _ => mutate_batch(batch, m),
        },
        ClientMsg::Rebased => {}
    }
}

fn mutate_server(msg: &mut ServerMsg, m: &MsgMut) {
    if let MsgMut::Bytes(muts) = m {
        return mutate_bytes(msg, muts);
    }
    match msg {
        ServerMsg::Welcome {
            version,
            server_time_ms,
            acked,
            ..
        } => match m {
            MsgMut::Version(v) => *version = *v,
            MsgMut::Number(n) => *acked = *n,
            MsgMut::Number2(n) => *server_time_ms = *n,
            _ => {}
        },
        ServerMsg::Ack { seq, rejected, .. } => match m {
            MsgMut::Number(n) => *seq = *n,
            MsgMut::Reject(s, reason) => {
                let _ = rejected.try_push(Rejection {
                    seq: *s,
                    reason: reason.clone(),
                });
            }
            MsgMut::DropHead(i) if !rejected.is_empty() => {
                rejected.0.remove(i.index(rejected.len()));
            }
            _ => {}
        },
        ServerMsg::Changes {
            after,
            cursor,
            batch,
        } => match m {
            MsgMut::Number(n) => *cursor = *n,
            MsgMut::Number2(n) => *after = *n,
            _ => mutate_batch(batch, m),
        },
        ServerMsg::UpToDate { after, cursor } => match m {
            MsgMut::Number(n) => *cursor = *n,
            MsgMut::Number2(n) => *after = *n,
            _ => {}
        },
        ServerMsg::Rebase { acked, .. } => {
            if let MsgMut::Number(n) = m {
                *acked = *n;
            }
        }
        ServerMsg::Error { code, message } => match m {
            MsgMut::Code(c) => *code = *c,
            MsgMut::Message(s) => *message = s.clone(),
            _ => {}
        },
    }
}

/// Messages from an agent to the server, in order. `Debug` is the corpus-ready frame stream.
#[derive(Clone)]
struct ClientCase(Vec<ClientMsg>);

impl fmt::Debug for ClientCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}\nstream {:?}", self.0, Bytes(stream_of(&self.0)))
    }
}

/// Messages from the server to an agent, in order. `Debug` is the corpus-ready frame stream.
#[derive(Clone)]
struct ServerCase(Vec<ServerMsg>);

impl fmt::Debug for ServerCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}\nstream {:?}", self.0, Bytes(stream_of(&self.0)))
    }
}

/// A session's script: whether it opens properly, then steps. A step is the valid opening
/// message again (0..2: a reconnect after an error), a mutated batch seed (2..7), or any mutated
/// seed (7..10).
type Script = (bool, Vec<(u8, Index, Vec<MsgMut>)>);

fn script() -> BoxedStrategy<Script> {
    (
        prop::bool::weighted(0.75),
        vec((0u8..10, any::<Index>(), vec(msg_mut(), 0..5)), 1..6),
    )
        .boxed()
}

fn play<M: Clone>(
    (open, steps): Script,
    opener: M,
    seeds: &[M],
    is_batch: fn(&M) -> bool,
    mutate: fn(&mut M, &MsgMut),
) -> Vec<M> {
    let batches: Vec<M> = seeds.iter().filter(|m| is_batch(m)).cloned().collect();
    let mut msgs = Vec::new();
    if open {
        msgs.push(opener.clone());
    }
    for (kind, seed, muts) in steps {
        let mut m = match kind {
            0..2 => opener.clone(),
            2..7 => seed.get(&batches).clone(),
            _ => seed.get(seeds).clone(),
        };
        for mu in &muts {
            mutate(&mut m, mu);
        }
        msgs.push(m);
    }
    msgs
}

fn client_case() -> BoxedStrategy<ClientCase> {
    let hello = ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        cursor: 0,
        acked: 0,
        last: 0,
        chain: [0; 16],
        own: false,
        epoch: 0,
        about: tournee_proto::wire::AgentAbout::default(),
    };
    script()
        .prop_map(move |s| {
            ClientCase(play(
                s,
                hello.clone(),
                &SEEDS.client,
                |m| matches!(m, ClientMsg::Changes { .. }),
                mutate_client,
            ))
        })
        .boxed()
}

fn server_case() -> BoxedStrategy<ServerCase> {
    let welcome = ServerMsg::Welcome {
        version: PROTOCOL_VERSION,
        server_time_ms: NOW,
        acked: 0,
        epoch: 0,
        devices: tournee_proto::bounded::BVec::new(),
    };
    script()
        .prop_map(move |s| {
            ServerCase(play(
                s,
                welcome.clone(),
                &SEEDS.server,
                |m| matches!(m, ServerMsg::Changes { .. } | ServerMsg::Ack { .. }),
                mutate_server,
            ))
        })
        .boxed()
}

fn arb_batch() -> BoxedStrategy<Batch> {
    let head = (any::<[u8; 16]>(), any_kind(), any_scope(), any_count()).prop_map(
        |(id, kind, scope, fields)| RecordHead {
            id,
            kind,
            scope,
            fields,
        },
    );
    let hlc = prop_oneof![3 => -3i64..1_000, 1 => any_i64()];
    let write = (
        any_field(),
        any_actor(),
        any_u64(),
        hlc,
        any_count(),
        any_value(),
    )
        .prop_map(
            |(field, actor, counter, hlc_delta, ctx_len, value)| FieldWrite {
                field,
                actor,
                counter,
                hlc_delta,
                ctx_len,
                value,
            },
        );
    (
        vec(head, 0..5),
        vec(write, 0..10),
        vec((any_actor(), any_u64()), 0..10),
    )
        .prop_map(|(records, fields, clocks)| Batch {
            records: BVec(records),
            fields: BVec(fields),
            clocks: BVec(clocks),
        })
        .boxed()
}

// ------------------------------------------------------------------------------------------
// Checks
// ------------------------------------------------------------------------------------------

/// The outcome of reading a stream: the messages, then the error that ended it, if any, and
/// what `finish` said when none did.
#[derive(Debug, PartialEq)]
struct Read<T> {
    msgs: Vec<T>,
    error: Option<FrameError>,
    finish: Option<Result<(), FrameError>>,
}

fn check_frame_error(e: &FrameError) {
    match e {
        FrameError::TooLong { len, max } => {
            assert_eq!(*max, FRAME_BYTES_MAX);
            assert!(*len > FRAME_BYTES_MAX, "{e}");
        }
        FrameError::Inflate { max } => assert_eq!(*max, FRAME_INFLATED_BYTES_MAX),
        FrameError::Empty | FrameError::Flags(_) | FrameError::Decode(_) => {}
        FrameError::Truncated { .. } => panic!("only finish() reports a truncated frame: {e}"),
    }
    assert!(!e.to_string().is_empty());
}

/// Read `bytes` the way the agent and the server do (push a chunk, drain every whole message),
/// cutting the stream before each position of `cuts`. Checks the reader's bounds throughout.
fn read_stream<T: DeserializeOwned + fmt::Debug>(
    bytes: &[u8],
    cuts: &[usize],
    check: &dyn Fn(&T),
) -> Read<T> {
    let mut points: Vec<usize> = cuts.iter().map(|c| (*c).min(bytes.len())).collect();
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    let mut reader = FrameReader::new();
    let mut msgs = Vec::new();
    let mut from = 0;
    for to in points {
        let chunk = &bytes[from..to];
        from = to;
        let before = reader.buffered();
        if let Err(e) = reader.push(chunk) {
            assert!(
                matches!(e, FrameError::TooLong { .. } | FrameError::Empty),
                "push only judges the header: {e:?}"
            );
            check_frame_error(&e);
            return Read {
                msgs,
                error: Some(e),
                finish: None,
            };
        }
        assert_eq!(reader.buffered(), before + chunk.len());
        loop {
            match reader.next_msg::<T>() {
                Ok(Some(m)) => {
                    check(&m);
                    msgs.push(m);
                }
                Ok(None) => break,
                Err(e) => {
                    check_frame_error(&e);
                    return Read {
                        msgs,
                        error: Some(e),
                        finish: None,
                    };
                }
            }
        }
        assert!(
            reader.buffered() < HEADER + FRAME_BYTES_MAX,
            "a drained reader holds less than one maximal frame: {}",
            reader.buffered()
        );
    }
    let finish = reader.finish();
    match &finish {
        Ok(()) => assert_eq!(reader.buffered(), 0),
        Err(FrameError::Truncated { have, want }) => {
            assert_eq!(*have, reader.buffered());
            assert!(want > have);
        }
        Err(e) => panic!("finish() reports only truncation: {e:?}"),
    }
    Read {
        msgs,
        error: None,
        finish: Some(finish),
    }
}

/// Bounds of a decoded batch, and `to_changes` agreeing with them.
fn check_batch(b: &Batch) {
    assert!(b.records.len() <= BATCH_RECORDS_MAX);
    assert!(b.fields.len() <= BATCH_CHANGES_MAX);
    assert!(b.clocks.len() <= BATCH_CLOCK_ENTRIES_MAX);
    match b.to_changes() {
        Ok(changes) => {
            assert_eq!(changes.len(), b.len());
            for c in &changes {
                assert!(c.write.ctx.dots.len() <= FIELD_CLOCK_ACTORS_MAX);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Encoding a decoded message again gives a message that decodes to the same value.
fn check_reencodes<T: Serialize + DeserializeOwned + PartialEq + fmt::Debug>(m: &T) {
    let again: T = postcard::from_bytes(&payload_of(m)).expect("a decoded message re-encodes");
    assert_eq!(&again, m);
}

fn check_client_msg(m: &ClientMsg) {
    if let ClientMsg::Changes { batch, .. } = m {
        check_batch(batch);
    }
    check_reencodes(m);
}

fn check_server_msg(m: &ServerMsg) {
    match m {
        ServerMsg::Changes { batch, .. } => check_batch(batch),
        ServerMsg::Ack { rejected, .. } => {
            assert!(rejected.len() <= ACK_REJECTIONS_MAX);
            for r in &rejected.0 {
                assert!(!r.reason.to_string().is_empty());
            }
        }
        _ => {}
    }
    check_reencodes(m);
}

/// What a session sends, the peer can read back: a frame within the limit that decodes to it.
fn check_outgoing<T: Serialize + DeserializeOwned + PartialEq + fmt::Debug>(m: &T) {
    let bytes = frame::encode(m);
    assert!(
        bytes.len() <= HEADER + FRAME_BYTES_MAX,
        "a session sends a frame its peer refuses: {} bytes",
        bytes.len()
    );
    let mut r = FrameReader::new();
    r.push(&bytes).expect("own frame");
    let back: T = r
        .next_msg()
        .expect("own frame decodes")
        .expect("own frame is whole");
    assert_eq!(&back, m);
}

fn check_protocol_error(e: &ProtocolError) {
    let code = e.code();
    assert_eq!(
        ErrorCode::from_close_code(u64::from(code.close_code())),
        Some(code)
    );
    assert!(!e.to_string().is_empty());
}

/// What the sessions did with the messages of a case: outcomes and change counts.
type Tally = BTreeMap<&'static str, usize>;

fn count(tally: &mut Tally, what: &'static str, n: usize) {
    *tally.entry(what).or_default() += n;
}

fn outcome(r: &Result<(), ProtocolError>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(ProtocolError::Frame(_)) => "frame",
        Err(ProtocolError::Batch(_)) => "batch",
        Err(ProtocolError::VersionMismatch { .. }) => "version",
        Err(ProtocolError::Unexpected(_)) => "unexpected",
        Err(ProtocolError::SequenceGap { .. }) => "gap",
        Err(ProtocolError::HistoryMoved { .. }) => "history moved",
        Err(ProtocolError::ServerBehind { .. }) => "server behind",
        Err(ProtocolError::OutOfScope(_)) => "out of scope",
        Err(ProtocolError::Remote { .. }) => "remote",
        Err(ProtocolError::Timeout(_)) => "timeout",
        Err(ProtocolError::Store(_)) => "store",
    }
}

/// Drive a server session with `msgs`; a session that fails is replaced by a new one, as when
/// the agent reconnects.
fn drive_server(store: &mut SqliteStore, msgs: &[ClientMsg]) -> Tally {
    let mut tally = Tally::new();
    let mut session = ServerSession::new(device_auth(), NOW);
    for msg in msgs {
        let result = session
            .handle_message(NOW, msg.clone(), store)
            .and_then(|()| session.fill(store));
        count(&mut tally, outcome(&result), 1);
        while let Some(out) = session.poll_transmit() {
            check_outgoing(&out);
        }
        if let Err(e) = result {
            check_protocol_error(&e);
            assert!(
                !matches!(e, ProtocolError::Store(_)),
                "an agent's message makes the server's storage fail: {e}"
            );
            check_outgoing(&ServerSession::error_message(&e));
            let stats = session.stats();
            count(&mut tally, "changes applied", stats.applied);
            count(&mut tally, "changes rejected", stats.rejected);
            session = ServerSession::new(device_auth(), NOW);
        }
    }
    let stats = session.stats();
    count(&mut tally, "changes applied", stats.applied);
    count(&mut tally, "changes rejected", stats.rejected);
    tally
}

/// Drive a client session with `msgs`; a session that fails is replaced by a new one.
fn drive_client(store: &mut SqliteStore, msgs: &[ServerMsg]) -> Tally {
    let mut tally = Tally::new();
    let mut session = ClientSession::new(store).expect("a session starts");
    while let Some(out) = session.poll_transmit() {
        check_outgoing(&out);
    }
    for msg in msgs {
        let result = session
            .handle_message(NOW, msg.clone(), store)
            .and_then(|()| session.fill(store));
        count(&mut tally, outcome(&result), 1);
        while let Some(out) = session.poll_transmit() {
            check_outgoing(&out);
        }
        if let Err(e) = result {
            check_protocol_error(&e);
            count(&mut tally, "changes applied", session.stats().applied);
            session = ClientSession::new(store).expect("the agent reconnects after an error");
            while let Some(out) = session.poll_transmit() {
                check_outgoing(&out);
            }
        }
    }
    count(&mut tally, "changes applied", session.stats().applied);
    tally
}

fn digest(store: &SqliteStore, scopes: &[Scope]) -> String {
    export::digest(store, Some(scopes)).expect("digest")
}

fn foreign_scopes() -> [Scope; 2] {
    [unit(OTHER_UNIT), territory(OTHER_TERRITORY)]
}

/// The server store is sound, and nothing the device sent reached another unit or any
/// territory: every new changelog entry is the device's own write in its own unit.
fn check_server_after(store: &SqliteStore, head_before: u64, foreign_before: &str) {
    store.integrity_check().expect("SQLite integrity");
    let head = store.changelog_head().expect("head");
    let (own, _) = store
        .changelog_after(head_before, &[unit(UNIT)], NOBODY, 1_000_000)
        .expect("changelog");
    assert_eq!(
        own.len() as u64,
        head - head_before,
        "every new changelog entry is in the device's unit"
    );
    for (_, c) in &own {
        assert_eq!(c.write.dot.actor, DEVICE);
        assert_eq!(c.scope, unit(UNIT));
    }
    let (others, _) = store
        .changelog_after(
            head_before,
            &[
                unit(OTHER_UNIT),
                territory(OTHER_TERRITORY),
                territory(TERRITORY),
            ],
            NOBODY,
            1_000_000,
        )
        .expect("changelog");
    assert!(
        others.is_empty(),
        "a device wrote outside its unit: {others:?}"
    );
    assert_eq!(digest(store, &foreign_scopes()), foreign_before);
}

/// The agent store is sound: records only in its scopes (and the crafted one it made itself,
/// unchanged), a contiguous outbox after the acknowledged sequence, readable lists.
fn check_agent_after(store: &SqliteStore, foreign_before: &str) {
    store.integrity_check().expect("SQLite integrity");
    let id = store.identity().expect("identity").expect("set");
    let scopes = id.scopes();
    store
        .for_each_record(None, &mut |r| {
            assert!(
                scopes.contains(&r.scope) || r.id == FOREIGN,
                "an agent took a record outside its scopes: {:?}",
                r.scope
            );
            Ok(())
        })
        .expect("records");
    assert_eq!(digest(store, &foreign_scopes()), foreign_before);
    let stats = store.stats().expect("stats");
    assert!(stats.acked_seq <= stats.last_seq);
    let outbox = store
        .outbox_after(stats.acked_seq, 1_000_000)
        .expect("outbox");
    assert_eq!(outbox.len() as u64, stats.last_seq - stats.acked_seq);
    for (i, (seq, _)) in outbox.iter().enumerate() {
        assert_eq!(*seq, stats.acked_seq + 1 + i as u64);
    }
    store.rejected().expect("rejected list");
    store.conflicted().expect("conflicts");
}

fn run_server_case(msgs: &[ClientMsg]) -> Tally {
    let mut store = server_fixture();
    let head = store.changelog_head().expect("head");
    let foreign = digest(&store, &foreign_scopes());
    let tally = drive_server(&mut store, msgs);
    check_server_after(&store, head, &foreign);
    tally
}

fn run_client_case(msgs: &[ServerMsg]) -> Tally {
    let mut store = agent_fixture();
    let foreign = digest(&store, &foreign_scopes());
    let tally = drive_client(&mut store, msgs);
    check_agent_after(&store, &foreign);
    tally
}

/// The structural oracle for `to_changes`: heads, writes and clock entries line up exactly.
fn consistent(b: &Batch) -> bool {
    let (mut fi, mut ci, mut hlc) = (0usize, 0usize, 0u64);
    for h in &b.records.0 {
        if h.fields == 0 {
            return false;
        }
        for _ in 0..h.fields {
            let Some(f) = b.fields.0.get(fi) else {
                return false;
            };
            fi += 1;
            let Some(next) = hlc.checked_add_signed(f.hlc_delta) else {
                return false;
            };
            hlc = next;
            if usize::from(f.ctx_len) > FIELD_CLOCK_ACTORS_MAX {
                return false;
            }
            ci += usize::from(f.ctx_len);
            if ci > b.clocks.len() {
                return false;
            }
        }
    }
    fi == b.fields.len() && ci == b.clocks.len()
}

// ------------------------------------------------------------------------------------------
// 1. The frame reader
// ------------------------------------------------------------------------------------------

/// Arbitrary and mutated streams, cut anywhere: no panic, typed errors, bounded buffer, and the
/// same outcome as reading the stream in one piece.
#[test]
fn the_frame_reader_survives_any_stream_cut_anywhere() {
    let strategy = (stream_input(), vec(any::<Index>(), 0..12));
    fuzz("frame reader", 2048, strategy, |(input, cuts)| {
        let bytes = &input.0;
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        let client = read_stream::<ClientMsg>(bytes, &cuts, &check_client_msg);
        let server = read_stream::<ServerMsg>(bytes, &cuts, &check_server_msg);
        prop_assert_eq!(
            &client,
            &read_stream::<ClientMsg>(bytes, &[], &check_client_msg)
        );
        prop_assert_eq!(
            &server,
            &read_stream::<ServerMsg>(bytes, &[], &check_server_msg)
        );
        Ok(())
    });
}

/// Valid streams decode to what was sent, whatever the cut points.
#[test]
fn valid_streams_decode_to_what_was_sent_wherever_they_are_cut() {
    fuzz("valid streams", 256, vec(any::<Index>(), 0..16), |cuts| {
        let client = stream_of(&SEEDS.client);
        let cuts_c: Vec<usize> = cuts.iter().map(|c| c.index(client.len() + 1)).collect();
        let read = read_stream::<ClientMsg>(&client, &cuts_c, &check_client_msg);
        prop_assert_eq!(&read.msgs, &SEEDS.client);
        prop_assert_eq!(read.finish, Some(Ok(())));
        let server = stream_of(&SEEDS.server);
        let cuts_s: Vec<usize> = cuts.iter().map(|c| c.index(server.len() + 1)).collect();
        let read = read_stream::<ServerMsg>(&server, &cuts_s, &check_server_msg);
        prop_assert_eq!(&read.msgs, &SEEDS.server);
        prop_assert_eq!(read.finish, Some(Ok(())));
        Ok(())
    });
}

#[test]
fn a_maximal_frame_is_buffered_whole_and_one_byte_more_is_refused_at_the_header() {
    let max = u32::try_from(FRAME_BYTES_MAX).expect("fits");
    let mut r = FrameReader::new();
    r.push(&max.to_be_bytes()).expect("a maximal header");
    let body = vec![0u8; FRAME_BYTES_MAX];
    let mut got = None;
    for chunk in body.chunks(READ_CHUNK_BYTES) {
        r.push(chunk).expect("within the frame");
        assert!(r.buffered() <= HEADER + FRAME_BYTES_MAX);
        if let Some(m) = r.next_msg::<ClientMsg>().expect("zeros decode") {
            got = Some(m);
        }
    }
    // Flags 0 and a payload of zeros: Hello { version 0 }, trailing bytes ignored.
    assert!(matches!(got, Some(ClientMsg::Hello { version: 0, .. })));
    assert_eq!(r.buffered(), 0);
    r.finish().expect("nothing left");

    let mut r = FrameReader::new();
    let header = (max + 1).to_be_bytes();
    for (i, b) in header.iter().enumerate() {
        let res = r.push(&[*b]);
        if i < HEADER - 1 {
            res.expect("an incomplete header is not judged yet");
        } else {
            assert!(matches!(res, Err(FrameError::TooLong { .. })), "{res:?}");
        }
    }
    assert_eq!(r.buffered(), HEADER, "refused before any byte of the body");
}

// ------------------------------------------------------------------------------------------
// 2. The decoders
// ------------------------------------------------------------------------------------------

/// Mutated payloads, raw or deflated: no panic, typed errors, bounded `BVec`s.
#[test]
fn decode_body_survives_mutated_payloads_raw_or_deflated() {
    fuzz("decode_body", 1024, body_input(), |body| {
        match decode_body::<ClientMsg>(&body.0) {
            Ok(m) => check_client_msg(&m),
            Err(e) => check_frame_error(&e),
        }
        match decode_body::<ServerMsg>(&body.0) {
            Ok(m) => check_server_msg(&m),
            Err(e) => check_frame_error(&e),
        }
        Ok(())
    });
}

/// `to_changes` accepts exactly the consistent batches, and keeps every write in order.
#[test]
fn batches_decode_into_changes_exactly_when_consistent() {
    fuzz("to_changes", 2048, arb_batch(), |batch| {
        let expected = consistent(&batch);
        match batch.to_changes() {
            Ok(changes) => {
                prop_assert!(expected, "an inconsistent batch was accepted");
                prop_assert_eq!(changes.len(), batch.len());
                let mut hlc = 0u64;
                let mut heads = batch
                    .records
                    .0
                    .iter()
                    .flat_map(|h| (0..h.fields).map(move |_| h));
                for (c, f) in changes.iter().zip(&batch.fields.0) {
                    let h = heads.next().expect("a head per write");
                    hlc = hlc.checked_add_signed(f.hlc_delta).expect("in range");
                    prop_assert_eq!(c.record, Uuid::from_bytes(h.id));
                    prop_assert_eq!(c.kind, h.kind);
                    prop_assert_eq!(&c.scope, &h.scope);
                    prop_assert_eq!(c.field, f.field);
                    prop_assert_eq!(c.write.dot.actor, f.actor);
                    prop_assert_eq!(c.write.dot.counter, f.counter);
                    prop_assert_eq!(c.write.hlc, Hlc(hlc));
                    prop_assert_eq!(&c.write.value, &f.value);
                    prop_assert!(c.write.ctx.dots.len() <= usize::from(f.ctx_len));
                }
            }
            Err(e) => prop_assert!(!expected, "a consistent batch was refused: {}", e),
        }
        Ok(())
    });
}

// ------------------------------------------------------------------------------------------
// 3. The message handlers
// ------------------------------------------------------------------------------------------

fn print_tally(name: &str, tally: &Tally) {
    let parts: Vec<String> = tally.iter().map(|(k, v)| format!("{k} {v}")).collect();
    eprintln!("{name}: {}", parts.join(", "));
}

/// Mutated agent messages to a server session on a real store: no panic, typed errors, a sound
/// store, nothing outside the device's unit.
#[test]
fn the_server_session_survives_mutated_agent_messages() {
    let total = RefCell::new(Tally::new());
    fuzz("server session", 512, client_case(), |case| {
        for (k, v) in run_server_case(&case.0) {
            count(&mut total.borrow_mut(), k, v);
        }
        Ok(())
    });
    print_tally("server session outcomes", &total.borrow());
}

/// Mutated server messages to an agent session on a real store: no panic, typed errors, a sound
/// store, nothing outside the agent's scopes.
#[test]
fn the_agent_session_survives_mutated_server_messages() {
    let total = RefCell::new(Tally::new());
    fuzz("agent session", 512, server_case(), |case| {
        for (k, v) in run_client_case(&case.0) {
            count(&mut total.borrow_mut(), k, v);
        }
        Ok(())
    });
    print_tally("agent session outcomes", &total.borrow());
}

// ------------------------------------------------------------------------------------------
// 4. No allocation beyond the limits (structurally)
// ------------------------------------------------------------------------------------------

/// 1,000 messages whose length prefixes announce more than their limit (up to `u64::MAX`), in
/// every `BVec` and string of the wire format, raw and deflated: each is refused, and all of them
/// together in well under a second, so nothing was allocated or walked for the announced length.
/// Just at the limit, with every element present, each `BVec` decodes; one over, it is refused.
#[test]
fn adversarial_length_prefixes_are_refused_fast_before_allocating() {
    let lens: Vec<u64> = vec![
        BATCH_RECORDS_MAX as u64 + 1,
        BATCH_CLOCK_ENTRIES_MAX as u64 + 1,
        u64::from(u16::MAX),
        1 << 20,
        FRAME_BYTES_MAX as u64,
        FRAME_INFLATED_BYTES_MAX as u64 + 1,
        1 << 31,
        u64::from(u32::MAX),
        1 << 40,
        u64::MAX >> 1,
        u64::MAX,
    ];
    let mut cases = Vec::new();
    let mut k = 0u64;
    while cases.len() < 1_000 {
        let len = lens[(k as usize) % lens.len()].saturating_add(k / lens.len() as u64);
        for (what, dir, limit, payload) in length_prefixed(len) {
            let deflated = k % 2 == 1;
            let frame = if deflated {
                raw_frame(1, &deflate(&payload))
            } else {
                raw_frame(0, &payload)
            };
            cases.push((what, dir, limit, len, frame));
        }
        k += 1;
    }
    let started = Instant::now();
    for (what, dir, _, len, frame) in &cases {
        let mut r = FrameReader::new();
        r.push(frame).expect("the frame itself is small");
        let err = match dir {
            Dir::Client => r.next_msg::<ClientMsg>().map(|m| format!("{m:?}")),
            Dir::Server => r.next_msg::<ServerMsg>().map(|m| format!("{m:?}")),
        };
        assert!(
            matches!(err, Err(FrameError::Decode(_))),
            "{what} with a length prefix of {len}: {err:?}"
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "{} adversarial frames took {elapsed:?}",
        cases.len()
    );

    // At the limit with every element present: decodes. One more: refused by the bound.
    let head = RecordHead {
        id: [7; 16],
        kind: Kind::Appointment,
        scope: unit(UNIT),
        fields: 1,
    };
    let write = FieldWrite {
        field: Field::Note,
        actor: DEVICE,
        counter: 1,
        hlc_delta: 1,
        ctx_len: 0,
        value: Value::Null,
    };
    let full = |records: usize, fields: usize, clocks: usize| -> Vec<u8> {
        let batch = Batch {
            records: BVec(vec![head.clone(); records]),
            fields: BVec(vec![write.clone(); fields]),
            clocks: BVec(vec![(DEVICE, 1); clocks]),
        };
        payload_of(&ClientMsg::Changes {
            first_seq: 1,
            batch,
        })
    };
    for (records, fields, clocks) in [
        (BATCH_RECORDS_MAX, 0, 0),
        (0, BATCH_CHANGES_MAX, 0),
        (0, 0, BATCH_CLOCK_ENTRIES_MAX),
    ] {
        let at = full(records, fields, clocks);
        let m = decode_body::<ClientMsg>(&[[0].as_slice(), &at].concat());
        assert!(m.is_ok(), "{records}/{fields}/{clocks} at the limit: {m:?}");
        let over = full(
            records + usize::from(records > 0),
            fields + usize::from(fields > 0),
            clocks + usize::from(clocks > 0),
        );
        let m = decode_body::<ClientMsg>(&[[0].as_slice(), &over].concat());
        assert!(
            matches!(m, Err(FrameError::Decode(_))),
            "one over the limit: {m:?}"
        );
    }
    let rejection = Rejection {
        seq: 1,
        reason: RejectReason::ForeignDot { actor: 2 },
    };
    for (n, ok) in [(ACK_REJECTIONS_MAX, true), (ACK_REJECTIONS_MAX + 1, false)] {
        let ack = payload_of(&ServerMsg::Ack {
            after: 0,
            seq: 1,
            rejected: BVec(vec![rejection.clone(); n]),
        });
        let m = decode_body::<ServerMsg>(&[[0].as_slice(), &ack].concat());
        assert_eq!(m.is_ok(), ok, "{n} rejections: {m:?}");
    }
}

/// What decoding may reserve up front: a `BVec` reserves at most its bound, so a whole message
/// reserves less than one inflated frame, whatever its length prefixes say.
#[test]
fn the_largest_up_front_reservation_of_a_message_is_below_one_inflated_frame() {
    use std::mem::size_of;
    let batch = BATCH_RECORDS_MAX * size_of::<RecordHead>()
        + BATCH_CHANGES_MAX * size_of::<FieldWrite>()
        + BATCH_CLOCK_ENTRIES_MAX * size_of::<(Actor, u64)>();
    let ack = ACK_REJECTIONS_MAX * size_of::<Rejection>();
    assert!(
        batch.max(ack) < FRAME_INFLATED_BYTES_MAX / 4,
        "batch {batch} B, ack {ack} B"
    );
}

/// A deflate bomb stops at the inflate limit, quickly; exactly the limit still inflates.
#[test]
fn a_deflate_bomb_stops_at_the_inflate_limit() {
    let started = Instant::now();
    let bomb = deflate(&vec![0u8; 4 * FRAME_INFLATED_BYTES_MAX]);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let mut r = FrameReader::new();
    r.push(&raw_frame(1, &bomb)).expect("a small frame");
    assert_eq!(
        r.next_msg::<ClientMsg>(),
        Err(FrameError::Inflate {
            max: FRAME_INFLATED_BYTES_MAX
        })
    );
    let exact = deflate(&vec![0u8; FRAME_INFLATED_BYTES_MAX]);
    let m = decode_body::<ClientMsg>(&[[1].as_slice(), &exact].concat());
    assert!(
        matches!(m, Ok(ClientMsg::Hello { version: 0, .. })),
        "{m:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

// ------------------------------------------------------------------------------------------
// 5. The corpus
// ------------------------------------------------------------------------------------------

/// Feed one corpus file to everything: the reader (whole and in small chunks, same outcome),
/// `decode_body` (the file as a body, and past its header), and the sessions with whatever
/// decoded.
fn replay(name: &str, bytes: &[u8]) {
    let cuts: Vec<usize> = (0..bytes.len()).step_by(3).collect();
    let client = read_stream::<ClientMsg>(bytes, &[], &check_client_msg);
    assert_eq!(
        client,
        read_stream::<ClientMsg>(bytes, &cuts, &check_client_msg)
    );
    let server = read_stream::<ServerMsg>(bytes, &[], &check_server_msg);
    assert_eq!(
        server,
        read_stream::<ServerMsg>(bytes, &cuts, &check_server_msg)
    );
    for body in [bytes, bytes.get(HEADER..).unwrap_or_default()] {
        match decode_body::<ClientMsg>(body) {
            Ok(m) => check_client_msg(&m),
            Err(e) => check_frame_error(&e),
        }
        match decode_body::<ServerMsg>(body) {
            Ok(m) => check_server_msg(&m),
            Err(e) => check_frame_error(&e),
        }
    }
    if name.starts_with("seed-client-") {
        assert!(
            client.error.is_none() && client.finish == Some(Ok(())) && !client.msgs.is_empty(),
            "a seed no longer decodes (wire format changed? regenerate the seeds): {client:?}"
        );
    }
    if name.starts_with("seed-server-") {
        assert!(
            server.error.is_none() && server.finish == Some(Ok(())) && !server.msgs.is_empty(),
            "a seed no longer decodes (wire format changed? regenerate the seeds): {server:?}"
        );
    }
    // A crasher must still decode whole, or it no longer reaches the code it once crashed.
    if name.starts_with("crash-server-") {
        assert!(
            client.error.is_none()
                && client.msgs.len() >= 2
                && matches!(client.msgs[0], ClientMsg::Hello { version, .. } if version == PROTOCOL_VERSION),
            "a crasher no longer decodes (wire format changed? rewrite it by hand): {client:?}"
        );
    }
    if name.starts_with("crash-agent-") {
        assert!(
            server.error.is_none()
                && server.msgs.len() >= 2
                && matches!(server.msgs[0], ServerMsg::Welcome { version, .. } if version == PROTOCOL_VERSION),
            "a crasher no longer decodes (wire format changed? rewrite it by hand): {server:?}"
        );
    }
    if !client.msgs.is_empty() {
        run_server_case(&client.msgs);
    }
    if !server.msgs.is_empty() {
        run_client_case(&server.msgs);
    }
}

#[test]
fn every_corpus_file_replays_without_panic() {
    let files = corpus_files();
    assert!(files.len() >= 30, "the corpus holds {} files", files.len());
    let mut failed = Vec::new();
    for (name, bytes) in &files {
        if catch_unwind(AssertUnwindSafe(|| replay(name, bytes))).is_err() {
            failed.push(name.clone());
        }
    }
    assert!(failed.is_empty(), "corpus files that fail: {failed:?}");
}

#[test]
fn the_corpus_seeds_cover_every_message_variant() {
    let names: Vec<String> = corpus_files().into_iter().map(|(n, _)| n).collect();
    for variant in ["hello", "changes"] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("seed-client-") && n.ends_with(&format!("-{variant}.bin"))),
            "no client seed of {variant}"
        );
    }
    for variant in ["welcome", "ack", "changes", "uptodate", "error"] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("seed-server-") && n.ends_with(&format!("-{variant}.bin"))),
            "no server seed of {variant}"
        );
    }
    assert!(
        names.iter().any(|n| n.starts_with("crash-")),
        "past crashers are kept"
    );
}

/// Writes the seed and edge files of `tests/corpus/` (crashers are added by hand). Run when the
/// wire format or the fixtures change:
/// `cargo test -p tournee-proto --test fuzz -- --ignored write_corpus_seeds`
#[test]
#[ignore = "writes tests/corpus/seed-* and edge-*; run by hand"]
fn write_corpus_seeds() {
    let dir = corpus_dir();
    fs::create_dir_all(&dir).expect("corpus dir");
    for (name, bytes) in corpus_seed_files() {
        fs::write(dir.join(name), bytes).expect("write seed");
    }
}

/// Regression: refusals quote the refused value, so an 8 KB device frame (1,024 writes of a
/// 3,990-byte theme, deflated) once made the server answer an `Ack` of 4.3 MB raw, past
/// `FRAME_INFLATED_BYTES_MAX`, that the agent could not read (and got again on every Hello).
/// A refusal's explanation is now cut to `REJECT_DETAIL_BYTES_MAX`.
#[test]
fn the_ack_to_a_batch_at_the_limits_stays_readable_by_the_agent() {
    let mut store = server_fixture();
    let mut session = ServerSession::new(device_auth(), NOW);
    let hello = ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        cursor: u64::MAX,
        acked: 0,
        last: 0,
        chain: [0; 16],
        own: false,
        epoch: 0,
        about: tournee_proto::wire::AgentAbout::default(),
    };
    session
        .handle_message(NOW, hello, &mut store)
        .expect("hello");
    while session.poll_transmit().is_some() {}
    let first = i64::try_from(Hlc::from_wall(NOW).0).expect("fits");
    let writes = (0..BATCH_CHANGES_MAX).map(|i| FieldWrite {
        field: Field::Theme,
        actor: DEVICE,
        counter: i as u64 + 1,
        hlc_delta: if i == 0 { first } else { 1 },
        ctx_len: 0,
        value: Value::Text("t".repeat(3_990)),
    });
    let batch = Batch {
        records: BVec(vec![RecordHead {
            id: *REQUEST.as_bytes(),
            kind: Kind::Request,
            scope: unit(UNIT),
            fields: u16::try_from(BATCH_CHANGES_MAX).expect("fits"),
        }]),
        fields: BVec(writes.collect()),
        clocks: BVec::new(),
    };
    let request = frame::encode(&ClientMsg::Changes {
        first_seq: 1,
        batch,
    });
    let mut r = FrameReader::new();
    r.push(&request).expect("a small frame");
    let msg: ClientMsg = r.next_msg().expect("decodes").expect("whole");
    session
        .handle_message(NOW, msg, &mut store)
        .expect("taken, every write refused");
    let ack = session.poll_transmit().expect("an ack");
    check_outgoing(&ack);
}
