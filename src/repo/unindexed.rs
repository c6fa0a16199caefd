//! The packs a writer stored that no index it wrote lists yet, in the groups the index will
//! list them in (one index object each). The group being filled is held in memory; with a
//! scratch directory, each full group is written to an unnamed file there, encoded as the
//! index lists it, so that a large backup's pack records do not grow its memory.

use super::index::{self, PackRecord};
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Blobs one index object lists at most (about 9 MiB encoded); a pack is never split.
pub(super) const BLOBS_PER_INDEX: usize = 1 << 18;

#[derive(Default)]
pub(super) struct Unindexed {
    dir: Option<PathBuf>,
    /// The group being filled.
    held: Vec<PackRecord>,
    held_blobs: usize,
    file: Option<File>,
    /// Where each full group is in `file` (offset, length), in the order stored.
    groups: VecDeque<(u64, usize)>,
    end: u64,
}

impl Unindexed {
    /// Full groups go to unnamed files in `dir`.
    pub fn spill_to(&mut self, dir: &Path) {
        self.dir = Some(dir.to_path_buf());
    }

    pub fn push(&mut self, pack: PackRecord) -> Result<()> {
        let blobs = pack.table.blob_count();
        if !self.held.is_empty() && self.held_blobs + blobs > BLOBS_PER_INDEX {
            self.close_group()?;
        }
        self.held_blobs += blobs;
        self.held.push(pack);
        Ok(())
    }

    /// Writes the held group to the file, with a directory to put it in.
    fn close_group(&mut self) -> Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let encoded = index::encode(&self.held);
        let written = match &self.file {
            Some(f) => f.write_all_at(&encoded, self.end),
            None => tempfile::tempfile_in(dir).and_then(|f| {
                f.write_all_at(&encoded, self.end)?;
                self.file = Some(f);
                Ok(())
            }),
        };
        written.map_err(|e| self.scratch_error(e))?;
        self.groups.push_back((self.end, encoded.len()));
        self.end += encoded.len() as u64;
        self.held.clear();
        self.held_blobs = 0;
        Ok(())
    }

    /// Hands `each` the groups in the order they were stored, at most `BLOBS_PER_INDEX` blobs
    /// each (or a single larger pack); the group `each` fails on and those after it stay.
    /// Returns how many packs were handed over.
    pub fn drain(&mut self, each: &mut dyn FnMut(&[PackRecord]) -> Result<()>) -> Result<usize> {
        let mut done = 0;
        while let Some(&(at, len)) = self.groups.front() {
            let group = self.read_group(at, len)?;
            each(&group)?;
            self.groups.pop_front();
            done += group.len();
        }
        self.file = None;
        self.end = 0;
        while !self.held.is_empty() {
            let n = first_group(&self.held);
            each(&self.held[..n])?;
            let blobs: usize = self.held.drain(..n).map(|p| p.table.blob_count()).sum();
            self.held_blobs -= blobs;
            done += n;
        }
        Ok(done)
    }

    fn read_group(&self, at: u64, len: usize) -> Result<Vec<PackRecord>> {
        let mut encoded = vec![0u8; len];
        let read = match &self.file {
            Some(f) => f.read_exact_at(&mut encoded, at),
            None => Err(io::ErrorKind::NotFound.into()),
        };
        read.map_err(|e| self.scratch_error(e))?;
        index::decode(&encoded).map_err(|_| {
            self.scratch_error(io::Error::new(
                io::ErrorKind::InvalidData,
                "a list read back differs from what was written",
            ))
        })
    }

    fn scratch_error(&self, e: io::Error) -> Error {
        let dir = self.dir.as_deref().unwrap_or(Path::new("."));
        Error::Internal(
            format!(
                "cannot keep the list of stored packs in {} ({e})",
                dir.display()
            )
            .into(),
        )
    }
}

/// How many of `packs`, from the first, one index object lists: at least one.
fn first_group(packs: &[PackRecord]) -> usize {
    let mut blobs = 0;
    let fit = packs
        .iter()
        .take_while(|p| {
            blobs += p.table.blob_count();
            blobs <= BLOBS_PER_INDEX
        })
        .count();
    fit.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::index::tests::sample_records;

    fn groups_of(unindexed: &mut Unindexed) -> Vec<Vec<PackRecord>> {
        let mut groups = Vec::new();
        let n = unindexed
            .drain(&mut |g| {
                groups.push(g.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(n, groups.iter().map(Vec::len).sum::<usize>());
        groups
    }

    #[test]
    fn groups_come_back_whole_and_in_order_from_memory_or_disk() {
        // 150 packs of 4096 blobs: 64 to an index object.
        let packs = sample_records(150, 256);
        for spill in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut unindexed = Unindexed::default();
            if spill {
                unindexed.spill_to(dir.path());
            }
            for p in &packs {
                unindexed.push(p.clone()).unwrap();
            }
            // Two full groups went to disk; the third is held.
            assert_eq!(unindexed.groups.len(), if spill { 2 } else { 0 });
            assert_eq!(unindexed.held.len(), if spill { 22 } else { 150 });
            let groups = groups_of(&mut unindexed);
            let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
            assert_eq!(sizes, [64, 64, 22]);
            assert_eq!(groups.concat(), packs);
            assert!(groups_of(&mut unindexed).is_empty());
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn a_group_that_fails_stays_with_those_after_it() {
        let packs = sample_records(150, 256);
        let dir = tempfile::tempdir().unwrap();
        let mut unindexed = Unindexed::default();
        unindexed.spill_to(dir.path());
        for p in &packs {
            unindexed.push(p.clone()).unwrap();
        }
        let mut calls = 0;
        let failed = unindexed.drain(&mut |_| {
            calls += 1;
            match calls {
                2 => Err(Error::Cancelled),
                _ => Ok(()),
            }
        });
        assert!(failed.is_err());
        let sizes: Vec<usize> = groups_of(&mut unindexed).iter().map(Vec::len).collect();
        assert_eq!(sizes, [64, 22]);
    }
}
