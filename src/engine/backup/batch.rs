//! Backups of one or more sources into one repository that share what a backup does once per
//! repository: the sweep of leftovers, the listings of packs and snapshots, the known-blob set
//! loaded from the state, and the writer, so that the new pages of many small databases fill
//! the same packs and one index lists them. Each source still gets a manifest of its own,
//! written after that index. Nothing refers to a source's blobs before its manifest exists, so
//! a batch stopped at any point leaves a valid repository, and the next backup indexes and
//! reuses the packs it stored (`unindexed_packs`).

use super::chain;
use super::known::Known;
use super::pipeline::{self, Pages, SourcePages};
use super::{local_source, refuse_a_shared_default_name, BackupOptions, BackupReport};
use crate::error::Result;
use crate::repo::ids::{ObjectId, PackId, SnapshotId};
use crate::repo::index::{self, PackRecord};
use crate::repo::manifest::{BackupStats, CopyOrigin, Manifest, SnapshotKind, SourceInfo};
use crate::repo::signing::SigningKey;
use crate::repo::tree;
use crate::repo::writer::SnapshotWriter;
use crate::repo::{config::FORMAT_VERSION, storage_error, Repository};
use crate::state::{CachedPack, State};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Unfinished writes older than this are leftovers of a killed run.
const LEFTOVER_AGE: Duration = Duration::from_secs(60 * 60);

/// One source to back up, with whatever the caller needs to know it by again.
pub(super) struct Source<'a, T> {
    pub path: &'a Path,
    pub pages: Pages<'a>,
    pub opts: &'a BackupOptions,
    pub tag: T,
}

/// What a backup adds to its chain's count of changed page bytes: the count before it, and
/// why it is a full when it turned into one.
type Chain = (u64, Option<String>);

/// The size of the database a source's pages come from, as far as known before reading it.
fn database_bytes<T>(s: &Source<'_, T>) -> u64 {
    match &s.pages {
        Pages::Staged(img) => img.image.page_count * img.image.page_size as u64,
        Pages::Live { .. } => std::fs::metadata(s.path).map_or(0, |m| m.len()),
    }
}

/// A source's description in its manifest, where it was copied from, its parent, and where
/// it stands in its chain.
struct Planned {
    source: SourceInfo,
    copy_of: Option<CopyOrigin>,
    parent: Option<SnapshotId>,
    /// Page bytes the incrementals since the last full stored.
    changed_since_full: u64,
    full: bool,
    /// Why it is full although not asked to be.
    full_because: Option<String>,
}

pub(super) struct Batch<'r> {
    repo: &'r Repository,
    writer: SnapshotWriter<'r>,
    /// Blobs the repository holds or this batch stored, as far as this host knows.
    known: Known,
    /// The repository's snapshots, listed once for a batch of many sources (a single backup
    /// lists only its parent's key).
    snapshots: Option<HashSet<SnapshotId>>,
    /// What the batch's planning found worth saying; given to the first report.
    warnings: Vec<String>,
    signing_key: Option<Arc<SigningKey>>,
    /// `writer.bytes_stored()` after the last commit.
    committed_bytes: u64,
}

impl<'r> Batch<'r> {
    /// Plans backups of `sources` sources into `repo`: whom to encrypt to, what the repository
    /// already holds (nothing, when every source is backed up `full`), and packs an interrupted
    /// run left unindexed. `opts` gives the recipients and signing key of the whole batch.
    pub fn open(
        repo: &'r Repository,
        state: &State,
        opts: &BackupOptions,
        sources: usize,
        all_full: bool,
    ) -> Result<Self> {
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
        // The known blobs' lists go beside the staged pages; a library caller that names no
        // such place gets the system's temporary directory.
        let scratch = opts.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
        let (known, adopted) = if all_full {
            (Known::empty(&scratch), Vec::new())
        } else {
            known_and_adopted(repo, state, &scratch, &mut warnings)?
        };
        let snapshots = if sources > 1 {
            let listed = repo.list::<SnapshotId>()?;
            Some(listed.into_iter().map(|(id, _)| id).collect())
        } else {
            None
        };
        // Each pack is remembered as it lands, on a connection of its own (the uploads run on
        // other threads), so that a run that fails or is killed before its index leaves packs
        // the next run can index and build on.
        let side = Mutex::new(state.reopen()?);
        let repo_id = config.id.clone();
        let mut writer = SnapshotWriter::new(repo, &recipients)?;
        writer.spill_records_to(&scratch);
        writer.adopt(adopted)?;
        writer.on_pack_stored(Box::new(move |p: &PackRecord| {
            let record = (
                p.id.to_string(),
                p.size,
                index::encode(std::slice::from_ref(p)),
            );
            let side = side.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = side.record_unindexed_pack(&repo_id, &record) {
                tracing::warn!("{e}");
            }
        }));
        Ok(Batch {
            repo,
            writer,
            known,
            snapshots,
            warnings,
            signing_key: opts.signing_key.clone(),
            committed_bytes: 0,
        })
    }

    /// Backs up `sources` one after another through the same pipeline (see `pipeline`), then
    /// writes the index of their packs and their manifests, and returns how each ended, by
    /// its tag. A source that fails does not stop the others; a failure to store fails every
    /// source of the call.
    pub fn back_up<T>(
        &mut self,
        sources: Vec<Source<'_, T>>,
        state: &mut State,
    ) -> Vec<(T, Result<BackupReport>)> {
        let started = Instant::now();
        let mut out = Vec::new();
        let mut planned = Vec::new();
        let mut feeds = Vec::new();
        for s in sources {
            match self.plan(&s, state) {
                Ok(p) => {
                    feeds.push(SourcePages {
                        pages: s.pages,
                        full: p.full,
                    });
                    planned.push((s.tag, s.opts, p));
                }
                Err(e) => out.push((s.tag, Err(e))),
            }
        }
        let level = planned.first().map_or(3, |(_, o, _)| o.compression_level);
        let t = Instant::now();
        let planning = t - started;
        let results = pipeline::run(feeds, &mut self.known, level, &mut self.writer);
        let storing = t.elapsed();
        let mut pending = Vec::new();
        for ((tag, opts, planned), result) in planned.into_iter().zip(results) {
            let Planned {
                source,
                copy_of,
                parent,
                changed_since_full,
                full: _,
                full_because,
            } = planned;
            let (image, dedup) = match result {
                Ok(done) => done,
                Err(e) => {
                    out.push((tag, Err(e)));
                    continue;
                }
            };
            let manifest = Manifest {
                version: FORMAT_VERSION,
                source,
                time: image
                    .time
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                kind: if dedup.from_nothing {
                    SnapshotKind::Full
                } else {
                    SnapshotKind::Incremental
                },
                parent: parent.map(|p| p.to_string()),
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
                    bytes_stored: 0,
                    duration_ms: 0,
                    read_lock_ms: image.read_lock.as_millis() as u64,
                },
                copy_of,
                source_check: image.check.clone(),
                business: image.business.clone(),
            };
            let mut warnings = std::mem::take(&mut self.warnings);
            warnings.extend(image.warnings);
            let chain = (changed_since_full, full_because);
            pending.push((tag, manifest, warnings, dedup.read_time, chain));
        }
        let t = Instant::now();
        let count = pending.len();
        out.extend(self.commit(state, pending));
        tracing::debug!(
            "{count} sources planned in {planning:?}, stored in {storing:?}, committed in {:?}",
            t.elapsed()
        );
        out
    }

    /// What a source's manifest says of where it comes from, and its parent; or why it is not
    /// backed up.
    fn plan<T>(&mut self, s: &Source<'_, T>, state: &State) -> Result<Planned> {
        let (source, copy_of) = match &s.opts.origin {
            Some((info, origin)) => (info.clone(), Some(origin.clone())),
            None => (local_source(s.path, s.opts.name.as_deref()), None),
        };
        if s.opts.origin.is_none() && s.opts.name.is_none() {
            refuse_a_shared_default_name(self.repo, state, &source)?;
        }
        let parent = self.parent(state, &source.path)?;
        let changed_since_full = match parent {
            Some(_) => state.changed_since_full(&self.repo.config().id, &source.path)?,
            None => 0,
        };
        let full_because = match (s.opts.full, parent) {
            (false, Some(_)) => chain::full_because(
                changed_since_full,
                database_bytes(s),
                s.opts.full_after_changed,
            ),
            _ => None,
        };
        if let Some(why) = &full_because {
            tracing::info!("{}: {why}", source.path);
        }
        Ok(Planned {
            full: s.opts.full || full_because.is_some(),
            source,
            copy_of,
            parent,
            changed_since_full,
            full_because,
        })
    }

    /// Writes the index of the packs stored so far, then the manifests, and returns how each
    /// source ended.
    fn commit<T>(
        &mut self,
        state: &mut State,
        pending: Vec<(T, Manifest, Vec<String>, Duration, Chain)>,
    ) -> Vec<(T, Result<BackupReport>)> {
        let started = Instant::now();
        if let Err(e) = self.write_index(state) {
            return pending.into_iter().map(|p| (p.0, Err(e.clone()))).collect();
        }
        let weights: Vec<u64> = pending.iter().map(|p| p.1.stats.bytes_new).collect();
        let shares = shares(self.writer.bytes_stored() - self.committed_bytes, &weights);
        let mut out = Vec::new();
        let written = state.in_transaction(|state| {
            for ((tag, m, warnings, read_time, chain), share) in pending.into_iter().zip(shares) {
                let busy = read_time + started.elapsed();
                let report = self.write_manifest(state, (m, chain), warnings, share, busy);
                out.push((tag, report));
            }
        });
        self.committed_bytes = self.writer.bytes_stored();
        if let Err(e) = written {
            // The snapshots are in the repository; this host will not build on them.
            tracing::warn!("{e}");
        }
        out
    }

    /// Stores the open packs and writes their index, letting the state's cache know each
    /// index object's packs once it is stored.
    fn write_index(&mut self, state: &mut State) -> Result<()> {
        let repo_id = self.repo.config().id.clone();
        self.writer.write_index(&mut |packs| {
            let cached: Vec<CachedPack> = packs
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
            state.record_packs(&repo_id, &cached)?;
            let indexed: Vec<String> = cached.iter().map(|p| p.id.clone()).collect();
            state.forget_unindexed_packs(&repo_id, &indexed)
        })?;
        Ok(())
    }

    fn write_manifest(
        &mut self,
        state: &State,
        (mut m, (changed_since_full, full_because)): (Manifest, Chain),
        warnings: Vec<String>,
        share: u64,
        busy: Duration,
    ) -> Result<BackupReport> {
        m.stats.bytes_stored = share;
        m.stats.duration_ms = busy.as_millis() as u64;
        let (snapshot_id, manifest_bytes) = self
            .writer
            .write_manifest(&m, self.signing_key.as_deref())?;
        let repo_id = &self.repo.config().id;
        let full = m.kind == SnapshotKind::Full;
        let changed = chain::changed_after(full, changed_since_full, m.stats.bytes_new);
        state.set_last_snapshot(repo_id, &m.source.path, &snapshot_id.to_string(), changed)?;
        state.record_source_name(repo_id, &m.source.name, &m.source.path)?;
        if let Some(s) = &mut self.snapshots {
            s.insert(snapshot_id);
        }
        Ok(BackupReport {
            snapshot_id,
            target: self.repo.location(),
            kind: m.kind,
            parent: m.parent.as_deref().and_then(SnapshotId::parse),
            page_size: m.page_size,
            page_count: m.page_count,
            database_bytes: m.page_count * m.page_size as u64,
            pages_new: m.stats.pages_new,
            bytes_new: m.stats.bytes_new,
            bytes_stored: share + manifest_bytes,
            duration_ms: m.stats.duration_ms,
            read_lock_ms: m.stats.read_lock_ms,
            source_check: m.source_check,
            full_because: full_because.filter(|_| full),
            warnings,
        })
    }

    /// The last snapshot this host took of `source_key`, if the repository still has it.
    fn parent(&mut self, state: &State, source_key: &str) -> Result<Option<SnapshotId>> {
        let last = state
            .last_snapshot(&self.repo.config().id, source_key)?
            .and_then(|id| SnapshotId::parse(&id));
        let Some(id) = last else {
            return Ok(None);
        };
        if let Some(listed) = &self.snapshots {
            return Ok(listed.contains(&id).then_some(id));
        }
        // A listing of its own key (a backup host reads no object but `config`), not of every
        // snapshot.
        let key = id.key();
        let listed = self
            .repo
            .storage()
            .list(&key)
            .map_err(|e| storage_error(&self.repo.location(), e))?;
        Ok(listed.iter().any(|o| o.key == key).then_some(id))
    }
}

/// `total` bytes split in proportion to `weights` (the last takes what rounding leaves; with
/// no weight at all, the first takes everything), so that a batch of one source reports
/// exactly what it wrote.
fn shares(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| w as u128).sum();
    let mut out: Vec<u64> = weights
        .iter()
        .map(|&w| match sum {
            0 => 0,
            _ => (total as u128 * w as u128 / sum) as u64,
        })
        .collect();
    let given: u64 = out.iter().sum();
    let last = if sum == 0 {
        out.first_mut()
    } else {
        out.last_mut()
    };
    if let Some(last) = last {
        *last += total - given;
    }
    out
}

/// What the repository already holds, as far as this host knows without the private key:
/// packs it lists at the size they were written with, that nobody found damaged and that no
/// prune has marked for deletion (docs/FORMAT.md, "Pruning"); and the packs an interrupted run
/// stored without indexing them, whose blobs count as held too.
fn known_and_adopted(
    repo: &Repository,
    state: &State,
    scratch: &Path,
    warnings: &mut Vec<String>,
) -> Result<(Known, Vec<PackRecord>)> {
    let repo_id = &repo.config().id;
    let doomed = repo.doomed_packs()?;
    let listed: HashMap<String, u64> = repo
        .list::<PackId>()?
        .into_iter()
        .filter(|(id, _)| !doomed.contains(id))
        .map(|(id, size)| (id.to_string(), size))
        .collect();
    let adopted = unindexed_packs(state, repo_id, &listed, warnings)?;
    let mut notes = Vec::new();
    let known = Known::gather(scratch, |each| {
        notes = state.each_known_blob(repo_id, &listed, each)?;
        let adopted_blobs = adopted.iter().flat_map(|p| p.table.frames.iter());
        adopted_blobs
            .flat_map(|f| f.blobs.iter())
            .try_for_each(|b| each(b.0))
    })?;
    for note in &notes {
        tracing::warn!("{note}");
    }
    warnings.extend(notes);
    Ok((known, adopted))
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

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn shares_add_up_to_the_total_and_follow_the_weights() {
        assert_eq!(shares(100, &[1, 1, 2]), vec![25, 25, 50]);
        assert_eq!(shares(10, &[1, 1, 1]), vec![3, 3, 4]);
        assert_eq!(shares(7, &[0, 0]), vec![7, 0]);
        assert_eq!(shares(7, &[5]), vec![7]);
        assert!(shares(7, &[]).is_empty());
    }
}
