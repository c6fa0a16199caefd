//! Deduplication cache: which blobs each pack of a repository holds, so a backup host that has
//! only the public recipients (and cannot read the indexes) can still skip stored pages.

use super::{state_error, State};
use crate::error::Result;
use crate::hash::{self, Hash};
use rusqlite::params;
use std::collections::HashSet;

/// A pack as the cache records it; kept apart from the repository's own pack records so the
/// state does not depend on the repository format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPack {
    /// The pack id, hex.
    pub id: String,
    pub blobs: Vec<Hash>,
}

impl State {
    /// Blobs known to be in the repository. Packs the cache knows but the repository no longer
    /// lists are forgotten first, so a stale cache never leads to referencing a missing blob.
    pub fn known_blobs(
        &self,
        repo_id: &str,
        existing_packs: &HashSet<String>,
    ) -> Result<HashSet<Hash>> {
        let mut stmt = self
            .conn
            .prepare("SELECT pack_id, blobs FROM packs WHERE repo_id = ?1")
            .map_err(|e| self.err(e))?;
        let mut known = HashSet::new();
        let mut gone = Vec::new();
        let rows = stmt
            .query_map([repo_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (pack, blobs) = row.map_err(|e| self.err(e))?;
            if existing_packs.contains(&pack) {
                known.extend(hash::split(&blobs));
            } else {
                gone.push(pack);
            }
        }
        for pack in gone {
            tracing::info!("pack {pack} is no longer in the repository; forgetting its blobs");
            self.conn
                .execute(
                    "DELETE FROM packs WHERE repo_id = ?1 AND pack_id = ?2",
                    params![repo_id, pack],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(known)
    }

    /// Records packs whose index has been written.
    pub fn record_packs(&mut self, repo_id: &str, packs: &[CachedPack]) -> Result<()> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| state_error(&self.path, e))?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT OR REPLACE INTO packs (repo_id, pack_id, blobs) VALUES (?1, ?2, ?3)",
                )
                .map_err(|e| state_error(&self.path, e))?;
            for p in packs {
                // Concatenated digests: one row per pack keeps the cache small and fast to load.
                let blobs = p.blobs.concat();
                stmt.execute(params![repo_id, p.id, blobs])
                    .map_err(|e| state_error(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| state_error(&self.path, e))
    }
}
