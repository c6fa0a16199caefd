//! Rebuilding a snapshot's database file from its pages, read in parallel from the packs.

use super::plan;
use super::written_hash::WrittenHash;
use crate::error::{Error, Result};
use crate::hash::{self, Hash, SortedDigests};
use crate::repo::ids::SnapshotId;
use crate::repo::index::Index;
use crate::repo::keys::Keyring;
use crate::repo::manifest::Manifest;
use crate::repo::pack::BlobKind;
use crate::repo::{reader, tree, Repository};
use std::fs::File;
use std::io::IoSlice;
use std::path::Path;
use std::time::Instant;

/// A rebuilt file: what reading it took, and the SHA-256 of what was written when it was
/// hashed while being written.
pub(crate) struct Rebuilt {
    pub read: reader::BlobsRead,
    /// Hex, to compare with the manifest's.
    pub sha256: Option<String>,
}

/// Writes every page of snapshot `id` into `out` (sized to the database first), and hashes
/// the file as it is written if `hash_while_writing`. That costs the same CPU as hashing it
/// afterwards, so it pays when nothing else runs afterwards (no SQLite check), and when the
/// file may not stay in the page cache until then. Every blob is checked against its id on the
/// way; the caller checks the file's SHA-256 against the manifest. Returns the bytes read and
/// what the read had to work around; packs found missing or damaged are added to `damaged`, whether the rebuild
/// succeeds or not. Damaged indexes are passed over (with a warning): if another index lists
/// the blobs, the snapshot is whole.
pub(crate) fn rebuild_into(
    repo: &Repository,
    keys: &Keyring,
    (id, m): (&SnapshotId, &Manifest),
    (out, write_error, scratch): (&File, &(dyn Fn(std::io::Error) -> Error + Sync), &Path),
    hash_while_writing: bool,
    damaged: &mut Vec<reader::DamagedPack>,
) -> Result<Rebuilt> {
    let plan = plan::plan(repo, keys, (id, m), (scratch, write_error), damaged)?;
    let len = m.page_count * m.page_size as u64;
    reserve(out, len).map_err(write_error)?;
    crate::progress::add_total(len);
    let tracker = WrittenHash::default();
    let output = (out, write_error, hash_while_writing.then_some(&tracker));
    let ps = m.page_size;
    let (read, hashed) = std::thread::scope(|s| {
        let hashing = hash_while_writing.then(|| s.spawn(|| tracker.hash(out, len, write_error)));
        let read = plan::read(
            repo,
            keys,
            plan,
            (workers(), write_error),
            damaged,
            |blobs| write_placed(output, ps, blobs),
        );
        tracker.finish(read.is_ok());
        (read, hashing.map(|h| h.join()))
    });
    let read = read?;
    let sha256 = match hashed {
        None => None,
        Some(Ok(Ok(Some(h)))) => Some(hex::encode(h)),
        Some(Ok(Ok(None))) => {
            return Err(Error::Internal("the rebuilt file was not hashed".into()))
        }
        Some(Ok(Err(e))) => return Err(e),
        Some(Err(_)) => return Err(Error::Internal("hashing the rebuilt file panicked".into())),
    };
    Ok(Rebuilt { read, sha256 })
}

/// Twice the cores: while some workers wait for a pack (S3, disk), others decrypt.
fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .clamp(4, 8)
}

/// The blob id of every page of snapshot `id`, and an index that locates those blobs (and
/// only those), with what the reading had to work around.
pub(crate) fn locate_pages(
    repo: &Repository,
    keys: &Keyring,
    id: &SnapshotId,
    m: &Manifest,
    damaged: &mut Vec<reader::DamagedPack>,
) -> Result<(Vec<Hash>, Index, Vec<String>)> {
    let started = Instant::now();
    // The indexes are read twice, keeping the tree blobs and then only this snapshot's pages:
    // a repository of many snapshots indexes several times the pages of one, and the whole
    // merged index was most of a restore's memory.
    let (trees, unreadable) = repo.load_index_of(keys, &|kind, _, _| kind == BlobKind::Tree)?;
    let mut warnings: Vec<String> = unreadable
        .iter()
        .map(|(_, e)| format!("{}; it was skipped", e.message()))
        .collect();
    tracing::debug!("tree index after {:?}", started.elapsed());
    let (pages, tree_warnings) = tree::page_list(repo, keys, &trees, id, m, damaged)?;
    tracing::debug!("page list after {:?}", started.elapsed());
    drop(trees);
    warnings.extend(tree_warnings);
    let wanted = SortedDigests::of(pages.clone());
    let (index, _) = repo.load_index_of(keys, &|_, blob, _| wanted.contains(blob))?;
    drop(wanted);
    tracing::debug!(
        "index and page list ready after {:?} (resident, peak MiB: {:?})",
        started.elapsed(),
        crate::host::memory_mib()
    );
    Ok((pages, index, warnings))
}

/// Sizes the file a restore writes, its blocks reserved before any page arrives: ext4 then
/// allocates them in one go instead of page by page as the writers reach them (a fifth of a
/// restore's kernel time), and a disk too small fails here, before any page is read. Where
/// the filesystem cannot reserve blocks, the file is only sized.
fn reserve(out: &File, len: u64) -> std::io::Result<()> {
    use rustix::io::Errno;
    match rustix::fs::fallocate(out, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(e @ (Errno::NOSPC | Errno::DQUOT | Errno::FBIG)) => Err(e.into()),
        Err(_) => out.set_len(len),
    }
}

/// Turns `out`, which holds a copy of a snapshot whose page list is `previous` (with the same
/// page size), into a copy of snapshot `m`, reading and writing only the pages that differ.
/// Every page read is checked against its id. Returns the new page list, for the next update.
#[allow(clippy::too_many_arguments)]
pub(crate) fn update_into(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    id: &SnapshotId,
    m: &Manifest,
    previous: &[Hash],
    out: &File,
    write_error: &(dyn Fn(std::io::Error) -> Error + Sync),
    damaged: &mut Vec<reader::DamagedPack>,
) -> Result<Vec<Hash>> {
    let (pages, _) = tree::page_list(repo, keys, index, id, m, damaged)?;
    out.set_len(m.page_count * m.page_size as u64)
        .map_err(write_error)?;
    crate::progress::add_total(m.page_count * m.page_size as u64);
    write_pages(
        repo,
        keys,
        index,
        (&pages, previous),
        m.page_size,
        (out, write_error, None),
        damaged,
    )?;
    Ok(pages)
}

type Output<'a> = (
    &'a File,
    &'a (dyn Fn(std::io::Error) -> Error + Sync),
    Option<&'a WrittenHash>,
);

/// Writes the pages of `pages` that differ from `previous` (all of them when it is empty),
/// telling `tracker` (if any) each run written.
fn write_pages(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    (pages, previous): (&[Hash], &[Hash]),
    page_size: u32,
    (out, write_error, tracker): Output,
    damaged: &mut Vec<reader::DamagedPack>,
) -> Result<reader::BlobsRead> {
    // Page numbers ordered by blob id: 4 bytes a page, where a map of lists would cost ~90.
    let mut by_blob: Vec<u32> = (0..pages.len() as u32)
        .filter(|&i| previous.get(i as usize) != Some(&pages[i as usize]))
        .collect();
    by_blob.sort_unstable_by(|a, b| hash::cmp(&pages[*a as usize], &pages[*b as usize]));
    // Each blob once, tagged with where its uses start in `by_blob`.
    let unique = (0..by_blob.len())
        .filter(|&k| k == 0 || pages[by_blob[k - 1] as usize] != pages[by_blob[k] as usize])
        .map(|k| k as u32);
    let id_of = |k: u32| pages[by_blob[k as usize] as usize];
    let wanted = (unique, &id_of as reader::IdOf);
    reader::read_tagged_blobs(repo, keys, index, wanted, workers(), damaged, |blobs| {
        let placed: Vec<plan::Placed> = blobs
            .iter()
            .map(|(first, bytes)| {
                let h = id_of(*first);
                let n = by_blob[*first as usize..]
                    .iter()
                    .take_while(|&&i| pages[i as usize] == h)
                    .count();
                (&by_blob[*first as usize..*first as usize + n], *bytes)
            })
            .collect();
        write_placed((out, write_error, tracker), page_size, &placed)
    })
}

/// Writes each blob at every page it fills, one vectored write per run of consecutive pages,
/// straight from the decompressed frames: one small write per page is what makes a large
/// restore slow, and copying the pages into one buffer first costs a copy of the database.
fn write_placed(output: Output, page_size: u32, blobs: &[plan::Placed]) -> Result<()> {
    let ps = page_size as usize;
    let mut placed: Vec<(u32, &[u8])> = Vec::with_capacity(blobs.len());
    for (pages, bytes) in blobs {
        if bytes.len() != ps {
            return Err(Error::Integrity(
                format!(
                    "page blob {} has {} bytes, not the snapshot's page size {page_size}",
                    hex::encode(crate::hash::sha256(bytes)),
                    bytes.len()
                )
                .into(),
            ));
        }
        placed.extend(pages.iter().map(|&i| (i, *bytes)));
    }
    placed.sort_unstable_by_key(|(i, _)| *i);
    let mut runs = Vec::new();
    let mut start = 0;
    for k in 1..=placed.len() {
        if k == placed.len() || placed[k].0 != placed[k - 1].0 + 1 {
            runs.push(write_run((output.0, output.1), &placed[start..k], ps)?);
            start = k;
        }
    }
    if let Some(t) = output.2 {
        t.written_runs(&runs);
    }
    crate::progress::add(runs.iter().map(|r| r.1).sum());
    Ok(())
}

/// At most this many buffers go to one `pwritev` (Linux's `IOV_MAX`).
const MAX_SLICES: usize = 1024;

/// Writes consecutive pages, the first at page number `run[0].0`; returns where they went
/// and how many bytes that is.
fn write_run(
    (out, write_error): (&File, &(dyn Fn(std::io::Error) -> Error + Sync)),
    run: &[(u32, &[u8])],
    page_size: usize,
) -> Result<(u64, u64)> {
    let Some(&(first_page, _)) = run.first() else {
        return Ok((0, 0));
    };
    let start = first_page as u64 * page_size as u64;
    let mut at = start;
    for chunk in run.chunks(MAX_SLICES) {
        let mut slices: Vec<IoSlice> = chunk.iter().map(|(_, b)| IoSlice::new(b)).collect();
        let mut left = &mut slices[..];
        while !left.is_empty() {
            let n = rustix::io::pwritev(out, left, at).map_err(|e| write_error(e.into()))?;
            if n == 0 {
                return Err(write_error(std::io::ErrorKind::WriteZero.into()));
            }
            IoSlice::advance_slices(&mut left, n);
            at += n as u64;
        }
    }
    Ok((start, at - start))
}
