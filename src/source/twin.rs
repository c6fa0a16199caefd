//! A second connection that reads exactly the snapshot a first one's read transaction reads,
//! so SQLite's check and the invoice facts run beside the page read instead of after it: on a
//! large database the check alone costs as much as the read.
//!
//! Only WAL mode is shared this way. SQLite's snapshot API (`sqlite3_snapshot_get` and
//! `sqlite3_snapshot_open`, compiled in with SQLITE_ENABLE_SNAPSHOT, see .cargo/config.toml)
//! hands the first connection's snapshot to the second. It has no snapshot to hand over while
//! no transaction has been written to the WAL since it was created (a database nobody has
//! changed since it was last opened); then the first connection reads the database file alone,
//! which no checkpoint can change under it, and the second reads the same exactly when it also
//! finds no transaction in the WAL. Anything else gives no twin, and the caller measures on the
//! first connection after the read, as before.

use rusqlite::{ffi, Connection};
use std::path::Path;
use std::time::Duration;

/// A connection reading the snapshot `conn` reads, or `None` where that cannot be proved.
/// `conn` must be in WAL mode, inside a read transaction that has read something.
pub(super) fn twin_of(
    conn: &Connection,
    path: &Path,
    lock_timeout: Duration,
) -> Option<Connection> {
    let twin = super::open(path, lock_timeout).ok()?;
    // SQLite opens the WAL on a connection's first read; a snapshot can be opened only then.
    let read = |c: &Connection| c.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()));
    read(&twin).ok()?;
    twin.execute_batch("BEGIN").ok()?;
    match snapshot_of(conn) {
        Some(snapshot) => {
            // SAFETY: `twin` is an open connection owned here, in a transaction that has not
            // read yet, as `sqlite3_snapshot_open` requires; `snapshot` is live (`Snapshot`
            // frees it once, on drop, after this call).
            let rc =
                unsafe { ffi::sqlite3_snapshot_open(twin.handle(), MAIN.as_ptr(), snapshot.0) };
            (rc == ffi::SQLITE_OK).then_some(twin)
        }
        None => {
            // No snapshot to hand over: the WAL held no transaction when `conn` began. The twin
            // reads the same if it still holds none once the twin's own read has begun.
            read(&twin).ok()?;
            snapshot_of(&twin).is_none().then_some(twin)
        }
    }
}

const MAIN: &std::ffi::CStr = c"main";

/// A snapshot handle SQLite allocated, freed on drop.
struct Snapshot(*mut ffi::sqlite3_snapshot);

impl Drop for Snapshot {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful `sqlite3_snapshot_get` and is freed only
        // here, once.
        unsafe { ffi::sqlite3_snapshot_free(self.0) }
    }
}

/// The snapshot `conn`'s read transaction reads, if SQLite can name it.
fn snapshot_of(conn: &Connection) -> Option<Snapshot> {
    let mut snapshot = std::ptr::null_mut();
    // SAFETY: `conn` is an open connection borrowed for the call, and `snapshot` a valid place
    // for SQLite to write the pointer it allocates; on failure it writes nothing to free.
    let rc = unsafe { ffi::sqlite3_snapshot_get(conn.handle(), MAIN.as_ptr(), &mut snapshot) };
    (rc == ffi::SQLITE_OK && !snapshot.is_null()).then_some(Snapshot(snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    fn invoices(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM invoice", [], |r| r.get(0))
            .unwrap()
    }

    /// A WAL database with `rows` invoices, every connection to it closed (so its WAL is gone).
    fn database(rows: i64) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("books.sqlite");
        let w = Connection::open(&path).unwrap();
        w.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE invoice(id INTEGER PRIMARY KEY, total INTEGER);",
        )
        .unwrap();
        for i in 0..rows {
            w.execute("INSERT INTO invoice(total) VALUES (?1)", [i])
                .unwrap();
        }
        drop(w);
        (dir, path)
    }

    fn reading(path: &Path) -> Connection {
        let conn = super::super::open(path, WAIT).unwrap();
        conn.execute_batch("BEGIN").unwrap();
        invoices(&conn);
        conn
    }

    #[test]
    fn the_twin_sees_the_first_snapshot_while_a_writer_commits() {
        let (_dir, path) = database(10);
        let writer = Connection::open(&path).unwrap();
        writer
            .execute("INSERT INTO invoice(total) VALUES (1)", [])
            .unwrap();
        // The WAL now holds a transaction, so the snapshot itself is handed over.
        let first = reading(&path);
        writer
            .execute("INSERT INTO invoice(total) VALUES (2)", [])
            .unwrap();
        let twin = twin_of(&first, &path, WAIT).expect("a twin");
        assert_eq!(invoices(&twin), 11);
        assert_eq!(invoices(&first), 11);
        assert_eq!(invoices(&writer), 12);
    }

    #[test]
    fn an_untouched_wal_gives_a_twin_only_while_nobody_commits() {
        let (_dir, path) = database(10);
        let first = reading(&path);
        let twin = twin_of(&first, &path, WAIT).expect("a twin");
        assert_eq!(invoices(&twin), 10);
        drop(twin);

        let writer = Connection::open(&path).unwrap();
        writer
            .execute("INSERT INTO invoice(total) VALUES (1)", [])
            .unwrap();
        assert!(twin_of(&first, &path, WAIT).is_none());
        assert_eq!(invoices(&first), 10);
    }
}
