//! A writer that crashes in the middle of a large transaction on a rollback-journal database,
//! leaving a hot journal: a child process (the test binary itself, running an ignored test
//! that calls [`writer`]) deletes every invoice line with a page cache too small to hold the
//! change, so changed pages reach the database file before the commit, and is killed with
//! SIGKILL once they have.
//!
//! A test file that uses [`leave_hot_journal`] declares the child's test:
//!
//! ```ignore
//! #[test]
//! #[ignore = "the crashing writer of common::crashed_writer, run as a child process"]
//! fn crashing_writer() {
//!     common::crashed_writer::writer();
//! }
//! ```

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ENV: &str = "IVAULT_TEST_CRASHING_WRITER";
const READY: &str = "crashing writer: pages written, commit pending";

/// The journal beside `db`.
pub fn journal(db: &Path) -> PathBuf {
    let mut p = OsString::from(db.as_os_str());
    p.push("-journal");
    PathBuf::from(p)
}

/// Runs the crashing writer on `db` (test `child_test` of this test binary) and returns once
/// it has been killed, leaving `db` half-changed and its hot journal beside it.
pub fn leave_hot_journal(db: &Path, child_test: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe)
        .args(["--exact", child_test, "--ignored", "--nocapture"])
        .env(ENV, db)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the writer");
    let stdout = child.stdout.take().expect("the writer's stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l == READY);
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap the writer");
    assert!(ready, "the writer stopped before its pages were written");
    let len = std::fs::metadata(journal(db)).map(|m| m.len()).unwrap_or(0);
    assert!(len > 0, "no journal was left beside {}", db.display());
}

/// The child's side; does nothing unless started by [`leave_hot_journal`].
pub fn writer() {
    let Some(db) = std::env::var_os(ENV) else {
        return;
    };
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE; PRAGMA cache_size = 8;
         BEGIN IMMEDIATE; DELETE FROM invoice_items;",
    )
    .expect("the uncommitted change");
    println!("{READY}");
    std::io::stdout().flush().expect("flush");
    std::thread::sleep(std::time::Duration::from_secs(600));
}
