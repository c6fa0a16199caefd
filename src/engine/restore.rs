//! Restore: rebuild a snapshot's database file from its pages. The file is written under a
//! temporary name beside the destination, checked (SHA-256 against the manifest, then
//! `PRAGMA integrity_check`), and only then renamed into place. On any failure nothing is left.

use crate::engine::context::{recorded, Context};
use crate::engine::destination;
use crate::error::{Error, Hint, Hinted, Result};
use crate::repo::binary::Hash;
use crate::repo::index::Index;
use crate::repo::keys::Keyring;
use crate::repo::manifest::Manifest;
use crate::repo::{parse_hash, reader, Repository};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// How often a restore flushes what it has written so far.
const WRITEBACK_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub force: bool,
    /// Run `PRAGMA integrity_check` on the rebuilt file. The SHA-256 comparison, which proves
    /// every byte equals the snapshot, always runs; the integrity check also proves the
    /// database was sound when it was backed up, and on a large database it costs more than
    /// the rest of the restore.
    pub integrity_check: bool,
    /// Only consider snapshots of this source (name or path) when resolving `latest`.
    pub source: Option<String>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            force: false,
            integrity_check: true,
            source: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub snapshot_id: String,
    pub path: String,
    pub bytes_written: u64,
    pub bytes_read: u64,
    pub duration_ms: u64,
    pub integrity_checked: bool,
}

/// A restore as a face asks for it: which repository, which key, which snapshot, where to.
pub struct RestoreJob {
    pub repo: String,
    pub identity: Option<PathBuf>,
    /// Snapshot id, unique prefix, or `latest`.
    pub snapshot: String,
    pub dest: PathBuf,
    pub options: RestoreOptions,
}

/// Opens the repository and key, restores, and records the job in the history.
pub fn run(ctx: &Context, job: &RestoreJob) -> Result<RestoreReport> {
    let (repo, keys) = ctx.open_repo_with_key(&job.repo, job.identity.as_deref())?;
    let mut state = ctx.state()?;
    let summary = |r: &RestoreReport| (r.bytes_read, 0, Some(r.snapshot_id.clone()));
    let location = repo.location();
    recorded(
        &mut state,
        "restore",
        None,
        Some(&location),
        summary,
        |_| restore(&repo, &keys, &job.snapshot, &job.dest, &job.options),
    )
}

pub fn restore(
    repo: &Repository,
    keys: &Keyring,
    spec: &str,
    dest: &Path,
    opts: &RestoreOptions,
) -> Result<RestoreReport> {
    let started = Instant::now();
    destination::refuse_inside_repository(dest, repo.storage().local_dir().as_deref())?;
    check_destination(dest, opts.force)?;
    let (id, m) = repo.resolve_snapshot(keys, spec, opts.source.as_deref())?;
    let temp = TempFile::create(dest)?;
    let file_len = m.page_count * m.page_size as u64;
    let bytes_read = std::thread::scope(|s| {
        // Write back while pages are still coming, so the fsync before the rename finds
        // little left to do: on a large restore it otherwise costs seconds at the end.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let file = &temp.file;
        s.spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(WRITEBACK_EVERY) {
                let _ = file.sync_data();
            }
        });
        let written = rebuild_into(repo, keys, &id, &m, &temp.file, &|e| temp.write_error(e));
        drop(stop);
        written
    })?;
    tracing::debug!("pages written after {:?}", started.elapsed());
    // The last fsync and the read-back check overlap: one waits on the disk, the other hashes
    // pages still in the page cache.
    let (synced, verified) = std::thread::scope(|s| {
        let sync = s.spawn(|| temp.file.sync_all());
        let verified = verify_restored(&temp.path, &m, &id, opts.integrity_check);
        (sync.join(), verified)
    });
    verified?;
    match synced {
        Ok(r) => r.map_err(|e| temp.write_error(e))?,
        Err(_) => return Err(Error::Internal("the fsync thread panicked".into())),
    }
    tracing::debug!("synced and verified after {:?}", started.elapsed());
    temp.persist(dest, opts.force)?;
    Ok(RestoreReport {
        snapshot_id: id,
        path: dest.display().to_string(),
        bytes_written: file_len,
        bytes_read,
        duration_ms: started.elapsed().as_millis() as u64,
        integrity_checked: opts.integrity_check,
    })
}

/// Writes every page of snapshot `id` into `out` (sized to the database first) and returns
/// the bytes read from the repository. Every blob is checked against its id on the way; the
/// caller checks the whole file against the manifest.
pub(crate) fn rebuild_into(
    repo: &Repository,
    keys: &Keyring,
    id: &str,
    m: &Manifest,
    out: &File,
    write_error: &(dyn Fn(std::io::Error) -> Error + Sync),
) -> Result<u64> {
    let started = Instant::now();
    let index = repo.load_index(keys)?;
    let pages = page_list(repo, keys, &index, id, m)?;
    tracing::debug!("index and page list ready after {:?}", started.elapsed());
    out.set_len(m.page_count * m.page_size as u64)
        .map_err(write_error)?;
    write_pages(repo, keys, &index, &pages, m.page_size, out, write_error)
}

fn check_destination(dest: &Path, force: bool) -> Result<()> {
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

/// Reads the snapshot's tree segments and returns the blob id of every page, in order.
pub fn page_list(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    id: &str,
    m: &Manifest,
) -> Result<Vec<Hash>> {
    let seg_ids: Vec<Hash> = m
        .segments
        .iter()
        .map(|s| {
            parse_hash(s).ok_or_else(|| {
                Error::Integrity(format!("snapshot {id} has a malformed segment id").into())
            })
        })
        .collect::<Result<_>>()?;
    let unique: std::collections::HashSet<Hash> = seg_ids.iter().copied().collect();
    let segments = std::sync::Mutex::new(HashMap::<Hash, Vec<u8>>::new());
    reader::read_blobs(repo, keys, index, unique, 2, |blobs| {
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
        for chunk in bytes.chunks_exact(32) {
            let mut h = [0u8; 32];
            h.copy_from_slice(chunk);
            pages.push(h);
        }
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
    Ok(pages)
}

fn write_pages(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    pages: &[Hash],
    page_size: u32,
    out: &File,
    write_error: &(dyn Fn(std::io::Error) -> Error + Sync),
) -> Result<u64> {
    // Page numbers ordered by blob id: 4 bytes a page, where a map of lists would cost ~90.
    let mut by_blob: Vec<u32> = (0..pages.len() as u32).collect();
    by_blob.sort_unstable_by(|a, b| pages[*a as usize].cmp(&pages[*b as usize]));
    let unique = by_blob
        .iter()
        .map(|&i| pages[i as usize])
        .enumerate()
        .filter(|(k, h)| *k == 0 || pages[by_blob[k - 1] as usize] != *h)
        .map(|(_, h)| h);
    // Twice the cores: while some workers wait for a pack (S3, disk), others decrypt.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .clamp(4, 8);
    let ps = page_size as usize;
    reader::read_blobs(repo, keys, index, unique, workers, |blobs| {
        // Every page number each blob is used at, then one write per run of consecutive
        // pages: one small write per page is what makes a large restore slow.
        let mut placed: Vec<(u32, &[u8])> = Vec::with_capacity(blobs.len());
        for (h, bytes) in blobs {
            if bytes.len() != ps {
                return Err(Error::Integrity(
                    format!(
                        "page blob {} has {} bytes, not the snapshot's page size {page_size}",
                        hex::encode(h),
                        bytes.len()
                    )
                    .into(),
                ));
            }
            let first = by_blob.partition_point(|&i| pages[i as usize] < *h);
            let uses = by_blob[first..]
                .iter()
                .take_while(|&&i| pages[i as usize] == *h);
            placed.extend(uses.map(|&i| (i, *bytes)));
        }
        placed.sort_unstable_by_key(|(i, _)| *i);
        let mut run: Vec<u8> = Vec::with_capacity(placed.len() * ps);
        let mut start = 0u32;
        for (k, (i, bytes)) in placed.iter().enumerate() {
            if k > 0 && *i != placed[k - 1].0 + 1 {
                write_run(out, start, &run, ps, write_error)?;
                run.clear();
            }
            if run.is_empty() {
                start = *i;
            }
            run.extend_from_slice(bytes);
        }
        write_run(out, start, &run, ps, write_error)
    })
}

fn write_run(
    out: &File,
    first_page: u32,
    run: &[u8],
    page_size: usize,
    write_error: &(dyn Fn(std::io::Error) -> Error + Sync),
) -> Result<()> {
    if run.is_empty() {
        return Ok(());
    }
    out.write_all_at(run, first_page as u64 * page_size as u64)
        .map_err(write_error)
}

/// The restored file must hash to the manifest's value and pass SQLite's own integrity check.
pub fn verify_restored(
    path: &Path,
    m: &Manifest,
    id: &str,
    run_integrity_check: bool,
) -> Result<()> {
    let read_error = |e: std::io::Error| {
        Error::Destination(format!("cannot read back {}: {e}", path.display()).into())
    };
    let f = File::open(path).map_err(read_error)?;
    verify_sha256(&f, m, id, &read_error)?;
    tracing::debug!("SHA-256 matches the manifest");
    if !run_integrity_check {
        return Ok(());
    }
    let result = integrity_check(path).map_err(|e| {
        Error::Integrity(
            format!("SQLite could not check the database rebuilt from snapshot {id}: {e}").into(),
        )
    })?;
    if result != "ok" {
        return Err(Error::Integrity(format!(
            "the database rebuilt from snapshot {id} fails PRAGMA integrity_check ({}); the source was damaged when it was backed up, try an older snapshot",
            result.lines().next().unwrap_or_default()
        ).into()));
    }
    Ok(())
}

/// Checks that a rebuilt file hashes to the SHA-256 its manifest records.
pub(crate) fn verify_sha256(
    f: &File,
    m: &Manifest,
    id: &str,
    read_error: &dyn Fn(std::io::Error) -> Error,
) -> Result<()> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = f.read_at(&mut buf, offset).map_err(read_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    if hex::encode(hasher.finalize()) != m.database_sha256 {
        return Err(Error::Integrity(format!(
            "the database rebuilt from snapshot {id} does not match the SHA-256 its manifest records"
        ).hinted(Hint::CheckData)));
    }
    Ok(())
}

/// Runs `PRAGMA integrity_check` without creating journal files beside the database.
pub fn integrity_check(path: &Path) -> rusqlite::Result<String> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(
        crate::paths::sqlite_uri(path, "immutable=1"),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows.join("\n"))
}

/// A file beside the destination that is removed unless persisted.
struct TempFile {
    path: PathBuf,
    file: File,
    keep: bool,
}

impl TempFile {
    fn create(dest: &Path) -> Result<Self> {
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut name = std::ffi::OsString::from(".");
        name.push(dest.file_name().unwrap_or_default());
        name.push(format!(".ivault-{:08x}.tmp", rand::random::<u32>()));
        let path = dir.join(name);
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

    fn write_error(&self, e: std::io::Error) -> Error {
        Error::Destination(
            format!(
                "writing {} failed: {e}; free space or restore elsewhere",
                self.path.display()
            )
            .into(),
        )
    }

    fn persist(mut self, dest: &Path, force: bool) -> Result<()> {
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
