//! Packs a backup stored but never indexed (it failed or was killed before its index): kept
//! with the record the index would have held (opaque bytes to the state), so the next backup
//! can index them and build on their pages instead of storing everything again.

use super::{now, State};
use crate::error::Result;
use rusqlite::params;

/// An unindexed pack: id (hex), stored size, and its index record.
pub type UnindexedPack = (String, u64, Vec<u8>);

impl State {
    pub fn record_unindexed_pack(&self, repo_id: &str, pack: &UnindexedPack) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO unindexed_packs (repo_id, pack_id, size, record, written)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![repo_id, pack.0, pack.1 as i64, pack.2, now()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn unindexed_packs(&self, repo_id: &str) -> Result<Vec<UnindexedPack>> {
        let mut stmt = self
            .conn
            .prepare("SELECT pack_id, size, record FROM unindexed_packs WHERE repo_id = ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([repo_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Forgets packs that are indexed now, or gone.
    pub fn forget_unindexed_packs(&self, repo_id: &str, ids: &[String]) -> Result<()> {
        for id in ids {
            self.conn
                .execute(
                    "DELETE FROM unindexed_packs WHERE repo_id = ?1 AND pack_id = ?2",
                    params![repo_id, id],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}
