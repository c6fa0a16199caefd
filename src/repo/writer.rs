//! Writing a snapshot into the repository, in the order docs/FORMAT.md requires: packs, then
//! the index that lists them, then the manifest. Until the manifest exists nothing refers to
//! the new objects, so a writer dropped at any point leaves a valid repository.
//!
//! The caller hands over compressed frames; the writer gathers them into packs of about
//! 8 MiB, encrypting each as its frames arrive, and stores them on two uploader threads, so
//! that on S3 the next pack is built while the previous ones are in flight (memory stays
//! bounded: one pack being built, two uploading). Several sources may hand over frames one after another (a batch, see
//! `engine::backup::batch`): a pack that is not full yet waits for the next source's frames
//! until the index is written, and one index then lists the packs of all of them.

use super::codec::{encryption_failed, Sealer};
use super::ids::{PackId, SnapshotId};
use super::index::{self, PackRecord};
use super::manifest::{self, Manifest};
use super::pack::{BlobKind, PackBuilder, PackTable};
use super::signing::SigningKey;
use super::unindexed::Unindexed;
use super::Repository;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::hash::{sha256, Hash};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Encrypted pack size to aim for: few requests on S3, bounded memory.
const PACK_BYTES: usize = 8 * 1024 * 1024;
/// The largest frame a data pack is expected to take on top of `PACK_BYTES`.
const MAX_FRAME_BYTES: usize = 512 * 1024;
/// Packs stored at once: enough to hide an S3 round trip behind building the next pack.
const UPLOADERS: usize = 2;
/// zstd level of indexes and manifests: small objects, read on every restore.
const METADATA_LEVEL: i32 = 3;

/// A zstd frame holding one or more blobs back to back.
pub struct Frame {
    pub kind: BlobKind,
    pub compressed: Vec<u8>,
    pub uncompressed_len: u32,
    /// (blob id, length) in the order they follow each other.
    pub blobs: Vec<(Hash, u32)>,
}

/// Told about each pack as soon as it is stored, before any index lists it (from the
/// uploader threads).
pub type OnPackStored<'r> = Box<dyn Fn(&PackRecord) + Send + Sync + 'r>;

/// The packs, index and manifest of one snapshot on their way into a repository.
pub struct SnapshotWriter<'r> {
    repo: &'r Repository,
    sealer: Sealer,
    /// Packs stored that no index written by this writer lists yet.
    packs: Unindexed,
    /// Packs being filled (and encrypted as they are), kept from one call of `store_frames`
    /// to the next.
    open_data: Option<SealingPack>,
    open_tree: Option<SealingPack>,
    bytes_stored: u64,
    /// Set once a store failed: the frames handed over since may be lost.
    failed: Option<Error>,
    on_stored: Option<OnPackStored<'r>>,
}

impl<'r> SnapshotWriter<'r> {
    /// Every object will be encrypted to `recipients`.
    pub fn new(repo: &'r Repository, recipients: &[String]) -> Result<Self> {
        Ok(SnapshotWriter {
            repo,
            sealer: Sealer::new(recipients)?,
            packs: Unindexed::default(),
            open_data: None,
            open_tree: None,
            bytes_stored: 0,
            failed: None,
            on_stored: None,
        })
    }

    /// Calls `f` with each pack as soon as it is stored, so a caller can remember packs that a
    /// failed or killed run stored without indexing them.
    pub fn on_pack_stored(&mut self, f: OnPackStored<'r>) {
        self.on_stored = Some(f);
    }

    /// Keeps the records of stored packs that wait for the index in unnamed files in `dir`,
    /// past one index object's worth, instead of in memory.
    pub fn spill_records_to(&mut self, dir: &std::path::Path) {
        self.packs.spill_to(dir);
    }

    /// Indexes, with this snapshot's packs, packs an interrupted run stored (complete, and
    /// listed at the size they were written with) so their blobs can be used.
    pub fn adopt(&mut self, packs: Vec<PackRecord>) -> Result<()> {
        packs.into_iter().try_for_each(|p| self.packs.push(p))
    }

    /// Packs, encrypts and stores frames until `frames` closes. A pack that is not full yet
    /// stays open for the next call; the index stores it. On error `frames` is dropped, which
    /// stops whoever feeds it, and every later call fails alike.
    pub fn store_frames(&mut self, frames: Receiver<Frame>) -> Result<()> {
        self.store(frames, false)
    }

    fn store(&mut self, frames: Receiver<Frame>, close_packs: bool) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let (up_tx, up_rx) = sync_channel::<SealedPack>(0);
        let up_rx = Arc::new(Mutex::new(up_rx));
        let stored = Mutex::new(&mut self.packs);
        let stored_bytes = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        let (repo, sealer, on_stored) = (self.repo, &self.sealer, self.on_stored.as_deref());
        let open = (&mut self.open_data, &mut self.open_tree);
        let result = std::thread::scope(|s| {
            let uploaders: Vec<_> = (0..UPLOADERS)
                .map(|_| {
                    let rx = Arc::clone(&up_rx);
                    let stored = (&stored, &stored_bytes);
                    let failed = &failed;
                    s.spawn(move || upload_packs(&rx, repo, stored, failed, on_stored))
                })
                .collect();
            // Only the uploaders hold the receiver: if they all stop, the packer's sends fail.
            drop(up_rx);
            let packed = pack_frames(frames, sealer, open, close_packs, up_tx);
            let uploaded: Vec<Result<()>> = uploaders
                .into_iter()
                .map(|u| u.join().unwrap_or_else(|_| Err(panicked())))
                .collect();
            // An upload failure explains a stopped packer better than the packer does.
            for r in uploaded {
                r?;
            }
            packed
        });
        self.bytes_stored += stored_bytes.into_inner();
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// Bytes written so far: packs, and the index once written.
    pub fn bytes_stored(&self) -> u64 {
        self.bytes_stored
    }

    /// Stores the packs still open, then writes an index of the packs no index of this writer
    /// lists yet, as objects of at most `BLOBS_PER_INDEX` blobs (a large backup's index is
    /// never sealed whole in memory). `indexed` is told each object's packs once it is stored
    /// (a cache of what the repository holds may record them then: they are reachable through
    /// an index). Returns how many packs were indexed.
    pub fn write_index(
        &mut self,
        indexed: &mut dyn FnMut(&[PackRecord]) -> Result<()>,
    ) -> Result<usize> {
        let (_, none) = sync_channel::<Frame>(0);
        self.store(none, true)?;
        let (repo, sealer, bytes) = (self.repo, &self.sealer, &mut self.bytes_stored);
        self.packs.drain(&mut |group| {
            let (_, size) = index::store(repo, sealer, group)?;
            *bytes += size;
            failpoint::hit("index-written");
            indexed(group)
        })
    }

    /// Writes a manifest, signed with `key` when there is one, after the index of every pack
    /// stored so far, and returns the snapshot id and the manifest's size.
    pub fn write_manifest(
        &mut self,
        m: &Manifest,
        key: Option<&SigningKey>,
    ) -> Result<(SnapshotId, u64)> {
        self.write_index(&mut |_| Ok(()))?;
        let plain = manifest::encode(m, key)
            .map_err(|e| Error::Internal(format!("cannot encode manifest: {e}").into()))?;
        let sealed = self.sealer.seal(&plain, METADATA_LEVEL)?;
        let id = self.repo.put_object::<SnapshotId>(&sealed)?;
        self.bytes_stored += sealed.len() as u64;
        failpoint::hit("manifest-written");
        Ok((id, sealed.len() as u64))
    }
}

/// A pack encrypted as its frames arrive, so its plaintext is never held whole.
type SealingPack = PackBuilder<age::stream::StreamWriter<Vec<u8>>>;

/// Bytes a pack of `kind` is built to hold before it is stored.
fn capacity(kind: BlobKind) -> usize {
    match kind {
        BlobKind::Data => PACK_BYTES + MAX_FRAME_BYTES,
        BlobKind::Tree => 0,
    }
}

/// A sealed pack on its way to storage.
struct SealedPack {
    id: PackId,
    sealed: Vec<u8>,
    table: PackTable,
}

/// Adds frames to the open packs, storing each pack that fills up, and with `close` the
/// rest too.
fn pack_frames(
    rx: Receiver<Frame>,
    sealer: &Sealer,
    (data, tree): (&mut Option<SealingPack>, &mut Option<SealingPack>),
    close: bool,
    out: SyncSender<SealedPack>,
) -> Result<()> {
    let busy = std::cell::Cell::new(Duration::ZERO);
    let flush = |open: &mut Option<SealingPack>| -> Result<()> {
        let Some(full) = open.take().filter(|b| !b.is_empty()) else {
            return Ok(());
        };
        let t = Instant::now();
        let (stream, table) = full.finish().map_err(encryption_failed)?;
        let sealed = stream.finish().map_err(encryption_failed)?;
        let id = PackId(sha256(&sealed));
        busy.set(busy.get() + t.elapsed());
        out.send(SealedPack { id, sealed, table })
            .map_err(|_| Error::Cancelled)
    };
    // On error, returning drops `rx`, which stops the producers upstream.
    for frame in rx {
        let open = match frame.kind {
            BlobKind::Data => &mut *data,
            BlobKind::Tree => &mut *tree,
        };
        let t = Instant::now();
        let builder = match open {
            Some(b) => b,
            None => open.insert(PackBuilder::writing_to(
                frame.kind,
                sealer.encrypting(capacity(frame.kind))?,
            )),
        };
        builder
            .push(&frame.compressed, frame.uncompressed_len, frame.blobs)
            .map_err(encryption_failed)?;
        let full = builder.len() >= PACK_BYTES;
        busy.set(busy.get() + t.elapsed());
        if full {
            flush(open)?;
        }
    }
    if close {
        flush(data)?;
        flush(tree)?;
    }
    tracing::debug!("packer busy {:?}", busy.get());
    Ok(())
}

fn upload_packs(
    rx: &Mutex<Receiver<SealedPack>>,
    repo: &Repository,
    (stored, stored_bytes): (&Mutex<&mut Unindexed>, &AtomicU64),
    failed: &AtomicBool,
    on_stored: Option<&(dyn Fn(&PackRecord) + Send + Sync)>,
) -> Result<()> {
    let mut busy = Duration::ZERO;
    loop {
        if failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Ok(p) = rx.lock().unwrap_or_else(|p| p.into_inner()).recv() else {
            tracing::debug!("uploader busy {busy:?}");
            return Ok(());
        };
        let t = Instant::now();
        if let Err(e) = repo.put_object::<PackId>(&p.sealed) {
            failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
        busy += t.elapsed();
        let record = PackRecord {
            id: p.id,
            size: p.sealed.len() as u64,
            table: p.table,
        };
        if let Some(f) = on_stored {
            f(&record);
        }
        stored_bytes.fetch_add(record.size, Ordering::Relaxed);
        let kept = stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
        if let Err(e) = kept {
            failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
        failpoint::hit("pack-written");
    }
}

fn panicked() -> Error {
    Error::Internal("a pack uploader thread panicked".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::ids::IndexId;
    use crate::repo::index::tests::sample_records;
    use crate::repo::unindexed::BLOBS_PER_INDEX;
    use crate::storage::MemoryStorage;

    #[test]
    fn a_large_index_is_written_as_several_objects_each_told_once_stored() {
        let (keys, recipient) = crate::repo::tests::new_keys();
        let repo =
            Repository::init(Arc::new(MemoryStorage::new()), vec![recipient.clone()]).unwrap();
        let mut writer = SnapshotWriter::new(&repo, &[recipient]).unwrap();
        // 70 packs of 4096 blobs: more than one object's worth.
        let packs = sample_records(70, 256);
        const { assert!(70 * 4096 > BLOBS_PER_INDEX) };
        writer.adopt(packs.clone()).unwrap();
        let mut groups = Vec::new();
        let indexed = writer
            .write_index(&mut |g| {
                groups.push(g.len());
                Ok(())
            })
            .unwrap();
        assert_eq!(indexed, 70);
        assert_eq!(groups, [64, 6]);
        assert_eq!(repo.list::<IndexId>().unwrap().len(), 2);
        let (index, unreadable) = repo.load_index(&keys).unwrap();
        assert!(unreadable.is_empty());
        assert_eq!(index.blob_count(), 70 * 4096);
        // Nothing is left to index, and a second call writes nothing.
        assert_eq!(writer.write_index(&mut |_| Ok(())).unwrap(), 0);
        assert_eq!(repo.list::<IndexId>().unwrap().len(), 2);
    }
}
