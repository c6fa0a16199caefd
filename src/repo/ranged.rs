//! Reading part of an encrypted object without fetching all of it. age encrypts in 64 KiB
//! chunks, each authenticated on its own, so a plaintext range needs only the header and the
//! chunks that cover it: a few hundred KiB for one frame of an 8 MiB pack. What is read is
//! authenticated by age, and the caller checks every blob against its id; the object's own
//! SHA-256 (its name) needs the whole object and is not checked on this path.

use super::codec::OpenError;
use super::keys::Keyring;
use crate::storage::{Storage, StorageError};
use std::cell::{Cell, RefCell};
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

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
    let mut plain = Plaintext::open(storage, keys, key, size, ciphertext_of(len))?;
    let mut out = Vec::new();
    plain.read(offset, len as usize, &mut out)?;
    Ok(out)
}

/// The ciphertext to fetch for `len` plaintext bytes in one request: their age chunks' tags,
/// and a chunk to spare on each side (a range rarely starts on a chunk's boundary).
pub fn ciphertext_of(len: u64) -> u64 {
    len + len / 64 + 2 * ENCRYPTED_CHUNK
}

pub enum RangeError {
    Storage(StorageError),
    Open(OpenError),
}

/// An encrypted object's plaintext, fetched `fetch` bytes at a time and decrypted 64 KiB at a
/// time as it is read: what is held is one fetch and one chunk, not the object.
pub struct Plaintext<'a> {
    stream: age::stream::StreamReader<ObjectReader<'a>>,
    /// Plaintext position of the stream.
    pos: u64,
    fetched: Rc<Fetched>,
}

#[derive(Default)]
struct Fetched {
    bytes: Cell<u64>,
    /// A storage failure shows to age as an I/O error: this is the storage's own error.
    failure: RefCell<Option<StorageError>>,
}

impl<'a> Plaintext<'a> {
    pub fn open(
        storage: &'a dyn Storage,
        keys: &Keyring,
        key: &'a str,
        size: u64,
        fetch: u64,
    ) -> Result<Self, RangeError> {
        let reader = ObjectReader::new(storage, key, size, fetch.max(ENCRYPTED_CHUNK));
        let fetched = Rc::clone(&reader.fetched);
        let opened = age::Decryptor::new(reader)
            .map_err(|e| OpenError::Damaged(format!("bad age header: {e}")))
            .and_then(|dec| {
                dec.decrypt(keys.identities()).map_err(|e| match e {
                    age::DecryptError::NoMatchingKeys => OpenError::WrongKey,
                    other => OpenError::Damaged(other.to_string()),
                })
            });
        match opened {
            Ok(stream) => Ok(Plaintext {
                stream,
                pos: 0,
                fetched,
            }),
            Err(e) => Err(fetched
                .failure
                .take()
                .map_or(RangeError::Open(e), RangeError::Storage)),
        }
    }

    /// Reads plaintext bytes `offset .. offset + len` into `out` (replacing what it held).
    /// Reading on from where the last read ended fetches nothing twice.
    pub fn read(&mut self, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<(), RangeError> {
        let damaged = |e: std::io::Error| OpenError::Damaged(format!("authentication failed: {e}"));
        let read = (|| {
            if offset != self.pos {
                self.stream.seek(SeekFrom::Start(offset)).map_err(damaged)?;
                self.pos = offset;
            }
            out.resize(len, 0);
            self.stream.read_exact(out).map_err(damaged)?;
            self.pos += len as u64;
            Ok(())
        })();
        read.map_err(|e| {
            // A failed read leaves the stream somewhere unknown.
            self.pos = u64::MAX;
            match self.fetched.failure.take() {
                Some(s) => RangeError::Storage(s),
                None => RangeError::Open(e),
            }
        })
    }

    /// Encrypted bytes fetched so far.
    pub fn fetched(&self) -> u64 {
        self.fetched.bytes.get()
    }
}

/// Object `key` (`size` bytes) read from its start, `fetch` bytes a request: a large object
/// without holding it whole. A storage failure shows as an I/O error; [`Probe::failure`] then
/// gives the storage's own error.
pub struct ObjectStream<'a>(ObjectReader<'a>);

/// What an [`ObjectStream`] ran into, kept after the stream is handed on.
pub struct Probe(Rc<Fetched>);

impl<'a> ObjectStream<'a> {
    pub fn new(storage: &'a dyn Storage, key: &'a str, size: u64, fetch: u64) -> Self {
        ObjectStream(ObjectReader::new(storage, key, size, fetch))
    }

    pub fn probe(&self) -> Probe {
        Probe(Rc::clone(&self.0.fetched))
    }
}

impl Read for ObjectStream<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.0.read(out)
    }
}

impl Probe {
    pub fn failure(&self) -> Option<StorageError> {
        self.0.failure.take()
    }
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
    fetched: Rc<Fetched>,
}

impl<'a> ObjectReader<'a> {
    fn new(storage: &'a dyn Storage, key: &'a str, size: u64, ahead: u64) -> Self {
        ObjectReader {
            storage,
            key,
            size,
            pos: 0,
            buffer: Vec::new(),
            buffer_at: 0,
            ahead,
            fetched: Rc::default(),
        }
    }
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
            let fetched = self
                .storage
                .get_range_into(self.key, self.pos, want, &mut self.buffer);
            self.buffer_at = self.pos;
            match fetched {
                Ok(()) if !self.buffer.is_empty() => {
                    let fetched = &self.fetched.bytes;
                    fetched.set(fetched.get() + self.buffer.len() as u64);
                }
                Ok(()) => return Ok(0),
                Err(e) => {
                    // What a failed fetch left in the buffer is not the object's.
                    self.buffer.clear();
                    let message = e.to_string();
                    *self.fetched.failure.borrow_mut() = Some(e);
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
