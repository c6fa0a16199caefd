//! Snapshot manifests: the commit record of a backup, written last. JSON, compressed and
//! encrypted; the snapshot id is the SHA-256 of the stored (encrypted) bytes.

use super::signing::{Signer, SigningKey};
use crate::facts::{BusinessFacts, SourceCheck};
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
    /// SQLite's check of the source's pages at backup time (format version 3; `None` when
    /// not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_check: Option<SourceCheck>,
    /// Invoice facts per month, when the source has a business description (version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business: Option<BusinessFacts>,
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

/// Who vouches for a manifest, as read (whether that signer is trusted is the reader's call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticity {
    /// A valid signature by this signer.
    Signed(Signer),
    /// Written before snapshots were signed (format version 1), or by a writer without a key.
    Unsigned,
    /// The signature does not match the manifest: altered, or forged.
    BadSignature(Signer),
}

/// A signed manifest as stored (inside the encryption): the manifest's exact bytes, who signed
/// them and the signature, so the bytes verified are the bytes parsed.
#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    manifest: &'a serde_json::value::RawValue,
    signer: String,
    signature: String,
}

/// The plaintext of a manifest object: signed when there is a key.
pub fn encode(m: &Manifest, key: Option<&SigningKey>) -> serde_json::Result<Vec<u8>> {
    let bytes = serde_json::to_vec(m)?;
    let Some(key) = key else {
        return Ok(bytes);
    };
    let raw = serde_json::value::RawValue::from_string(String::from_utf8_lossy(&bytes).into())?;
    serde_json::to_vec(&Envelope {
        manifest: &raw,
        signer: key.signer().to_string(),
        signature: key.sign(&bytes),
    })
}

/// Parses a manifest object's plaintext, signed or not, and says who vouches for it.
pub fn decode(plain: &[u8]) -> serde_json::Result<(Manifest, Authenticity)> {
    if let Ok(env) = serde_json::from_slice::<Envelope>(plain) {
        let bytes = env.manifest.get().as_bytes();
        let m: Manifest = serde_json::from_slice(bytes)?;
        let auth = match Signer::parse(&env.signer) {
            Ok(s) if s.verifies(bytes, &env.signature) => Authenticity::Signed(s),
            Ok(s) => Authenticity::BadSignature(s),
            Err(_) => Authenticity::Unsigned,
        };
        return Ok((m, auth));
    }
    Ok((serde_json::from_slice(plain)?, Authenticity::Unsigned))
}
