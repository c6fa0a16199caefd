//! Snapshot manifests: the commit record of a backup, written last. JSON, compressed and
//! encrypted; the snapshot id is the SHA-256 of the stored (encrypted) bytes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotKind {
    Full,
    Incremental,
}

impl std::fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SnapshotKind::Full => "full",
            SnapshotKind::Incremental => "incremental",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub name: String,
    pub path: String,
    pub host: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub source: SourceInfo,
    /// When the consistent read began, RFC 3339 UTC.
    pub time: String,
    pub kind: SnapshotKind,
    pub parent: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub page_size: u32,
    pub page_count: u64,
    /// `wal` or `delete`/`truncate`/`persist`/… as the source reported it.
    pub journal_mode: String,
    /// SHA-256 of the restored database file (all pages in order), hex.
    pub database_sha256: String,
    /// Row count of every table.
    pub tables: BTreeMap<String, u64>,
    /// How many page ids each tree segment holds (the last one may hold fewer).
    pub segment_pages: u32,
    /// Tree blob ids, hex, in page order.
    pub segments: Vec<String>,
    pub stats: BackupStats,
    /// Set on snapshots written by `ivault copy`: where the snapshot was copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<CopyOrigin>,
}

/// The repository and snapshot a copied snapshot came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyOrigin {
    /// The source repository's id (its `config`).
    pub repository: String,
    pub snapshot: String,
}

/// What the backup that wrote this snapshot did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackupStats {
    pub pages_new: u64,
    pub bytes_new: u64,
    pub bytes_stored: u64,
    pub duration_ms: u64,
    /// How long the source's read transaction was held.
    pub read_lock_ms: u64,
}

impl Manifest {
    /// Whether this snapshot is of `source` (a source name or the database's path); `None`
    /// matches every snapshot.
    pub fn is_of(&self, source: Option<&str>) -> bool {
        source.is_none_or(|s| s == self.source.name || s == self.source.path)
    }
}
