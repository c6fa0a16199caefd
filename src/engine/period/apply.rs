//! Writing the snapshot's rows back, in one short `BEGIN IMMEDIATE` transaction on the live
//! database: the missing rows of every involved table (invoices first) with every column and
//! their rowid, and with `overwrite` the changed rows' other columns. Nothing is deleted. A
//! row that would take a key a different live row holds under a PRIMARY KEY or UNIQUE
//! constraint stops the whole transaction before anything is written.

use super::plan::TablePlan;
use crate::source::facts::quote;
use rusqlite::Connection;
use std::collections::BTreeMap;

/// Rows written per table.
#[derive(Debug, Default, Clone)]
pub(super) struct Written {
    pub inserted: BTreeMap<String, u64>,
    pub replaced: BTreeMap<String, u64>,
}

/// Why nothing was written.
pub(super) enum NotWritten {
    /// Rows of the snapshot that collide with different live rows, one description each.
    Collisions(Vec<String>),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for NotWritten {
    fn from(e: rusqlite::Error) -> Self {
        NotWritten::Sqlite(e)
    }
}

/// How many colliding rows a refusal lists.
const SHOWN: usize = 10;

/// The snapshot rows to be written that collide with a different live row under a unique
/// constraint: `table (columns) = (values)` each.
pub(super) fn collisions(
    conn: &Connection,
    plans: &[TablePlan],
    overwrite: bool,
) -> rusqlite::Result<Vec<String>> {
    let mut found = Vec::new();
    for plan in plans {
        let t = plan.quoted();
        for set in &plan.shape.unique {
            let same: Vec<String> = set.iter().map(|c| format!("o.{c} = s.{c}")).collect();
            let clash = format!(
                "EXISTS (SELECT 1 FROM main.{t} AS o WHERE {} AND NOT ({}))",
                same.join(" AND "),
                plan.same("o", "s")
            );
            let values: Vec<String> = set.iter().map(|c| format!("quote(s.{c})")).collect();
            let mut sqls = vec![format!(
                "SELECT {} FROM snap.{t} AS s WHERE {} AND {clash}",
                values.join(" || ', ' || "),
                plan.missing()
            )];
            if overwrite {
                sqls.push(format!(
                    "SELECT {} {} AND {clash}",
                    values.join(" || ', ' || "),
                    plan.changed_join()
                ));
            }
            for sql in sqls {
                let mut stmt = conn.prepare(&sql)?;
                let mut rows = stmt.query([])?;
                while let Some(r) = rows.next()? {
                    if found.len() < SHOWN {
                        let v: String = r.get(0)?;
                        found.push(format!("{t} ({}) = ({v})", set.join(", ")));
                    } else {
                        found.push(String::new());
                    }
                }
            }
        }
    }
    Ok(found)
}

/// Whether any table has a row to insert (or with `overwrite`, to replace).
pub(super) fn anything(
    conn: &Connection,
    plans: &[TablePlan],
    overwrite: bool,
) -> rusqlite::Result<bool> {
    for plan in plans {
        let mut sqls = vec![format!(
            "SELECT 1 FROM snap.{} AS s WHERE {} LIMIT 1",
            plan.quoted(),
            plan.missing()
        )];
        if overwrite {
            sqls.push(format!("SELECT 1 {} LIMIT 1", plan.changed_join()));
        }
        for sql in sqls {
            if conn.prepare(&sql)?.exists([])? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Writes the rows in one transaction; on any error or collision nothing is written.
pub(super) fn write(
    conn: &Connection,
    plans: &[TablePlan],
    overwrite: bool,
) -> Result<Written, NotWritten> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match write_in_transaction(conn, plans, overwrite) {
        Ok(w) => {
            conn.execute_batch("COMMIT")?;
            Ok(w)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn write_in_transaction(
    conn: &Connection,
    plans: &[TablePlan],
    overwrite: bool,
) -> Result<Written, NotWritten> {
    // Checked again under the write lock: a writer may have taken a key since the diff.
    let t0 = std::time::Instant::now();
    let clashes = collisions(conn, plans, overwrite)?;
    tracing::debug!("collisions checked again in {:?}", t0.elapsed());
    if !clashes.is_empty() {
        return Err(NotWritten::Collisions(clashes));
    }
    let mut written = Written::default();
    for plan in plans {
        let t = plan.quoted();
        let cols = plan.shape.copied();
        let from: Vec<String> = cols.iter().map(|c| format!("s.{c}")).collect();
        let n = conn.execute(
            &format!(
                "INSERT INTO main.{t} ({}) SELECT {} FROM snap.{t} AS s WHERE {}",
                cols.join(", "),
                from.join(", "),
                plan.missing()
            ),
            [],
        )?;
        tracing::debug!("{t}: {n} rows inserted after {:?}", t0.elapsed());
        written.inserted.insert(plan.table.clone(), n as u64);
    }
    if overwrite {
        for plan in plans {
            let t = plan.quoted();
            let identity: Vec<&str> = plan.identity.iter().map(|(n, _)| n.as_str()).collect();
            let set: Vec<String> = plan
                .shape
                .columns
                .iter()
                .filter(|c| !identity.contains(&c.name.as_str()))
                .map(|c| quote(&c.name))
                .collect();
            if set.is_empty() {
                continue;
            }
            let from: Vec<String> = set.iter().map(|c| format!("s.{c}")).collect();
            let n = conn.execute(
                &format!(
                    "UPDATE main.{t} AS l SET ({}) = (SELECT {} FROM snap.{t} AS s WHERE {}) \
                     WHERE EXISTS (SELECT 1 FROM snap.{t} AS s WHERE {} AND {} AND NOT ({}))",
                    set.join(", "),
                    from.join(", "),
                    plan.same("s", "l"),
                    plan.same("s", "l"),
                    plan.snap_scope,
                    plan.equal("s", "l"),
                ),
                [],
            )?;
            written.replaced.insert(plan.table.clone(), n as u64);
        }
    }
    Ok(written)
}
