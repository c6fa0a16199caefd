//! What a prune does, decided from what the repository holds and what its snapshots use: a
//! pure function, so every rule of the protocol (docs/FORMAT.md, "Pruning") is tested here.
//!
//! Every blob a snapshot uses keeps one chosen copy: in a pack that is not doomed if there
//! is one, else in the pack most of whose bytes are used. A pack that holds no chosen copy is
//! doomed (marked); a doomed pack whose mark is older than the grace period is deleted; a
//! doomed pack that holds a chosen copy again is unmarked. A pack of which more than the
//! repack threshold is unused has its chosen blobs copied to new packs, and is then doomed.

use crate::hash::Hash;
use crate::repo::ids::{IndexId, PackId};
use crate::repo::index::PackRecord;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What the repository holds, as a prune sees it.
#[derive(Debug, Default)]
pub struct Holdings {
    /// Stored packs and their sizes, as listed.
    pub stored: HashMap<PackId, u64>,
    /// Every index with the packs it lists.
    pub indexes: Vec<(IndexId, Vec<PackRecord>)>,
    /// Every blob (pages and tree segments) some snapshot uses.
    pub used: HashSet<Hash>,
    /// Doomed packs, with when they were marked.
    pub marks: HashMap<PackId, DateTime<Utc>>,
    /// Marks that could not be read: counted from now, and written again.
    pub unreadable_marks: Vec<PackId>,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub now: DateTime<Utc>,
    /// How long a pack stays doomed before it is deleted: longer than any backup runs.
    pub grace: TimeDelta,
    /// Repack a pack when more than this share of its bytes is unused (0.0–1.0).
    pub repack_unused_above: f64,
}

#[derive(Debug, Default)]
pub struct Plan {
    /// Packs to repack, and the blobs to copy out of them.
    pub repack: BTreeSet<PackId>,
    pub copy_blobs: BTreeSet<Hash>,
    /// Packs to mark now (not counting the repacked ones, marked once their copies are stored).
    pub mark: BTreeSet<PackId>,
    /// Marks to remove: their pack is needed again, or no longer stored.
    pub unmark: BTreeSet<PackId>,
    /// Doomed packs whose grace period is over.
    pub delete: BTreeSet<PackId>,
    /// The indexes that list a pack to delete: rewritten without it.
    pub rewrite: BTreeSet<IndexId>,
    /// What the rewritten indexes list that stays, each pack once.
    pub kept_records: Vec<PackRecord>,
    /// Doomed packs still in their grace period, and when it ends.
    pub waiting: Vec<(PackId, DateTime<Utc>)>,
    /// Used blobs found in no stored pack: the repository is damaged.
    pub missing_blobs: usize,
}

/// One pack's blobs, from the first index that lists it.
struct PackBlobs<'a> {
    id: PackId,
    blobs: Vec<(&'a Hash, u32)>,
    used_share: f64,
}

pub fn plan(h: &Holdings, s: &Settings) -> Plan {
    let mut out = Plan::default();
    let packs = indexed_packs(h);
    let chosen = choose_copies(h, &packs, &mut out.missing_blobs);

    let mut doomed_now = BTreeSet::new();
    for p in &packs {
        let live: Vec<(&Hash, u32)> = p
            .blobs
            .iter()
            .filter(|(b, _)| chosen.get(*b) == Some(&p.id))
            .copied()
            .collect();
        let marked = h.marks.contains_key(&p.id);
        if live.is_empty() {
            doomed_now.insert(p.id);
        } else if marked {
            out.unmark.insert(p.id);
        } else {
            let total: u64 = p.blobs.iter().map(|(_, l)| u64::from(*l)).sum();
            let live_bytes: u64 = live.iter().map(|(_, l)| u64::from(*l)).sum();
            if total > 0 && 1.0 - live_bytes as f64 / total as f64 > s.repack_unused_above {
                out.repack.insert(p.id);
                out.copy_blobs.extend(live.iter().map(|(b, _)| **b));
            }
        }
    }
    // Packs no index lists: left by interrupted backups (or one writing right now).
    let indexed: HashSet<PackId> = packs.iter().map(|p| p.id).collect();
    doomed_now.extend(h.stored.keys().filter(|id| !indexed.contains(id)));

    for id in doomed_now {
        match h.marks.get(&id) {
            None => {
                out.mark.insert(id);
            }
            Some(&t) if s.now - t >= s.grace => {
                out.delete.insert(id);
            }
            Some(&t) => out.waiting.push((id, t + s.grace)),
        }
    }
    out.unmark
        .extend(h.marks.keys().filter(|id| !h.stored.contains_key(id)));
    out.waiting.sort_by_key(|(id, t)| (*t, *id));

    let mut kept = HashSet::new();
    for (index, records) in &h.indexes {
        if records.iter().any(|r| out.delete.contains(&r.id)) {
            out.rewrite.insert(*index);
        }
    }
    for (index, records) in &h.indexes {
        if out.rewrite.contains(index) {
            for r in records {
                if !out.delete.contains(&r.id) && kept.insert(r.id) {
                    out.kept_records.push(r.clone());
                }
            }
        }
    }
    out
}

/// Every stored pack some index lists, once, with the share of its bytes that is used.
fn indexed_packs(h: &Holdings) -> Vec<PackBlobs<'_>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (_, records) in &h.indexes {
        for r in records {
            if !h.stored.contains_key(&r.id) || !seen.insert(r.id) {
                continue;
            }
            let blobs: Vec<(&Hash, u32)> = r
                .table
                .frames
                .iter()
                .flat_map(|f| f.blobs.iter().map(|(b, l)| (b, *l)))
                .collect();
            let total: u64 = blobs.iter().map(|(_, l)| u64::from(*l)).sum();
            let used: u64 = blobs
                .iter()
                .filter(|(b, _)| h.used.contains(*b))
                .map(|(_, l)| u64::from(*l))
                .sum();
            let used_share = if total == 0 {
                0.0
            } else {
                used as f64 / total as f64
            };
            out.push(PackBlobs {
                id: r.id,
                blobs,
                used_share,
            });
        }
    }
    out
}

/// The pack each used blob is kept in: a copy in a pack that is not doomed first, then the
/// pack with the largest used share, then the lowest id (so the choice does not depend on
/// listing order); then [`consolidate`]d. Counts used blobs with no stored copy in `missing`.
fn choose_copies(
    h: &Holdings,
    packs: &[PackBlobs<'_>],
    missing: &mut usize,
) -> HashMap<Hash, PackId> {
    let rank = |p: &PackBlobs<'_>| (!h.marks.contains_key(&p.id), p.used_share);
    let mut chosen: HashMap<Hash, (PackId, (bool, f64))> = HashMap::new();
    let mut copies: HashMap<Hash, Vec<PackId>> = HashMap::new();
    for p in packs {
        let r = rank(p);
        for (b, _) in &p.blobs {
            if !h.used.contains(*b) {
                continue;
            }
            copies.entry(**b).or_default().push(p.id);
            let better = match chosen.get(*b) {
                None => true,
                Some((id, best)) => r > *best || (r == *best && p.id < *id),
            };
            if better {
                chosen.insert(**b, (p.id, r));
            }
        }
    }
    *missing = h.used.iter().filter(|b| !chosen.contains_key(*b)).count();
    let mut chosen: HashMap<Hash, PackId> = chosen.into_iter().map(|(b, (p, _))| (b, p)).collect();
    copies.retain(|_, packs| packs.len() > 1);
    consolidate(h, packs, &copies, &mut chosen);
    chosen
}

/// Empties packs whose every kept blob is also in another pack that keeps blobs anyway,
/// smallest first. Two full backups hold the same pages in different packs; choosing blob by
/// blob would keep some of each pack, and neither could go.
fn consolidate(
    h: &Holdings,
    packs: &[PackBlobs<'_>],
    copies: &HashMap<Hash, Vec<PackId>>,
    chosen: &mut HashMap<Hash, PackId>,
) {
    let sizes: HashMap<&Hash, u32> = packs
        .iter()
        .flat_map(|p| p.blobs.iter().map(|(b, l)| (*b, *l)))
        .collect();
    let mut live: HashMap<PackId, Vec<Hash>> = HashMap::new();
    for (b, p) in chosen.iter() {
        live.entry(*p).or_default().push(*b);
    }
    let bytes = |blobs: &[Hash]| -> u64 { blobs.iter().map(|b| u64::from(sizes[b])).sum() };
    let mut order: Vec<(u64, PackId)> = live.iter().map(|(p, b)| (bytes(b), *p)).collect();
    order.sort();
    for (_, p) in order {
        let Some(blobs) = live.get(&p) else { continue };
        let mut moves = Vec::with_capacity(blobs.len());
        for b in blobs {
            let target = copies.get(b).and_then(|packs| {
                packs.iter().copied().find(|q| {
                    *q != p
                        && !h.marks.contains_key(q)
                        && live.get(q).is_some_and(|l| !l.is_empty())
                })
            });
            match target {
                Some(q) => moves.push((*b, q)),
                None => break,
            }
        }
        if moves.len() != blobs.len() {
            continue;
        }
        live.remove(&p);
        for (b, q) in moves {
            chosen.insert(b, q);
            live.entry(q).or_default().push(b);
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
