//! `sim`: run the deterministic fault simulation over many seeds, or replay one.
//!
//! `sim --seeds 10000 [--start 0] [--steps 150] [--threads 2]` runs seeds start..start+N and
//! prints the fault counts and seeds per second; `sim --seed N --verbose` replays one seed with a
//! trace of every fault and action; `--strict-refusals` also fails on partial records and
//! dangling references a laptop keeps with its refused writes (the server never holds any).
//! Exit 1 when any seed violates an oracle (its seed and replay command are printed).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use tournee_tests::sim::{self, Counts, Failure};

/// Deterministic fault simulation of Tournée.
#[derive(Debug, Parser)]
struct Args {
    /// Replay this one seed.
    #[arg(long)]
    seed: Option<u64>,
    /// How many seeds to run.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Nemesis and user steps per seed before quiescence.
    #[arg(long, default_value_t = 150)]
    steps: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: u64,
    /// Trace every step (with --seed).
    #[arg(long)]
    verbose: bool,
    /// Also fail on partial records and dangling references a laptop keeps with the writes the
    /// server refused (kept for review until `rejected undo`; counted as
    /// `orphans_after_refusal` otherwise). The server's records are always checked.
    #[arg(long)]
    strict_refusals: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(seed) = args.seed {
        return match sim::run_seed_with(seed, args.steps, args.verbose, args.strict_refusals) {
            Ok(o) => {
                println!("seed {seed}: ok, final digest {}", o.final_digest);
                println!("{:?}", o.counts);
                ExitCode::SUCCESS
            }
            Err(f) => {
                eprintln!("{f}");
                ExitCode::from(1)
            }
        };
    }
    let next = Arc::new(AtomicU64::new(args.start));
    let end = args.start + args.seeds;
    let results: Arc<Mutex<(Vec<Counts>, Vec<Failure>)>> = Arc::default();
    let started = Instant::now();
    let workers: Vec<_> = (0..args.threads.max(1))
        .map(|_| {
            let (next, results) = (next.clone(), results.clone());
            let (steps, strict) = (args.steps, args.strict_refusals);
            std::thread::spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    return;
                }
                let r = sim::run_seed_with(seed, steps, false, strict);
                if let Ok(mut g) = results.lock() {
                    match r {
                        Ok(o) => g.0.push(o.counts),
                        Err(f) => {
                            eprintln!("{f}");
                            g.1.push(f);
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let Ok(g) = results.lock() else {
        return ExitCode::from(1);
    };
    let total = Counts::total(&g.0);
    println!(
        "{{\"seeds\":{},\"failures\":{},\"seconds\":{:.1},\"seeds_per_second\":{:.1},\"steps_per_seed\":{}}}",
        args.seeds,
        g.1.len(),
        secs,
        args.seeds as f64 / secs.max(1e-9),
        args.steps
    );
    println!("{total:#?}");
    if g.1.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
