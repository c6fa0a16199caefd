//! A read-only SQLite VFS over pages that do not live in a file: a [`PageSource`] is mounted
//! under a name, and SQLite opens it by URI like any database, fetching pages only as its
//! queries touch them. A period restore reads a month of a snapshot this way, straight from
//! the repository, instead of restoring the whole database to disk first.
//!
//! Only the mounted main database file is served here. Every other file SQLite asks for
//! through this VFS (none, for an immutable read-only database) and every other service
//! (randomness, time, sleep) goes to SQLite's default VFS.
//!
//! The image is presented in rollback-journal mode: bytes 18 and 19 of page 1 (the file format
//! versions, 2 for WAL) read as 1, because a read-only image has no WAL and no shared memory to
//! go with it. Every other byte is the source's.

use crate::error::{Error, Result};
use rusqlite::ffi;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The VFS's name, for `?vfs=` in a URI.
const VFS_NAME: &CStr = c"ivault-image";
/// Mounted images are named `<PREFIX><n>`.
const PREFIX: &str = "ivault-image-";

/// The pages of one database image.
pub trait PageSource: Send + Sync {
    fn page_size(&self) -> u32;
    fn page_count(&self) -> u64;
    /// Fills `out` (exactly `page_size` bytes) with page `number` (1-based, at most
    /// `page_count`).
    fn read_page(&self, number: u64, out: &mut [u8]) -> Result<()>;
}

/// A mounted image: SQLite can open it (by [`Mounted::uri`]) while this lives. Connections
/// still open when it is dropped keep their image until they close.
pub struct Mounted {
    name: String,
    shared: Arc<Shared>,
}

struct Shared {
    source: Box<dyn PageSource>,
    /// The first page read that failed: SQLite only learns "I/O error", the caller learns why.
    failure: Mutex<Option<Error>>,
}

fn mounts() -> &'static Mutex<HashMap<String, Arc<Shared>>> {
    static MOUNTS: OnceLock<Mutex<HashMap<String, Arc<Shared>>>> = OnceLock::new();
    MOUNTS.get_or_init(Default::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Mounted {
    pub fn new(source: Box<dyn PageSource>) -> Result<Mounted> {
        register()?;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!("{PREFIX}{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let shared = Arc::new(Shared {
            source,
            failure: Mutex::new(None),
        });
        lock(mounts()).insert(name.clone(), shared.clone());
        Ok(Mounted { name, shared })
    }

    /// The URI that opens the image (the connection needs `SQLITE_OPEN_URI`, or for `ATTACH`
    /// a main database opened with it).
    pub fn uri(&self) -> String {
        format!(
            "file:{}?vfs={}&immutable=1",
            self.name,
            VFS_NAME.to_string_lossy()
        )
    }

    /// A read-only connection to the image.
    pub fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        rusqlite::Connection::open_with_flags(
            self.uri(),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    }

    /// Why a page could not be read, if one could not: SQLite reports such a failure as a
    /// disk I/O error, and this is the error to show instead.
    pub fn failure(&self) -> Option<Error> {
        lock(&self.shared.failure).clone()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        lock(mounts()).remove(&self.name);
    }
}

impl Shared {
    fn file_size(&self) -> u64 {
        self.source.page_count() * self.source.page_size() as u64
    }

    /// Fills `out` from byte `offset` of the image; `Ok(false)` when the image ends first (the
    /// rest of `out` is then zeros, as SQLite requires of a short read).
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<bool> {
        let ps = self.source.page_size() as u64;
        let size = self.file_size();
        let mut page = vec![0u8; ps as usize];
        let mut done = 0usize;
        while done < out.len() {
            let at = offset + done as u64;
            if at >= size {
                out[done..].fill(0);
                return Ok(false);
            }
            let number = at / ps + 1;
            let within = (at % ps) as usize;
            self.source.read_page(number, &mut page)?;
            if number == 1 {
                // Rollback-journal mode: see the module's comment.
                for b in &mut page[18..20] {
                    if *b == 2 {
                        *b = 1;
                    }
                }
            }
            let n = (ps as usize - within).min(out.len() - done);
            out[done..done + n].copy_from_slice(&page[within..within + n]);
            done += n;
        }
        Ok(true)
    }
}

/// Registers the VFS with SQLite, once per process.
fn register() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: sqlite3_vfs_find(NULL) returns SQLite's default VFS, which lives as long
            // as the process; it is only read here. The new VFS is leaked, so the pointer
            // SQLite keeps stays valid for the life of the process, and it is registered once.
            unsafe {
                let default = ffi::sqlite3_vfs_find(std::ptr::null());
                if default.is_null() {
                    return Err("SQLite has no default VFS".to_string());
                }
                let vfs = Box::new(ffi::sqlite3_vfs {
                    iVersion: 2,
                    szOsFile: (*default)
                        .szOsFile
                        .max(std::mem::size_of::<ImageFile>() as c_int),
                    mxPathname: (*default).mxPathname,
                    pNext: std::ptr::null_mut(),
                    zName: VFS_NAME.as_ptr(),
                    pAppData: default.cast(),
                    xOpen: Some(x_open),
                    xDelete: Some(x_delete),
                    xAccess: Some(x_access),
                    xFullPathname: Some(x_full_pathname),
                    xDlOpen: Some(x_dl_open),
                    xDlError: Some(x_dl_error),
                    xDlSym: Some(x_dl_sym),
                    xDlClose: Some(x_dl_close),
                    xRandomness: Some(x_randomness),
                    xSleep: Some(x_sleep),
                    xCurrentTime: Some(x_current_time),
                    xGetLastError: Some(x_get_last_error),
                    xCurrentTimeInt64: Some(x_current_time_int64),
                    xSetSystemCall: None,
                    xGetSystemCall: None,
                    xNextSystemCall: None,
                });
                let rc = ffi::sqlite3_vfs_register(Box::into_raw(vfs), 0);
                if rc != ffi::SQLITE_OK {
                    return Err(format!("SQLite refused the image VFS (code {rc})"));
                }
            }
            Ok(())
        })
        .clone()
        .map_err(|e| Error::Internal(e.into()))
}

/// The file object SQLite allocates (`szOsFile` bytes) and this VFS fills in.
#[repr(C)]
struct ImageFile {
    base: ffi::sqlite3_file,
    /// An `Arc<Shared>` turned into a raw pointer at open, given back at close.
    shared: *const Shared,
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_lock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

// Every callback below is called by SQLite with the pointers its VFS contract promises: the
// `sqlite3_vfs` registered above (whose `pAppData` is the default VFS), file objects of
// `szOsFile` bytes, and buffers of the sizes passed alongside. The SAFETY comments name what
// else each one relies on.

/// The default VFS this one delegates to.
///
/// SAFETY: `vfs` is the VFS registered in [`register`], whose `pAppData` is the default VFS.
unsafe fn default_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    (*vfs).pAppData.cast()
}

/// The mounted image a name refers to.
///
/// SAFETY: `name` is NULL or a NUL-terminated string.
unsafe fn mounted(name: *const c_char) -> Option<Arc<Shared>> {
    if name.is_null() {
        return None;
    }
    let name = CStr::from_ptr(name).to_str().ok()?;
    lock(mounts()).get(name).cloned()
}

/// Whether a name is one of this VFS's (a mounted image, or a journal SQLite derives from one).
///
/// SAFETY: `name` is NULL or a NUL-terminated string.
unsafe fn ours(name: *const c_char) -> bool {
    !name.is_null()
        && CStr::from_ptr(name)
            .to_bytes()
            .starts_with(PREFIX.as_bytes())
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: `name` is a filename SQLite passes to xOpen: NULL or NUL-terminated.
    let image = if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        mounted(name)
    } else {
        None
    };
    let Some(shared) = image else {
        if ours(name) {
            // A journal or WAL of an image: there is none, and nothing may be written.
            (*file).pMethods = std::ptr::null();
            return ffi::SQLITE_CANTOPEN;
        }
        let default = default_vfs(vfs);
        return match (*default).xOpen {
            // SAFETY: `file` has `szOsFile` bytes, at least the default VFS's own size.
            Some(open) => open(default, name, file, flags, out_flags),
            None => ffi::SQLITE_CANTOPEN,
        };
    };
    // SAFETY: `file` points to `szOsFile` writable bytes, at least `size_of::<ImageFile>()`,
    // suitably aligned by SQLite's allocator; the Arc is given back in `x_close`.
    std::ptr::write(
        file.cast::<ImageFile>(),
        ImageFile {
            base: ffi::sqlite3_file { pMethods: &METHODS },
            shared: Arc::into_raw(shared),
        },
    );
    if !out_flags.is_null() {
        *out_flags = ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_MAIN_DB;
    }
    ffi::SQLITE_OK
}

/// The image behind an open file.
///
/// SAFETY: `file` was opened by `x_open` with [`METHODS`] and not yet closed.
unsafe fn image<'a>(file: *mut ffi::sqlite3_file) -> &'a Shared {
    &*(*file.cast::<ImageFile>()).shared
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let f = file.cast::<ImageFile>();
    if !(*f).shared.is_null() {
        // SAFETY: the pointer came from `Arc::into_raw` in `x_open` and is given back once.
        drop(Arc::from_raw((*f).shared));
        (*f).shared = std::ptr::null();
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let shared = image(file);
    // SAFETY: SQLite passes a buffer of `amount` writable bytes.
    let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), amount.max(0) as usize);
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shared.read(offset.max(0) as u64, out)
    }));
    match read {
        Ok(Ok(true)) => ffi::SQLITE_OK,
        Ok(Ok(false)) => ffi::SQLITE_IOERR_SHORT_READ,
        Ok(Err(e)) => {
            lock(&shared.failure).get_or_insert(e);
            ffi::SQLITE_IOERR_READ
        }
        Err(_) => {
            lock(&shared.failure)
                .get_or_insert(Error::Internal("reading a snapshot page panicked".into()));
            ffi::SQLITE_IOERR_READ
        }
    }
}

unsafe extern "C" fn x_write(
    _file: *mut ffi::sqlite3_file,
    _buf: *const c_void,
    _amount: c_int,
    _offset: ffi::sqlite3_int64,
) -> c_int {
    ffi::SQLITE_READONLY
}

unsafe extern "C" fn x_truncate(_file: *mut ffi::sqlite3_file, _size: ffi::sqlite3_int64) -> c_int {
    ffi::SQLITE_READONLY
}

unsafe extern "C" fn x_sync(_file: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    *size = image(file).file_size() as ffi::sqlite3_int64;
    ffi::SQLITE_OK
}

/// Locks and unlocks: an immutable image needs none.
unsafe extern "C" fn x_lock(_file: *mut ffi::sqlite3_file, _level: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_check_reserved_lock(
    _file: *mut ffi::sqlite3_file,
    out: *mut c_int,
) -> c_int {
    *out = 0;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_control(
    _file: *mut ffi::sqlite3_file,
    _op: c_int,
    _arg: *mut c_void,
) -> c_int {
    ffi::SQLITE_NOTFOUND
}

unsafe extern "C" fn x_sector_size(_file: *mut ffi::sqlite3_file) -> c_int {
    4096
}

unsafe extern "C" fn x_device_characteristics(_file: *mut ffi::sqlite3_file) -> c_int {
    ffi::SQLITE_IOCAP_IMMUTABLE
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    if ours(name) {
        return ffi::SQLITE_OK;
    }
    let default = default_vfs(vfs);
    match (*default).xDelete {
        Some(f) => f(default, name, sync_dir),
        None => ffi::SQLITE_IOERR_DELETE,
    }
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    if ours(name) {
        // A mounted image exists and reads; nothing derived from one (journal, WAL) exists.
        *out = c_int::from(mounted(name).is_some() && flags != ffi::SQLITE_ACCESS_READWRITE);
        return ffi::SQLITE_OK;
    }
    let default = default_vfs(vfs);
    match (*default).xAccess {
        Some(f) => f(default, name, flags, out),
        None => ffi::SQLITE_IOERR_ACCESS,
    }
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n_out: c_int,
    out: *mut c_char,
) -> c_int {
    if ours(name) {
        // SAFETY: `out` has `n_out` bytes; the name and its NUL are copied only if they fit.
        let bytes = CStr::from_ptr(name).to_bytes_with_nul();
        if bytes.len() > n_out.max(0) as usize {
            return ffi::SQLITE_CANTOPEN;
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), out, bytes.len());
        return ffi::SQLITE_OK;
    }
    let default = default_vfs(vfs);
    match (*default).xFullPathname {
        Some(f) => f(default, name, n_out, out),
        None => ffi::SQLITE_CANTOPEN,
    }
}

unsafe extern "C" fn x_dl_open(vfs: *mut ffi::sqlite3_vfs, name: *const c_char) -> *mut c_void {
    let default = default_vfs(vfs);
    match (*default).xDlOpen {
        Some(f) => f(default, name),
        None => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn x_dl_error(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    let default = default_vfs(vfs);
    if let Some(f) = (*default).xDlError {
        f(default, n, out)
    }
}

type DlSym = unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char);

unsafe extern "C" fn x_dl_sym(
    vfs: *mut ffi::sqlite3_vfs,
    handle: *mut c_void,
    symbol: *const c_char,
) -> Option<DlSym> {
    let default = default_vfs(vfs);
    (*default).xDlSym.and_then(|f| f(default, handle, symbol))
}

unsafe extern "C" fn x_dl_close(vfs: *mut ffi::sqlite3_vfs, handle: *mut c_void) {
    let default = default_vfs(vfs);
    if let Some(f) = (*default).xDlClose {
        f(default, handle)
    }
}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let default = default_vfs(vfs);
    match (*default).xRandomness {
        Some(f) => f(default, n, out),
        None => 0,
    }
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    let default = default_vfs(vfs);
    match (*default).xSleep {
        Some(f) => f(default, micros),
        None => 0,
    }
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let default = default_vfs(vfs);
    match (*default).xCurrentTime {
        Some(f) => f(default, out),
        None => ffi::SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let default = default_vfs(vfs);
    match (*default).xGetLastError {
        Some(f) => f(default, n, out),
        None => 0,
    }
}

unsafe extern "C" fn x_current_time_int64(
    vfs: *mut ffi::sqlite3_vfs,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    let default = default_vfs(vfs);
    match (*default).xCurrentTimeInt64 {
        Some(f) => f(default, out),
        None => ffi::SQLITE_ERROR,
    }
}

#[cfg(test)]
mod tests;
