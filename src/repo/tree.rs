//! Tree segments: a snapshot's page list (the blob id of every page, in order), cut into
//! blobs of `SEGMENT_PAGES` ids so that unchanged stretches of a database share segments
//! between snapshots. The manifest lists the segment ids.

use super::ids::SnapshotId;
use super::index::Index;
use super::keys::Keyring;
use super::manifest::Manifest;
use super::{reader, Repository};
use crate::error::{Error, Result};
use crate::hash::{self, parse_hex, DigestSet, Hash};
use std::collections::HashMap;
use std::sync::Mutex;

/// Page ids per tree segment: 4 KiB of ids.
pub const SEGMENT_PAGES: usize = 128;

/// The segment ids a manifest lists, in page order.
pub fn segment_ids(id: &SnapshotId, m: &Manifest) -> Result<Vec<Hash>> {
    m.segments
        .iter()
        .map(|s| {
            parse_hex(s).ok_or_else(|| {
                Error::Integrity(format!("snapshot {id} has a malformed segment id").into())
            })
        })
        .collect()
}

/// The page ids a segment holds, in order.
pub fn page_ids(segment: &[u8]) -> impl Iterator<Item = Hash> + '_ {
    hash::split(segment)
}

/// Reads the snapshot's tree segments and returns the blob id of every page, in order, and
/// what the read had to work around; packs found damaged are added to `damaged`.
pub fn page_list(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    id: &SnapshotId,
    m: &Manifest,
    damaged: &mut Vec<reader::DamagedPack>,
) -> Result<(Vec<Hash>, Vec<String>)> {
    let seg_ids = segment_ids(id, m)?;
    let unique: DigestSet = seg_ids.iter().copied().collect();
    let segments = Mutex::new(HashMap::<Hash, Vec<u8>>::new());
    let read = reader::read_blobs(repo, keys, index, unique, 2, damaged, |blobs| {
        let mut map = segments.lock().unwrap_or_else(|p| p.into_inner());
        for (h, bytes) in blobs {
            map.insert(*h, bytes.to_vec());
        }
        Ok(())
    })?;
    let segments = segments.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut pages = Vec::with_capacity(m.page_count as usize);
    for s in &seg_ids {
        let bytes = segments
            .get(s)
            .ok_or_else(|| Error::Internal("segment went missing".into()))?;
        pages.extend(page_ids(bytes));
    }
    if pages.len() as u64 != m.page_count {
        return Err(Error::Integrity(
            format!(
                "snapshot {id} lists {} pages but its manifest says {}; the snapshot is damaged",
                pages.len(),
                m.page_count
            )
            .into(),
        ));
    }
    Ok((pages, read.warnings))
}
