//! The audit trail of period restores: one row per repair applied to a live database, with
//! the whole record as JSON beside the columns a list needs.

use super::State;
use crate::error::Result;
use rusqlite::params;

/// A period restore as recorded.
#[derive(Debug, Clone)]
pub struct PeriodRestoreRow {
    pub time: String,
    pub user: String,
    pub host: String,
    pub source: String,
    pub target: String,
    pub snapshot_id: String,
    /// The backup of the live database taken just before the repair.
    pub backup_snapshot_id: String,
    pub period_from: String,
    pub period_to: String,
    /// Rows inserted per table, as a JSON object.
    pub inserted: String,
    /// Rows replaced per table, as a JSON object.
    pub replaced: String,
    /// The whole audit record (JSON).
    pub record: String,
}

impl State {
    /// Records a period restore and returns its id.
    pub fn record_period_restore(&self, r: &PeriodRestoreRow) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO period_restores (time, user, host, source, target, snapshot_id,
                   backup_snapshot_id, period_from, period_to, inserted, replaced, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    r.time,
                    r.user,
                    r.host,
                    r.source,
                    r.target,
                    r.snapshot_id,
                    r.backup_snapshot_id,
                    r.period_from,
                    r.period_to,
                    r.inserted,
                    r.replaced,
                    r.record
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// How many period restores are on record for `source` (name or path).
    pub fn period_restores(&self, source: &str) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM period_restores WHERE source = ?1",
                [source],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }
}
