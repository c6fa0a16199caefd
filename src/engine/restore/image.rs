//! A snapshot read in place: its pages served to SQLite (through [`crate::sqlite_vfs`])
//! straight from the repository, fetched only when a query touches them. Only the frame that
//! holds a page is fetched and decrypted (age authenticates it), and it is decompressed once
//! while it stays in a small cache; every page is checked against its blob id each time it is
//! served. For reading a small part of a large snapshot (a month of invoices)
//! without restoring the whole file.

use super::rebuild::locate_pages;
use crate::error::{Error, Hint, Hinted, Result};
use crate::hash::{sha256, Hash};
use crate::repo::copies::CopyChooser;
use crate::repo::ids::SnapshotId;
use crate::repo::index::{BlobLocation, Index, PackSlot};
use crate::repo::keys::Keyring;
use crate::repo::manifest::Manifest;
use crate::repo::pack::FrameDecoder;
use crate::repo::Repository;
use crate::sqlite_vfs::{Mounted, PageSource};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Bytes of decompressed frames kept (a frame is at most 512 KiB).
const FRAMES_KEPT: usize = 32 << 20;
/// Bytes of decrypted, still compressed frames kept: a query that comes back to a frame
/// decompresses it again rather than fetch and decrypt it again.
const COMPRESSED_KEPT: usize = 48 << 20;

/// Mounts snapshot `id` for SQLite to read in place.
pub(crate) fn mount(
    repo: Arc<Repository>,
    keys: Arc<Keyring>,
    id: &SnapshotId,
    m: &Manifest,
) -> Result<Mounted> {
    // The page list has exactly the manifest's page count (`tree::page_list` checks).
    let (pages, index, warnings) = locate_pages(&repo, &keys, id, m, &mut Vec::new())?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    mount_pages((repo, keys, Arc::new(index)), pages, m.page_size, true)
}

/// Mounts a snapshot's `pages` (the blob id of each, in order, from `tree::page_list`), whose
/// blobs `index` locates. With `weigh_copies`, pages of blobs stored more than once are read
/// from the copies in the frames the snapshot wants most of (see `repo::copies`): worth it
/// for queries that read much of the snapshot, not for a lookup of a few pages, where
/// weighing every page's copies costs more than any frame it saves.
pub(crate) fn mount_pages(
    (repo, keys, index): (Arc<Repository>, Arc<Keyring>, Arc<Index>),
    pages: Vec<Hash>,
    page_size: u32,
    weigh_copies: bool,
) -> Result<Mounted> {
    let chooser = (weigh_copies && index.blob_count() > pages.len()).then(|| {
        let mut c = CopyChooser::default();
        for blob in &pages {
            let copies: Vec<BlobLocation> = index.locations(blob).collect();
            copies
                .iter()
                .for_each(|l| c.want(&index, l, copies.len() == 1));
        }
        c
    });
    Mounted::new(Box::new(SnapshotPages {
        repo,
        keys,
        pages,
        chooser,
        index,
        page_size,
        cache: Mutex::new(Cache::default()),
    }))
}

struct SnapshotPages {
    repo: Arc<Repository>,
    keys: Arc<Keyring>,
    pages: Vec<Hash>,
    /// Ranks the copies of blobs stored more than once; `None` when the index lists no more
    /// blobs than the snapshot has pages (then copies are rare, and their order is the index's).
    chooser: Option<CopyChooser>,
    index: Arc<Index>,
    page_size: u32,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    frames: Kept<(PackSlot, u32)>,
    compressed: Kept<(PackSlot, u32)>,
    /// Packs that failed once, and why: not fetched again.
    failed: HashMap<PackSlot, Error>,
    decoder: Option<FrameDecoder>,
    /// Frames fetched, their compressed bytes, and pages served (shown with `-vv`).
    fetched: (u64, u64, u64),
}

/// The most recently used byte buffers, newest first, up to a number of bytes.
struct Kept<K> {
    entries: VecDeque<(K, Arc<Vec<u8>>)>,
    bytes: usize,
}

impl<K> Default for Kept<K> {
    fn default() -> Self {
        Kept {
            entries: VecDeque::new(),
            bytes: 0,
        }
    }
}

impl<K: PartialEq + Copy> Kept<K> {
    fn get(&mut self, key: K) -> Option<Arc<Vec<u8>>> {
        let at = self.entries.iter().position(|(k, _)| *k == key)?;
        let entry = self.entries.remove(at)?;
        let value = entry.1.clone();
        self.entries.push_front(entry);
        Some(value)
    }

    fn put(&mut self, key: K, value: Arc<Vec<u8>>, budget: usize) {
        self.bytes += value.len();
        self.entries.push_front((key, value));
        while self.bytes > budget && self.entries.len() > 1 {
            if let Some((_, v)) = self.entries.pop_back() {
                self.bytes -= v.len();
            }
        }
    }
}

impl SnapshotPages {
    fn damaged(&self, slot: PackSlot, why: &str) -> Error {
        self.repo.damaged_pack(&self.index.pack(slot).id, why)
    }

    /// Frame `frame` of pack `slot`, decompressed.
    fn frame(&self, cache: &mut Cache, slot: PackSlot, frame: u32) -> Result<Arc<Vec<u8>>> {
        if let Some(f) = cache.frames.get((slot, frame)) {
            return Ok(f);
        }
        if let Some(e) = cache.failed.get(&slot) {
            return Err(e.clone());
        }
        let pack = self.index.pack(slot);
        let f = pack.frames[frame as usize];
        let compressed = match cache.compressed.get((slot, frame)) {
            Some(c) => c,
            None => {
                let fetched = self
                    .repo
                    .open_pack_part(
                        &self.keys,
                        &pack.id,
                        pack.size,
                        (f.offset, f.compressed_len as u64),
                    )
                    .inspect_err(|e| {
                        if let Error::Integrity(_) = e {
                            cache.failed.insert(slot, e.clone());
                        }
                    })?;
                cache.fetched.0 += 1;
                cache.fetched.1 += fetched.len() as u64;
                let fetched = Arc::new(fetched);
                cache
                    .compressed
                    .put((slot, frame), fetched.clone(), COMPRESSED_KEPT);
                fetched
            }
        };
        let decoder = match &mut cache.decoder {
            Some(d) => d,
            None => cache
                .decoder
                .insert(FrameDecoder::new().map_err(|e| Error::Internal(e.into()))?),
        };
        let mut data = Vec::new();
        if let Err(why) = decoder.decode(&compressed, f.uncompressed_len, &mut data) {
            let e = self.damaged(slot, &why);
            cache.failed.insert(slot, e.clone());
            return Err(e);
        }
        let data = Arc::new(data);
        cache.frames.put((slot, frame), data.clone(), FRAMES_KEPT);
        Ok(data)
    }
}

impl Drop for SnapshotPages {
    fn drop(&mut self) {
        let cache = self.cache.get_mut().unwrap_or_else(|p| p.into_inner());
        let (frames, bytes, pages) = cache.fetched;
        tracing::debug!(
            "snapshot read in place: {pages} pages served, {frames} frames fetched ({} MiB)",
            bytes >> 20
        );
    }
}

impl PageSource for SnapshotPages {
    fn page_size(&self) -> u32 {
        self.page_size
    }

    fn page_count(&self) -> u64 {
        self.pages.len() as u64
    }

    fn read_page(&self, number: u64, out: &mut [u8]) -> Result<()> {
        let blob = number
            .checked_sub(1)
            .and_then(|i| self.pages.get(i as usize))
            .ok_or_else(|| Error::Internal(format!("page {number} is past the end").into()))?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = None;
        // Every stored copy in turn: a damaged pack falls back to another copy, as a restore does.
        let mut copies: Vec<BlobLocation> = self.index.locations(blob).collect();
        if let Some(c) = &self.chooser {
            c.rank(&self.index, &mut copies);
        }
        for loc in copies {
            let frame = match self.frame(&mut cache, loc.pack, loc.frame) {
                Ok(f) => f,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let bytes = frame
                .get(loc.offset as usize..(loc.offset + loc.len) as usize)
                .filter(|b| b.len() == out.len() && sha256(b) == *blob);
            match bytes {
                Some(b) => {
                    cache.fetched.2 += 1;
                    out.copy_from_slice(b);
                    return Ok(());
                }
                None => {
                    let e = self.damaged(loc.pack, "a blob does not match its id");
                    cache.failed.insert(loc.pack, e.clone());
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::Integrity(
                format!(
                    "blob {} is referenced but no index of {} lists it",
                    hex::encode(blob),
                    self.repo.location()
                )
                .hinted(Hint::CheckStructure),
            )
        }))
    }
}
