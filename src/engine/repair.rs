//! Repair: index again, from the packs themselves, the packs no readable index lists (after an
//! index was lost or damaged), or every pack. Each pack carries its own table without blob
//! ids; the ids are recomputed by decompressing every frame and hashing every blob
//! (docs/FORMAT.md). The records go into one new index object: nothing is overwritten or
//! deleted, and damaged indexes stay where they are (harmless once another index lists their
//! packs).

use crate::engine::context::{recorded, Context};
use crate::error::{Error, Result};
use crate::repo::codec::Sealer;
use crate::repo::ids::{IndexId, ObjectId, PackId};
use crate::repo::index::{self, PackRecord};
use crate::repo::keys::Keyring;
use crate::repo::Repository;
use serde::Serialize;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

/// Packs read at once: each is held whole while its frames are decompressed.
const READERS: usize = 2;

pub struct RepairIndexJob {
    /// A directory, `s3://bucket/prefix` or a policy target name.
    pub repo: String,
    /// The identity that opens the packs (else the policy's).
    pub identity: Option<PathBuf>,
    /// Index every pack, not only those no readable index lists.
    pub all: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    pub repository: String,
    /// The index written, if any pack needed one.
    pub index: Option<IndexId>,
    /// Packs read (those no readable index lists, or all).
    pub packs_read: usize,
    /// Packs the new index lists.
    pub packs_indexed: usize,
    /// Blobs the new index lists.
    pub blobs_indexed: usize,
    /// Stored bytes of the packs the new index lists.
    pub bytes_indexed: u64,
    /// Indexes that cannot be read (keys, with why). They are left in place: they are
    /// harmless once another index lists their packs.
    pub unreadable_indexes: Vec<String>,
    /// Packs that could not be read and so were not indexed, with why.
    pub warnings: Vec<String>,
}

/// Opens the repository (to write) and the identity, repairs, and records the job in the
/// history.
pub fn run(ctx: &Context, job: &RepairIndexJob) -> Result<RepairReport> {
    let repo = ctx.open_repo_for_writing(&job.repo)?;
    let keys = ctx.identity(job.identity.as_deref(), &job.repo)?;
    let mut state = ctx.state()?;
    let config = repo.config();
    // The new index goes to the recipients this host trusts, as a backup's would.
    state.pin_recipients(&config.id, &repo.location(), &config.recipients, false)?;
    let summary = |r: &RepairReport| (r.bytes_indexed, 0, None);
    let location = repo.location();
    recorded(&mut state, "repair", None, Some(&location), summary, |_| {
        repair_index(&repo, &keys, job.all)
    })
}

/// Rebuilds index records from the packs and stores them as one new index.
pub fn repair_index(repo: &Repository, keys: &Keyring, all: bool) -> Result<RepairReport> {
    let (index, unreadable) = repo.load_index(keys)?;
    let indexed: HashSet<PackId> = index.packs.iter().map(|p| p.id).collect();
    let mut to_read: Vec<PackId> = repo
        .list::<PackId>()?
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| all || !indexed.contains(id))
        .collect();
    to_read.sort();
    let packs_read = to_read.len();
    let (records, warnings) = read_packs(repo, keys, to_read)?;
    let mut report = RepairReport {
        repository: repo.location(),
        index: None,
        packs_read,
        packs_indexed: records.len(),
        blobs_indexed: records.iter().map(|r| r.table.blob_count()).sum(),
        bytes_indexed: records.iter().map(|r| r.size).sum(),
        unreadable_indexes: unreadable
            .iter()
            .map(|(id, e)| format!("{}: {}", id.key(), e.message()))
            .collect(),
        warnings,
    };
    if !records.is_empty() {
        let mut recipients = repo.config().recipients.clone();
        for r in keys.recipients() {
            if !recipients.contains(&r) {
                recipients.push(r);
            }
        }
        let sealer = Sealer::new(&recipients)?;
        report.index = Some(index::store(repo, &sealer, &records)?.0);
    }
    Ok(report)
}

/// Reads the packs on a few threads and rebuilds their records, in pack id order. A pack that
/// is damaged or not ours to open is left out with a warning; a target that cannot be read
/// stops the repair (an index of whatever happened to be readable would hide the rest).
fn read_packs(
    repo: &Repository,
    keys: &Keyring,
    packs: Vec<PackId>,
) -> Result<(Vec<PackRecord>, Vec<String>)> {
    let queue = Mutex::new(packs.into_iter());
    let records = Mutex::new(Vec::new());
    let warnings = Mutex::new(Vec::new());
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..READERS {
            s.spawn(|| loop {
                if failed.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                    return;
                }
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some(id) = next else { return };
                match index::rebuild_record(repo, keys, &id, &mut |_, _| {}) {
                    Ok(rec) => records.lock().unwrap_or_else(|e| e.into_inner()).push(rec),
                    Err(e @ (Error::Integrity(_) | Error::Key(_))) => {
                        tracing::warn!("{e}");
                        warnings
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("{}; it was not indexed", e.message()));
                    }
                    Err(e) => {
                        failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let mut records = records.into_inner().unwrap_or_else(|e| e.into_inner());
    records.sort_by_key(|r| r.id);
    let mut warnings = warnings.into_inner().unwrap_or_else(|e| e.into_inner());
    warnings.sort();
    Ok((records, warnings))
}
