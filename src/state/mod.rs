//! Local state: a SQLite database of job history, pinned repository recipients and a cache of
//! which blobs each repository holds (so a backup host without the private key can still
//! deduplicate). Never needed to restore; if it is lost, the next backup stores pages again.
//!
//! This file opens the database; each concern lives in its own file as an `impl State` block,
//! and `schema` brings the tables up to date.

mod audit;
mod blobs;
mod drills;
mod jobs;
mod schedule;
mod schema;
mod snapshots;
#[cfg(test)]
mod tests;
mod trust;
mod unindexed;

pub use audit::PeriodRestoreRow;
pub use blobs::CachedPack;
pub use drills::DrillRow;
pub use jobs::JobRecord;
pub use jobs::{JobRow, LatestJobs};
pub use unindexed::UnindexedPack;

use crate::error::{Error, Hint, Hinted, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const STATE_DIR_ENV: &str = "IVAULT_STATE_DIR";

/// Writers (a timer's backup and a manual copy) may overlap; waiting beats failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct State {
    conn: Connection,
    path: PathBuf,
}

/// `$IVAULT_STATE_DIR`, else `$XDG_STATE_HOME/ivault`, else `~/.local/state/ivault`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(STATE_DIR_ENV) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("ivault");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/ivault")
}

impl State {
    pub fn open(dir: &Path) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                Error::Internal(
                    format!("cannot create state directory {}: {e}", dir.display())
                        .hinted(Hint::StateDirectory),
                )
            })?;
        let path = dir.join("state.sqlite");
        let conn = Connection::open_with_flags(
            crate::paths::sqlite_filename(&path),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| state_error(&path, e))?;
        let mut st = State { conn, path };
        st.conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| st.err(e))?;
        // A database of a newer ivault is refused before anything is written to it, even the
        // journal mode, so that the newer ivault finds it as it left it.
        schema::refuse_newer(&st.conn, &st.path)?;
        st.use_wal()?;
        schema::migrate(&mut st.conn, &st.path)?;
        Ok(st)
    }

    /// Runs `f` in one transaction, so that the many small writes of a batch of backups share
    /// one commit (and one sync). `f` handles the errors of its own writes; what it wrote
    /// is committed whatever it returns. The error is the commit's.
    pub fn in_transaction<T>(&self, f: impl FnOnce(&State) -> T) -> Result<T> {
        // A transaction that cannot begin (the database stayed busy past the timeout) still
        // runs `f`, its writes one by one: each says on its own whether it failed, and no
        // caller's work is dropped unsaid.
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::warn!("{}; writing without a transaction", self.err(e));
            return Ok(f(self));
        }
        let out = f(self);
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => Ok(out),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(self.err(e))
            }
        }
    }

    /// Another connection to the same state database, for a thread of the same job.
    pub fn reopen(&self) -> Result<Self> {
        match self.path.parent() {
            Some(dir) => State::open(dir),
            None => State::open(Path::new(".")),
        }
    }

    /// Switches the database to WAL once. The switch needs an exclusive lock, and SQLite
    /// answers "locked" at once, without waiting, while another connection is reading (as
    /// several processes opening a fresh state at once are), so it is retried within the busy
    /// timeout; a database already in WAL needs no switch.
    fn use_wal(&self) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            let mode: String = self
                .conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .map_err(|e| self.err(e))?;
            if mode.eq_ignore_ascii_case("wal") {
                return Ok(());
            }
            match self.conn.execute_batch("PRAGMA journal_mode = WAL;") {
                Ok(()) => return Ok(()),
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => return Err(self.err(e)),
            }
        }
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        state_error(&self.path, e)
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn state_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::Internal(format!(
        "state database {} failed ({e}); it is only a cache and job log: move it away to start afresh",
        path.display()
    ).into())
}
