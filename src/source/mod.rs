//! Reading a consistent image of a live SQLite database. All pages are read through the
//! `sqlite_dbpage` virtual table inside one read transaction, so the image is exactly the
//! database as of one commit (WAL frames included) while other processes keep writing.
//! The live file is never read with plain file reads (only its 16-byte header is sniffed).

pub mod compare;
pub mod facts;
mod twin;

use crate::error::{Error, Fault, Hint, Hinted, Result};
use crate::facts::{BusinessFacts, Description, SourceCheck};
use crate::hash::Hash;
use crate::recycle::Recycler;
pub use facts::CheckLevel;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

/// Pages per batch handed downstream: 1 MiB with 4 KiB pages.
const BATCH_PAGES: usize = 256;

/// A run of consecutive pages.
pub struct PageBatch {
    pub first_pgno: u64,
    pub page_size: usize,
    pub data: Vec<u8>,
}

/// Spent batches' buffers, for the next batches read: as many as the pipeline holds at once
/// (four queued, one being filled, one being hashed).
static BATCH_BUFFERS: Recycler = Recycler::new(6);

impl PageBatch {
    /// Hands the batch's buffer back for the next batch read.
    pub fn recycle(self) {
        BATCH_BUFFERS.give(self.data);
    }

    /// Drops the buffers kept for batches to come, once a backup is done.
    pub fn release_buffers() {
        BATCH_BUFFERS.release();
    }
}

/// What the read transaction saw.
#[derive(Debug, Clone)]
pub struct SourceImage {
    pub page_size: u32,
    pub page_count: u64,
    pub journal_mode: String,
    pub tables: BTreeMap<String, u64>,
    /// SHA-256 of all pages in order: the hash of the restored file.
    pub sha256: Hash,
    /// When the read transaction started.
    pub time: chrono::DateTime<chrono::Utc>,
    /// How long the read transaction was held.
    pub read_lock: Duration,
    /// SQLite's check of this image, when one was asked for.
    pub check: Option<SourceCheck>,
    /// Invoice facts of this image, when the source has a business description.
    pub business: Option<BusinessFacts>,
    /// What could not be measured, and a failed check: the backup goes on and says so.
    pub warnings: Vec<String>,
}

/// How to read a source: how long to wait for its lock, and what to measure on the image.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub lock_timeout: Duration,
    pub check: CheckLevel,
    pub business: Option<Description>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            lock_timeout: Duration::from_secs(10),
            check: CheckLevel::default(),
            business: None,
        }
    }
}

/// Opens the source read-only after checking that it is a SQLite database.
pub fn open(path: &Path, lock_timeout: Duration) -> Result<Connection> {
    require_dbpage()?;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Source(format!("source database {shown} does not exist; check the path").into())
        }
        _ => Error::Source(format!("cannot read source database {shown}: {e}").into()),
    })?;
    if !meta.is_file() {
        return Err(Error::Source(
            format!("source {shown} is not a file; give the path of a SQLite database file").into(),
        ));
    }
    let mut header = [0u8; 16];
    let sniff = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    if sniff.is_err() || &header != b"SQLite format 3\0" {
        return Err(Error::Source(
            format!("source {shown} is not a SQLite database (no SQLite header); check the path")
                .into(),
        ));
    }
    let conn = Connection::open_with_flags(
        crate::paths::sqlite_filename(path),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sqlite_error(path, e, lock_timeout))?;
    conn.busy_timeout(lock_timeout)
        .map_err(|e| sqlite_error(path, e, lock_timeout))?;
    Ok(conn)
}

/// `sqlite_dbpage` is compiled in only with SQLITE_ENABLE_DBPAGE_VTAB (see .cargo/config.toml).
/// Compile options belong to the library, so ask a private in-memory database, not the source.
fn require_dbpage() -> Result<()> {
    let found = Connection::open_in_memory()
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM pragma_compile_options WHERE compile_options = 'ENABLE_DBPAGE_VTAB'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n > 0)
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(Error::Internal(Fault::new(
            "this ivault was built without SQLITE_ENABLE_DBPAGE_VTAB",
            Hint::Rebuild,
        )))
    }
}

/// Where pages go while the read transaction is open.
enum PageSink<'a> {
    /// Straight into the backup pipeline (WAL mode: writers are not blocked by readers).
    Stream(&'a SyncSender<PageBatch>),
    /// Into an unlinked local file, replayed into the pipeline after the transaction ends
    /// (rollback-journal mode: writers wait only for the read, not for compression).
    Spill(BufWriter<File>),
}

impl PageSink<'_> {
    fn put(&mut self, batch: PageBatch) -> Result<()> {
        match self {
            PageSink::Stream(tx) => tx.send(batch).map_err(|_| Error::Cancelled),
            PageSink::Spill(w) => {
                let written = w.write_all(&batch.data).map_err(spill_error);
                batch.recycle();
                written
            }
        }
    }
}

/// Reads every page of one consistent snapshot and sends them downstream in order. In
/// rollback-journal mode, with a `spill_dir`, pages are first copied to a temporary file there
/// so the read lock that holds writers back lasts only as long as the read itself.
pub fn read_image(
    path: &Path,
    opts: &ReadOptions,
    spill_dir: Option<&Path>,
    tx: SyncSender<PageBatch>,
) -> Result<SourceImage> {
    let (mut image, staged) = take_image(path, opts, spill_dir, false, Some(&tx))?;
    if let (Some(file), Some(dir)) = (staged, spill_dir) {
        // Measure the staged copy while its pages go downstream: the lock is already released.
        let (measured, replayed) = std::thread::scope(|s| {
            let measuring = s.spawn(|| measure_file(&file, dir, path, opts));
            let replayed = replay(&file, image.page_size as usize, &tx);
            (measuring.join(), replayed)
        });
        replayed?;
        let measured =
            measured.map_err(|_| Error::Internal("measuring the image failed".into()))?;
        measured.apply(&mut image);
    }
    Ok(image)
}

/// One consistent image copied into an unlinked local file: read the source once, then
/// replay the same image to any number of targets.
pub struct StagedImage {
    file: File,
    pub image: SourceImage,
}

impl StagedImage {
    /// An image already written to `file` (page 1 at offset 0), e.g. rebuilt from another
    /// repository; the caller vouches that `image` describes it.
    pub(crate) fn from_file(file: File, image: SourceImage) -> Self {
        StagedImage { file, image }
    }

    pub fn replay(&self, tx: SyncSender<PageBatch>) -> Result<()> {
        replay(&self.file, self.image.page_size as usize, &tx)
    }
}

/// Takes a consistent image of the source into a temporary file in `dir` (any journal mode).
pub fn stage_image(path: &Path, opts: &ReadOptions, dir: &Path) -> Result<StagedImage> {
    let (mut image, staged) = take_image(path, opts, Some(dir), true, None)?;
    let file = staged.ok_or_else(|| Error::Internal("the staged image went missing".into()))?;
    measure_file(&file, dir, path, opts).apply(&mut image);
    Ok(StagedImage { file, image })
}

/// What was measured on an image: SQLite's check and the business facts.
#[derive(Default)]
struct Measured {
    check: Option<SourceCheck>,
    business: Option<BusinessFacts>,
    warnings: Vec<String>,
}

impl Measured {
    fn apply(self, image: &mut SourceImage) {
        image.check = self.check;
        image.business = self.business;
        image.warnings.extend(self.warnings);
    }
}

/// Runs the asked-for check and measures the business facts on `conn`. Neither stops a
/// backup: a damaged database is better kept than lost, so failures become warnings.
fn measure(conn: &Connection, path: &Path, opts: &ReadOptions) -> Measured {
    let shown = path.display();
    let mut out = Measured::default();
    match facts::run_check(conn, opts.check) {
        Ok(check) => out.check = check,
        Err(e) => {
            out.check = Some(SourceCheck {
                pragma: match opts.check {
                    CheckLevel::Full => "integrity_check",
                    _ => "quick_check",
                }
                .into(),
                ok: false,
                problems: vec![e.to_string()],
                duration_ms: 0,
            })
        }
    }
    if let Some(c) = out.check.as_ref().filter(|c| !c.ok) {
        out.warnings.push(format!(
            "source database {shown} fails PRAGMA {} ({}); it was backed up as it is, so repair it or restore a good snapshot",
            c.pragma,
            c.problems.first().map(String::as_str).unwrap_or("no detail")
        ));
    }
    if let Some(d) = &opts.business {
        let problem = match facts::describe_problem(conn, d) {
            Ok(None) => match facts::measure(conn, d) {
                Ok(f) => {
                    out.business = Some(f);
                    None
                }
                Err(e) => Some(e.to_string()),
            },
            Ok(Some(why)) => Some(why),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = problem {
            out.warnings.push(format!(
                "no invoice facts recorded for {shown}: {why}; fix the policy's [source.business]"
            ));
        }
    }
    out
}

/// Whether there is anything to measure on the image.
fn wants_measuring(opts: &ReadOptions) -> bool {
    opts.check != CheckLevel::Off || opts.business.is_some()
}

/// [`measure`] on a staged image in `dir`.
fn measure_file(file: &File, dir: &Path, path: &Path, opts: &ReadOptions) -> Measured {
    if !wants_measuring(opts) {
        return Measured::default();
    }
    match open_unnamed(file, dir) {
        Ok(conn) => measure(&conn, path, opts),
        Err(e) => Measured {
            warnings: vec![format!(
                "the image of {} could not be checked or measured: {e}",
                path.display()
            )],
            ..Measured::default()
        },
    }
}

/// Hidden names staged images get for as long as SQLite takes to open them.
const VIEW_PREFIX: &str = ".ivault-image-";

/// Opens an unnamed file with SQLite, read-only and immutable. SQLite resolves
/// `/proc/self/fd/N` to the name such a file lacks, so the file gets a hidden name just long
/// enough to be opened; SQLite keeps its descriptor and never reopens an immutable database.
fn open_unnamed(file: &File, dir: &Path) -> std::result::Result<Connection, String> {
    use std::os::fd::AsRawFd;
    let name = dir.join(format!("{VIEW_PREFIX}{:016x}", rand::random::<u64>()));
    rustix::fs::linkat(
        rustix::fs::CWD,
        format!("/proc/self/fd/{}", file.as_raw_fd()),
        rustix::fs::CWD,
        &name,
        rustix::fs::AtFlags::SYMLINK_FOLLOW,
    )
    .map_err(|e| format!("cannot name it in {} ({e})", dir.display()))?;
    let opened = crate::paths::open_immutable(&name).and_then(|c| {
        c.query_row("PRAGMA schema_version", [], |_| Ok(()))
            .map(|_| c)
    });
    let _ = std::fs::remove_file(&name);
    opened.map_err(|e| e.to_string())
}

/// Removes hidden names of staged images a killed backup left (each lives for milliseconds,
/// so one older than a minute is a leftover).
fn remove_stale_views(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(60)));
        if stale && e.file_name().to_string_lossy().starts_with(VIEW_PREFIX) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Reads the image inside one read transaction, into the pipeline (`tx`) or into a spill file,
/// which is returned.
fn take_image(
    path: &Path,
    opts: &ReadOptions,
    spill_dir: Option<&Path>,
    always_spill: bool,
    tx: Option<&SyncSender<PageBatch>>,
) -> Result<(SourceImage, Option<File>)> {
    let lock_timeout = opts.lock_timeout;
    let conn = open(path, lock_timeout)?;
    let err = |e| sqlite_error(path, e, lock_timeout);
    let journal_mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
        .map_err(err)?
        .to_ascii_lowercase();
    let spill = spill_dir.filter(|_| always_spill || journal_mode != "wal");
    let mut sink = match (spill, tx) {
        (Some(dir), _) => PageSink::Spill(BufWriter::with_capacity(1 << 20, spill_file(dir)?)),
        (None, Some(tx)) => PageSink::Stream(tx),
        (None, None) => return Err(Error::Internal("no place to put the pages".into())),
    };
    conn.execute_batch("BEGIN").map_err(err)?;
    // The first read takes the shared lock (waiting up to lock_timeout for a writer); the
    // clock starts once it is held, so `read_lock` is how long writers were held back.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(err)?;
    let time = chrono::Utc::now();
    let started = Instant::now();
    // Streamed pages have no copy to measure later: measure the same snapshot, on a twin
    // connection beside the read where SQLite can share it, else on this connection after the
    // read (in WAL mode that holds no writer back either).
    let streamed = matches!(sink, PageSink::Stream(_)) && wants_measuring(opts);
    let twin = (streamed && journal_mode == "wal")
        .then(|| twin::twin_of(&conn, path, lock_timeout))
        .flatten();
    let (result, beside) = std::thread::scope(|s| {
        let beside = twin.map(|twin| {
            let stop = twin.get_interrupt_handle();
            (s.spawn(move || measure(&twin, path, opts)), stop)
        });
        let result = read_in_transaction(&conn, path, lock_timeout, &mut sink);
        let beside = beside.map(|(measuring, stop)| {
            if result.is_err() {
                stop.interrupt();
            }
            measuring.join()
        });
        (result, beside)
    });
    let measured = match beside {
        Some(joined) => joined.map_err(|_| Error::Internal("measuring the image failed".into()))?,
        None if streamed && result.is_ok() => measure(&conn, path, opts),
        None => Measured::default(),
    };
    let _ = conn.execute_batch("COMMIT");
    let read_lock = started.elapsed();
    let (page_size, page_count, tables, sha256) = result?;
    let staged = match sink {
        PageSink::Spill(w) => Some(w.into_inner().map_err(|e| spill_error(e.into_error()))?),
        PageSink::Stream(_) => None,
    };
    let mut image = SourceImage {
        page_size,
        page_count,
        journal_mode,
        tables,
        sha256,
        time,
        read_lock,
        check: None,
        business: None,
        warnings: Vec::new(),
    };
    measured.apply(&mut image);
    Ok((image, staged))
}

/// A new file in `dir` without a name (`O_TMPFILE`, or created and unlinked at once where the
/// filesystem has no unnamed files): it vanishes with the process, whatever happens.
pub(crate) fn spill_file(dir: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir).map_err(spill_error)?;
    remove_stale_views(dir);
    if let Ok(fd) = rustix::fs::open(
        dir,
        rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    ) {
        return Ok(File::from(fd));
    }
    let path = dir.join(format!(".spill-{:016x}", rand::random::<u64>()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(spill_error)?;
    std::fs::remove_file(&path).map_err(spill_error)?;
    Ok(file)
}

/// Sends a staged image downstream; positional reads, so it can be replayed again.
fn replay(f: &File, page_size: usize, tx: &SyncSender<PageBatch>) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let mut first_pgno = 1u64;
    let mut offset = 0u64;
    loop {
        let mut data = BATCH_BUFFERS.take(page_size * BATCH_PAGES);
        data.resize(page_size * BATCH_PAGES, 0);
        let mut n = 0;
        while n < data.len() {
            match f
                .read_at(&mut data[n..], offset + n as u64)
                .map_err(spill_error)?
            {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            return Ok(());
        }
        data.truncate(n);
        offset += n as u64;
        let pages = (n / page_size) as u64;
        tx.send(PageBatch {
            first_pgno,
            page_size,
            data,
        })
        .map_err(|_| Error::Cancelled)?;
        first_pgno += pages;
    }
}

fn spill_error(e: std::io::Error) -> Error {
    Error::Internal(
        format!("cannot use the temporary page file in the state directory ({e})")
            .hinted(Hint::StateDirectory),
    )
}

type ImageParts = (u32, u64, BTreeMap<String, u64>, Hash);

fn read_in_transaction(
    conn: &Connection,
    path: &Path,
    lock_timeout: Duration,
    sink: &mut PageSink,
) -> Result<ImageParts> {
    let err = |e| sqlite_error(path, e, lock_timeout);
    // Counting rows first takes the read lock and checks the schema and b-trees can be read.
    let tables = count_rows(conn).map_err(err)?;
    let page_size: u32 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(err)?;
    let page_count = conn
        .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
        .map_err(err)? as u64;
    let ps = page_size as usize;
    let mut stmt = conn
        .prepare("SELECT pgno, data FROM sqlite_dbpage('main')")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    let mut hasher = Sha256::new();
    let mut expected = 1u64;
    let started = Instant::now();
    let mut blocked = Duration::ZERO;
    let mut batch = PageBatch {
        first_pgno: 1,
        page_size: ps,
        data: BATCH_BUFFERS.take(ps * BATCH_PAGES),
    };
    while let Some(row) = rows.next().map_err(err)? {
        let pgno = row.get::<_, i64>(0).map_err(err)? as u64;
        let data = row
            .get_ref(1)
            .map_err(err)?
            .as_blob()
            .map_err(|e| err(e.into()))?;
        if pgno != expected || data.len() != ps {
            return Err(Error::Source(format!(
                "source {} returned page {pgno} of {} bytes where page {expected} of {ps} was expected; the database may be corrupt",
                path.display(),
                data.len()
            ).into()));
        }
        hasher.update(data);
        batch.data.extend_from_slice(data);
        expected += 1;
        if batch.data.len() == ps * BATCH_PAGES {
            let full = std::mem::replace(
                &mut batch,
                PageBatch {
                    first_pgno: expected,
                    page_size: ps,
                    data: BATCH_BUFFERS.take(ps * BATCH_PAGES),
                },
            );
            let t = Instant::now();
            sink.put(full)?;
            blocked += t.elapsed();
        }
    }
    if !batch.data.is_empty() {
        sink.put(batch)?;
    }
    tracing::debug!(
        "reader took {:?}, of which blocked downstream {blocked:?}",
        started.elapsed()
    );
    if expected - 1 != page_count {
        return Err(Error::Source(
            format!(
                "source {} has {page_count} pages but {} were read; the database may be corrupt",
                path.display(),
                expected - 1
            )
            .into(),
        ));
    }
    Ok((page_size, page_count, tables, hasher.finalize().into()))
}

/// Row count of every ordinary table (not virtual, not SQLite's own).
pub fn count_rows(conn: &Connection) -> rusqlite::Result<BTreeMap<String, u64>> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = BTreeMap::new();
    for name in names {
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\"")),
            [],
            |r| r.get(0),
        )?;
        out.insert(name, n as u64);
    }
    Ok(out)
}

/// Classifies a SQLite error on the source into one clear sentence.
pub fn sqlite_error(path: &Path, e: rusqlite::Error, lock_timeout: Duration) -> Error {
    use rusqlite::ErrorCode;
    let shown = path.display();
    // A read-only connection cannot roll back a hot journal, so SQLite reports the hot journal
    // as a write to a read-only database; that is not a permissions problem.
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK {
            return Error::Source(format!(
                "source database {shown} has a hot journal left by a writer that crashed; open it once with sqlite3 or the application so SQLite rolls it back, then back up again"
            ).into());
        }
    }
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Source(format!(
            "source database {shown} stayed locked by another process for {} s",
            lock_timeout.as_secs_f32()
        ).hinted(Hint::LockTimeout)),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Source(format!(
            "source database {shown} is corrupt; run `sqlite3 {shown} 'PRAGMA integrity_check'` and restore it from a good snapshot"
        ).into()),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => Error::Source(format!(
            "cannot open source database {shown} ({e}); check its permissions and those of its directory"
        ).into()),
        _ => Error::Source(format!("reading source database {shown} failed: {e}").into()),
    }
}
