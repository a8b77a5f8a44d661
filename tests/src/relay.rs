//! A fault-injecting UDP relay on loopback, standing in for a rural link (`tc netem` is not
//! available here): seeded loss, duplication, reordering, delay, bandwidth limit, and cuts.
//!
//! It relays one client (the first address that sends) to one upstream. Threads and std
//! sockets only, so it works under any test harness. Deliberately not a general proxy.
//!
//! The link model, per direction: a datagram is lost (or cut) as it enters; otherwise, when the
//! direction has a bandwidth, it waits in a FIFO for the bottleneck (dropped at the tail when it
//! would wait longer than `queue_ms`), is serialised at the link's rate (UDP payload plus
//! `header_bytes`), then arrives after the one-way delay. Each direction draws its faults from
//! its own seeded stream, so the n-th datagram up (or down) meets the same fate in every run of
//! a seed, whatever the timing of the other direction.

use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tournee_core::rng::SeededRng;

/// Faults applied to each datagram, per direction alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability a datagram is dropped.
    pub loss: f64,
    /// Probability a datagram is sent twice.
    pub duplicate: f64,
    /// Probability a datagram is held back by an extra `reorder_ms`.
    pub reorder: f64,
    /// Extra delay of reordered datagrams, in ms.
    pub reorder_ms: u64,
    /// One-way delay, in ms.
    pub delay_ms: u64,
    /// Bandwidth in bits per second, client to server (0: unlimited).
    pub up_bps: u64,
    /// Bandwidth in bits per second, server to client (0: unlimited).
    pub down_bps: u64,
    /// When true every datagram is dropped (a cut link).
    pub cut: bool,
    /// Drop-tail buffer in front of a bandwidth limit, in ms of traffic at that direction's
    /// rate: a datagram that would wait longer than this for the link is dropped (0: unbounded).
    pub queue_ms: u64,
    /// Bytes a datagram occupies on a bandwidth-limited link beyond its UDP payload (28 for the
    /// IPv4 and UDP headers); used for the serialisation time only, not in the byte counts.
    pub header_bytes: u64,
}

impl Faults {
    /// A perfect link.
    pub fn none() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_ms: 0,
            delay_ms: 0,
            up_bps: 0,
            down_bps: 0,
            cut: false,
            queue_ms: 0,
            header_bytes: 0,
        }
    }
}

/// Datagram counts, for assertions.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Datagrams received from the client.
    pub up_in: AtomicU64,
    /// Datagrams received from the server.
    pub down_in: AtomicU64,
    /// Datagrams dropped (loss or cut).
    pub dropped: AtomicU64,
    /// Of those, datagrams from the client.
    pub dropped_up: AtomicU64,
    /// Of those, datagrams from the server.
    pub dropped_down: AtomicU64,
    /// Datagrams dropped because the bottleneck's buffer was full (`queue_ms`), both ways.
    pub queue_dropped: AtomicU64,
    /// Extra copies sent.
    pub duplicated: AtomicU64,
    /// Bytes delivered to the server.
    pub up_bytes: AtomicU64,
    /// Bytes delivered to the client.
    pub down_bytes: AtomicU64,
}

struct Pending {
    at: Instant,
    order: u64,
    up: bool,
    bytes: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.order).cmp(&(self.at, self.order))
    }
}

struct State {
    faults: Faults,
    /// The fault streams of each direction.
    rng_up: SeededRng,
    rng_down: SeededRng,
    order: u64,
    queue: BinaryHeap<Pending>,
    up_free_at: Instant,
    down_free_at: Instant,
}

impl State {
    /// True with probability `p`, drawn from the stream of the direction `up` names.
    fn chance(&mut self, up: bool, p: f64) -> bool {
        let rng = if up {
            &mut self.rng_up
        } else {
            &mut self.rng_down
        };
        rng.with_probability(p)
    }
}

/// A running relay. Dropping it stops its threads.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<(Mutex<StateBox>, Condvar)>,
    stats: Arc<RelayStats>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

struct StateBox(State);

impl std::fmt::Debug for StateBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0.faults)
    }
}

impl Relay {
    /// Start relaying from a new loopback port to `upstream`, with `faults` and a seed.
    pub fn start(upstream: SocketAddr, faults: Faults, seed: u64) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr"), upstream, faults, seed)
    }

    /// Like `start`, on a given local address (so a server can be told the relay's address
    /// before it runs).
    pub fn start_on(local: SocketAddr, upstream: SocketAddr, faults: Faults, seed: u64) -> Self {
        let front = UdpSocket::bind(local).expect("bind relay");
        let back = UdpSocket::bind("127.0.0.1:0").expect("bind relay upstream side");
        back.connect(upstream).expect("connect upstream");
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(20)))
                .expect("timeout");
        }
        let addr = front.local_addr().expect("addr");
        let now = Instant::now();
        let shared = Arc::new((
            Mutex::new(StateBox(State {
                faults,
                rng_up: SeededRng::new(seed),
                rng_down: SeededRng::new(seed ^ 0xD0E5_0000_0000_D0E5),
                order: 0,
                queue: BinaryHeap::new(),
                up_free_at: now,
                down_free_at: now,
            })),
            Condvar::new(),
        ));
        let stats = Arc::new(RelayStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let front = Arc::new(front);
        let back = Arc::new(back);
        let mut threads = Vec::new();
        // Client -> relay.
        {
            let (front, shared, stats, stop, client) = (
                front.clone(),
                shared.clone(),
                stats.clone(),
                stop.clone(),
                client.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = front.recv_from(&mut buf) {
                        if let Ok(mut c) = client.lock() {
                            *c = Some(from);
                        }
                        stats.up_in.fetch_add(1, Ordering::Relaxed);
                        schedule(&shared, &stats, true, &buf[..n]);
                    }
                }
            }));
        }
        // Server -> relay.
        {
            let (back, shared, stats, stop) =
                (back.clone(), shared.clone(), stats.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = back.recv(&mut buf) {
                        stats.down_in.fetch_add(1, Ordering::Relaxed);
                        schedule(&shared, &stats, false, &buf[..n]);
                    }
                }
            }));
        }
        // Delivery.
        {
            let (shared, stats, stop) = (shared.clone(), stats.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let (lock, cv) = &*shared;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut st) = lock.lock() else { return };
                    let now = Instant::now();
                    match st.0.queue.peek() {
                        Some(p) if p.at <= now => {
                            let Some(p) = st.0.queue.pop() else { continue };
                            drop(st);
                            if p.up {
                                if back.send(&p.bytes).is_ok() {
                                    stats
                                        .up_bytes
                                        .fetch_add(p.bytes.len() as u64, Ordering::Relaxed);
                                }
                            } else if let Some(c) = client.lock().ok().and_then(|c| *c) {
                                if front.send_to(&p.bytes, c).is_ok() {
                                    stats
                                        .down_bytes
                                        .fetch_add(p.bytes.len() as u64, Ordering::Relaxed);
                                }
                            }
                        }
                        Some(p) => {
                            let wait = p.at - now;
                            let _ = cv.wait_timeout(st, wait.min(Duration::from_millis(20)));
                        }
                        None => {
                            let _ = cv.wait_timeout(st, Duration::from_millis(20));
                        }
                    }
                }
            }));
        }
        Self {
            addr,
            shared,
            stats,
            stop,
            threads,
        }
    }

    /// The address clients send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters.
    pub fn stats(&self) -> &RelayStats {
        &self.stats
    }

    /// Change the faults (e.g. cut or heal the link).
    pub fn set_faults(&self, f: Faults) {
        if let Ok(mut st) = self.shared.0.lock() {
            st.0.faults = f;
        }
    }

    /// Cut (true) or heal (false) the link, keeping other faults.
    pub fn set_cut(&self, cut: bool) {
        if let Ok(mut st) = self.shared.0.lock() {
            st.0.faults.cut = cut;
            if cut {
                st.0.queue.clear();
            }
        }
    }
}

fn schedule(shared: &Arc<(Mutex<StateBox>, Condvar)>, stats: &RelayStats, up: bool, bytes: &[u8]) {
    let (lock, cv) = &**shared;
    let Ok(mut guard) = lock.lock() else { return };
    let st = &mut guard.0;
    let f = st.faults;
    if f.cut || st.chance(up, f.loss) {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        if up {
            stats.dropped_up.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.dropped_down.fetch_add(1, Ordering::Relaxed);
        }
        return;
    }
    let copies = if st.chance(up, f.duplicate) {
        stats.duplicated.fetch_add(1, Ordering::Relaxed);
        2
    } else {
        1
    };
    let now = Instant::now();
    let bps = if up { f.up_bps } else { f.down_bps };
    let mut at = now + Duration::from_millis(f.delay_ms);
    let wire_bytes = bytes.len() as u64 + f.header_bytes;
    if let Some(us) = (wire_bytes * 8 * 1_000_000).checked_div(bps) {
        let free = if up {
            &mut st.up_free_at
        } else {
            &mut st.down_free_at
        };
        let start = (*free).max(now);
        if f.queue_ms > 0 && start > now + Duration::from_millis(f.queue_ms) {
            stats.queue_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let tx = Duration::from_micros(us);
        *free = start + tx;
        at = *free + Duration::from_millis(f.delay_ms);
    }
    if st.chance(up, f.reorder) {
        at += Duration::from_millis(f.reorder_ms);
    }
    for _ in 0..copies {
        st.order += 1;
        let order = st.order;
        st.queue.push(Pending {
            at,
            order,
            up,
            bytes: bytes.to_vec(),
        });
    }
    cv.notify_all();
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.shared.1.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback socket standing in for the server, with a short read timeout.
    fn upstream() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind upstream");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        s
    }

    /// Send `n` numbered datagrams up (answering every third one down when `chatter`) and
    /// return the numbers that arrived.
    fn arrivals(faults: Faults, seed: u64, n: u8, chatter: bool) -> Vec<u8> {
        let server = upstream();
        let relay = Relay::start(server.local_addr().expect("addr"), faults, seed);
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind client");
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        for i in 0..n {
            client.send_to(&[i; 32], relay.addr()).expect("send");
            if chatter && i % 3 == 0 {
                // Down traffic in between draws from its own stream, not from the up one.
                if let Ok((_, from)) = server.recv_from(&mut buf) {
                    got.push(buf[0]);
                    server.send_to(&buf[..8], from).expect("answer");
                }
            }
        }
        while let Ok((_, _)) = server.recv_from(&mut buf) {
            got.push(buf[0]);
        }
        got.sort_unstable();
        got
    }

    #[test]
    fn relay_fault_pattern_of_a_direction_depends_on_the_seed_only() {
        let faults = Faults {
            loss: 0.3,
            ..Faults::none()
        };
        let quiet = arrivals(faults, 7, 60, false);
        let chatty = arrivals(faults, 7, 60, true);
        assert_eq!(quiet, chatty, "the same datagrams are lost up");
        assert!(
            quiet.len() < 60 && quiet.len() > 20,
            "{} arrived",
            quiet.len()
        );
        assert_ne!(
            quiet,
            arrivals(faults, 8, 60, false),
            "another seed, other losses"
        );
    }

    #[test]
    fn relay_drops_at_the_tail_of_a_full_bottleneck_buffer() {
        // 80 kbit/s: a 1000-byte datagram takes 100 ms; the buffer holds 250 ms.
        let faults = Faults {
            up_bps: 80_000,
            queue_ms: 250,
            ..Faults::none()
        };
        let server = upstream();
        let relay = Relay::start(server.local_addr().expect("addr"), faults, 1);
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind client");
        for _ in 0..10 {
            client.send_to(&[0u8; 1000], relay.addr()).expect("send");
        }
        let mut buf = [0u8; 2000];
        let mut arrived = 0;
        while server.recv_from(&mut buf).is_ok() {
            arrived += 1;
        }
        let dropped = relay.stats().queue_dropped.load(Ordering::Relaxed);
        // Sent at once: the first goes straight on the link, then up to three wait 100, 200
        // and 250 ms or less; the rest find the buffer full.
        assert_eq!(arrived + dropped, 10);
        assert!(
            (3..=4).contains(&arrived),
            "{arrived} arrived, {dropped} dropped"
        );
    }
}
