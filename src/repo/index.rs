//! Indexes say where every blob is: which pack, which frame, which bytes. One index object is
//! written per backup run, after its packs and before its snapshot manifest.

use super::binary::{Hash, Reader, Truncated, Writer};
use super::pack::{BlobKind, Ids, PackTable};
use std::collections::HashMap;

const MAGIC: &[u8; 4] = b"IVIX";
const VERSION: u8 = 1;

/// One pack as the index records it: its id, encrypted size and table.
#[derive(Debug, Clone)]
pub struct PackRecord {
    pub id: Hash,
    pub size: u64,
    pub table: PackTable,
}

pub fn encode(packs: &[PackRecord]) -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes(MAGIC);
    w.u8(VERSION);
    w.u32(packs.len() as u32);
    for p in packs {
        w.bytes(&p.id);
        w.u64(p.size);
        p.table.encode(&mut w, Ids::With);
    }
    w.0
}

pub fn decode(data: &[u8]) -> Result<Vec<PackRecord>, Truncated> {
    let mut r = Reader::new(data);
    if r.take(4)? != MAGIC || r.u8()? != VERSION {
        return Err(Truncated);
    }
    let n = r.u32()? as usize;
    let mut packs = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let id = r.hash()?;
        let size = r.u64()?;
        let table = PackTable::decode(&mut r, Ids::With)?;
        packs.push(PackRecord { id, size, table });
    }
    if !r.is_empty() {
        return Err(Truncated);
    }
    Ok(packs)
}

/// Where one blob lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: u32,
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
    pub id: Hash,
    pub size: u64,
    pub kind: BlobKind,
    pub frames: Vec<FrameLocation>,
    pub table: PackTable,
}

/// All indexes of a repository merged: blob id → location.
#[derive(Debug, Default)]
pub struct Index {
    pub packs: Vec<IndexedPack>,
    by_pack: HashMap<Hash, u32>,
    blobs: HashMap<Hash, BlobLocation>,
    /// Further copies of blobs stored more than once (after `backup --full`): reads fall back
    /// to them when a pack is lost or damaged.
    alternates: HashMap<Hash, Vec<BlobLocation>>,
}

impl Index {
    /// Adds a pack; a pack listed by two indexes is kept once.
    pub fn add(&mut self, rec: PackRecord) {
        if self.by_pack.contains_key(&rec.id) {
            return;
        }
        let pack = self.packs.len() as u32;
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
                match self.blobs.entry(*id) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(loc);
                    }
                    std::collections::hash_map::Entry::Occupied(_) => {
                        self.alternates.entry(*id).or_default().push(loc);
                    }
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
            table: rec.table,
        });
    }

    pub fn locate(&self, blob: &Hash) -> Option<BlobLocation> {
        self.blobs.get(blob).copied()
    }

    /// Every stored copy of a blob.
    pub fn locations(&self, blob: &Hash) -> impl Iterator<Item = BlobLocation> + '_ {
        self.blobs
            .get(blob)
            .into_iter()
            .chain(self.alternates.get(blob).into_iter().flatten())
            .copied()
    }

    pub fn pack(&self, i: u32) -> &IndexedPack {
        &self.packs[i as usize]
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }
}
