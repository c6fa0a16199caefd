//! The blob ids a backup deduplicates against: those the repository held when the backup
//! began and those stored since. They are kept as [`DigestRuns`]: 4 bytes an id in memory,
//! and past the list budget the ids themselves in unnamed files in the scratch directory, so
//! a backup's memory does not grow with the repository.

use crate::digest_runs::{DigestRuns, Gather};
use crate::error::{Error, Hint, Hinted, Result};
use crate::hash::Hash;
use crate::sorted_runs::list_memory;
use std::path::{Path, PathBuf};

pub(crate) struct Known {
    ids: DigestRuns,
    dir: PathBuf,
}

impl Known {
    /// Nothing known; lists past the budget go to `dir`.
    pub fn empty(dir: &Path) -> Self {
        Known {
            ids: DigestRuns::new(dir, list_memory()),
            dir: dir.to_path_buf(),
        }
    }

    /// Gathers what the repository holds: `each` hands every id (any order, repeats
    /// allowed) to the function it is given.
    pub fn gather(
        dir: &Path,
        each: impl FnOnce(&mut dyn FnMut(Hash) -> Result<()>) -> Result<()>,
    ) -> Result<Self> {
        let mut gather: Gather = DigestRuns::gather(dir, list_memory());
        each(&mut |id| gather.push(id).map_err(|e| scratch_error(dir, e)))?;
        Ok(Known {
            ids: gather.done().map_err(|e| scratch_error(dir, e))?,
            dir: dir.to_path_buf(),
        })
    }

    /// An empty set in the same directory (a full backup deduplicates only against itself).
    pub fn new_empty(&self) -> Self {
        Known::empty(&self.dir)
    }

    /// Notes `id` as stored; false if it was known already.
    pub fn insert(&mut self, id: Hash) -> Result<bool> {
        self.ids.insert(id).map_err(|e| scratch_error(&self.dir, e))
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Notes what a backup that deduplicated only against itself (`own`) stored.
    pub fn absorb(&mut self, own: Known) -> Result<()> {
        self.ids
            .absorb(own.ids)
            .map_err(|e| scratch_error(&self.dir, e))
    }
}

fn scratch_error(dir: &Path, e: std::io::Error) -> Error {
    Error::Internal(
        format!(
            "cannot keep the backup's list of stored pages in {} ({e})",
            dir.display()
        )
        .hinted(Hint::StateDirectory),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    #[test]
    fn an_id_is_new_once_whether_held_from_the_start_or_added() {
        let dir = tempfile::tempdir().unwrap();
        let id = |i: u32| sha256(&i.to_le_bytes());
        let mut known = Known::gather(dir.path(), |each| {
            [1, 2, 1].into_iter().try_for_each(|i| each(id(i)))
        })
        .unwrap();
        assert!(!known.is_empty());
        assert!(!known.insert(id(1)).unwrap());
        assert!(known.insert(id(3)).unwrap());
        assert!(!known.insert(id(3)).unwrap());
        let mut own = known.new_empty();
        assert!(own.insert(id(2)).unwrap() && own.insert(id(4)).unwrap());
        known.absorb(own).unwrap();
        assert!(!known.insert(id(4)).unwrap());
        assert!(known.insert(id(5)).unwrap());

        let mut empty = Known::empty(dir.path());
        assert!(empty.is_empty());
        let mut own = empty.new_empty();
        assert!(own.insert(id(7)).unwrap());
        empty.absorb(own).unwrap();
        assert!(!empty.insert(id(7)).unwrap());
        assert!(empty.insert(id(8)).unwrap());
    }
}
