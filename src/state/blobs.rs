//! Deduplication cache: which blobs each pack of a repository holds, so a backup host that has
//! only the public recipients (and cannot read the indexes) can still skip stored pages. A
//! pack is trusted only while the repository lists it at the size it was written with, and
//! not once a check, restore or copy found it damaged.

use super::{now, state_error, State};
use crate::error::Result;
use crate::hash::{self, Hash};
use rusqlite::params;
use std::collections::HashMap;

/// A pack as the cache records it; kept apart from the repository's own pack records so the
/// state does not depend on the repository format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPack {
    /// The pack id, hex.
    pub id: String,
    /// Bytes of the stored (encrypted) pack.
    pub size: u64,
    pub blobs: Vec<Hash>,
}

/// What a backup may deduplicate against, and the packs it may not although it knows them.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct KnownBlobs {
    /// Each once per pack that holds it.
    pub blobs: Vec<Hash>,
    /// Sentences about cached packs left out: a changed size, damage found earlier.
    pub notes: Vec<String>,
}

impl State {
    /// Blobs known to be in the repository, given the packs it lists (id, hex → size). Packs the
    /// cache knows but the repository no longer lists, or lists at another size than they were
    /// written with, are forgotten first, and packs recorded as damaged are left out, so a stale
    /// cache never leads to referencing a missing or damaged blob. Rows of builds that recorded
    /// no size take the size listed now.
    ///
    /// Each blob goes to `each` once per pack that holds it, as the rows are read (the set can
    /// be larger than memory should hold); returns sentences about cached packs left out.
    pub fn each_known_blob(
        &self,
        repo_id: &str,
        listed: &HashMap<String, u64>,
        each: &mut dyn FnMut(Hash) -> Result<()>,
    ) -> Result<Vec<String>> {
        let damaged = self.damaged_packs(repo_id)?;
        let mut stmt = self
            .conn
            .prepare("SELECT pack_id, size, blobs FROM packs WHERE repo_id = ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([repo_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut notes = Vec::new();
        let (mut forget, mut adopt) = (Vec::new(), Vec::new());
        let mut left_out = 0;
        for row in rows {
            let (pack, size, blobs) = row.map_err(|e| self.err(e))?;
            let Some(&now_listed) = listed.get(&pack) else {
                tracing::info!(
                    "pack {pack} is no longer listed, or a prune marked it; forgetting its blobs"
                );
                forget.push(pack);
                continue;
            };
            match size.map(|s| s as u64) {
                Some(written) if written != now_listed => {
                    notes.push(format!(
                        "pack {pack} has {now_listed} bytes but was written with {written}; its pages are stored again"
                    ));
                    forget.push(pack);
                    continue;
                }
                None => adopt.push((pack.clone(), now_listed)),
                Some(_) => {}
            }
            if damaged.contains_key(&pack) {
                left_out += 1;
            } else {
                for id in hash::split(&blobs) {
                    each(id)?;
                }
            }
        }
        drop(stmt);
        match left_out {
            0 => {}
            1 => notes.push(
                "1 pack was found damaged earlier; the pages it holds are stored again".into(),
            ),
            n => notes.push(format!(
                "{n} packs were found damaged earlier; the pages they hold are stored again"
            )),
        }
        for pack in forget {
            self.conn
                .execute(
                    "DELETE FROM packs WHERE repo_id = ?1 AND pack_id = ?2",
                    params![repo_id, pack],
                )
                .map_err(|e| self.err(e))?;
        }
        for (pack, size) in adopt {
            self.conn
                .execute(
                    "UPDATE packs SET size = ?3 WHERE repo_id = ?1 AND pack_id = ?2",
                    params![repo_id, pack, size as i64],
                )
                .map_err(|e| self.err(e))?;
        }
        // Damage records of packs that are gone have nothing left to guard.
        for pack in damaged.keys().filter(|p| !listed.contains_key(*p)) {
            self.conn
                .execute(
                    "DELETE FROM damaged_packs WHERE repo_id = ?1 AND pack_id = ?2",
                    params![repo_id, pack],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(notes)
    }

    /// [`State::each_known_blob`] gathered in a list.
    #[cfg(test)]
    pub fn known_blobs(&self, repo_id: &str, listed: &HashMap<String, u64>) -> Result<KnownBlobs> {
        let mut blobs = Vec::new();
        let notes = self.each_known_blob(repo_id, listed, &mut |id| {
            blobs.push(id);
            Ok(())
        })?;
        Ok(KnownBlobs { blobs, notes })
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
                    "INSERT OR REPLACE INTO packs (repo_id, pack_id, size, blobs) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| state_error(&self.path, e))?;
            for p in packs {
                // Concatenated digests: one row per pack keeps the cache small and fast to load.
                let blobs = p.blobs.concat();
                stmt.execute(params![repo_id, p.id, p.size as i64, blobs])
                    .map_err(|e| state_error(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| state_error(&self.path, e))
    }

    /// Records packs (id, hex → why) that a check, restore or copy found missing or damaged:
    /// backups no longer deduplicate against them.
    pub fn record_damaged_packs(&self, repo_id: &str, packs: &[(String, String)]) -> Result<()> {
        for (pack, why) in packs {
            self.conn
                .execute(
                    "INSERT OR REPLACE INTO damaged_packs (repo_id, pack_id, why, found) VALUES (?1, ?2, ?3, ?4)",
                    params![repo_id, pack, why, now()],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The packs recorded as damaged in a repository (id, hex → why).
    pub fn damaged_packs(&self, repo_id: &str) -> Result<HashMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT pack_id, why FROM damaged_packs WHERE repo_id = ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([repo_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }
}
