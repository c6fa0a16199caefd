//! Job history: one row per backup, copy or other job, so an operator can see what ran and why
//! it failed without keeping the logs.

use super::{now, State};
use crate::error::Result;
use rusqlite::params;

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
