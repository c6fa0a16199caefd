//! Job history: one row per backup, copy or other job, so an operator can see what ran and why
//! it failed without keeping the logs.

use super::{now, State};
use crate::error::Result;
use crate::host::{self, Liveness};
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
    /// Records a job as `running` in this process, after marking jobs whose process is gone
    /// as abandoned.
    pub fn job_start(&self, kind: &str, source: Option<&str>, target: Option<&str>) -> Result<i64> {
        self.abandon_dead_jobs()?;
        let pid = std::process::id();
        self.conn
            .execute(
                "INSERT INTO jobs (kind, source, target, started, host, pid, pid_started)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    kind,
                    source,
                    target,
                    now(),
                    host::name(),
                    pid,
                    host::process_start(pid).map(|t| t as i64)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Marks as `abandoned` the jobs still `running` whose process on this host has ended (it
    /// was killed, or the machine went down), and returns how many. A job of another host,
    /// whose process cannot be asked about, is left alone, as is one whose process still runs
    /// (this one's own jobs are not even asked about: a pass may have hundreds running).
    pub fn abandon_dead_jobs(&self) -> Result<usize> {
        let running: Vec<(i64, u32, Option<i64>)> = self
            .conn
            .prepare(
                "SELECT id, pid, pid_started FROM jobs
                 WHERE outcome = 'running' AND host = ?1 AND pid IS NOT NULL AND pid != ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![host::name(), std::process::id()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            })
            .map_err(|e| self.err(e))?;
        let mut abandoned = 0;
        for (id, pid, started) in running {
            let started = started.and_then(|t| u64::try_from(t).ok());
            if host::liveness(pid, started) != Liveness::Gone {
                continue;
            }
            let error = format!(
                "the process that ran it (pid {pid}) ended before the job finished: it was killed or the machine stopped"
            );
            // Only if still running: the job may have finished since it was read.
            abandoned += self
                .conn
                .execute(
                    "UPDATE jobs SET outcome = 'abandoned', error = ?2
                     WHERE id = ?1 AND outcome = 'running'",
                    params![id, error],
                )
                .map_err(|e| self.err(e))?;
        }
        if abandoned > 0 {
            tracing::info!("marked {abandoned} jobs of ended processes as abandoned");
        }
        Ok(abandoned)
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

/// A job as the history lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub source: Option<String>,
    pub target: Option<String>,
    pub started: String,
    pub ended: Option<String>,
    /// `running`, `ok`, `failed` or `abandoned`.
    pub outcome: String,
    pub bytes_read: Option<u64>,
    pub bytes_stored: Option<u64>,
    pub snapshot_id: Option<String>,
    pub error: Option<String>,
}

const JOB_COLUMNS: &str = "id, kind, source, target, started, ended, outcome, bytes_read,
    bytes_stored, snapshot_id, error";

fn job_row(r: &rusqlite::Row) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        source: r.get(2)?,
        target: r.get(3)?,
        started: r.get(4)?,
        ended: r.get(5)?,
        outcome: r.get(6)?,
        bytes_read: r.get::<_, Option<i64>>(7)?.map(|n| n as u64),
        bytes_stored: r.get::<_, Option<i64>>(8)?.map(|n| n as u64),
        snapshot_id: r.get(9)?,
        error: r.get(10)?,
    })
}

/// The latest job of one kind for one source and target, and the latest that succeeded.
#[derive(Debug, Clone)]
pub struct LatestJobs {
    pub source: Option<String>,
    pub target: Option<String>,
    pub last: JobRow,
    pub last_ok: Option<JobRow>,
}

impl State {
    /// The last `limit` jobs, newest first (jobs of ended processes marked abandoned first).
    pub fn jobs(&self, limit: usize) -> Result<Vec<JobRow>> {
        self.abandon_dead_jobs()?;
        self.conn
            .prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1"
            ))
            .and_then(|mut s| s.query_map([limit as i64], job_row)?.collect())
            .map_err(|e| self.err(e))
    }

    /// For each source and target that ran jobs of `kind`: the latest, and the latest that
    /// succeeded.
    pub fn latest_jobs(&self, kind: &str) -> Result<Vec<LatestJobs>> {
        self.abandon_dead_jobs()?;
        // (source, target, latest id, latest successful id)
        type Pair = (Option<String>, Option<String>, i64, Option<i64>);
        let pairs: Vec<Pair> = self
            .conn
            .prepare(
                "SELECT source, target, max(id), max(CASE WHEN outcome = 'ok' THEN id END)
                 FROM jobs WHERE kind = ?1 GROUP BY source, target ORDER BY source, target",
            )
            .and_then(|mut s| {
                s.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(|e| self.err(e))?;
        let one = |id: i64| -> Result<JobRow> {
            self.conn
                .query_row(
                    &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                    [id],
                    job_row,
                )
                .map_err(|e| self.err(e))
        };
        pairs
            .into_iter()
            .map(|(source, target, last, last_ok)| {
                Ok(LatestJobs {
                    source,
                    target,
                    last: one(last)?,
                    last_ok: last_ok.map(one).transpose()?,
                })
            })
            .collect()
    }
}
