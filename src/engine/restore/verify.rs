//! Proving a rebuilt file is the snapshot: its SHA-256 against the manifest, and SQLite's own
//! integrity check.

use crate::error::{Error, Hint, Hinted, Result};
use crate::repo::ids::SnapshotId;
use crate::repo::manifest::Manifest;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The rebuilt file at `path` must pass SQLite's own integrity check.
pub fn verify_integrity(path: &Path, id: &SnapshotId) -> Result<()> {
    let result = integrity_check(path).map_err(|e| {
        Error::Integrity(
            format!("SQLite could not check the database rebuilt from snapshot {id}: {e}").into(),
        )
    })?;
    if result != "ok" {
        return Err(Error::Integrity(format!(
            "the database rebuilt from snapshot {id} fails PRAGMA integrity_check ({}); the source was damaged when it was backed up, try an older snapshot",
            result.lines().next().unwrap_or_default()
        ).into()));
    }
    Ok(())
}

/// Checks that a rebuilt file hashes to the SHA-256 its manifest records.
pub(crate) fn verify_sha256(
    f: &File,
    m: &Manifest,
    id: &SnapshotId,
    read_error: &dyn Fn(std::io::Error) -> Error,
) -> Result<()> {
    if file_sha256(f, read_error)? != m.database_sha256 {
        return Err(Error::Integrity(format!(
            "the database rebuilt from snapshot {id} does not match the SHA-256 its manifest records"
        ).hinted(Hint::CheckData)));
    }
    Ok(())
}

/// The SHA-256 of a whole file, hex.
pub(crate) fn file_sha256(
    f: &File,
    read_error: &dyn Fn(std::io::Error) -> Error,
) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = f.read_at(&mut buf, offset).map_err(read_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Runs `PRAGMA integrity_check` without creating journal files beside the database.
pub fn integrity_check(path: &Path) -> rusqlite::Result<String> {
    let conn = crate::paths::open_immutable(path)?;
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows.join("\n"))
}
