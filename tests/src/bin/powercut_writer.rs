//! `powercut_writer`: a long-running writer for the power-cut test. It commits user actions
//! (or remote batches) one after another on a store and prints a line after each commit
//! returned, so the test knows which transactions were acknowledged before the cut.
//!
//! `powercut_writer --data FILE --durability full|normal --mode write|apply`

use std::io::Write;

use anyhow::{bail, Context, Result};
use tournee_core::model::{Field, Kind, Scope, Value};
use tournee_core::store::{Identity, LocalAction, RecordEdit, Store};
use tournee_store::{Durability, SqliteStore};
use uuid::Uuid;

const NOW: u64 = 1_790_000_000_000;

fn appointment(id: Uuid, k: u64) -> LocalAction {
    LocalAction {
        edits: vec![RecordEdit {
            id,
            kind: Kind::Appointment,
            scope: Scope::Unit("bus-80-1".into()),
            create: true,
            sets: vec![
                (Field::Location, Value::Text("arret".into())),
                (Field::Commune, Value::Text("80021".into())),
                (
                    Field::Start,
                    Value::Int(1_790_100_000 + i64::try_from(k).unwrap_or(0) * 60),
                ),
                (Field::Duration, Value::Int(30)),
                (Field::Status, Value::Text("unknown".into())),
            ],
        }],
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .with_context(|| format!("missing {flag}"))
    };
    let durability = match get("--durability")?.as_str() {
        "full" => Durability::Full,
        "normal" => Durability::Normal,
        other => bail!("--durability: {other}: full or normal"),
    };
    let mut store = SqliteStore::open_with(std::path::Path::new(&get("--data")?), durability)?;
    let apply = get("--mode")? == "apply";
    let mut out = std::io::stdout().lock();
    if apply {
        // Another laptop's changes arrive in batches, each applied in one transaction.
        let mut source = SqliteStore::open_in_memory()?;
        source.set_identity(&Identity {
            device: 9,
            unit: "bus-80-1".into(),
            territory: "80".into(),
        })?;
        for k in 0.. {
            let mut changes = Vec::new();
            for j in 0..20u64 {
                let id = Uuid::from_u64_pair(k + 1, j + 1);
                changes.extend(source.write_local(NOW + k, &appointment(id, j))?);
            }
            store.apply_remote(&changes, Some(k + 1))?;
            writeln!(out, "batch {}", k + 1)?;
            out.flush()?;
        }
    } else {
        for k in 0u64.. {
            let id = Uuid::from_u64_pair(0xC0FFEE, k + 1);
            store.write_local(NOW + k, &appointment(id, k))?;
            writeln!(out, "{id}")?;
            out.flush()?;
        }
    }
    Ok(())
}
