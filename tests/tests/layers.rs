//! The crate graph is the architecture: this test reads it with `cargo tree` and fails when a
//! layer gains a dependency it must not have.
//!
//! - `tournee-core` and `tournee-proto` are sans-IO: nothing in their normal or build
//!   dependencies (transitively) may be tokio, quinn, rusqlite or clap.
//! - Each workspace crate names only the workspace crates below it (no arrow running back up,
//!   so no cycle), and the agent binary never links the server's reporting (`tournee-report`).
//!
//! It checks dependency lists only, not what the code does with them.

use std::collections::BTreeSet;
use std::process::Command;

/// Crates a sans-IO layer must never depend on, even through another crate.
const IO_CRATES: &[&str] = &["tokio", "quinn", "rusqlite", "libsqlite3-sys", "clap"];

/// Each workspace crate and the workspace crates it may depend on (normal dependencies).
const LAYERS: &[(&str, &[&str])] = &[
    ("tournee-core", &[]),
    ("tournee-store", &["tournee-core"]),
    ("tournee-proto", &["tournee-core"]),
    ("tournee-net", &["tournee-core", "tournee-proto"]),
    ("tournee-cli", &["tournee-core"]),
    ("tournee-report", &["tournee-core", "tournee-store"]),
    (
        "tournee-agent",
        &[
            "tournee-core",
            "tournee-store",
            "tournee-proto",
            "tournee-net",
            "tournee-cli",
        ],
    ),
    (
        "tournee-server",
        &[
            "tournee-core",
            "tournee-store",
            "tournee-proto",
            "tournee-net",
            "tournee-cli",
            "tournee-report",
            "tournee-agent",
        ],
    ),
];

/// Package names in `package`'s dependency tree (itself excluded), `depth` levels deep
/// (`None`: all), normal and build dependencies only.
fn tree(package: &str, depth: Option<u32>) -> BTreeSet<String> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["tree", "--locked", "--offline", "-e", "normal,build"])
        .args(["--prefix", "none", "--format", "{p}", "-p", package])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    if let Some(d) = depth {
        cmd.args(["--depth", &d.to_string()]);
    }
    let out = cmd.output().expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn core_and_proto_cannot_reach_tokio_quinn_sqlite_or_clap() {
    for package in ["tournee-core", "tournee-proto"] {
        let deps = tree(package, None);
        assert!(
            deps.contains("serde"),
            "{package}: the tree was read (serde expected among {deps:?})"
        );
        let bad: Vec<&&str> = IO_CRATES.iter().filter(|c| deps.contains(**c)).collect();
        assert!(bad.is_empty(), "{package} depends on {bad:?}");
    }
}

#[test]
fn each_crate_depends_only_on_the_layers_below_it() {
    let names: BTreeSet<&str> = LAYERS.iter().map(|(n, _)| *n).collect();
    for (package, allowed) in LAYERS {
        let direct = tree(package, Some(1));
        let ours: BTreeSet<&str> = direct
            .iter()
            .map(String::as_str)
            .filter(|d| names.contains(d))
            .collect();
        let extra: Vec<&&str> = ours.iter().filter(|d| !allowed.contains(d)).collect();
        assert!(
            extra.is_empty(),
            "{package} depends on {extra:?}, above or beside it (allowed: {allowed:?})"
        );
    }
}

#[test]
fn the_agent_does_not_link_the_servers_reporting() {
    let deps = tree("tournee-agent", None);
    assert!(deps.contains("tournee-store"), "tree read: {deps:?}");
    assert!(
        !deps.contains("tournee-report"),
        "tournee-agent reaches tournee-report"
    );
}
