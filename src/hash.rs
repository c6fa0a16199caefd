//! SHA-256 digests: how objects, blobs and whole databases are named and verified. Shared by
//! every layer, so none of them needs to know the repository format to hash something.

/// A SHA-256 digest.
pub type Hash = [u8; 32];

pub fn sha256(data: &[u8]) -> Hash {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Parses 64 hex digits.
/// The order of digests, comparing their first 8 bytes as one number before the rest: the same
/// order as comparing the bytes, and much cheaper when sorting many of them.
pub fn cmp(a: &Hash, b: &Hash) -> std::cmp::Ordering {
    let head = |h: &Hash| u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    head(a).cmp(&head(b)).then_with(|| a[8..].cmp(&b[8..]))
}

pub fn parse_hex(s: &str) -> Option<Hash> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h).ok()?;
    Some(h)
}

/// Splits concatenated 32-byte digests (a tree segment, a cached list of blobs).
pub fn split(bytes: &[u8]) -> impl Iterator<Item = Hash> + '_ {
    bytes.chunks_exact(32).map(|c| {
        let mut h = [0u8; 32];
        h.copy_from_slice(c);
        h
    })
}

/// Hashes a digest for a hash table by its first 8 bytes: digests are uniform already, and
/// SipHash over 32 bytes was a visible share of loading a repository's indexes.
#[derive(Debug, Default, Clone, Copy)]
pub struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut first = [0u8; 8];
        let n = bytes.len().min(8);
        first[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(first);
    }

    /// A digest's length prefix is always 32: nothing to mix in.
    fn write_usize(&mut self, _: usize) {}
}

pub type DigestBuildHasher = std::hash::BuildHasherDefault<DigestHasher>;
/// A set of digests.
pub type DigestSet = std::collections::HashSet<Hash, DigestBuildHasher>;
/// A map keyed by digests.
pub type DigestMap<V> = std::collections::HashMap<Hash, V, DigestBuildHasher>;

#[cfg(test)]
mod tests {
    #[test]
    fn digests_order_as_their_bytes_do() {
        let mut digests: Vec<super::Hash> = (0..2000u32)
            .map(|i| super::sha256(&(i % 700).to_le_bytes()))
            .collect();
        // Digests that differ only after the first 8 bytes, and only in the first.
        let mut late = digests[0];
        late[31] ^= 1;
        let mut early = digests[0];
        early[0] ^= 0x80;
        digests.extend([late, early]);
        let mut by_bytes = digests.clone();
        by_bytes.sort();
        digests.sort_by(super::cmp);
        assert_eq!(digests, by_bytes);
    }
}
