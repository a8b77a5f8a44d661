//! Workload `w1-rural` (issue 6): the wall time of W1's reconnections over an emulated rural link
//! (200 ms round trip, 1 % loss each way, 1 Mbit/s up, 8 Mbit/s down), many times each; it does
//! not measure throughput, server load under concurrency, or link cuts (see `faults` tests).
//!
//! W1 runs first, as the `w1` workload does (its rows are printed too), and leaves, per laptop,
//! its store and the server's store as they were before it reconnected. Each trial then starts
//! from fresh copies of both files: a real server (`serve::start` on a copy of W1's data dir,
//! clock at the reconnection instant), the fault relay (`tournee_tests::relay`) configured as
//! the rural link in front of it, and the agent's real `connect` + `session` + `wait_closed`, as
//! `sync_once` runs them (one attempt, no retry: a failed attempt is reported as a failure).
//! Measured from the start of `connect`: until the session ends (both sides up to date, FIN
//! both ways), and until `wait_closed` returns (the close, waited for at most
//! `QUIC_CLOSE_WAIT_MS`), which is when `sync_once` returns. After each trial the laptop must have nothing
//! pending and the same digest as the server for its scopes.
//!
//! The link's faults are seeded per laptop and trial, one stream per direction, so the n-th
//! datagram each way meets the same fate in every run of a seed; only timings vary. Deliberately
//! not measured here: several laptops at once, the daemon's live sessions, cuts and
//! reconnection with backoff (the `faults` tests cover those), CPU (see `w1`).
//!
//! Beside the product's configuration, informational rows run the first trials again (same
//! seeds) with the client's QUIC transport changed in one respect (no MTU discovery, a larger
//! initial congestion window), and a scenario cuts the link for the first 20 ms so that the
//! client's first Initial is lost, with quinn's initial RTT estimate and with 200 ms: what each
//! setting costs on this link. The server always runs the product's configuration.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{ConnectionStats, Endpoint, TransportConfig};
use serde_json::json;
use tournee_agent::sync::{connect, session, Remote};
use tournee_core::clock::{Clock, ManualClock};
use tournee_core::export;
use tournee_core::limits::CONNECT_TIMEOUT_MS;
use tournee_core::rng::SeededRng;
use tournee_core::store::Store;
use tournee_net::bundle::Bundle;
use tournee_net::tls;
use tournee_server::config::{DataDir, ServerConfig};
use tournee_server::serve;
use tournee_store::SqliteStore;
use tournee_tests::relay::{Faults, Relay};

use super::w1::{self, copy_db, Reconnection, Reconnections};
use super::{kb, load_average, ms, percentile, Report};

/// One-way delay of each direction, in ms: a 200 ms round trip.
pub const RURAL_ONE_WAY_DELAY_MS: u64 = 100;
/// Probability a datagram is lost, each direction.
pub const RURAL_LOSS: f64 = 0.01;
/// Laptop to server, in bits per second (the 1 Mbit/s).
pub const RURAL_UP_BPS: u64 = 1_000_000;
/// Server to laptop, in bits per second: 8 Mbit/s, the "bon haut débit" floor of the Plan
/// France Très Haut Débit, with the ~1 Mbit/s upload such ADSL/4G lines have.
pub const RURAL_DOWN_BPS: u64 = 8_000_000;
/// Drop-tail buffer in front of each bottleneck, in ms at its rate (62.5 KB up): modems'
/// uplink buffers hold from about 100 ms to seconds of traffic.
pub const RURAL_QUEUE_MS: u64 = 500;
/// IPv4 and UDP headers, which take link time beside each datagram's payload.
const IPV4_UDP_HEADER_BYTES: u64 = 28;

/// Trials per laptop of the product's configuration.
pub const TRIALS: usize = 30;
/// Trials per laptop with `--quick`.
pub const QUICK_TRIALS: usize = 3;
/// Trials per laptop of each transport variant (on the product's first trials' seeds): a third
/// of the product's, at least one (10 at full size, 1 with `--quick`).
const VARIANT_TRIALS_DIVISOR: usize = 3;
/// Trials of the first-Initial-lost scenario per configuration, first laptop only: a tenth of
/// the product's, at least one (3 at full size, 1 with `--quick`).
const FIRST_LOSS_TRIALS_DIVISOR: usize = 10;
/// How long the link is cut at the start of a first-Initial-lost trial, in ms: long enough to
/// drop the client's first datagram, far shorter than any retransmission.
const FIRST_LOSS_CUT_MS: u64 = 20;
/// How long one attempt may take before it counts as failed.
const TRIAL_TIMEOUT_S: u64 = 60;

/// Issue 6's targets for the wall time of one W1 reconnection on the rural link.
const TARGET_P50_MS: f64 = 1_000.0;
const TARGET_P99_MS: f64 = 2_500.0;

/// The rural link, as the relay applies it.
pub fn rural_faults() -> Faults {
    Faults {
        loss: RURAL_LOSS,
        delay_ms: RURAL_ONE_WAY_DELAY_MS,
        up_bps: RURAL_UP_BPS,
        down_bps: RURAL_DOWN_BPS,
        queue_ms: RURAL_QUEUE_MS,
        header_bytes: IPV4_UDP_HEADER_BYTES,
        ..Faults::none()
    }
}

/// A client-side change of the QUIC transport, measured against the product's.
struct Variant {
    name: &'static str,
    what: &'static str,
    apply: fn(&mut TransportConfig),
}

/// The variants run on the same trials (same fault streams) as the product.
const VARIANTS: &[Variant] = &[
    Variant {
        name: "no_mtu_discovery",
        what: "client without PLPMTUD (no MTU probes; 1200-byte datagrams throughout)",
        apply: |t| {
            t.mtu_discovery_config(None);
        },
    },
    Variant {
        name: "initial_window_2x",
        what: "client's initial congestion window 29,440 bytes instead of quinn's 14,720",
        apply: |t| {
            let mut cubic = quinn::congestion::CubicConfig::default();
            cubic.initial_window(2 * 14_720);
            t.congestion_controller_factory(Arc::new(cubic));
        },
    },
];

/// The variant run on the first-Initial-lost scenario: the initial RTT estimate only matters
/// before the first RTT sample, i.e. when the client's first flight is lost.
const INITIAL_RTT_VARIANT: Variant = Variant {
    name: "initial_rtt_200ms",
    what: "client's initial RTT estimate 200 ms instead of quinn's 333 ms (first PTO 600 ms instead of 1 s)",
    apply: |t| {
        t.initial_rtt(Duration::from_millis(200));
    },
};

/// What one attempt measured.
#[derive(Debug, Clone, Default)]
struct Trial {
    /// The attempt's error, if it failed.
    error: Option<String>,
    /// From the start of `connect` to its return (QUIC and TLS handshake).
    connected: Duration,
    /// To the end of the session (both sides up to date, FIN both ways).
    session_end: Duration,
    /// To the end of `wait_closed`: when `sync_once` returns.
    closed: Duration,
    stream_up: u64,
    stream_down: u64,
    changes_up: u64,
    changes_down: u64,
    /// UDP payload bytes the relay delivered, each way.
    udp_up: u64,
    udp_down: u64,
    /// Datagrams the link lost, each way, and dropped at a full buffer.
    link_lost_up: u64,
    link_lost_down: u64,
    queue_dropped: u64,
    /// The client connection's statistics after the close.
    quic: Option<ConnectionStats>,
    /// Nothing pending, nothing refused, digest equal to the server's for the laptop's scopes.
    converged: bool,
}

/// Run W1, then its reconnections over the rural link, `trials` times per laptop.
pub(crate) fn run(
    report: &mut Report,
    seed: u64,
    per_day: usize,
    trials: usize,
    keep: bool,
) -> Result<()> {
    anyhow::ensure!(trials >= 1, "at least one trial per laptop");
    let dir = tempfile::tempdir().context("creating the temporary directory")?;
    let outcome = w1::run_in(report, seed, per_day, &dir.path().join("w1"))?;
    let faults = rural_faults();
    let plan = Plan {
        trials,
        variant_trials: (trials / VARIANT_TRIALS_DIVISOR).max(1),
        first_loss_trials: (trials / FIRST_LOSS_TRIALS_DIVISOR).max(1),
    };
    eprintln!(
        "w1-rural: link {} ms one way, loss {} each way, up {} kbit/s, down {} kbit/s, buffer {} ms; {} trial(s) per laptop, {} per laptop and variant, {} first-Initial-lost; load average {}",
        faults.delay_ms,
        faults.loss,
        faults.up_bps / 1000,
        faults.down_bps / 1000,
        faults.queue_ms,
        plan.trials,
        plan.variant_trials,
        plan.first_loss_trials,
        load_average()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let t = Instant::now();
    let result = runtime.block_on(trials_all(
        &outcome.reconnections,
        dir.path(),
        seed,
        plan,
        faults,
    ));
    runtime.shutdown_timeout(Duration::from_secs(5));
    let runs = result?;
    eprintln!(
        "w1-rural: {} trials ran in {:.1} s; load average {} (other processes' load shows in the tail)",
        runs.count(),
        t.elapsed().as_secs_f64(),
        load_average()
    );

    let product = Row {
        scenario: "random loss",
        variant: None,
        informational: false,
    };
    for (k, laptop) in outcome.reconnections.laptops.iter().enumerate() {
        push_row(
            report,
            &format!("w1-rural.{}", laptop.name),
            &product,
            &runs.product[k],
            faults,
        );
    }
    let all: Vec<Trial> = runs.product.iter().flatten().cloned().collect();
    push_row(report, "w1-rural.all", &product, &all, faults);
    // Informational: the same trials with one client setting changed.
    let paired: Vec<Trial> = runs
        .product
        .iter()
        .flat_map(|l| l.iter().take(plan.variant_trials).cloned())
        .collect();
    push_row(
        report,
        "w1-rural.variant.product_paired",
        &Row {
            scenario: "random loss; the product's trials that the variants repeat",
            variant: None,
            informational: true,
        },
        &paired,
        faults,
    );
    for (v, variant) in VARIANTS.iter().enumerate() {
        push_row(
            report,
            &format!("w1-rural.variant.{}", variant.name),
            &Row {
                scenario: "random loss; the same fault streams as product_paired",
                variant: Some(variant),
                informational: true,
            },
            &runs.variants[v],
            faults,
        );
    }
    let scenario = "the client's first datagram (its Initial) lost, then random loss";
    push_row(
        report,
        "w1-rural.first_initial_lost.product",
        &Row {
            scenario,
            variant: None,
            informational: true,
        },
        &runs.first_loss_product,
        faults,
    );
    push_row(
        report,
        &format!("w1-rural.first_initial_lost.{}", INITIAL_RTT_VARIANT.name),
        &Row {
            scenario,
            variant: Some(&INITIAL_RTT_VARIANT),
            informational: true,
        },
        &runs.first_loss_variant,
        faults,
    );
    if keep {
        eprintln!("w1-rural: files kept in {}", dir.keep().display());
    }
    Ok(())
}

/// How many trials of each kind.
#[derive(Debug, Clone, Copy)]
struct Plan {
    trials: usize,
    variant_trials: usize,
    first_loss_trials: usize,
}

/// Every trial's result.
#[derive(Debug, Default)]
struct Runs {
    /// Per laptop, the product's trials.
    product: Vec<Vec<Trial>>,
    /// Per variant, its trials (all laptops).
    variants: Vec<Vec<Trial>>,
    first_loss_product: Vec<Trial>,
    first_loss_variant: Vec<Trial>,
}

impl Runs {
    fn count(&self) -> usize {
        self.product.iter().map(Vec::len).sum::<usize>()
            + self.variants.iter().map(Vec::len).sum::<usize>()
            + self.first_loss_product.len()
            + self.first_loss_variant.len()
    }
}

/// Which client a trial runs.
#[derive(Clone, Copy)]
enum Client<'a> {
    /// The agent's own `connect` (the product's configuration).
    Product,
    /// The same steps with another client config.
    Variant(&'a quinn::ClientConfig),
}

async fn trials_all(
    recon: &Reconnections,
    root: &Path,
    seed: u64,
    plan: Plan,
    faults: Faults,
) -> Result<Runs> {
    let mut runs = Runs {
        variants: vec![Vec::new(); VARIANTS.len()],
        ..Runs::default()
    };
    let dir = root.join("trial");
    for (k, laptop) in recon.laptops.iter().enumerate() {
        let configs: Vec<quinn::ClientConfig> = VARIANTS
            .iter()
            .map(|v| client_config(&laptop.bundle, v.apply))
            .collect::<Result<_>>()?;
        let mut mine = Vec::with_capacity(plan.trials);
        for i in 0..plan.trials {
            // The same fault streams for the product and each variant of this trial.
            let relay_seed = SeededRng::new(seed ^ ((k as u64 + 1) << 32) ^ i as u64).next_u64();
            let t = trial(
                recon,
                laptop,
                &dir,
                faults,
                relay_seed,
                Client::Product,
                false,
            )
            .await
            .with_context(|| format!("{} trial {i}", laptop.name))?;
            log_trial(&laptop.name, "product", i, &t);
            mine.push(t);
            if i >= plan.variant_trials {
                continue;
            }
            for (v, variant) in VARIANTS.iter().enumerate() {
                let client = Client::Variant(&configs[v]);
                let t = trial(recon, laptop, &dir, faults, relay_seed, client, false)
                    .await
                    .with_context(|| format!("{} trial {i} ({})", laptop.name, variant.name))?;
                log_trial(&laptop.name, variant.name, i, &t);
                runs.variants[v].push(t);
            }
        }
        runs.product.push(mine);
    }
    // The first Initial lost: the first laptop, the product and the initial-RTT variant.
    let laptop = recon.laptops.first().context("W1 has no laptop")?;
    let config = client_config(&laptop.bundle, INITIAL_RTT_VARIANT.apply)?;
    for i in 0..plan.first_loss_trials {
        let relay_seed = SeededRng::new(seed ^ 0xF1_0000_0000 ^ i as u64).next_u64();
        let t = trial(
            recon,
            laptop,
            &dir,
            faults,
            relay_seed,
            Client::Product,
            true,
        )
        .await?;
        log_trial(&laptop.name, "first-Initial-lost product", i, &t);
        runs.first_loss_product.push(t);
        let client = Client::Variant(&config);
        let t = trial(recon, laptop, &dir, faults, relay_seed, client, true).await?;
        log_trial(&laptop.name, "first-Initial-lost initial_rtt_200ms", i, &t);
        runs.first_loss_variant.push(t);
    }
    Ok(runs)
}

/// One line per trial that failed, diverged or missed the p99 target (to explain the tail),
/// plus every first-Initial-lost trial.
fn log_trial(name: &str, what: &str, i: usize, t: &Trial) {
    let slow = ms(t.closed) > TARGET_P99_MS;
    if t.error.is_none() && t.converged && !slow && !what.starts_with("first") {
        return;
    }
    let lost = t.quic.map_or(0, |q| q.path.lost_packets);
    eprintln!(
        "w1-rural: {name} {what} #{i}: connect {:.0} ms, session end {:.0} ms, closed {:.0} ms; link lost {} up, {} down, {} at a full buffer; QUIC lost {lost}{}{}",
        ms(t.connected),
        ms(t.session_end),
        ms(t.closed),
        t.link_lost_up,
        t.link_lost_down,
        t.queue_dropped,
        if t.converged { "" } else { "; NOT CONVERGED" },
        t.error
            .as_deref()
            .map(|e| format!("; FAILED: {e}"))
            .unwrap_or_default(),
    );
}

/// A quinn client config as the agent builds it from its bundle, with the transport changed.
fn client_config(bundle: &Bundle, apply: fn(&mut TransportConfig)) -> Result<quinn::ClientConfig> {
    let ca = tls::pem_to_der_certs(&bundle.ca_pem)?
        .into_iter()
        .next()
        .context("bundle has no CA certificate")?;
    let chain = tls::pem_to_der_certs(&bundle.cert_pem)?;
    let key = tls::pem_to_der_key(&bundle.key_pem)?;
    let crypto = QuicClientConfig::try_from(tls::client_config(&ca, chain, key)?)
        .map_err(|e| anyhow::anyhow!("TLS configuration unusable for QUIC: {e}"))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = tournee_net::transport::transport_config();
    apply(&mut transport);
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// What `tournee_agent::sync::connect` does for one address, with another client config.
async fn connect_with(
    addr: SocketAddr,
    config: &quinn::ClientConfig,
) -> Result<(Endpoint, quinn::Connection)> {
    let mut endpoint = Endpoint::client("0.0.0.0:0".parse()?)?;
    endpoint.set_default_client_config(config.clone());
    let connecting = endpoint.connect(addr, tls::SERVER_NAME)?;
    let conn = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connecting)
        .await
        .context("no answer within the connect timeout")??;
    Ok((endpoint, conn))
}

/// One reconnection of `laptop` from fresh copies of the files, through a new relay. With
/// `lose_first_datagram`, the link is cut for its first `FIRST_LOSS_CUT_MS`.
async fn trial(
    recon: &Reconnections,
    laptop: &Reconnection,
    dir: &Path,
    faults: Faults,
    relay_seed: u64,
    client: Client<'_>,
    lose_first_datagram: bool,
) -> Result<Trial> {
    // Fresh copies: the server's data dir (store as this laptop found it) and the laptop's store.
    let _ = std::fs::remove_dir_all(dir);
    let from = DataDir::new(recon.server_dir.clone());
    let data = DataDir::new(dir.join("server"));
    std::fs::create_dir_all(data.root())?;
    for (a, b) in [
        (from.config(), data.config()),
        (from.ca_cert(), data.ca_cert()),
        (from.ca_key(), data.ca_key()),
        (from.server_cert(), data.server_cert()),
        (from.server_key(), data.server_key()),
    ] {
        std::fs::copy(&a, &b).with_context(|| format!("copying {}", a.display()))?;
    }
    copy_db(&from.registry(), &data.registry())?;
    copy_db(&laptop.server_db, &data.store())?;
    let laptop_db = dir.join("laptop.sqlite");
    copy_db(&laptop.laptop_db, &laptop_db)?;

    let config = ServerConfig {
        listen: "127.0.0.1:0".parse()?,
        ..recon.config.clone()
    };
    let clock = ManualClock::new(recon.sync_at);
    let server_clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let server = serve::start(&data, &config, server_clock).await?;
    let relay = Relay::start(server.addr(), faults, relay_seed);
    let mut bundle = laptop.bundle.clone();
    bundle.server_addrs = vec![relay.addr().to_string()];
    let remote = Remote::from_bundle(&bundle)?;
    let mut store = SqliteStore::open(&laptop_db)?;

    // What `sync_once` runs for one attempt, timed.
    let mut out = Trial::default();
    if lose_first_datagram {
        relay.set_cut(true);
    }
    let heal = async {
        if lose_first_datagram {
            tokio::time::sleep(Duration::from_millis(FIRST_LOSS_CUT_MS)).await;
            relay.set_cut(false);
        }
    };
    let t = Instant::now();
    let attempt = tokio::time::timeout(Duration::from_secs(TRIAL_TIMEOUT_S), async {
        let (endpoint, conn) = match client {
            Client::Product => connect(&remote).await?,
            Client::Variant(c) => connect_with(relay.addr(), c).await?,
        };
        let connected = t.elapsed();
        let (_keep, mut stop) = tokio::sync::watch::channel(false);
        let r = session(&conn, &mut store, &clock, false, &mut stop).await;
        let session_end = t.elapsed();
        tournee_agent::sync::wait_closed(&endpoint).await;
        let closed = t.elapsed();
        anyhow::Ok((r, conn.stats(), connected, session_end, closed))
    });
    let (attempt, ()) = tokio::join!(attempt, heal);
    match attempt {
        Err(_) => out.error = Some(format!("no result within {TRIAL_TIMEOUT_S} s")),
        Ok(Err(e)) => out.error = Some(format!("{e:#}")),
        Ok(Ok((r, quic, connected, session_end, closed))) => {
            out.connected = connected;
            out.session_end = session_end;
            out.closed = closed;
            out.quic = Some(quic);
            match r {
                Ok(r) => {
                    out.stream_up = r.bytes_out;
                    out.stream_down = r.bytes_in;
                    out.changes_up = r.stats.changes_out as u64;
                    out.changes_down = r.stats.changes_in as u64;
                    out.converged = r.stats.rejected == 0;
                }
                Err(e) => out.error = Some(e.to_string()),
            }
        }
    }
    let st = relay.stats();
    out.udp_up = st.up_bytes.load(Ordering::Relaxed);
    out.udp_down = st.down_bytes.load(Ordering::Relaxed);
    out.link_lost_up = st.dropped_up.load(Ordering::Relaxed);
    out.link_lost_down = st.dropped_down.load(Ordering::Relaxed);
    out.queue_dropped = st.queue_dropped.load(Ordering::Relaxed);
    server.shutdown().await;
    drop(relay);

    // Convergence: nothing pending, and the laptop holds exactly the server's state for its
    // scopes.
    let identity = store.identity()?.context("laptop identity")?;
    let scopes = identity.scopes();
    let mine = export::digest(&store, Some(&scopes))?;
    let theirs = export::digest(
        &tournee_report::facts::open_server_store(&data.store())?,
        Some(&scopes),
    )?;
    out.converged &= store.stats()?.pending == 0 && mine == theirs;
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
    Ok(out)
}

/// Mean of a quantity over trials.
fn mean(trials: &[&Trial], f: impl Fn(&Trial) -> u64) -> f64 {
    let n = trials.len().max(1) as f64;
    (trials.iter().map(|t| f(t)).sum::<u64>() as f64 / n * 10.0).round() / 10.0
}

/// p50, p99, max and mean of a duration over trials, in ms.
fn spread(trials: &[&Trial], f: impl Fn(&Trial) -> Duration) -> serde_json::Value {
    let mut v: Vec<Duration> = trials.iter().map(|t| f(t)).collect();
    v.sort_unstable();
    let total: Duration = v.iter().sum();
    let mean = total / u32::try_from(v.len().max(1)).unwrap_or(u32::MAX);
    json!({
        "p50": ms(percentile(&v, 50.0)),
        "p99": ms(percentile(&v, 99.0)),
        "max": ms(v.last().copied().unwrap_or_default()),
        "mean": ms(mean),
    })
}

/// How a group of trials is labelled.
struct Row<'a> {
    scenario: &'a str,
    variant: Option<&'a Variant>,
    informational: bool,
}

fn push_row(report: &mut Report, bench: &str, row: &Row<'_>, trials: &[Trial], faults: Faults) {
    let done: Vec<&Trial> = trials.iter().filter(|t| t.error.is_none()).collect();
    let failures = trials.len() - done.len();
    let diverged = done.iter().filter(|t| !t.converged).count();
    let quic = |f: fn(&ConnectionStats) -> u64| move |t: &Trial| t.quic.map_or(0, |q| f(&q));
    let session = spread(&done, |t| t.session_end);
    let closed = spread(&done, |t| t.closed);
    let meets = |s: &serde_json::Value| {
        !done.is_empty()
            && s["p50"].as_f64().unwrap_or(f64::MAX) <= TARGET_P50_MS
            && s["p99"].as_f64().unwrap_or(f64::MAX) <= TARGET_P99_MS
    };
    let clean = failures == 0 && diverged == 0;
    let ok_session = clean && meets(&session);
    let ok_closed = clean && meets(&closed);
    let mut errors: Vec<&str> = trials.iter().filter_map(|t| t.error.as_deref()).collect();
    errors.dedup();
    let mut line = json!({
        "bench": bench,
        "what": "wall time of one W1 reconnection over the rural link: the agent's connect + session (+ wait_closed), from fresh copies of the laptop's and the server's stores, real server, real QUIC through the fault relay; ms from the start of connect",
        "link": {
            "one_way_delay_ms": faults.delay_ms,
            "loss_each_way": faults.loss,
            "up_bps": faults.up_bps,
            "down_bps": faults.down_bps,
            "queue_ms": faults.queue_ms,
            "header_bytes": faults.header_bytes,
        },
        "scenario": row.scenario,
        "trials": trials.len(),
        "failures": failures,
        "errors": errors,
        "not_converged": diverged,
        "converged": diverged == 0,
        "wall_ms_until_session_end": session,
        "wall_ms_until_closed": closed,
        "connect_ms": spread(&done, |t| t.connected),
        "close_drain_ms": spread(&done, |t| t.closed.saturating_sub(t.session_end)),
        "percentile_rule": "nearest rank: below 100 trials p99 is the maximum",
        "mean_bytes": {
            "stream_up": mean(&done, |t| t.stream_up),
            "stream_down": mean(&done, |t| t.stream_down),
            "udp_up": mean(&done, |t| t.udp_up),
            "udp_down": mean(&done, |t| t.udp_down),
        },
        "mean_changes_up": mean(&done, |t| t.changes_up),
        "mean_changes_down": mean(&done, |t| t.changes_down),
        "link_drops_total": {
            "lost_up": trials.iter().map(|t| t.link_lost_up).sum::<u64>(),
            "lost_down": trials.iter().map(|t| t.link_lost_down).sum::<u64>(),
            "buffer_full": trials.iter().map(|t| t.queue_dropped).sum::<u64>(),
        },
        "quic_client_mean": {
            "packets_sent": mean(&done, quic(|q| q.path.sent_packets)),
            "lost_packets": mean(&done, quic(|q| q.path.lost_packets)),
            "lost_bytes": mean(&done, quic(|q| q.path.lost_bytes)),
            "congestion_events": mean(&done, quic(|q| q.path.congestion_events)),
            "mtu_probes_sent": mean(&done, quic(|q| q.path.sent_plpmtud_probes)),
            "mtu_probes_lost": mean(&done, quic(|q| q.path.lost_plpmtud_probes)),
            "ping_frames_sent": mean(&done, quic(|q| q.frame_tx.ping)),
            "datagrams_up": mean(&done, quic(|q| q.udp_tx.datagrams)),
            "datagrams_down": mean(&done, quic(|q| q.udp_rx.datagrams)),
            "final_mtu": mean(&done, quic(|q| u64::from(q.path.current_mtu))),
            "final_rtt_ms": mean(&done, quic(|q| q.path.rtt.as_millis() as u64)),
            "final_cwnd_bytes": mean(&done, quic(|q| q.path.cwnd)),
        },
        "quic_client_lost_packets_total": done.iter().map(|t| t.quic.map_or(0, |q| q.path.lost_packets)).sum::<u64>(),
        "retransmits_note": "quinn counts packets declared lost (their frames are sent again), not retransmissions as such",
        "target_p50_ms": TARGET_P50_MS,
        "target_p99_ms": TARGET_P99_MS,
        "ok_until_session_end": ok_session,
        "ok_until_closed": ok_closed,
        "ok": ok_closed,
    });
    if let Some(v) = row.variant {
        line["variant"] = json!(v.what);
        line["server"] = json!("the product's transport configuration");
    }
    if row.informational {
        line["informational"] = json!(true);
    }
    let num = |s: &serde_json::Value, k: &str| s[k].as_f64().unwrap_or(0.0);
    report.push(
        line,
        format!(
            "closed p50 {:.0} / p99 {:.0} ms; session end p50 {:.0} / p99 {:.0} ms; up {} (n={}, {} failed, {} diverged)",
            num(&closed, "p50"),
            num(&closed, "p99"),
            num(&session, "p50"),
            num(&session, "p99"),
            kb(mean(&done, |t| t.udp_up) as u64),
            trials.len(),
            failures,
            diverged
        ),
        format!("p50 <= {TARGET_P50_MS:.0} ms, p99 <= {TARGET_P99_MS:.0} ms"),
    );
}
