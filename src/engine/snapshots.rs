//! Listing snapshots.

use crate::engine::context::Context;
use crate::error::Result;
use crate::repo::ids::SnapshotId;
use crate::repo::keys::Keyring;
use crate::repo::manifest::SnapshotKind;
use crate::repo::Repository;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotSummary {
    pub id: SnapshotId,
    pub time: String,
    pub source: String,
    pub path: String,
    pub host: String,
    pub kind: SnapshotKind,
    pub parent: Option<String>,
    pub tags: Vec<String>,
    pub page_size: u32,
    pub page_count: u64,
    pub database_bytes: u64,
    pub database_sha256: String,
    pub tables: BTreeMap<String, u64>,
    pub bytes_stored: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotList {
    pub repository: String,
    pub snapshots: Vec<SnapshotSummary>,
}

/// Opens the repository and key and lists its snapshots (of one source, by name or path).
pub fn run(
    ctx: &Context,
    repo: &str,
    identity: Option<&std::path::Path>,
    source: Option<&str>,
) -> Result<SnapshotList> {
    let (repo, keys) = ctx.open_repo_with_key(repo, identity)?;
    Ok(SnapshotList {
        repository: repo.location(),
        snapshots: list(&repo, &keys, source)?,
    })
}

/// Every snapshot (optionally of one source, by name or path), oldest first.
pub fn list(
    repo: &Repository,
    keys: &Keyring,
    source: Option<&str>,
) -> Result<Vec<SnapshotSummary>> {
    let mut out = Vec::new();
    for (id, _) in repo.list::<SnapshotId>()? {
        let m = repo.load_manifest(keys, &id)?;
        if !m.is_of(source) {
            continue;
        }
        out.push(SnapshotSummary {
            id,
            time: m.time,
            source: m.source.name,
            path: m.source.path,
            host: m.source.host,
            kind: m.kind,
            parent: m.parent,
            tags: m.tags,
            page_size: m.page_size,
            page_count: m.page_count,
            database_bytes: m.page_count * m.page_size as u64,
            database_sha256: m.database_sha256,
            tables: m.tables,
            bytes_stored: m.stats.bytes_stored,
        });
    }
    out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
    Ok(out)
}
