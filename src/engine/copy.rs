//! Copy: snapshots from one repository into another without reading the source database again
//! (to seed a new off-site bucket from the local repository, say). Each snapshot is rebuilt
//! from the source repository into an unlinked local file, every blob checked against its id
//! and the whole image against the manifest's SHA-256, and only then backed up into the
//! destination, encrypted to the destination's recipients and deduplicated against what it
//! already holds. The copy keeps the snapshot's time, source and tags and records where it
//! came from.

use crate::engine::backup::{self, BackupOptions};
use crate::engine::context::{recorded, remember_damage, Context};
use crate::engine::restore;
use crate::error::{Error, Hint, Hinted, Result};
use crate::hash::parse_hex;
use crate::repo::catalog::Trust;
use crate::repo::ids::SnapshotId;
use crate::repo::keys::Keyring;
use crate::repo::manifest::{CopyOrigin, Manifest};
use crate::repo::signing::SigningKey;
use crate::repo::Repository;
use crate::source::{self, SourceImage, StagedImage};
use crate::state::State;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Snapshot ids, unique prefixes or `latest`; empty copies every snapshot.
    pub snapshots: Vec<String>,
    /// Only snapshots of this source (name or path).
    pub source: Option<String>,
    /// Where images are rebuilt (in unlinked files, so nothing is left behind).
    pub scratch_dir: PathBuf,
    pub accept_recipients: bool,
    /// Which snapshots of the source repository are authentic (filled in by `run`).
    pub trust: Trust,
    /// Signs the copies (filled in by `run`); without one they are unsigned.
    pub signing_key: Option<Arc<SigningKey>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopiedSnapshot {
    pub from_snapshot: SnapshotId,
    pub to_snapshot: SnapshotId,
    /// The destination already held this snapshot, so nothing was written.
    pub already_present: bool,
    pub source: String,
    pub time: String,
    pub bytes_read: u64,
    pub bytes_stored: u64,
    /// What reading the source repository had to work around.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    pub from: String,
    pub to: String,
    pub snapshots: Vec<CopiedSnapshot>,
    /// Snapshots left out because they could not be read or are not authentic.
    pub warnings: Vec<String>,
}

/// What identifies one snapshot across repositories (ids differ, since each repository
/// encrypts to its own recipients): source path, host, time and database SHA-256.
type Fingerprint = (String, String, String, String);

fn fingerprint(m: &Manifest) -> Fingerprint {
    (
        m.source.path.clone(),
        m.source.host.clone(),
        m.time.clone(),
        m.database_sha256.clone(),
    )
}

pub struct CopyJob {
    /// The repository to copy from; reading it needs `identity` (or the policy's).
    pub from: String,
    pub identity: Option<PathBuf>,
    /// The repository to copy into; it needs only its recipients.
    pub to: String,
    /// `scratch_dir` is filled in from the context (the state directory).
    pub options: CopyOptions,
    /// Copy snapshots no trusted signer signed, too.
    pub allow_unverified: bool,
}

/// Opens both repositories, copies, and records the job in the history.
pub fn run(ctx: &Context, job: &CopyJob) -> Result<CopyReport> {
    ctx.targets.require_s3_for_lock(&[&job.to])?;
    let (src, keys) = ctx.open_repo_with_key(&job.from, job.identity.as_deref())?;
    let dst = ctx.open_repo_for_writing(&job.to)?;
    let mut state = ctx.state()?;
    let opts = CopyOptions {
        scratch_dir: ctx.state_dir.clone(),
        trust: ctx.trust(&src, job.allow_unverified)?,
        signing_key: Some(ctx.signing_key()?),
        ..job.options.clone()
    };
    let summary = |r: &CopyReport| {
        let read = r.snapshots.iter().map(|c| c.bytes_read).sum();
        let stored = r.snapshots.iter().map(|c| c.bytes_stored).sum();
        (read, stored, None)
    };
    let (from, to) = (src.location(), dst.location());
    recorded(
        &mut state,
        "copy",
        Some(&from),
        Some(&to),
        summary,
        |state| copy(&src, &keys, &dst, state, &opts),
    )
}

pub fn copy(
    from: &Repository,
    keys: &Keyring,
    to: &Repository,
    state: &mut State,
    opts: &CopyOptions,
) -> Result<CopyReport> {
    if from.config().id == to.config().id {
        return Err(Error::Usage(
            format!(
                "{} and {} are the same repository; copy between two different ones",
                from.location(),
                to.location()
            )
            .into(),
        ));
    }
    let (selected, warnings) = select(from, keys, opts)?;
    let present = present_in(to, keys)?;
    let to_ids: HashSet<SnapshotId> = to
        .list::<SnapshotId>()?
        .into_iter()
        .map(|(id, _)| id)
        .collect();

    let mut report = CopyReport {
        from: from.location(),
        to: to.location(),
        snapshots: Vec::new(),
        warnings,
    };
    for (id, m) in selected {
        let earlier = state
            .copied_snapshot(&to.config().id, &id.to_string())?
            .and_then(|copy| SnapshotId::parse(&copy))
            .filter(|copy| to_ids.contains(copy))
            .or_else(|| {
                present
                    .iter()
                    .find(|(_, f)| *f == fingerprint(&m))
                    .map(|(c, _)| *c)
            });
        let done = match earlier {
            Some(to_snapshot) => CopiedSnapshot {
                from_snapshot: id,
                to_snapshot,
                already_present: true,
                source: m.source.name.clone(),
                time: m.time.clone(),
                bytes_read: 0,
                bytes_stored: 0,
                warnings: Vec::new(),
            },
            None => copy_one(from, keys, to, state, &id, &m, opts)?,
        };
        report.snapshots.push(done);
    }
    Ok(report)
}

/// A snapshot chosen for copying.
type Selected = (SnapshotId, Manifest);

/// The snapshots to copy, oldest first, so each copy's parent is the one copied before it;
/// and why others were left out.
fn select(
    from: &Repository,
    keys: &Keyring,
    opts: &CopyOptions,
) -> Result<(Vec<Selected>, Vec<String>)> {
    let mut out: Vec<Selected> = Vec::new();
    let mut warnings = Vec::new();
    if opts.snapshots.is_empty() {
        let catalog = from.catalog(keys, opts.source.as_deref(), &opts.trust)?;
        warnings = catalog.warnings();
        out.extend(
            catalog
                .accepted(&opts.trust)
                .map(|e| (e.id, e.manifest.clone())),
        );
        for e in &catalog.entries {
            if !out.iter().any(|(id, _)| *id == e.id) {
                warnings.push(format!(
                    "snapshot {} was not copied: it is not authenticated ({})",
                    e.id,
                    e.verdict.label()
                ));
            }
        }
        if out.is_empty() {
            return Err(Error::Usage(
                format!(
                    "{} holds no snapshot{} to copy",
                    from.location(),
                    opts.source
                        .as_deref()
                        .map(|s| format!(" of {s}"))
                        .unwrap_or_default()
                )
                .into(),
            ));
        }
    } else {
        for spec in &opts.snapshots {
            let picked = from.resolve_snapshot(keys, spec, opts.source.as_deref(), &opts.trust)?;
            warnings.extend(picked.warnings);
            if !out.iter().any(|(have, _)| *have == picked.id) {
                out.push((picked.id, picked.manifest));
            }
        }
    }
    out.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    Ok((out, warnings))
}

/// Fingerprints of the destination's snapshots that this identity can read. A destination
/// encrypted to other keys reveals nothing; then only the local record of earlier copies
/// keeps a snapshot from being copied twice.
fn present_in(to: &Repository, keys: &Keyring) -> Result<Vec<(SnapshotId, Fingerprint)>> {
    let mut out = Vec::new();
    for (id, _) in to.list::<SnapshotId>()? {
        match to.load_manifest(keys, &id) {
            Ok(m) => out.push((id, fingerprint(&m))),
            Err(Error::Key(_)) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn copy_one(
    from: &Repository,
    keys: &Keyring,
    to: &Repository,
    state: &mut State,
    id: &SnapshotId,
    m: &Manifest,
    opts: &CopyOptions,
) -> Result<CopiedSnapshot> {
    let scratch = source::spill_file(&opts.scratch_dir)?;
    let scratch_error = |e: std::io::Error| {
        Error::Internal(
            format!(
                "cannot write the copy's scratch file in {}: {e}",
                opts.scratch_dir.display()
            )
            .hinted(Hint::StateDirectory),
        )
    };
    let mut damaged = Vec::new();
    let read = restore::rebuild_into(
        from,
        keys,
        (id, m),
        (&scratch, &scratch_error, &opts.scratch_dir),
        true,
        &mut damaged,
    );
    let unrecorded = remember_damage(state, from, &damaged);
    let rebuilt = read?;
    let mut read = rebuilt.read;
    read.warnings.extend(unrecorded);
    let sha256 = match rebuilt.sha256 {
        Some(h) => h,
        None => restore::file_sha256(&scratch, &scratch_error)?,
    };
    restore::verify_sha256(&sha256, m, id)?;
    let sha256 = parse_hex(&m.database_sha256)
        .ok_or_else(|| Error::Integrity(format!("snapshot {id} has a malformed SHA-256").into()))?;
    let time = chrono::DateTime::parse_from_rfc3339(&m.time)
        .map_err(|_| {
            Error::Integrity(format!("snapshot {id} has a malformed time {:?}", m.time).into())
        })?
        .with_timezone(&chrono::Utc);
    let image = SourceImage {
        page_size: m.page_size,
        page_count: m.page_count,
        journal_mode: m.journal_mode.clone(),
        tables: m.tables.clone(),
        sha256,
        time,
        read_lock: Duration::from_millis(m.stats.read_lock_ms),
        check: m.source_check.clone(),
        business: m.business.clone(),
        warnings: Vec::new(),
    };
    let staged = StagedImage::from_file(scratch, image);
    // The restore's buffers are freed; the backup's must not come on top of them.
    crate::host::trim_allocator();
    let backup_opts = BackupOptions {
        tags: m.tags.clone(),
        accept_recipients: opts.accept_recipients,
        signing_key: opts.signing_key.clone(),
        spill_dir: Some(opts.scratch_dir.clone()),
        origin: Some((
            m.source.clone(),
            CopyOrigin {
                repository: from.config().id.clone(),
                snapshot: id.to_string(),
            },
        )),
        ..BackupOptions::default()
    };
    let path = Path::new(&m.source.path);
    let done = backup::backup_staged(path, &staged, to, state, &backup_opts)?;
    state.record_copy(
        &to.config().id,
        &id.to_string(),
        &done.snapshot_id.to_string(),
    )?;
    Ok(CopiedSnapshot {
        from_snapshot: *id,
        to_snapshot: done.snapshot_id,
        already_present: false,
        source: m.source.name.clone(),
        time: m.time.clone(),
        bytes_read: read.bytes,
        bytes_stored: done.bytes_stored,
        warnings: read.warnings,
    })
}
