//! Which snapshots each problem affects. A snapshot is affected by a bad pack when some blob it
//! needs has no intact copy; by a damaged index when it needs a blob that no readable index
//! lists (the damaged index may have been the one that did); and it needs a pack no readable
//! index lists when that pack holds such a blob. Blobs no index lists are counted per
//! snapshot, not listed one by one.

use super::packs::{BadPacks, Unindexed};
use super::segments::Segments;
use super::{CheckReport, Inventory, Problem, ProblemKind};
use crate::error::Hint;
use crate::hash::Hash;
use crate::repo::ids::{ObjectId, SnapshotId};
use crate::repo::index::PackSlot;
use crate::repo::tree;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Problems by object and kind, each with why, its hint and the snapshots it affects.
#[derive(Default)]
pub(super) struct Problems(BTreeMap<(String, ProblemKind), Found>);

/// Why, the hint, and the snapshots affected.
type Found = (String, Option<Hint>, BTreeSet<String>);

impl Problems {
    pub(super) fn add(
        &mut self,
        kind: ProblemKind,
        object: String,
        what: String,
        affected: &[SnapshotId],
    ) {
        self.add_hinted(kind, object, what, None, affected);
    }

    fn add_hinted(
        &mut self,
        kind: ProblemKind,
        object: String,
        what: String,
        hint: Option<Hint>,
        affected: &[SnapshotId],
    ) {
        let e = self
            .0
            .entry((object, kind))
            .or_insert_with(|| (what, hint, BTreeSet::new()));
        e.2.extend(affected.iter().map(|s| s.to_string()));
    }

    pub(super) fn into_vec(self) -> Vec<Problem> {
        self.0
            .into_iter()
            .map(|((object, kind), (what, hint, affected))| Problem {
                object,
                what,
                affected_snapshots: affected.into_iter().collect(),
                kind,
                hint,
            })
            .collect()
    }
}

/// What a tree segment and its pages come to, the same for every snapshot that lists it.
pub(super) struct SegmentFindings {
    /// Pages it lists, if it could be read.
    pages: Option<u64>,
    /// Blobs (the segment and its pages, each time listed) no readable index lists.
    unlisted: usize,
    /// Bad packs that hold the only copies of some of its blobs.
    lost: BTreeSet<PackSlot>,
}

/// Every distinct segment the manifests list, looked up once.
pub(super) type Findings = HashMap<Hash, SegmentFindings>;

/// Looks up every distinct segment the manifests list, and its pages, on two threads (each
/// lookup may read a record from disk).
pub(super) fn look_up(
    inv: &Inventory,
    segments: &Segments,
    bad_packs: &BadPacks,
) -> io::Result<Findings> {
    let distinct: HashSet<Hash> = inv
        .manifests
        .iter()
        .flat_map(|(id, m)| tree::segment_ids(id, m).unwrap_or_default())
        .collect();
    let distinct: Vec<Hash> = distinct.into_iter().collect();
    let next = AtomicUsize::new(0);
    let work = || -> io::Result<Vec<(Hash, SegmentFindings)>> {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(h) = distinct.get(i) else {
                return Ok(out);
            };
            out.push((*h, look_segment_up(h, inv, segments, bad_packs)?));
        }
    };
    let parts: Vec<io::Result<Vec<_>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2).map(|_| s.spawn(work)).collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a lookup thread panicked")))
            })
            .collect()
    });
    let mut found = HashMap::with_capacity(distinct.len());
    for part in parts {
        found.extend(part?);
    }
    Ok(found)
}

/// Whether some blob a snapshot needs, as far as the segments read tell, is in no readable
/// index.
pub(super) fn any_unindexed(found: &Findings) -> bool {
    found.values().any(|f| f.unlisted > 0)
}

fn look_segment_up(
    segment: &Hash,
    inv: &Inventory,
    segments: &Segments,
    bad_packs: &BadPacks,
) -> io::Result<SegmentFindings> {
    let (mut unlisted, mut lost) = (0, BTreeSet::new());
    let pages = each_blob_of(segment, segments, &mut |h| {
        let packs: Vec<PackSlot> = inv.blobs.values(h)?.into_iter().map(PackSlot).collect();
        if packs.is_empty() {
            unlisted += 1;
        } else if packs.iter().all(|p| bad_packs.contains_key(p)) {
            lost.extend(packs);
        }
        Ok(())
    })?;
    Ok(SegmentFindings {
        pages,
        unlisted,
        lost,
    })
}

/// Of a segment's blobs that no readable index lists (each time listed): the slots in
/// `unindexed.index` of the packs that hold them, and how many no readable pack holds.
fn where_unlisted(
    segment: &Hash,
    inv: &Inventory,
    segments: &Segments,
    unindexed: &Unindexed,
) -> io::Result<(BTreeSet<PackSlot>, usize)> {
    let (mut needed, mut nowhere) = (BTreeSet::new(), 0);
    each_blob_of(segment, segments, &mut |h| {
        if inv.blobs.values(h)?.is_empty() {
            match unindexed.index.locate(h) {
                Some(l) => {
                    needed.insert(l.pack);
                }
                None => nowhere += 1,
            }
        }
        Ok(())
    })?;
    Ok((needed, nowhere))
}

/// Hands `each` the segment's own id, then each page it lists if it was read; returns how
/// many pages that was, if it was.
fn each_blob_of(
    segment: &Hash,
    segments: &Segments,
    each: &mut dyn FnMut(&Hash) -> io::Result<()>,
) -> io::Result<Option<u64>> {
    each(segment)?;
    let Some(b) = segments.get(segment)? else {
        return Ok(None);
    };
    let mut pages = 0;
    for page in tree::page_ids(&b) {
        pages += 1;
        each(&page)?;
    }
    Ok(Some(pages))
}

/// Blobs of one snapshot that no readable index lists.
#[derive(Default)]
struct Unlisted {
    blobs: usize,
    /// Of those, the ones no readable pack holds either.
    nowhere: usize,
    /// Tree segments that could not be read, so their pages are not counted.
    segments_unread: usize,
}

impl Unlisted {
    fn what(&self) -> String {
        let n = self.blobs;
        let mut s = if n == 1 {
            "1 blob it needs is in no readable index".to_string()
        } else {
            format!("{n} blobs it needs are in no readable index")
        };
        match self.nowhere {
            0 => s.push_str("; packs no index lists hold every one of them"),
            k if k == n => s.push_str(" and in no readable pack"),
            k => s.push_str(&format!("; {k} of them are in no readable pack either")),
        }
        if self.segments_unread > 0 {
            s.push_str(&format!(
                "; the pages of {} of its tree segments could not be listed, so there may be more",
                self.segments_unread
            ));
        }
        s
    }

    /// Indexing the packs again helps if they hold any of the blobs; else only a fresh full
    /// backup makes later snapshots whole.
    fn hint(&self) -> Hint {
        if self.nowhere < self.blobs {
            Hint::RepairIndex
        } else {
            Hint::FullBackup
        }
    }
}

/// Attributes the damage found to the snapshots it affects, and sorts the packs no readable
/// index lists into needed ones (problems) and leftovers (warnings).
pub(super) fn attribute(
    inv: &Inventory,
    (segments, found): (&Segments, &Findings),
    bad_packs: &BadPacks,
    unindexed: &Unindexed,
    problems: &mut Problems,
    report: &mut CheckReport,
) -> io::Result<()> {
    let index = &inv.index;
    let mut affects: HashMap<PackSlot, BTreeSet<SnapshotId>> = HashMap::new();
    // Slots of `unindexed.index`: the packs no readable index lists that a snapshot needs.
    let mut needed: HashMap<PackSlot, BTreeSet<SnapshotId>> = HashMap::new();
    let mut lacking: Vec<SnapshotId> = Vec::new();
    // Where a segment's unlisted blobs are, worked out once (damage only).
    let mut unlisted_in: HashMap<Hash, (BTreeSet<PackSlot>, usize)> = HashMap::new();
    for (id, m) in &inv.manifests {
        let Ok(seg_ids) = tree::segment_ids(id, m) else {
            let what = "manifest holds a malformed segment id".to_string();
            problems.add(ProblemKind::DamagedSnapshot, id.key(), what, &[*id]);
            continue;
        };
        let mut unlisted = Unlisted::default();
        let mut pages = 0u64;
        let mut segments_unread = 0;
        for h in &seg_ids {
            let Some(f) = found.get(h) else {
                continue;
            };
            match f.pages {
                Some(n) => pages += n,
                None => segments_unread += 1,
            }
            for p in &f.lost {
                affects.entry(*p).or_default().insert(*id);
            }
            if f.unlisted == 0 {
                continue;
            }
            unlisted.blobs += f.unlisted;
            let (held_by, nowhere) = match unlisted_in.get(h) {
                Some(w) => w,
                None => {
                    let w = where_unlisted(h, inv, segments, unindexed)?;
                    unlisted_in.entry(*h).or_insert(w)
                }
            };
            unlisted.nowhere += nowhere;
            for p in held_by {
                needed.entry(*p).or_default().insert(*id);
            }
        }
        unlisted.segments_unread = segments_unread;
        if segments_unread == 0 && pages != m.page_count {
            let what = format!("tree lists {pages} pages, the manifest {}", m.page_count);
            problems.add(ProblemKind::DamagedSnapshot, id.key(), what, &[*id]);
        }
        if unlisted.blobs > 0 {
            lacking.push(*id);
            let (what, hint) = (unlisted.what(), Some(unlisted.hint()));
            problems.add_hinted(ProblemKind::UnindexedBlobs, id.key(), what, hint, &[*id]);
        }
    }
    for (p, (kind, why)) in bad_packs {
        let affected: Vec<SnapshotId> = affects.remove(p).unwrap_or_default().into_iter().collect();
        let (object, hint) = (index.pack(*p).id.key(), Some(Hint::FullBackup));
        problems.add_hinted(*kind, object, why.clone(), hint, &affected);
    }
    for (i, why) in &inv.unreadable {
        if lacking.is_empty() {
            report.warnings.push(format!(
                "{why}; every blob the snapshots need is listed by another index, so it is harmless"
            ));
        } else {
            let hint = Some(Hint::RepairIndex);
            problems.add_hinted(
                ProblemKind::DamagedIndex,
                i.key(),
                why.clone(),
                hint,
                &lacking,
            );
        }
    }
    sort_unindexed(inv, unindexed, needed, problems, report);
    Ok(())
}

/// Packs no readable index lists: needed ones are problems `repair index` fixes, the rest are
/// leftovers of interrupted backups, and unreadable ones are warned about.
fn sort_unindexed(
    inv: &Inventory,
    unindexed: &Unindexed,
    mut needed: HashMap<PackSlot, BTreeSet<SnapshotId>>,
    problems: &mut Problems,
    report: &mut CheckReport,
) {
    let mut is_needed = HashSet::new();
    for (slot, p) in unindexed.index.slots() {
        if let Some(snapshots) = needed.remove(&slot) {
            is_needed.insert(p.id);
            let affected: Vec<SnapshotId> = snapshots.into_iter().collect();
            let what = "pack is in no readable index but holds blobs the snapshots need".into();
            let hint = Some(Hint::RepairIndex);
            problems.add_hinted(
                ProblemKind::UnindexedPack,
                p.id.key(),
                what,
                hint,
                &affected,
            );
        }
    }
    let unreadable: HashSet<_> = unindexed.unreadable.iter().map(|(id, _)| *id).collect();
    for (_, why) in &unindexed.unreadable {
        report.warnings.push(format!(
            "{why}; no readable index lists it, so it cannot be indexed again"
        ));
    }
    report.leftover_packs = inv
        .unindexed()
        .into_iter()
        .filter(|(id, _)| !is_needed.contains(id) && !unreadable.contains(id))
        .map(|(id, _)| id.key())
        .collect();
    match report.leftover_packs.len() {
        0 => {}
        1 => report.warnings.push(
            "1 pack is in no readable index and no snapshot needs it (left by an interrupted backup); it is harmless".into(),
        ),
        n => report.warnings.push(format!(
            "{n} packs are in no readable index and no snapshot needs them (left by interrupted backups); they are harmless"
        )),
    }
}
