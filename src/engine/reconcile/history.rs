//! Which snapshots still hold the invoices the live database lacks: every snapshot of the
//! source in a target, oldest first, one scratch copy brought forward from each to the next
//! (reading only the pages that differ, as `trace` does), each invoice looked up in each.

use super::db::Lookup;
use crate::engine::context::Context;
use crate::engine::restore::walk::ScratchCopy;
use crate::error::{Error, Result};
use crate::facts::Description;
use crate::report::reconcile::model::{Holding, Searched, SnapshotRef};
use std::path::Path;

/// What to search for, and with what.
pub struct Search<'a> {
    pub ctx: &'a Context,
    pub identity: Option<&'a Path>,
    /// The source's name, as its snapshots record it.
    pub source: &'a str,
    pub description: &'a Description,
    /// The invoices' keys.
    pub keys: &'a [Vec<String>],
    pub scratch_dir: &'a Path,
}

/// Searches one target; `found[i]` gets the target's holding of `keys[i]`, when it has one.
pub fn search(s: &Search, target: &str, found: &mut [Vec<Holding>]) -> Result<Searched> {
    let Search {
        ctx,
        identity,
        source,
        description: d,
        keys,
        scratch_dir,
    } = *s;
    let (repo, ring) = ctx.open_repo_with_key(target, identity)?;
    let trust = ctx.trust(&repo, false)?;
    let catalog = repo.catalog(&ring, Some(source), &trust)?;
    let entries: Vec<_> = catalog.accepted(&trust).collect();
    let latest = entries.last().map(|e| SnapshotRef {
        id: e.id.to_string(),
        time: e.manifest.time.clone(),
    });
    let searched = Searched {
        target: target.to_string(),
        snapshots: entries.len(),
        latest: latest.clone(),
    };
    if entries.is_empty() || keys.is_empty() {
        return Ok(searched);
    }
    let (index, _) = repo.load_index(&ring)?;
    let mut copy = ScratchCopy::create(scratch_dir, "reconcile")?;
    // Per key: the first and the last snapshot holding it.
    let mut seen: Vec<Option<(SnapshotRef, SnapshotRef)>> = vec![None; keys.len()];
    let mut in_latest = vec![false; keys.len()];
    for (n, e) in entries.iter().enumerate() {
        let db = copy.advance(&repo, &ring, &index, &e.id, &e.manifest)?;
        let here = SnapshotRef {
            id: e.id.to_string(),
            time: e.manifest.time.clone(),
        };
        let held = look_up_all(db, d, keys).map_err(|err| {
            Error::Usage(
                format!(
                    "snapshot {} cannot be searched for invoices ({err}); check the business description",
                    e.id
                )
                .into(),
            )
        })?;
        for (k, has) in held.into_iter().enumerate() {
            if has {
                let first = seen[k].take().map_or(here.clone(), |(f, _)| f);
                seen[k] = Some((first, here.clone()));
            }
            if n + 1 == entries.len() {
                in_latest[k] = has;
            }
        }
    }
    for (k, s) in seen.into_iter().enumerate() {
        if let Some((first, last)) = s {
            found[k].push(Holding {
                target: target.to_string(),
                first,
                last,
                in_latest: in_latest[k],
            });
        }
    }
    Ok(searched)
}

fn look_up_all(db: &Path, d: &Description, keys: &[Vec<String>]) -> rusqlite::Result<Vec<bool>> {
    let conn = crate::paths::open_immutable(db)?;
    let mut lookup = Lookup::new(&conn, d)?;
    keys.iter()
        .map(|k| lookup.find(k).map(|f| f.is_some()))
        .collect()
}
