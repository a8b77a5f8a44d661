//! A flood of QUIC Initials on loopback against a real `tournee-server serve`: half-open
//! handshakes (real Initials, crafted with quinn's own state machine, never continued) from one
//! host, as fast as it can send them for a few seconds. The server's resident memory (from
//! /proc/PID/status) must stay under its idle size plus `RSS_GROWTH_MAX`, a laptop's `sync`
//! during the flood must succeed, and the log must summarise instead of writing a line per
//! attempt. Bounded in count and time; it stops by itself.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn_proto::crypto::rustls::QuicClientConfig;
use tournee_net::bundle::Bundle;
use tournee_net::tls;
use tournee_tests::{day, Agent, Server};

/// Most the server's RSS may grow over its idle size during the flood, in bytes.
const RSS_GROWTH_MAX: u64 = 128 * 1024 * 1024;
/// How long the flood lasts at most.
const FLOOD_FOR: Duration = Duration::from_secs(5);
/// Most Initials each flooding thread sends (each a new connection attempt).
const FLOOD_INITIALS_MAX: u64 = 40_000;

/// Resident set size of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// A QUIC client config of a real device (so the Initials are what a laptop sends).
fn client_config(bundle_file: &Path) -> quinn_proto::ClientConfig {
    let bundle = Bundle::parse(&std::fs::read_to_string(bundle_file).expect("bundle"))
        .expect("bundle parses");
    let ca = tls::pem_to_der_certs(&bundle.ca_pem)
        .expect("CA PEM")
        .remove(0);
    let chain = tls::pem_to_der_certs(&bundle.cert_pem).expect("certificate PEM");
    let key = tls::pem_to_der_key(&bundle.key_pem).expect("key PEM");
    let rustls = tls::client_config(&ca, chain, key).expect("client TLS config");
    let crypto = QuicClientConfig::try_from(rustls).expect("QUIC TLS config");
    quinn_proto::ClientConfig::new(Arc::new(crypto))
}

/// Send new connection attempts to `target` until `stop` or the bounds; returns how many.
fn flood(config: quinn_proto::ClientConfig, target: SocketAddr, stop: &AtomicBool) -> u64 {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("flood socket");
    let mut endpoint = quinn_proto::Endpoint::new(
        Arc::new(quinn_proto::EndpointConfig::default()),
        None,
        false,
        None,
    );
    let started = Instant::now();
    let mut sent = 0u64;
    let mut buf = Vec::with_capacity(1500);
    while !stop.load(Ordering::Relaxed)
        && started.elapsed() < FLOOD_FOR
        && sent < FLOOD_INITIALS_MAX
    {
        let now = Instant::now();
        let (handle, mut conn) = endpoint
            .connect(now, config.clone(), target, tls::SERVER_NAME)
            .expect("connect parameters");
        buf.clear();
        if let Some(t) = conn.poll_transmit(now, 1, &mut buf) {
            let _ = socket.send_to(&buf[..t.size], target);
            sent += 1;
        }
        // Forget the attempt: a half-open handshake the server is left holding.
        drop(conn);
        let _ = handle;
        if sent.is_multiple_of(256) {
            // Start from a fresh endpoint now and then so connection ids never run out.
            endpoint = quinn_proto::Endpoint::new(
                Arc::new(quinn_proto::EndpointConfig::default()),
                None,
                false,
                None,
            );
        }
    }
    sent
}

#[test]
fn a_flood_of_half_open_handshakes_keeps_the_server_bounded_and_a_laptop_syncs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::init(&tmp.path().join("server"), None);
    server.unit("bus-80-1", "80");
    let good = Agent::init(&tmp.path().join("good"), &server.enroll("bus-80-1", "good"));
    let attacker_bundle = server.enroll("bus-80-1", "flood");
    server.start();
    let pid = server.pid().expect("serve runs");
    // Warm up: one real session, so idle RSS includes what serving costs anyway.
    good.add(&day(1), "09:00", "avant");
    good.sync();
    let idle = rss(pid);

    let stop = AtomicBool::new(false);
    let peak = AtomicU64::new(idle);
    let config = client_config(&attacker_bundle);
    let target = server.addr;
    let (sent, synced) = std::thread::scope(|s| {
        let flooders: Vec<_> = (0..2)
            .map(|_| {
                let config = config.clone();
                let stop = &stop;
                s.spawn(move || flood(config, target, stop))
            })
            .collect();
        let sampler = s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        // Let the flood build up, then a laptop syncs through it.
        std::thread::sleep(Duration::from_millis(1_500));
        good.add(&day(1), "10:00", "pendant");
        let out = good.run(&["sync", "--timeout", "20"]);
        let sent: u64 = flooders
            .into_iter()
            .map(|f| f.join().expect("flood thread"))
            .sum();
        stop.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler");
        (sent, out)
    });
    let peak = peak.load(Ordering::Relaxed);
    let after = rss(pid);
    eprintln!(
        "flood: {sent} Initials; server RSS idle {} MiB, peak {} MiB, after {} MiB",
        idle >> 20,
        peak >> 20,
        after >> 20
    );
    assert!(sent >= 2_000, "the flood really happened: {sent} Initials");
    assert!(
        synced.status.success(),
        "a laptop syncs during the flood: {}",
        String::from_utf8_lossy(&synced.stderr)
    );
    assert_eq!(good.status()["pending_changes"], 0);
    assert!(
        peak <= idle + RSS_GROWTH_MAX,
        "server RSS {} MiB over idle {} MiB",
        peak >> 20,
        idle >> 20
    );
    assert!(server.is_running());
    server.stop();
    let log = server.log_text();
    let refused = log
        .lines()
        .filter(|l| l.contains("handshake refused"))
        .count();
    assert!(
        (refused as u64) < sent / 10,
        "refused handshakes are summarised, not one line each: {refused} lines for {sent}"
    );
    assert!(
        log.contains("connection attempts under load"),
        "a summary line counts the attempts"
    );
}
