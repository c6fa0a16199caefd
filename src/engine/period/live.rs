//! The live database with the snapshot attached beside it as `snap` (read in place, immutable):
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
use crate::sqlite_vfs::Mounted;
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

fn open(live: &Path, snapshot: &Mounted, writable: bool) -> Result<Connection> {
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
    conn.execute("ATTACH DATABASE ?1 AS snap", [snapshot.uri()])
        .map_err(|e| {
            failed(snapshot, e, |e| {
                Error::Internal(format!("cannot attach the snapshot: {e}").into())
            })
        })?;
    // The period's snapshot pages are read by several queries in turn: keep them (32 MiB)
    // rather than fetch them again from the repository.
    conn.execute_batch("PRAGMA snap.cache_size = -32768")
        .map_err(|e| source_error(live, e))?;
    Ok(conn)
}

/// The plans of the invoice table and each child, after the refusals that need no data: the
/// description must fit both databases, and every involved table must have the same shape.
fn plans(
    conn: &Connection,
    snapshot_db: &Mounted,
    live: &Path,
    d: &Description,
    period: &Period,
    id: SnapshotId,
) -> Result<(Vec<TablePlan>, PeriodSets)> {
    let sqlite = |e: rusqlite::Error| failed(snapshot_db, e, |e| source_error(live, e));
    let snapshot = format!("snapshot {id}");
    if let Some(why) = facts::describe_problem(conn, d).map_err(sqlite)? {
        return Err(Error::Refused(
            format!(
                "in the live database {}, {why}; correct the [source.business] description",
                live.display()
            )
            .into(),
        ));
    }
    let snap = snapshot_db.open().map_err(&sqlite)?;
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

/// A snapshot's period figures.
pub(super) fn measure(snapshot: &Mounted, d: &Description, period: &Period) -> Result<Figures> {
    let refused = |e: rusqlite::Error| {
        Error::Refused(
            format!("a snapshot's invoices cannot be counted with the description: {e}; correct the [source.business] description").into(),
        )
    };
    let conn = snapshot.open().map_err(|e| failed(snapshot, e, refused))?;
    diff::figures(&conn, d, "main", period).map_err(|e| failed(snapshot, e, refused))
}

/// A SQLite error, or the reason behind it when a snapshot page could not be read (SQLite
/// only says "disk I/O error").
fn failed(
    snapshot: &Mounted,
    e: rusqlite::Error,
    otherwise: impl FnOnce(rusqlite::Error) -> Error,
) -> Error {
    snapshot.failure().unwrap_or_else(|| otherwise(e))
}

/// The live database with the snapshot beside it, opened to compare and, if writable, to
/// repair: one connection, so the snapshot pages the comparison fetched serve the repair.
pub(super) struct Session<'a> {
    conn: Connection,
    live: &'a Path,
    snapshot: &'a Mounted,
    d: &'a Description,
    period: &'a Period,
    plans: Vec<TablePlan>,
    sets: PeriodSets,
    /// The period's invoices in the snapshot (never none: that is refused at open).
    snapshot_figures: Figures,
}

impl<'a> Session<'a> {
    pub fn open(
        live: &'a Path,
        (snapshot, id): (&'a Mounted, SnapshotId),
        d: &'a Description,
        period: &'a Period,
        writable: bool,
    ) -> Result<Self> {
        let conn = open(live, snapshot, writable)?;
        let (plans, sets) = plans(&conn, snapshot, live, d, period, id)?;
        let snapshot_figures = diff::figures(&conn, d, "snap", period)
            .map_err(|e| failed(snapshot, e, |e| source_error(live, e)))?;
        if snapshot_figures.invoices == 0 {
            return Err(empty_period(id, period));
        }
        Ok(Session {
            conn,
            live,
            snapshot,
            d,
            period,
            plans,
            sets,
            snapshot_figures,
        })
    }

    /// Compares the period of the snapshot with the live database.
    pub fn compare(&self) -> Result<Compared> {
        let (conn, d, period) = (&self.conn, self.d, self.period);
        let sqlite = |e: rusqlite::Error| self.sqlite(e);
        // One read transaction: the figures and the rows compared see the same live state.
        conn.execute_batch("BEGIN").map_err(sqlite)?;
        let result = (|| -> Result<Compared> {
            let live_figures = diff::figures(conn, d, "main", period).map_err(sqlite)?;
            self.sets.fill(conn, "live", d, period).map_err(sqlite)?;
            let tables = self
                .plans
                .iter()
                .map(|p| diff::table_diff(conn, p))
                .collect::<rusqlite::Result<_>>()
                .map_err(sqlite)?;
            Ok(Compared {
                snapshot: self.snapshot_figures,
                live: live_figures,
                tables,
            })
        })();
        let _ = conn.execute_batch("COMMIT");
        result
    }

    /// Whether the snapshot holds a row of the period the live database lacks (or, with
    /// `overwrite`, holds otherwise): stops at the first one.
    pub fn anything_to_write(&self, overwrite: bool) -> Result<bool> {
        apply::anything(&self.conn, &self.plans, overwrite).map_err(|e| self.sqlite(e))
    }

    fn sqlite(&self, e: rusqlite::Error) -> Error {
        failed(self.snapshot, e, |e| source_error(self.live, e))
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
            NotWritten::Sqlite(e) => failed(self.snapshot, e, |e| {
                Error::Source(
                    format!(
                        "writing to the live database {} failed, and nothing was written: {e}",
                        self.live.display()
                    )
                    .into(),
                )
            }),
        })
    }

    pub fn figures(&self) -> Result<Figures> {
        diff::figures(&self.conn, self.d, "main", self.period).map_err(|e| self.sqlite(e))
    }
}

fn empty_period(id: SnapshotId, period: &Period) -> Error {
    Error::Refused(
        format!(
            "snapshot {id} holds no invoices from {} to {} either; check the dates, or choose an older snapshot (--snapshot auto picks the fullest)",
            period.from_text(),
            period.to_text()
        )
        .into(),
    )
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
