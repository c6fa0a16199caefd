//! A full restore's read plan, kept out of memory: which blob every page needs and where that
//! blob is stored, sorted into the order packs are read. The page list (from the tree) and
//! the repository's blob locations (from the indexes) are each sorted by blob id in
//! [`SortedRuns`], joined, and the result sorted by pack and frame. Below 16 MiB a list is
//! sorted in memory; past it, in runs on disk, so a restore's memory does not grow with the
//! database.

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::record_tape::RecordTape;
use crate::repo::copies::CopyChooser;
use crate::repo::ids::SnapshotId;
use crate::repo::index::{BlobLocation, Index, PackSlot};
use crate::repo::keys::Keyring;
use crate::repo::manifest::Manifest;
use crate::repo::pack::BlobKind;
use crate::repo::reader::{self, BlobsRead, DamagedPack, Frames, PackError};
use crate::repo::{tree, Repository};
use crate::sorted_runs::{list_memory, Sorted, SortedRuns};
use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

/// A page of the snapshot: blob id, page number.
type PageRecord = [u8; 36];
/// A blob the indexes list: blob id, pack slot, frame, offset, length.
type BlobRecord = [u8; 48];
/// A page to read: pack slot, frame, offset, page number, length, blob id.
type ReadRecord = [u8; 52];

/// What to read for a full restore, in pack order, with the packs' index.
pub(crate) struct ReadPlan {
    /// Every pack, and the tree blobs; page blobs are located by `reads` instead.
    pub index: Index,
    reads: Sorted<52>,
    pub warnings: Vec<String>,
}

/// The read plan of snapshot `id`; runs go to unnamed files in `scratch`, and a failure to
/// write them is reported through `scratch_error`.
pub(crate) fn plan(
    repo: &Repository,
    keys: &Keyring,
    (id, m): (&SnapshotId, &Manifest),
    (scratch, scratch_error): (&Path, &(dyn Fn(std::io::Error) -> Error + Sync)),
    damaged: &mut Vec<DamagedPack>,
) -> Result<ReadPlan> {
    let started = std::time::Instant::now();
    // One pass over the indexes: tree blobs stay in the index, page blobs go to a list.
    let blobs = RefCell::new(SortedRuns::<48>::new(scratch, list_memory()));
    let spill_failed = RefCell::new(None);
    let (index, unreadable) = repo.load_index_of(keys, &|kind, h, loc| {
        if kind == BlobKind::Tree {
            return true;
        }
        if let Err(e) = blobs.borrow_mut().push(blob_record(h, loc)) {
            spill_failed.borrow_mut().get_or_insert(e);
        }
        false
    })?;
    if let Some(e) = spill_failed.into_inner() {
        return Err(scratch_error(e));
    }
    let mut warnings: Vec<String> = unreadable
        .iter()
        .map(|(_, e)| format!("{}; it was skipped", e.message()))
        .collect();
    tracing::debug!("index read after {:?}", started.elapsed());

    // The blob list is sorted on another core while the tree is read.
    let blobs = blobs.into_inner();
    let (blobs, pages) = std::thread::scope(|s| {
        let sorting = s.spawn(move || blobs.sorted());
        let pages = page_list(
            repo,
            keys,
            &index,
            (id, m),
            (scratch, scratch_error),
            damaged,
        );
        let blobs = sorting
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (blobs, pages)
    });
    let (pages, tree_warnings) = pages?;
    warnings.extend(tree_warnings);
    tracing::debug!("page list read after {:?}", started.elapsed());

    let reads = join(
        (repo, &index),
        pages,
        blobs.map_err(scratch_error)?,
        (scratch, scratch_error),
    )?;
    tracing::debug!(
        "read plan ready after {:?} (resident, peak MiB: {:?})",
        started.elapsed(),
        crate::host::memory_mib()
    );
    Ok(ReadPlan {
        index,
        reads,
        warnings,
    })
}

/// Every page of the snapshot with its blob id, from the tree, and what reading it had to
/// work around.
fn page_list(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    (id, m): (&SnapshotId, &Manifest),
    (scratch, scratch_error): (&Path, &(dyn Fn(std::io::Error) -> Error + Sync)),
    damaged: &mut Vec<DamagedPack>,
) -> Result<(SortedRuns<36>, Vec<String>)> {
    let pages = Mutex::new(SortedRuns::<36>::new(scratch, list_memory()));
    let warnings = tree::each_segment(repo, keys, index, (id, m), damaged, &|first, ids| {
        let mut pages = pages.lock().unwrap_or_else(|p| p.into_inner());
        for (k, h) in tree::page_ids(ids).enumerate() {
            pages
                .push(page_record(&h, first + k as u64))
                .map_err(scratch_error)?;
        }
        Ok(())
    })?;
    Ok((
        pages.into_inner().unwrap_or_else(|p| p.into_inner()),
        warnings,
    ))
}

/// Each page with where its blob is stored, sorted by pack, frame and offset. A page whose
/// blob no index lists is an error before anything is read.
///
/// A blob stored more than once (after a full backup, a copy, a repack) is read from the copy
/// in the frame this snapshot wants most of (see `repo::copies`): a frame is decompressed whole,
/// and a new full's frames hold nothing the snapshot does not want, where the frames of a
/// long chain hold mostly pages replaced since.
fn join(
    (repo, index): (&Repository, &Index),
    pages: SortedRuns<36>,
    blobs: Sorted<48>,
    (scratch, scratch_error): (&Path, &(dyn Fn(std::io::Error) -> Error + Sync)),
) -> Result<Sorted<52>> {
    let mut reads = SortedRuns::<52>::new(scratch, list_memory());
    // A page's copies, pushed in the order of the pages and of the blob list: already sorted,
    // so kept as they come and read through once for each round.
    let mut choices = RecordTape::<52>::new(scratch, list_memory());
    let mut chooser = CopyChooser::default();
    let mut blobs = blobs.peekable();
    let mut copies: Vec<BlobRecord> = Vec::new();
    for page in pages.sorted().map_err(scratch_error)? {
        let page = page.map_err(scratch_error)?;
        let id = &page[..32];
        if copies.first().is_none_or(|c| &c[..32] != id) {
            copies.clear();
            // Skip blobs of other snapshots; several pages may share this one.
            while let Some(b) = blobs.next_if(|b| b.as_ref().map_or(true, |b| &b[..32] < id)) {
                b.map_err(scratch_error)?;
            }
            while let Some(b) = blobs.next_if(|b| b.as_ref().map_or(true, |b| &b[..32] == id)) {
                copies.push(b.map_err(scratch_error)?);
            }
        }
        match copies.as_slice() {
            [] => return Err(reader::unlisted_blob(repo, id)),
            [only] => {
                chooser.want(index, &location(only), true);
                reads
                    .push(read_record(only, &page))
                    .map_err(scratch_error)?;
            }
            several => {
                for copy in several {
                    chooser.want(index, &location(copy), false);
                    choices
                        .push(choice_record(copy, &page))
                        .map_err(scratch_error)?;
                }
            }
        }
    }
    drop(blobs);
    // Two rounds over the pages with several copies. The first takes each page's best copy
    // alone and notes the frames so taken; the second prefers those frames, which are read
    // anyway, so that a page does not pull in a frame of its own when another it is in is
    // decompressed regardless.
    each_page_copies(
        choices.replay().map_err(scratch_error)?,
        scratch_error,
        |copies| {
            if let Some(l) = chooser.first(index, copies.iter().map(|c| &c.1)) {
                chooser.take(index, l);
            }
            Ok(())
        },
    )?;
    each_page_copies(
        choices.replay().map_err(scratch_error)?,
        scratch_error,
        |copies| match copies
            .iter()
            .max_by_key(|(_, l)| chooser.last_rank(index, l))
        {
            Some((choice, _)) => reads.push(chosen_read(choice)).map_err(scratch_error),
            None => Ok(()),
        },
    )?;
    reads.sorted().map_err(scratch_error)
}

/// A copy a page could be read from: blob id, page, then the copy's place, so that a page's
/// copies sort side by side (in the order of their places, the tie-breaker).
type ChoiceRecord = [u8; 52];

fn choice_record(blob: &BlobRecord, page: &PageRecord) -> ChoiceRecord {
    let mut r = [0u8; 52];
    r[..36].copy_from_slice(page);
    r[36..52].copy_from_slice(&blob[32..48]);
    r
}

/// Calls `f` with the copies of each page, side by side in `choices` (with where
/// each is).
fn each_page_copies(
    choices: impl Iterator<Item = std::io::Result<ChoiceRecord>>,
    scratch_error: &(dyn Fn(std::io::Error) -> Error + Sync),
    mut f: impl FnMut(&[(ChoiceRecord, BlobLocation)]) -> Result<()>,
) -> Result<()> {
    let mut copies: Vec<(ChoiceRecord, BlobLocation)> = Vec::new();
    for choice in choices {
        let choice = choice.map_err(scratch_error)?;
        // Blob id and page: another page than the copies gathered?
        if copies.first().is_some_and(|(c, _)| c[..36] != choice[..36]) {
            f(&copies)?;
            copies.clear();
        }
        copies.push((choice, location(&choice[4..])));
    }
    if !copies.is_empty() {
        f(&copies)?;
    }
    Ok(())
}

/// The read a choice stands for.
fn chosen_read(c: &ChoiceRecord) -> ReadRecord {
    let mut r = [0u8; 52];
    r[..12].copy_from_slice(&c[36..48]);
    r[12..16].copy_from_slice(&c[32..36]);
    r[16..20].copy_from_slice(&c[48..52]);
    r[20..].copy_from_slice(&c[..32]);
    r
}

/// Where a blob record (or a choice, from its fifth byte on) says the blob is.
fn location(r: &[u8]) -> BlobLocation {
    BlobLocation {
        pack: PackSlot(u32_at(r, 32)),
        frame: u32_at(r, 36),
        offset: u32_at(r, 40),
        len: u32_at(r, 44),
    }
}

fn blob_record(id: &Hash, loc: &BlobLocation) -> BlobRecord {
    let mut r = [0u8; 48];
    r[..32].copy_from_slice(id);
    r[32..36].copy_from_slice(&loc.pack.0.to_be_bytes());
    r[36..40].copy_from_slice(&loc.frame.to_be_bytes());
    r[40..44].copy_from_slice(&loc.offset.to_be_bytes());
    r[44..48].copy_from_slice(&loc.len.to_be_bytes());
    r
}

fn page_record(id: &Hash, page: u64) -> PageRecord {
    let mut r = [0u8; 36];
    r[..32].copy_from_slice(id);
    // SQLite numbers pages with 32 bits.
    r[32..].copy_from_slice(&(page as u32).to_be_bytes());
    r
}

/// Sorts by pack, frame, offset (the blob), then page.
fn read_record(blob: &BlobRecord, page: &PageRecord) -> ReadRecord {
    let mut r = [0u8; 52];
    r[..12].copy_from_slice(&blob[32..44]);
    r[12..16].copy_from_slice(&page[32..36]);
    r[16..20].copy_from_slice(&blob[44..48]);
    r[20..].copy_from_slice(&blob[..32]);
    r
}

fn u32_at(r: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]])
}

/// The pages of one pack to read: each blob once (a tag), with every page it fills.
#[derive(Default)]
struct PackJob {
    frames: Frames,
    ids: Vec<Hash>,
    /// Tag `t`'s pages are `pages[uses[t]..uses[t + 1]]`.
    uses: Vec<u32>,
    pages: Vec<u32>,
}

impl PackJob {
    fn add(&mut self, r: &ReadRecord) {
        let (frame, offset, page, len) = (u32_at(r, 4), u32_at(r, 8), u32_at(r, 12), u32_at(r, 16));
        let blobs = self.frames.entry(frame).or_default();
        if blobs.last().is_none_or(|&(_, o, _)| o != offset) {
            let mut id = [0u8; 32];
            id.copy_from_slice(&r[20..]);
            blobs.push((self.ids.len() as u32, offset, len));
            self.ids.push(id);
            self.uses.push(self.pages.len() as u32);
        }
        self.pages.push(page);
    }

    fn pages_of(&self, tag: u32) -> &[u32] {
        let from = self.uses[tag as usize] as usize;
        let to = self
            .uses
            .get(tag as usize + 1)
            .map_or(self.pages.len(), |&t| t as usize);
        &self.pages[from..to]
    }
}

/// Pages handed to a sink: the page numbers a blob fills, and its bytes.
pub(crate) type Placed<'a> = (&'a [u32], &'a [u8]);

/// Reads every page of `plan` on `workers` threads, a pack at a time, and hands each frame's
/// blobs (each checked against its id) to `sink`. A pack found missing or damaged is added to
/// `damaged`, and its blobs are read from other copies if the repository has them.
pub(crate) fn read<F>(
    repo: &Repository,
    keys: &Keyring,
    plan: ReadPlan,
    (workers, scratch_error): (usize, &(dyn Fn(std::io::Error) -> Error + Sync)),
    damaged: &mut Vec<DamagedPack>,
    sink: F,
) -> Result<BlobsRead>
where
    F: Fn(&[Placed]) -> Result<()> + Sync,
{
    let ReadPlan {
        index,
        reads,
        mut warnings,
    } = plan;
    let (jobs, queue) = mpsc::sync_channel::<(PackSlot, PackJob)>(workers);
    let queue = Mutex::new(queue);
    let stop = AtomicBool::new(false);
    let fetched = AtomicU64::new(0);
    let failed: Mutex<Vec<(PackSlot, PackJob, Error)>> = Mutex::new(Vec::new());
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    let give_up = |e: Error| {
        stop.store(true, Ordering::Relaxed);
        fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
    };
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((pack, job)) = next else { return };
                if stop.load(Ordering::Relaxed) {
                    continue;
                }
                let id_of = |tag: u32| job.ids[tag as usize];
                let placed = |blobs: &[(u32, &[u8])]| {
                    let placed: Vec<Placed> =
                        blobs.iter().map(|(t, b)| (job.pages_of(*t), *b)).collect();
                    sink(&placed)
                };
                match reader::read_pack(repo, keys, &index, (pack, &job.frames, &id_of), &placed) {
                    Ok(n) => {
                        fetched.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(PackError::Pack(e)) => failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((pack, job, e)),
                    Err(PackError::Sink(e)) => give_up(e),
                }
            });
        }
        // Feed the workers a pack at a time, in the plan's order.
        let mut job: Option<(PackSlot, PackJob)> = None;
        for r in reads {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    give_up(scratch_error(e));
                    break;
                }
            };
            let pack = PackSlot(u32_at(&r, 0));
            if job.as_ref().is_some_and(|(p, _)| *p != pack) {
                if let Some(done) = job.take() {
                    if jobs.send(done).is_err() {
                        break;
                    }
                }
            }
            job.get_or_insert_with(|| (pack, PackJob::default()))
                .1
                .add(&r);
        }
        if let Some(done) = job {
            let _ = jobs.send(done);
        }
        drop(jobs);
    });
    if let Some(e) = fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut done = BlobsRead {
        bytes: fetched.into_inner(),
        warnings: Vec::new(),
    };
    if !failed.is_empty() {
        let again = read_other_copies(repo, keys, (&index, failed), workers, damaged, &sink)?;
        done.bytes += again.bytes;
        warnings.extend(again.warnings);
    }
    done.warnings = warnings;
    Ok(done)
}

/// Reads the blobs of packs that failed from the other copies the indexes list, if any:
/// the indexes are read again, keeping only those blobs.
fn read_other_copies<F>(
    repo: &Repository,
    keys: &Keyring,
    (index, failed): (&Index, Vec<(PackSlot, PackJob, Error)>),
    workers: usize,
    damaged: &mut Vec<DamagedPack>,
    sink: &F,
) -> Result<BlobsRead>
where
    F: Fn(&[Placed]) -> Result<()> + Sync,
{
    let mut warnings = Vec::new();
    let mut bad = Vec::new();
    let mut wanted: Vec<(Hash, &[u32])> = Vec::new();
    for (pack, job, e) in &failed {
        let pack_id = index.pack(*pack).id;
        reader::pack_failed(pack_id, e, damaged, &mut warnings);
        bad.push((pack_id, e.clone()));
        wanted.extend((0..job.ids.len() as u32).map(|t| (job.ids[t as usize], job.pages_of(t))));
    }
    wanted.sort_unstable_by_key(|w| w.0);
    let is_wanted = |h: &Hash| wanted.binary_search_by(|w| w.0.cmp(h)).is_ok();
    let (copies, _) = repo.load_index_of(keys, &|_, h, _| is_wanted(h))?;
    let id_of = |tag: u32| wanted[tag as usize].0;
    let tags = 0..wanted.len() as u32;
    let mut read = reader::read_avoiding(
        repo,
        keys,
        &copies,
        (tags, &id_of),
        (workers, &bad),
        damaged,
        |blobs| {
            let placed: Vec<Placed> = blobs
                .iter()
                .map(|(t, b)| (wanted[*t as usize].1, *b))
                .collect();
            sink(&placed)
        },
    )?;
    warnings.append(&mut read.warnings);
    read.warnings = warnings;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_records_sort_by_pack_frame_offset_then_page() {
        let loc = |pack, frame, offset| BlobLocation {
            pack: PackSlot(pack),
            frame,
            offset,
            len: 4096,
        };
        let read = |id: u8, l: BlobLocation, page| {
            read_record(&blob_record(&[id; 32], &l), &page_record(&[id; 32], page))
        };
        let mut reads = [
            read(1, loc(2, 0, 0), 7),
            read(2, loc(1, 3, 4096), 1),
            read(3, loc(1, 3, 0), 9),
            read(3, loc(1, 3, 0), 2),
            read(4, loc(1, 0, 300), 5),
        ];
        reads.sort_unstable();
        let order: Vec<(u32, u32, u32, u32)> = reads
            .iter()
            .map(|r| (u32_at(r, 0), u32_at(r, 4), u32_at(r, 8), u32_at(r, 12)))
            .collect();
        assert_eq!(
            order,
            [
                (1, 0, 300, 5),
                (1, 3, 0, 2),
                (1, 3, 0, 9),
                (1, 3, 4096, 1),
                (2, 0, 0, 7)
            ]
        );
        // One pack's job reads the shared blob once, for both its pages.
        let mut job = PackJob::default();
        for r in reads.iter().filter(|r| u32_at(*r, 0) == 1) {
            job.add(r);
        }
        assert_eq!(job.ids, [[4; 32], [3; 32], [2; 32]]);
        assert_eq!(job.pages_of(1), [2, 9]);
        assert_eq!(job.pages_of(2), [1]);
        assert_eq!(job.frames[&3], [(1, 0, 4096), (2, 4096, 4096)]);
    }
}
