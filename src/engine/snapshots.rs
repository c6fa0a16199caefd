//! Listing snapshots.

use crate::engine::context::Context;
use crate::error::Result;
use crate::facts::{BusinessFacts, SourceCheck};
use crate::repo::catalog::{Trust, Verdict};
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
    /// `signed` (by a trusted signer), `untrusted signer`, `unsigned` or `bad signature`.
    pub authenticity: &'static str,
    pub signer: Option<String>,
    /// SQLite's check of the source at backup time; `None` when it was not run.
    pub source_check: Option<SourceCheck>,
    /// Invoice facts per month, when the source had a business description.
    pub business: Option<BusinessFacts>,
}

impl SnapshotSummary {
    /// `ok`, `FAILED` or `-` (not checked): SQLite's check of the source at backup time.
    pub fn source_check_label(&self) -> &'static str {
        match &self.source_check {
            Some(c) if c.ok => "ok",
            Some(_) => "FAILED",
            None => "-",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotList {
    pub repository: String,
    pub snapshots: Vec<SnapshotSummary>,
    /// Snapshots whose manifest does not open (foreign, damaged, another key), with why.
    pub unreadable: Vec<Unreadable>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    pub id: SnapshotId,
    pub why: String,
}

/// Opens the repository and key and lists its snapshots (of one source, by name or path).
pub fn run(
    ctx: &Context,
    repo: &str,
    identity: Option<&std::path::Path>,
    source: Option<&str>,
) -> Result<SnapshotList> {
    let (repo, keys) = ctx.open_repo_with_key(repo, identity)?;
    let trust = ctx.trust(&repo, false)?;
    list(&repo, &keys, source, &trust)
}

/// Every readable snapshot (optionally of one source, by name or path), oldest first, with
/// whether a trusted signer signed it, and the snapshots that cannot be read.
pub fn list(
    repo: &Repository,
    keys: &Keyring,
    source: Option<&str>,
    trust: &Trust,
) -> Result<SnapshotList> {
    let catalog = repo.catalog(keys, source, trust)?;
    let snapshots = catalog
        .entries
        .into_iter()
        .map(|e| {
            let m = e.manifest;
            SnapshotSummary {
                id: e.id,
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
                authenticity: e.verdict.label(),
                signer: match e.verdict {
                    Verdict::Trusted(s)
                    | Verdict::UntrustedSigner(s)
                    | Verdict::BadSignature(s) => Some(s.to_string()),
                    Verdict::Unsigned => None,
                },
                source_check: m.source_check,
                business: m.business,
            }
        })
        .collect();
    Ok(SnapshotList {
        repository: repo.location(),
        snapshots,
        unreadable: catalog
            .unreadable
            .into_iter()
            .map(|(id, why)| Unreadable {
                id,
                why: why.message().to_string(),
            })
            .collect(),
    })
}
