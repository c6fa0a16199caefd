//! Snapshot pointers: the last snapshot of each source per repository (the parent of the next
//! incremental one), the names each source was stored under, and which snapshots `ivault copy`
//! already copied, so reruns skip them.

use super::State;
use crate::error::Result;
use rusqlite::OptionalExtension;

impl State {
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

    /// Records `snapshot` as the last of `source`, with the page bytes the incremental
    /// snapshots since the last full stored (0 for a full).
    pub fn set_last_snapshot(
        &self,
        repo_id: &str,
        source: &str,
        snapshot: &str,
        changed_since_full: u64,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO last_snapshots (repo_id, source, snapshot_id, changed_since_full)
                 VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    repo_id,
                    source,
                    snapshot,
                    i64::try_from(changed_since_full).unwrap_or(i64::MAX)
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The page bytes the incremental snapshots of `source` since its last full stored (0
    /// when none is recorded).
    pub fn changed_since_full(&self, repo_id: &str, source: &str) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT changed_since_full FROM last_snapshots WHERE repo_id = ?1 AND source = ?2",
                [repo_id, source],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|n| n.unwrap_or(0).max(0) as u64)
            .map_err(|e| self.err(e))
    }

    /// Remembers that snapshots of `source` (a path) were stored in the repository under `name`.
    pub fn record_source_name(&self, repo_id: &str, name: &str, source: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO source_names (repo_id, name, source) VALUES (?1, ?2, ?3)",
                [repo_id, name, source],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// A path other than `source` whose snapshots this host stored in the repository under
    /// `name`, if there is one.
    pub fn other_source_named(
        &self,
        repo_id: &str,
        name: &str,
        source: &str,
    ) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT source FROM source_names WHERE repo_id = ?1 AND name = ?2 AND source <> ?3
                 ORDER BY source LIMIT 1",
                [repo_id, name, source],
                |r| r.get(0),
            )
            .optional()
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
}
