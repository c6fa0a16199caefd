//! Reading packs for a check: every tree pack (they are small, and a copy of a segment may be
//! anywhere), then the chosen data packs. A pack that fails is recorded as bad with why.

use super::{Inventory, ReadData};
use crate::hash::Hash;
use crate::repo::index::{Index, IndexedPack, PackSlot};
use crate::repo::keys::Keyring;
use crate::repo::pack::{self, BlobKind, FrameDecoder};
use crate::repo::Repository;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Reads every intact tree pack; returns the segments the manifests need and how many packs
/// were read.
pub(super) fn read_tree_packs(
    repo: &Repository,
    keys: &Keyring,
    inv: &Inventory,
    bad_packs: &mut HashMap<PackSlot, String>,
) -> (HashMap<Hash, Vec<u8>>, usize) {
    let wanted: HashSet<Hash> = inv
        .manifests
        .iter()
        .flat_map(|(id, m)| crate::repo::tree::segment_ids(id, m).unwrap_or_default())
        .collect();
    let mut segments = HashMap::new();
    let mut read = 0;
    for (i, p) in inv.index.slots() {
        if p.kind != BlobKind::Tree || bad_packs.contains_key(&i) {
            continue;
        }
        read += 1;
        let mut keep = |h: Hash, bytes: &[u8]| {
            if wanted.contains(&h) {
                segments.insert(h, bytes.to_vec());
            }
        };
        if let Err(why) = open_and_verify(repo, keys, p, inv, &mut keep) {
            bad_packs.insert(i, why);
        }
    }
    (segments, read)
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
    bad_packs: &mut HashMap<PackSlot, String>,
) -> usize {
    let to_read: Vec<PackSlot> = chosen
        .into_iter()
        .filter(|p| !bad_packs.contains_key(p))
        .collect();
    let count = to_read.len();
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
                        .push((p, why));
                }
            });
        }
    });
    bad_packs.extend(found.into_inner().unwrap_or_else(|e| e.into_inner()));
    count
}

/// Opens a pack the one way packs are opened (hash, then decryption), checks its own table
/// against the index's, and every blob against its id; hands each blob to `keep`. Returns
/// why the pack is damaged.
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
    let (layout, frames) =
        pack::parse(&plain).map_err(|_| "pack table is malformed".to_string())?;
    let table = inv
        .tables
        .get(&p.id)
        .ok_or_else(|| "pack is in no index".to_string())?;
    if !layout.same_layout(table) {
        return Err("pack table differs from the index".into());
    }
    // Blob ids come from the index; hashing every blob proves the pack holds exactly those.
    let mut decoder = FrameDecoder::new()?;
    let mut data = Vec::new();
    let mut off = 0usize;
    for f in &table.frames {
        let end = off + f.compressed_len as usize;
        decoder.decode(&frames[off..end], f.uncompressed_len, &mut data)?;
        if !pack::verify_frame(&data, f).is_empty() {
            return Err("a blob in the pack does not match its id".into());
        }
        let mut b = 0usize;
        for (id, len) in &f.blobs {
            keep(*id, &data[b..b + *len as usize]);
            b += *len as usize;
        }
        off = end;
    }
    Ok(())
}
