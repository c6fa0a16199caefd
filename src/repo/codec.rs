//! Sealing objects: zstd compression and age encryption (X25519 recipients,
//! ChaCha20-Poly1305 payload). Packs carry already-compressed frames, so they are only
//! encrypted; indexes, manifests and tree segments are compressed, then encrypted.

use super::keys::Keyring;
use crate::error::{Error, Result};
use std::io::{BufRead, Read, Write};

/// Recipients parsed once and reused for every object of a backup.
pub struct Sealer {
    recipients: Vec<age::x25519::Recipient>,
}

impl Sealer {
    pub fn new(recipients: &[String]) -> Result<Self> {
        if recipients.is_empty() {
            return Err(Error::Key(crate::error::Fault::new(
                "no recipient to encrypt to",
                crate::error::Hint::GiveRecipient,
            )));
        }
        let recipients = recipients
            .iter()
            .map(|r| super::keys::parse_recipient(r))
            .collect::<Result<_>>()?;
        Ok(Sealer { recipients })
    }

    pub fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>> {
        self.encrypt_stream(plain.len() + 512, &mut |w| w.write_all(plain))
    }

    /// Encrypts what `write` writes, without holding the plaintext whole.
    fn encrypt_stream(
        &self,
        capacity: usize,
        write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<Vec<u8>> {
        let mut w = self.encrypting(capacity)?;
        write(&mut w)
            .and_then(|_| w.finish())
            .map_err(encryption_failed)
    }

    /// An age stream into memory: what is written to it is encrypted a chunk at a time, and
    /// `finish` gives the whole object.
    pub fn encrypting(&self, capacity: usize) -> Result<age::stream::StreamWriter<Vec<u8>>> {
        let enc = age::Encryptor::with_recipients(
            self.recipients.iter().map(|r| r as &dyn age::Recipient),
        )
        .map_err(|e| Error::Internal(format!("cannot set up encryption: {e}").into()))?;
        enc.wrap_output(Vec::with_capacity(capacity))
            .map_err(encryption_failed)
    }

    /// zstd, then age.
    pub fn seal(&self, plain: &[u8], level: i32) -> Result<Vec<u8>> {
        self.encrypt(&compress(plain, level)?)
    }

    /// zstd, then age, of what `write` writes, as one stream: neither the plaintext nor the
    /// compressed bytes are held whole (an index of a large full backup is tens of MiB).
    pub fn seal_stream(
        &self,
        level: i32,
        write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<Vec<u8>> {
        self.encrypt_stream(0, &mut |w| {
            let mut z = zstd::stream::write::Encoder::new(w, level)?;
            write(&mut z)?;
            z.finish().map(|_| ())
        })
    }
}

pub fn encryption_failed(e: std::io::Error) -> Error {
    Error::Internal(format!("encryption failed: {e}").into())
}

/// Why an object could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// None of our identities is a recipient: the wrong key.
    WrongKey,
    /// Authentication or decompression failed: the bytes are damaged.
    Damaged(String),
}

pub fn decrypt(keys: &Keyring, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    let mut out = Vec::with_capacity(sealed.len());
    decrypting(keys, sealed)?
        .read_to_end(&mut out)
        .map_err(|e| OpenError::Damaged(format!("authentication failed: {e}")))?;
    Ok(out)
}

/// age, then zstd, as one stream: the compressed bytes are never held whole.
pub fn unseal(keys: &Keyring, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    let mut out = Vec::with_capacity(sealed.len());
    unsealing(keys, sealed)?
        .read_to_end(&mut out)
        .map_err(|e| OpenError::Damaged(e.to_string()))?;
    Ok(out)
}

/// A reader of what `sealed` holds (age, then zstd), authenticated as it is read.
pub fn unsealing<'a>(
    keys: &Keyring,
    sealed: impl BufRead + 'a,
) -> Result<impl Read + 'a, OpenError> {
    zstd::stream::read::Decoder::new(decrypting(keys, sealed)?)
        .map_err(|e| OpenError::Damaged(e.to_string()))
}

/// A reader of `sealed`'s plaintext, authenticated as it is read.
fn decrypting<'a>(keys: &Keyring, sealed: impl BufRead + 'a) -> Result<impl Read + 'a, OpenError> {
    let dec = age::Decryptor::new_buffered(sealed)
        .map_err(|e| OpenError::Damaged(format!("bad age header: {e}")))?;
    dec.decrypt(keys.identities()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => OpenError::WrongKey,
        other => OpenError::Damaged(other.to_string()),
    })
}

pub fn compress(plain: &[u8], level: i32) -> Result<Vec<u8>> {
    zstd::bulk::compress(plain, level)
        .map_err(|e| Error::Internal(format!("zstd failed: {e}").into()))
}

/// Decompresses one zstd frame; `expected` bounds the output (usize::MAX: unknown).
pub fn decompress(data: &[u8], expected: usize) -> std::io::Result<Vec<u8>> {
    if expected != usize::MAX {
        return zstd::bulk::decompress(data, expected);
    }
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(data)?.read_to_end(&mut out)?;
    Ok(out)
}
