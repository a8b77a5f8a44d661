//! Console accounts, on the registry file: users with a role and the territories they may
//! see, one-time sign-in links, password hashes (Argon2id), sessions, the lock after failed
//! sign-ins, and the append-only audit journal.
//!
//! What it does not do: HTTP (the console), what a page shows a role (the console's pages),
//! or anything replicated — accounts stay on the server. Secrets (links, session ids) are kept
//! as SHA-256 digests only; the clock comes in as `now_ms`.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use tournee_cli::secret::{random_hex, sha256_hex};
use tournee_core::limits::{
    CONSOLE_LINK_LIFETIME_MS, CONSOLE_LOCK_MAX_MS, CONSOLE_LOCK_MIN_MS, CONSOLE_LOGIN_FAILURES_MAX,
    CONSOLE_PASSWORD_BYTES_MAX, CONSOLE_PASSWORD_CHARS_MIN, CONSOLE_SESSION_LIFETIME_MS,
    CONSOLE_USER_NAME_BYTES_MAX, CONSOLE_USER_TERRITORIES_MAX,
};
use tournee_core::model::{check_territory, check_text};

use crate::registry::{Registry, RegistryError};

/// What an account may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Accounts, units, laptops, the audit journal; every page of its territories.
    Admin,
    /// Stops, rounds, passages, home visits of its territories.
    Scheduler,
    /// Coverage of its territories, never a person's data.
    Supervisor,
}

impl Role {
    /// The code in commands and in the registry.
    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Scheduler => "scheduler",
            Role::Supervisor => "supervisor",
        }
    }

    /// The role a code names.
    pub fn parse(code: &str) -> Result<Self, RegistryError> {
        match code {
            "admin" => Ok(Role::Admin),
            "scheduler" => Ok(Role::Scheduler),
            "supervisor" => Ok(Role::Supervisor),
            other => Err(RegistryError::Account(format!(
                "role : « {other} » n'est pas un rôle ; choisissez admin, scheduler ou supervisor"
            ))),
        }
    }

    /// The role in French, for pages.
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "administration",
            Role::Scheduler => "planification",
            Role::Supervisor => "supervision",
        }
    }
}

/// A console account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Number (never reused).
    pub id: i64,
    /// Sign-in name (unique).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Territories it may see; empty: every territory (admins only).
    pub territories: Vec<String>,
    /// Disabled accounts cannot sign in; their sessions are gone.
    pub disabled: bool,
    /// Whether a password was set (through a sign-in link).
    pub has_password: bool,
}

impl User {
    /// May this account see `territory`?
    pub fn sees(&self, territory: &str) -> bool {
        self.territories.is_empty() || self.territories.iter().any(|t| t == territory)
    }
}

/// How a sign-in went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// The session id to put in the cookie.
    Session(String, User),
    /// Wrong name or password (which one is not said).
    Refused,
    /// Too many failures: locked until this time (ms).
    Locked(u64),
}

/// One line of the audit journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Order of writing.
    pub seq: i64,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Who: an account's name, or `cli` for the command line.
    pub who: String,
    /// What, as a short code (`user.add`, `sign_in`, `sign_in.refused`…).
    pub action: String,
    /// The territory it concerned, if one.
    pub territory: Option<String>,
    /// Details (never a person's data).
    pub detail: String,
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn account_err(text: String) -> RegistryError {
    RegistryError::Account(text)
}

fn check_user_name(name: &str) -> Result<(), RegistryError> {
    check_text("name", name, CONSOLE_USER_NAME_BYTES_MAX)?;
    if name.trim().is_empty() || name.chars().any(char::is_whitespace) {
        return Err(account_err(format!(
            "name : « {name} » doit être un identifiant sans espace (par exemple m.dupont)"
        )));
    }
    Ok(())
}

/// Check a new password: long enough, not absurdly long.
pub fn check_password(password: &str) -> Result<(), RegistryError> {
    if password.chars().count() < CONSOLE_PASSWORD_CHARS_MIN {
        return Err(account_err(format!(
            "mot de passe trop court : au moins {CONSOLE_PASSWORD_CHARS_MIN} caractères (une phrase de quelques mots convient)"
        )));
    }
    if password.len() > CONSOLE_PASSWORD_BYTES_MAX {
        return Err(account_err(format!(
            "mot de passe trop long : au plus {CONSOLE_PASSWORD_BYTES_MAX} octets"
        )));
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String, RegistryError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| account_err(format!("cannot hash the password: {e}")))
}

fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn secret() -> Result<String, RegistryError> {
    random_hex().map_err(|e| account_err(e.to_string()))
}

/// The lock after `failures` failures in a row, in ms (0 below the threshold).
fn lock_ms(failures: u32) -> u64 {
    let Some(extra) = failures.checked_sub(CONSOLE_LOGIN_FAILURES_MAX) else {
        return 0;
    };
    CONSOLE_LOCK_MIN_MS
        .saturating_mul(1u64 << extra.min(20))
        .min(CONSOLE_LOCK_MAX_MS)
}

impl Registry {
    fn user_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(User, String)> {
        let role: String = r.get(2)?;
        let territories: String = r.get(3)?;
        let password: Option<String> = r.get(4)?;
        let user = User {
            id: r.get(0)?,
            name: r.get(1)?,
            role: Role::parse(&role).unwrap_or(Role::Supervisor),
            territories: territories
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            disabled: r.get::<_, i64>(5)? != 0,
            has_password: password.is_some(),
        };
        Ok((user, password.unwrap_or_default()))
    }

    const USER_COLUMNS: &'static str = "id, name, role, territories, password, disabled";

    fn user_where(
        &self,
        clause: &str,
        arg: &dyn rusqlite::ToSql,
    ) -> Result<Option<(User, String)>, RegistryError> {
        let sql = format!("SELECT {} FROM users WHERE {clause}", Self::USER_COLUMNS);
        Ok(self
            .conn()
            .query_row(&sql, [arg], Self::user_of_row)
            .optional()?)
    }

    /// Add an account; `territories` empty means every territory, for admins only.
    pub fn add_user(
        &self,
        name: &str,
        role: Role,
        territories: &[String],
        now_ms: u64,
    ) -> Result<User, RegistryError> {
        check_user_name(name)?;
        if territories.is_empty() && role != Role::Admin {
            return Err(account_err(format!(
                "--territory : un compte {} voit un ou plusieurs territoires ; donnez-en au moins un (par exemple --territory 80)",
                role.code()
            )));
        }
        if territories.len() > CONSOLE_USER_TERRITORIES_MAX {
            return Err(account_err(format!(
                "--territory : au plus {CONSOLE_USER_TERRITORIES_MAX} territoires par compte"
            )));
        }
        for t in territories {
            check_territory("territory", t)?;
        }
        if self.user_where("name = ?1", &name)?.is_some() {
            return Err(account_err(format!(
                "un compte « {name} » existe déjà ; choisissez un autre --name"
            )));
        }
        self.conn().execute(
            "INSERT INTO users(name, role, territories, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.code(), territories.join(","), ms(now_ms)],
        )?;
        self.user(name)
    }

    /// The account `name`.
    pub fn user(&self, name: &str) -> Result<User, RegistryError> {
        self.user_where("name = ?1", &name)?
            .map(|(u, _)| u)
            .ok_or_else(|| {
                account_err(format!(
                    "aucun compte « {name} » (voir `tournee-server user list`)"
                ))
            })
    }

    /// Every account, by name.
    pub fn users(&self) -> Result<Vec<User>, RegistryError> {
        let sql = format!("SELECT {} FROM users ORDER BY name", Self::USER_COLUMNS);
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map([], Self::user_of_row)?;
        Ok(rows.map(|r| r.map(|(u, _)| u)).collect::<Result<_, _>>()?)
    }

    /// Disable `name`: it cannot sign in any more, and its sessions and links are gone.
    pub fn disable_user(&self, name: &str) -> Result<User, RegistryError> {
        let user = self.user(name)?;
        let tx = self.conn().unchecked_transaction()?;
        tx.execute("UPDATE users SET disabled = 1 WHERE id = ?1", [user.id])?;
        tx.execute("DELETE FROM console_sessions WHERE user = ?1", [user.id])?;
        tx.execute("DELETE FROM signin_links WHERE user = ?1", [user.id])?;
        tx.commit()?;
        self.user(name)
    }

    /// A fresh one-time sign-in link's secret for `name` (an earlier one stops working).
    pub fn issue_link(&self, name: &str, now_ms: u64) -> Result<String, RegistryError> {
        let user = self.user(name)?;
        if user.disabled {
            return Err(account_err(format!(
                "le compte « {name} » est désactivé ; aucun lien n'est donné"
            )));
        }
        let token = secret()?;
        let tx = self.conn().unchecked_transaction()?;
        tx.execute("DELETE FROM signin_links WHERE user = ?1", [user.id])?;
        tx.execute(
            "INSERT INTO signin_links(token, user, expires_ms) VALUES (?1, ?2, ?3)",
            params![
                sha256_hex(&token),
                user.id,
                ms(now_ms + CONSOLE_LINK_LIFETIME_MS)
            ],
        )?;
        tx.commit()?;
        Ok(token)
    }

    /// Use a sign-in link once: the account it was issued for, if it is valid now.
    pub fn redeem_link(&self, token: &str, now_ms: u64) -> Result<Option<User>, RegistryError> {
        let hash = sha256_hex(token);
        let found: Option<(i64, i64)> = self
            .conn()
            .query_row(
                "SELECT user, expires_ms FROM signin_links WHERE token = ?1",
                [&hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        self.conn()
            .execute("DELETE FROM signin_links WHERE token = ?1", [&hash])?;
        let Some((user, _)) = found.filter(|(_, e)| *e > ms(now_ms)) else {
            return Ok(None);
        };
        Ok(self
            .user_where("id = ?1", &user)?
            .map(|(u, _)| u)
            .filter(|u| !u.disabled))
    }

    /// Set the password of account `id` (after a sign-in link); clears its lock.
    pub fn set_password(&self, id: i64, password: &str) -> Result<(), RegistryError> {
        check_password(password)?;
        let hash = hash_password(password)?;
        self.conn().execute(
            "UPDATE users SET password = ?1, failed = 0, locked_until_ms = 0 WHERE id = ?2",
            params![hash, id],
        )?;
        Ok(())
    }

    /// Sign in with a name and a password: a new session, a refusal, or the lock's end. Each
    /// failure counts towards the lock, even during it; an unknown name costs the same hash.
    pub fn sign_in(
        &self,
        name: &str,
        password: &str,
        now_ms: u64,
    ) -> Result<SignIn, RegistryError> {
        let found = self.user_where("name = ?1", &name)?;
        let Some((user, stored)) = found.filter(|(u, p)| !u.disabled && !p.is_empty()) else {
            // The same work as a real check, so timing does not tell names apart.
            let _ = hash_password(password);
            return Ok(SignIn::Refused);
        };
        let (failed, locked_until): (u32, i64) = self.conn().query_row(
            "SELECT failed, locked_until_ms FROM users WHERE id = ?1",
            [user.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if locked_until > ms(now_ms) {
            return Ok(SignIn::Locked(u64::try_from(locked_until).unwrap_or(0)));
        }
        if !password_matches(password, &stored) {
            let failed = failed.saturating_add(1);
            let lock = lock_ms(failed);
            self.conn().execute(
                "UPDATE users SET failed = ?1, locked_until_ms = ?2 WHERE id = ?3",
                params![
                    failed,
                    if lock > 0 { ms(now_ms + lock) } else { 0 },
                    user.id
                ],
            )?;
            return Ok(if lock > 0 {
                SignIn::Locked(now_ms + lock)
            } else {
                SignIn::Refused
            });
        }
        self.conn().execute(
            "UPDATE users SET failed = 0, locked_until_ms = 0 WHERE id = ?1",
            [user.id],
        )?;
        let session = self.open_session(user.id, now_ms)?;
        Ok(SignIn::Session(session, user))
    }

    /// A new session of account `id` (after a password, or a sign-in link); its id.
    pub fn open_session(&self, id: i64, now_ms: u64) -> Result<String, RegistryError> {
        let session = secret()?;
        self.conn().execute(
            "INSERT INTO console_sessions(token, user, expires_ms) VALUES (?1, ?2, ?3)",
            params![
                sha256_hex(&session),
                id,
                ms(now_ms + CONSOLE_SESSION_LIFETIME_MS)
            ],
        )?;
        Ok(session)
    }

    /// The account a session id stands for now (an expired session is removed).
    pub fn session_user(&self, session: &str, now_ms: u64) -> Result<Option<User>, RegistryError> {
        let hash = sha256_hex(session);
        let found: Option<(i64, i64)> = self
            .conn()
            .query_row(
                "SELECT user, expires_ms FROM console_sessions WHERE token = ?1",
                [&hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((user, expires)) = found else {
            return Ok(None);
        };
        if expires <= ms(now_ms) {
            self.end_session(session)?;
            return Ok(None);
        }
        Ok(self
            .user_where("id = ?1", &user)?
            .map(|(u, _)| u)
            .filter(|u| !u.disabled))
    }

    /// Sign out.
    pub fn end_session(&self, session: &str) -> Result<(), RegistryError> {
        self.conn().execute(
            "DELETE FROM console_sessions WHERE token = ?1",
            [sha256_hex(session)],
        )?;
        Ok(())
    }

    /// Append a line to the audit journal.
    pub fn audit(
        &self,
        now_ms: u64,
        who: &str,
        action: &str,
        territory: Option<&str>,
        detail: &str,
    ) -> Result<(), RegistryError> {
        self.conn().execute(
            "INSERT INTO audit(at_ms, who, action, territory, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ms(now_ms), who, action, territory, detail],
        )?;
        Ok(())
    }

    /// The journal from `from_ms` on, oldest first.
    pub fn audit_since(&self, from_ms: u64) -> Result<Vec<AuditEntry>, RegistryError> {
        let mut stmt = self.conn().prepare(
            "SELECT seq, at_ms, who, action, territory, detail FROM audit
             WHERE at_ms >= ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([ms(from_ms)], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                who: r.get(2)?,
                action: r.get(3)?,
                territory: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_790_000_000_000;

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().expect("dir");
        let r = Registry::open(&dir.path().join("registry.sqlite")).expect("open");
        (dir, r)
    }

    #[test]
    fn a_link_sets_a_password_once_and_sign_in_follows_it() {
        let (_d, r) = registry();
        let u = r
            .add_user("m.dupont", Role::Scheduler, &["80".into()], NOW)
            .expect("add");
        assert!(!u.has_password && u.sees("80") && !u.sees("59"));
        let link = r.issue_link("m.dupont", NOW).expect("link");
        assert_eq!(
            r.redeem_link(&link, NOW + 1).expect("redeem"),
            Some(u.clone())
        );
        assert_eq!(r.redeem_link(&link, NOW + 2).expect("again"), None, "once");
        assert!(r.set_password(u.id, "court").is_err(), "too short");
        r.set_password(u.id, "une phrase assez longue")
            .expect("set");
        assert_eq!(
            r.sign_in("m.dupont", "pas la bonne phrase", NOW)
                .expect("try"),
            SignIn::Refused
        );
        let SignIn::Session(session, who) = r
            .sign_in("m.dupont", "une phrase assez longue", NOW)
            .expect("sign in")
        else {
            panic!("the right password opens a session");
        };
        assert_eq!(who.name, "m.dupont");
        assert_eq!(
            r.session_user(&session, NOW + 1)
                .expect("session")
                .map(|u| u.id),
            Some(u.id)
        );
        assert_eq!(
            r.session_user(&session, NOW + CONSOLE_SESSION_LIFETIME_MS)
                .expect("expired"),
            None
        );
        let expired = r.issue_link("m.dupont", NOW).expect("link");
        assert_eq!(
            r.redeem_link(&expired, NOW + CONSOLE_LINK_LIFETIME_MS)
                .expect("late"),
            None
        );
    }

    #[test]
    fn failures_lock_the_account_with_a_growing_wait_and_disabling_ends_sessions() {
        let (_d, r) = registry();
        let u = r.add_user("admin", Role::Admin, &[], NOW).expect("add");
        assert!(
            u.sees("59") && u.sees("80"),
            "an admin without territories sees all"
        );
        r.set_password(u.id, "une phrase assez longue")
            .expect("set");
        let mut outcomes = Vec::new();
        for i in 0..CONSOLE_LOGIN_FAILURES_MAX {
            outcomes.push(r.sign_in("admin", "faux", NOW + u64::from(i)).expect("try"));
        }
        assert!(outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| *o == SignIn::Refused));
        let Some(SignIn::Locked(until)) = outcomes.last().cloned() else {
            panic!("locked after {CONSOLE_LOGIN_FAILURES_MAX} failures: {outcomes:?}");
        };
        assert!(until >= NOW + CONSOLE_LOCK_MIN_MS);
        assert_eq!(
            r.sign_in("admin", "une phrase assez longue", NOW + 10)
                .expect("during"),
            SignIn::Locked(until),
            "even the right password waits for the lock's end"
        );
        assert_eq!(
            lock_ms(CONSOLE_LOGIN_FAILURES_MAX + 1),
            2 * CONSOLE_LOCK_MIN_MS
        );
        assert_eq!(
            lock_ms(CONSOLE_LOGIN_FAILURES_MAX + 40),
            CONSOLE_LOCK_MAX_MS
        );
        let SignIn::Session(session, _) = r
            .sign_in("admin", "une phrase assez longue", until + 1)
            .expect("after")
        else {
            panic!("the lock ends");
        };
        r.disable_user("admin").expect("disable");
        assert_eq!(r.session_user(&session, until + 2).expect("gone"), None);
        assert_eq!(
            r.sign_in("admin", "une phrase assez longue", until + 3)
                .expect("disabled"),
            SignIn::Refused
        );
    }

    #[test]
    fn accounts_are_checked_and_the_journal_only_grows() {
        let (_d, r) = registry();
        assert!(
            r.add_user("x", Role::Supervisor, &[], NOW).is_err(),
            "no territory"
        );
        assert!(r.add_user("a b", Role::Admin, &[], NOW).is_err(), "a space");
        assert!(r
            .add_user("x", Role::Supervisor, &["999".into()], NOW)
            .is_err());
        r.add_user("x", Role::Supervisor, &["59".into()], NOW)
            .expect("add");
        assert!(r.add_user("x", Role::Admin, &[], NOW).is_err(), "taken");
        r.audit(NOW, "cli", "user.add", Some("59"), "x supervisor")
            .expect("audit");
        r.audit(NOW + 1, "x", "sign_in", None, "").expect("audit");
        let all = r.audit_since(0).expect("read");
        assert_eq!(all.len(), 2);
        assert_eq!(r.audit_since(NOW + 1).expect("read").len(), 1);
        assert!(
            r.conn().execute("DELETE FROM audit", []).is_err(),
            "append-only"
        );
        assert!(r.conn().execute("UPDATE audit SET who = 'y'", []).is_err());
        assert_eq!(r.audit_since(0).expect("read"), all);
    }
}
