//! Check: verify a repository without trusting it. Structure: every index and manifest opens,
//! every pack an index lists exists with the recorded size, every blob a snapshot needs is
//! indexed. With read-data: every pack (or a random subset) is downloaded, its hash checked,
//! decrypted, and every blob in it decompressed and hashed. Damage never stops the check;
//! each problem names the object and the snapshots it affects.

mod packs;

use crate::engine::context::Context;
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::repo::ids::{IndexId, ObjectId, PackId, SnapshotId};
use crate::repo::index::{Index, PackSlot};
use crate::repo::keys::Keyring;
use crate::repo::manifest::Manifest;
use crate::repo::pack::PackTable;
use crate::repo::{tree, Repository};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    None,
    All,
    /// Percentage of packs, chosen at random.
    Subset(f64),
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The damaged object's key, e.g. `data/ab/ab12…`.
    pub object: String,
    pub what: String,
    /// Ids of the snapshots that cannot be restored because of it.
    pub affected_snapshots: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct CheckReport {
    pub ok: bool,
    pub snapshots: usize,
    pub indexes: usize,
    pub packs: usize,
    /// Packs read in all: every tree pack, and the data packs chosen by read-data.
    pub packs_read: usize,
    pub data_packs_read: usize,
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
}

/// Opens the repository and key and checks it.
pub fn run(
    ctx: &Context,
    repo: &str,
    identity: Option<&std::path::Path>,
    read_data: ReadData,
) -> Result<CheckReport> {
    let (repo, keys) = ctx.open_repo_with_key(repo, identity)?;
    check(&repo, &keys, read_data)
}

pub fn check(repo: &Repository, keys: &Keyring, read_data: ReadData) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let mut problems = Problems::default();
    let inv = take_inventory(repo, keys, &mut report, &mut problems)?;
    let mut bad_packs = packs_not_as_indexed(&inv, &mut report);
    let (segments, tree_packs_read) = packs::read_tree_packs(repo, keys, &inv, &mut bad_packs);
    let chosen = packs::choose(&inv.index, read_data);
    report.data_packs_read = packs::read_data_packs(repo, keys, &inv, chosen, &mut bad_packs);
    report.packs_read = report.data_packs_read + tree_packs_read;
    attribute(&inv, &segments, &bad_packs, &mut problems);
    report.problems = problems.into_vec();
    report.ok = report.problems.is_empty();
    Ok(report)
}

/// What the repository lists and what its indexes and manifests say.
struct Inventory {
    /// Stored packs and their sizes, as listed.
    stored: HashMap<PackId, u64>,
    index: Index,
    /// Every indexed pack's table, to compare with the pack itself.
    tables: HashMap<PackId, PackTable>,
    manifests: Vec<(SnapshotId, Manifest)>,
}

/// Problems by object, each with the snapshots it affects.
#[derive(Default)]
struct Problems(BTreeMap<String, (String, BTreeSet<String>)>);

impl Problems {
    fn add(&mut self, object: String, what: String, affected: &[SnapshotId]) {
        let e = self
            .0
            .entry(object)
            .or_insert_with(|| (what, BTreeSet::new()));
        e.1.extend(affected.iter().map(|s| s.to_string()));
    }

    fn into_vec(self) -> Vec<Problem> {
        self.0
            .into_iter()
            .map(|(object, (what, affected))| Problem {
                object,
                what,
                affected_snapshots: affected.into_iter().collect(),
            })
            .collect()
    }
}

/// Lists the objects and opens every index and manifest. An identity that opens nothing is
/// the one error that stops the check: everything would be reported damaged otherwise.
fn take_inventory(
    repo: &Repository,
    keys: &Keyring,
    report: &mut CheckReport,
    problems: &mut Problems,
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
    let mut failed = |key: String, e: Error, affected: &[SnapshotId], problems: &mut Problems| {
        problems.add(key, e.message().to_string(), affected);
        if matches!(e, Error::Key(_)) {
            key_error.get_or_insert(e);
        }
    };
    let mut index = Index::default();
    let mut tables = HashMap::new();
    for (id, _) in &index_ids {
        match repo.read_index(keys, id) {
            Ok(recs) => {
                opened += 1;
                for r in recs {
                    index.add(&r);
                    tables.entry(r.id).or_insert(r.table);
                }
            }
            Err(e) => failed(id.key(), e, &[], problems),
        }
    }
    report.packs = index.packs.len();

    let mut manifests = Vec::new();
    for (id, _) in &snapshot_ids {
        match repo.load_manifest(keys, id) {
            Ok(m) => {
                opened += 1;
                manifests.push((*id, m));
            }
            Err(e) => failed(id.key(), e, &[*id], problems),
        }
    }
    if let Some(e) = key_error.filter(|_| opened == 0) {
        return Err(e);
    }
    Ok(Inventory {
        stored,
        index,
        tables,
        manifests,
    })
}

/// Packs the index promises but storage lacks or holds truncated (by index slot, with why);
/// packs no index lists are warned about.
fn packs_not_as_indexed(inv: &Inventory, report: &mut CheckReport) -> HashMap<PackSlot, String> {
    let mut bad = HashMap::new();
    for (i, p) in inv.index.slots() {
        match inv.stored.get(&p.id) {
            None => {
                bad.insert(i, "pack is missing".to_string());
            }
            Some(&size) if size != p.size => {
                bad.insert(
                    i,
                    format!("pack has {size} bytes, the index records {}", p.size),
                );
            }
            _ => {}
        }
    }
    let indexed: HashSet<PackId> = inv.index.packs.iter().map(|p| p.id).collect();
    for id in inv.stored.keys().filter(|id| !indexed.contains(*id)) {
        report.warnings.push(format!(
            "pack {id} is in no index (left by an interrupted backup); it is harmless and prune will remove it"
        ));
    }
    bad
}

/// A snapshot is affected by a bad pack when some blob it needs has no intact copy; a blob no
/// index lists is a problem of its own.
fn attribute(
    inv: &Inventory,
    segments: &HashMap<Hash, Vec<u8>>,
    bad_packs: &HashMap<PackSlot, String>,
    problems: &mut Problems,
) {
    let index = &inv.index;
    let mut affects: HashMap<PackSlot, BTreeSet<SnapshotId>> = HashMap::new();
    for (id, m) in &inv.manifests {
        let mut blob_ok = |h: &Hash, what: &str, problems: &mut Problems| {
            let locs: Vec<_> = index.locations(h).collect();
            if locs.is_empty() {
                problems.add(
                    format!("{what} blob {}", hex::encode(h)),
                    format!("no index lists this {what} blob"),
                    &[*id],
                );
            } else if locs.iter().all(|l| bad_packs.contains_key(&l.pack)) {
                for l in locs {
                    affects.entry(l.pack).or_default().insert(*id);
                }
            }
        };
        let Ok(seg_ids) = tree::segment_ids(id, m) else {
            problems.add(
                id.key(),
                "manifest holds a malformed segment id".into(),
                &[*id],
            );
            continue;
        };
        let mut pages = 0u64;
        for h in &seg_ids {
            blob_ok(h, "tree", problems);
            for page in segments
                .get(h)
                .map(|b| tree::page_ids(b))
                .into_iter()
                .flatten()
            {
                pages += 1;
                blob_ok(&page, "data", problems);
            }
        }
        let all_segments_read = seg_ids.iter().all(|h| segments.contains_key(h));
        if all_segments_read && pages != m.page_count {
            problems.add(
                id.key(),
                format!("tree lists {pages} pages, the manifest {}", m.page_count),
                &[*id],
            );
        }
    }
    for (p, why) in bad_packs {
        let affected: Vec<SnapshotId> = affects.remove(p).unwrap_or_default().into_iter().collect();
        problems.add(index.pack(*p).id.key(), why.clone(), &affected);
    }
}
