//! Where repository objects live. One small trait; every backend passes the same contract
//! suite (`tests/storage_contract.rs`). Objects are immutable: `put` never overwrites.

mod faulty;
mod local;
mod memory;
mod s3;

pub use faulty::{Fault, FaultKind, FaultyStorage, Op};
pub use local::LocalStorage;
pub use memory::MemoryStorage;
pub use s3::{LockMode, ObjectLock, S3Config, S3Storage, MULTIPART_THRESHOLD, PART_BYTES_ENV};

use std::fmt;

/// An object's key and size, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// A flat namespace of immutable objects addressed by `/`-separated keys.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Where this storage is, for messages (a path or URL, never credentials).
    fn location(&self) -> String;
    /// Stores `data` under `key` durably; fails with `AlreadyExists` if the key is taken.
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError>;
    /// Reads a whole object.
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError>;
    /// Reads up to `len` bytes of an object from byte `offset` on: fewer only where the object
    /// ends first (none from its end on). Backends that can read a part natively override this.
    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        Ok(slice_of(self.get(key)?, offset, len))
    }
    /// [`Storage::get_range`] into `out`, replacing what it held: a reader that fetches an
    /// object piece by piece keeps one buffer. Backends that can read into it override this.
    fn get_range_into(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        *out = self.get_range(key, offset, len)?;
        Ok(())
    }
    /// Every object whose key starts with `prefix`, in no particular order.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError>;
    /// Removes an object; removing a missing object is not an error.
    fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Removes what interrupted writes left behind (temporary files, unfinished multipart
    /// uploads) that began more than `older_than` ago, and says how many. Younger ones may
    /// belong to a backup still running elsewhere.
    fn sweep_incomplete(&self, _older_than: std::time::Duration) -> Result<usize, StorageError> {
        Ok(0)
    }
    /// Names an existing object that may be written again, byte for byte, so a backend can
    /// learn how the server treats conditional writes before relying on them. The storage
    /// knows nothing of what lives in it; whoever owns the layout (the repository) chooses.
    fn set_probe_object(&self, _key: &str) {}
    /// The directory the objects live in, for storage on local disk; `None` elsewhere. A
    /// restore uses it to refuse a destination inside the repository it reads.
    fn local_dir(&self) -> Option<std::path::PathBuf> {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    NotFound(String),
    AlreadyExists(String),
    /// The target ran out of space: permanent until someone frees space.
    NoSpace(String),
    PermissionDenied(String),
    InvalidKey(String),
    /// Anything else; `transient` says whether retrying may help.
    Other {
        key: String,
        message: String,
        transient: bool,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::NotFound(k) => write!(f, "object {k} is missing"),
            StorageError::AlreadyExists(k) => write!(f, "object {k} already exists"),
            StorageError::NoSpace(k) => write!(f, "no space left while writing {k}"),
            StorageError::PermissionDenied(k) => write!(f, "permission denied on {k}"),
            StorageError::InvalidKey(k) => write!(f, "invalid object key {k:?}"),
            StorageError::Other { key, message, .. } => write!(f, "{key}: {message}"),
        }
    }
}

impl std::error::Error for StorageError {}

/// Keys are relative, `/`-separated, made of `[a-z0-9._-]`, with no empty or dot-only parts.
/// Bytes `offset .. offset + len` of a whole object, cut short where it ends.
pub(crate) fn slice_of(mut data: Vec<u8>, offset: u64, len: u64) -> Vec<u8> {
    let end = offset.saturating_add(len).min(data.len() as u64) as usize;
    data.truncate(end);
    data.drain(..(offset as usize).min(end));
    data
}

pub fn validate_key(key: &str) -> Result<(), StorageError> {
    let ok = !key.is_empty()
        && key.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidKey(key.to_string()))
    }
}

/// Maps an I/O error on `key` to a storage error.
pub(crate) fn io_error(key: &str, e: std::io::Error) -> StorageError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => StorageError::NotFound(key.to_string()),
        ErrorKind::AlreadyExists => StorageError::AlreadyExists(key.to_string()),
        ErrorKind::PermissionDenied => StorageError::PermissionDenied(key.to_string()),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => StorageError::NoSpace(key.to_string()),
        ErrorKind::Interrupted | ErrorKind::TimedOut => StorageError::Other {
            key: key.to_string(),
            message: e.to_string(),
            transient: true,
        },
        _ => StorageError::Other {
            key: key.to_string(),
            message: e.to_string(),
            transient: false,
        },
    }
}
