//! Backup: one consistent read of the source, streamed through hashing and deduplication and
//! compression on every core (`pipeline`), into the repository's writer, which stores packs,
//! then the index that lists them, then the manifest. `job` runs one source to several
//! targets and records each in the job history.

mod job;
mod pipeline;

pub use crate::source::{CheckLevel, ReadOptions};
pub use job::{run, BackupJob, BackupRun, TargetOutcome};

use crate::error::{Error, Hint, Hinted, Result};
use crate::facts::SourceCheck;
use crate::hash::Hash;
use crate::repo::ids::{ObjectId, PackId, SnapshotId};
use crate::repo::index::{self, PackRecord};
use crate::repo::manifest::{BackupStats, CopyOrigin, Manifest, SnapshotKind, SourceInfo};
use crate::repo::signing::SigningKey;
use crate::repo::tree;
use crate::repo::writer::SnapshotWriter;
use crate::repo::{config::FORMAT_VERSION, storage_error, Repository};
use crate::source::{self, StagedImage};
use crate::state::{CachedPack, State};
use pipeline::Pages;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Unfinished writes older than this are leftovers of a killed run.
const LEFTOVER_AGE: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub full: bool,
    pub tags: Vec<String>,
    /// Source name in the manifest; defaults to the file stem.
    pub name: Option<String>,
    /// How long to wait for the source's lock, which check to run on its image, and its
    /// business description.
    pub read: source::ReadOptions,
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
            tags: Vec::new(),
            name: None,
            read: source::ReadOptions::default(),
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

/// What this host knows of the repository before it writes: whom to encrypt to, which blobs
/// it holds, and which snapshot of this source came last.
struct Plan {
    recipients: Vec<String>,
    known: HashSet<Hash>,
    parent: Option<SnapshotId>,
    kind: SnapshotKind,
    warnings: Vec<String>,
    /// Complete packs an interrupted run stored without indexing them, indexed now.
    adopted: Vec<PackRecord>,
}

fn backup_pages(
    path: &Path,
    pages: Pages,
    repo: &Repository,
    state: &mut State,
    opts: &BackupOptions,
) -> Result<BackupReport> {
    let started = Instant::now();
    let (source, copy_of) = match &opts.origin {
        Some((info, origin)) => (info.clone(), Some(origin.clone())),
        None => (local_source(path, opts.name.as_deref()), None),
    };
    if opts.origin.is_none() && opts.name.is_none() {
        refuse_a_shared_default_name(repo, state, &source)?;
    }
    let mut plan = plan(repo, state, opts, &source.path)?;
    let repo_id = &repo.config().id;
    // Each pack is remembered as it lands, on a connection of its own (the uploads run on
    // other threads), so that a run that fails or is killed before its index leaves packs the
    // next run can index and build on.
    let side = std::sync::Mutex::new(state.reopen()?);
    let mut writer = SnapshotWriter::new(repo, &plan.recipients)?;
    writer.adopt(std::mem::take(&mut plan.adopted));
    writer.on_pack_stored(Box::new(|p: &PackRecord| {
        let record = (
            p.id.to_string(),
            p.size,
            index::encode(std::slice::from_ref(p)),
        );
        let side = side.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = side.record_unindexed_pack(repo_id, &record) {
            tracing::warn!("{e}");
        }
    }));
    let (image, dedup) = pipeline::run(pages, plan.known, opts.compression_level, &mut writer)?;

    let cached: Vec<CachedPack> = writer
        .write_index()?
        .iter()
        .map(|p| CachedPack {
            id: p.id.to_string(),
            size: p.size,
            blobs: p
                .table
                .frames
                .iter()
                .flat_map(|f| f.blobs.iter().map(|b| b.0))
                .collect(),
        })
        .collect();
    if !cached.is_empty() {
        state.record_packs(repo_id, &cached)?;
        let indexed: Vec<String> = cached.iter().map(|p| p.id.clone()).collect();
        state.forget_unindexed_packs(repo_id, &indexed)?;
    }
    let m = Manifest {
        version: FORMAT_VERSION,
        source,
        time: image
            .time
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        kind: plan.kind,
        parent: plan.parent.map(|p| p.to_string()),
        tags: opts.tags.clone(),
        page_size: image.page_size,
        page_count: image.page_count,
        journal_mode: image.journal_mode.clone(),
        database_sha256: hex::encode(image.sha256),
        tables: image.tables.clone(),
        segment_pages: tree::SEGMENT_PAGES as u32,
        segments: dedup.segments.iter().map(hex::encode).collect(),
        stats: BackupStats {
            pages_new: dedup.pages_new,
            bytes_new: dedup.bytes_new,
            bytes_stored: writer.bytes_stored(),
            duration_ms: started.elapsed().as_millis() as u64,
            read_lock_ms: image.read_lock.as_millis() as u64,
        },
        copy_of,
        source_check: image.check.clone(),
        business: image.business.clone(),
    };
    let (snapshot_id, bytes_stored) = writer.commit(&m, opts.signing_key.as_deref())?;
    state.set_last_snapshot(repo_id, &m.source.path, &snapshot_id.to_string())?;
    state.record_source_name(repo_id, &m.source.name, &m.source.path)?;

    Ok(BackupReport {
        snapshot_id,
        target: repo.location(),
        kind: plan.kind,
        parent: plan.parent,
        page_size: image.page_size,
        page_count: image.page_count,
        database_bytes: image.page_count * image.page_size as u64,
        pages_new: dedup.pages_new,
        bytes_new: dedup.bytes_new,
        bytes_stored,
        duration_ms: started.elapsed().as_millis() as u64,
        read_lock_ms: image.read_lock.as_millis() as u64,
        source_check: image.check.clone(),
        warnings: plan.warnings.into_iter().chain(image.warnings).collect(),
    })
}

fn plan(repo: &Repository, state: &State, opts: &BackupOptions, source_key: &str) -> Result<Plan> {
    let config = repo.config();
    state.pin_recipients(
        &config.id,
        &repo.location(),
        &config.recipients,
        opts.accept_recipients,
    )?;
    if let Some(key) = &opts.signing_key {
        state.trust_signer(&config.id, &key.signer().to_string())?;
    }
    let mut warnings: Vec<String> = sweep_leftovers(repo).into_iter().collect();
    let mut recipients = config.recipients.clone();
    for r in &opts.extra_recipients {
        if !recipients.contains(r) {
            recipients.push(r.clone());
        }
    }
    // What the repository already holds, as far as this host knows without the private key:
    // packs it lists at the size they were written with and that nobody found damaged, and
    // that no prune has marked for deletion (docs/FORMAT.md, "Pruning").
    let doomed = repo.doomed_packs()?;
    let listed: HashMap<String, u64> = repo
        .list::<PackId>()?
        .into_iter()
        .filter(|(id, _)| !doomed.contains(id))
        .map(|(id, size)| (id.to_string(), size))
        .collect();
    let (mut known, adopted) = if opts.full {
        (HashSet::new(), Vec::new())
    } else {
        let known = state.known_blobs(&config.id, &listed)?;
        for note in &known.notes {
            tracing::warn!("{note}");
        }
        warnings.extend(known.notes);
        (
            known.blobs,
            unindexed_packs(state, &config.id, &listed, &mut warnings)?,
        )
    };
    for p in &adopted {
        known.extend(
            p.table
                .frames
                .iter()
                .flat_map(|f| f.blobs.iter().map(|b| b.0)),
        );
    }
    // The previous snapshot is the parent if it is still there: a listing of its own key
    // (a backup host reads no object but `config`), not of every snapshot.
    let last = state
        .last_snapshot(&config.id, source_key)?
        .and_then(|id| SnapshotId::parse(&id));
    let parent = match last {
        Some(id) => {
            let key = id.key();
            let listed = repo
                .storage()
                .list(&key)
                .map_err(|e| storage_error(&repo.location(), e))?;
            listed.iter().any(|o| o.key == key).then_some(id)
        }
        None => None,
    };
    let kind = if opts.full || known.is_empty() {
        SnapshotKind::Full
    } else {
        SnapshotKind::Incremental
    };
    Ok(Plan {
        recipients,
        known,
        parent,
        kind,
        warnings,
        adopted,
    })
}

/// The packs an interrupted run of this host stored without indexing them that the repository
/// still lists at the size they were written with; the others are forgotten.
fn unindexed_packs(
    state: &State,
    repo_id: &str,
    listed: &HashMap<String, u64>,
    warnings: &mut Vec<String>,
) -> Result<Vec<PackRecord>> {
    let (mut usable, mut gone) = (Vec::new(), Vec::new());
    for (id, size, record) in state.unindexed_packs(repo_id)? {
        let decoded = index::decode(&record).ok().and_then(|mut r| r.pop());
        match decoded {
            Some(rec) if listed.get(&id) == Some(&size) && rec.size == size => usable.push(rec),
            _ => gone.push(id),
        }
    }
    state.forget_unindexed_packs(repo_id, &gone)?;
    if !usable.is_empty() {
        warnings.push(format!(
            "{} packs an interrupted backup stored were indexed and reused",
            usable.len()
        ));
    }
    Ok(usable)
}

/// Removes what killed runs left behind (unfinished multipart uploads, temporary files).
/// Only old ones: a younger one may belong to a backup running elsewhere right now. Says
/// what it did or could not do; neither is worth failing a backup over.
fn sweep_leftovers(repo: &Repository) -> Option<String> {
    let said = match repo.storage().sweep_incomplete(LEFTOVER_AGE) {
        Ok(0) => return None,
        Ok(n) => format!(
            "removed {n} leftovers of interrupted writes from {}",
            repo.location()
        ),
        Err(e) => format!(
            "could not look for leftovers of interrupted writes in {}: {e}",
            repo.location()
        ),
    };
    tracing::info!("{said}");
    Some(said)
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
