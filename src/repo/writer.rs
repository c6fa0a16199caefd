//! Writing a snapshot into the repository, in the order docs/FORMAT.md requires: packs, then
//! the index that lists them, then the manifest. Until the manifest exists nothing refers to
//! the new objects, so a writer dropped at any point leaves a valid repository.
//!
//! The caller hands over compressed frames; the writer gathers them into packs of about
//! 8 MiB, encrypts each, and stores them on two uploader threads, so that on S3 the next pack
//! is built while the previous one is in flight (memory stays bounded: one pack queued, two
//! uploading).

use super::codec::Sealer;
use super::ids::{PackId, SnapshotId};
use super::index::{self, PackRecord};
use super::manifest::{self, Manifest};
use super::pack::{BlobKind, PackBuilder, PackTable};
use super::signing::SigningKey;
use super::Repository;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::hash::{sha256, Hash};
use std::sync::atomic::{AtomicBool, Ordering};
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
    packs: Vec<PackRecord>,
    indexed: bool,
    bytes_stored: u64,
    on_stored: Option<OnPackStored<'r>>,
}

impl<'r> SnapshotWriter<'r> {
    /// Every object will be encrypted to `recipients`.
    pub fn new(repo: &'r Repository, recipients: &[String]) -> Result<Self> {
        Ok(SnapshotWriter {
            repo,
            sealer: Sealer::new(recipients)?,
            packs: Vec::new(),
            indexed: false,
            bytes_stored: 0,
            on_stored: None,
        })
    }

    /// Calls `f` with each pack as soon as it is stored, so a caller can remember packs that a
    /// failed or killed run stored without indexing them.
    pub fn on_pack_stored(&mut self, f: OnPackStored<'r>) {
        self.on_stored = Some(f);
    }

    /// Indexes, with this snapshot's packs, packs an interrupted run stored (complete, and
    /// listed at the size they were written with) so their blobs can be used.
    pub fn adopt(&mut self, packs: Vec<PackRecord>) {
        self.packs.extend(packs);
    }

    /// Packs, encrypts and stores frames until `frames` closes. On error `frames` is dropped,
    /// which stops whoever feeds it.
    pub fn store_frames(&mut self, frames: Receiver<Frame>) -> Result<()> {
        let (up_tx, up_rx) = sync_channel::<SealedPack>(1);
        let up_rx = Arc::new(Mutex::new(up_rx));
        let stored = Mutex::new(Vec::new());
        let failed = AtomicBool::new(false);
        let (repo, sealer, on_stored) = (self.repo, &self.sealer, self.on_stored.as_deref());
        std::thread::scope(|s| {
            let uploaders: Vec<_> = (0..UPLOADERS)
                .map(|_| {
                    let rx = Arc::clone(&up_rx);
                    let (stored, failed) = (&stored, &failed);
                    s.spawn(move || upload_packs(&rx, repo, stored, failed, on_stored))
                })
                .collect();
            // Only the uploaders hold the receiver: if they all stop, the packer's sends fail.
            drop(up_rx);
            let packed = pack_frames(frames, sealer, up_tx);
            let uploaded: Vec<Result<()>> = uploaders
                .into_iter()
                .map(|u| u.join().unwrap_or_else(|_| Err(panicked())))
                .collect();
            // An upload failure explains a stopped packer better than the packer does.
            for r in uploaded {
                r?;
            }
            packed
        })?;
        let records = stored.into_inner().unwrap_or_else(|p| p.into_inner());
        self.bytes_stored += records.iter().map(|r| r.size).sum::<u64>();
        self.packs.extend(records);
        Ok(())
    }

    /// Bytes written so far: packs, and the index once written.
    pub fn bytes_stored(&self) -> u64 {
        self.bytes_stored
    }

    /// Writes the index of the packs stored so far, and returns them (a cache of what the
    /// repository holds may record them now: they are reachable through an index).
    pub fn write_index(&mut self) -> Result<&[PackRecord]> {
        if !self.indexed && !self.packs.is_empty() {
            let (_, size) = index::store(self.repo, &self.sealer, &self.packs)?;
            self.bytes_stored += size;
            failpoint::hit("index-written");
        }
        self.indexed = true;
        Ok(&self.packs)
    }

    /// Writes the manifest, signed with `key` when there is one, last, and returns the
    /// snapshot id and the bytes written in all.
    pub fn commit(mut self, m: &Manifest, key: Option<&SigningKey>) -> Result<(SnapshotId, u64)> {
        self.write_index()?;
        let plain = manifest::encode(m, key)
            .map_err(|e| Error::Internal(format!("cannot encode manifest: {e}").into()))?;
        let sealed = self.sealer.seal(&plain, METADATA_LEVEL)?;
        let id = self.repo.put_object::<SnapshotId>(&sealed)?;
        failpoint::hit("manifest-written");
        Ok((id, self.bytes_stored + sealed.len() as u64))
    }
}

/// A sealed pack on its way to storage.
struct SealedPack {
    id: PackId,
    sealed: Vec<u8>,
    table: PackTable,
}

fn pack_frames(rx: Receiver<Frame>, sealer: &Sealer, out: SyncSender<SealedPack>) -> Result<()> {
    let mut busy = Duration::ZERO;
    let capacity = |kind: BlobKind| match kind {
        BlobKind::Data => PACK_BYTES + MAX_FRAME_BYTES,
        BlobKind::Tree => 0,
    };
    let mut data = PackBuilder::new(BlobKind::Data, capacity(BlobKind::Data));
    let mut tree = PackBuilder::new(BlobKind::Tree, capacity(BlobKind::Tree));
    let mut flush = |builder: &mut PackBuilder, kind: BlobKind| -> Result<()> {
        if builder.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        let full = std::mem::replace(builder, PackBuilder::new(kind, capacity(kind)));
        let (plain, table) = full.finish();
        let sealed = sealer.encrypt(&plain)?;
        drop(plain);
        let id = PackId(sha256(&sealed));
        busy += t.elapsed();
        out.send(SealedPack { id, sealed, table })
            .map_err(|_| Error::Cancelled)
    };
    // On error, returning drops `rx`, which stops the producers upstream.
    for frame in rx {
        let builder = match frame.kind {
            BlobKind::Data => &mut data,
            BlobKind::Tree => &mut tree,
        };
        builder.push(&frame.compressed, frame.uncompressed_len, frame.blobs);
        if builder.len() >= PACK_BYTES {
            flush(builder, frame.kind)?;
        }
    }
    flush(&mut data, BlobKind::Data)?;
    flush(&mut tree, BlobKind::Tree)?;
    tracing::debug!("packer busy {busy:?}");
    Ok(())
}

fn upload_packs(
    rx: &Mutex<Receiver<SealedPack>>,
    repo: &Repository,
    stored: &Mutex<Vec<PackRecord>>,
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
        stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
        failpoint::hit("pack-written");
    }
}

fn panicked() -> Error {
    Error::Internal("a pack uploader thread panicked".into())
}
