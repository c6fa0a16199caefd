//! The destination of a restore: refused if it exists (unless forced) or lies inside the
//! repository being read, written under a temporary name beside it, and moved into place
//! only once verified.

use crate::error::{Error, Hint, Hinted, Result};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Refuses a destination the restore may not write: inside the repository it reads (whose
/// directory, for a local repository, is `repo_dir`), an existing file without `force`, a
/// directory, or one whose directory is missing.
pub(super) fn check_destination(dest: &Path, force: bool, repo_dir: Option<&Path>) -> Result<()> {
    refuse_inside_repository(dest, repo_dir)?;
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

/// Refuses `dest` when its directory is `repo_dir` or lies under it, comparing canonical
/// paths, so `..`, symbolic links and relative paths do not hide it. A destination whose
/// directory does not exist is left to the other checks, which report it.
fn refuse_inside_repository(dest: &Path, repo_dir: Option<&Path>) -> Result<()> {
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

/// The file a restore writes: unnamed (`O_TMPFILE`) in the destination's directory, so that a
/// restore killed at any moment leaves no plaintext behind, and linked into place only once
/// verified. It gets a hidden temporary name only for SQLite's integrity check, or from the
/// start on a filesystem without unnamed files; that name is removed on drop, and one a kill
/// left is removed by the next restore to the same destination.
pub(super) struct TempFile {
    /// A path that opens the file: `/proc/self/fd/N` while unnamed.
    pub(super) path: PathBuf,
    pub(super) file: File,
    dir: PathBuf,
    /// The hidden name, when the filesystem has no unnamed files.
    named: Option<PathBuf>,
    keep: bool,
}

/// Hidden temporary names of a destination: `.{name}.ivault-{random}.tmp`, keeping the
/// name's exact bytes.
fn temp_prefix(dest: &Path) -> OsString {
    let mut name = OsString::from(".");
    name.push(dest.file_name().unwrap_or_default());
    name.push(".ivault-");
    name
}

fn temp_name(dir: &Path, dest: &Path) -> PathBuf {
    let mut name = temp_prefix(dest);
    name.push(format!("{:08x}.tmp", rand::random::<u32>()));
    dir.join(name)
}

impl TempFile {
    pub(super) fn create(dest: &Path) -> Result<Self> {
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let create_error = |e: std::io::Error| {
            Error::Destination(format!("cannot create a file in {}: {e}", dir.display()).into())
        };
        remove_leftovers(&dir, dest);
        let unnamed = rustix::fs::open(
            &dir,
            rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o600),
        );
        match unnamed {
            Ok(fd) => {
                let file = File::from(fd);
                let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
                Ok(TempFile {
                    path,
                    file,
                    dir,
                    named: None,
                    keep: false,
                })
            }
            // Filesystems without O_TMPFILE answer one of these; anything else is real.
            Err(e)
                if [
                    rustix::io::Errno::OPNOTSUPP,
                    rustix::io::Errno::ISDIR,
                    rustix::io::Errno::INVAL,
                ]
                .contains(&e) =>
            {
                let path = temp_name(&dir, dest);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(create_error)?;
                Ok(TempFile {
                    path: path.clone(),
                    file,
                    dir,
                    named: Some(path),
                    keep: false,
                })
            }
            Err(e) => Err(create_error(e.into())),
        }
    }

    pub(super) fn write_error(&self, e: std::io::Error) -> Error {
        Error::Destination(
            format!(
                "writing the restored file in {} failed: {e}; free space or restore elsewhere",
                self.dir.display()
            )
            .into(),
        )
    }

    /// A name SQLite can open the file by: the hidden temporary name, given now if the file
    /// has none (SQLite resolves `/proc/self/fd/N` to the name an unnamed file lacks).
    pub(super) fn name_for_sqlite(&mut self, dest: &Path) -> Result<PathBuf> {
        if let Some(p) = &self.named {
            return Ok(p.clone());
        }
        let p = temp_name(&self.dir, dest);
        self.link(&p).map_err(|e| {
            Error::Destination(
                format!(
                    "cannot name the restored file in {}: {e}",
                    self.dir.display()
                )
                .into(),
            )
        })?;
        self.named = Some(p.clone());
        Ok(p)
    }

    /// Gives the verified file its name: `dest`, which must not exist unless `force`.
    fn link(&self, dest: &Path) -> std::io::Result<()> {
        match &self.named {
            Some(p) => std::fs::hard_link(p, dest),
            None => rustix::fs::linkat(
                rustix::fs::CWD,
                &self.path,
                rustix::fs::CWD,
                dest,
                rustix::fs::AtFlags::SYMLINK_FOLLOW,
            )
            .map_err(std::io::Error::from),
        }
    }

    pub(super) fn persist(mut self, dest: &Path, force: bool) -> Result<()> {
        if force {
            // A leftover WAL or journal of the replaced database would be applied to the new
            // one, so one that cannot be removed stops the restore before the file is placed.
            for suffix in ["-wal", "-shm", "-journal"] {
                let mut p = dest.as_os_str().to_owned();
                p.push(suffix);
                let p = PathBuf::from(p);
                match std::fs::remove_file(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::Destination(format!(
                            "cannot remove {}, left by the database being replaced, which SQLite would apply to the restored one: {e}",
                            p.display()
                        ).into()))
                    }
                    _ => {}
                }
            }
        }
        // Without --force, a link (which refuses an existing name) closes the race with
        // another process creating the destination meanwhile. With it, the file gets a
        // temporary name first and is renamed over the old one, which is replaced atomically.
        let placed = if force {
            let staged = match &self.named {
                Some(p) => Ok(p.clone()),
                None => {
                    let p = temp_name(&self.dir, dest);
                    self.link(&p).map(|_| p)
                }
            };
            staged.and_then(|p| {
                std::fs::rename(&p, dest).inspect_err(|_| {
                    let _ = std::fs::remove_file(&p);
                })
            })
        } else {
            self.link(dest)
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
        let _ = File::open(&self.dir).and_then(|d| d.sync_all());
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let (Some(p), false) = (&self.named, self.keep) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Removes hidden temporary files an earlier, killed restore to `dest` left (during its
/// integrity check, or where the filesystem has no unnamed files). Two restores to one
/// destination at once cannot both succeed, so whatever is there is a leftover.
fn remove_leftovers(dir: &Path, dest: &Path) {
    let prefix = temp_prefix(dest);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.as_bytes();
        if name.starts_with(prefix.as_bytes()) && name.ends_with(b".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
