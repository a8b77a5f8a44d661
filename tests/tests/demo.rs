//! The README's first command: `tournee-server demo --exit` runs to completion, prints the
//! coverage summary, and every device ends in sync with the server.

use std::process::Command;

use tournee_tests::bin;

#[test]
fn the_demo_runs_to_completion_and_every_device_is_in_sync() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin("tournee-server"))
        .args(["--data"])
        .arg(tmp.path().join("demo"))
        .args(["demo", "--exit"])
        .env_remove("TOURNEE_DATA")
        .output()
        .expect("spawn demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in 1..=7 {
        assert!(
            stdout.contains(&format!("[{step}/7]")),
            "step {step} shown:\n{stdout}"
        );
    }
    assert!(stdout.contains("Coverage — Somme (80)"), "{stdout}");
    assert!(stdout.contains("communes with no passage held"), "{stdout}");
    assert!(stdout.contains("Albert (80016)") && stdout.contains("Roye (80685)"));
    assert!(
        stdout.contains("Conflicts kept for review: 1 record(s)"),
        "{stdout}"
    );
    let devices: Vec<&str> = stdout.lines().filter(|l| l.contains(" digest ")).collect();
    assert_eq!(devices.len(), 3, "{stdout}");
    assert!(
        devices.iter().all(|l| l.ends_with("= server: in sync")),
        "{devices:?}"
    );
    assert!(stdout.contains("server down for maintenance"));
    assert!(stdout.trim_end().ends_with("Demo finished."));
    assert!(
        tmp.path().join("demo/server/server.sqlite").exists(),
        "--data is honoured"
    );
}
