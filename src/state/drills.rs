//! Drill history: one row per drill (one snapshot of one source from one target), with its
//! whole report as JSON, so reports can be rendered again and charts drawn over past drills.

use super::State;
use crate::error::Result;
use rusqlite::params;

/// A drill as recorded. `report` is the report's JSON, which holds every check.
#[derive(Debug, Clone)]
pub struct DrillRow {
    pub id: i64,
    pub started: String,
    pub finished: String,
    pub source: String,
    pub target: String,
    pub snapshot_id: Option<String>,
    /// `passed` or `failed`.
    pub verdict: String,
    pub rto_ms: u64,
    pub rpo_ms: u64,
    pub bytes_read: u64,
    pub report: String,
}

const COLUMNS: &str =
    "id, started, finished, source, target, snapshot_id, verdict, rto_ms, rpo_ms, bytes_read, report";

fn row(r: &rusqlite::Row) -> rusqlite::Result<DrillRow> {
    Ok(DrillRow {
        id: r.get(0)?,
        started: r.get(1)?,
        finished: r.get(2)?,
        source: r.get(3)?,
        target: r.get(4)?,
        snapshot_id: r.get(5)?,
        verdict: r.get(6)?,
        rto_ms: r.get::<_, i64>(7)? as u64,
        rpo_ms: r.get::<_, i64>(8)? as u64,
        bytes_read: r.get::<_, i64>(9)? as u64,
        report: r.get(10)?,
    })
}

impl State {
    /// Records a drill and returns its id. `report` is called with the id, so the stored
    /// report can carry it.
    pub fn record_drill(&self, d: &DrillRow, report: impl FnOnce(i64) -> String) -> Result<i64> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO drills (started, finished, source, target, snapshot_id, verdict, rto_ms, rpo_ms, bytes_read, report)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, '')",
            params![
                d.started,
                d.finished,
                d.source,
                d.target,
                d.snapshot_id,
                d.verdict,
                d.rto_ms as i64,
                d.rpo_ms as i64,
                d.bytes_read as i64
            ],
        )
        .map_err(|e| self.err(e))?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE drills SET report = ?2 WHERE id = ?1",
            params![id, report(id)],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// The last `limit` drills, newest first; of one source and target when given.
    pub fn drills(&self, of: Option<(&str, &str)>, limit: usize) -> Result<Vec<DrillRow>> {
        let (source, target) = of.unzip();
        self.conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM drills
                 WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR target = ?2)
                 ORDER BY id DESC LIMIT ?3"
            ))
            .and_then(|mut s| {
                s.query_map(params![source, target, limit as i64], row)?
                    .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// The latest drill of each source and target.
    pub fn latest_drills(&self) -> Result<Vec<DrillRow>> {
        self.conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM drills WHERE id IN
                   (SELECT max(id) FROM drills GROUP BY source, target) ORDER BY source, target"
            ))
            .and_then(|mut s| s.query_map([], row)?.collect())
            .map_err(|e| self.err(e))
    }

    pub fn drill(&self, id: i64) -> Result<Option<DrillRow>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM drills WHERE id = ?1"),
                [id],
                row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
