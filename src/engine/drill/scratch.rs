//! The scratch directory a drill, a period restore or a trace restores into.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A scratch directory for one drill's restored copy, removed on drop unless kept.
pub(crate) struct Scratch {
    pub(crate) dir: PathBuf,
    keep: bool,
}

impl Scratch {
    pub(crate) fn create(base: &Path, keep: bool) -> Result<Self> {
        Self::named(base, "drill", keep)
    }

    /// A scratch directory `<kind>-<random>` under `base`.
    pub(crate) fn named(base: &Path, kind: &str, keep: bool) -> Result<Self> {
        let dir = base.join(format!("{kind}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::Destination(
                format!(
                    "cannot create the {}'s scratch directory {}: {e}; give a scratch directory that can be written",
                    match kind {
                        "period" => "period restore",
                        other => other,
                    },
                    dir.display()
                )
                .into(),
            )
        })?;
        Ok(Scratch { dir, keep })
    }

    pub(crate) fn database(&self) -> PathBuf {
        self.dir.join("restored.sqlite")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
