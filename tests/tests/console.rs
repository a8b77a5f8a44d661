//! The console's accounts from the command line and the console served by a real `serve`
//! process: `user add` refuses what it must in one French line, `user link` prints a link to
//! the configured console address, that link opens a session on the running server, and the
//! audit journal holds every step; `stop list` gives a territory's stops.

use std::io::{Read, Write};

use tournee_tests::{json, run, Server};

/// One HTTP/1.1 GET to the console, read to the end.
fn get(server: &Server, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(server.console).expect("console");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.console
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn accounts_are_made_on_the_command_line_and_a_link_opens_the_running_console() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = Server::init(&tmp.path().join("server"), None);
    let out = run(&mut server.cmd(&["user", "add", "--name", "sup", "--role", "supervisor"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("--territory : un compte supervisor voit un ou plusieurs territoires"),
        "{err}"
    );
    let out = run(&mut server.cmd(&["user", "add", "--name", "x", "--role", "chef"]));
    assert_eq!(out.status.code(), Some(1), "an unknown role");
    assert_eq!(
        server
            .ok(&[
                "user",
                "add",
                "--name",
                "sup",
                "--role",
                "supervisor",
                "--territory",
                "80"
            ])
            .trim(),
        "sup"
    );
    let users = json(&server.ok(&["user", "list", "--format", "json"]));
    assert_eq!(users["users"][0]["name"], "sup");
    assert_eq!(users["users"][0]["territories"][0], "80");
    assert_eq!(users["users"][0]["has_password"], false);
    // `stop list` gives the ids a round needs, and the commune's name.
    let id = server
        .ok(&[
            "stop",
            "add",
            "--territory",
            "80",
            "--commune",
            "80021",
            "--label",
            "Place Gambetta",
        ])
        .trim()
        .to_owned();
    let stops = json(&server.ok(&["stop", "list", "--territory", "80", "--format", "json"]));
    assert_eq!(stops["stops"][0]["id"], id.as_str());
    assert_eq!(stops["stops"][0]["commune_name"], "Amiens");
    assert!(server
        .ok(&["stop", "list", "--territory", "80"])
        .contains("Place Gambetta"));
    let none = json(&server.ok(&["stop", "list", "--territory", "59", "--format", "json"]));
    assert_eq!(
        none["stops"].as_array().map(Vec::len),
        Some(0),
        "another territory's"
    );
    let link = server.ok(&["user", "link", "sup"]).trim().to_owned();
    let prefix = format!("http://{}/connexion/lien?jeton=", server.console);
    let path = link
        .strip_prefix(&format!("http://{}", server.console))
        .unwrap_or_else(|| panic!("{link} starts with {prefix}"));
    server.start();
    let signed = get(&server, path);
    assert!(signed.starts_with("HTTP/1.1 303"), "{signed}");
    assert!(
        signed.to_lowercase().contains("location: /mot-de-passe"),
        "{signed}"
    );
    assert!(signed.contains("tournee_console="), "{signed}");
    let again = get(&server, path);
    assert!(
        again.starts_with("HTTP/1.1 403"),
        "a link opens once: {again}"
    );
    let anonymous = get(&server, "/couverture?territoire=80");
    assert!(anonymous.starts_with("HTTP/1.1 303"), "{anonymous}");
    server.ok(&["user", "disable", "sup"]);
    server.stop();
    let audit = json(&server.ok(&["audit", "--format", "json"]));
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["user.add", "user.link", "sign_in.link", "user.disable"],
        "{audit}"
    );
    let table = server.ok(&["audit"]);
    assert!(table.contains("sign_in.link"), "{table}");
}
