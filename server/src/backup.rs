//! `tournee-server backup` and `restore`: one file holding everything a restore needs, taken
//! online while `serve` runs, and put back only while nothing serves the data directory.
//!
//! The backup file is itself a SQLite database (so `PRAGMA integrity_check` checks it) with one
//! row per data-dir file: the replicated store and the registry as consistent snapshots
//! (`VACUUM INTO`, one read transaction each, which never blocks `serve`'s writers in WAL
//! mode), then `server.toml`, the CA and the server's certificate and key. The store is taken
//! before the registry, so every device the store knows is in the registry. Keys are included:
//! without the CA key and the server key a restored server could not be reached by the laptops
//! already enrolled (they pin the CA), and the file already holds citizens' data, so it must be
//! kept as secret as the keys anyway (it is written 0600).
//!
//! It does not heal laptops after a restore (the sync protocol does that), keep generations of
//! backups (the timer's job), or encrypt the file (the disk's or the backup target's).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, MAIN_DB as MAIN};
use sha2::{Digest, Sha256};
use tournee_core::limits::{BACKUP_BUSY_WAIT_MS, BACKUP_ENTRY_BYTES_MAX};

use crate::config::DataDir;

/// Version of the backup file's layout.
pub const BACKUP_FORMAT: i64 = 1;

/// Databases of a data dir, in the order they are snapshotted (store before registry).
const DATABASES: [&str; 2] = ["server.sqlite", "registry.sqlite"];
/// Plain files of a data dir a restore needs.
const FILES: [&str; 5] = [
    "server.toml",
    "ca.pem",
    "ca.key",
    "server.pem",
    "server.key",
];
/// The lock `serve` and `restore` hold on a data dir.
const LOCK_FILE: &str = "serve.lock";

/// What went wrong, in words for the operator (French).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The data directory is in use by `serve` (or another restore).
    #[error(
        "{dir} est utilisé par `tournee-server serve` (ou une autre restauration) : arrêtez le \
         service (systemctl stop tournee-server) puis relancez ; rien n'a été modifié"
    )]
    InUse {
        /// The data directory.
        dir: PathBuf,
    },
    /// No server was initialised there.
    #[error("aucun serveur Tournée dans {dir} : rien à sauvegarder")]
    NotInitialised {
        /// The data directory.
        dir: PathBuf,
    },
    /// The backup file is damaged or not a backup.
    #[error("{file} n'est pas une sauvegarde utilisable ({why}) ; rien n'a été modifié")]
    BadBackup {
        /// The backup file.
        file: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The backup's directory does not exist.
    #[error("le répertoire {dir} n'existe pas : créez-le ou choisissez un autre --out ; aucune sauvegarde écrite")]
    NoOutDir {
        /// The missing directory.
        dir: PathBuf,
    },
    /// A file is larger than a backup entry may be.
    #[error("{path} dépasse {max} octets : trop grand pour une sauvegarde")]
    TooBig {
        /// The file.
        path: PathBuf,
        /// `BACKUP_ENTRY_BYTES_MAX`.
        max: u64,
    },
    /// SQLite failed on a file.
    #[error("{path} : {source}")]
    Sql {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The restored server store could not be given its new epoch.
    #[error("{path} : {source}")]
    Store {
        /// The file.
        path: PathBuf,
        /// The store's error.
        source: tournee_core::store::StoreError,
    },
    /// A file could not be read or written.
    #[error("{path} : {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sql(path: &Path) -> impl FnOnce(rusqlite::Error) -> BackupError + '_ {
    move |source| BackupError::Sql {
        path: path.to_path_buf(),
        source,
    }
}

/// The exclusive lock of a data directory, held by `serve` for its whole run and by `restore`
/// while it swaps files. Released when dropped (or when the process dies: it is a `flock`).
#[derive(Debug)]
pub struct DirLock {
    _lock: Flock<File>,
}

impl DirLock {
    /// Take the lock, or say who holds it.
    pub fn acquire(data: &DataDir) -> Result<Self, BackupError> {
        let path = data.root().join(LOCK_FILE);
        let file = private_options(false)
            .read(true)
            .open(&path)
            .map_err(io(&path))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Self { _lock: lock }),
            Err((_, Errno::EWOULDBLOCK)) => Err(BackupError::InUse {
                dir: data.root().to_path_buf(),
            }),
            Err((_, e)) => Err(io(&path)(std::io::Error::from(e))),
        }
    }
}

/// Open options creating a file readable by its owner only.
fn private_options(create_new: bool) -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    if create_new {
        o.create_new(true);
    } else {
        o.create(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// One file of a backup, as `backup` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File name in the data directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn open_rw(path: &Path) -> Result<Connection, BackupError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql(path))?;
    conn.busy_timeout(Duration::from_millis(BACKUP_BUSY_WAIT_MS))
        .map_err(sql(path))?;
    Ok(conn)
}

/// `PRAGMA integrity_check` of the database at `path`: `Ok(None)` when it says "ok".
fn integrity(path: &Path) -> Result<Option<String>, BackupError> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql(path))?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(sql(path))?;
    Ok((verdict != "ok").then_some(verdict))
}

/// Copy `src` into the entry `name` of the backup being written, streaming; returns its size.
fn put_entry(
    out: &Connection,
    out_path: &Path,
    name: &str,
    src: &Path,
) -> Result<u64, BackupError> {
    let mut file = File::open(src).map_err(io(src))?;
    let len = file.metadata().map_err(io(src))?.len();
    if len > BACKUP_ENTRY_BYTES_MAX {
        return Err(BackupError::TooBig {
            path: src.to_path_buf(),
            max: BACKUP_ENTRY_BYTES_MAX,
        });
    }
    let zero = i32::try_from(len).map_err(|_| BackupError::TooBig {
        path: src.to_path_buf(),
        max: BACKUP_ENTRY_BYTES_MAX,
    })?;
    out.execute(
        "INSERT INTO entries(name, bytes, sha256, content) VALUES (?1, ?2, '', ?3)",
        params![name, len as i64, rusqlite::blob::ZeroBlob(zero)],
    )
    .map_err(sql(out_path))?;
    let row = out.last_insert_rowid();
    let mut blob = out
        .blob_open(MAIN, "entries", "content", row, false)
        .map_err(sql(out_path))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io(src))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        blob.write_all(&buf[..n]).map_err(io(out_path))?;
    }
    drop(blob);
    out.execute(
        "UPDATE entries SET sha256 = ?1 WHERE rowid = ?2",
        params![hex::encode(hash.finalize()), row],
    )
    .map_err(sql(out_path))?;
    Ok(len)
}

/// Write a backup of `data` to `out` (replaced atomically when complete), while `serve` may
/// run. `now_ms` is recorded in the file.
pub fn backup(data: &DataDir, out: &Path, now_ms: u64) -> Result<Vec<Entry>, BackupError> {
    if !data.is_initialised() {
        return Err(BackupError::NotInitialised {
            dir: data.root().to_path_buf(),
        });
    }
    if let Some(dir) = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
    {
        return Err(BackupError::NoOutDir {
            dir: dir.to_path_buf(),
        });
    }
    let part = with_suffix(out, ".part");
    let _ = std::fs::remove_file(&part);
    private_options(true).open(&part).map_err(io(&part))?;
    let result = write_backup(data, &part, now_ms);
    let snapshots = DATABASES.map(|db| with_suffix(out, &format!(".{db}.tmp")));
    for s in &snapshots {
        let _ = std::fs::remove_file(s);
    }
    let entries = match result {
        Ok(e) => e,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    File::open(&part)
        .and_then(|f| f.sync_all())
        .map_err(io(&part))?;
    std::fs::rename(&part, out).map_err(io(out))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(entries)
}

fn write_backup(data: &DataDir, part: &Path, now_ms: u64) -> Result<Vec<Entry>, BackupError> {
    let out = Connection::open(part).map_err(sql(part))?;
    out.execute_batch(
        "PRAGMA journal_mode=DELETE;
         CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
         CREATE TABLE entries(name TEXT PRIMARY KEY, bytes INTEGER NOT NULL,
                              sha256 TEXT NOT NULL, content BLOB NOT NULL);",
    )
    .map_err(sql(part))?;
    out.execute(
        "INSERT INTO meta(key, value) VALUES ('format', ?1), ('created_ms', ?2)",
        params![BACKUP_FORMAT, now_ms as i64],
    )
    .map_err(sql(part))?;
    let mut entries = Vec::new();
    for db in DATABASES {
        let src = data.root().join(db);
        let snapshot = with_suffix(part, &format!(".{db}.tmp"));
        let _ = std::fs::remove_file(&snapshot);
        let conn = open_rw(&src)?;
        conn.execute("VACUUM INTO ?1", [snapshot.to_string_lossy()])
            .map_err(sql(&src))?;
        drop(conn);
        if let Some(why) = integrity(&snapshot)? {
            let _ = std::fs::remove_file(&snapshot);
            return Err(BackupError::BadBackup {
                file: src,
                why: format!("contrôle d'intégrité : {why}"),
            });
        }
        let bytes = put_entry(&out, part, db, &snapshot);
        let _ = std::fs::remove_file(&snapshot);
        entries.push(Entry {
            name: db.to_owned(),
            bytes: bytes?,
        });
    }
    for name in FILES {
        let src = data.root().join(name);
        let bytes = put_entry(&out, part, name, &src)?;
        entries.push(Entry {
            name: name.to_owned(),
            bytes,
        });
    }
    Ok(entries)
}

/// What `restore` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// When the backup was taken (Unix ms).
    pub created_ms: u64,
    /// Where the files it replaced were moved (none when the directory was empty).
    pub set_aside: Option<PathBuf>,
}

/// Check the backup file and every entry, then put its files in `data` (created if missing),
/// moving the files they replace (and the databases' `-wal`/`-shm`) aside into
/// `replaced-<stamp>/`. Refused while `serve` runs there. `stamp` names the aside directory.
pub fn restore(data: &DataDir, from: &Path, stamp: &str) -> Result<Restored, BackupError> {
    let root = data.root();
    if !root.exists() {
        tournee_cli::create_private_dir(root).map_err(|e| BackupError::Io {
            path: root.to_path_buf(),
            source: std::io::Error::other(format!("{e:#}")),
        })?;
    }
    let _lock = DirLock::acquire(data)?;
    let bad = |why: String| BackupError::BadBackup {
        file: from.to_path_buf(),
        why,
    };
    if !from.is_file() {
        return Err(bad("fichier introuvable".into()));
    }
    if let Some(why) = integrity(from).map_err(|e| bad(e.to_string()))? {
        return Err(bad(format!("contrôle d'intégrité : {why}")));
    }
    let src =
        Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql(from))?;
    let meta = |key: &str| -> Result<Option<i64>, BackupError> {
        src.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| bad(e.to_string()))
    };
    match meta("format")? {
        Some(BACKUP_FORMAT) => {}
        Some(v) => return Err(bad(format!("format {v}, attendu {BACKUP_FORMAT}"))),
        None => return Err(bad("format absent".into())),
    }
    let created_ms = meta("created_ms")?.unwrap_or(0).max(0) as u64;
    let staging = root.join(format!(".restore-{stamp}"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).map_err(io(&staging))?;
    let staged = stage(&src, from, &staging).and_then(|()| renew_epoch(&staging));
    if let Err(e) = staged {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let set_aside = swap_in(root, &staging, stamp)?;
    let _ = std::fs::remove_dir_all(&staging);
    let _ = File::open(root).and_then(|d| d.sync_all());
    Ok(Restored {
        created_ms,
        set_aside,
    })
}

/// Extract every entry into `staging`, checking sizes, hashes and the databases' integrity.
fn stage(src: &Connection, from: &Path, staging: &Path) -> Result<(), BackupError> {
    let bad = |why: String| BackupError::BadBackup {
        file: from.to_path_buf(),
        why,
    };
    for name in DATABASES.iter().chain(FILES.iter()) {
        let row: Option<(i64, i64, String)> = src
            .query_row(
                "SELECT rowid, bytes, sha256 FROM entries WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| bad(e.to_string()))?;
        let Some((rowid, bytes, sha)) = row else {
            return Err(bad(format!("{name} manque")));
        };
        let mut blob = src
            .blob_open(MAIN, "entries", "content", rowid, true)
            .map_err(|e| bad(e.to_string()))?;
        let dest = staging.join(name);
        let mut file = private_options(true).open(&dest).map_err(io(&dest))?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = blob.read(&mut buf).map_err(|e| bad(e.to_string()))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            hash.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(io(&dest))?;
        }
        file.sync_all().map_err(io(&dest))?;
        if total != bytes as u64 || hex::encode(hash.finalize()) != sha {
            return Err(bad(format!("{name} ne correspond pas à son empreinte")));
        }
        if DATABASES.contains(name) {
            if let Some(why) = integrity(&dest)? {
                return Err(bad(format!("{name} : contrôle d'intégrité : {why}")));
            }
        }
    }
    Ok(())
}

/// Give the staged server store a new epoch: laptops counted their changelog cursor in the
/// numbering the lost store went on with, which this copy will give to other changes.
fn renew_epoch(staging: &Path) -> Result<(), BackupError> {
    let path = staging.join(DATABASES[0]);
    let store_err = |source| BackupError::Store {
        path: path.clone(),
        source,
    };
    let mut store = tournee_report::facts::open_server_store(&path).map_err(store_err)?;
    tournee_core::store::ServerStore::renew_epoch(&mut store).map_err(store_err)?;
    Ok(())
}

/// Move the current files aside (if any), then the staged ones into place.
fn swap_in(root: &Path, staging: &Path, stamp: &str) -> Result<Option<PathBuf>, BackupError> {
    let aside = root.join(format!("replaced-{stamp}"));
    let mut moved = false;
    for name in DATABASES.iter().chain(FILES.iter()) {
        let companions: &[&str] = if DATABASES.contains(name) {
            &["", "-wal", "-shm"]
        } else {
            &[""]
        };
        for suffix in companions {
            let current = root.join(format!("{name}{suffix}"));
            if current.exists() {
                if !moved {
                    std::fs::create_dir(&aside).map_err(io(&aside))?;
                    moved = true;
                }
                let to = aside.join(format!("{name}{suffix}"));
                std::fs::rename(&current, &to).map_err(io(&current))?;
            }
        }
    }
    for name in DATABASES.iter().chain(FILES.iter()) {
        let from = staging.join(name);
        let to = root.join(name);
        std::fs::rename(&from, &to).map_err(io(&to))?;
    }
    Ok(moved.then_some(aside))
}

/// `backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The backup file to write (replaced when the new one is complete; 0600).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file to restore from.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
}

/// `tournee-server backup`: write the file, print one line per entry and a summary.
pub fn backup_cmd(data: &DataDir, a: &BackupArgs, now_ms: u64) -> anyhow::Result<()> {
    let entries = backup(data, &a.out, now_ms)?;
    let total: u64 = entries.iter().map(|e| e.bytes).sum();
    for e in &entries {
        println!("{}\t{} octets", e.name, e.bytes);
    }
    println!(
        "sauvegarde écrite : {} ({} fichiers, {total} octets ; contient les clés : à garder secrète)",
        a.out.display(),
        entries.len()
    );
    Ok(())
}

/// `tournee-server restore`: check, swap, and say where the old files went.
pub fn restore_cmd(data: &DataDir, a: &RestoreArgs, now_ms: u64) -> anyhow::Result<()> {
    let secs = i64::try_from(now_ms / 1000).unwrap_or(0);
    let stamp = chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|| secs.to_string());
    let done = restore(data, &a.from, &stamp)?;
    let taken =
        chrono::DateTime::from_timestamp(i64::try_from(done.created_ms / 1000).unwrap_or(0), 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
    println!(
        "restauré dans {} depuis {} (sauvegarde du {taken})",
        data.root().display(),
        a.from.display()
    );
    match done.set_aside {
        Some(d) => println!("anciens fichiers mis de côté dans {}", d.display()),
        None => println!("le répertoire était vide : rien n'a été mis de côté"),
    }
    println!(
        "les ordinateurs portables renvoient ce qu'ils ont saisi depuis la sauvegarde à leur prochaine synchronisation ; \
         ce qui a été planifié sur le serveur depuis (tournées, arrêts, rendez-vous) est à ressaisir"
    );
    Ok(())
}
