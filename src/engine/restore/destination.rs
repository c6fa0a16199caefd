//! The destination of a restore: refused if it exists (unless forced), written under a
//! temporary name beside it, and moved into place only once verified.

use crate::error::{Error, Hint, Hinted, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub(super) fn check_destination(dest: &Path, force: bool) -> Result<()> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::Destination(
            format!(
                "directory {} does not exist; create it first or restore elsewhere",
                parent.display()
            )
            .into(),
        ));
    }
    if dest.is_dir() {
        return Err(Error::Destination(
            format!(
                "{} is a directory; give the path of the database file to write",
                dest.display()
            )
            .into(),
        ));
    }
    if dest.exists() && !force {
        return Err(Error::Destination(
            format!("{} already exists", dest.display()).hinted(Hint::Overwrite),
        ));
    }
    Ok(())
}

/// A file beside the destination that is removed unless persisted.
pub(super) struct TempFile {
    pub(super) path: PathBuf,
    pub(super) file: File,
    keep: bool,
}

impl TempFile {
    pub(super) fn create(dest: &Path) -> Result<Self> {
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = dir.join(format!(".{name}.ivault-{:08x}.tmp", rand::random::<u32>()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                Error::Destination(format!("cannot create a file in {}: {e}", dir.display()).into())
            })?;
        Ok(TempFile {
            path,
            file,
            keep: false,
        })
    }

    pub(super) fn write_error(&self, e: std::io::Error) -> Error {
        Error::Destination(
            format!(
                "writing {} failed: {e}; free space or restore elsewhere",
                self.path.display()
            )
            .into(),
        )
    }

    pub(super) fn persist(mut self, dest: &Path, force: bool) -> Result<()> {
        if force {
            // A leftover WAL or journal of the replaced database would be applied to the new one.
            for suffix in ["-wal", "-shm", "-journal"] {
                let mut p = dest.as_os_str().to_owned();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
        }
        // Without --force, a link (which refuses an existing name) closes the race with
        // another process creating the destination meanwhile.
        let placed = if force {
            std::fs::rename(&self.path, dest)
        } else {
            std::fs::hard_link(&self.path, dest)
        };
        placed.map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Destination(
                format!("{} already exists", dest.display()).hinted(Hint::Overwrite),
            ),
            _ => Error::Destination(
                format!("cannot move the restored file to {}: {e}", dest.display()).into(),
            ),
        })?;
        self.keep = force;
        if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
