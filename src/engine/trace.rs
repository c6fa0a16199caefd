//! `ivault trace`: one invoice through every snapshot of a source in a target, oldest first:
//! whether it was there, with its status and amount, so a user sees when it changed and the
//! first snapshot it was missing from.
//!
//! Each snapshot is read in place (`restore::image`): SQLite looks the invoice up through its
//! key's index, so only the few pages on that path are fetched, decrypted and checked against
//! their ids, and thirty snapshots cost about thirty page lists (from the signed manifests'
//! trees) rather than a restore and thirty days of changes. A snapshot whose invoice table has
//! no index on the key would be read whole that way; it is brought into one scratch copy
//! instead, forward from the snapshot before, reading only the pages that differ.

use crate::engine::context::Context;
use crate::engine::restore::image;
use crate::engine::restore::walk::ScratchCopy;
use crate::error::{Error, Result};
use crate::facts::Description;
use crate::repo::ids::SnapshotId;
use crate::repo::tree;
use crate::source::facts::quote;
use rusqlite::types::Value;
use rusqlite::Connection;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

pub struct TraceJob {
    /// A source name (or path) as the snapshots record it.
    pub source: String,
    pub repo: String,
    pub identity: Option<PathBuf>,
    /// The invoice's key columns' values, `/`-separated for a composite key (`A-1/00000123`).
    pub invoice: String,
    /// Where a scratch copy goes, if one is needed [default: the state directory].
    pub scratch_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TraceReport {
    pub source: String,
    pub repository: String,
    pub invoice: Vec<String>,
    pub snapshots: Vec<Sighting>,
    /// The first snapshot after one that had the invoice and that lacks it.
    pub first_missing: Option<SnapshotId>,
}

/// The invoice as one snapshot has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sighting {
    pub snapshot: SnapshotId,
    pub time: String,
    pub present: bool,
    pub status: Option<String>,
    pub amount: Option<String>,
    pub date: Option<String>,
    /// `first seen`, `unchanged`, `changed`, `missing`, `still missing`, `back` or `absent`.
    pub change: &'static str,
}

pub fn run(ctx: &Context, job: &TraceJob) -> Result<TraceReport> {
    let (repo, keys) = ctx.open_repo_with_key(&job.repo, job.identity.as_deref())?;
    let trust = ctx.trust(&repo, false)?;
    let catalog = repo.catalog(&keys, Some(&job.source), &trust)?;
    let entries: Vec<_> = catalog.accepted(&trust).collect();
    if entries.is_empty() {
        return Err(Error::Usage(
            format!(
                "{} has no snapshot of {} signed by a trusted signer; check the source name with ivault snapshots",
                repo.location(),
                job.source
            )
            .into(),
        ));
    }
    let from_policy = ctx
        .targets
        .policy()
        .and_then(|p| p.source(&job.source))
        .and_then(|s| s.business.clone());
    let newest = entries.iter().rev();
    let description = from_policy
        .or_else(|| newest.filter_map(|e| e.manifest.business.as_ref()).map(|b| b.description.clone()).next())
        .ok_or_else(|| {
            Error::Usage(
                format!(
                    "no business description for {}: its snapshots record none; give --policy with a [source.business]",
                    job.source
                )
                .into(),
            )
        })?;
    let key = parse_key(&job.invoice, &description)?;
    let (index, _) = repo.load_index(&keys)?;
    let location = repo.location();
    let shared = (Arc::new(repo), Arc::new(keys), Arc::new(index));
    let (repo, keys, index) = &shared;
    let query = lookup_sql(&description);
    let base = job
        .scratch_dir
        .clone()
        .unwrap_or_else(|| ctx.state_dir.clone());
    // Made only for snapshots whose invoice table SQLite would scan, having no index on the
    // key's columns: read in place, each would be fetched whole, where a copy brought forward
    // from one snapshot to the next reads only the pages that changed.
    let mut copy: Option<ScratchCopy> = None;
    let mut sightings: Vec<Sighting> = Vec::new();
    for e in &entries {
        let cannot_search = |err: rusqlite::Error| {
            Error::Usage(
                format!(
                    "snapshot {} cannot be searched for the invoice ({err}); check the business description",
                    e.id
                )
                .into(),
            )
        };
        let (pages, warnings) =
            tree::page_list(repo, keys, index, &e.id, &e.manifest, &mut Vec::new())?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        let snapshot = image::mount_pages(shared.clone(), pages, e.manifest.page_size, false)?;
        let in_place = snapshot
            .open()
            .and_then(|conn| match scans_table(&conn, &query, &key)? {
                true => Ok(None),
                false => look_up(&conn, &query, &key).map(Some),
            })
            .map_err(|err| snapshot.failure().unwrap_or_else(|| cannot_search(err)))?;
        let row = match in_place {
            Some(row) => row,
            None => {
                let c = match copy.take() {
                    Some(c) => c,
                    None => {
                        tracing::info!(
                            "no index on the key's columns of {}: snapshots are brought forward in a scratch copy under {}",
                            description.invoice_table,
                            base.display()
                        );
                        ScratchCopy::create(&base, "trace")?
                    }
                };
                let db = copy
                    .insert(c)
                    .advance(repo, keys, index, &e.id, &e.manifest)?;
                crate::paths::open_immutable(db)
                    .and_then(|conn| look_up(&conn, &query, &key))
                    .map_err(cannot_search)?
            }
        };
        sightings.push(sighting(e.id, &e.manifest.time, row, sightings.last()));
    }
    let first_missing = sightings
        .iter()
        .find(|s| s.change == "missing")
        .map(|s| s.snapshot);
    Ok(TraceReport {
        source: job.source.clone(),
        repository: location,
        invoice: key,
        snapshots: sightings,
        first_missing,
    })
}

/// The key's parts, one per key column.
fn parse_key(text: &str, d: &Description) -> Result<Vec<String>> {
    let parts: Vec<String> = if d.key_columns.len() == 1 {
        vec![text.to_string()]
    } else {
        text.split('/').map(str::to_string).collect()
    };
    if parts.len() != d.key_columns.len() || parts.iter().any(String::is_empty) {
        return Err(Error::Usage(
            format!(
                "the invoice {text:?} does not match the key ({}); give one value per key column, separated by '/'",
                d.key_columns.join(", ")
            )
            .into(),
        ));
    }
    Ok(parts)
}

fn lookup_sql(d: &Description) -> String {
    let status = d
        .status_column
        .as_deref()
        .map(quote)
        .unwrap_or_else(|| "NULL".into());
    let wheres: Vec<String> = d
        .key_columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} = ?{}", quote(c), i + 1))
        .collect();
    format!(
        "SELECT {status}, {}, {} FROM {} WHERE {} LIMIT 1",
        quote(&d.amount_column),
        quote(&d.date_column),
        quote(&d.invoice_table),
        wheres.join(" AND ")
    )
}

type Row = Option<(Option<String>, Option<String>, Option<String>)>;

/// Whether SQLite would read the whole invoice table to run the lookup `sql`: no index
/// covers the key's first column.
fn scans_table(conn: &Connection, sql: &str, key: &[String]) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let steps = stmt.query_map(rusqlite::params_from_iter(key), |r| r.get::<_, String>(3))?;
    for step in steps {
        if step?.starts_with("SCAN") {
            return Ok(true);
        }
    }
    Ok(false)
}

fn look_up(conn: &Connection, sql: &str, key: &[String]) -> rusqlite::Result<Row> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(key))?;
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    let text = |i: usize| -> rusqlite::Result<Option<String>> {
        Ok(match r.get::<_, Value>(i)? {
            Value::Null => None,
            Value::Integer(n) => Some(n.to_string()),
            Value::Real(x) => Some(x.to_string()),
            Value::Text(t) => Some(t),
            Value::Blob(b) => Some(format!("x'{}'", hex::encode(b))),
        })
    };
    Ok(Some((text(0)?, text(1)?, text(2)?)))
}

fn sighting(snapshot: SnapshotId, time: &str, row: Row, before: Option<&Sighting>) -> Sighting {
    let present = row.is_some();
    let (status, amount, date) = row.unwrap_or_default();
    let mut s = Sighting {
        snapshot,
        time: time.to_string(),
        present,
        status,
        amount,
        date,
        change: "",
    };
    s.change = match (before, present) {
        (None, true) => "first seen",
        (None, false) => "absent",
        (Some(b), true) if !b.present && b.change != "absent" => "back",
        (Some(b), true) if !b.present => "first seen",
        (Some(b), true) if (&b.status, &b.amount, &b.date) == (&s.status, &s.amount, &s.date) => {
            "unchanged"
        }
        (Some(_), true) => "changed",
        (Some(b), false) if b.present => "missing",
        (Some(b), false) if b.change == "absent" => "absent",
        (Some(_), false) => "still missing",
    };
    s
}
