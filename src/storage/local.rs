//! A directory on local disk. Each object is written to a temporary name in its final
//! directory, fsynced, then linked into place (which fails rather than overwrite) and the
//! directory fsynced, so a crash leaves either the whole object or none of it.

use super::{io_error, validate_key, ObjectInfo, Storage, StorageError};
use crate::failpoint;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Temporary files start with this; listings skip them and `sweep_incomplete` removes them.
pub const TEMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStorage { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

fn temp_name() -> String {
    format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for LocalStorage {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let err = |e| io_error(key, e);
        if !self.root.is_dir() {
            return Err(StorageError::NotFound(self.location()));
        }
        fs::create_dir_all(&dir).map_err(err)?;
        let tmp = dir.join(temp_name());
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            let (head, tail) = data.split_at(data.len() / 2);
            f.write_all(head)?;
            failpoint::hit("temp-half-written");
            f.write_all(tail)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(err(e));
        }
        // A hard link refuses to replace an existing name, unlike rename.
        let linked = match fs::hard_link(&tmp, &path) {
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                if path.exists() {
                    Err(std::io::Error::from(ErrorKind::AlreadyExists))
                } else {
                    fs::rename(&tmp, &path)
                }
            }
            other => other,
        };
        let _ = fs::remove_file(&tmp);
        linked.map_err(err)?;
        sync_dir(&dir).map_err(err)
    }

    fn local_dir(&self) -> Option<PathBuf> {
        Some(self.root.clone())
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        fs::read(self.path(key)?).map_err(|e| io_error(key, e))
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let mut data = Vec::new();
        self.get_range_into(key, offset, len, &mut data)?;
        Ok(data)
    }

    fn get_range_into(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        use std::io::{Read, Seek, SeekFrom};
        out.clear();
        let mut file = fs::File::open(self.path(key)?).map_err(|e| io_error(key, e))?;
        let size = file.metadata().map_err(|e| io_error(key, e))?.len();
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| io_error(key, e))?;
        // Room made once, then read into: grown by doubling, a 1 MiB read costs several copies
        // and fresh pages.
        out.reserve(len.min(size.saturating_sub(offset)) as usize);
        let read = file.take(len).read_to_end(out);
        read.map(|_| ()).map_err(|e| {
            out.clear();
            io_error(key, e)
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut out = Vec::new();
        // Only walk the directory the prefix names (prefixes here end at a `/` or a key part).
        let start = match prefix.rfind('/') {
            Some(i) => self.root.join(&prefix[..i]),
            None => self.root.clone(),
        };
        if !start.exists() {
            return Ok(out);
        }
        list_dir(&self.root, &start, prefix, &mut out).map_err(|e| StorageError::Other {
            key: prefix.to_string(),
            message: e.to_string(),
            transient: false,
        })?;
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        match fs::remove_file(self.path(key)?) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other.map_err(|e| io_error(key, e)),
        }
    }

    /// Temporary files of writes killed before their link.
    fn sweep_incomplete(&self, older_than: Duration) -> Result<usize, StorageError> {
        let mut removed = 0;
        let cutoff = SystemTime::now() - older_than;
        for entry in walkdir::WalkDir::new(&self.root)
            .min_depth(1)
            .into_iter()
            .flatten()
        {
            // Only temporary files are looked at closely: a stat of every object would make
            // each backup's sweep cost grow with the repository.
            let is_temp = entry.file_type().is_file()
                && entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
            if !is_temp {
                continue;
            }
            let old = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| t <= cutoff);
            if old && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
                failpoint::hit("leftover-removed");
            }
        }
        Ok(removed)
    }
}

/// Adds the files under `dir` whose key starts with `prefix`, leaving out dot files and dot
/// directories. Sizes come from `DirEntry::metadata`, a stat relative to the open directory
/// rather than a walk of the whole path for every object.
fn list_dir(
    root: &Path,
    dir: &Path,
    prefix: &str,
    out: &mut Vec<ObjectInfo>,
) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            list_dir(root, &path, prefix, out)?;
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let key = rel.to_string_lossy().replace('\\', "/");
        if key.starts_with(prefix) {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(ObjectInfo { key, size });
        }
    }
    Ok(())
}
