//! The README's first command, `tournee-server demo`: with `--exit` it runs to completion, prints the
//! coverage summary, and every device ends in sync with the server; without it each laptop
//! keeps running with its web interface until Ctrl-C.

use std::process::Command;

use tournee_tests::{bin, http_get};

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
    assert!(
        stdout.contains("communes not reached (no passage held, home visit or walk-in)"),
        "{stdout}"
    );
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

/// Without `--exit` the demo keeps its laptops running as daemons and prints a login link to
/// each one's web interface, and one to the console for each demo account: the link opens a session on the bus laptop, whose pages show the
/// week the demo worked; Ctrl-C (SIGINT) stops everything cleanly.
#[test]
fn the_demo_keeps_each_laptops_web_interface_open_until_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(bin("tournee-server"))
        .args(["--data"])
        .arg(tmp.path().join("demo"))
        .arg("demo")
        .env_remove("TOURNEE_DATA")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut links = Vec::new();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some((name, rest)) = line.trim().split_once(": http://") {
            links.push((
                name.to_owned(),
                rest.split_whitespace().next().unwrap_or("").to_owned(),
            ));
        }
        if line.contains("Ctrl-C stops everything") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let names: Vec<&str> = links.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "admin",
            "planification-80",
            "supervision-80",
            "laptop-bus-1",
            "laptop-bus-2",
            "laptop-dom-1"
        ]
    );
    // The console's supervisor link opens a session that asks for a password.
    let (console, console_path) = links[2].1.split_once('/').expect("host/path");
    let signed = http_get(console, &format!("/{console_path}"), None);
    assert!(signed.starts_with("HTTP/1.1 303"), "{signed}");
    assert!(
        signed.to_lowercase().contains("location: /mot-de-passe"),
        "{signed}"
    );
    let link = &links[3].1;
    let (addr, path) = link.split_once('/').expect("host/path");
    assert!(addr.starts_with("127.0.0.1:"), "loopback only: {addr}");
    let login = http_get(addr, &format!("/{path}"), None);
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let today = http_get(addr, "/", Some(&cookie));
    assert!(today.starts_with("HTTP/1.1 200"), "{today}");
    assert!(today.contains("Aujourd&#39;hui"), "{today}");
    // The demo's week is next week: its passages are on the bus laptop.
    let now = tournee_core::time::paris_date(chrono::Utc::now().timestamp()).expect("today");
    let monday = now
        + chrono::Duration::days(
            7 - i64::from(chrono::Datelike::weekday(&now).num_days_from_monday()),
        );
    let week = http_get(addr, &format!("/semaine?date={monday}"), Some(&cookie));
    assert!(week.starts_with("HTTP/1.1 200"), "{week}");
    assert!(week.contains("Albert"), "the round's passages: {week}");
    let again = http_get(addr, &format!("/{path}"), None);
    assert!(
        !again.starts_with("HTTP/1.1 303"),
        "a link opens once: {again}"
    );
    let pid = child.id().to_string();
    tournee_tests::ok(Command::new("kill").args(["-INT", &pid]));
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "Ctrl-C stops the demo cleanly: {status:?}"
    );
}
