//! Paths handed to SQLite. The bundled SQLite is built with URI filenames enabled, so a name
//! that begins with `file:` is parsed as a URI (`?` starts parameters, `#` a fragment, `%`
//! an escape) whatever flags the connection is opened with. These helpers make SQLite open
//! exactly the file the path names, whatever its bytes: non-ASCII, spaces, `#`, `?`, `%`.

use std::borrow::Cow;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Opens the database file at `path` read-only and `immutable`: SQLite takes no locks and
/// creates no journal beside it. For files nothing else writes (restored and staged copies).
pub fn open_immutable(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    rusqlite::Connection::open_with_flags(
        sqlite_uri(path, "immutable=1"),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// `path` as a filename SQLite takes literally: a relative path that begins with `file:` is
/// given a leading `./`, which keeps it from being read as a URI. Anything else is unchanged.
pub fn sqlite_filename(path: &Path) -> Cow<'_, Path> {
    if path.as_os_str().as_bytes().starts_with(b"file:") {
        Cow::Owned(Path::new(".").join(path))
    } else {
        Cow::Borrowed(path)
    }
}

/// A `file:` URI naming `path` (made absolute) followed by `?params` (such as `immutable=1`)
/// when `params` is not empty. Every byte of the path other than an unreserved character or
/// `/` is percent-encoded, so the URI is ASCII and SQLite decodes it back to the same bytes.
pub fn sqlite_uri(path: &Path, params: &str) -> String {
    let abs = absolute(path);
    let mut uri = String::from("file://");
    for &b in abs.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~') {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    if !params.is_empty() {
        uri.push('?');
        uri.push_str(params);
    }
    uri
}

/// The canonical path, or for a path that cannot be resolved (it does not exist yet), the
/// path joined to the working directory.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn every_byte_outside_the_unreserved_set_is_encoded() {
        let p = Path::new("/srv/北京 分公司#1?%/a+b.sqlite");
        assert_eq!(
            sqlite_uri(p, "immutable=1"),
            "file:///srv/%E5%8C%97%E4%BA%AC%20%E5%88%86%E5%85%AC%E5%8F%B8%231%3F%25/a%2Bb.sqlite?immutable=1"
        );
        let raw = Path::new(OsStr::from_bytes(b"/x/\xff\xfe.db"));
        assert_eq!(sqlite_uri(raw, ""), "file:///x/%FF%FE.db");
    }

    #[test]
    fn only_relative_paths_that_look_like_uris_change() {
        assert_eq!(
            sqlite_filename(Path::new("file:db?x=1")),
            Path::new("./file:db?x=1")
        );
        assert_eq!(
            sqlite_filename(Path::new("db#1.sqlite")),
            Path::new("db#1.sqlite")
        );
        assert_eq!(sqlite_filename(Path::new("/file:x")), Path::new("/file:x"));
    }

    #[test]
    fn sqlite_opens_the_file_the_uri_names() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("北京 分公司#1?%");
        std::fs::create_dir(&sub).unwrap();
        let db = sub.join("a b#?%.sqlite");
        rusqlite::Connection::open(sqlite_filename(&db))
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (42);")
            .unwrap();
        let conn = rusqlite::Connection::open_with_flags(
            sqlite_uri(&db, "immutable=1"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap();
        let x: i64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 42);
    }
}
