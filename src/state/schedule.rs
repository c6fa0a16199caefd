//! When the scheduler last started each kind of job for each source.

use super::State;
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
}
