//! Versioned schema: `PRAGMA user_version` records which migrations a state database has had,
//! so a later ivault can change the tables without losing a host's pins and caches.

use super::state_error;
use crate::error::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// Migration steps; step `i` takes a database from version `i` to version `i + 1`. Never edit
/// a released step: hosts that already ran it would not see the change.
const MIGRATIONS: &[&str] = &[
    // 1: the tables of earlier builds. They set no user_version, so their databases read as
    // version 0 with these tables present; IF NOT EXISTS adopts them unchanged.
    "CREATE TABLE IF NOT EXISTS repos (
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
    // 2: where each job runs (host, pid and the process's start time), so that a row a killed
    // process left `running` can be told from a job still running; and every source name each
    // path was backed up under per repository, so two files do not end up under one name.
    // Jobs left `running` by earlier builds recorded no process to ask about: they are
    // abandoned (one still running when this step runs sets its own outcome when it ends).
    "ALTER TABLE jobs ADD COLUMN host TEXT;
     ALTER TABLE jobs ADD COLUMN pid INTEGER;
     ALTER TABLE jobs ADD COLUMN pid_started INTEGER;
     CREATE TABLE source_names (
       repo_id TEXT NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL,
       PRIMARY KEY (repo_id, name, source)) WITHOUT ROWID;
     UPDATE jobs SET outcome = 'abandoned',
       error = 'the job never finished, and the ivault that ran it did not record its process'
       WHERE outcome = 'running';",
    // 3: the signers whose snapshots this host trusts, per repository.
    "CREATE TABLE trusted_signers (
       repo_id TEXT NOT NULL, signer TEXT NOT NULL, pinned_at TEXT NOT NULL,
       PRIMARY KEY (repo_id, signer));",
    // 4: the stored size of each cached pack, so a backup deduplicates only against packs the
    // repository lists at the size they were written with (rows of earlier builds have none
    // and take the size listed at the next backup); and the packs a check, restore or copy
    // found missing or damaged, which backups no longer deduplicate against.
    "ALTER TABLE packs ADD COLUMN size INTEGER;
     CREATE TABLE damaged_packs (
       repo_id TEXT NOT NULL, pack_id TEXT NOT NULL, why TEXT NOT NULL, found TEXT NOT NULL,
       PRIMARY KEY (repo_id, pack_id)) WITHOUT ROWID;",
    // 5: packs stored by a backup whose index was never written (it failed or was killed),
    // with the record the index would have held, so the next backup can index and reuse them.
    "CREATE TABLE unindexed_packs (
       repo_id TEXT NOT NULL, pack_id TEXT NOT NULL, size INTEGER NOT NULL,
       record BLOB NOT NULL, written TEXT NOT NULL,
       PRIMARY KEY (repo_id, pack_id)) WITHOUT ROWID;",
    // 6: every drill, with its whole report (JSON), for the history, reports and charts.
    "CREATE TABLE drills (
       id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT NOT NULL,
       source TEXT NOT NULL, target TEXT NOT NULL, snapshot_id TEXT,
       verdict TEXT NOT NULL, rto_ms INTEGER NOT NULL, rpo_ms INTEGER NOT NULL,
       bytes_read INTEGER NOT NULL, report TEXT NOT NULL);
     CREATE INDEX drills_by_source_target ON drills (source, target, id);",
    // 7: when the scheduler last started each kind of job for each source, so a pass runs
    // only what is due and a missed run is done once.
    "CREATE TABLE schedule_runs (
       source TEXT NOT NULL, kind TEXT NOT NULL, started TEXT NOT NULL,
       PRIMARY KEY (source, kind)) WITHOUT ROWID;",
    // 8: scheduled runs the daemon skipped because the source's previous job was still
    // running, so the skip is on record and the slot counts as handled.
    "CREATE TABLE schedule_skips (
       source TEXT NOT NULL, kind TEXT NOT NULL, scheduled TEXT NOT NULL,
       reason TEXT NOT NULL, recorded TEXT NOT NULL,
       PRIMARY KEY (source, kind, scheduled)) WITHOUT ROWID;",
    // 9: every period restore applied to a live database: who, where, from which snapshot,
    // which period, the backup taken before it, and the rows inserted and replaced per table
    // (JSON objects), with the whole audit record.
    "CREATE TABLE period_restores (
       id INTEGER PRIMARY KEY, time TEXT NOT NULL, user TEXT NOT NULL, host TEXT NOT NULL,
       source TEXT NOT NULL, target TEXT NOT NULL, snapshot_id TEXT NOT NULL,
       backup_snapshot_id TEXT NOT NULL, period_from TEXT NOT NULL, period_to TEXT NOT NULL,
       inserted TEXT NOT NULL, replaced TEXT NOT NULL, record TEXT NOT NULL);",
    // 10: the page bytes the incremental snapshots since the last full of each source stored,
    // so a backup can turn full before a restore has too much of a chain to read. Rows of
    // earlier builds start counting at 0.
    "ALTER TABLE last_snapshots ADD COLUMN changed_since_full INTEGER NOT NULL DEFAULT 0;",
];

/// The schema version this build writes.
pub(super) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Fails if the database was written by a newer ivault. Only reads.
pub(super) fn refuse_newer(conn: &Connection, path: &Path) -> Result<()> {
    known_version(user_version(conn, path)?, path).map(|_| ())
}

/// Applies the missing steps, each in its own transaction. `BEGIN IMMEDIATE` takes the write
/// lock before the version is read, so of two processes opening a fresh state at once one
/// migrates and the other waits (busy timeout), then finds nothing left to do.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    if user_version(conn, path)? == LATEST {
        return Ok(());
    }
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| state_error(path, e))?;
        let version = known_version(user_version(&tx, path)?, path)?;
        let Some(step) = MIGRATIONS.get(version) else {
            return Ok(());
        };
        tx.execute_batch(step).map_err(|e| state_error(path, e))?;
        tx.pragma_update(None, "user_version", version as i64 + 1)
            .map_err(|e| state_error(path, e))?;
        tx.commit().map_err(|e| state_error(path, e))?;
    }
}

fn user_version(conn: &Connection, path: &Path) -> Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| state_error(path, e))
}

/// The version as an index into `MIGRATIONS`, or the sentence for a version this build cannot
/// handle. Opening anyway could let an old binary misread or damage a newer schema.
fn known_version(version: i64, path: &Path) -> Result<usize> {
    match usize::try_from(version) {
        Ok(v) if version <= LATEST => Ok(v),
        Err(_) => Err(Error::Internal(format!(
            "state database {} has schema version {version}, which no ivault writes; move the file away to start afresh",
            path.display()
        ).into())),
        Ok(_) => Err(Error::Internal(format!(
            "state database {} has schema version {version} and was written by a newer ivault (this one knows up to version {LATEST}); upgrade ivault, or move the file away to start afresh",
            path.display()
        ).into())),
    }
}
