//! The tree segments a check reads, to attribute problems to the snapshots they affect. They
//! are 32 bytes a page of every snapshot's distinct segments, so past the list budget they go
//! to an unnamed scratch file and are read back one at a time.

use crate::hash::Hash;
use crate::sorted_runs::list_memory;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub(super) struct Segments {
    dir: PathBuf,
    budget: usize,
    /// Where each segment's bytes are: in `held`, or in `file` once anything went there.
    at: HashMap<Hash, (u64, usize)>,
    held: Vec<u8>,
    file: Option<File>,
    end: u64,
}

impl Segments {
    /// Past the list budget, segments go to an unnamed file in `dir`.
    pub fn new(dir: &Path) -> Self {
        Segments {
            dir: dir.to_path_buf(),
            budget: list_memory(),
            at: HashMap::new(),
            held: Vec::new(),
            file: None,
            end: 0,
        }
    }

    pub fn insert(&mut self, id: Hash, bytes: &[u8]) -> io::Result<()> {
        if self.at.contains_key(&id) {
            return Ok(());
        }
        if self.file.is_none() && self.held.len() + bytes.len() > self.budget {
            let file = tempfile::tempfile_in(&self.dir)?;
            file.write_all_at(&self.held, 0)?;
            self.held = Vec::new();
            self.file = Some(file);
        }
        match &self.file {
            Some(f) => f.write_all_at(bytes, self.end)?,
            None => self.held.extend_from_slice(bytes),
        }
        self.at.insert(id, (self.end, bytes.len()));
        self.end += bytes.len() as u64;
        Ok(())
    }

    /// The segment's bytes, if it was read.
    pub fn get(&self, id: &Hash) -> io::Result<Option<Cow<'_, [u8]>>> {
        let Some(&(at, len)) = self.at.get(id) else {
            return Ok(None);
        };
        Ok(Some(match &self.file {
            Some(f) => {
                let mut bytes = vec![0u8; len];
                f.read_exact_at(&mut bytes, at)?;
                Cow::Owned(bytes)
            }
            None => Cow::Borrowed(&self.held[at as usize..at as usize + len]),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    #[test]
    fn segments_come_back_the_same_from_memory_or_disk() {
        let dir = tempfile::tempdir().unwrap();
        let segment = |i: u32| -> Vec<u8> { (0..300 + i).map(|b| (b ^ i) as u8).collect() };
        for budget in [1 << 20, 1000] {
            let mut segments = Segments::new(dir.path());
            segments.budget = budget;
            for i in 0..20 {
                segments.insert(sha256(&segment(i)), &segment(i)).unwrap();
            }
            assert_eq!(segments.file.is_some(), budget < 20 * 300);
            for i in 0..20 {
                let got = segments.get(&sha256(&segment(i))).unwrap().unwrap();
                assert_eq!(got.as_ref(), segment(i).as_slice());
            }
            assert!(segments.get(&sha256(b"other")).unwrap().is_none());
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }
}
