//! The simulation's faults of a fleet's history: a laptop's files rolled back to an earlier
//! snapshot, a laptop's files copied to a second laptop (same identity), the server rolled back
//! to a backup. Stores are copied as `cp -a` would (the database and its WAL, between two
//! transactions) and opened at a new path, so the old store simply closes.
//!
//! A rollback legitimately loses what only the rolled-back copy held: the ledger forgets those
//! changes (nowhere left to find them), and the checker's "no committed change missing" holds
//! for every other one. It does not decide how often the faults happen (`step_once` does).

use std::path::{Path, PathBuf};

use super::{open, Agent, Failure, World};

/// Most clones of a laptop per run: each adds an agent to every later round.
const SIM_CLONES_MAX: usize = 1;

/// Copy a store's files from `from` to a fresh `to`.
fn copy_store(from: &Path, to: &Path) -> Result<(), String> {
    for suffix in ["", "-wal"] {
        let src = PathBuf::from(format!("{}{suffix}", from.display()));
        let dst = PathBuf::from(format!("{}{suffix}", to.display()));
        if src.exists() {
            std::fs::copy(&src, &dst).map_err(|e| format!("copy {}: {e}", src.display()))?;
        }
    }
    Ok(())
}

impl World {
    fn fresh_path(&self, what: &str) -> PathBuf {
        let dir = self.server_path.parent().unwrap_or(Path::new("."));
        dir.join(format!("{what}-{}.sqlite", self.step))
    }

    /// One fault of history, chosen by the generator.
    pub(super) fn history_fault(&mut self, i: usize) -> Result<(), Failure> {
        match self.rng.below(4) {
            0 | 1 => match self.agents[i].snapshot.take() {
                None => {
                    let snap = self.fresh_path(&format!("snap-{i}"));
                    copy_store(&self.agents[i].path, &snap).map_err(|e| self.fail(e))?;
                    self.agents[i].snapshot = Some(snap);
                    self.trace(format_args!("agent {i} files copied aside"));
                }
                Some(snap) => {
                    self.drop_conn(i, "rolled back");
                    let path = self.fresh_path(&format!("agent-{i}"));
                    copy_store(&snap, &path).map_err(|e| self.fail(e))?;
                    self.agents[i].store = open(&path).map_err(|e| self.fail(e))?;
                    self.agents[i].path = path;
                    self.counts.agent_rollbacks += 1;
                    self.forget_lost()?;
                    self.trace(format_args!("agent {i} rolled back to its copy"));
                }
            },
            2 => {
                if self.counts.clones as usize >= SIM_CLONES_MAX {
                    return Ok(());
                }
                let path = self.fresh_path(&format!("clone-{i}"));
                copy_store(&self.agents[i].path, &path).map_err(|e| self.fail(e))?;
                let store = open(&path).map_err(|e| self.fail(e))?;
                let a = &self.agents[i];
                let clone = Agent {
                    auth: a.auth.clone(),
                    path,
                    store,
                    skew_ms: a.skew_ms,
                    partition: (0, 0),
                    conn: None,
                    known: a.known.clone(),
                    passages: a.passages.clone(),
                    citizens: a.citizens.clone(),
                    requests: a.requests.clone(),
                    workshops: a.workshops.clone(),
                    snapshot: None,
                };
                self.agents.push(clone);
                self.counts.clones += 1;
                self.trace(format_args!("agent {i} copied to a second laptop"));
            }
            _ => match self.server_backup.take() {
                None => {
                    let backup = self.fresh_path("backup");
                    copy_store(&self.server_path, &backup).map_err(|e| self.fail(e))?;
                    self.server_backup = Some(backup);
                    self.trace("server backed up");
                }
                Some(backup) => {
                    for j in 0..self.agents.len() {
                        self.drop_conn(j, "server restored");
                    }
                    let path = self.fresh_path("server");
                    copy_store(&backup, &path).map_err(|e| self.fail(e))?;
                    self.server = open(&path).map_err(|e| self.fail(e))?;
                    // What `tournee-server restore` does to the copy it puts back.
                    tournee_core::store::ServerStore::renew_epoch(&mut self.server)
                        .map_err(|e| self.fail(e.to_string()))?;
                    self.server_path = path;
                    self.counts.server_rollbacks += 1;
                    self.forget_lost()?;
                    self.trace("server restored from its backup");
                }
            },
        }
        Ok(())
    }

    /// Forget ledger changes no store holds any more (neither their laptop nor the server):
    /// a rollback lost them for good, and nothing may be asked to bring them back.
    fn forget_lost(&mut self) -> Result<(), Failure> {
        let covers = |store: &tournee_store::SqliteStore,
                      c: &tournee_core::record::Change|
         -> Result<bool, String> {
            use tournee_core::store::Store;
            Ok(store
                .record(c.record)
                .map_err(|e| e.to_string())?
                .and_then(|r| {
                    r.register(c.field)
                        .map(|reg| reg.clock().get(&c.write.dot.actor) >= c.write.dot.counter)
                })
                == Some(true))
        };
        let mut kept = Vec::with_capacity(self.ledger.len());
        for (j, c) in std::mem::take(&mut self.ledger) {
            let held = covers(&self.server, &c).map_err(|e| self.fail(e))?
                || self
                    .agents
                    .iter()
                    .filter(|a| a.auth.actor == self.agents[j].auth.actor)
                    .map(|a| covers(&a.store, &c))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| self.fail(e))?
                    .into_iter()
                    .any(|b| b);
            if held {
                kept.push((j, c));
            }
        }
        self.ledger = kept;
        Ok(())
    }
}
