use super::*;
use rusqlite::Connection;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::AtomicUsize;

/// The pages of a real database file, counting the pages read and failing on one if told to.
struct FilePages {
    file: std::fs::File,
    page_size: u32,
    page_count: u64,
    reads: Arc<AtomicUsize>,
    fail_page: Option<u64>,
}

impl FilePages {
    fn of(path: &Path) -> FilePages {
        let conn = Connection::open(path).unwrap();
        let page_size: u32 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        drop(conn);
        let file = std::fs::File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        FilePages {
            file,
            page_size,
            page_count: len / page_size as u64,
            reads: Arc::new(AtomicUsize::new(0)),
            fail_page: None,
        }
    }
}

impl PageSource for FilePages {
    fn page_size(&self) -> u32 {
        self.page_size
    }
    fn page_count(&self) -> u64 {
        self.page_count
    }
    fn read_page(&self, number: u64, out: &mut [u8]) -> Result<()> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if Some(number) == self.fail_page {
            return Err(Error::Integrity(format!("page {number} is damaged").into()));
        }
        self.file
            .read_exact_at(out, (number - 1) * self.page_size as u64)
            .map_err(|e| Error::Internal(e.to_string().into()))
    }
}

/// Every row of a query, as text, in order.
fn rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

/// A WAL database: a WITHOUT ROWID table with a composite text key, a secondary index, and
/// rows large enough to need overflow pages.
fn wal_database(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("wal.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE \"Invoice List\" (code TEXT, no TEXT, day TEXT, cents INTEGER, note TEXT,
                                       PRIMARY KEY (code, no)) WITHOUT ROWID;
         CREATE INDEX by_day ON \"Invoice List\"(day);",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..3000 {
        tx.execute(
            "INSERT INTO \"Invoice List\" VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                format!("C{}", i % 7),
                format!("{i:08}"),
                format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
                i * 37,
                "x".repeat(if i % 50 == 0 { 9000 } else { 20 }),
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    path
}

/// A rollback-journal database with 1 KiB pages, a rowid table and REAL amounts.
fn rollback_database(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("rollback.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA page_size = 1024; PRAGMA journal_mode = DELETE;
         CREATE TABLE inv (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER, amount REAL);",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..5000i64 {
        tx.execute(
            "INSERT INTO inv (at, amount) VALUES (?1, ?2)",
            rusqlite::params![1_700_000_000 + i * 3600, i as f64 * 1.25],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    drop(conn);
    path
}

#[test]
fn queries_over_an_image_equal_queries_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (path, queries) in [
        (
            wal_database(dir.path()),
            vec![
                "SELECT * FROM \"Invoice List\" ORDER BY code, no",
                "SELECT count(*), sum(cents) FROM \"Invoice List\" WHERE day BETWEEN '2024-03-01' AND '2024-03-31'",
                "PRAGMA integrity_check",
            ],
        ),
        (
            rollback_database(dir.path()),
            vec![
                "SELECT * FROM inv ORDER BY id",
                "SELECT name, seq FROM sqlite_sequence",
                "PRAGMA integrity_check",
            ],
        ),
    ] {
        let direct = Connection::open(&path).unwrap();
        let mounted = Mounted::new(Box::new(FilePages::of(&path))).unwrap();
        let image = mounted.open().unwrap();
        for q in queries {
            let want = rows(&direct, q);
            assert!(!want.is_empty());
            assert_eq!(rows(&image, q), want, "{q} on {}", path.display());
        }
        assert!(mounted.failure().is_none());
    }
}

#[test]
fn a_query_reads_only_the_pages_it_touches() {
    let dir = tempfile::tempdir().unwrap();
    let path = wal_database(dir.path());
    let pages = FilePages::of(&path);
    let (reads, total) = (pages.reads.clone(), pages.page_count);
    let mounted = Mounted::new(Box::new(pages)).unwrap();
    let image = mounted.open().unwrap();
    let one = rows(
        &image,
        "SELECT cents FROM \"Invoice List\" WHERE code = 'C3' AND no = '00000010'",
    );
    assert_eq!(one, vec!["Integer(370)".to_string()]);
    let read = reads.load(Ordering::Relaxed) as u64;
    assert!(
        read * 10 < total,
        "{read} of {total} pages read for one row"
    );
}

#[test]
fn attached_beside_a_live_database_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = rollback_database(dir.path());
    let mounted = Mounted::new(Box::new(FilePages::of(&path))).unwrap();
    let live = Connection::open_with_flags(
        dir.path().join("live.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
            | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    live.execute("ATTACH DATABASE ?1 AS snap", [mounted.uri()])
        .unwrap();
    live.execute_batch("CREATE TABLE inv AS SELECT * FROM snap.inv WHERE id <= 10")
        .unwrap();
    let n: i64 = live
        .query_row("SELECT count(*) FROM inv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 10);
    let err = live.execute("DELETE FROM snap.inv", []).unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
    // The image's bytes are unchanged: still every row.
    let n: i64 = live
        .query_row("SELECT count(*) FROM snap.inv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 5000);
    // A connection keeps its image after the mount is dropped.
    drop(mounted);
    let n: i64 = live
        .query_row("SELECT count(*) FROM snap.inv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 5000);
}

#[test]
fn a_page_that_cannot_be_read_fails_the_query_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = rollback_database(dir.path());
    let mut pages = FilePages::of(&path);
    pages.fail_page = Some(pages.page_count - 1);
    let mounted = Mounted::new(Box::new(pages)).unwrap();
    let image = mounted.open().unwrap();
    let err = image
        .query_row("SELECT sum(amount) FROM inv", [], |r| r.get::<_, f64>(0))
        .unwrap_err();
    assert!(err.to_string().contains("I/O"), "{err}");
    let why = mounted.failure().expect("the failure is kept");
    assert!(why.message().contains("is damaged"), "{why:?}");
}

#[test]
fn an_unmounted_name_does_not_open() {
    let mounted = Mounted::new(Box::new(FilePages {
        file: tempfile::tempfile().unwrap(),
        page_size: 4096,
        page_count: 0,
        reads: Arc::default(),
        fail_page: None,
    }))
    .unwrap();
    let uri = mounted.uri();
    drop(mounted);
    let opened = Connection::open_with_flags(
        uri,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .and_then(|c| {
        c.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
    });
    assert!(opened.is_err());
}
