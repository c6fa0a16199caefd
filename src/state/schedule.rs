//! When the scheduler last started each kind of job for each source, and the scheduled runs
//! the daemon skipped because the source was still busy.

use super::{now, State};
use crate::error::Result;
use rusqlite::params;
use std::collections::BTreeMap;

impl State {
    /// The last start of each kind of job for `source` (kind name → RFC 3339 time).
    pub fn schedule_runs(&self, source: &str) -> Result<BTreeMap<String, String>> {
        self.conn
            .prepare("SELECT kind, started FROM schedule_runs WHERE source = ?1")
            .and_then(|mut s| {
                s.query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(|e| self.err(e))
    }

    pub fn record_schedule_run(&self, source: &str, kind: &str, started: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO schedule_runs (source, kind, started) VALUES (?1, ?2, ?3)
                 ON CONFLICT (source, kind) DO UPDATE SET started = excluded.started",
                params![source, kind, started],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records that the run of `kind` scheduled at `scheduled` (RFC 3339) was skipped, and why.
    pub fn record_schedule_skip(
        &self,
        source: &str,
        kind: &str,
        scheduled: &str,
        reason: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO schedule_skips (source, kind, scheduled, reason, recorded)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                params![source, kind, scheduled, reason, now()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The skipped runs of `source`, oldest first: (kind, scheduled time, reason).
    pub fn schedule_skips(&self, source: &str) -> Result<Vec<(String, String, String)>> {
        self.conn
            .prepare(
                "SELECT kind, scheduled, reason FROM schedule_skips WHERE source = ?1
                 ORDER BY scheduled, kind",
            )
            .and_then(|mut s| {
                s.query_map([source], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(|e| self.err(e))
    }
}
