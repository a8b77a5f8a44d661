//! Every command and subcommand of `../shared/design/CLI.md` answers `--help`: exit 0, its own
//! usage line, and every option the contract lists for it.
//!
//! The scheduling and coverage commands of the server (`stop add`, `round add|list`, `passages`,
//! `appointment add`, `coverage`) are checked by a separate test.

use std::process::Command;

use tournee_tests::{bin, run};

/// One `--help` invocation and what its text must mention.
struct Case {
    /// The command path, e.g. `["appointment", "add"]`.
    path: &'static [&'static str],
    /// Long options the contract lists for it (`--data` is checked for every leaf command).
    options: &'static [&'static str],
}

/// A command group and the subcommands its help must list.
struct Group {
    path: &'static [&'static str],
    subcommands: &'static [&'static str],
}

const fn case(path: &'static [&'static str], options: &'static [&'static str]) -> Case {
    Case { path, options }
}

const fn group(path: &'static [&'static str], subcommands: &'static [&'static str]) -> Group {
    Group { path, subcommands }
}

const AGENT: &[Case] = &[
    case(&["init"], &["--bundle"]),
    case(&["run"], &[]),
    case(&["sync"], &["--timeout"]),
    case(&["status"], &["--format"]),
    case(
        &["appointment", "add"],
        &[
            "--start",
            "--duration",
            "--location",
            "--commune",
            "--citizen",
            "--passage",
            "--note",
        ],
    ),
    case(
        &["appointment", "set"],
        &["--status", "--start", "--duration", "--note"],
    ),
    case(&["appointment", "list"], &["--date", "--format"]),
    case(&["appointment", "show"], &["--format"]),
    case(
        &["request", "add"],
        &[
            "--appointment",
            "--passage",
            "--partner",
            "--theme",
            "--level",
            "--outcome",
            "--minutes",
        ],
    ),
    case(&["passage", "list"], &["--date", "--format"]),
    case(
        &["passage", "set"],
        &["--status", "--cause", "--actual-start", "--actual-end"],
    ),
    case(&["conflicts"], &["--format"]),
    case(&["resolve"], &["--value"]),
    case(&["export"], &["--format"]),
    case(&["digest"], &[]),
];

const AGENT_GROUPS: &[Group] = &[
    group(
        &[],
        &[
            "init",
            "run",
            "sync",
            "status",
            "appointment",
            "request",
            "passage",
            "conflicts",
            "resolve",
            "export",
            "digest",
        ],
    ),
    group(&["appointment"], &["add", "set", "list", "show"]),
    group(&["request"], &["add"]),
    group(&["passage"], &["list", "set"]),
];

const SERVER: &[Case] = &[
    case(
        &["init"],
        &["--listen", "--public-addr", "--console-listen"],
    ),
    case(&["user", "add"], &["--name", "--role", "--territory"]),
    case(&["user", "list"], &["--format"]),
    case(&["user", "disable"], &[]),
    case(&["user", "link"], &[]),
    case(&["audit"], &["--from", "--format"]),
    case(&["stop", "list"], &["--territory", "--format"]),
    case(&["round", "delete"], &[]),
    case(&["stop", "set"], &["--label", "--address", "--commune"]),
    case(&["stop", "archive"], &[]),
    case(&["passage", "cancel"], &["--cause"]),
    case(&["passage", "move"], &["--date", "--start", "--end"]),
    case(&["holiday", "list"], &["--territory", "--year", "--format"]),
    case(&["holiday", "add"], &["--territory", "--date", "--label"]),
    case(&["holiday", "remove"], &["--territory", "--date"]),
    case(
        &["timetable"],
        &["--unit", "--territory", "--from", "--to", "--format"],
    ),
    case(&["serve"], &[]),
    case(
        &["unit", "add"],
        &["--id", "--name", "--territory", "--kind"],
    ),
    case(&["unit", "list"], &["--format"]),
    case(&["device", "enroll"], &["--unit", "--name", "--out"]),
    case(&["device", "list"], &["--format"]),
    case(&["device", "revoke"], &[]),
    case(&["export"], &["--unit", "--format"]),
    case(&["digest"], &["--unit"]),
    case(&["conflicts"], &["--format"]),
    // Not in CLI.md; the README documents `demo` and `demo --exit`.
    case(&["demo"], &["--exit"]),
];

const SERVER_GROUPS: &[Group] = &[
    group(
        &[],
        &[
            "init",
            "serve",
            "unit",
            "device",
            "export",
            "digest",
            "conflicts",
            "demo",
        ],
    ),
    group(&["unit"], &["add", "list"]),
    group(&["device"], &["enroll", "list", "revoke"]),
];

/// CLI.md's "Scheduling and coverage (server side)".
const SERVER_SCHEDULING: &[Case] = &[
    case(
        &["stop", "add"],
        &["--territory", "--commune", "--label", "--address"],
    ),
    case(
        &["round", "add"],
        &[
            "--unit",
            "--name",
            "--from",
            "--to",
            "--every-weeks",
            "--stop",
        ],
    ),
    case(&["round", "list"], &["--unit", "--format"]),
    case(&["passages"], &["--unit", "--from", "--to", "--format"]),
    case(
        &["appointment", "add"],
        &[
            "--unit",
            "--start",
            "--duration",
            "--location",
            "--commune",
            "--citizen",
            "--passage",
            "--note",
        ],
    ),
    case(
        &["coverage"],
        &["--territory", "--from", "--to", "--by", "--format"],
    ),
];

const SERVER_SCHEDULING_GROUPS: &[Group] = &[
    group(
        &[],
        &["stop", "round", "passages", "appointment", "coverage"],
    ),
    group(&["stop"], &["add"]),
    group(&["round"], &["add", "list"]),
    group(&["appointment"], &["add"]),
];

/// True when `text` contains `option` as a whole token (`--to` is not found in `--token`, nor
/// `--start` in `--actual-start`).
fn mentions(text: &str, option: &str) -> bool {
    let token = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(option).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + option.len()..].chars().next();
        !before.is_some_and(token) && !after.is_some_and(token)
    })
}

/// `binary PATH... --help`: the help text, or why it is not acceptable.
fn help(binary: &str, path: &[&str]) -> Result<String, String> {
    let shown = format!("{binary} {} --help", path.join(" "))
        .replace("  ", " ")
        .trim()
        .to_owned();
    let out = run(Command::new(bin(binary)).args(path).arg("--help"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{shown}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if stdout.trim().is_empty() {
        return Err(format!("{shown}: empty help"));
    }
    let usage = format!("Usage: {}", [&[binary][..], path].concat().join(" "));
    if !stdout.contains(&usage) {
        return Err(format!("{shown}: no `{usage}` line in:\n{stdout}"));
    }
    Ok(stdout)
}

/// Every problem found with `cases` and `groups` of `binary`, one line each.
fn problems(binary: &str, cases: &[Case], groups: &[Group]) -> Vec<String> {
    let mut found = Vec::new();
    for c in cases {
        match help(binary, c.path) {
            Err(e) => found.push(e),
            Ok(text) => {
                let missing: Vec<&str> = std::iter::once("--data")
                    .chain(c.options.iter().copied())
                    .filter(|o| !mentions(&text, o))
                    .collect();
                if !missing.is_empty() {
                    found.push(format!(
                        "{binary} {} --help does not mention {}",
                        c.path.join(" "),
                        missing.join(", ")
                    ));
                }
            }
        }
    }
    for g in groups {
        match help(binary, g.path) {
            Err(e) => found.push(e),
            Ok(text) => {
                // Clap lists subcommands as "  name   description" under "Commands:", up to
                // the next blank line.
                let section: Vec<&str> = text
                    .lines()
                    .skip_while(|l| l.trim() != "Commands:")
                    .skip(1)
                    .take_while(|l| !l.trim().is_empty())
                    .collect();
                let listed = |name: &str| {
                    section
                        .iter()
                        .any(|l| l.split_whitespace().next() == Some(name))
                };
                let missing: Vec<&str> = g
                    .subcommands
                    .iter()
                    .copied()
                    .filter(|s| !listed(s))
                    .collect();
                if !missing.is_empty() {
                    found.push(format!(
                        "{binary} {} --help does not list {}",
                        g.path.join(" "),
                        missing.join(", ")
                    ));
                }
            }
        }
    }
    found
}

fn assert_none(what: &str, found: &[String]) {
    assert!(
        found.is_empty(),
        "{what}: {} problem(s) against shared/design/CLI.md:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn mentions_matches_whole_options_only() {
    let text = "  --actual-start <TIME>\n  --token <T>\n  --to <DATE>  Last day\n";
    assert!(mentions(text, "--actual-start"));
    assert!(mentions(text, "--to"));
    assert!(!mentions(text, "--start"));
    assert!(!mentions(text, "--tok"));
    assert!(!mentions(text, "--from"));
}

#[test]
fn agent_help_covers_the_cli_contract() {
    assert_none(
        "tournee-agent",
        &problems("tournee-agent", AGENT, AGENT_GROUPS),
    );
}

#[test]
fn server_help_covers_the_cli_contract() {
    assert_none(
        "tournee-server",
        &problems("tournee-server", SERVER, SERVER_GROUPS),
    );
}

#[test]
fn server_scheduling_help_covers_the_cli_contract() {
    assert_none(
        "tournee-server scheduling and coverage",
        &problems(
            "tournee-server",
            SERVER_SCHEDULING,
            SERVER_SCHEDULING_GROUPS,
        ),
    );
}
