//! Proving a rebuilt file is the snapshot: its SHA-256 against the manifest, and SQLite's own
//! check at the level asked for.

use crate::error::{Error, Hint, Hinted, Result};
use crate::repo::ids::SnapshotId;
use crate::repo::manifest::Manifest;
use rusqlite::Connection;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What a restore asks SQLite to check beyond the SHA-256, which always runs and proves every
/// byte equals what the source's read transaction saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreCheck {
    /// Nothing more: for an emergency restore of a large database.
    Off,
    /// `PRAGMA quick_check` (about 1.7 s per GiB): every b-tree page and the page accounting.
    /// The default, because the SHA-256 already proves the file is the snapshot and the drill
    /// runs the full check once per snapshot.
    #[default]
    Quick,
    /// `PRAGMA integrity_check` as well (indexes against their tables, UNIQUE constraints),
    /// one table per core.
    Full,
}

/// The rebuilt file at `path` must pass SQLite's own check at `level`.
pub fn verify_integrity(
    path: &Path,
    id: &SnapshotId,
    m: &Manifest,
    level: RestoreCheck,
) -> Result<()> {
    let problems = match level {
        RestoreCheck::Off => return Ok(()),
        RestoreCheck::Quick => whole_quick_check(path),
        RestoreCheck::Full => full_check(path, m),
    }
    .map_err(|e| {
        Error::Integrity(
            format!("SQLite could not check the database rebuilt from snapshot {id}: {e}").into(),
        )
    })?;
    if let Some(first) = problems.first() {
        let pragma = match level {
            RestoreCheck::Full => "integrity_check",
            _ => "quick_check",
        };
        return Err(Error::Integrity(format!(
            "the database rebuilt from snapshot {id} fails PRAGMA {pragma} ({first}); the source was damaged when it was backed up, try an older snapshot"
        ).into()));
    }
    Ok(())
}

fn whole_quick_check(path: &Path) -> rusqlite::Result<Vec<String>> {
    let conn = crate::paths::open_immutable(path)?;
    crate::source::facts::check_problems(&conn, "PRAGMA quick_check")
}

/// `integrity_check` of every table on connections of their own, as many at once as there are
/// cores, the largest first, with a whole-file `quick_check` for what per-table checks skip
/// (page accounting, the freelist): the same findings as one `PRAGMA integrity_check`, which
/// SQLite runs on one thread.
fn full_check(path: &Path, m: &Manifest) -> rusqlite::Result<Vec<String>> {
    let conn = crate::paths::open_immutable(path)?;
    let mut tasks: Vec<Option<String>> = tables_by_size(&conn, m)?.into_iter().map(Some).collect();
    drop(conn);
    tasks.push(None);
    let found = crate::engine::parallel::each(&tasks, |table| {
        let conn = crate::paths::open_immutable(path)?;
        let sql = match table {
            Some(t) => format!("PRAGMA integrity_check({})", crate::source::facts::quote(t)),
            None => "PRAGMA quick_check".to_string(),
        };
        crate::source::facts::check_problems(&conn, &sql)
    });
    let mut problems = Vec::new();
    for f in found {
        problems.extend(f?);
    }
    Ok(problems)
}

/// The database's tables, the costliest to check first: about rows times b-trees (the table
/// and each of its indexes), with the rows the manifest recorded.
pub(crate) fn tables_by_size(conn: &Connection, m: &Manifest) -> rusqlite::Result<Vec<String>> {
    let mut names: Vec<(String, u64)> = conn
        .prepare(
            "SELECT s.name, (SELECT count(*) FROM sqlite_schema i WHERE i.tbl_name = s.name)
             FROM sqlite_schema s WHERE s.type = 'table' AND s.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             AND s.sql NOT LIKE 'CREATE VIRTUAL%'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, trees) in names.iter_mut() {
        *trees *= m.tables.get(name.as_str()).copied().unwrap_or(0) + 1;
    }
    names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(names.into_iter().map(|(n, _)| n).collect())
}

/// Checks that a rebuilt file's SHA-256 (hex) is the one its manifest records.
pub(crate) fn verify_sha256(sha256: &str, m: &Manifest, id: &SnapshotId) -> Result<()> {
    if sha256 != m.database_sha256 {
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
