//! The backup pipeline: the source's pages are read (one thread), hashed and deduplicated
//! (one thread), compressed (one thread per core), and handed to the repository's writer.
//! Bounded channels between the stages keep memory flat whatever the database's size.

use crate::error::{Error, Result};
use crate::hash::{sha256, Hash};
use crate::repo::pack::BlobKind;
use crate::repo::tree::SEGMENT_PAGES;
use crate::repo::writer::{Frame, SnapshotWriter};
use crate::source::{self, PageBatch, SourceImage, StagedImage};
use std::collections::HashSet;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Uncompressed bytes per zstd frame: large enough to compress like a stream.
const DATA_FRAME_BYTES: usize = 512 * 1024;
const TREE_FRAME_BYTES: usize = 256 * 1024;

/// Where the pages come from.
pub(super) enum Pages<'a> {
    /// A consistent read of the live database.
    Live {
        path: &'a Path,
        read: &'a source::ReadOptions,
        spill_dir: Option<&'a Path>,
    },
    /// An image read earlier (several targets, one read; copies between repositories).
    Staged(&'a StagedImage),
}

/// A run of new blobs to compress together.
struct FrameJob {
    kind: BlobKind,
    data: Vec<u8>,
    blobs: Vec<(Hash, u32)>,
}

#[derive(Default)]
pub(super) struct Deduplicated {
    /// Tree blob ids in page order.
    pub segments: Vec<Hash>,
    pub pages_new: u64,
    pub bytes_new: u64,
}

/// Runs every stage to the end and returns what the source saw and what was new. `known`
/// holds the blobs the repository already has.
pub(super) fn run(
    pages: Pages,
    known: HashSet<Hash>,
    level: i32,
    writer: &mut SnapshotWriter,
) -> Result<(SourceImage, Deduplicated)> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let (page_tx, page_rx) = sync_channel::<PageBatch>(4);
    let (frame_tx, frame_rx) = sync_channel::<FrameJob>(workers * 2);
    let (done_tx, done_rx) = sync_channel::<Frame>(workers * 2);
    let frame_rx = Arc::new(Mutex::new(frame_rx));

    std::thread::scope(|s| {
        let reader = s.spawn(|| match pages {
            Pages::Staged(st) => st.replay(page_tx).map(|_| st.image.clone()),
            Pages::Live {
                path,
                read,
                spill_dir,
            } => source::read_image(path, read, spill_dir, page_tx),
        });
        let hasher = s.spawn(move || dedup_pages(page_rx, frame_tx, known));
        let mut compressors = Vec::new();
        for _ in 0..workers {
            let rx = Arc::clone(&frame_rx);
            let tx = done_tx.clone();
            compressors.push(s.spawn(move || compress_frames(&rx, &tx, level)));
        }
        // Only the compressors may hold the receiver: if they all die, the hasher's sends fail
        // instead of blocking forever.
        drop(frame_rx);
        drop(done_tx);
        let stored = writer.store_frames(done_rx);
        let image = join(reader.join());
        let dedup = join(hasher.join());
        // Join every compressor before looking at results: an unjoined panicked thread would
        // make the scope itself panic.
        let joined: Vec<Result<()>> = compressors.into_iter().map(|c| join(c.join())).collect();
        let compressed: Result<()> = joined.into_iter().collect();
        // The reader's error (the source) explains a failure best, then storage, then the rest;
        // a stage that stopped only because another failed says `Cancelled`.
        let errors = [
            image.as_ref().err(),
            stored.as_ref().err(),
            dedup.as_ref().err(),
            compressed.as_ref().err(),
        ];
        if let Some(e) = errors
            .into_iter()
            .flatten()
            .find(|e| !matches!(e, Error::Cancelled))
        {
            return Err(e.clone());
        }
        stored?;
        Ok((image?, dedup?))
    })
}

/// Hashes every page, builds the tree segments, and sends pages and segments not yet stored
/// on to compression.
fn dedup_pages(
    pages: Receiver<PageBatch>,
    out: SyncSender<FrameJob>,
    mut known: HashSet<Hash>,
) -> Result<Deduplicated> {
    let mut res = Deduplicated::default();
    let mut data = FrameJob {
        kind: BlobKind::Data,
        data: Vec::with_capacity(DATA_FRAME_BYTES),
        blobs: Vec::new(),
    };
    let mut tree = FrameJob {
        kind: BlobKind::Tree,
        data: Vec::new(),
        blobs: Vec::new(),
    };
    let mut segment: Vec<u8> = Vec::with_capacity(SEGMENT_PAGES * 32);
    let blocked = std::cell::Cell::new(Duration::ZERO);
    let send = |job: &mut FrameJob, limit: usize| -> Result<()> {
        if job.data.len() >= limit && !job.blobs.is_empty() {
            let t = Instant::now();
            let full = FrameJob {
                kind: job.kind,
                data: std::mem::replace(
                    &mut job.data,
                    Vec::with_capacity(limit.min(DATA_FRAME_BYTES)),
                ),
                blobs: std::mem::take(&mut job.blobs),
            };
            let sent = out.send(full).map_err(|_| Error::Cancelled);
            blocked.set(blocked.get() + t.elapsed());
            sent?;
        }
        Ok(())
    };
    let add_segment = |segment: &mut Vec<u8>,
                       tree: &mut FrameJob,
                       known: &mut HashSet<Hash>,
                       res: &mut Deduplicated| {
        let id = sha256(segment);
        res.segments.push(id);
        if known.insert(id) {
            tree.data.extend_from_slice(segment);
            tree.blobs.push((id, segment.len() as u32));
        }
        segment.clear();
    };
    let mut busy = Duration::ZERO;
    for batch in pages {
        let t = Instant::now();
        for page in batch.data.chunks(batch.page_size) {
            let id = sha256(page);
            segment.extend_from_slice(&id);
            if known.insert(id) {
                data.data.extend_from_slice(page);
                data.blobs.push((id, page.len() as u32));
                res.pages_new += 1;
                res.bytes_new += page.len() as u64;
                send(&mut data, DATA_FRAME_BYTES)?;
            }
            if segment.len() == SEGMENT_PAGES * 32 {
                add_segment(&mut segment, &mut tree, &mut known, &mut res);
                send(&mut tree, TREE_FRAME_BYTES)?;
            }
        }
        busy += t.elapsed();
    }
    tracing::debug!(
        "hasher busy {busy:?}, of which blocked on compression {:?}",
        blocked.get()
    );
    if !segment.is_empty() {
        add_segment(&mut segment, &mut tree, &mut known, &mut res);
    }
    send(&mut data, 1)?;
    send(&mut tree, 1)?;
    Ok(res)
}

fn compress_frames(
    rx: &Mutex<Receiver<FrameJob>>,
    tx: &SyncSender<Frame>,
    level: i32,
) -> Result<()> {
    let zstd_error = |e: std::io::Error| Error::Internal(format!("zstd failed: {e}").into());
    let mut compressor = zstd::bulk::Compressor::new(level).map_err(zstd_error)?;
    let mut busy = Duration::ZERO;
    loop {
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => {
                tracing::debug!("compressor busy {busy:?}");
                return Ok(());
            }
        };
        let t = Instant::now();
        let compressed = compressor.compress(&job.data).map_err(zstd_error)?;
        let frame = Frame {
            kind: job.kind,
            compressed,
            uncompressed_len: job.data.len() as u32,
            blobs: job.blobs,
        };
        busy += t.elapsed();
        tx.send(frame).map_err(|_| Error::Cancelled)?;
    }
}

fn join<T>(r: std::thread::Result<Result<T>>) -> Result<T> {
    r.unwrap_or_else(|_| Err(Error::Internal("a backup thread panicked".into())))
}
