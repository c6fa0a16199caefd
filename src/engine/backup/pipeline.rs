//! The backup pipeline: the sources' pages are read (one thread, one source after another),
//! hashed and deduplicated (one thread), compressed (one thread per core), and handed to the
//! repository's writer. Bounded channels between the stages keep memory flat whatever the
//! databases' sizes.

use super::known::Known;
use crate::error::{Error, Result};
use crate::hash::{sha256, Hash};
use crate::recycle::Recycler;
use crate::repo::pack::BlobKind;
use crate::repo::tree::SEGMENT_PAGES;
use crate::repo::writer::{Frame, SnapshotWriter};
use crate::source::{self, PageBatch, SourceImage, StagedImage};
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

/// Spent frames' buffers, for the next frames gathered: as many as the pipeline holds at once
/// (queued, being compressed, being gathered).
static FRAME_BUFFERS: Recycler = Recycler::new(8);

/// A run of new blobs to compress together.
struct FrameJob {
    kind: BlobKind,
    data: Vec<u8>,
    blobs: Vec<(Hash, u32)>,
}

/// One source to back up: where its pages come from, and whether it is a full backup (which
/// stores every page again instead of deduplicating against what is known).
pub(super) struct SourcePages<'a> {
    pub pages: Pages<'a>,
    pub full: bool,
}

#[derive(Default)]
pub(super) struct Deduplicated {
    /// Tree blob ids in page order.
    pub segments: Vec<Hash>,
    pub pages_new: u64,
    pub bytes_new: u64,
    /// Nothing was known when this source began: its snapshot shares no blob with another.
    pub from_nothing: bool,
    /// From the start of the source's read to the end of it (the other stages keep pace).
    pub read_time: Duration,
}

/// The pages of one source on their way to the hasher, which takes the sources one after
/// another.
struct Feed {
    /// The source's place in the batch.
    at: usize,
    pages: Receiver<PageBatch>,
    full: bool,
}

/// Runs every stage to the end over `sources`, one after another through the same stages, so
/// that the next source is read while the last one is still being compressed, and returns
/// what each source saw and what was new in it. `known` holds the blobs the repository already
/// has, and gains those stored now.
pub(super) fn run(
    sources: Vec<SourcePages>,
    known: &mut Known,
    level: i32,
    writer: &mut SnapshotWriter,
) -> Vec<Result<(SourceImage, Deduplicated)>> {
    let count = sources.len();
    for s in &sources {
        crate::progress::add_total(match &s.pages {
            Pages::Staged(st) => st.image.page_count * st.image.page_size as u64,
            Pages::Live { path, .. } => std::fs::metadata(path).map_or(0, |m| m.len()),
        });
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let (feed_tx, feed_rx) = sync_channel::<Feed>(READERS);
    let (frame_tx, frame_rx) = sync_channel::<FrameJob>(workers * 2);
    let (done_tx, done_rx) = sync_channel::<Frame>(workers * 2);
    let frame_rx = Arc::new(Mutex::new(frame_rx));

    let queue = Mutex::new(sources.into_iter().enumerate());
    let results = std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS.min(count))
            .map(|_| {
                let (queue, feeds) = (&queue, feed_tx.clone());
                s.spawn(move || read_sources(queue, feeds))
            })
            .collect();
        drop(feed_tx);
        let hasher = s.spawn(move || dedup_in_order(feed_rx, &frame_tx, known));
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
        let mut images: Vec<Option<(Result<SourceImage>, Duration)>> = vec![None; count];
        for reader in readers {
            for (i, image) in reader.join().unwrap_or_default() {
                images[i] = Some(image);
            }
        }
        // A source nobody read was taken by a reader that panicked.
        let images = images
            .into_iter()
            .map(|i| i.unwrap_or_else(|| (Err(panicked()), Duration::ZERO)));
        let mut dedups = hasher.join().unwrap_or_else(|_| vec![Err(panicked())]);
        // Join every compressor before looking at results: an unjoined panicked thread would
        // make the scope itself panic.
        let joined: Vec<Result<()>> = compressors.into_iter().map(|c| join(c.join())).collect();
        let compressed: Result<()> = joined.into_iter().collect();
        dedups.resize_with(count, || Err(Error::Cancelled));
        images
            .into_iter()
            .zip(dedups)
            .map(|((image, read_time), dedup)| {
                // The reader's error (the source) explains a failure best, then storage, then
                // the rest; a stage that stopped only because another failed says `Cancelled`.
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
                stored.clone()?;
                let mut dedup = dedup?;
                dedup.read_time = read_time;
                Ok((image?, dedup))
            })
            .collect()
    });
    // What comes next (a copy's next restore) should not carry the buffers kept for this.
    FRAME_BUFFERS.release();
    PageBatch::release_buffers();
    results
}

/// Sources read at once: many small databases are read while the hasher works on another, and
/// a database is read ahead of the hasher by at most this many sources (a WAL reader holds its
/// read transaction open meanwhile).
const READERS: usize = 2;

/// Takes sources from `queue` and reads each into a channel of its own handed to the hasher;
/// returns what each source saw, by its place in the queue.
fn read_sources<'a>(
    queue: &Mutex<impl Iterator<Item = (usize, SourcePages<'a>)>>,
    feeds: SyncSender<Feed>,
) -> Vec<(usize, (Result<SourceImage>, Duration))> {
    let mut out = Vec::new();
    loop {
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
        let Some((i, source)) = next else {
            return out;
        };
        let t = Instant::now();
        let (page_tx, page_rx) = sync_channel::<PageBatch>(4);
        let feed = Feed {
            at: i,
            pages: page_rx,
            full: source.full,
        };
        if feeds.send(feed).is_err() {
            out.push((i, (Err(Error::Cancelled), Duration::ZERO)));
            continue;
        }
        let image = match source.pages {
            Pages::Staged(st) => st.replay(page_tx).map(|_| st.image.clone()),
            Pages::Live {
                path,
                read,
                spill_dir,
            } => source::read_image(path, read, spill_dir, page_tx),
        };
        tracing::debug!("source read in {:?}", t.elapsed());
        out.push((i, (image, t.elapsed())));
    }
}

/// Deduplicates the sources in their order, whatever order the readers hand them over in, and
/// stops at the first failure (the hasher's only failure is a stopped compression).
fn dedup_in_order(
    feeds: Receiver<Feed>,
    out: &SyncSender<FrameJob>,
    known: &mut Known,
) -> Vec<Result<Deduplicated>> {
    let mut done = Vec::new();
    let mut waiting = std::collections::BTreeMap::new();
    for feed in feeds {
        waiting.insert(feed.at, feed);
        while let Some(feed) = waiting.remove(&done.len()) {
            let d = dedup_source(feed, out, known);
            let stop = d.is_err();
            done.push(d);
            if stop {
                return done;
            }
        }
    }
    done
}

/// Deduplicates one source's pages: against `known`, or for a full backup against only its
/// own pages (what it stores becomes known all the same).
fn dedup_source(feed: Feed, out: &SyncSender<FrameJob>, known: &mut Known) -> Result<Deduplicated> {
    let from_nothing = feed.full || known.is_empty();
    let mut done = if feed.full {
        let mut own = known.new_empty();
        let done = dedup_pages(feed.pages, out, &mut own);
        // What was sent before a failure may be stored and indexed all the same.
        known.absorb(own)?;
        done?
    } else {
        dedup_pages(feed.pages, out, known)?
    };
    done.from_nothing = from_nothing;
    Ok(done)
}

/// Hashes every page, builds the tree segments, and sends pages and segments not yet stored
/// on to compression.
fn dedup_pages(
    pages: Receiver<PageBatch>,
    out: &SyncSender<FrameJob>,
    known: &mut Known,
) -> Result<Deduplicated> {
    let mut res = Deduplicated::default();
    let mut data = FrameJob {
        kind: BlobKind::Data,
        data: FRAME_BUFFERS.take(DATA_FRAME_BYTES),
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
                    FRAME_BUFFERS.take(limit.min(DATA_FRAME_BYTES)),
                ),
                blobs: std::mem::take(&mut job.blobs),
            };
            let sent = out.send(full).map_err(|_| Error::Cancelled);
            blocked.set(blocked.get() + t.elapsed());
            sent?;
        }
        Ok(())
    };
    let add_segment =
        |segment: &mut Vec<u8>, tree: &mut FrameJob, known: &mut Known, res: &mut Deduplicated| {
            let id = sha256(segment);
            res.segments.push(id);
            if known.insert(id)? {
                tree.data.extend_from_slice(segment);
                tree.blobs.push((id, segment.len() as u32));
            }
            segment.clear();
            Ok::<(), Error>(())
        };
    let mut busy = Duration::ZERO;
    for batch in pages {
        crate::progress::add(batch.data.len() as u64);
        let t = Instant::now();
        for page in batch.data.chunks(batch.page_size) {
            let id = sha256(page);
            segment.extend_from_slice(&id);
            if known.insert(id)? {
                data.data.extend_from_slice(page);
                data.blobs.push((id, page.len() as u32));
                res.pages_new += 1;
                res.bytes_new += page.len() as u64;
                send(&mut data, DATA_FRAME_BYTES)?;
            }
            if segment.len() == SEGMENT_PAGES * 32 {
                add_segment(&mut segment, &mut tree, known, &mut res)?;
                send(&mut tree, TREE_FRAME_BYTES)?;
            }
        }
        busy += t.elapsed();
        batch.recycle();
    }
    tracing::debug!(
        "hasher busy {busy:?}, of which blocked on compression {:?}",
        blocked.get()
    );
    if !segment.is_empty() {
        add_segment(&mut segment, &mut tree, known, &mut res)?;
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
        FRAME_BUFFERS.give(job.data);
        busy += t.elapsed();
        tx.send(frame).map_err(|_| Error::Cancelled)?;
    }
}

fn join<T>(r: std::thread::Result<Result<T>>) -> Result<T> {
    r.unwrap_or_else(|_| Err(panicked()))
}

fn panicked() -> Error {
    Error::Internal("a backup thread panicked".into())
}
