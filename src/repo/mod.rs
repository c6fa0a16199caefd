//! The repository: an encrypted, content-addressed store on any `Storage`. This module ties
//! the format pieces together; docs/FORMAT.md is the authoritative description.
//!
//! ```text
//! config                  plaintext JSON: format, version, id, recipients
//! data/<aa>/<pack id>     packs of compressed blobs (pages, tree segments), encrypted
//! index/<index id>        where each blob is, encrypted
//! snapshots/<snapshot id> manifests, encrypted; written last
//! ```

pub mod binary;
pub mod catalog;
pub mod codec;
pub mod config;
pub(crate) mod copies;
pub mod doomed;
pub mod holds;
pub mod ids;
pub mod index;
pub mod keys;
pub mod lock;
pub mod manifest;
pub mod pack;
mod ranged;
pub mod reader;
pub mod signing;
pub mod tree;
mod unindexed;
pub mod writer;

use crate::error::{Error, Hint, Hinted, Result};
use crate::hash::{parse_hex, sha256};
use crate::storage::{Storage, StorageError};
use codec::OpenError;
use config::{Config, CONFIG_KEY};
use ids::{IndexId, ObjectId, PackId, SnapshotId};
use index::Index;
use keys::Keyring;
use manifest::Manifest;
use std::sync::Arc;

pub struct Repository {
    storage: Arc<dyn Storage>,
    config: Config,
}

impl Repository {
    /// Creates a repository in empty storage.
    pub fn init(storage: Arc<dyn Storage>, recipients: Vec<String>) -> Result<Self> {
        let location = storage.location();
        let existing = storage.list("").map_err(|e| storage_error(&location, e))?;
        if existing.iter().any(|o| o.key == CONFIG_KEY) {
            return Err(Error::Repository(
                format!("{location} is already an ivault repository; use it as it is").into(),
            ));
        }
        if !existing.is_empty() {
            return Err(Error::Repository(format!(
                "{location} is not empty and is not an ivault repository; choose an empty or new directory"
            ).into()));
        }
        for r in &recipients {
            keys::parse_recipient(r)?;
        }
        let config = Config::new(recipients);
        storage
            .put(CONFIG_KEY, &config.to_bytes())
            .map_err(|e| storage_error(&location, e))?;
        Ok(Repository { storage, config })
    }

    /// Opens an existing repository and checks its format version.
    pub fn open(storage: Arc<dyn Storage>) -> Result<Self> {
        let location = storage.location();
        let bytes = storage.get(CONFIG_KEY).map_err(|e| match e {
            StorageError::NotFound(_) => Error::Repository(
                format!("no ivault repository at {location}").hinted(Hint::CreateRepository {
                    location: location.clone(),
                }),
            ),
            other => storage_error(&location, other),
        })?;
        let config = Config::parse(&bytes, &location)?;
        // `config` never changes, so rewriting it unchanged is a harmless probe.
        storage.set_probe_object(CONFIG_KEY);
        Ok(Repository { storage, config })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn location(&self) -> String {
        self.storage.location()
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Stores `data` under its own SHA-256 as an object of kind `I`, and returns the id.
    pub fn put_object<I: ObjectId>(&self, data: &[u8]) -> Result<I> {
        let id = I::from_hash(sha256(data));
        match self.storage.put(&id.key(), data) {
            // Content-addressed: an existing object with this name holds these bytes.
            Err(StorageError::AlreadyExists(_)) => Ok(id),
            other => other
                .map(|_| id)
                .map_err(|e| storage_error(&self.location(), e)),
        }
    }

    /// Reads an object and checks that its bytes hash to its id.
    pub fn get_object<I: ObjectId>(&self, id: &I) -> Result<Vec<u8>> {
        let key = id.key();
        let data = self
            .storage
            .get(&key)
            .map_err(|e| self.read_error(&key, I::KIND, e))?;
        if sha256(&data) != *id.digest() {
            return Err(self.damaged_object(&key));
        }
        Ok(data)
    }

    fn damaged_object(&self, key: &str) -> Error {
        Error::Integrity(
            format!(
                "object {key} in {} is damaged (its hash does not match its name)",
                self.location()
            )
            .hinted(Hint::CheckData),
        )
    }

    /// Object `id` (stored as `key`, `size` bytes) as a stream, checked against its name
    /// before it is handed out: a first pass hashes it, and a second reads it again, from a
    /// local repository or from an unnamed local copy made by the first pass. A large object
    /// is never held whole. `probe` tells a storage failure of the second pass.
    fn verified_stream<'a, I: ObjectId>(
        &'a self,
        id: &I,
        key: &'a str,
        size: u64,
    ) -> Result<(Box<dyn std::io::BufRead + 'a>, Option<ranged::Probe>)> {
        use sha2::Digest;
        use std::io::{Read, Seek, Write};
        let storage = self.storage.as_ref();
        let mut first = ranged::ObjectStream::new(storage, key, size, STREAM_FETCH);
        let probe = first.probe();
        let read_failed = |e: std::io::Error| match probe.failure() {
            Some(s) => self.read_error(key, I::KIND, s),
            None => Error::Repository(
                format!("reading {key} in {} failed: {e}", self.location()).into(),
            ),
        };
        let spill_failed = |e: std::io::Error| {
            Error::Internal(
                format!("cannot keep a local copy of {key} while reading it: {e}").into(),
            )
        };
        let mut spill = match storage.local_dir() {
            Some(_) => None,
            None => Some(tempfile::tempfile().map_err(spill_failed)?),
        };
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = first.read(&mut buf).map_err(read_failed)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if let Some(f) = spill.as_mut() {
                f.write_all(&buf[..n]).map_err(spill_failed)?;
            }
        }
        if hasher.finalize().as_slice() != id.digest() {
            return Err(self.damaged_object(key));
        }
        Ok(match spill {
            Some(mut f) => {
                f.rewind().map_err(spill_failed)?;
                (Box::new(std::io::BufReader::new(f)), None)
            }
            None => {
                let again = ranged::ObjectStream::new(storage, key, size, STREAM_FETCH);
                let probe = again.probe();
                (Box::new(std::io::BufReader::new(again)), Some(probe))
            }
        })
    }

    /// Ids and sizes of every object of kind `I`. Names that are not ids are not objects of
    /// the format and are left out.
    pub fn list<I: ObjectId>(&self) -> Result<Vec<(I, u64)>> {
        let objs = self
            .storage
            .list(&format!("{}/", I::KIND.dir()))
            .map_err(|e| storage_error(&self.location(), e))?;
        Ok(objs
            .into_iter()
            .filter_map(|o| {
                let id = I::from_hash(parse_hex(o.key.rsplit('/').next()?)?);
                (id.key() == o.key).then_some((id, o.size))
            })
            .collect())
    }

    /// Downloads a pack, checks it against its id and decrypts it: the one way packs are
    /// opened. Returns the plaintext and the stored (encrypted) size.
    pub fn open_pack(&self, keys: &Keyring, id: &PackId) -> Result<(Vec<u8>, u64)> {
        let sealed = self.get_object(id)?;
        let plain = codec::decrypt(keys, &sealed).map_err(|e| self.open_error(&id.key(), e))?;
        Ok((plain, sealed.len() as u64))
    }

    /// Plaintext bytes `offset .. offset + len` of pack `id` (`size` bytes stored), fetching
    /// and decrypting only the age chunks that hold them. Authenticated by age; the caller
    /// checks the blobs against their ids (the pack's own hash needs all of it).
    pub fn open_pack_part(
        &self,
        keys: &Keyring,
        id: &PackId,
        size: u64,
        range: (u64, u64),
    ) -> Result<Vec<u8>> {
        let key = id.key();
        ranged::decrypt_range(self.storage.as_ref(), keys, &key, size, range)
            .map_err(|e| self.range_error(&key, e))
    }

    /// Pack `id`'s plaintext (`size` bytes stored), fetched `fetch` encrypted bytes at a time
    /// and decrypted as it is read. Authenticated by age chunk by chunk; the caller checks
    /// the blobs against their ids.
    pub fn pack_plaintext<'a>(
        &'a self,
        keys: &Keyring,
        key: &'a str,
        size: u64,
        fetch: u64,
    ) -> Result<ranged::Plaintext<'a>> {
        ranged::Plaintext::open(self.storage.as_ref(), keys, key, size, fetch)
            .map_err(|e| self.range_error(key, e))
    }

    /// A failed ranged read of pack `key`.
    pub fn range_error(&self, key: &str, e: ranged::RangeError) -> Error {
        match e {
            ranged::RangeError::Storage(e) => self.read_error(key, ids::ObjectKind::Pack, e),
            ranged::RangeError::Open(e) => self.open_error(key, e),
        }
    }

    /// A failed read of object `key` of `kind`.
    fn read_error(&self, key: &str, kind: ids::ObjectKind, e: StorageError) -> Error {
        match e {
            // Packs are read because an index lists them: one that is gone is lost data.
            StorageError::NotFound(_) if kind == ids::ObjectKind::Pack => Error::Integrity(
                format!("object {key} in {} is missing", self.location())
                    .hinted(Hint::CheckStructure),
            ),
            e => storage_error(&self.location(), e),
        }
    }

    /// Pack `id` is damaged: `why` says how.
    pub fn damaged_pack(&self, id: &PackId, why: &str) -> Error {
        Error::Integrity(
            format!("pack {id} in {} is damaged ({why})", self.location()).hinted(Hint::CheckData),
        )
    }

    /// Decrypts an object, naming it in the error.
    pub fn unseal(&self, keys: &Keyring, id: &impl ObjectId, sealed: &[u8]) -> Result<Vec<u8>> {
        codec::unseal(keys, sealed).map_err(|e| self.open_error(&id.key(), e))
    }

    pub fn open_error(&self, key: &str, e: OpenError) -> Error {
        match e {
            OpenError::WrongKey => Error::Key(format!(
                "the identity does not open {key} in {}: it is not one of the repository's recipients",
                self.location()
            ).hinted(Hint::MatchingIdentity)),
            OpenError::Damaged(why) => Error::Integrity(format!(
                "object {key} in {} is damaged ({why})",
                self.location()
            ).hinted(Hint::CheckData)),
        }
    }

    pub fn load_manifest(&self, keys: &Keyring, id: &SnapshotId) -> Result<Manifest> {
        Ok(self.load_snapshot(keys, id)?.0)
    }

    /// A snapshot's manifest and who vouches for it.
    pub fn load_snapshot(
        &self,
        keys: &Keyring,
        id: &SnapshotId,
    ) -> Result<(Manifest, manifest::Authenticity)> {
        let sealed = self.get_object(id)?;
        let plain = self.unseal(keys, id, &sealed)?;
        let (m, auth) = manifest::decode(&plain).map_err(|e| {
            Error::Integrity(format!("snapshot {id} has an unreadable manifest ({e})").into())
        })?;
        if m.version > config::FORMAT_VERSION {
            return Err(Error::Repository(format!(
                "snapshot {id} uses format version {}, newer than this ivault reads; upgrade ivault",
                m.version
            ).into()));
        }
        Ok((m, auth))
    }

    /// Every readable index merged, and each that is not with why: an object that does not
    /// open (foreign, damaged) must not keep what is intact from being read. When no index
    /// opens because the identity is not the repository's, that is the error.
    pub fn load_index(&self, keys: &Keyring) -> Result<(Index, Vec<(IndexId, Error)>)> {
        self.load_index_of(keys, &|_, _, _| true)
    }

    /// [`Repository::load_index`] locating only the blobs `keep` wants (every pack is still
    /// listed): at most three index files decoded at a time, so memory follows what is kept.
    pub fn load_index_of(
        &self,
        keys: &Keyring,
        keep: &index::Keep,
    ) -> Result<(Index, Vec<(IndexId, Error)>)> {
        let mut idx = Index::default();
        let mut unreadable = Vec::new();
        let mut key_error = None;
        let mut opened = 0;
        let ids = std::sync::Mutex::new(self.list::<IndexId>()?.into_iter());
        // Two threads fetch and decode the next indexes while this one adds what they decode,
        // a pack's record at a time.
        enum Arrived {
            Pack(index::PackRecord),
            Done(IndexId, Result<()>),
        }
        let (decoded, arriving) = std::sync::mpsc::sync_channel(64);
        std::thread::scope(|s| {
            for _ in 0..2 {
                let decoded = decoded.clone();
                let ids = &ids;
                s.spawn(move || loop {
                    let next = ids.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some((id, size)) = next else { return };
                    let mut send = |r| {
                        let _ = decoded.send(Arrived::Pack(r));
                    };
                    let read = self.each_index_record(keys, (&id, Some(size)), &mut send);
                    if decoded.send(Arrived::Done(id, read)).is_err() {
                        return;
                    }
                });
            }
            drop(decoded);
            for arrived in arriving {
                match arrived {
                    Arrived::Pack(rec) => idx.add_kept(&rec, keep),
                    Arrived::Done(_, Ok(())) => opened += 1,
                    Arrived::Done(id, Err(e)) => {
                        if matches!(e, Error::Key(_)) && key_error.is_none() {
                            key_error = Some(e.clone());
                        }
                        unreadable.push((id, e));
                    }
                }
            }
        });
        idx.seal();
        match key_error {
            Some(e) if opened == 0 => Err(e),
            _ => Ok((idx, unreadable)),
        }
    }

    pub fn read_index(&self, keys: &Keyring, id: &IndexId) -> Result<Vec<index::PackRecord>> {
        let mut records = Vec::new();
        self.each_index_record(keys, (id, None), &mut |r| records.push(r))?;
        Ok(records)
    }

    /// Decodes index `id` (`size` bytes stored, if known) as a stream, handing each pack's
    /// record to `each`: a window of the decrypted index is held, not all of it (an index of a
    /// large full backup is tens of MiB), and a large one is read from storage as a stream
    /// too. The object is checked against its name before anything is decoded.
    pub fn each_index_record(
        &self,
        keys: &Keyring,
        (id, size): (&IndexId, Option<u64>),
        each: &mut dyn FnMut(index::PackRecord),
    ) -> Result<()> {
        let key = id.key();
        let held;
        let (sealed, probe): (Box<dyn std::io::BufRead + '_>, _) = match size {
            Some(size) if size >= STREAMED_FROM => self.verified_stream(id, &key, size)?,
            _ => {
                held = self.get_object(id)?;
                (Box::new(held.as_slice()), None)
            }
        };
        let plain = codec::unsealing(keys, sealed).map_err(|e| self.open_error(&key, e))?;
        index::decode_stream(plain, each).map_err(|e| match e {
            index::StreamError::Read(e) => match probe.and_then(|p| p.failure()) {
                Some(s) => self.read_error(&key, ids::ObjectKind::Index, s),
                None => self.open_error(&key, OpenError::Damaged(e.to_string())),
            },
            index::StreamError::Malformed => {
                Error::Integrity(format!("index {id} in {} is malformed", self.location()).into())
            }
        })
    }
}

/// Objects this large are read as a stream, never held whole ...
const STREAMED_FROM: u64 = 8 << 20;
/// ... fetched this much at a time.
const STREAM_FETCH: u64 = 4 << 20;

/// Turns a storage failure into a repository error naming the target.
pub fn storage_error(location: &str, e: StorageError) -> Error {
    match e {
        StorageError::NoSpace(key) => Error::Repository(format!(
            "the target {location} is out of space while writing {key}; free space and run again (the repository stays valid)"
        ).into()),
        StorageError::NotFound(key) if key == location => Error::Repository(format!(
            "no ivault repository at {location}"
        ).hinted(Hint::CreateRepository { location: location.to_string() })),
        other => Error::Repository(format!("target {location}: {other}").into()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::codec::Sealer;
    use super::ids::{IndexId, ObjectId};
    use super::index;
    use super::keys::Keyring;
    use super::{Repository, STREAMED_FROM};
    use crate::error::Error;
    use crate::storage::{LocalStorage, MemoryStorage, Storage};
    use age::secrecy::ExposeSecret;
    use std::sync::Arc;

    /// A new identity's keyring and its recipient.
    pub(crate) fn new_keys() -> (Keyring, String) {
        let identity = age::x25519::Identity::generate();
        let keys = Keyring::from_identity_text(identity.to_string().expose_secret()).unwrap();
        (keys, identity.to_public().to_string())
    }

    #[test]
    fn a_large_index_is_read_as_a_stream_from_local_and_remote_storage() {
        let (keys, recipient) = new_keys();
        // About 9 MiB: past the size read as a stream.
        let packs = index::tests::sample_records(70, 256);
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()));
        let remote: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        for storage in [local, remote] {
            let repo = Repository::init(storage.clone(), vec![recipient.clone()]).unwrap();
            let sealer = Sealer::new(std::slice::from_ref(&recipient)).unwrap();
            let (id, size) = index::store(&repo, &sealer, &packs).unwrap();
            assert!(size >= STREAMED_FROM, "{size}");
            let mut got = Vec::new();
            repo.each_index_record(&keys, (&id, Some(size)), &mut |r| got.push(r))
                .unwrap();
            assert_eq!(got.len(), packs.len());
            assert!(got
                .iter()
                .zip(&packs)
                .all(|(a, b)| a.id == b.id && a.size == b.size && a.table == b.table));
            let (merged, unreadable) = repo.load_index(&keys).unwrap();
            assert!(unreadable.is_empty());
            assert_eq!(merged.blob_count(), 70 * 16 * 256);
        }
        // A damaged copy is refused before anything is decoded.
        let repo = Repository::open(Arc::new(LocalStorage::new(dir.path()))).unwrap();
        let (id, size) = repo.list::<IndexId>().unwrap()[0];
        let path = dir.path().join(id.key());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[size as usize / 2] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let mut decoded = 0;
        let e = repo
            .each_index_record(&keys, (&id, Some(size)), &mut |_| decoded += 1)
            .unwrap_err();
        assert!(matches!(e, Error::Integrity(_)), "{e}");
        assert!(e.message().contains("does not match its name"), "{e}");
        assert_eq!(decoded, 0);
    }
}
