//! Reading part of an encrypted object without fetching all of it. age encrypts in 64 KiB
//! chunks, each authenticated on its own, so a plaintext range needs only the header and the
//! chunks that cover it: a few hundred KiB for one frame of an 8 MiB pack. What is read is
//! authenticated by age, and the caller checks every blob against its id; the object's own
//! SHA-256 (its name) needs the whole object and is not checked on this path.

use super::codec::OpenError;
use super::keys::Keyring;
use crate::storage::{Storage, StorageError};
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes fetched at the start of the object for the age header (recipient stanzas, MAC and
/// nonce); a longer header is fetched on.
const HEADER_GUESS: u64 = 4096;
/// An encrypted age chunk: 64 KiB and its 16-byte tag.
const ENCRYPTED_CHUNK: u64 = 64 * 1024 + 16;

/// Decrypts plaintext bytes `offset .. offset + len` of the object `key` (`size` bytes).
pub fn decrypt_range(
    storage: &dyn Storage,
    keys: &Keyring,
    key: &str,
    size: u64,
    (offset, len): (u64, u64),
) -> Result<Vec<u8>, RangeError> {
    let mut reader = ObjectReader {
        storage,
        key,
        size,
        pos: 0,
        buffer: Vec::new(),
        buffer_at: 0,
        // The ciphertext the range needs, with a chunk to spare on each side.
        ahead: len + len / 64 + 2 * ENCRYPTED_CHUNK,
        failure: None,
    };
    let stream = (|| {
        let dec = age::Decryptor::new(&mut reader)
            .map_err(|e| OpenError::Damaged(format!("bad age header: {e}")))?;
        let mut plain = dec.decrypt(keys.identities()).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => OpenError::WrongKey,
            other => OpenError::Damaged(other.to_string()),
        })?;
        plain
            .seek(SeekFrom::Start(offset))
            .map_err(|e| OpenError::Damaged(format!("authentication failed: {e}")))?;
        let mut out = vec![0u8; len as usize];
        plain
            .read_exact(&mut out)
            .map_err(|e| OpenError::Damaged(format!("authentication failed: {e}")))?;
        Ok(out)
    })();
    // A storage failure shows to age as an I/O error: report the storage's own error.
    match (reader.failure, stream) {
        (Some(e), Err(_)) => Err(RangeError::Storage(e)),
        (_, Err(e)) => Err(RangeError::Open(e)),
        (_, Ok(out)) => Ok(out),
    }
}

pub enum RangeError {
    Storage(StorageError),
    Open(OpenError),
}

/// `Read + Seek` over one stored object, fetching ranges as reads need them.
struct ObjectReader<'a> {
    storage: &'a dyn Storage,
    key: &'a str,
    size: u64,
    pos: u64,
    buffer: Vec<u8>,
    buffer_at: u64,
    /// Bytes fetched past the header at once.
    ahead: u64,
    failure: Option<StorageError>,
}

impl Read for ObjectReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || out.is_empty() {
            return Ok(0);
        }
        let end = self.buffer_at + self.buffer.len() as u64;
        if self.pos < self.buffer_at || self.pos >= end {
            let want = if self.pos == 0 {
                HEADER_GUESS
            } else {
                self.ahead
            };
            let want = want.max(out.len() as u64).min(self.size - self.pos);
            match self.storage.get_range(self.key, self.pos, want) {
                Ok(data) if !data.is_empty() => {
                    self.buffer = data;
                    self.buffer_at = self.pos;
                }
                Ok(_) => return Ok(0),
                Err(e) => {
                    let message = e.to_string();
                    self.failure = Some(e);
                    return Err(io::Error::other(message));
                }
            }
        }
        let from = (self.pos - self.buffer_at) as usize;
        let n = (self.buffer.len() - from).min(out.len());
        out[..n].copy_from_slice(&self.buffer[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for ObjectReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::other("seek before the start of the object"))?;
        Ok(self.pos)
    }
}
