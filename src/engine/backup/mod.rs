//! Backup: one consistent read of the source, streamed through hashing and deduplication and
//! compression on every core (`pipeline`), into the repository's writer, which stores packs,
//! then the index that lists them, then the manifest. `batch` shares the per-repository work
//! among many sources; `job` runs sources to their targets and records each in the job
//! history.

mod batch;
mod chain;
mod job;
mod known;
mod pipeline;

pub use chain::{parse_full_after_changed, DEFAULT_FULL_AFTER_CHANGED};

pub use crate::source::{CheckLevel, ReadOptions};
pub use job::{run, run_many, BackupJob, BackupRun, TargetOutcome};

use crate::error::{Error, Hint, Hinted, Result};
use crate::facts::SourceCheck;
use crate::repo::ids::SnapshotId;
use crate::repo::manifest::{CopyOrigin, SnapshotKind, SourceInfo};
use crate::repo::signing::SigningKey;
use crate::repo::Repository;
use crate::source::{self, StagedImage};
use crate::state::State;
use batch::Batch;
use pipeline::Pages;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub full: bool,
    /// Take the backup in full once the incrementals since the last full of the source in a
    /// repository stored changed pages worth this many percent of the database (`None`:
    /// never); see `chain`.
    pub full_after_changed: Option<u32>,
    pub tags: Vec<String>,
    /// Source name in the manifest; defaults to the file stem.
    pub name: Option<String>,
    /// How long to wait for the source's lock, which check to run on its image, and its
    /// business description.
    pub read: source::ReadOptions,
    /// Record no invoice facts even when the policy describes the source's invoices (an undo
    /// point taken before a repair, restored whole if ever).
    pub without_facts: bool,
    /// Recipients to encrypt to besides the repository's own.
    pub extra_recipients: Vec<String>,
    pub accept_recipients: bool,
    pub compression_level: i32,
    /// Where a rollback-journal database's pages are staged so writers wait only for the
    /// read (see `source::read_image`); `None` streams them under the lock.
    pub spill_dir: Option<std::path::PathBuf>,
    /// For copies between repositories: the snapshot records this source (name, path, host)
    /// and origin instead of the local file it was read from.
    pub origin: Option<(SourceInfo, CopyOrigin)>,
    /// Signs the manifest (and is trusted for this repository in the state); without one
    /// the snapshot is unsigned.
    pub signing_key: Option<Arc<SigningKey>>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            full: false,
            full_after_changed: Some(chain::DEFAULT_FULL_AFTER_CHANGED),
            tags: Vec::new(),
            name: None,
            read: source::ReadOptions::default(),
            without_facts: false,
            extra_recipients: Vec::new(),
            accept_recipients: false,
            compression_level: 3,
            spill_dir: None,
            origin: None,
            signing_key: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub snapshot_id: SnapshotId,
    pub target: String,
    pub kind: SnapshotKind,
    pub parent: Option<SnapshotId>,
    pub page_size: u32,
    pub page_count: u64,
    pub database_bytes: u64,
    pub pages_new: u64,
    pub bytes_new: u64,
    pub bytes_stored: u64,
    pub duration_ms: u64,
    pub read_lock_ms: u64,
    /// SQLite's check of the source's image, as recorded in the manifest.
    pub source_check: Option<SourceCheck>,
    /// Why the backup was taken in full although no full was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_because: Option<String>,
    /// What went less than perfectly without failing the backup.
    pub warnings: Vec<String>,
}

pub fn backup(
    path: &Path,
    repo: &Repository,
    state: &mut State,
    opts: &BackupOptions,
) -> Result<BackupReport> {
    let pages = Pages::Live {
        path,
        read: &opts.read,
        spill_dir: opts.spill_dir.as_deref(),
    };
    backup_pages(path, pages, repo, state, opts)
}

/// Backs up an image already staged by `source::stage_image` (several targets, one read).
pub fn backup_staged(
    path: &Path,
    staged: &StagedImage,
    repo: &Repository,
    state: &mut State,
    opts: &BackupOptions,
) -> Result<BackupReport> {
    backup_pages(path, Pages::Staged(staged), repo, state, opts)
}

/// One source into one repository: a batch of one.
fn backup_pages(
    path: &Path,
    pages: Pages,
    repo: &Repository,
    state: &mut State,
    opts: &BackupOptions,
) -> Result<BackupReport> {
    // Refused before anything is written, the state's pins included.
    if opts.origin.is_none() && opts.name.is_none() {
        refuse_a_shared_default_name(repo, state, &local_source(path, None))?;
    }
    let mut batch = Batch::open(repo, state, opts, 1, opts.full)?;
    let source = batch::Source {
        path,
        pages,
        opts,
        tag: (),
    };
    match batch.back_up(vec![source], state).pop() {
        Some(((), report)) => report,
        None => Err(Error::Internal("a backup committed nothing".into())),
    }
}

/// A name taken from the file name is refused when this host already stored another file under
/// it in the repository: `--source NAME` would then mix the two databases' snapshots. Nothing
/// is written before this check.
fn refuse_a_shared_default_name(
    repo: &Repository,
    state: &State,
    source: &SourceInfo,
) -> Result<()> {
    let Some(other) = state.other_source_named(&repo.config().id, &source.name, &source.path)?
    else {
        return Ok(());
    };
    Err(Error::Usage(
        format!(
            "repository {} already holds snapshots of {other} under the source name {}, which {} would also get from its file name",
            repo.location(),
            source.name,
            source.path
        )
        .hinted(Hint::SourceName),
    ))
}

/// The source as this host names it: `name` or the file stem, the absolute path, the host.
fn local_source(path: &Path, name: Option<&str>) -> SourceInfo {
    let name = name.map(str::to_string).unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "database".into())
    });
    SourceInfo {
        name,
        path: std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string(),
        host: crate::host::name(),
    }
}
