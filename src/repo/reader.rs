//! Reads blobs out of packs, several packs at once. Every pack is checked against its id
//! (SHA-256 of the encrypted bytes), authenticated by age, and every blob against its own id.

use super::binary::{sha256, Hash};
use super::index::Index;
use super::keys::Keyring;
use super::{codec, pack, Repository};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Reads each blob in `wanted` once and hands it to `sink`. Returns the encrypted bytes read.
pub fn read_blobs<F>(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    wanted: impl IntoIterator<Item = Hash>,
    workers: usize,
    sink: F,
) -> Result<u64>
where
    F: Fn(&Hash, &[u8]) -> Result<()> + Sync,
{
    // pack -> frame -> blobs wanted from it
    let mut plan: BTreeMap<u32, BTreeMap<u32, Vec<(Hash, u32, u32)>>> = BTreeMap::new();
    for id in wanted {
        let loc = index.locate(&id).ok_or_else(|| {
            Error::Integrity(format!(
                "blob {} is referenced but no index of {} lists it; run `ivault check`",
                hex::encode(id),
                repo.location()
            ))
        })?;
        plan.entry(loc.pack)
            .or_default()
            .entry(loc.frame)
            .or_default()
            .push((id, loc.offset, loc.len));
    }
    let queue = Mutex::new(plan.into_iter());
    let failed = AtomicBool::new(false);
    let bytes = AtomicU64::new(0);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some((pack_no, frames)) = next else { return };
                let res = read_pack(repo, keys, index, pack_no, &frames, &sink);
                match res {
                    Ok(n) => {
                        bytes.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(bytes.into_inner()),
    }
}

fn read_pack<F>(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    pack_no: u32,
    frames: &BTreeMap<u32, Vec<(Hash, u32, u32)>>,
    sink: &F,
) -> Result<u64>
where
    F: Fn(&Hash, &[u8]) -> Result<()>,
{
    let p = index.pack(pack_no);
    let id = hex::encode(p.id);
    let key = pack::key(&p.id);
    let sealed = repo.get_verified(&key, &id)?;
    let plain = codec::decrypt(keys, &sealed).map_err(|e| repo.open_error(&key, e))?;
    let damaged = |why: &str| {
        Error::Integrity(format!(
            "pack {id} in {} is damaged ({why}); run `ivault check --read-data`",
            repo.location()
        ))
    };
    for (frame_no, blobs) in frames {
        let f = p.frames[*frame_no as usize];
        let start = f.offset as usize;
        let end = start + f.compressed_len as usize;
        let compressed = plain.get(start..end).ok_or_else(|| damaged("frame past end"))?;
        let data = codec::decompress(compressed, f.uncompressed_len as usize)
            .map_err(|_| damaged("frame does not decompress"))?;
        for (blob, off, len) in blobs {
            let bytes = data
                .get(*off as usize..(*off + *len) as usize)
                .ok_or_else(|| damaged("blob past end of frame"))?;
            if sha256(bytes) != *blob {
                return Err(damaged("a blob does not match its id"));
            }
            sink(blob, bytes)?;
        }
    }
    Ok(sealed.len() as u64)
}
