//! Reading packs for a check: every tree pack (they are small, and a copy of a segment may be
//! anywhere), then the chosen data packs. A pack that fails is recorded as bad with why. When
//! needed, also the packs no readable index lists, to learn from the packs themselves what
//! they hold.

use super::segments::Segments;
use super::{Inventory, ProblemKind, ReadData};
use crate::hash::Hash;
use crate::repo::ids::PackId;
use crate::repo::index::{self, Index, IndexedPack, PackSlot};
use crate::repo::keys::Keyring;
use crate::repo::pack::{self, BlobKind};
use crate::repo::Repository;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Bad packs by index slot: the kind of problem and why.
pub(super) type BadPacks = HashMap<PackSlot, (ProblemKind, String)>;

/// The tree segments the manifests list.
fn wanted_segments(inv: &Inventory) -> HashSet<Hash> {
    inv.manifests
        .iter()
        .flat_map(|(id, m)| crate::repo::tree::segment_ids(id, m).unwrap_or_default())
        .collect()
}

/// Reads every intact tree pack into `segments` (those the manifests need); returns how many
/// packs were read, or why a segment could not be kept.
pub(super) fn read_tree_packs(
    repo: &Repository,
    keys: &Keyring,
    inv: &Inventory,
    bad_packs: &mut BadPacks,
    segments: &mut Segments,
) -> std::io::Result<usize> {
    let wanted = wanted_segments(inv);
    let mut read = 0;
    let mut not_kept = None;
    for (i, p) in inv.index.slots() {
        if p.kind != BlobKind::Tree || bad_packs.contains_key(&i) {
            continue;
        }
        read += 1;
        let mut keep = |h: Hash, bytes: &[u8]| {
            if wanted.contains(&h) {
                if let Err(e) = segments.insert(h, bytes) {
                    not_kept.get_or_insert(e);
                }
            }
        };
        if let Err(why) = open_and_verify(repo, keys, p, inv, &mut keep) {
            bad_packs.insert(i, (ProblemKind::DamagedPack, why));
        }
    }
    match not_kept {
        Some(e) => Err(e),
        None => Ok(read),
    }
}

/// The data packs to read, by index slot.
pub(super) fn choose(index: &Index, read_data: ReadData) -> Vec<PackSlot> {
    let data: Vec<PackSlot> = index
        .slots()
        .filter(|(_, p)| p.kind == BlobKind::Data)
        .map(|(i, _)| i)
        .collect();
    match read_data {
        ReadData::None => Vec::new(),
        ReadData::All => data,
        ReadData::Subset(pct) => {
            use rand::seq::SliceRandom;
            let mut data = data;
            data.shuffle(&mut rand::thread_rng());
            let n = ((data.len() as f64 * pct / 100.0).ceil() as usize)
                .clamp(1.min(data.len()), data.len());
            data.truncate(n);
            data
        }
    }
}

/// Reads the chosen packs on two threads; returns how many were read.
pub(super) fn read_data_packs(
    repo: &Repository,
    keys: &Keyring,
    inv: &Inventory,
    chosen: Vec<PackSlot>,
    bad_packs: &mut BadPacks,
) -> usize {
    let to_read: Vec<PackSlot> = chosen
        .into_iter()
        .filter(|p| !bad_packs.contains_key(p))
        .collect();
    let count = to_read.len();
    crate::progress::add_total(to_read.iter().map(|&p| inv.index.pack(p).size).sum());
    let found = Mutex::new(Vec::new());
    let queue = Mutex::new(to_read.into_iter());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some(p) = next else { return };
                let pack = inv.index.pack(p);
                if let Err(why) = open_and_verify(repo, keys, pack, inv, &mut |_, _| {}) {
                    found
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((p, (ProblemKind::DamagedPack, why)));
                }
                crate::progress::add(pack.size);
            });
        }
    });
    bad_packs.extend(found.into_inner().unwrap_or_else(|e| e.into_inner()));
    count
}

/// What the packs no readable index lists hold, learnt from the packs themselves.
#[derive(Default)]
pub(super) struct Unindexed {
    /// Their tables with blob ids, merged (slots refer to this index, not the inventory's).
    pub index: Index,
    /// Packs that could not be read, with why.
    pub unreadable: Vec<(PackId, String)>,
    pub read: usize,
}

/// Reads every pack no readable index lists, on two threads: recomputes its table with blob
/// ids, and adds the tree segments the manifests need to `segments`.
pub(super) fn read_unindexed(
    repo: &Repository,
    keys: &Keyring,
    inv: &Inventory,
    segments: &mut Segments,
) -> std::io::Result<Unindexed> {
    let wanted = wanted_segments(inv);
    let to_read = inv.unindexed();
    let read = to_read.len();
    let queue = Mutex::new(to_read.into_iter());
    let found = Mutex::new((Vec::new(), Vec::new(), Vec::new()));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((id, _)) = next else { return };
                let mut kept = Vec::new();
                let res = index::rebuild_record(repo, keys, &id, &mut |h, blob| {
                    if wanted.contains(h) {
                        kept.push((*h, blob.to_vec()));
                    }
                })
                .map_err(|e| e.message().to_string());
                let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
                match res {
                    Ok(rec) => found.0.push(rec),
                    Err(why) => found.1.push((id, why)),
                }
                found.2.extend(kept);
            });
        }
    });
    let (mut records, mut unreadable, kept) = found.into_inner().unwrap_or_else(|e| e.into_inner());
    records.sort_by_key(|r| r.id);
    unreadable.sort();
    for (h, bytes) in kept {
        segments.insert(h, &bytes)?;
    }
    let mut index = Index::default();
    records.iter().for_each(|r| index.add(r));
    index.seal();
    Ok(Unindexed {
        index,
        unreadable,
        read,
    })
}

/// Opens a pack the one way packs are opened (hash, then decryption), rebuilds its table
/// from the pack alone (every blob decompressed and hashed, as `repair index` does) and
/// compares it with the index's; hands each blob to `keep`. Returns why the pack is damaged.
/// Blobs are named by their hash, so one handed over before the comparison fails is still
/// exactly the blob its id names.
fn open_and_verify(
    repo: &Repository,
    keys: &Keyring,
    p: &IndexedPack,
    inv: &Inventory,
    keep: &mut dyn FnMut(Hash, &[u8]),
) -> Result<(), String> {
    let (plain, _) = repo
        .open_pack(keys, &p.id)
        .map_err(|e| e.message().to_string())?;
    let rebuilt = pack::table_with_ids(&plain, &mut |id, blob| keep(*id, blob))?;
    let indexed = inv
        .tables
        .get(&p.id)
        .ok_or_else(|| "pack is in no index".to_string())?;
    let found = rebuilt.digest();
    if found.layout != indexed.layout {
        return Err("pack table differs from the index".into());
    }
    if found.whole != indexed.whole {
        return Err("a blob in the pack does not match its id".into());
    }
    Ok(())
}
