//! The prune lock: `locks/<random id>` objects, so that two prunes never rewrite the same
//! indexes at once. Taking it works on any storage, conditional writes or not: write our own
//! lock, then list; if another live lock is there, remove ours and give way. Two prunes that
//! start at the same instant both give way, which is safe. Backups take no lock: the grace
//! period of doomed packs is what keeps them safe (docs/FORMAT.md, "Pruning").

use super::{storage_error, Repository};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const DIR: &str = "locks/";
/// A lock older than this is taken to be left by a prune that was killed.
pub const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(6);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockInfo {
    host: String,
    pid: u32,
    time: DateTime<Utc>,
}

impl LockInfo {
    /// Left behind: too old, or from a process of this host that no longer runs.
    fn is_stale(&self, now: DateTime<Utc>) -> bool {
        now - self.time > STALE_AFTER
            || (self.host == crate::host::name() && !process_runs(self.pid))
    }
}

fn process_runs(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Held while it lives; dropping it removes the lock object.
pub struct RepoLock<'r> {
    repo: &'r Repository,
    key: String,
}

impl RepoLock<'_> {
    /// Takes the repository's prune lock, removing locks that killed prunes left behind.
    pub fn acquire(repo: &Repository) -> Result<RepoLock<'_>> {
        let now = Utc::now();
        let info = LockInfo {
            host: crate::host::name(),
            pid: std::process::id(),
            time: now,
        };
        let key = format!("{DIR}{}", hex::encode(rand::random::<[u8; 16]>()));
        let body = serde_json::to_vec(&info)
            .map_err(|e| Error::Internal(format!("cannot encode a lock: {e}").into()))?;
        let storage = repo.storage();
        let fail = |e| storage_error(&repo.location(), e);
        storage.put(&key, &body).map_err(fail)?;
        let lock = RepoLock { repo, key };
        for other in storage.list(DIR).map_err(fail)? {
            if other.key == lock.key {
                continue;
            }
            // A lock that cannot be read is someone's lock all the same.
            let held = storage
                .get(&other.key)
                .ok()
                .and_then(|b| serde_json::from_slice::<LockInfo>(&b).ok());
            match held {
                Some(h) if h.is_stale(now) => {
                    tracing::info!(
                        "removing the stale lock {} of {} (pid {})",
                        other.key,
                        h.host,
                        h.pid
                    );
                    let _ = storage.delete(&other.key);
                }
                Some(h) => {
                    return Err(Error::Repository(format!(
                        "another prune (host {}, pid {}, since {}) is running on {}; run again when it has finished",
                        h.host,
                        h.pid,
                        h.time.format("%Y-%m-%d %H:%M:%S UTC"),
                        repo.location()
                    ).into()));
                }
                None => {
                    return Err(Error::Repository(format!(
                        "another prune holds the lock {} on {}; run again when it has finished (a lock older than {} hours is removed)",
                        other.key,
                        repo.location(),
                        STALE_AFTER.num_hours()
                    ).into()));
                }
            }
        }
        Ok(lock)
    }
}

impl Drop for RepoLock<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.repo.storage().delete(&self.key) {
            tracing::warn!("could not remove the lock {}: {e}", self.key);
        }
    }
}
