//! Indexes say where every blob is: which pack, which frame, which bytes. One index object is
//! written per backup run, after its packs and before its snapshot manifest.

use super::binary::{Reader, Truncated, Writer};
use super::codec::Sealer;
use super::ids::{IndexId, ObjectId, PackId};
use super::keys::Keyring;
use super::pack::{BlobKind, Ids, PackTable};
use super::Repository;
use crate::error::{Error, Hint, Hinted, Result};
use crate::hash::{Hash, SortedMap};
use std::collections::HashMap;

const MAGIC: &[u8; 4] = b"IVIX";
const VERSION: u8 = 1;
/// zstd level of an index: a small object, read on every restore.
const LEVEL: i32 = 3;

/// One pack as the index records it: its id, encrypted size and table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRecord {
    pub id: PackId,
    pub size: u64,
    pub table: PackTable,
}

pub fn encode(packs: &[PackRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = encode_into(packs, &mut out);
    out
}

/// Writes the index a pack's record at a time.
fn encode_into(packs: &[PackRecord], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut w = Writer::default();
    w.bytes(MAGIC);
    w.u8(VERSION);
    w.u32(packs.len() as u32);
    for p in packs {
        w.bytes(&p.id.0);
        w.u64(p.size);
        p.table.encode(&mut w, Ids::With);
        out.write_all(&w.0)?;
        w.0.clear();
    }
    out.write_all(&w.0)
}

pub fn decode(data: &[u8]) -> Result<Vec<PackRecord>, Truncated> {
    let mut packs = Vec::new();
    decode_stream(data, &mut |p| packs.push(p)).map_err(|_| Truncated)?;
    Ok(packs)
}

/// Why an index stream could not be decoded.
#[derive(Debug)]
pub enum StreamError {
    /// The stream failed (for a sealed index: authentication or decompression).
    Read(std::io::Error),
    Malformed,
}

/// Plaintext read from the stream at a time, and so about what is held: an index of a large
/// full backup is tens of MiB, each pack's record some tens of KiB.
const WINDOW: usize = 1 << 20;

/// Decodes an index from a stream, handing each pack's record to `each` as soon as it is
/// decoded, so only a window of the stream is held, never the whole index.
pub fn decode_stream(
    r: impl std::io::Read,
    each: &mut dyn FnMut(PackRecord),
) -> Result<(), StreamError> {
    let mut w = Window {
        r,
        buf: Vec::new(),
        at: 0,
        ended: false,
    };
    let n = w.parse(|rd| {
        if rd.take(4)? != MAGIC || rd.u8()? != VERSION {
            return Err(Truncated);
        }
        rd.u32()
    })?;
    for _ in 0..n {
        each(w.parse(|rd| {
            let id = PackId(rd.hash()?);
            let size = rd.u64()?;
            let table = PackTable::decode(rd, Ids::With)?;
            Ok(PackRecord { id, size, table })
        })?);
    }
    // Nothing may follow the last record.
    match w.parse(|rd| rd.u8()) {
        Err(StreamError::Malformed) => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Err(StreamError::Malformed),
    }
}

/// The part of a stream read and not yet parsed.
struct Window<R> {
    r: R,
    buf: Vec<u8>,
    at: usize,
    ended: bool,
}

impl<R: std::io::Read> Window<R> {
    /// Parses one item, reading more of the stream while the item is cut short.
    fn parse<T>(
        &mut self,
        item: impl Fn(&mut Reader) -> Result<T, Truncated>,
    ) -> Result<T, StreamError> {
        loop {
            let mut rd = Reader::new(&self.buf[self.at..]);
            match item(&mut rd) {
                Ok(t) => {
                    self.at = self.buf.len() - rd.rest();
                    return Ok(t);
                }
                Err(Truncated) if !self.ended => self.read_more()?,
                Err(Truncated) => return Err(StreamError::Malformed),
            }
        }
    }

    fn read_more(&mut self) -> Result<(), StreamError> {
        use std::io::Read;
        self.buf.drain(..self.at);
        self.at = 0;
        let got = (&mut self.r)
            .take(WINDOW as u64)
            .read_to_end(&mut self.buf)
            .map_err(StreamError::Read)?;
        self.ended = got < WINDOW;
        Ok(())
    }
}

/// Stores a new index object listing `packs`, encrypted to `recipients`, and returns its id.
/// An index is never replaced: a new one is a new object, and the repository's index is the
/// union of them all.
/// Returns its id and stored size.
pub fn store(repo: &Repository, sealer: &Sealer, packs: &[PackRecord]) -> Result<(IndexId, u64)> {
    let sealed = sealer.seal_stream(LEVEL, &mut |w| encode_into(packs, w))?;
    Ok((repo.put_object::<IndexId>(&sealed)?, sealed.len() as u64))
}

/// A pack's record as an index holds it, rebuilt from the pack alone (docs/FORMAT.md): the
/// pack is read and checked against its id, decrypted, and its table's blob ids recomputed.
/// `each` sees every blob with its id.
pub fn rebuild_record(
    repo: &Repository,
    keys: &Keyring,
    id: &PackId,
    each: &mut dyn FnMut(&Hash, &[u8]),
) -> Result<PackRecord> {
    let (plain, size) = repo.open_pack(keys, id)?;
    let table = super::pack::table_with_ids(&plain, each).map_err(|why| {
        Error::Integrity(
            format!(
                "object {} in {} is damaged ({why})",
                id.key(),
                repo.location()
            )
            .hinted(Hint::CheckData),
        )
    })?;
    Ok(PackRecord {
        id: *id,
        size,
        table,
    })
}

/// Which blobs an index keeps located, told each blob's pack kind, id and place.
pub type Keep<'a> = dyn Fn(BlobKind, &Hash, &BlobLocation) -> bool + 'a;

/// A pack's place in a merged [`Index`]: valid only for that index, cheaper to keep per blob
/// than the 32-byte [`PackId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackSlot(pub u32);

/// Where one blob lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: PackSlot,
    pub frame: u32,
    /// Offset of the blob inside the decompressed frame.
    pub offset: u32,
    pub len: u32,
}

/// A frame's place inside its decrypted pack.
#[derive(Debug, Clone, Copy)]
pub struct FrameLocation {
    pub offset: u64,
    pub compressed_len: u32,
    pub uncompressed_len: u32,
}

#[derive(Debug, Clone)]
pub struct IndexedPack {
    pub id: PackId,
    pub size: u64,
    pub kind: BlobKind,
    pub frames: Vec<FrameLocation>,
}

/// All indexes of a repository merged: blob id → location. Packs are added, then the index
/// is sealed, and only then does it locate blobs.
#[derive(Debug, Default)]
pub struct Index {
    pub packs: Vec<IndexedPack>,
    by_pack: HashMap<PackId, PackSlot>,
    /// Every copy of every blob: a blob stored more than once (after `backup --full`) has an
    /// entry per copy, and reads fall back to the others when a pack is lost or damaged.
    blobs: SortedMap<BlobLocation>,
    /// Added since the index was last sealed.
    added: Vec<(Hash, BlobLocation)>,
}

impl Index {
    /// Adds a pack; a pack listed by two indexes is kept once.
    pub fn add(&mut self, rec: &PackRecord) {
        self.add_kept(rec, &|_, _, _| true);
    }

    /// Adds a pack with only the blobs `keep` (told the pack's kind, the blob and where it is)
    /// wants located: a restore of one snapshot needs a fraction of what a repository indexes.
    pub fn add_kept(&mut self, rec: &PackRecord, keep: &Keep) {
        if self.by_pack.contains_key(&rec.id) {
            return;
        }
        let pack = PackSlot(self.packs.len() as u32);
        let mut frames = Vec::with_capacity(rec.table.frames.len());
        let mut offset = 0u64;
        for (fi, f) in rec.table.frames.iter().enumerate() {
            frames.push(FrameLocation {
                offset,
                compressed_len: f.compressed_len,
                uncompressed_len: f.uncompressed_len,
            });
            offset += f.compressed_len as u64;
            let mut boff = 0u32;
            for (id, len) in &f.blobs {
                let loc = BlobLocation {
                    pack,
                    frame: fi as u32,
                    offset: boff,
                    len: *len,
                };
                if keep(rec.table.kind, id, &loc) {
                    self.added.push((*id, loc));
                }
                boff += len;
            }
        }
        self.by_pack.insert(rec.id, pack);
        self.packs.push(IndexedPack {
            id: rec.id,
            size: rec.size,
            kind: rec.table.kind,
            frames,
        });
    }

    /// Makes what was added since the last call locatable. A large index is built once and
    /// sealed once: sealing sorts every entry again.
    pub fn seal(&mut self) -> &mut Self {
        if !self.added.is_empty() {
            // The larger list takes the other, so the entries are copied at most once.
            let mut all = std::mem::take(&mut self.added);
            let mut had = std::mem::take(&mut self.blobs).into_entries();
            if had.len() > all.len() {
                std::mem::swap(&mut had, &mut all);
            }
            all.append(&mut had);
            self.blobs = SortedMap::new(all);
        }
        self
    }

    pub fn locate(&self, blob: &Hash) -> Option<BlobLocation> {
        self.locations(blob).next()
    }

    /// Every stored copy of a blob.
    pub fn locations(&self, blob: &Hash) -> impl Iterator<Item = BlobLocation> + '_ {
        debug_assert!(
            self.added.is_empty(),
            "an index located blobs before it was sealed"
        );
        self.blobs.all(blob).iter().map(|(_, l)| *l)
    }

    /// The slot of pack `id`, if the index lists it.
    pub fn slot_of(&self, id: &PackId) -> Option<PackSlot> {
        self.by_pack.get(id).copied()
    }

    pub fn pack(&self, slot: PackSlot) -> &IndexedPack {
        &self.packs[slot.0 as usize]
    }

    /// Every pack with its slot.
    pub fn slots(&self) -> impl Iterator<Item = (PackSlot, &IndexedPack)> {
        self.packs
            .iter()
            .enumerate()
            .map(|(i, p)| (PackSlot(i as u32), p))
    }

    /// Blobs located, counting each copy.
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::repo::pack::FrameInfo;

    fn record(seed: u8) -> PackRecord {
        PackRecord {
            id: PackId([seed; 32]),
            size: 1000 + seed as u64,
            table: PackTable {
                kind: BlobKind::Data,
                frames: vec![
                    FrameInfo {
                        compressed_len: 10,
                        uncompressed_len: 8,
                        blobs: vec![([seed + 1; 32], 4), ([seed + 2; 32], 4)],
                    },
                    FrameInfo {
                        compressed_len: 5,
                        uncompressed_len: 4,
                        blobs: vec![([seed + 3; 32], 4)],
                    },
                ],
            },
        }
    }

    #[test]
    fn an_index_round_trips_and_locates_blobs() {
        let bytes = encode(&[record(10), record(50)]);
        assert_eq!(&bytes[..5], b"IVIX\x01");
        let recs = decode(&bytes).unwrap();
        let mut idx = Index::default();
        recs.iter().for_each(|r| idx.add(r));
        idx.seal();
        let loc = idx.locate(&[12u8; 32]).unwrap();
        assert_eq!(
            (loc.pack, loc.frame, loc.offset, loc.len),
            (PackSlot(0), 0, 4, 4)
        );
        let loc = idx.locate(&[53u8; 32]).unwrap();
        assert_eq!((loc.pack, loc.frame, loc.offset), (PackSlot(1), 1, 0));
        assert_eq!(idx.pack(PackSlot(1)).frames[1].offset, 10);
        assert!(idx.locate(&[99u8; 32]).is_none());
    }

    #[test]
    fn every_copy_of_a_blob_is_remembered() {
        let mut idx = Index::default();
        idx.add(&record(10));
        let mut again = record(10);
        again.id = PackId([200; 32]);
        idx.add(&again);
        idx.add(&record(10)); // the same pack twice counts once
        idx.seal();
        assert_eq!(idx.packs.len(), 2);
        let mut packs: Vec<PackSlot> = idx.locations(&[11u8; 32]).map(|l| l.pack).collect();
        packs.sort();
        assert_eq!(packs, vec![PackSlot(0), PackSlot(1)]);
    }

    /// `packs` records of 16 frames of `per_frame` page blobs each, all ids distinct.
    pub(crate) fn sample_records(packs: u32, per_frame: u32) -> Vec<PackRecord> {
        (0..packs)
            .map(|p| PackRecord {
                id: PackId(crate::hash::sha256(&p.to_le_bytes())),
                size: 8 << 20,
                table: PackTable {
                    kind: BlobKind::Data,
                    frames: (0..16u32)
                        .map(|f| FrameInfo {
                            compressed_len: 1000 + f,
                            uncompressed_len: per_frame * 4096,
                            blobs: (0..per_frame)
                                .map(|b| (crate::hash::sha256(&[p, f, b].map(|x| x as u8)), 4096))
                                .collect(),
                        })
                        .collect(),
                },
            })
            .collect()
    }

    #[test]
    fn a_large_index_decodes_as_a_stream_across_windows() {
        // 40 packs of 2000 blobs: about 2.9 MiB, so records straddle the 1 MiB windows.
        let packs = sample_records(40, 125);
        let bytes = encode(&packs);
        assert!(bytes.len() > 2 * WINDOW);
        /// Hands out a few bytes at a time, then fails after `fail_at` bytes if asked to.
        struct Trickle<'a>(&'a [u8], usize, Option<usize>);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                if self.2.is_some_and(|f| self.1 >= f) {
                    return Err(std::io::Error::other("authentication failed"));
                }
                let n = out.len().min(4093).min(self.0.len() - self.1);
                out[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let mut got = Vec::new();
        decode_stream(Trickle(&bytes, 0, None), &mut |p| got.push(p)).unwrap();
        assert_eq!(got.len(), packs.len());
        assert!(got
            .iter()
            .zip(&packs)
            .all(|(a, b)| a.id == b.id && a.table == b.table));
        let failed = decode_stream(Trickle(&bytes, 0, Some(1_500_000)), &mut |_| {});
        assert!(matches!(failed, Err(StreamError::Read(_))));
    }

    #[test]
    fn truncated_or_foreign_indexes_are_rejected() {
        let bytes = encode(&[record(1)]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        let mut v2 = bytes;
        v2[4] = 2;
        assert!(decode(&v2).is_err());
    }
}
