//! Check: verify a repository without trusting it. Structure: every index and manifest opens,
//! every pack an index lists exists with the recorded size, every blob a snapshot needs is
//! indexed. With read-data: every pack (or a random subset) is downloaded, its hash checked,
//! decrypted, and every blob in it decompressed and hashed. When a snapshot needs blobs no
//! readable index lists, the packs no index lists are read too, to tell the ones it needs
//! (which `repair index` can index again) from leftovers. Damage never stops the check; each
//! problem names the object and the snapshots it affects.

mod attribution;
mod packs;
mod segments;

use crate::digest_runs::DigestTable;
use crate::engine::context::{remember_damage, Context};
use crate::error::{Error, Hint, Hinted, Result};
use crate::repo::ids::{IndexId, ObjectId, PackId, SnapshotId};
use crate::repo::index::{BlobLocation, Index, PackSlot};
use crate::repo::keys::Keyring;
use crate::repo::manifest::Manifest;
use crate::repo::pack::{BlobKind, TableDigest};
use crate::repo::reader::DamagedPack;
use crate::repo::Repository;
use crate::sorted_runs::list_memory;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    None,
    All,
    /// Percentage of packs, chosen at random.
    Subset(f64),
}

/// What kind of problem a check found; the report counts problems by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// An index that cannot be read (missing bytes, wrong hash, does not decrypt or parse).
    DamagedIndex,
    /// A manifest that cannot be read, or whose tree disagrees with it.
    DamagedSnapshot,
    /// A pack an index lists that the storage does not hold.
    MissingPack,
    /// A pack stored at another size than its index records (usually cut short).
    WrongSizePack,
    /// A pack whose bytes do not hash, decrypt, parse or match its index.
    DamagedPack,
    /// A pack no readable index lists that holds blobs the snapshots need.
    UnindexedPack,
    /// A snapshot that needs blobs no readable index lists.
    UnindexedBlobs,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The object's key, e.g. `data/ab/ab12…`.
    pub object: String,
    pub what: String,
    /// Ids of the snapshots that cannot be restored because of it.
    pub affected_snapshots: Vec<String>,
    pub kind: ProblemKind,
    /// What would fix it, for a face to word.
    #[serde(skip)]
    pub hint: Option<Hint>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct CheckReport {
    pub ok: bool,
    pub snapshots: usize,
    pub indexes: usize,
    /// Packs the readable indexes list.
    pub packs: usize,
    /// Packs read in all: every tree pack, and the data packs chosen by read-data.
    pub packs_read: usize,
    pub data_packs_read: usize,
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
    /// How many problems of each kind.
    pub summary: BTreeMap<ProblemKind, usize>,
    /// Every snapshot some problem affects.
    pub affected_snapshots: Vec<String>,
    /// Indexes that could not be read.
    pub unreadable_indexes: usize,
    /// Packs no readable index lists that were read to learn what they hold.
    pub unindexed_packs_read: usize,
    /// Packs no readable index lists and no snapshot needs (left by interrupted backups).
    pub leftover_packs: Vec<String>,
    /// Packs found missing, cut short or damaged, for the local state.
    #[serde(skip)]
    pub damaged_packs: Vec<DamagedPack>,
}

/// Opens the repository and key, checks it, and records the damaged packs it found in the
/// state so that backups from this host stop deduplicating against them.
pub fn run(
    ctx: &Context,
    repo: &str,
    identity: Option<&std::path::Path>,
    read_data: ReadData,
) -> Result<CheckReport> {
    let (repo, keys) = ctx.open_repo_with_key(repo, identity)?;
    let mut report = check_in(&repo, &keys, read_data, &ctx.state_dir)?;
    if !report.damaged_packs.is_empty() {
        let unrecorded = match ctx.state() {
            Ok(state) => remember_damage(&state, &repo, &report.damaged_packs),
            Err(e) => Some(format!(
                "the damaged packs could not be recorded in the local state: {e}"
            )),
        };
        report.warnings.extend(unrecorded);
    }
    Ok(report)
}

/// Checks `repo`, with scratch space in the system's temporary directory.
pub fn check(repo: &Repository, keys: &Keyring, read_data: ReadData) -> Result<CheckReport> {
    check_in(repo, keys, read_data, &std::env::temp_dir())
}

/// Checks `repo`; the list of indexed blobs and the tree segments read go to unnamed files in
/// `scratch` past the list budget.
pub fn check_in(
    repo: &Repository,
    keys: &Keyring,
    read_data: ReadData,
    scratch: &std::path::Path,
) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let mut problems = attribution::Problems::default();
    let kept = |e| scratch_error(scratch, e);
    // A host that never backed up has no state directory yet.
    std::fs::create_dir_all(scratch).map_err(kept)?;
    let inv = take_inventory(repo, keys, scratch, &mut report, &mut problems)?;
    let mut bad_packs = packs_not_as_indexed(&inv);
    let mut segments = segments::Segments::new(scratch);
    let tree_packs_read =
        packs::read_tree_packs(repo, keys, &inv, &mut bad_packs, &mut segments).map_err(kept)?;
    let chosen = packs::choose(&inv.index, read_data);
    report.data_packs_read = packs::read_data_packs(repo, keys, &inv, chosen, &mut bad_packs);
    report.packs_read = report.data_packs_read + tree_packs_read;
    // What the packs no readable index lists hold matters only if a snapshot lacks something.
    let mut found = attribution::look_up(&inv, &segments, &bad_packs).map_err(kept)?;
    let unindexed = if attribution::any_unindexed(&found) {
        let unindexed = packs::read_unindexed(repo, keys, &inv, &mut segments).map_err(kept)?;
        // Those packs may hold tree segments that could not be read before.
        found = attribution::look_up(&inv, &segments, &bad_packs).map_err(kept)?;
        unindexed
    } else {
        packs::Unindexed::default()
    };
    report.unindexed_packs_read = unindexed.read;
    report.damaged_packs = bad_packs
        .iter()
        .map(|(slot, (_, why))| DamagedPack {
            id: inv.index.pack(*slot).id,
            why: why.clone(),
        })
        .collect();
    attribution::attribute(
        &inv,
        (&segments, &found),
        &bad_packs,
        &unindexed,
        &mut problems,
        &mut report,
    )
    .map_err(kept)?;
    report.problems = problems.into_vec();
    for p in &report.problems {
        *report.summary.entry(p.kind).or_default() += 1;
    }
    let affected: std::collections::BTreeSet<&String> = report
        .problems
        .iter()
        .flat_map(|p| &p.affected_snapshots)
        .collect();
    report.affected_snapshots = affected.into_iter().cloned().collect();
    report.ok = report.problems.is_empty();
    Ok(report)
}

fn scratch_error(dir: &std::path::Path, e: std::io::Error) -> Error {
    Error::Internal(
        format!(
            "cannot keep the check's lists of blobs and tree segments in {} ({e})",
            dir.display()
        )
        .hinted(Hint::StateDirectory),
    )
}

/// What the repository lists and what its readable indexes and manifests say.
struct Inventory {
    /// Stored packs and their sizes, as listed.
    stored: HashMap<PackId, u64>,
    /// The packs the readable indexes list; their blobs are in `blobs`.
    index: Index,
    /// Every blob the readable indexes list, with the slot in `index` of each pack holding it.
    blobs: DigestTable,
    /// Every indexed pack's table, as digests to compare with the pack itself.
    tables: HashMap<PackId, TableDigest>,
    manifests: Vec<(SnapshotId, Manifest)>,
    /// Indexes that cannot be read, with why.
    unreadable: Vec<(IndexId, String)>,
}

impl Inventory {
    /// Stored packs no readable index lists.
    fn unindexed(&self) -> Vec<(PackId, u64)> {
        let indexed: HashSet<PackId> = self.index.packs.iter().map(|p| p.id).collect();
        let mut out: Vec<(PackId, u64)> = self
            .stored
            .iter()
            .filter(|(id, _)| !indexed.contains(*id))
            .map(|(id, size)| (*id, *size))
            .collect();
        out.sort();
        out
    }
}

/// Lists the objects and opens every index and manifest. An identity that opens nothing is
/// the one error that stops the check: everything would be reported damaged otherwise.
fn take_inventory(
    repo: &Repository,
    keys: &Keyring,
    scratch: &std::path::Path,
    report: &mut CheckReport,
    problems: &mut attribution::Problems,
) -> Result<Inventory> {
    let stored: HashMap<PackId, u64> = repo.list::<PackId>()?.into_iter().collect();
    let index_ids = repo.list::<IndexId>()?;
    let snapshot_ids = repo.list::<SnapshotId>()?;
    report.indexes = index_ids.len();
    report.snapshots = snapshot_ids.len();

    // An object another key encrypted is a problem like any other (anyone who can write to
    // the repository can add one), unless no object opens at all: then the identity is wrong.
    let mut opened = 0;
    let mut key_error = None;
    let mut note_key_error = |e: &Error| {
        if matches!(e, Error::Key(_)) {
            key_error.get_or_insert(e.clone());
        }
    };
    let mut index = Index::default();
    // The blobs go to a table that is sorted on disk past the list budget, not to the index.
    let blobs = RefCell::new(DigestTable::gather(scratch, list_memory()));
    let not_kept = RefCell::new(None);
    let keep_blob = |_: BlobKind, h: &crate::hash::Hash, at: &BlobLocation| {
        if let Err(e) = blobs.borrow_mut().push(h, at.pack.0) {
            not_kept.borrow_mut().get_or_insert(e);
        }
        false
    };
    let mut tables = HashMap::new();
    let mut unreadable = Vec::new();
    for (id, size) in &index_ids {
        // A pack's record at a time: a large index is never held whole.
        let read = repo.each_index_record(keys, (id, Some(*size)), &mut |r| {
            index.add_kept(&r, &keep_blob);
            tables.entry(r.id).or_insert_with(|| r.table.digest());
        });
        match read {
            Ok(()) => opened += 1,
            Err(e) => {
                note_key_error(&e);
                unreadable.push((*id, e.message().to_string()));
            }
        }
    }
    index.seal();
    if let Some(e) = not_kept.into_inner() {
        return Err(scratch_error(scratch, e));
    }
    let blobs = blobs
        .into_inner()
        .done()
        .map_err(|e| scratch_error(scratch, e))?;
    report.packs = index.packs.len();
    report.unreadable_indexes = unreadable.len();

    let mut manifests = Vec::new();
    for (id, _) in &snapshot_ids {
        match repo.load_manifest(keys, id) {
            Ok(m) => {
                opened += 1;
                manifests.push((*id, m));
            }
            Err(e) => {
                note_key_error(&e);
                problems.add(
                    ProblemKind::DamagedSnapshot,
                    id.key(),
                    e.message().to_string(),
                    &[*id],
                );
            }
        }
    }
    if let Some(e) = key_error.filter(|_| opened == 0) {
        return Err(e);
    }
    Ok(Inventory {
        stored,
        index,
        blobs,
        tables,
        manifests,
        unreadable,
    })
}

/// Packs the index promises but storage lacks or holds at another size, by index slot, with
/// the kind of problem and why.
fn packs_not_as_indexed(inv: &Inventory) -> HashMap<PackSlot, (ProblemKind, String)> {
    let mut bad = HashMap::new();
    for (i, p) in inv.index.slots() {
        match inv.stored.get(&p.id) {
            None => {
                bad.insert(i, (ProblemKind::MissingPack, "pack is missing".to_string()));
            }
            Some(&size) if size != p.size => {
                let why = format!("pack has {size} bytes, the index records {}", p.size);
                bad.insert(i, (ProblemKind::WrongSizePack, why));
            }
            _ => {}
        }
    }
    bad
}
