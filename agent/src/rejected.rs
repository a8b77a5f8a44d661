//! The laptop's rejected list as a person sees it: why each refused change was refused (in
//! French), which records still hold a refused value, and the `rejected` commands (`list`, and
//! `undo`, which removes refused writes from the local state so the laptop's digest can match
//! the server's again).
//!
//! Deliberately not here: re-sending clock-ahead refusals (the session does it at the next
//! sync, with no user action) and the store's bookkeeping (`Store::undo_rejected`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use uuid::Uuid;

use tournee_cli::output::{print_json, print_table, Format};
use tournee_core::model::Field;
use tournee_core::store::{RejectedChange, Store};
use tournee_store::SqliteStore;

use tournee_agent::words::reason_fr;

/// `rejected …`.
#[derive(Debug, Subcommand)]
pub enum RejectedCmd {
    /// Changes the server refused, with why (those refused for a clock ahead go again by themselves).
    List(ListArgs),
    /// Remove refused changes from this laptop (their field is downloaded again at the next sync).
    Undo(UndoArgs),
}

/// `rejected list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `rejected undo`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["seq", "all"])))]
pub struct UndoArgs {
    /// Sequence numbers of the refused changes (as listed by `rejected list`).
    #[arg(value_name = "SEQ")]
    pub seq: Vec<u64>,
    /// Every refused change.
    #[arg(long, conflicts_with = "seq")]
    pub all: bool,
}

/// True when the record still shows the refused write (it was not replaced since).
fn still_shown(store: &SqliteStore, r: &RejectedChange) -> Result<bool> {
    Ok(store.record(r.change.record)?.is_some_and(|rec| {
        rec.register(r.change.field)
            .is_some_and(|reg| reg.siblings().iter().any(|s| s.dot == r.change.write.dot))
    }))
}

/// One refused value a record still shows.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The field holding it.
    pub field: Field,
    /// The refused change's local sequence number.
    pub seq: u64,
    /// The server's reason (its log text).
    pub reason: String,
}

/// Refused values still shown, by record.
pub fn refused_by_record(store: &SqliteStore) -> Result<BTreeMap<Uuid, Vec<Refused>>> {
    let mut out: BTreeMap<Uuid, Vec<Refused>> = BTreeMap::new();
    for r in store.rejected()? {
        if still_shown(store, &r)? {
            out.entry(r.change.record).or_default().push(Refused {
                field: r.change.field,
                seq: r.seq,
                reason: r.reason,
            });
        }
    }
    Ok(out)
}

/// The `refused` JSON of one record: `[{"field", "seq", "reason", "reason_fr"}]`.
pub fn refused_json(marks: Option<&Vec<Refused>>) -> serde_json::Value {
    let list: Vec<serde_json::Value> = marks
        .into_iter()
        .flatten()
        .map(|m| {
            json!({
                "field": m.field.code(),
                "seq": m.seq,
                "reason": m.reason,
                "reason_fr": reason_fr(&m.reason),
            })
        })
        .collect();
    serde_json::Value::Array(list)
}

/// The table mark of one record: its refused fields, comma-separated.
pub fn refused_mark(marks: Option<&Vec<Refused>>) -> String {
    marks
        .into_iter()
        .flatten()
        .map(|m| m.field.code())
        .collect::<Vec<_>>()
        .join(",")
}

/// Run a `rejected` command on the store of `dir`.
pub fn run(dir: &Path, cmd: RejectedCmd) -> Result<()> {
    match cmd {
        RejectedCmd::List(a) => list(dir, a.format),
        RejectedCmd::Undo(a) => undo(dir, &a),
    }
}

fn list(dir: &Path, format: Format) -> Result<()> {
    let store = crate::commands::open_existing(dir)?;
    let rejected = store.rejected()?;
    let mut docs = Vec::new();
    let mut rows = Vec::new();
    for r in &rejected {
        let shown = still_shown(&store, r)?;
        docs.push(json!({
            "seq": r.seq,
            "record": r.change.record.to_string(),
            "kind": r.change.kind.code(),
            "field": r.change.field.code(),
            "value": r.change.write.value.to_json(),
            "reason": r.reason,
            "reason_fr": reason_fr(&r.reason),
            "shown": shown,
        }));
        rows.push(vec![
            r.seq.to_string(),
            format!("{}.{}", r.change.kind.code(), r.change.field.code()),
            r.change.record.to_string(),
            if shown { "oui" } else { "remplacée" }.to_owned(),
            reason_fr(&r.reason),
        ]);
    }
    match format {
        Format::Json => print_json(&json!({ "rejected": docs })),
        Format::Table => print_table(&["seq", "field", "record", "shown", "why"], &rows),
    }
}

fn undo(dir: &Path, a: &UndoArgs) -> Result<()> {
    let mut store = crate::commands::open_existing(dir)?;
    let known: Vec<u64> = store.rejected()?.iter().map(|r| r.seq).collect();
    if let Some(missing) = a.seq.iter().find(|s| !known.contains(s)) {
        bail!("aucune modification refusée n° {missing} : voyez `tournee-agent rejected list`");
    }
    let seqs = (!a.all).then_some(a.seq.as_slice());
    let n = store.undo_rejected(seqs)?;
    println!(
        "{n} modification(s) refusée(s) effacée(s) de cet ordinateur ; la prochaine synchronisation \
         reprend les valeurs du serveur"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use tournee_agent::words::reason_fr;
    use tournee_core::reject::RejectReason;

    #[test]
    fn every_refusal_reason_is_told_in_french() {
        let reasons = [
            RejectReason::OutOfScope {
                scope: "unit:bus-02-1".into(),
            },
            RejectReason::FieldNotAllowed {
                kind: "round".into(),
                field: "name".into(),
            },
            RejectReason::ForeignDot { actor: 3 },
            RejectReason::ClockAhead { ahead_ms: 60_000 },
            RejectReason::invalid("status: no"),
            RejectReason::UnknownRecord {
                kind: "appointment".into(),
                id: "0190".into(),
            },
        ];
        for r in reasons {
            let fr = reason_fr(&r.to_string());
            assert!(!fr.starts_with("refusée par le serveur"), "{r}: {fr}");
        }
    }
}
