//! Reads blobs out of packs, several packs at once. A pack is read as a stream: fetched a piece
//! at a time, decrypted and authenticated by age 64 KiB at a time, and only the frames wanted
//! are decompressed; every blob is checked against its own id. The pack's own id (SHA-256 of
//! all its encrypted bytes) is left to `check --read-data`: age already authenticates every
//! byte read, and the blob ids prove every byte used.

use super::copies::CopyChooser;
use super::ids::{ObjectId, PackId};
use super::index::{BlobLocation, Index, PackSlot};
use super::keys::Keyring;
use super::pack::FrameDecoder;
use super::Repository;
use crate::error::{Error, Hint, Hinted, Result};
use crate::hash::{sha256, Hash};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// What a read took, and what it had to work around.
#[derive(Debug, Default)]
pub struct BlobsRead {
    /// Encrypted bytes read.
    pub bytes: u64,
    /// Packs that were missing or damaged and whose blobs came from other copies.
    pub warnings: Vec<String>,
}

/// A pack a read found missing or damaged. Only integrity failures count: a wrong key or an
/// unreachable target says nothing about the pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedPack {
    pub id: PackId,
    pub why: String,
}

/// Reads each blob in `wanted` once and hands them to `sink`, a frame's worth at a time (in
/// frame order, so callers can coalesce writes). A pack that is missing or damaged is
/// skipped for the rest of the call and its blobs are read from another copy if one exists
/// (and said so in the warnings); without one, the pack's error is returned. Packs found
/// missing or damaged are added to `damaged` either way.
pub fn read_blobs<F>(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    wanted: impl IntoIterator<Item = Hash>,
    workers: usize,
    damaged: &mut Vec<DamagedPack>,
    sink: F,
) -> Result<BlobsRead>
where
    F: Fn(&[(Hash, &[u8])]) -> Result<()> + Sync,
{
    let ids: Vec<Hash> = wanted.into_iter().collect();
    let id_of = |tag: u32| ids[tag as usize];
    let tags = 0..ids.len() as u32;
    read_tagged_blobs(
        repo,
        keys,
        index,
        (tags, &id_of),
        workers,
        damaged,
        |blobs| {
            let untagged: Vec<(Hash, &[u8])> =
                blobs.iter().map(|(t, b)| (ids[*t as usize], *b)).collect();
            sink(&untagged)
        },
    )
}

/// The blob ids a tagged read wants, by tag.
pub type IdOf<'a> = &'a (dyn Fn(u32) -> Hash + Sync);

/// [`read_blobs`] of blobs named by tags of the caller's (`id_of` gives each one's id) and
/// handed to `sink` with their tag: the plan holds 12 bytes a blob instead of 44, and the
/// caller need not look the blob up again.
pub fn read_tagged_blobs<F>(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    wanted: (impl IntoIterator<Item = u32>, IdOf),
    workers: usize,
    damaged: &mut Vec<DamagedPack>,
    sink: F,
) -> Result<BlobsRead>
where
    F: Fn(&[(u32, &[u8])]) -> Result<()> + Sync,
{
    read_avoiding(repo, keys, index, wanted, (workers, &[]), damaged, sink)
}

/// [`read_tagged_blobs`] that does not try the packs in `bad` (already found missing or
/// damaged, with why): a blob only they hold fails with their error.
pub(crate) fn read_avoiding<F>(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    (wanted, id_of): (impl IntoIterator<Item = u32>, IdOf),
    (workers, bad): (usize, &[(PackId, Error)]),
    damaged: &mut Vec<DamagedPack>,
    sink: F,
) -> Result<BlobsRead>
where
    F: Fn(&[(u32, &[u8])]) -> Result<()> + Sync,
{
    let mut pending: Vec<u32> = wanted.into_iter().collect();
    let mut bad_packs: HashMap<PackSlot, Error> = bad
        .iter()
        .filter_map(|(id, e)| Some((index.slot_of(id)?, e.clone())))
        .collect();
    let mut done = BlobsRead::default();
    while !pending.is_empty() {
        let mut plan: Plan = BTreeMap::new();
        let usable = |id: &Hash| {
            let copies = index.locations(id);
            copies.filter(|l| !bad_packs.contains_key(&l.pack))
        };
        // Which copy of a blob stored more than once: see `copies`. Weighed only when some
        // wanted blob has a second copy; otherwise each blob is looked up once, below.
        let mut chooser = CopyChooser::default();
        let mut several = false;
        for &tag in &pending {
            let id = id_of(tag);
            let only = usable(&id).nth(1).is_none();
            several |= !only;
            usable(&id).for_each(|l| chooser.want(index, &l, only));
        }
        if several {
            for &tag in &pending {
                let copies: Vec<BlobLocation> = usable(&id_of(tag)).collect();
                if let Some(l) = chooser.first(index, &copies) {
                    chooser.take(index, l);
                }
            }
        }
        // Taken, not drained: the list is freed once planned.
        for tag in std::mem::take(&mut pending) {
            let id = id_of(tag);
            let loc = match several {
                true => usable(&id).max_by_key(|l| chooser.last_rank(index, l)),
                false => usable(&id).next(),
            };
            let Some(loc) = loc else {
                let first_bad = index.locations(&id).find_map(|l| bad_packs.get(&l.pack));
                return Err(match first_bad {
                    Some(e) => e.clone(),
                    None => unlisted_blob(repo, &id),
                });
            };
            plan.entry(loc.pack)
                .or_default()
                .entry(loc.frame)
                .or_default()
                .push((tag, loc.offset, loc.len));
        }
        let (read, failed) = run_plan(repo, keys, index, (plan, id_of), workers, &sink)?;
        done.bytes += read;
        for (pack, frames, e) in failed {
            pack_failed(index.pack(pack).id, &e, damaged, &mut done.warnings);
            bad_packs.insert(pack, e);
            pending.extend(frames.into_values().flatten().map(|(tag, _, _)| tag));
        }
    }
    Ok(done)
}

/// Blob `id` is needed but no readable index lists it.
pub(crate) fn unlisted_blob(repo: &Repository, id: &[u8]) -> Error {
    Error::Integrity(
        format!(
            "blob {} is referenced but no index of {} lists it",
            hex::encode(id),
            repo.location()
        )
        .hinted(Hint::CheckStructure),
    )
}

/// Notes that pack `id` could not be read (`e`) and its blobs are read from other copies:
/// a warning, and the pack added to `damaged` when its bytes are at fault.
pub(crate) fn pack_failed(
    id: PackId,
    e: &Error,
    damaged: &mut Vec<DamagedPack>,
    warnings: &mut Vec<String>,
) {
    tracing::warn!("{e}; trying other copies of its blobs");
    if let Error::Integrity(_) = e {
        damaged.push(DamagedPack {
            id,
            why: e.message().to_string(),
        });
    }
    warnings.push(format!(
        "{}; its blobs were read from other copies",
        e.message()
    ));
}

/// pack slot -> frame -> (tag, offset, length) of the blobs wanted from it
type Plan = BTreeMap<PackSlot, Frames>;
/// frame -> (tag, offset, length) of the blobs wanted from it
pub(crate) type Frames = BTreeMap<u32, Vec<(u32, u32, u32)>>;
type Failed = Vec<(PackSlot, Frames, Error)>;

/// Reads the planned packs in parallel. Packs that cannot be read are returned with their
/// error; an error from `sink` itself ends the whole read.
fn run_plan<F>(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    (plan, id_of): (Plan, IdOf),
    workers: usize,
    sink: &F,
) -> Result<(u64, Failed)>
where
    F: Fn(&[(u32, &[u8])]) -> Result<()> + Sync,
{
    let queue = Mutex::new(plan.into_iter());
    let stop = AtomicBool::new(false);
    let bytes = AtomicU64::new(0);
    let failed: Mutex<Failed> = Mutex::new(Vec::new());
    let sink_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some((pack_no, frames)) = next else {
                    return;
                };
                match read_pack(repo, keys, index, (pack_no, &frames, id_of), sink) {
                    Ok(n) => {
                        bytes.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(PackError::Pack(e)) => failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((pack_no, frames, e)),
                    Err(PackError::Sink(e)) => {
                        stop.store(true, Ordering::Relaxed);
                        sink_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = sink_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok((
        bytes.into_inner(),
        failed.into_inner().unwrap_or_else(|p| p.into_inner()),
    ))
}

pub(crate) enum PackError {
    /// The pack is missing, damaged or not ours to open.
    Pack(Error),
    /// The consumer refused a blob (e.g. the destination disk is full).
    Sink(Error),
}

/// Reads the wanted `frames` of one pack, checks each blob against its id and hands each
/// frame's blobs to `sink`. Returns the encrypted bytes fetched.
pub(crate) fn read_pack<F>(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    (pack_no, frames, id_of): (PackSlot, &Frames, IdOf),
    sink: &F,
) -> Result<u64, PackError>
where
    F: Fn(&[(u32, &[u8])]) -> Result<()>,
{
    let p = index.pack(pack_no);
    let damaged = |why: &str| PackError::Pack(repo.damaged_pack(&p.id, why));
    let located = frames
        .keys()
        .map(|f| p.frames.get(*f as usize).copied())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| damaged("frame past end"))?;
    let spans: Vec<(u64, u64)> = located
        .iter()
        .map(|l| (l.offset, l.offset + l.compressed_len as u64))
        .collect();
    let key = p.id.key();
    let mut plain = repo
        .pack_plaintext(keys, &key, p.size, fetch_size(repo, p.size, &spans))
        .map_err(PackError::Pack)?;
    let mut decoder =
        FrameDecoder::new().map_err(|e| PackError::Pack(Error::Internal(e.into())))?;
    let (mut compressed, mut data) = (Vec::new(), Vec::new());
    for ((blobs, f), &(start, end)) in frames.values().zip(&located).zip(&spans) {
        plain
            .read(start, (end - start) as usize, &mut compressed)
            .map_err(|e| PackError::Pack(repo.range_error(&key, e)))?;
        decoder
            .decode(&compressed, f.uncompressed_len, &mut data)
            .map_err(|why| damaged(&why))?;
        let mut batch = Vec::with_capacity(blobs.len());
        for (tag, off, len) in blobs {
            let bytes = data
                .get(*off as usize..(*off + *len) as usize)
                .ok_or_else(|| damaged("blob past end of frame"))?;
            if sha256(bytes) != id_of(*tag) {
                return Err(damaged("a blob does not match its id"));
            }
            batch.push((*tag, bytes));
        }
        sink(&batch).map_err(PackError::Sink)?;
    }
    Ok(plain.fetched())
}

/// Encrypted bytes fetched from a local disk at a time: a read there costs little, so a pack
/// is read in pieces and never held whole.
const LOCAL_FETCH: u64 = 1 << 20;

/// A pack is read in parts when the frames wanted from it come to less than 1/4 of it.
const PART_READ_BELOW: u64 = 4;

/// How much of a pack to fetch at once, given the plaintext spans wanted from it. Remote
/// storage is asked for the whole pack in one request, or, when the wanted frames are under
/// a quarter of it, for one run of them at a time (gaps between runs are not fetched).
fn fetch_size(repo: &Repository, size: u64, spans: &[(u64, u64)]) -> u64 {
    if repo.storage().local_dir().is_some() {
        return LOCAL_FETCH;
    }
    let wanted: u64 = spans.iter().map(|(a, b)| b - a).sum();
    if wanted * PART_READ_BELOW >= size {
        return size;
    }
    let longest = runs(spans).iter().map(|(a, b)| b - a).max().unwrap_or(0);
    super::ranged::ciphertext_of(longest)
}

/// Consecutive frame spans merged into runs; a gap under 64 KiB is read through, since the
/// age chunk around it is fetched anyway.
fn runs(spans: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &(a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 + 64 * 1024 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn frames_close_together_are_read_as_one_run() {
        const K: u64 = 1024;
        assert_eq!(
            runs(&[
                (0, 100 * K),
                (100 * K, 200 * K),
                (250 * K, 300 * K),
                (500 * K, 600 * K)
            ]),
            vec![(0, 300 * K), (500 * K, 600 * K)]
        );
        assert_eq!(runs(&[]), vec![]);
    }
}
