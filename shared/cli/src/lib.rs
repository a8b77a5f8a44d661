//! What both binaries do the same way around their commands: logging set-up, waiting for a
//! stop signal, writing owner-only files (atomically: a crash never leaves half a key), `appointment add`'s options, output formats and the
//! conflicts listing.
//!
//! Process plumbing and presentation only; no domain logic (that is `tournee_core`).

pub mod output;
pub mod secret;

use std::io::Write as _;
use std::path::{Path, PathBuf};

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

/// Why a private file or directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// The directory could not be created.
    #[error("cannot create {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The directory's permissions could not be restricted to its owner.
    #[error("cannot restrict {} to its owner", path.display())]
    RestrictDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The temporary file beside the target could not be created, restricted, written or
    /// flushed to disk; the target is untouched.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file that was to be written.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The complete temporary file could not be renamed over the target (which is untouched).
    #[error("cannot replace {}", path.display())]
    Replace {
        /// The file that was to be written.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file was replaced, but the directory entry could not be flushed to disk: after a
    /// power cut the old file may be back.
    #[error("cannot flush the directory of {} to disk", path.display())]
    SyncDir {
        /// The file that was written.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// Write a file readable by its owner only (keys, bundles), atomically and durably.
///
/// The contents go to a temporary file in the same directory (mode 0600 from its creation),
/// which is synced and then renamed over `path`, and the directory is synced: a crash leaves
/// either the old file or the new one whole, never a truncated key. A file already at `path` is
/// replaced (a new inode, so a symlink there is replaced rather than followed).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), PrivateFileError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let write = |source| PrivateFileError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tournee-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(write)?;
    }
    tmp.write_all(contents).map_err(write)?;
    tmp.as_file().sync_all().map_err(write)?;
    tmp.persist(path).map_err(|e| PrivateFileError::Replace {
        path: path.to_owned(),
        source: e.error,
    })?;
    sync_dir(dir).map_err(|source| PrivateFileError::SyncDir {
        path: path.to_owned(),
        source,
    })
}

/// Flush a directory's entries to disk (a rename is durable only then). No-op off Unix, where
/// directories cannot be opened as files.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Create a directory (and parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), PrivateFileError> {
    std::fs::create_dir_all(dir).map_err(|source| PrivateFileError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| PrivateFileError::RestrictDir {
                path: dir.to_owned(),
                source,
            },
        )?;
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
    /// Citizen's display name (kept minimal): records a new person.
    #[arg(long, value_name = "NAME", conflicts_with = "person")]
    pub citizen: Option<String>,
    /// A person already recorded (id or its first 8 characters, as `person search` lists).
    #[arg(long, value_name = "ID")]
    pub person: Option<String>,
    /// Passage this appointment belongs to.
    #[arg(long, value_name = "ID")]
    pub passage: Option<String>,
    /// Free-text note.
    #[arg(long)]
    pub note: Option<String>,
}

impl AppointmentArgs {
    /// Parse and check what was typed, with errors naming the option; ids may be short
    /// prefixes of records `store` holds.
    pub fn to_new(
        &self,
        store: &dyn tournee_core::store::Store,
        now: WallMs,
    ) -> Result<NewAppointment, tournee_core::store::StoreError> {
        let find = |field, typed: &Option<String>| {
            typed
                .as_deref()
                .map(|t| tournee_core::actions::find_id(store, field, t))
                .transpose()
        };
        let new = NewAppointment {
            start: parse_time("start", &self.start).map_err(ModelError::from)?,
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
            person: find("person", &self.person)?,
            passage: find("passage", &self.passage)?,
            note: self.note.clone(),
        };
        check_new_appointment(now, &new)?;
        Ok(new)
    }
}

/// `conflicts`: every field with concurrent values, each value with who wrote it (as
/// `device_label` names the actor) and when, in Paris time.
pub fn print_conflicts(
    store: &dyn tournee_core::store::Store,
    format: crate::output::Format,
    device_label: &dyn Fn(u32) -> String,
) -> anyhow::Result<()> {
    let views: Vec<tournee_core::actions::ConflictView> = store
        .conflicted()?
        .iter()
        .flat_map(tournee_core::actions::conflict_views)
        .collect();
    let written = |hlc: u64| {
        let secs = i64::try_from(tournee_core::hlc::Hlc(hlc).wall_ms() / 1000).unwrap_or(0);
        tournee_core::time::show_fr(secs)
    };
    match format {
        crate::output::Format::Json => {
            let list: Vec<serde_json::Value> = views
                .iter()
                .map(|c| {
                    let mut v = serde_json::to_value(c).unwrap_or_default();
                    for (s, out) in c.values.iter().zip(
                        v["values"]
                            .as_array_mut()
                            .map(|a| a.iter_mut())
                            .into_iter()
                            .flatten(),
                    ) {
                        out["device_name"] = device_label(s.device).into();
                        out["written"] = written(s.hlc).into();
                    }
                    v
                })
                .collect();
            crate::output::print_json(&serde_json::json!({ "conflicts": list }))
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
                            .map(|v| {
                                format!(
                                    "{} ({}, {})",
                                    shown_value(c.field, &v.value),
                                    device_label(v.device),
                                    written(v.hlc)
                                )
                            })
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

/// A conflicting value as a person reads it: times in Paris, text as is.
fn shown_value(field: &str, v: &serde_json::Value) -> String {
    let is_time = tournee_core::model::Field::parse(field).is_ok_and(|f| f.is_time());
    match v {
        serde_json::Value::Number(n) if is_time => n
            .as_i64()
            .map_or_else(|| n.to_string(), tournee_core::time::show_fr),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file's permission bits, on Unix.
    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    /// Names in `dir`, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn private_file_is_owner_only_with_the_contents_and_no_leftovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("device.key");
        write_private(&path, b"-----BEGIN PRIVATE KEY-----\n").expect("write");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            b"-----BEGIN PRIVATE KEY-----\n"
        );
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            entries(dir.path()),
            ["device.key"],
            "no temporary file left"
        );
    }

    #[test]
    fn writing_over_an_existing_file_replaces_it_whole_and_restricts_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("laptop-1.bundle");
        std::fs::write(&path, vec![b'x'; 10_000]).expect("an older, longer file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        write_private(&path, b"{\"version\": 1}").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"{\"version\": 1}");
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        assert_eq!(entries(dir.path()), ["laptop-1.bundle"]);
    }

    #[test]
    fn the_old_file_is_never_truncated_in_place() {
        // Writing in place (truncate, then write) is what could leave half a key after a
        // crash. Replacing by rename leaves the old file's contents untouched to the end: a
        // reader that opened it before still reads it whole.
        use std::io::Read as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.key");
        write_private(&path, b"old key, complete").expect("first write");
        let mut reader = std::fs::File::open(&path).expect("open the old file");
        write_private(&path, b"new").expect("second write");
        let mut old = String::new();
        reader.read_to_string(&mut old).expect("read");
        assert_eq!(old, "old key, complete");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
    }

    #[test]
    fn a_failed_write_names_the_file_and_keeps_the_os_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("ca.key");
        let err = write_private(&path, b"key").expect_err("no such directory");
        assert!(matches!(err, PrivateFileError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("ca.key"), "{err}");
        let source = std::error::Error::source(&err).expect("keeps its source");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }

    #[cfg(unix)]
    #[test]
    fn private_dir_is_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("a").join("b");
        create_private_dir(&sub).expect("create");
        assert_eq!(mode(&sub), 0o700);
    }

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
