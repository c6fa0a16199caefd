//! Packs: the objects that hold blobs. A pack's plaintext is a run of zstd frames, each
//! holding one or more blobs back to back, followed by a table describing the frames and a
//! trailer, so a pack can be read even without an index. The whole pack is age-encrypted;
//! its id is the SHA-256 of the encrypted bytes. Layout in docs/FORMAT.md.

use super::binary::{Reader, Truncated, Writer};
use crate::hash::{sha256, Hash};

const TRAILER_MAGIC: &[u8; 4] = b"IVPK";

/// Data blobs are database pages; tree blobs are segments of a snapshot's page list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobKind {
    Data = 0,
    Tree = 1,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameInfo {
    pub compressed_len: u32,
    pub uncompressed_len: u32,
    /// (blob id, length), in the order they follow each other in the frame.
    pub blobs: Vec<(Hash, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackTable {
    pub kind: BlobKind,
    pub frames: Vec<FrameInfo>,
}

/// Whether an encoded table carries blob ids. Indexes do; the copy inside a pack does not,
/// since ids can be recomputed by hashing the blobs and would only add 32 bytes per page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    With,
    Without,
}

impl PackTable {
    pub fn encode(&self, w: &mut Writer, ids: Ids) {
        w.u8(self.kind as u8);
        w.u32(self.frames.len() as u32);
        for f in &self.frames {
            w.u32(f.compressed_len);
            w.u32(f.uncompressed_len);
            w.u32(f.blobs.len() as u32);
            for (id, len) in &f.blobs {
                if ids == Ids::With {
                    w.bytes(id);
                }
                w.u32(*len);
            }
        }
    }

    /// Decodes a table; without ids, every blob id reads as zeros.
    pub fn decode(r: &mut Reader, ids: Ids) -> Result<Self, Truncated> {
        let kind = match r.u8()? {
            0 => BlobKind::Data,
            1 => BlobKind::Tree,
            _ => return Err(Truncated),
        };
        let n = r.u32()? as usize;
        let mut frames = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let compressed_len = r.u32()?;
            let uncompressed_len = r.u32()?;
            let nb = r.u32()? as usize;
            let mut blobs = Vec::with_capacity(nb.min(1 << 16));
            for _ in 0..nb {
                let id = if ids == Ids::With {
                    r.hash()?
                } else {
                    [0u8; 32]
                };
                blobs.push((id, r.u32()?));
            }
            frames.push(FrameInfo {
                compressed_len,
                uncompressed_len,
                blobs,
            });
        }
        Ok(PackTable { kind, frames })
    }

    /// Same kind, frames and blob lengths; ids are not compared.
    pub fn same_layout(&self, other: &PackTable) -> bool {
        self.kind == other.kind
            && self.frames.len() == other.frames.len()
            && self.frames.iter().zip(&other.frames).all(|(a, b)| {
                a.compressed_len == b.compressed_len
                    && a.uncompressed_len == b.uncompressed_len
                    && a.blobs.len() == b.blobs.len()
                    && a.blobs.iter().zip(&b.blobs).all(|(x, y)| x.1 == y.1)
            })
    }

    pub fn blob_count(&self) -> usize {
        self.frames.iter().map(|f| f.blobs.len()).sum()
    }

    /// What is kept of a table to compare it with another later: 64 bytes, where the table
    /// holds 36 a blob.
    pub fn digest(&self) -> TableDigest {
        use sha2::Digest;
        let (mut layout, mut whole) = (sha2::Sha256::new(), sha2::Sha256::new());
        let mut lengths: Vec<u8> = vec![self.kind as u8];
        lengths.extend((self.frames.len() as u64).to_le_bytes());
        for f in &self.frames {
            lengths.extend(f.compressed_len.to_le_bytes());
            lengths.extend(f.uncompressed_len.to_le_bytes());
            lengths.extend((f.blobs.len() as u64).to_le_bytes());
            for (id, len) in &f.blobs {
                lengths.extend(len.to_le_bytes());
                whole.update(id);
            }
        }
        layout.update(&lengths);
        whole.update(&lengths);
        TableDigest {
            layout: layout.finalize().into(),
            whole: whole.finalize().into(),
        }
    }
}

/// Digests of a [`PackTable`]: of its layout (what [`PackTable::same_layout`] compares), and
/// of all of it, blob ids included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDigest {
    pub layout: Hash,
    pub whole: Hash,
}

/// Collects compressed frames into one pack's plaintext.
pub struct PackBuilder<W: std::io::Write = Vec<u8>> {
    out: W,
    /// Bytes of frames written to `out`.
    len: usize,
    table: PackTable,
}

impl PackBuilder {
    /// A pack built in memory.
    pub fn new(kind: BlobKind, capacity: usize) -> Self {
        PackBuilder::writing_to(kind, Vec::with_capacity(capacity))
    }
}

impl<W: std::io::Write> PackBuilder<W> {
    /// A pack written to `out` as it is built (the writer encrypts it on the way, so the
    /// plaintext is never held whole).
    pub fn writing_to(kind: BlobKind, out: W) -> Self {
        PackBuilder {
            out,
            len: 0,
            table: PackTable {
                kind,
                frames: Vec::new(),
            },
        }
    }

    pub fn push(
        &mut self,
        compressed: &[u8],
        uncompressed_len: u32,
        blobs: Vec<(Hash, u32)>,
    ) -> std::io::Result<()> {
        self.out.write_all(compressed)?;
        self.len += compressed.len();
        self.table.frames.push(FrameInfo {
            compressed_len: compressed.len() as u32,
            uncompressed_len,
            blobs,
        });
        Ok(())
    }

    /// Bytes of frames so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.table.frames.is_empty()
    }

    /// Ends the pack with its table, and returns the output and the table that the index
    /// will repeat.
    pub fn finish(self) -> std::io::Result<(W, PackTable)> {
        let PackBuilder { mut out, table, .. } = self;
        let mut w = Writer(Vec::new());
        table.encode(&mut w, Ids::Without);
        let table_len = w.0.len() as u32;
        w.u32(table_len);
        w.bytes(TRAILER_MAGIC);
        out.write_all(&w.0)?;
        Ok((out, table))
    }
}

/// Splits a decrypted pack into its table (without blob ids) and frame region.
pub fn parse(plain: &[u8]) -> Result<(PackTable, &[u8]), Truncated> {
    if plain.len() < 8 || &plain[plain.len() - 4..] != TRAILER_MAGIC {
        return Err(Truncated);
    }
    let mut lenr = Reader::new(&plain[plain.len() - 8..plain.len() - 4]);
    let table_len = lenr.u32()? as usize;
    let table_start = plain.len().checked_sub(8 + table_len).ok_or(Truncated)?;
    let mut r = Reader::new(&plain[table_start..plain.len() - 8]);
    let table = PackTable::decode(&mut r, Ids::Without)?;
    let frames_len: u64 = table.frames.iter().map(|f| f.compressed_len as u64).sum();
    if frames_len != table_start as u64 || !r.is_empty() {
        return Err(Truncated);
    }
    Ok((table, &plain[..table_start]))
}

/// Rebuilds a pack's table with its blob ids from the decrypted pack alone, as lost indexes
/// are rebuilt (docs/FORMAT.md): every frame is decompressed, split at the blob lengths and
/// each blob hashed. `each` sees every blob with its id. Returns why the pack cannot be read.
pub fn table_with_ids(
    plain: &[u8],
    each: &mut dyn FnMut(&Hash, &[u8]),
) -> Result<PackTable, String> {
    let (mut table, frames) = parse(plain).map_err(|_| "pack table is malformed".to_string())?;
    let mut decoder = FrameDecoder::new()?;
    let mut data = Vec::new();
    let mut off = 0usize;
    for f in &mut table.frames {
        let end = off + f.compressed_len as usize;
        let compressed = frames.get(off..end).ok_or("frame past end of pack")?;
        decoder.decode(compressed, f.uncompressed_len, &mut data)?;
        let mut b = 0usize;
        for (id, len) in &mut f.blobs {
            let blob = data
                .get(b..b + *len as usize)
                .ok_or("blob lengths exceed their frame")?;
            *id = sha256(blob);
            each(id, blob);
            b += blob.len();
        }
        if b != data.len() {
            return Err("blob lengths do not add up to their frame".into());
        }
        off = end;
    }
    Ok(table)
}

/// Decompresses frames into one reused buffer: fresh large allocations cost a page fault
/// for every 4 KiB, which on a large restore adds up to seconds.
pub struct FrameDecoder {
    zstd: zstd::bulk::Decompressor<'static>,
}

impl FrameDecoder {
    pub fn new() -> Result<Self, String> {
        let zstd = zstd::bulk::Decompressor::new().map_err(|e| format!("zstd failed: {e}"))?;
        Ok(FrameDecoder { zstd })
    }

    /// Decompresses one frame into `out` (cleared first), which must come to exactly
    /// `uncompressed_len` bytes.
    pub fn decode(
        &mut self,
        compressed: &[u8],
        uncompressed_len: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.clear();
        out.reserve(uncompressed_len as usize);
        let n = self
            .zstd
            .decompress_to_buffer(compressed, out)
            .map_err(|_| "frame does not decompress".to_string())?;
        if n != uncompressed_len as usize {
            return Err("frame has the wrong length".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_digest_tells_a_different_layout_from_different_ids() {
        let table = |id: u8, len: u32| PackTable {
            kind: BlobKind::Data,
            frames: vec![FrameInfo {
                compressed_len: 700,
                uncompressed_len: 4096 + len,
                blobs: vec![([1; 32], 4096), ([id; 32], len)],
            }],
        };
        let d = table(2, 1024).digest();
        assert_eq!(d, table(2, 1024).digest());
        let other_id = table(3, 1024).digest();
        assert_eq!(other_id.layout, d.layout);
        assert_ne!(other_id.whole, d.whole);
        let other_len = table(2, 1023).digest();
        assert_ne!(other_len.layout, d.layout);
        assert_ne!(other_len.whole, d.whole);
        let mut tree = table(2, 1024);
        tree.kind = BlobKind::Tree;
        assert_ne!(tree.digest().layout, d.layout);
    }

    /// Checks blobs of a decompressed frame against their ids; returns the ids that do not match.
    fn verify_frame(plain: &[u8], info: &FrameInfo) -> Vec<Hash> {
        let mut bad = Vec::new();
        let mut off = 0usize;
        for (id, len) in &info.blobs {
            let end = off + *len as usize;
            if end > plain.len() || sha256(&plain[off..end]) != *id {
                bad.push(*id);
            }
            off = end;
        }
        bad
    }

    fn decode(compressed: &[u8], f: &FrameInfo) -> Vec<u8> {
        let mut data = Vec::new();
        FrameDecoder::new()
            .unwrap()
            .decode(compressed, f.uncompressed_len, &mut data)
            .unwrap();
        data
    }

    fn sample() -> (Vec<u8>, PackTable) {
        let pages: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 4096]).collect();
        let mut b = PackBuilder::new(BlobKind::Data, 0);
        let joined: Vec<u8> = pages.concat();
        let blobs = pages.iter().map(|p| (sha256(p), p.len() as u32)).collect();
        let compressed = zstd::bulk::compress(&joined, 3).unwrap();
        b.push(&compressed, joined.len() as u32, blobs).unwrap();
        b.finish().unwrap()
    }

    #[test]
    fn a_pack_parses_back_to_its_layout_and_blobs() {
        let (plain, table) = sample();
        assert_eq!(&plain[plain.len() - 4..], b"IVPK");
        let (layout, frames) = parse(&plain).unwrap();
        assert!(layout.same_layout(&table));
        assert!(
            layout.frames[0]
                .blobs
                .iter()
                .all(|(id, _)| *id == [0u8; 32]),
            "ids stay out of packs"
        );
        let f = &table.frames[0];
        let data = decode(&frames[..f.compressed_len as usize], f);
        assert!(verify_frame(&data, f).is_empty());
        assert_eq!(&data[4096..8192], &[1u8; 4096][..]);
    }

    #[test]
    fn the_in_pack_table_is_exactly_the_documented_bytes() {
        let (plain, table) = sample();
        let f = &table.frames[0];
        let mut expected = vec![0u8]; // kind: data
        expected.extend(1u32.to_le_bytes()); // one frame
        expected.extend(f.compressed_len.to_le_bytes());
        expected.extend((3 * 4096u32).to_le_bytes());
        expected.extend(3u32.to_le_bytes());
        for _ in 0..3 {
            expected.extend(4096u32.to_le_bytes());
        }
        expected.extend((expected.len() as u32).to_le_bytes());
        expected.extend(b"IVPK");
        assert_eq!(&plain[f.compressed_len as usize..], &expected[..]);
    }

    #[test]
    fn a_table_with_ids_is_rebuilt_from_the_pack_alone() {
        let (plain, table) = sample();
        let mut seen = Vec::new();
        let rebuilt = table_with_ids(&plain, &mut |id, blob| seen.push((*id, blob.len()))).unwrap();
        assert_eq!(rebuilt, table);
        assert_eq!(
            seen,
            table.frames[0]
                .blobs
                .iter()
                .map(|(id, l)| (*id, *l as usize))
                .collect::<Vec<_>>()
        );
        // A pack whose table claims more blob bytes than its frame holds is refused.
        let (mut layout, _) = parse(&plain).unwrap();
        layout.frames[0].blobs[2].1 += 1;
        let mut w = Writer(plain[..table.frames[0].compressed_len as usize].to_vec());
        let start = w.0.len();
        layout.encode(&mut w, Ids::Without);
        let len = (w.0.len() - start) as u32;
        w.u32(len);
        w.bytes(TRAILER_MAGIC);
        assert_eq!(
            table_with_ids(&w.0, &mut |_, _| {}),
            Err("blob lengths exceed their frame".to_string())
        );
    }

    #[test]
    fn damaged_packs_are_rejected_not_misread() {
        let (plain, table) = sample();
        for cut in [0, 1, 7, plain.len() / 2, plain.len() - 1] {
            assert!(parse(&plain[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = plain.clone();
        let n = bad.len();
        bad[n - 8] ^= 1; // table length
        assert!(parse(&bad).is_err());
        // A flipped byte inside a blob is caught by its id.
        let f = &table.frames[0];
        let mut data = decode(&plain[..f.compressed_len as usize], f);
        data[5000] ^= 1;
        assert_eq!(verify_frame(&data, f), vec![f.blobs[1].0]);
    }
}
