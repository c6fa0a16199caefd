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

/// Digests with a value each, as one sorted array (32 bytes and the value per entry) with a
/// table of where each run of leading bits starts, so a lookup searches a handful of entries.
/// Half the memory of a [`DigestMap`], whose table is at most 7/8 full and doubles to grow. A
/// digest may appear more than once (several copies of a blob); each is kept.
#[derive(Debug)]
pub struct SortedMap<V> {
    sorted: Vec<(Hash, V)>,
    /// `starts[b]` is the first entry whose leading `bits` bits are `b` or more.
    starts: Vec<u32>,
    bits: u32,
}

/// A set of digests: a [`SortedMap`] without values.
pub type SortedDigests = SortedMap<()>;

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl<V> SortedMap<V> {
    pub fn new(mut entries: Vec<(Hash, V)>) -> Self {
        entries.sort_unstable_by(|a, b| cmp(&a.0, &b.0));
        entries.shrink_to_fit();
        // About four entries per bucket: the table costs one byte per entry.
        let bits = (usize::BITS - entries.len().leading_zeros())
            .saturating_sub(2)
            .clamp(1, 24);
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let mut k = 0;
        for b in 0..(1u64 << bits) {
            while k < entries.len() && head(&entries[k].0) >> (64 - bits) < b {
                k += 1;
            }
            starts.push(k as u32);
        }
        starts.push(entries.len() as u32);
        SortedMap {
            sorted: entries,
            starts,
            bits,
        }
    }

    /// Every entry of digest `h`.
    pub fn all(&self, h: &Hash) -> &[(Hash, V)] {
        let b = (head(h) >> (64 - self.bits)) as usize;
        let (Some(&a), Some(&z)) = (self.starts.get(b), self.starts.get(b + 1)) else {
            return &[];
        };
        let bucket = &self.sorted[a as usize..z as usize];
        let first = bucket.partition_point(|(x, _)| cmp(x, h).is_lt());
        let n = bucket[first..].iter().take_while(|(x, _)| x == h).count();
        &bucket[first..first + n]
    }

    /// The first entry of digest `h`.
    pub fn get(&self, h: &Hash) -> Option<&V> {
        self.all(h).first().map(|(_, v)| v)
    }

    pub fn contains(&self, h: &Hash) -> bool {
        !self.all(h).is_empty()
    }

    /// The entries, for building a larger map.
    pub fn into_entries(self) -> Vec<(Hash, V)> {
        self.sorted
    }

    /// Entries, counting each copy of a digest.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

impl SortedDigests {
    /// The set of `digests`, each once.
    pub fn of(mut digests: Vec<Hash>) -> Self {
        digests.sort_unstable_by(cmp);
        digests.dedup();
        Self::new(digests.into_iter().map(|h| (h, ())).collect())
    }
}

fn head(h: &Hash) -> u64 {
    u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
}

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

    #[test]
    fn a_sorted_set_holds_exactly_its_digests() {
        for n in [0u32, 1, 2, 5, 1000, 70_000] {
            let members: Vec<super::Hash> =
                (0..n).map(|i| super::sha256(&i.to_le_bytes())).collect();
            let mut given = members.clone();
            given.extend(members.iter().take(3).copied()); // repeats count once
            let set = super::SortedDigests::of(given);
            assert_eq!(set.len(), n as usize);
            assert!(members.iter().all(|h| set.contains(h)), "n = {n}");
            let outsiders = (n..n + 2000).map(|i| super::sha256(&i.to_le_bytes()));
            assert!(!outsiders.into_iter().any(|h| set.contains(&h)), "n = {n}");
            assert!(!set.contains(&[0u8; 32]) && !set.contains(&[0xff; 32]));
        }
    }

    #[test]
    fn a_sorted_map_keeps_every_copy_of_a_digest() {
        let mut entries: Vec<(super::Hash, u32)> = (0..5000u32)
            .map(|i| (super::sha256(&i.to_le_bytes()), i))
            .collect();
        entries.push((entries[7].0, 99_999));
        let map = super::SortedMap::new(entries);
        let mut copies: Vec<u32> = map
            .all(&super::sha256(&7u32.to_le_bytes()))
            .iter()
            .map(|e| e.1)
            .collect();
        copies.sort();
        assert_eq!(copies, vec![7, 99_999]);
        assert_eq!(map.get(&super::sha256(&4999u32.to_le_bytes())), Some(&4999));
        assert_eq!(map.get(&super::sha256(&5000u32.to_le_bytes())), None);
        assert_eq!(map.len(), 5001);
    }
}
