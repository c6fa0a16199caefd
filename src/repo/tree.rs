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
    let pages = Mutex::new(Vec::new());
    let warnings = each_segment(repo, keys, index, (id, m), damaged, &|first, ids| {
        let mut pages = pages.lock().unwrap_or_else(|p| p.into_inner());
        // Sized once the segments are known to add up to the manifest's page count.
        if pages.is_empty() {
            pages.resize(m.page_count as usize, [0u8; 32]);
        }
        for (slot, h) in pages[first as usize..].iter_mut().zip(page_ids(ids)) {
            *slot = h;
        }
        Ok(())
    })?;
    Ok((
        pages.into_inner().unwrap_or_else(|p| p.into_inner()),
        warnings,
    ))
}

/// Reads the snapshot's tree segments and hands `each` the page ids of each with the number of
/// its first page, once for every place the segment is used, in no particular order: no more
/// than a few segments are held at once. Returns what the read had to work around; packs found
/// damaged are added to `damaged`.
pub fn each_segment(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    (id, m): (&SnapshotId, &Manifest),
    damaged: &mut Vec<reader::DamagedPack>,
    each: &(dyn Fn(u64, &[u8]) -> Result<()> + Sync),
) -> Result<Vec<String>> {
    let seg_ids = segment_ids(id, m)?;
    // Where each segment starts, from the lengths the index gives: the page count is checked
    // before anything is read. A segment no index lists fails the read below.
    let mut starts = Vec::with_capacity(seg_ids.len());
    let (mut pages, mut located) = (0u64, true);
    for s in &seg_ids {
        starts.push(pages);
        match index.locate(s) {
            Some(l) => pages += l.len as u64 / 32,
            None => located = false,
        }
    }
    if located && pages != m.page_count {
        return Err(Error::Integrity(
            format!(
                "snapshot {id} lists {pages} pages but its manifest says {}; the snapshot is damaged",
                m.page_count
            )
            .into(),
        ));
    }
    let mut by_id: Vec<u32> = (0..seg_ids.len() as u32).collect();
    by_id.sort_unstable_by(|a, b| seg_ids[*a as usize].cmp(&seg_ids[*b as usize]));
    let unique: DigestSet = seg_ids.iter().copied().collect();
    let read = reader::read_blobs(repo, keys, index, unique, 2, damaged, |blobs| {
        for (h, bytes) in blobs {
            let from = by_id.partition_point(|&k| seg_ids[k as usize] < *h);
            for &k in by_id[from..]
                .iter()
                .take_while(|&&k| seg_ids[k as usize] == *h)
            {
                each(starts[k as usize], bytes)?;
            }
        }
        Ok(())
    })?;
    Ok(read.warnings)
}
