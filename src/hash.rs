//! SHA-256 digests: how objects, blobs and whole databases are named and verified. Shared by
//! every layer, so none of them needs to know the repository format to hash something.

/// A SHA-256 digest.
pub type Hash = [u8; 32];

pub fn sha256(data: &[u8]) -> Hash {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Parses 64 hex digits.
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
