//! Workload `w1-compare` (issue 6): the W1 action stream (`w1::Streams`, recorded while our
//! product runs W1 for real) replayed into two other CRDTs, automerge and yrs, and synced
//! with their own protocols; the same measurements side by side.
//!
//! - ours: the W1 run itself (real server, agent, quinn on loopback; bytes are the stream
//!   payload the agent counts, round trips and server CPU from the sans-IO replay);
//! - automerge: one `AutoCommit` per replica (server + laptops), the records as a root map of
//!   maps keyed by id, one commit per action (timestamped with the action's time); the laptops
//!   start by loading the server's saved document; each reconnection runs `sync::SyncDoc`
//!   with a fresh `sync::State` on each side until neither has anything to send;
//! - yrs: one `Doc` per replica, a root map `r` of maps keyed by id, one transaction per
//!   action; the laptops start from the server's full update (v2); each reconnection sends the
//!   laptop's state vector, gets the server's diff (v2) and state vector, sends its own diff
//!   (v2) — two client flights.
//!
//! The other CRDTs' messages are carried over real quinn on loopback (`QuinnTransport`: a
//! self-signed certificate from rcgen, one connection and one bidirectional stream per
//! reconnection, u32-length-prefixed frames), both ends driven in lockstep from the bench's
//! thread. Bytes are the stream payload (encoded messages plus the 4-byte prefix), comparable
//! with our stream payload; the client connection's UDP bytes (handshake included) are given
//! beside them. Server CPU is the thread CPU of the server side of the protocol (decode,
//! receive/apply, generate/encode; QUIC/TLS excluded), one cold run, documents in memory —
//! ours is the p50 of warm replays on a `synchronous=FULL` SQLite file, so the CPU columns
//! are not like for like.
//!
//! Convergence: every replica of an adapter must dump the same final values (server and
//! laptops, after a second round of syncs); fields whose value differs from ours are counted
//! (concurrent writes to a shared appointment may be resolved differently: automerge and yrs
//! pick by actor/clock, ours by hybrid logical clock).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use automerge::sync::{self as amsync, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ObjType, ReadDoc, ScalarValue, ROOT};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tournee_core::model::{Kind, Value};
use uuid::Uuid;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Any, Doc, Map, MapPrelim, MapRef, Number, Out, ReadTxn, StateVector, Transact, Update};

use super::w1::{self, Act};
use super::{kb, ms, thread_cpu, Report};

/// Length prefix counted per message of the other CRDTs.
const FRAME_PREFIX: u64 = 4;
/// Issue 6's targets: ours ≤ 0.22 × automerge's bytes and ≤ 0.5 × yrs's.
const TARGET_VS_AUTOMERGE: f64 = 0.22;
const TARGET_VS_YRS: f64 = 0.5;
/// Safety bound on protocol rounds.
const MAX_ROUNDS: usize = 1_000;

/// Final values of a replica: record → field code → JSON value.
pub(crate) type Dump = BTreeMap<Uuid, BTreeMap<String, serde_json::Value>>;

/// One reconnection of one laptop.
#[derive(Debug, Default, Clone)]
pub(crate) struct Flow {
    pub(crate) bytes_up: u64,
    pub(crate) bytes_down: u64,
    pub(crate) messages_up: usize,
    pub(crate) messages_down: usize,
    /// Client flights of messages (as our replay counts them).
    pub(crate) round_trips: usize,
    pub(crate) server_cpu: Duration,
    /// UDP payload bytes the client's QUIC connection sent and received (handshake included).
    pub(crate) udp_up: u64,
    pub(crate) udp_down: u64,
}

impl Flow {
    fn up(&mut self, len: usize) {
        self.bytes_up += len as u64 + FRAME_PREFIX;
        self.messages_up += 1;
    }
    fn down(&mut self, len: usize) {
        self.bytes_down += len as u64 + FRAME_PREFIX;
        self.messages_down += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Transport

/// Carries one protocol message from one side to the other; returns what the other side read.
pub(crate) trait Link {
    fn up(&mut self, bytes: &[u8]) -> Result<Vec<u8>>;
    fn down(&mut self, bytes: &[u8]) -> Result<Vec<u8>>;
}

/// Hands the bytes over in memory: for the syncs a workload does not measure (other units'
/// daily syncs, the final round that checks convergence).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Direct;

impl Link for Direct {
    fn up(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(bytes.to_vec())
    }

    fn down(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(bytes.to_vec())
    }
}

/// A minimal QUIC transport on loopback: a server endpoint with a self-signed certificate, a
/// client endpoint trusting it, one connection and one bidirectional stream per session,
/// messages as u32-length-prefixed frames. Both sides are driven from this thread in
/// lockstep (the adapters' documents stay where they are).
pub(crate) struct QuinnTransport {
    rt: tokio::runtime::Runtime,
    server: quinn::Endpoint,
    client: quinn::Endpoint,
    addr: SocketAddr,
}

impl QuinnTransport {
    pub(crate) fn new() -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let cert = ck.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
        let server_config = quinn::ServerConfig::with_single_cert(vec![cert.clone()], key)?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert)?;
        let client_config = quinn::ClientConfig::with_root_certificates(Arc::new(roots))?;
        let (server, client) = {
            let _guard = rt.enter();
            let server = quinn::Endpoint::server(server_config, "127.0.0.1:0".parse()?)?;
            let mut client = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
            client.set_default_client_config(client_config);
            (server, client)
        };
        let addr = server.local_addr()?;
        Ok(Self {
            rt,
            server,
            client,
            addr,
        })
    }

    pub(crate) fn session(&self) -> Result<QuinnSession<'_>> {
        self.rt.block_on(async {
            let connecting = self.client.connect(self.addr, "localhost")?;
            let accepting = async {
                let incoming = self
                    .server
                    .accept()
                    .await
                    .context("server endpoint closed")?;
                Ok::<_, anyhow::Error>(incoming.await?)
            };
            let (client, server) = tokio::join!(connecting, accepting);
            let client = client?;
            let server = server?;
            let stream = client.open_bi().await?;
            Ok(QuinnSession {
                rt: &self.rt,
                client,
                server,
                at_client: stream,
                at_server: None,
            })
        })
    }
}

pub(crate) struct QuinnSession<'a> {
    rt: &'a tokio::runtime::Runtime,
    client: quinn::Connection,
    server: quinn::Connection,
    at_client: (quinn::SendStream, quinn::RecvStream),
    /// Accepted when the first frame arrives.
    at_server: Option<(quinn::SendStream, quinn::RecvStream)>,
}

async fn write_frame(send: &mut quinn::SendStream, bytes: &[u8]) -> Result<()> {
    send.write_all(&u32::try_from(bytes.len())?.to_be_bytes())
        .await?;
    send.write_all(bytes).await?;
    Ok(())
}

async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::try_from(u32::from_be_bytes(len))?];
    recv.read_exact(&mut buf).await?;
    Ok(buf)
}

impl QuinnSession<'_> {
    /// Close the connection; returns the client's UDP bytes sent and received.
    pub(crate) fn finish(self) -> (u64, u64) {
        let stats = self.client.stats();
        self.client.close(0u32.into(), b"done");
        self.server.close(0u32.into(), b"done");
        (stats.udp_tx.bytes, stats.udp_rx.bytes)
    }
}

impl Link for QuinnSession<'_> {
    fn up(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        let rt = self.rt;
        rt.block_on(async {
            write_frame(&mut self.at_client.0, bytes).await?;
            if self.at_server.is_none() {
                self.at_server = Some(self.server.accept_bi().await?);
            }
            let at_server = self.at_server.as_mut().context("no server stream")?;
            read_frame(&mut at_server.1).await
        })
    }

    fn down(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        let rt = self.rt;
        rt.block_on(async {
            let at_server = self.at_server.as_mut().context("no server stream")?;
            write_frame(&mut at_server.0, bytes).await?;
            read_frame(&mut self.at_client.1).await
        })
    }
}

/// Where an action is applied or a sync runs: document `doc` (one per unit; a workload with one
/// unit uses document 0) and replica `site` of it (0: the server's copy, k ≥ 1: device k).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Replica {
    pub(crate) doc: usize,
    pub(crate) site: usize,
}

impl Replica {
    /// The server's copy of document `doc`.
    pub(crate) fn server(doc: usize) -> Self {
        Self { doc, site: 0 }
    }

    /// Device `k` (1-based) of document `doc`.
    pub(crate) fn device(doc: usize, k: usize) -> Self {
        Self { doc, site: k }
    }
}

/// Another CRDT, fed our action stream. An adapter holds documents (one per unit), each with
/// its server copy and its devices' copies; a device syncs only with its document's server
/// copy, so no device ever receives another unit's data (as ours does not).
pub(crate) trait Adapter {
    fn name(&self) -> &'static str;
    /// Apply one action on a replica (one commit or transaction).
    fn apply(&mut self, at: Replica, act: &Act) -> Result<()>;
    /// Give document `doc` `devices` more device replicas, each a copy of the document's server
    /// replica as it stands.
    fn start_devices(&mut self, doc: usize, devices: usize) -> Result<()>;
    /// One reconnection of device replica `at` with its document's server replica.
    fn sync(&mut self, at: Replica, link: &mut dyn Link) -> Result<Flow>;
    fn dump(&mut self, at: Replica) -> Result<Dump>;
    /// Records of a replica holding more than one distinct value for a field, for a CRDT that
    /// keeps concurrent values; `None` for one that keeps a single value per key.
    fn conflicted_records(&mut self, _at: Replica) -> Result<Option<usize>> {
        Ok(None)
    }
    /// Bytes of the server's saved copy of document `doc`.
    fn server_storage(&mut self, doc: usize) -> Result<u64>;
}

/// The adapters of the workloads that compare over a month or many rounds (`w3`, `w5`), each
/// with `documents` documents: automerge with a fresh `sync::State` per connection (as
/// `w1-compare`), automerge keeping each side's state between a device's connections (what
/// automerge advises for a peer met again), and yrs.
pub(crate) fn adapters(documents: usize) -> Vec<Box<dyn Adapter>> {
    vec![
        Box::new(Automerge::new(documents, false)),
        Box::new(Automerge::new(documents, true)),
        Box::new(Yrs::new(documents)),
    ]
}

/// Fields of `ours` that `theirs` holds with another value, and fields it does not hold.
pub(crate) fn differences(ours: &Dump, theirs: &Dump) -> (usize, usize) {
    let mut differ = 0;
    let mut missing = 0;
    for (id, fields) in ours {
        let record = theirs.get(id);
        for (f, v) in fields {
            match record.and_then(|t| t.get(f)) {
                Some(x) if x == v => {}
                Some(_) => differ += 1,
                None => missing += 1,
            }
        }
    }
    (differ, missing)
}

// ---------------------------------------------------------------------------------------------
// automerge

struct Automerge {
    /// `docs[doc][site]`.
    docs: Vec<Vec<AutoCommit>>,
    /// With kept state: each side's `sync::State` of a device between its connections.
    kept: Option<KeptStates>,
}

/// Per device, the device's and the server's `sync::State`, as `State::encode` persists them
/// (the shared heads).
type KeptStates = BTreeMap<Replica, (Vec<u8>, Vec<u8>)>;

fn actor(replica: usize) -> ActorId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(replica as u64 + 1).to_be_bytes());
    ActorId::from(&bytes[..])
}

fn scalar(v: &Value) -> ScalarValue {
    match v {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Int(i) => ScalarValue::Int(*i),
        Value::Text(s) => ScalarValue::Str(s.as_str().into()),
        Value::Id(u) => ScalarValue::Str(u.to_string().into()),
    }
}

fn scalar_json(s: &ScalarValue) -> serde_json::Value {
    match s {
        ScalarValue::Str(s) => serde_json::Value::String(s.to_string()),
        ScalarValue::Int(i) => json!(i),
        ScalarValue::Uint(u) => json!(u),
        ScalarValue::F64(f) => json!(f),
        ScalarValue::Boolean(b) => json!(b),
        _ => serde_json::Value::Null,
    }
}

impl Automerge {
    /// `documents` documents, each with its server copy (actor 1; device k is actor k + 1).
    fn new(documents: usize, keep_state: bool) -> Self {
        Self {
            docs: (0..documents)
                .map(|_| vec![AutoCommit::new().with_actor(actor(0))])
                .collect(),
            kept: keep_state.then(BTreeMap::new),
        }
    }

    fn replica(&self, at: Replica) -> Result<&AutoCommit> {
        self.docs
            .get(at.doc)
            .and_then(|d| d.get(at.site))
            .context("no such replica")
    }

    fn server_mut(&mut self, doc: usize) -> Result<&mut AutoCommit> {
        self.docs
            .get_mut(doc)
            .and_then(|d| d.first_mut())
            .context("no such document")
    }
}

impl Adapter for Automerge {
    fn name(&self) -> &'static str {
        if self.kept.is_some() {
            "automerge-kept"
        } else {
            "automerge"
        }
    }

    fn apply(&mut self, at: Replica, act: &Act) -> Result<()> {
        let doc = self
            .docs
            .get_mut(at.doc)
            .and_then(|d| d.get_mut(at.site))
            .context("no such replica")?;
        for (id, _, sets) in &act.edits {
            let key = id.to_string();
            let obj = match doc.get(ROOT, key.as_str())? {
                Some((automerge::Value::Object(ObjType::Map), obj)) => obj,
                _ => doc.put_object(ROOT, key.as_str(), ObjType::Map)?,
            };
            for (f, v) in sets {
                doc.put(&obj, f.code(), scalar(v))?;
            }
        }
        doc.commit_with(CommitOptions::default().with_time(i64::try_from(act.at)?));
        Ok(())
    }

    fn start_devices(&mut self, doc: usize, devices: usize) -> Result<()> {
        let server = self.server_mut(doc)?;
        let saved = server.save();
        let heads = server.get_heads();
        let replicas = self.docs.get_mut(doc).context("no such document")?;
        let first = replicas.len();
        for k in first..first + devices {
            replicas.push(AutoCommit::load(&saved)?.with_actor(actor(k)));
            if let Some(kept) = &mut self.kept {
                // The copy is what a first sync would have left: both sides share its heads.
                let mut state = amsync::State::new();
                state.shared_heads = heads.clone();
                kept.insert(Replica::device(doc, k), (state.encode(), state.encode()));
            }
        }
        Ok(())
    }

    fn sync(&mut self, at: Replica, link: &mut dyn Link) -> Result<Flow> {
        let Self { docs, kept } = self;
        let (server, devices) = docs
            .get_mut(at.doc)
            .context("no such document")?
            .split_at_mut(1);
        let server = server.first_mut().context("no server")?;
        let laptop = at
            .site
            .checked_sub(1)
            .and_then(|i| devices.get_mut(i))
            .context("no such device")?;
        let mut flow = Flow::default();
        let saved = kept.as_ref().and_then(|k| k.get(&at));
        let mut at_laptop = match saved {
            Some((l, _)) => amsync::State::decode(l)?,
            None => amsync::State::new(),
        };
        let c0 = thread_cpu()?;
        let mut at_server = match saved {
            Some((_, s)) => amsync::State::decode(s)?,
            None => amsync::State::new(),
        };
        flow.server_cpu += thread_cpu()?.saturating_sub(c0);
        for _ in 0..MAX_ROUNDS {
            let up = laptop
                .sync()
                .generate_sync_message(&mut at_laptop)
                .map(amsync::Message::encode);
            let received = up.as_deref().map(|b| link.up(b)).transpose()?;
            let c0 = thread_cpu()?;
            if let Some(bytes) = &received {
                let m = amsync::Message::decode(bytes)?;
                server.sync().receive_sync_message(&mut at_server, m)?;
            }
            let down = server
                .sync()
                .generate_sync_message(&mut at_server)
                .map(amsync::Message::encode);
            flow.server_cpu += thread_cpu()?.saturating_sub(c0);
            if let Some(bytes) = &up {
                flow.up(bytes.len());
                flow.round_trips += 1;
            }
            match &down {
                Some(bytes) => {
                    flow.down(bytes.len());
                    let m = amsync::Message::decode(&link.down(bytes)?)?;
                    laptop.sync().receive_sync_message(&mut at_laptop, m)?;
                }
                None if up.is_none() => {
                    if let Some(kept) = kept {
                        let c0 = thread_cpu()?;
                        let server_state = at_server.encode();
                        flow.server_cpu += thread_cpu()?.saturating_sub(c0);
                        kept.insert(at, (at_laptop.encode(), server_state));
                    }
                    return Ok(flow);
                }
                None => {}
            }
        }
        anyhow::bail!("automerge sync did not finish in {MAX_ROUNDS} rounds")
    }

    fn dump(&mut self, at: Replica) -> Result<Dump> {
        let doc = self.replica(at)?;
        let mut out = Dump::new();
        for key in doc.keys(ROOT) {
            let id = Uuid::parse_str(&key)?;
            let mut values = BTreeMap::new();
            if let Some((automerge::Value::Object(_), obj)) = doc.get(ROOT, key.as_str())? {
                for f in doc.keys(&obj) {
                    if let Some((automerge::Value::Scalar(s), _)) = doc.get(&obj, f.as_str())? {
                        values.insert(f, scalar_json(&s));
                    }
                }
            }
            out.insert(id, values);
        }
        Ok(out)
    }

    fn conflicted_records(&mut self, at: Replica) -> Result<Option<usize>> {
        let doc = self.replica(at)?;
        let mut conflicted = 0;
        for key in doc.keys(ROOT) {
            if let Some((automerge::Value::Object(_), obj)) = doc.get(ROOT, key.as_str())? {
                let mut any = false;
                for f in doc.keys(&obj) {
                    let values: BTreeSet<String> = doc
                        .get_all(&obj, f.as_str())?
                        .into_iter()
                        .map(|(v, _)| v.to_string())
                        .collect();
                    any |= values.len() > 1;
                }
                conflicted += usize::from(any);
            }
        }
        Ok(Some(conflicted))
    }

    fn server_storage(&mut self, doc: usize) -> Result<u64> {
        Ok(self.server_mut(doc)?.save().len() as u64)
    }
}

// ---------------------------------------------------------------------------------------------
// yrs

struct Yrs {
    /// `docs[doc][site]`.
    docs: Vec<Vec<Doc>>,
}

const YRS_ROOT: &str = "r";

fn any(v: &Value) -> Any {
    match v {
        Value::Null => Any::Null,
        Value::Bool(b) => Any::Bool(*b),
        Value::Int(i) => Any::Number(Number::Int(*i)),
        Value::Text(s) => Any::from(s.as_str()),
        Value::Id(u) => Any::from(u.to_string()),
    }
}

fn any_json(a: &Any) -> serde_json::Value {
    match a {
        Any::Bool(b) => json!(b),
        Any::Number(Number::Int(i)) => json!(i),
        Any::Number(Number::Float(f)) => json!(f),
        Any::String(s) => json!(s.as_ref()),
        _ => serde_json::Value::Null,
    }
}

impl Yrs {
    /// `documents` documents, each with its server copy (client 1; device k is client k + 1).
    fn new(documents: usize) -> Self {
        Self {
            docs: (0..documents)
                .map(|_| vec![Doc::with_client_id(1)])
                .collect(),
        }
    }

    fn replica(&self, at: Replica) -> Result<&Doc> {
        self.docs
            .get(at.doc)
            .and_then(|d| d.get(at.site))
            .context("no such replica")
    }
}

impl Adapter for Yrs {
    fn name(&self) -> &'static str {
        "yrs"
    }

    fn apply(&mut self, at: Replica, act: &Act) -> Result<()> {
        let doc = self.replica(at)?;
        let root = doc.get_or_insert_map(YRS_ROOT);
        let mut txn = doc.transact_mut();
        for (id, _, sets) in &act.edits {
            let key = id.to_string();
            let record: MapRef = match root.get(&txn, &key) {
                Some(Out::YMap(m)) => m,
                _ => root.insert(&mut txn, key, MapPrelim::default()),
            };
            for (f, v) in sets {
                record.insert(&mut txn, f.code(), any(v));
            }
        }
        Ok(())
    }

    fn start_devices(&mut self, doc: usize, devices: usize) -> Result<()> {
        let full = self
            .replica(Replica::server(doc))?
            .transact()
            .encode_state_as_update_v2(&StateVector::default());
        let replicas = self.docs.get_mut(doc).context("no such document")?;
        let first = replicas.len();
        for k in first..first + devices {
            let copy = Doc::with_client_id(k as u64 + 1);
            copy.transact_mut()
                .apply_update(Update::decode_v2(&full)?)?;
            replicas.push(copy);
        }
        Ok(())
    }

    fn sync(&mut self, at: Replica, link: &mut dyn Link) -> Result<Flow> {
        let server = self.replica(Replica::server(at.doc))?;
        if at.site == 0 {
            anyhow::bail!("the server does not sync with itself");
        }
        let laptop = self.replica(at)?;
        let mut flow = Flow::default();
        // Flight 1: the laptop's state vector; the server answers with its diff and its own
        // state vector.
        let sv_laptop = laptop.transact().state_vector().encode_v1();
        flow.up(sv_laptop.len());
        flow.round_trips += 1;
        let received = link.up(&sv_laptop)?;
        let c0 = thread_cpu()?;
        let (diff_down, sv_server) = {
            let sv = StateVector::decode_v1(&received)?;
            let txn = server.transact();
            (txn.encode_diff_v2(&sv), txn.state_vector().encode_v1())
        };
        flow.server_cpu += thread_cpu()?.saturating_sub(c0);
        flow.down(diff_down.len());
        flow.down(sv_server.len());
        let diff_down = link.down(&diff_down)?;
        let sv_server = link.down(&sv_server)?;
        // Flight 2: the laptop's diff against the server's state vector.
        let diff_up = laptop
            .transact()
            .encode_diff_v2(&StateVector::decode_v1(&sv_server)?);
        laptop
            .transact_mut()
            .apply_update(Update::decode_v2(&diff_down)?)?;
        flow.up(diff_up.len());
        flow.round_trips += 1;
        let diff_up = link.up(&diff_up)?;
        let c0 = thread_cpu()?;
        server
            .transact_mut()
            .apply_update(Update::decode_v2(&diff_up)?)?;
        flow.server_cpu += thread_cpu()?.saturating_sub(c0);
        Ok(flow)
    }

    fn dump(&mut self, at: Replica) -> Result<Dump> {
        let doc = self.replica(at)?;
        let root = doc.get_or_insert_map(YRS_ROOT);
        let txn = doc.transact();
        let mut out = Dump::new();
        for (key, v) in root.iter(&txn) {
            let id = Uuid::parse_str(key)?;
            let mut values = BTreeMap::new();
            if let Out::YMap(m) = v {
                for (f, x) in m.iter(&txn) {
                    if let Out::Any(a) = x {
                        values.insert(f.to_owned(), any_json(&a));
                    }
                }
            }
            out.insert(id, values);
        }
        Ok(out)
    }

    fn server_storage(&mut self, doc: usize) -> Result<u64> {
        Ok(self
            .replica(Replica::server(doc))?
            .transact()
            .encode_state_as_update_v2(&StateVector::default())
            .len() as u64)
    }
}

// ---------------------------------------------------------------------------------------------
// The workload

/// What one adapter measured.
#[derive(Debug)]
struct Summary {
    bytes_up: u64,
    bytes_down: u64,
}

pub(crate) fn run(report: &mut Report, seed: u64, per_day: usize, keep: bool) -> Result<()> {
    let out = w1::run_outcome(report, seed, per_day, keep)?;
    let appointments = out
        .streams
        .server
        .iter()
        .chain(out.streams.laptops.iter().flatten().flatten())
        .flat_map(|a| a.edits.iter())
        .filter(|(_, kind, _)| *kind == Kind::Appointment)
        .map(|(id, _, _)| *id)
        .collect::<BTreeSet<_>>()
        .len();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;

    // Ours, from the W1 run.
    let ours = Summary {
        bytes_up: out.rows.iter().map(|r| r.bytes_up).sum(),
        bytes_down: out.rows.iter().map(|r| r.bytes_down).sum(),
    };
    for (k, r) in out.rows.iter().enumerate() {
        report.push(
            json!({
                "bench": format!("w1-compare.ours.laptop-{}", k + 1),
                "adapter": "ours",
                "transport": "quinn",
                "bytes_up": r.bytes_up,
                "bytes_down": r.bytes_down,
                "deflated_delta_bytes": r.deflated_delta,
                "ratio_up_to_delta": round(r.bytes_up as f64 / r.deflated_delta.max(1) as f64),
                "messages_up": r.messages_up,
                "messages_down": r.messages_down,
                "round_trips": r.round_trips,
                "server_cpu_ms": r.server_cpu_ms_p50,
                "server_cpu_note": "p50 of warm sans-IO replays on a synchronous=FULL SQLite file",
                "server_storage_bytes_per_appointment": round(out.server_bytes_per_appointment),
                "converged": out.converged,
                "informational": true,
                "ok": out.converged,
            }),
            format!(
                "up {} / down {}, {} RT, {:.1} ms",
                kb(r.bytes_up),
                kb(r.bytes_down),
                r.round_trips,
                r.server_cpu_ms_p50
            ),
            "-".into(),
        );
    }

    let quic = QuinnTransport::new()?;
    let mut adapters: Vec<Box<dyn Adapter>> =
        vec![Box::new(Automerge::new(1, false)), Box::new(Yrs::new(1))];
    let mut summaries = Vec::new();
    for a in &mut adapters {
        let name = a.name();
        let laptops = out.streams.laptops.len();
        for act in &out.streams.server {
            a.apply(Replica::server(0), act)?;
        }
        a.start_devices(0, laptops)?;
        for (k, days) in out.streams.laptops.iter().enumerate() {
            for act in days.iter().flatten() {
                a.apply(Replica::device(0, k + 1), act)?;
            }
        }
        let mut flows = Vec::with_capacity(laptops);
        for k in 1..=laptops {
            let mut session = quic.session()?;
            let mut flow = a.sync(Replica::device(0, k), &mut session)?;
            (flow.udp_up, flow.udp_down) = session.finish();
            flows.push(flow);
        }
        let storage = a.server_storage(0)?;
        // A second round, then every replica must hold the server's values.
        for k in 1..=laptops {
            let mut session = quic.session()?;
            a.sync(Replica::device(0, k), &mut session)?;
            session.finish();
        }
        let server = a.dump(Replica::server(0))?;
        let mut converged = true;
        for k in 1..=laptops {
            converged &= a.dump(Replica::device(0, k))? == server;
        }
        let (differ_from_ours, missing) = differences(&out.dump, &server);
        for (k, (f, r)) in flows.iter().zip(&out.rows).enumerate() {
            report.push(
                json!({
                    "bench": format!("w1-compare.{name}.laptop-{}", k + 1),
                    "adapter": name,
                    "transport": "quinn",
                    "bytes_note": "stream payload: encoded protocol messages + 4-byte length prefix each",
                    "bytes_up": f.bytes_up,
                    "bytes_down": f.bytes_down,
                    "udp_bytes_up": f.udp_up,
                    "udp_bytes_down": f.udp_down,
                    "deflated_delta_bytes": r.deflated_delta,
                    "ratio_up_to_delta": round(f.bytes_up as f64 / r.deflated_delta.max(1) as f64),
                    "messages_up": f.messages_up,
                    "messages_down": f.messages_down,
                    "round_trips": f.round_trips,
                    "server_cpu_ms": ms(f.server_cpu),
                    "server_cpu_note": "server side of the protocol, in memory, one cold run",
                    "server_storage_bytes_per_appointment": round(storage as f64 / appointments.max(1) as f64),
                    "converged": converged,
                    "fields_differing_from_ours": differ_from_ours,
                    "fields_missing_vs_ours": missing,
                    "informational": true,
                    "ok": converged && missing == 0,
                }),
                format!(
                    "up {} / down {}, {} RT, {:.1} ms",
                    kb(f.bytes_up),
                    kb(f.bytes_down),
                    f.round_trips,
                    ms(f.server_cpu)
                ),
                "-".into(),
            );
        }
        summaries.push((
            name,
            Summary {
                bytes_up: flows.iter().map(|f| f.bytes_up).sum(),
                bytes_down: flows.iter().map(|f| f.bytes_down).sum(),
            },
        ));
    }

    for (name, s) in &summaries {
        let target = if *name == "automerge" {
            TARGET_VS_AUTOMERGE
        } else {
            TARGET_VS_YRS
        };
        let total = |x: &Summary| (x.bytes_up + x.bytes_down) as f64;
        let ratio = total(&ours) / total(s).max(1.0);
        let ratio_up = ours.bytes_up as f64 / s.bytes_up.max(1) as f64;
        report.push(
            json!({
                "bench": format!("w1-compare.summary.ours_vs_{name}"),
                "what": "bytes both ways, summed over the laptops' reconnections: ours / theirs",
                "ours_bytes_up": ours.bytes_up,
                "ours_bytes_down": ours.bytes_down,
                "their_bytes_up": s.bytes_up,
                "their_bytes_down": s.bytes_down,
                "ratio": round(ratio),
                "ratio_up": round(ratio_up),
                "target_ratio": target,
                "their_transport": "quinn",
                "ok": ratio <= target,
            }),
            format!(
                "ours {} / {name} {} = {:.3} (up only {:.3})",
                kb(ours.bytes_up + ours.bytes_down),
                kb(s.bytes_up + s.bytes_down),
                ratio,
                ratio_up
            ),
            format!("<= {target}"),
        );
    }
    Ok(())
}
