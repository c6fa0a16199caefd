//! Where a restore may not write: inside the repository it reads. A new file there sits among
//! the repository's objects, and with an overwrite the restore would replace the repository's
//! own `config` or one of its objects with a database.

use crate::error::{Error, Result};
use std::path::Path;

/// Refuses `dest` when its directory is `repo_dir` or lies under it, comparing canonical
/// paths, so `..`, symbolic links and relative paths do not hide it. A destination whose
/// directory does not exist is left to the other checks, which report it.
pub(crate) fn refuse_inside_repository(dest: &Path, repo_dir: Option<&Path>) -> Result<()> {
    let Some(root) = repo_dir.and_then(|d| std::fs::canonicalize(d).ok()) else {
        return Ok(());
    };
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(parent) = std::fs::canonicalize(parent) else {
        return Ok(());
    };
    // The destination itself only matters when it is the repository's directory (a directory
    // given as the file to write); a link named by it would be replaced, not followed.
    let is_root = std::fs::canonicalize(dest).is_ok_and(|d| d == root);
    if parent.starts_with(&root) || is_root {
        return Err(Error::Destination(
            format!(
                "{} is inside repository {}, which the restore reads; restore to a path outside the repository",
                dest.display(),
                root.display()
            )
            .into(),
        ));
    }
    Ok(())
}
