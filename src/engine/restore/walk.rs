//! A scratch copy of a source's database brought forward from snapshot to snapshot, for
//! jobs that look something up in every snapshot (`trace`, `reconcile`): the first snapshot
//! is rebuilt whole, each later one by reading and writing only the pages that differ (every
//! page checked against its id; the page lists come from signed manifests).

use super::rebuild;
use crate::engine::drill::scratch::Scratch;
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::repo::ids::SnapshotId;
use crate::repo::index::Index;
use crate::repo::keys::Keyring;
use crate::repo::manifest::Manifest;
use crate::repo::Repository;
use std::fs::File;
use std::path::{Path, PathBuf};

pub(crate) struct ScratchCopy {
    /// Removes the copy's directory when the walk ends.
    _scratch: Scratch,
    path: PathBuf,
    file: File,
    /// The pages the copy holds now, and their size.
    pages: Vec<Hash>,
    page_size: u32,
}

impl ScratchCopy {
    /// An empty copy in a new directory `<kind>-<random>` under `base`.
    pub(crate) fn create(base: &Path, kind: &str) -> Result<ScratchCopy> {
        let scratch = Scratch::named(base, kind, false)?;
        let path = scratch.database();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| scratch_error(&path, e))?;
        Ok(ScratchCopy {
            _scratch: scratch,
            path,
            file,
            pages: Vec::new(),
            page_size: 0,
        })
    }

    /// Makes the copy snapshot `id`'s database and returns its path, to open read-only.
    pub(crate) fn advance(
        &mut self,
        repo: &Repository,
        keys: &Keyring,
        index: &Index,
        id: &SnapshotId,
        m: &Manifest,
    ) -> Result<&Path> {
        if m.page_size != self.page_size {
            self.pages.clear();
            self.page_size = m.page_size;
        }
        let path = &self.path;
        let write_error = |e: std::io::Error| scratch_error(path, e);
        let mut damaged = Vec::new();
        self.pages = rebuild::update_into(
            repo,
            keys,
            index,
            id,
            m,
            &self.pages,
            &self.file,
            &write_error,
            &mut damaged,
        )?;
        Ok(&self.path)
    }
}

fn scratch_error(path: &Path, e: std::io::Error) -> Error {
    Error::Destination(
        format!(
            "cannot write the scratch copy {}: {e}; give a --scratch-dir with room for one copy of the database",
            path.display()
        )
        .into(),
    )
}
