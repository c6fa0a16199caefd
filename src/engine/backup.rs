//! Backup: one consistent read of the source, streamed through hashing and deduplication,
//! compression on every core, then packing, encryption and storage. Objects are written in
//! commit order: packs, then the index that lists them, then the manifest.

use crate::error::{Error, Result};
use crate::failpoint;
use crate::repo::binary::{sha256, Hash};
use crate::repo::codec::Sealer;
use crate::repo::index::{self, PackRecord};
use crate::repo::manifest::{self, BackupStats, CopyOrigin, Manifest, SnapshotKind, SourceInfo};
use crate::repo::pack::{self, BlobKind, PackBuilder};
use crate::repo::{config::FORMAT_VERSION, Repository};
use crate::source::{self, PageBatch, StagedImage};
use crate::state::State;
use serde::Serialize;
use std::collections::HashSet;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Page ids per tree segment: 4 KiB of ids, so unchanged stretches of a database share them.
pub const SEGMENT_PAGES: usize = 128;
/// Uncompressed bytes per zstd frame: large enough to compress like a stream.
const DATA_FRAME_BYTES: usize = 512 * 1024;
const TREE_FRAME_BYTES: usize = 256 * 1024;
/// Encrypted pack size to aim for: few requests on S3, bounded memory.
const PACK_BYTES: usize = 8 * 1024 * 1024;
/// Unfinished writes older than this are leftovers of a killed run.
const LEFTOVER_AGE: Duration = Duration::from_secs(60 * 60);
/// Packs stored at once: enough to hide an S3 round trip behind building the next pack.
const UPLOADERS: usize = 2;
const PIPELINE_STOPPED: &str = "backup pipeline stopped";

#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub full: bool,
    pub tags: Vec<String>,
    /// Source name in the manifest; defaults to the file stem.
    pub name: Option<String>,
    pub lock_timeout: Duration,
    /// Recipients to encrypt to besides the repository's own.
    pub extra_recipients: Vec<String>,
    pub accept_recipients: bool,
    pub compression_level: i32,
    /// Where a rollback-journal database's pages are staged so writers wait only for the
    /// read (see `source::read_image`); `None` streams them under the lock.
    pub spill_dir: Option<std::path::PathBuf>,
    /// For copies between repositories: the snapshot records this source (name, path, host)
    /// and origin instead of the local file it was read from.
    pub origin: Option<(SourceInfo, CopyOrigin)>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            full: false,
            tags: Vec::new(),
            name: None,
            lock_timeout: Duration::from_secs(10),
            extra_recipients: Vec::new(),
            accept_recipients: false,
            compression_level: 3,
            spill_dir: None,
            origin: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub snapshot_id: String,
    pub target: String,
    pub kind: SnapshotKind,
    pub parent: Option<String>,
    pub page_size: u32,
    pub page_count: u64,
    pub database_bytes: u64,
    pub pages_new: u64,
    pub bytes_new: u64,
    pub bytes_stored: u64,
    pub duration_ms: u64,
    pub read_lock_ms: u64,
}

/// A run of new blobs to compress together.
struct FrameJob {
    kind: BlobKind,
    data: Vec<u8>,
    blobs: Vec<(Hash, u32)>,
}

struct CompressedFrame {
    kind: BlobKind,
    compressed: Vec<u8>,
    uncompressed_len: u32,
    blobs: Vec<(Hash, u32)>,
}

#[derive(Default)]
struct DedupResult {
    segments: Vec<Hash>,
    pages_new: u64,
    bytes_new: u64,
}

pub fn backup(
    path: &Path,
    repo: &Repository,
    state: &mut State,
    opts: &BackupOptions,
) -> Result<BackupReport> {
    backup_image(path, None, repo, state, opts)
}

/// Backs up an image already staged by `source::stage_image` (several targets, one read).
pub fn backup_staged(
    path: &Path,
    staged: &StagedImage,
    repo: &Repository,
    state: &mut State,
    opts: &BackupOptions,
) -> Result<BackupReport> {
    backup_image(path, Some(staged), repo, state, opts)
}

fn backup_image(
    path: &Path,
    staged: Option<&StagedImage>,
    repo: &Repository,
    state: &mut State,
    opts: &BackupOptions,
) -> Result<BackupReport> {
    let started = Instant::now();
    let config = repo.config().clone();
    state.pin_recipients(
        &config.id,
        &repo.location(),
        &config.recipients,
        opts.accept_recipients,
    )?;
    sweep_leftovers(repo);
    let mut recipients = config.recipients.clone();
    for r in &opts.extra_recipients {
        if !recipients.contains(r) {
            recipients.push(r.clone());
        }
    }
    let sealer = Sealer::new(&recipients)?;
    let (source, copy_of) = match &opts.origin {
        Some((info, origin)) => (info.clone(), Some(origin.clone())),
        None => (local_source(path, opts.name.as_deref()), None),
    };
    let source_key = source.path.clone();

    // What the repository already holds, as far as this host knows without the private key.
    let existing: HashSet<String> = repo
        .list_ids("data")?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let known = if opts.full {
        HashSet::new()
    } else {
        state.known_blobs(&config.id, &existing)?
    };
    let snapshots: HashSet<String> = repo
        .list_ids("snapshots")?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let parent = state
        .last_snapshot(&config.id, &source_key)?
        .filter(|id| snapshots.contains(id));
    let kind = if opts.full || known.is_empty() {
        SnapshotKind::Full
    } else {
        SnapshotKind::Incremental
    };

    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let (page_tx, page_rx) = sync_channel::<PageBatch>(4);
    let (frame_tx, frame_rx) = sync_channel::<FrameJob>(workers * 2);
    let (done_tx, done_rx) = sync_channel::<CompressedFrame>(workers * 2);
    let frame_rx = Arc::new(Mutex::new(frame_rx));
    let level = opts.compression_level;

    let (image, dedup, packs) = std::thread::scope(|s| {
        let reader = s.spawn(|| match staged {
            Some(st) => st.replay(page_tx).map(|_| st.image.clone()),
            None => source::read_image(path, opts.lock_timeout, opts.spill_dir.as_deref(), page_tx),
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
        let packer = store_packs(done_rx, repo, &sealer);
        let image = join(reader.join());
        let dedup = join(hasher.join());
        // Join every compressor before looking at results: an unjoined panicked thread would
        // make the scope itself panic.
        let joined: Vec<Result<()>> = compressors.into_iter().map(|c| join(c.join())).collect();
        let compressed: Result<()> = joined.into_iter().collect();
        // The reader's error (the source) explains a failure best, then storage, then the rest.
        let errors = [
            image.as_ref().err(),
            packer.as_ref().err(),
            dedup.as_ref().err(),
            compressed.as_ref().err(),
        ];
        if let Some(e) = errors
            .into_iter()
            .flatten()
            .find(|e| e.message() != PIPELINE_STOPPED)
        {
            return Err(e.clone());
        }
        Ok((image?, dedup?, packer?))
    })?;
    let (pack_records, mut bytes_stored) = packs;

    if !pack_records.is_empty() {
        let sealed = sealer.seal(&index::encode(&pack_records), 3)?;
        let id = hex::encode(sha256(&sealed));
        repo.put(&format!("index/{id}"), &sealed)?;
        bytes_stored += sealed.len() as u64;
        failpoint::hit("index-written");
        state.record_packs(&config.id, &pack_records)?;
    }

    let mut m = Manifest {
        version: FORMAT_VERSION,
        source,
        time: image
            .time
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        kind,
        parent: parent.clone(),
        tags: opts.tags.clone(),
        page_size: image.page_size,
        page_count: image.page_count,
        journal_mode: image.journal_mode.clone(),
        database_sha256: hex::encode(image.sha256),
        tables: image.tables.clone(),
        segment_pages: SEGMENT_PAGES as u32,
        segments: dedup.segments.iter().map(hex::encode).collect(),
        stats: BackupStats {
            pages_new: dedup.pages_new,
            bytes_new: dedup.bytes_new,
            bytes_stored,
            duration_ms: 0,
            read_lock_ms: image.read_lock.as_millis() as u64,
        },
        copy_of,
    };
    m.stats.duration_ms = started.elapsed().as_millis() as u64;
    let plain = serde_json::to_vec(&m)
        .map_err(|e| Error::Internal(format!("cannot encode manifest: {e}")))?;
    let sealed = sealer.seal(&plain, 3)?;
    let snapshot_id = hex::encode(sha256(&sealed));
    repo.put(&manifest::key(&snapshot_id), &sealed)?;
    bytes_stored += sealed.len() as u64;
    failpoint::hit("manifest-written");
    state.set_last_snapshot(&config.id, &source_key, &snapshot_id)?;

    Ok(BackupReport {
        snapshot_id,
        target: repo.location(),
        kind,
        parent,
        page_size: image.page_size,
        page_count: image.page_count,
        database_bytes: image.page_count * image.page_size as u64,
        pages_new: dedup.pages_new,
        bytes_new: dedup.bytes_new,
        bytes_stored,
        duration_ms: started.elapsed().as_millis() as u64,
        read_lock_ms: image.read_lock.as_millis() as u64,
    })
}

/// Hashes every page, builds the tree segments, and sends pages and segments not yet stored
/// on to compression.
fn dedup_pages(
    pages: Receiver<PageBatch>,
    out: SyncSender<FrameJob>,
    mut known: HashSet<Hash>,
) -> Result<DedupResult> {
    let mut res = DedupResult::default();
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
            let _measure = Defer(|| blocked.set(blocked.get() + t.elapsed()));
            let full = FrameJob {
                kind: job.kind,
                data: std::mem::replace(
                    &mut job.data,
                    Vec::with_capacity(limit.min(DATA_FRAME_BYTES)),
                ),
                blobs: std::mem::take(&mut job.blobs),
            };
            out.send(full)
                .map_err(|_| Error::Internal(PIPELINE_STOPPED.into()))?;
        }
        Ok(())
    };
    let add_segment = |segment: &mut Vec<u8>,
                       tree: &mut FrameJob,
                       known: &mut HashSet<Hash>,
                       res: &mut DedupResult| {
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
    tx: &SyncSender<CompressedFrame>,
    level: i32,
) -> Result<()> {
    let mut compressor = zstd::bulk::Compressor::new(level)
        .map_err(|e| Error::Internal(format!("zstd failed: {e}")))?;
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
        let compressed = compressor
            .compress(&job.data)
            .map_err(|e| Error::Internal(format!("zstd failed: {e}")))?;
        let frame = CompressedFrame {
            kind: job.kind,
            compressed,
            uncompressed_len: job.data.len() as u32,
            blobs: job.blobs,
        };
        busy += t.elapsed();
        tx.send(frame)
            .map_err(|_| Error::Internal(PIPELINE_STOPPED.into()))?;
    }
}

/// A sealed pack on its way to storage.
struct SealedPack {
    id: Hash,
    sealed: Vec<u8>,
    table: pack::PackTable,
}

/// Gathers frames into packs and encrypts each full pack, while uploader threads store the
/// packs before it: on S3 the next pack is built during the previous one's upload.
fn store_packs(
    rx: Receiver<CompressedFrame>,
    repo: &Repository,
    sealer: &Sealer,
) -> Result<(Vec<PackRecord>, u64)> {
    let (up_tx, up_rx) = sync_channel::<SealedPack>(1);
    let up_rx = Arc::new(Mutex::new(up_rx));
    let stored = Mutex::new(Vec::new());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let uploaders: Vec<_> = (0..UPLOADERS)
            .map(|_| {
                let rx = Arc::clone(&up_rx);
                let (stored, failed) = (&stored, &failed);
                s.spawn(move || upload_packs(&rx, repo, stored, failed))
            })
            .collect();
        // Only the uploaders hold the receiver: if they all stop, the packer's sends fail.
        drop(up_rx);
        let packed = pack_frames(rx, sealer, up_tx);
        let uploaded: Vec<Result<()>> = uploaders.into_iter().map(|u| join(u.join())).collect();
        // An upload failure explains a stopped packer better than the packer does.
        for r in uploaded {
            r?;
        }
        packed
    })?;
    let records: Vec<PackRecord> = stored.into_inner().unwrap_or_else(|p| p.into_inner());
    let bytes = records.iter().map(|r| r.size).sum();
    Ok((records, bytes))
}

fn pack_frames(
    rx: Receiver<CompressedFrame>,
    sealer: &Sealer,
    out: SyncSender<SealedPack>,
) -> Result<()> {
    let mut busy = Duration::ZERO;
    let mut data = PackBuilder::new(BlobKind::Data, PACK_BYTES + DATA_FRAME_BYTES);
    let mut tree = PackBuilder::new(BlobKind::Tree, 0);
    let mut flush = |builder: &mut PackBuilder, kind: BlobKind| -> Result<()> {
        if builder.is_empty() {
            return Ok(());
        }
        let cap = if kind == BlobKind::Data {
            PACK_BYTES + DATA_FRAME_BYTES
        } else {
            0
        };
        let t = Instant::now();
        let full = std::mem::replace(builder, PackBuilder::new(kind, cap));
        let (plain, table) = full.finish();
        let sealed = sealer.encrypt(&plain)?;
        drop(plain);
        let id = sha256(&sealed);
        busy += t.elapsed();
        out.send(SealedPack { id, sealed, table })
            .map_err(|_| Error::Internal(PIPELINE_STOPPED.into()))
    };
    // On error, returning drops `rx`, which stops the compressors and, in turn, the reader.
    for frame in rx {
        let builder = if frame.kind == BlobKind::Data {
            &mut data
        } else {
            &mut tree
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
    failed: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    use std::sync::atomic::Ordering;
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
        if let Err(e) = repo.put(&pack::key(&p.id), &p.sealed) {
            failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
        busy += t.elapsed();
        stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PackRecord {
                id: p.id,
                size: p.sealed.len() as u64,
                table: p.table,
            });
        failpoint::hit("pack-written");
    }
}

/// Removes what killed runs left behind (unfinished multipart uploads, temporary files).
/// Only old ones: a younger one may belong to a backup running elsewhere right now.
fn sweep_leftovers(repo: &Repository) {
    match repo.storage().sweep_incomplete(LEFTOVER_AGE) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            "removed {n} leftovers of interrupted writes from {}",
            repo.location()
        ),
        // Not worth failing a backup over: they cost space, not correctness.
        Err(e) => tracing::warn!(
            "could not look for leftovers of interrupted writes in {}: {e}",
            repo.location()
        ),
    }
}

fn join<T>(r: std::thread::Result<Result<T>>) -> Result<T> {
    r.unwrap_or_else(|_| Err(Error::Internal("a backup thread panicked".into())))
}

/// The source as this host names it: `name` or the file stem, the absolute path, the host.
fn local_source(path: &Path, name: Option<&str>) -> SourceInfo {
    let name = name.map(str::to_string).unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "database".into())
    });
    SourceInfo {
        name,
        path: std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string(),
        host: hostname(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs a closure when dropped.
struct Defer<F: FnMut()>(F);

impl<F: FnMut()> Drop for Defer<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}
