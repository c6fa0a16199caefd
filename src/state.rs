//! Local state: a SQLite database of job history, pinned repository recipients and a cache of
//! which blobs each repository holds (so a backup host without the private key can still
//! deduplicate). Never needed to restore; if it is lost, the next backup stores pages again.

use crate::error::{Error, Result};
use crate::repo::binary::Hash;
use crate::repo::index::PackRecord;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const STATE_DIR_ENV: &str = "IVAULT_STATE_DIR";

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

/// How a job ended, for the history.
#[derive(Debug, Default)]
pub struct JobRecord {
    pub outcome: String,
    pub bytes_read: u64,
    pub bytes_stored: u64,
    pub snapshot_id: Option<String>,
    pub error: Option<String>,
}

impl State {
    pub fn open(dir: &Path) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                Error::Internal(format!(
                    "cannot create state directory {}: {e}; pass --state-dir with a writable directory",
                    dir.display()
                ))
            })?;
        let path = dir.join("state.sqlite");
        let conn = Connection::open(&path).map_err(|e| state_error(&path, e))?;
        let st = State { conn, path };
        st.conn
            .busy_timeout(Duration::from_secs(30))
            .map_err(|e| st.err(e))?;
        st.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE IF NOT EXISTS repos (
                   repo_id TEXT PRIMARY KEY, location TEXT NOT NULL,
                   recipients TEXT NOT NULL, pinned_at TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS packs (
                   repo_id TEXT NOT NULL, pack_id TEXT NOT NULL, blobs BLOB NOT NULL,
                   PRIMARY KEY (repo_id, pack_id)) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS last_snapshots (
                   repo_id TEXT NOT NULL, source TEXT NOT NULL, snapshot_id TEXT NOT NULL,
                   PRIMARY KEY (repo_id, source));
                 CREATE TABLE IF NOT EXISTS copies (
                   to_repo_id TEXT NOT NULL, from_snapshot_id TEXT NOT NULL,
                   to_snapshot_id TEXT NOT NULL,
                   PRIMARY KEY (to_repo_id, from_snapshot_id));
                 CREATE TABLE IF NOT EXISTS jobs (
                   id INTEGER PRIMARY KEY, kind TEXT NOT NULL, source TEXT, target TEXT,
                   started TEXT NOT NULL, ended TEXT, outcome TEXT NOT NULL DEFAULT 'running',
                   bytes_read INTEGER, bytes_stored INTEGER, snapshot_id TEXT, error TEXT);",
            )
            .map_err(|e| st.err(e))?;
        Ok(st)
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        state_error(&self.path, e)
    }

    /// Trusts a repository's recipients on first sight and refuses them if they change later
    /// (someone with write access to the target could otherwise add their own key).
    pub fn pin_recipients(
        &self,
        repo_id: &str,
        location: &str,
        recipients: &[String],
        accept: bool,
    ) -> Result<()> {
        let mut sorted = recipients.to_vec();
        sorted.sort();
        let joined = sorted.join("\n");
        let pinned: Option<String> = self
            .conn
            .query_row(
                "SELECT recipients FROM repos WHERE repo_id = ?1",
                [repo_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match pinned {
            Some(p) if p == joined => Ok(()),
            Some(_) if !accept => Err(Error::Key(format!(
                "the recipients recorded in repository {location} changed since this host first used it; if you changed them on purpose, run the backup once with --accept-recipients, otherwise treat the repository as tampered with"
            ))),
            _ => {
                self.conn
                    .execute(
                        "INSERT INTO repos (repo_id, location, recipients, pinned_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (repo_id) DO UPDATE SET location = ?2, recipients = ?3, pinned_at = ?4",
                        params![repo_id, location, joined, now()],
                    )
                    .map_err(|e| self.err(e))?;
                Ok(())
            }
        }
    }

    /// Blobs known to be in the repository. Packs the cache knows but the repository no longer
    /// lists are forgotten first, so a stale cache never leads to referencing a missing blob.
    pub fn known_blobs(
        &self,
        repo_id: &str,
        existing_packs: &HashSet<String>,
    ) -> Result<HashSet<Hash>> {
        let mut stmt = self
            .conn
            .prepare("SELECT pack_id, blobs FROM packs WHERE repo_id = ?1")
            .map_err(|e| self.err(e))?;
        let mut known = HashSet::new();
        let mut gone = Vec::new();
        let rows = stmt
            .query_map([repo_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (pack, blobs) = row.map_err(|e| self.err(e))?;
            if !existing_packs.contains(&pack) {
                gone.push(pack);
                continue;
            }
            for chunk in blobs.chunks_exact(32) {
                let mut h = [0u8; 32];
                h.copy_from_slice(chunk);
                known.insert(h);
            }
        }
        for pack in gone {
            tracing::info!("pack {pack} is no longer in the repository; forgetting its blobs");
            self.conn
                .execute(
                    "DELETE FROM packs WHERE repo_id = ?1 AND pack_id = ?2",
                    params![repo_id, pack],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(known)
    }

    /// Records packs whose index has been written.
    pub fn record_packs(&mut self, repo_id: &str, packs: &[PackRecord]) -> Result<()> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| state_error(&self.path, e))?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT OR REPLACE INTO packs (repo_id, pack_id, blobs) VALUES (?1, ?2, ?3)",
                )
                .map_err(|e| state_error(&self.path, e))?;
            for p in packs {
                let mut blobs = Vec::with_capacity(p.table.blob_count() * 32);
                for f in &p.table.frames {
                    for (id, _) in &f.blobs {
                        blobs.extend_from_slice(id);
                    }
                }
                stmt.execute(params![repo_id, hex::encode(p.id), blobs])
                    .map_err(|e| state_error(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| state_error(&self.path, e))
    }

    pub fn last_snapshot(&self, repo_id: &str, source: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT snapshot_id FROM last_snapshots WHERE repo_id = ?1 AND source = ?2",
                [repo_id, source],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_last_snapshot(&self, repo_id: &str, source: &str, snapshot: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO last_snapshots (repo_id, source, snapshot_id) VALUES (?1, ?2, ?3)",
                [repo_id, source, snapshot],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The snapshot an earlier `ivault copy` made of `from_snapshot` in repository `to_repo_id`.
    pub fn copied_snapshot(&self, to_repo_id: &str, from_snapshot: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT to_snapshot_id FROM copies WHERE to_repo_id = ?1 AND from_snapshot_id = ?2",
                [to_repo_id, from_snapshot],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn record_copy(
        &self,
        to_repo_id: &str,
        from_snapshot: &str,
        to_snapshot: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO copies (to_repo_id, from_snapshot_id, to_snapshot_id) VALUES (?1, ?2, ?3)",
                [to_repo_id, from_snapshot, to_snapshot],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn job_start(&self, kind: &str, source: Option<&str>, target: Option<&str>) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO jobs (kind, source, target, started) VALUES (?1, ?2, ?3, ?4)",
                params![kind, source, target, now()],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn job_finish(&self, id: i64, rec: &JobRecord) -> Result<()> {
        self.conn
            .execute(
                "UPDATE jobs SET ended = ?2, outcome = ?3, bytes_read = ?4, bytes_stored = ?5,
                   snapshot_id = ?6, error = ?7 WHERE id = ?1",
                params![
                    id,
                    now(),
                    rec.outcome,
                    rec.bytes_read as i64,
                    rec.bytes_stored as i64,
                    rec.snapshot_id,
                    rec.error
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn state_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::Internal(format!(
        "state database {} failed ({e}); it is only a cache and job log: move it away to start afresh",
        path.display()
    ))
}
