//! The live database with the restored snapshot attached beside it as `snap` (immutable):
//! read-only for the comparison, read-write for the repair. Every check that can refuse runs
//! before anything is written.

use super::apply::{self, NotWritten, Written};
use super::dates::Period;
use super::diff::{self, Figures, TableDiff};
use super::plan::{PeriodSets, TablePlan};
use super::tables::{self, Shape};
use crate::error::{Error, Result};
use crate::facts::Description;
use crate::repo::ids::SnapshotId;
use crate::source::facts::{self, quote};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// How long a write waits for other writers of the live database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct Compared {
    pub snapshot: Figures,
    pub live: Figures,
    pub tables: Vec<TableDiff>,
}

fn source_error(live: &Path, e: rusqlite::Error) -> Error {
    Error::Source(
        format!(
            "the live database {} cannot be read: {e}; check that it is a SQLite database",
            live.display()
        )
        .into(),
    )
}

fn open(live: &Path, restored: &Path, writable: bool) -> Result<Connection> {
    let flags = if writable {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    };
    let conn = Connection::open_with_flags(
        crate::paths::sqlite_uri(live, ""),
        flags | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| source_error(live, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| source_error(live, e))?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(|e| source_error(live, e))?;
    conn.execute(
        "ATTACH DATABASE ?1 AS snap",
        [crate::paths::sqlite_uri(restored, "immutable=1")],
    )
    .map_err(|e| Error::Internal(format!("cannot attach the restored snapshot: {e}").into()))?;
    Ok(conn)
}

/// The plans of the invoice table and each child, after the refusals that need no data: the
/// description must fit both databases, and every involved table must have the same shape.
fn plans(
    conn: &Connection,
    restored: &Path,
    live: &Path,
    d: &Description,
    period: &Period,
    id: Option<SnapshotId>,
) -> Result<(Vec<TablePlan>, PeriodSets)> {
    let sqlite = |e: rusqlite::Error| source_error(live, e);
    let snapshot = id.map_or("the snapshot".to_string(), |i| format!("snapshot {i}"));
    if let Some(why) = facts::describe_problem(conn, d).map_err(sqlite)? {
        return Err(Error::Refused(
            format!(
                "in the live database {}, {why}; correct the [source.business] description",
                live.display()
            )
            .into(),
        ));
    }
    let snap = crate::paths::open_immutable(restored)
        .map_err(|e| Error::Internal(format!("cannot open the restored snapshot: {e}").into()))?;
    if let Some(why) = facts::describe_problem(&snap, d).map_err(sqlite)? {
        return Err(Error::Refused(
            format!("in {snapshot}, {why}; correct the [source.business] description or choose another snapshot").into(),
        ));
    }
    let shape = |table: &str| -> Result<Shape> {
        let l = Shape::read(conn, "main", table).map_err(sqlite)?;
        let s = Shape::read(conn, "snap", table).map_err(sqlite)?;
        match (l, s) {
            (Some(l), Some(s)) => match l.differs_from(&s) {
                None => Ok(l),
                Some(how) => Err(Error::Refused(
                    format!(
                        "the live table {} {how}, so its schema differs from {snapshot}'s; restore the snapshot to a file (ivault restore) and move the rows by hand, or choose a snapshot taken since the schema changed",
                        quote(table)
                    )
                    .into(),
                )),
            },
            _ => Err(Error::Refused(
                format!("the table {} is missing from the live database or {snapshot}; correct the [source.business] description", quote(table)).into(),
            )),
        }
    };
    let mut links = Vec::new();
    for child in &d.children {
        match facts::link(conn, d, child).map_err(sqlite)? {
            Ok(l) => links.push(l),
            Err(why) => {
                return Err(Error::Refused(
                    format!("{why} (in the live database)").into(),
                ))
            }
        };
    }
    let invoices = shape(&d.invoice_table)?;
    let sets = PeriodSets::new(&invoices, &links);
    // The snapshot's set now (it does not change); the live one where it is compared.
    sets.fill(conn, "snap", d, period).map_err(sqlite)?;
    let mut plans = vec![TablePlan::invoices(d, invoices, &sets)];
    for (child, link) in d.children.iter().zip(&links) {
        plans.push(TablePlan::child(shape(&child.table)?, link, &sets));
    }
    Ok((plans, sets))
}

/// Compares the period of the snapshot restored at `restored` with the live database.
pub(super) fn compare(
    live: &Path,
    restored: &Path,
    d: &Description,
    period: &Period,
    id: SnapshotId,
) -> Result<Compared> {
    let conn = open(live, restored, false)?;
    let (plans, sets) = plans(&conn, restored, live, d, period, Some(id))?;
    let sqlite = |e: rusqlite::Error| source_error(live, e);
    // One read transaction: the figures and the rows compared see the same live state.
    conn.execute_batch("BEGIN").map_err(sqlite)?;
    let result = (|| -> Result<Compared> {
        let snapshot = diff::figures(&conn, d, "snap", period).map_err(sqlite)?;
        if snapshot.invoices == 0 {
            return Err(Error::Refused(
                format!(
                    "snapshot {id} holds no invoices from {} to {} either; check the dates, or choose an older snapshot (--snapshot auto picks the fullest)",
                    period.from_text(),
                    period.to_text()
                )
                .into(),
            ));
        }
        let live_figures = diff::figures(&conn, d, "main", period).map_err(sqlite)?;
        sets.fill(&conn, "live", d, period).map_err(sqlite)?;
        let tables = plans
            .iter()
            .map(|p| diff::table_diff(&conn, p))
            .collect::<rusqlite::Result<_>>()
            .map_err(sqlite)?;
        Ok(Compared {
            snapshot,
            live: live_figures,
            tables,
        })
    })();
    let _ = conn.execute_batch("COMMIT");
    result
}

/// A snapshot's period figures, measured on a restored copy.
pub(super) fn measure(restored: &Path, d: &Description, period: &Period) -> Result<Figures> {
    let conn = crate::paths::open_immutable(restored)
        .map_err(|e| Error::Internal(format!("cannot open the restored snapshot: {e}").into()))?;
    diff::figures(&conn, d, "main", period).map_err(|e| {
        Error::Refused(
            format!("a snapshot's invoices cannot be counted with the description: {e}; correct the [source.business] description").into(),
        )
    })
}

/// The live database opened for the repair.
pub(super) struct Writer<'a> {
    conn: Connection,
    live: &'a Path,
    d: &'a Description,
    period: &'a Period,
    plans: Vec<TablePlan>,
}

impl<'a> Writer<'a> {
    pub fn open(
        live: &'a Path,
        restored: &Path,
        d: &'a Description,
        period: &'a Period,
    ) -> Result<Self> {
        let conn = open(live, restored, true)?;
        // The live scope is only compared, never written by: no live set here.
        let (plans, _) = plans(&conn, restored, live, d, period, None)?;
        Ok(Writer {
            conn,
            live,
            d,
            period,
            plans,
        })
    }

    fn sqlite(&self, e: rusqlite::Error) -> Error {
        source_error(self.live, e)
    }

    /// Triggers would fire for every restored row (an audit trigger writes its own rows, a
    /// counter moves): refused unless allowed.
    pub fn refuse_triggers(&self, allowed: bool) -> Result<()> {
        if allowed {
            return Ok(());
        }
        for p in &self.plans {
            let names =
                tables::triggers(&self.conn, "main", &p.table).map_err(|e| self.sqlite(e))?;
            if !names.is_empty() {
                let names: Vec<String> = names.iter().map(|n| quote(n)).collect();
                return Err(Error::Refused(
                    format!(
                        "the live table {} has triggers ({}) that would fire for every restored row; pass --allow-triggers to let them, or apply without them",
                        quote(&p.table),
                        names.join(", ")
                    )
                    .into(),
                ));
            }
        }
        Ok(())
    }

    pub fn refuse_collisions(&self, overwrite: bool) -> Result<()> {
        let found =
            apply::collisions(&self.conn, &self.plans, overwrite).map_err(|e| self.sqlite(e))?;
        match found.is_empty() {
            true => Ok(()),
            false => Err(collision_error(&found)),
        }
    }

    pub fn write(&self, overwrite: bool) -> Result<Written> {
        apply::write(&self.conn, &self.plans, overwrite).map_err(|e| match e {
            NotWritten::Collisions(found) => collision_error(&found),
            NotWritten::Sqlite(e) => Error::Source(
                format!(
                    "writing to the live database {} failed, and nothing was written: {e}",
                    self.live.display()
                )
                .into(),
            ),
        })
    }

    pub fn figures(&self) -> Result<Figures> {
        diff::figures(&self.conn, self.d, "main", self.period).map_err(|e| self.sqlite(e))
    }
}

fn collision_error(found: &[String]) -> Error {
    let shown: Vec<&str> = found
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let more = found.len() - shown.len();
    Error::Refused(
        format!(
            "{} rows of the snapshot would take keys that different live rows hold: {}{}; nothing was inserted: resolve those rows by hand first",
            found.len(),
            shown.join("; "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        )
        .into(),
    )
}
