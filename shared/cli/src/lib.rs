//! What both binaries do the same way around their commands: logging set-up, waiting for a
//! stop signal, writing owner-only files, `appointment add`'s options, output formats and the
//! conflicts listing.
//!
//! Process plumbing and presentation only; no domain logic (that is `tournee_core`).

pub mod output;

use std::path::Path;

use anyhow::{Context, Result};

use tournee_core::actions::{check_new_appointment, NewAppointment};
use tournee_core::clock::WallMs;
use tournee_core::model::{Location, ModelError};
use tournee_core::time::parse_time;

/// Log to stderr: level from `RUST_LOG`, else `default`; colours only on a terminal, so under
/// systemd every event is one plain line in the journal. Field values go through
/// `log_fields`: a device name or a peer's text cannot break the line.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(log_fields())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// How log events show their fields: the message bare, then `name=value` pairs, one space
/// apart (as `tracing_subscriber`'s default), every value through `output::escape`, so a CR, LF,
/// ESC or bidi override in a field is shown as `\u{XXXX}` and every event stays one line.
pub fn log_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static
{
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let shown = output::escape(&text);
        if field.name() == "message" {
            w.write_str(&shown)
        } else {
            write!(w, "{}={shown}", field.name())
        }
    })
    .delimited(" ")
}

/// Resolve on SIGTERM or SIGINT (Ctrl-C).
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Write a file readable by its owner only (keys, bundles), durably.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

/// Create a directory (and parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {} to its owner", dir.display()))?;
    }
    Ok(())
}

/// The options of `appointment add`, the same on the laptop and on the server.
#[derive(Debug, Clone, clap::Args)]
pub struct AppointmentArgs {
    /// Start: RFC 3339 or YYYY-MM-DDTHH:MM (Europe/Paris).
    #[arg(long)]
    pub start: String,
    /// Duration in minutes (1 to 720).
    #[arg(long, value_name = "MIN", allow_hyphen_values = true)]
    pub duration: String,
    /// Where: arret, domicile or telephone.
    #[arg(long)]
    pub location: String,
    /// INSEE code of the commune (e.g. 80021).
    #[arg(long, value_name = "INSEE")]
    pub commune: String,
    /// Citizen's display name (kept minimal).
    #[arg(long, value_name = "NAME")]
    pub citizen: Option<String>,
    /// Passage this appointment belongs to.
    #[arg(long, value_name = "ID")]
    pub passage: Option<String>,
    /// Free-text note.
    #[arg(long)]
    pub note: Option<String>,
}

impl AppointmentArgs {
    /// Parse and check what was typed, with errors naming the option.
    pub fn to_new(&self, now: WallMs) -> Result<NewAppointment, ModelError> {
        let new = NewAppointment {
            start: parse_time("start", &self.start)?,
            duration: self
                .duration
                .trim()
                .parse()
                .map_err(|_| ModelError::BadFormat {
                    field: "duration",
                    value: self.duration.clone(),
                    expected: "whole number of minutes",
                })?,
            location: Location::parse(&self.location)?,
            commune: self.commune.clone(),
            citizen: self.citizen.clone(),
            passage: self
                .passage
                .as_deref()
                .map(|p| {
                    uuid::Uuid::parse_str(p).map_err(|_| ModelError::BadFormat {
                        field: "passage",
                        value: p.to_owned(),
                        expected: "passage id (UUID, as listed by `passage list`)",
                    })
                })
                .transpose()?,
            note: self.note.clone(),
        };
        check_new_appointment(now, &new)?;
        Ok(new)
    }
}

/// Print the conflicts of a store: one JSON document, or a table with the competing values.
pub fn print_conflicts(
    store: &dyn tournee_core::store::Store,
    format: crate::output::Format,
) -> anyhow::Result<()> {
    let views: Vec<tournee_core::actions::ConflictView> = store
        .conflicted()?
        .iter()
        .flat_map(tournee_core::actions::conflict_views)
        .collect();
    match format {
        crate::output::Format::Json => {
            crate::output::print_json(&serde_json::json!({ "conflicts": views }))
        }
        crate::output::Format::Table => {
            let rows: Vec<Vec<String>> = views
                .iter()
                .map(|c| {
                    vec![
                        c.record.to_string(),
                        c.kind.to_owned(),
                        c.field.to_owned(),
                        c.values
                            .iter()
                            .map(|v| format!("{} (device {})", v.value, v.device))
                            .collect::<Vec<_>>()
                            .join(" | "),
                    ]
                })
                .collect();
            crate::output::print_table(
                &["record", "kind", "field", "values (last is shown)"],
                &rows,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    /// A device named with a newline forged a second log line.
    #[test]
    fn a_log_field_with_a_newline_or_an_escape_stays_on_its_line() {
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(super::log_fields())
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        let name = "pc-a\n2026-12-01T10:00:00Z  WARN device revoked";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(device = 3, name = %name, why = "a\u{202E}b", "session {}", "x\ry");
        });
        let text = String::from_utf8(buf.lock().expect("lock").clone()).expect("utf-8");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("session x\\u{000D}y"), "{text}");
        assert!(
            text.contains("device=3 name=pc-a\\u{000A}2026-12-01T10:00:00Z  WARN device revoked"),
            "{text}"
        );
        assert!(
            !text.contains('\u{202E}'),
            "the override is shown escaped: {text}"
        );
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
