//! The `user` and `audit` commands: console accounts from the command line (add, list,
//! disable, a one-time sign-in link) and the audit journal, each action journaled as `cli`.
//!
//! What it does not do: sign anyone in (the console), or hold account rules (`accounts`).

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;
use tournee_cli::output::{print_json, print_line, print_table, Format};
use tournee_core::time::{parse_date, show_rfc3339};

use crate::accounts::{AuditEntry, Role};
use crate::config::DataDir;
use crate::registry::Registry;

/// Who the journal names for what the command line did.
pub const CLI_ACTOR: &str = "cli";

/// `user …`.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a console account; `user link` then gives its first sign-in link.
    Add(UserAdd),
    /// List console accounts.
    List(UserList),
    /// Disable an account: it cannot sign in any more, its sessions end.
    Disable(UserName),
    /// Print a one-time sign-in link (first sign-in, or a forgotten password).
    Link(UserName),
}

/// `user add`.
#[derive(Debug, Args)]
pub struct UserAdd {
    /// Sign-in name, without spaces (e.g. m.dupont).
    #[arg(long)]
    pub name: String,
    /// admin, scheduler or supervisor.
    #[arg(long)]
    pub role: String,
    /// A territory the account sees (département code; repeatable). None: every territory,
    /// for admins only.
    #[arg(long, value_name = "CODE")]
    pub territory: Vec<String>,
}

/// `user list`.
#[derive(Debug, Args)]
pub struct UserList {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// An account's name.
#[derive(Debug, Args)]
pub struct UserName {
    /// The account's sign-in name.
    pub name: String,
}

/// `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// First day shown (YYYY-MM-DD, Europe/Paris); default: everything.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Run a `user` command.
pub fn user_cmd(data: &DataDir, cmd: UserCmd, now_ms: u64) -> Result<()> {
    data.require()?;
    let reg = Registry::open(&data.registry())?;
    match cmd {
        UserCmd::Add(a) => {
            let role = Role::parse(&a.role)?;
            let user = reg.add_user(&a.name, role, &a.territory, now_ms)?;
            let seen = if user.territories.is_empty() {
                "tous".to_owned()
            } else {
                user.territories.join(",")
            };
            reg.audit(
                now_ms,
                CLI_ACTOR,
                "user.add",
                user.territories.first().map(String::as_str),
                &format!("{} {} territoires {seen}", user.name, role.code()),
            )?;
            print_line(&user.name)
        }
        UserCmd::List(a) => {
            let users = reg.users()?;
            match a.format {
                Format::Json => print_json(&json!({ "users": users })),
                Format::Table => print_table(
                    &["name", "role", "territories", "password", "status"],
                    &users
                        .iter()
                        .map(|u| {
                            vec![
                                u.name.clone(),
                                u.role.code().to_owned(),
                                if u.territories.is_empty() {
                                    "all".to_owned()
                                } else {
                                    u.territories.join(",")
                                },
                                if u.has_password { "set" } else { "not yet" }.to_owned(),
                                if u.disabled { "disabled" } else { "active" }.to_owned(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        UserCmd::Disable(a) => {
            let user = reg.disable_user(&a.name)?;
            reg.audit(now_ms, CLI_ACTOR, "user.disable", None, &user.name)?;
            print_line(format_args!("{} disabled", user.name))
        }
        UserCmd::Link(a) => {
            let token = reg.issue_link(&a.name, now_ms)?;
            reg.audit(now_ms, CLI_ACTOR, "user.link", None, &a.name)?;
            let base = data.load_config()?.console_base_url();
            print_line(format_args!("{base}/connexion/lien?jeton={token}"))
        }
    }
}

/// Run `audit`.
pub fn audit_cmd(data: &DataDir, a: &AuditArgs) -> Result<()> {
    data.require()?;
    let from_ms = match &a.from {
        Some(d) => {
            let day = parse_date("from", d)?;
            u64::try_from(tournee_core::time::paris_midnight(day)).unwrap_or(0) * 1000
        }
        None => 0,
    };
    let entries = Registry::open(&data.registry())?.audit_since(from_ms)?;
    match a.format {
        Format::Json => print_json(&json!({ "audit": entries })),
        Format::Table => print_table(
            &["when", "who", "action", "territory", "detail"],
            &entries.iter().map(audit_row).collect::<Vec<_>>(),
        ),
    }
}

fn audit_row(e: &AuditEntry) -> Vec<String> {
    vec![
        show_rfc3339(e.at_ms / 1000),
        e.who.clone(),
        e.action.clone(),
        e.territory.clone().unwrap_or_default(),
        e.detail.clone(),
    ]
}
