//! The async pump over real quinn streams on loopback (a self-signed certificate: the TLS
//! policy is tested elsewhere): a session with no Hello ends at the session's own deadline,
//! read from an injected clock; a full session converges both stores and both sides count the
//! same bytes.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Connection, Endpoint};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::watch;
use tournee_core::clock::{Clock, ManualClock};
use tournee_core::export;
use tournee_core::limits::HELLO_TIMEOUT_MS;
use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::store::{Identity, LocalAction, RecordEdit, ServerStore, Store};
use tournee_net::pump::{drive_client, serve_stream, ServerEnd, ServerSignals, StoreHost};
use tournee_proto::auth::DeviceAuth;
use tournee_proto::frame::FrameReader;
use tournee_proto::pump::{ClientPump, ServerPump};
use tournee_proto::session::ServerSession;
use tournee_proto::wire::{ErrorCode, ServerMsg};
use tournee_proto::ProtocolError;
use tournee_store::SqliteStore;

const NOW: u64 = 1_790_000_000_000;
/// Bound on every wait of these tests (they finish in milliseconds).
const STEP: Duration = Duration::from_secs(10);

/// The server store on the test's thread, behind a mutex.
#[derive(Debug)]
struct Inline(Arc<Mutex<SqliteStore>>);

impl StoreHost for Inline {
    type Error = std::io::Error;

    async fn run<R, F>(&self, job: F) -> Result<R, std::io::Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn ServerStore) -> R + Send + 'static,
    {
        let mut store = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("store poisoned"))?;
        Ok(job(&mut *store))
    }
}

async fn endpoints() -> (Endpoint, Endpoint, SocketAddr) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let server_config =
        quinn::ServerConfig::with_single_cert(vec![cert.clone()], key).expect("server config");
    let server = Endpoint::server(server_config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .expect("server endpoint");
    let addr = server.local_addr().expect("addr");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let client_config =
        quinn::ClientConfig::with_root_certificates(Arc::new(roots)).expect("client config");
    let mut client =
        Endpoint::client(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("client endpoint");
    client.set_default_client_config(client_config);
    (server, client, addr)
}

async fn connect(
    server: &Endpoint,
    client: &Endpoint,
    addr: SocketAddr,
) -> (Connection, Connection) {
    let connecting = client.connect(addr, "localhost").expect("connect");
    let incoming = server.accept();
    let (c, s) = tokio::join!(connecting, async {
        incoming.await.expect("incoming").await
    });
    (c.expect("client side"), s.expect("server side"))
}

fn agent_store(device: u32) -> SqliteStore {
    let mut s = SqliteStore::open_in_memory().expect("store");
    s.set_identity(&Identity {
        device,
        unit: "bus-80-1".into(),
        territory: "80".into(),
    })
    .expect("identity");
    s
}

fn server_store() -> SqliteStore {
    let mut s = SqliteStore::open_in_memory().expect("store");
    s.set_identity(&Identity::server()).expect("identity");
    s
}

fn device(store: &SqliteStore) -> DeviceAuth {
    let id = store.identity().expect("identity").expect("set");
    DeviceAuth {
        actor: id.device,
        unit: id.unit,
        territory: id.territory,
    }
}

#[tokio::test]
async fn a_session_without_hello_ends_at_the_session_s_deadline_by_the_injected_clock() {
    let (server, client, addr) = endpoints().await;
    let (c, s) = connect(&server, &client, addr).await;
    let store = server_store();
    let auth = device(&agent_store(1));
    // The session started at NOW; the injected clock already reads its deadline, so nothing
    // sleeps: the pump's poll_timeout is due at once.
    let clock = ManualClock::new(NOW + HELLO_TIMEOUT_MS);
    let pump = ServerPump::new(ServerSession::new(auth, NOW));
    let (mut up, mut agent_recv) = c.open_bi().await.expect("stream");
    // A stream is only announced with data: two bytes of a frame header, never a Hello.
    up.write_all(&[0, 0]).await.expect("write");
    let (mut send, mut recv) = tokio::time::timeout(STEP, s.accept_bi())
        .await
        .expect("in time")
        .expect("stream");
    let head = watch::Sender::new(0);
    let (_down, shutdown) = watch::channel(false);
    let host = Inline(Arc::new(Mutex::new(store)));
    let served = tokio::time::timeout(
        STEP,
        serve_stream(
            pump,
            &mut send,
            &mut recv,
            &host,
            &clock,
            ServerSignals {
                head: &head,
                shutdown,
            },
        ),
    )
    .await
    .expect("the deadline ends the session, not the test's bound");
    assert!(
        matches!(
            served.result,
            Err(ServerEnd::Protocol(ProtocolError::Timeout("Hello")))
        ),
        "{:?}",
        served.result
    );
    // The deadline is due from the start, so whether the two bytes were read before it fired is
    // up to the scheduler (a loaded machine showed both orders); never more than was sent.
    assert!(served.bytes_in <= 2, "read {} bytes", served.bytes_in);
    // The agent was told why, in an Error frame, before the stream finished.
    let bytes = tokio::time::timeout(STEP, agent_recv.read_to_end(64 * 1024))
        .await
        .expect("in time")
        .expect("read");
    let mut r = FrameReader::new();
    r.push(&bytes).expect("frame");
    match r.next_msg::<ServerMsg>().expect("decode") {
        Some(ServerMsg::Error { code, message }) => {
            assert_eq!(code, ErrorCode::Unexpected);
            assert!(message.contains("Hello"), "{message}");
        }
        other => panic!("expected an Error frame, got {other:?}"),
    }
    assert_eq!(served.bytes_out, 0, "the error frame is not session output");
}

#[tokio::test]
async fn both_adapters_carry_a_whole_session_and_count_the_same_bytes() {
    let (server, client, addr) = endpoints().await;
    let (c, s) = connect(&server, &client, addr).await;
    let clock = ManualClock::new(NOW);
    let mut laptop = agent_store(1);
    for k in 0..300 {
        let action = LocalAction {
            edits: vec![RecordEdit {
                id: uuid::Uuid::now_v7(),
                kind: Kind::Appointment,
                scope: Scope::Unit("bus-80-1".into()),
                create: true,
                sets: vec![
                    (Field::Location, Value::Text("arret".into())),
                    (Field::Commune, Value::Text("80021".into())),
                    (Field::Start, Value::Int((NOW / 1000) as i64 + 86_400 + k)),
                    (Field::Duration, Value::Int(30)),
                    (Field::Status, Value::Text("unknown".into())),
                ],
            }],
        };
        laptop.write_local(NOW, &action).expect("write");
    }
    let scopes = laptop.identity().expect("id").expect("set").scopes();
    let auth = device(&laptop);
    let host = Inline(Arc::new(Mutex::new(server_store())));
    let head = watch::Sender::new(0);
    let (_down, shutdown) = watch::channel(false);
    let server_side = async {
        let (mut send, mut recv) = s.accept_bi().await.expect("stream");
        let pump = ServerPump::new(ServerSession::new(auth, clock.now_ms()));
        let signals = ServerSignals {
            head: &head,
            shutdown,
        };
        let served = serve_stream(pump, &mut send, &mut recv, &host, &clock, signals).await;
        let _ = send.finish();
        // The agent ends the connection once it read our end of the stream.
        let _ = s.closed().await;
        served
    };
    let client_side = async {
        let (mut send, mut recv) = c.open_bi().await.expect("stream");
        let mut pump = ClientPump::new(&laptop).expect("client");
        let (_stop_tx, mut stop) = watch::channel(false);
        let moved = drive_client(
            &mut pump,
            &mut send,
            &mut recv,
            &mut laptop,
            &clock,
            false,
            &mut stop,
        )
        .await;
        c.close(0u32.into(), b"done");
        (moved, pump.session().stats())
    };
    let (served, (moved, client_stats)) =
        tokio::time::timeout(STEP, async { tokio::join!(server_side, client_side) })
            .await
            .expect("the session completes");
    let moved = moved.expect("client side completes");
    assert!(served.result.is_ok(), "{:?}", served.result);
    assert_eq!(served.stats.applied, 1_500);
    assert_eq!(client_stats.changes_out, 1_500);
    assert_eq!(moved.bytes_out, served.bytes_in);
    assert_eq!(moved.bytes_in, served.bytes_out);
    assert_eq!(laptop.stats().expect("stats").pending, 0);
    assert_eq!(
        *head.borrow(),
        1_500,
        "the session advanced the changelog head"
    );
    let srv = host.0.lock().expect("store");
    assert_eq!(
        export::digest(&laptop, Some(&scopes)).expect("digest"),
        export::digest(&*srv, Some(&scopes)).expect("digest")
    );
}
