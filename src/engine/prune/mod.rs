//! `ivault prune`: deletes what no snapshot uses any more, in two phases so that a backup
//! running on another host meanwhile never loses a blob it builds on (docs/FORMAT.md,
//! "Pruning"). A run marks what has become unused (repacking mostly unused packs first), and
//! deletes what an earlier run marked once the grace period is over and it is still unused:
//! a new index first, then the old indexes, then the packs. Killed at any point, it leaves a
//! repository that checks clean. Objects that storage refuses to delete (S3 Object Lock) stay
//! where they are and are reported.

mod plan;
mod repack;

use crate::engine::context::{recorded, Context};
use crate::error::{Error, Hint, Hinted, Result};
use crate::failpoint;
use crate::hash::Hash;
use crate::repo::doomed::Mark;
use crate::repo::ids::{IndexId, ObjectId, PackId, SnapshotId};
use crate::repo::index::{self, Index};
use crate::repo::keys::Keyring;
use crate::repo::lock::RepoLock;
use crate::repo::{codec, reader, tree, Repository};
use chrono::{DateTime, TimeDelta, Utc};
use plan::{Holdings, Settings};
use serde::Serialize;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

/// Default grace period: a day, longer than any nightly backup.
pub const DEFAULT_GRACE: TimeDelta = TimeDelta::hours(24);
/// Default share of a pack that may be unused before it is repacked.
pub const DEFAULT_REPACK_UNUSED_ABOVE: f64 = 0.5;

pub struct PruneJob {
    pub repo: String,
    pub identity: Option<PathBuf>,
    pub grace: TimeDelta,
    pub repack_unused_above: f64,
    /// Decide and report; write and delete nothing.
    pub dry_run: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    pub repository: String,
    pub dry_run: bool,
    pub snapshots: usize,
    /// Packs stored before the prune.
    pub packs: usize,
    /// Packs marked for deletion by this run (unused, or repacked).
    pub marked: usize,
    /// Packs whose used blobs were copied to new packs, and what that stored.
    pub repacked: usize,
    pub repack_packs_written: usize,
    pub repack_bytes_written: u64,
    /// Marked packs that a snapshot uses again, or that are gone: their marks were removed.
    pub unmarked: usize,
    pub packs_deleted: usize,
    pub bytes_freed: u64,
    pub indexes_written: usize,
    pub indexes_deleted: usize,
    /// Marked packs still in their grace period, and when the first of them may go.
    pub waiting: usize,
    pub next_deletion: Option<DateTime<Utc>>,
    /// Objects storage would not delete (e.g. still under S3 Object Lock), with why; they are
    /// tried again by the next prune.
    pub left_in_place: Vec<LeftInPlace>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeftInPlace {
    pub object: String,
    pub why: String,
}

pub fn run(ctx: &Context, job: &PruneJob) -> Result<PruneReport> {
    if !(0.0..=1.0).contains(&job.repack_unused_above) {
        return Err(Error::Usage(
            "the repack threshold must be a percentage from 0 to 100".into(),
        ));
    }
    let (repo, keys) = ctx.open_repo_with_key(&job.repo, job.identity.as_deref())?;
    let mut state = ctx.state()?;
    let location = repo.location();
    let summary = |r: &PruneReport| (0, r.repack_bytes_written, None);
    recorded(&mut state, "prune", None, Some(&location), summary, |_| {
        let settings = Settings {
            now: Utc::now(),
            grace: job.grace,
            repack_unused_above: job.repack_unused_above,
        };
        prune(&repo, &keys, &settings, job.dry_run)
    })
}

pub fn prune(
    repo: &Repository,
    keys: &Keyring,
    settings: &Settings,
    dry_run: bool,
) -> Result<PruneReport> {
    let _lock = if dry_run {
        None
    } else {
        Some(RepoLock::acquire(repo)?)
    };
    let (holdings, index, snapshots) = take_holdings(repo, keys, settings.now)?;
    let plan = plan::plan(&holdings, settings);
    if plan.missing_blobs > 0 {
        return Err(Error::Integrity(
            format!(
                "{} blobs that snapshots use are in no pack of {}, so prune deletes nothing",
                plan.missing_blobs,
                repo.location()
            )
            .hinted(Hint::CheckStructure),
        ));
    }
    let mut report = PruneReport {
        repository: repo.location(),
        dry_run,
        snapshots,
        packs: holdings.stored.len(),
        marked: plan.mark.len() + plan.repack.len(),
        repacked: plan.repack.len(),
        unmarked: plan.unmark.len(),
        waiting: plan.waiting.len(),
        next_deletion: plan.waiting.first().map(|(_, t)| *t),
        ..PruneReport::default()
    };
    if dry_run {
        report.packs_deleted = plan.delete.len();
        report.bytes_freed = plan
            .delete
            .iter()
            .filter_map(|p| holdings.stored.get(p))
            .sum();
        report.indexes_deleted = plan.rewrite.len();
        report.indexes_written = usize::from(!plan.kept_records.is_empty());
        return Ok(report);
    }

    // Phase one: copy what mostly unused packs still hold, then mark.
    if !plan.copy_blobs.is_empty() {
        let stored = repack::copy_blobs(repo, keys, &index, plan.copy_blobs.iter().copied())?;
        report.repack_packs_written = stored.packs;
        report.repack_bytes_written = stored.bytes;
        report.indexes_written += usize::from(stored.packs > 0);
        failpoint::hit("prune-repacked");
    }
    for id in holdings.unreadable_marks.iter().chain(&plan.unmark) {
        if let Err(e) = repo.unmark_doomed(id) {
            tracing::warn!("could not remove the mark of pack {id}: {e}");
        }
    }
    let mark = Mark {
        time: settings.now,
        host: crate::host::name(),
    };
    let remark = holdings
        .unreadable_marks
        .iter()
        .filter(|id| !plan.unmark.contains(*id));
    for id in plan.mark.iter().chain(&plan.repack).chain(remark) {
        repo.mark_doomed(id, &mark)?;
        failpoint::hit("prune-marked");
    }

    // Phase two: delete what earlier runs marked. The new index goes first, so that no index
    // ever lists a pack that is gone.
    if plan.delete.is_empty() {
        return Ok(report);
    }
    if !plan.kept_records.is_empty() {
        let sealer = codec::Sealer::new(&repo.config().recipients)?;
        index::store(repo, &sealer, &plan.kept_records)?;
        report.indexes_written += 1;
        failpoint::hit("prune-index-written");
    }
    let mut still_listed: HashSet<PackId> = HashSet::new();
    for (id, records) in &holdings.indexes {
        if !plan.rewrite.contains(id) {
            continue;
        }
        match repo.storage().delete(&id.key()) {
            Ok(()) => {
                report.indexes_deleted += 1;
                failpoint::hit("prune-index-deleted");
            }
            Err(e) => {
                still_listed.extend(records.iter().map(|r| r.id));
                report.left_in_place.push(LeftInPlace {
                    object: id.key(),
                    why: e.to_string(),
                });
            }
        }
    }
    for id in &plan.delete {
        if still_listed.contains(id) {
            report.left_in_place.push(LeftInPlace {
                object: id.key(),
                why: "an index that lists it could not be deleted".into(),
            });
            continue;
        }
        match repo.storage().delete(&id.key()) {
            Ok(()) => {
                report.packs_deleted += 1;
                report.bytes_freed += holdings.stored.get(id).copied().unwrap_or(0);
                failpoint::hit("prune-pack-deleted");
                if let Err(e) = repo.unmark_doomed(id) {
                    tracing::warn!("could not remove the mark of deleted pack {id}: {e}");
                }
            }
            Err(e) => report.left_in_place.push(LeftInPlace {
                object: id.key(),
                why: e.to_string(),
            }),
        }
    }
    Ok(report)
}

/// Lists and reads everything a prune decides on: packs, every index, every manifest and the
/// tree segments they reach. Anything unreadable stops the prune: what it lists or uses is
/// unknown, so nothing could be deleted safely.
fn take_holdings(
    repo: &Repository,
    keys: &Keyring,
    now: DateTime<Utc>,
) -> Result<(Holdings, Index, usize)> {
    let refuse = |what: String| {
        Error::Integrity(
            format!("{what}, so prune cannot tell what is still used and deletes nothing")
                .hinted(Hint::CheckStructure),
        )
    };
    // Manifests first, then indexes, then packs: a backup writes them in the opposite order,
    // so everything a listed manifest needs is in the later listings, even while backups run.
    let snapshot_ids = repo.list::<SnapshotId>()?;
    let mut segments: HashSet<Hash> = HashSet::new();
    for (id, _) in &snapshot_ids {
        let m = repo
            .load_manifest(keys, id)
            .map_err(|e| refuse(format!("snapshot {id} cannot be read ({})", e.message())))?;
        segments.extend(tree::segment_ids(id, &m)?);
    }
    let mut h = Holdings::default();
    let mut index = Index::default();
    for (id, _) in repo.list::<IndexId>()? {
        let records = repo
            .read_index(keys, &id)
            .map_err(|e| refuse(format!("index {id} cannot be read ({})", e.message())))?;
        records.iter().for_each(|r| index.add(r));
        h.indexes.push((id, records));
    }
    index.seal();
    h.stored = repo.list::<PackId>()?.into_iter().collect();
    let used = Mutex::new(segments.clone());
    let mut damaged = Vec::new();
    reader::read_blobs(repo, keys, &index, segments, 2, &mut damaged, |blobs| {
        let mut used = used.lock().unwrap_or_else(|p| p.into_inner());
        for (_, segment) in blobs {
            used.extend(tree::page_ids(segment));
        }
        Ok(())
    })
    .map_err(|e| {
        refuse(format!(
            "a snapshot's page list cannot be read ({})",
            e.message()
        ))
    })?;
    h.used = used.into_inner().unwrap_or_else(|p| p.into_inner());
    for id in repo.doomed_packs()? {
        // A mark that cannot be read counts from now: never earlier than it should.
        let time = match repo.doomed_mark(&id) {
            Ok(Some(m)) => m.time.min(now),
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("{}; marking the pack again from now", e.message());
                h.unreadable_marks.push(id);
                now
            }
        };
        h.marks.insert(id, time);
    }
    Ok((h, index, snapshot_ids.len()))
}
