//! Restore: rebuild a snapshot's database file from its pages. The file is written under a
//! temporary name beside the destination, checked (SHA-256 against the manifest and, beside
//! it, SQLite's `quick_check`, or with `--integrity-check full` its `integrity_check`; by
//! default a passing `quick_check` the backup recorded of this very image stands for the
//! first), and only then renamed into place. On any failure nothing is left.

mod destination;
pub(crate) mod image;
mod plan;
pub(crate) mod rebuild;
mod verify;
pub(crate) mod walk;
mod written_hash;

pub(crate) use rebuild::rebuild_into;
pub(crate) use verify::tables_by_size;
pub(crate) use verify::{file_sha256, verify_sha256};
pub use verify::{verify_integrity, RestoreCheck};

use crate::engine::context::{recorded, remember_damage, Context};
use crate::error::{Error, Result};
use crate::repo::catalog::Trust;
use crate::repo::ids::SnapshotId;
use crate::repo::keys::Keyring;
use crate::repo::reader::DamagedPack;
use crate::repo::Repository;
use destination::{check_destination, TempFile};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// How often a restore flushes what it has written so far.
const WRITEBACK_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub force: bool,
    /// SQLite's check of the rebuilt file. The SHA-256 comparison, which proves every byte
    /// equals the snapshot, always runs; SQLite's check also proves the database was sound
    /// when it was backed up, and its full form costs more than the rest of the restore.
    pub check: RestoreCheck,
    /// With `check` at `Quick`: rely on a passing SQLite check the backup ran on this very
    /// image and recorded in the manifest instead of running it again. The SHA-256 still
    /// proves the restored file is that image byte for byte, so the check would find the same.
    pub reuse_backup_check: bool,
    /// Only consider snapshots of this source (name or path) when resolving `latest`.
    pub source: Option<String>,
    /// Whose signatures make a snapshot acceptable (filled in by `run` from the context).
    pub trust: Trust,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub snapshot_id: SnapshotId,
    pub path: String,
    pub bytes_written: u64,
    pub bytes_read: u64,
    pub duration_ms: u64,
    /// Whether SQLite checked the file (`check` says how).
    pub integrity_checked: bool,
    pub check: RestoreCheck,
    /// The check was the one the backup ran on this very image (recorded in the manifest),
    /// not run again on the restored file.
    pub check_at_backup: bool,
    /// What the restore had to work around (damaged packs whose blobs came from copies).
    pub warnings: Vec<String>,
}

/// A restore as a face asks for it: which repository, which key, which snapshot, where to.
pub struct RestoreJob {
    pub repo: String,
    pub identity: Option<PathBuf>,
    /// Snapshot id, unique prefix, or `latest`.
    pub snapshot: String,
    pub dest: PathBuf,
    pub options: RestoreOptions,
    /// Restore a snapshot no trusted signer signed (the report says so).
    pub allow_unverified: bool,
}

/// Opens the repository and key, restores, and records the job in the history and any packs
/// found missing or damaged in the state (whether the restore succeeded or not).
pub fn run(ctx: &Context, job: &RestoreJob) -> Result<RestoreReport> {
    let (repo, keys) = ctx.open_repo_with_key(&job.repo, job.identity.as_deref())?;
    let options = RestoreOptions {
        trust: ctx.trust(&repo, job.allow_unverified)?,
        ..job.options.clone()
    };
    let mut state = ctx.state()?;
    let summary = |r: &RestoreReport| (r.bytes_read, 0, Some(r.snapshot_id.to_string()));
    let location = repo.location();
    let mut damaged = Vec::new();
    let res = recorded(
        &mut state,
        "restore",
        None,
        Some(&location),
        summary,
        |_| {
            let spec = &job.snapshot;
            restore_noting_damage(&repo, &keys, spec, &job.dest, &options, &mut damaged)
        },
    );
    let unrecorded = remember_damage(&state, &repo, &damaged);
    res.map(|mut r| {
        r.warnings.extend(unrecorded);
        r
    })
}

/// Restores snapshot `spec` (an id, unique prefix or `latest`) to `dest`.
pub fn restore(
    repo: &Repository,
    keys: &Keyring,
    spec: &str,
    dest: &Path,
    opts: &RestoreOptions,
) -> Result<RestoreReport> {
    restore_noting_damage(repo, keys, spec, dest, opts, &mut Vec::new())
}

/// [`restore`], adding the packs found missing or damaged on the way to `damaged`.
pub fn restore_noting_damage(
    repo: &Repository,
    keys: &Keyring,
    spec: &str,
    dest: &Path,
    opts: &RestoreOptions,
    damaged: &mut Vec<DamagedPack>,
) -> Result<RestoreReport> {
    let started = Instant::now();
    check_destination(dest, opts.force, repo.storage().local_dir().as_deref())?;
    let picked = repo.resolve_snapshot(keys, spec, opts.source.as_deref(), &opts.trust)?;
    let (id, m) = (picked.id, picked.manifest);
    let mut temp = TempFile::create(dest)?;
    let file_len = m.page_count * m.page_size as u64;
    let check_at_backup = opts.reuse_backup_check
        && opts.check == RestoreCheck::Quick
        && m.source_check.as_ref().is_some_and(|c| c.ok);
    let check = match check_at_backup {
        true => RestoreCheck::Off,
        false => opts.check,
    };
    let mut read = std::thread::scope(|s| {
        // Write back while pages are still coming, so the fsync before the rename finds
        // little left to do: on a large restore it otherwise costs seconds at the end.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let file = &temp.file;
        s.spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(WRITEBACK_EVERY) {
                let _ = file.sync_data();
            }
        });
        let write_error = |e| temp.write_error(e);
        // With SQLite's check to run afterwards, the file is hashed beside it instead, on the
        // core the check leaves idle.
        let while_writing = check == RestoreCheck::Off;
        // The plan of a large restore is sorted on disk beside the file it restores.
        let beside = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let written = rebuild_into(
            repo,
            keys,
            (&id, &m),
            (&temp.file, &write_error, beside),
            while_writing,
            damaged,
        );
        drop(stop);
        written
    })?;
    tracing::debug!(
        "pages written after {:?} (resident, peak MiB: {:?})",
        started.elapsed(),
        crate::host::memory_mib()
    );
    crate::failpoint::hit("restore-pages-written");
    // SQLite opens files by name, so the file gets its hidden name now (a kill from here on
    // leaves it for the next restore into this directory to remove).
    let sqlite_path = match check {
        RestoreCheck::Off => None,
        _ => Some(temp.name_for_sqlite(dest)?),
    };
    // The last fsync, the hash (unless taken while writing) and SQLite's check overlap: one
    // waits on the disk, the others read pages still in the page cache, on their own cores.
    let (synced, sha256, checked) = std::thread::scope(|s| {
        let sync = s.spawn(|| temp.file.sync_all());
        let (m, id) = (&m, &id);
        let check = sqlite_path
            .as_deref()
            .map(|path| s.spawn(move || verify_integrity(path, id, m, check)));
        let read_error = |e: std::io::Error| {
            Error::Destination(format!("cannot read back the restored file: {e}").into())
        };
        let sha256 = match read.sha256.take() {
            Some(h) => Ok(h),
            None => file_sha256(&temp.file, &read_error),
        };
        (sync.join(), sha256, check.map(|c| c.join()))
    });
    // A file whose bytes differ from the snapshot is the error to report, whatever SQLite said.
    verify_sha256(&sha256?, &m, &id)?;
    match synced {
        Ok(r) => r.map_err(|e| temp.write_error(e))?,
        Err(_) => return Err(Error::Internal("the fsync thread panicked".into())),
    }
    match checked {
        None => {}
        Some(Ok(r)) => r?,
        Some(Err(_)) => return Err(Error::Internal("SQLite's check panicked".into())),
    }
    tracing::debug!("synced and verified after {:?}", started.elapsed());
    temp.persist(dest, opts.force)?;
    Ok(RestoreReport {
        snapshot_id: id,
        path: dest.display().to_string(),
        bytes_written: file_len,
        bytes_read: read.read.bytes,
        duration_ms: started.elapsed().as_millis() as u64,
        integrity_checked: opts.check != RestoreCheck::Off,
        check: opts.check,
        check_at_backup,
        warnings: picked
            .warnings
            .into_iter()
            .chain(read.read.warnings)
            .collect(),
    })
}
