//! One pass over the invoice table instead of one query per fact: months, statuses and totals
//! are added up in Rust (a GROUP BY makes SQLite sort every row), children are counted by
//! merging each child's counts per key (in key order, along its index) with the invoices in
//! rowid order, and number series take their range from the same rows when a UNIQUE index
//! already makes every number distinct. Each shortcut applies only where its condition holds;
//! the callers keep the plain SQL for the rest, so the facts are the same either way.

use super::{month_expr, quote};
use crate::facts::{Amount, Description, MonthFacts, SeriesFacts, StatusFacts, UNKNOWN_MONTH};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use std::collections::BTreeMap;

/// What the pass found.
pub(super) struct Scanned {
    pub months: BTreeMap<String, MonthFacts>,
    /// Children counted here, by table name; the others need the SQL join.
    pub children_done: Vec<String>,
    /// `None` when the series need the SQL query (no UNIQUE index makes numbers distinct).
    pub series: Option<Vec<SeriesFacts>>,
}

/// A child whose rows can be merged with the invoices: one integer key column referring to
/// the invoice table's rowid.
pub(super) struct MergeChild {
    pub table: String,
    pub fk: String,
}

fn add(total: &mut Amount, v: ValueRef) {
    let x = match v {
        ValueRef::Integer(i) => Amount::Integer(i),
        ValueRef::Real(r) => Amount::Real(r),
        _ => return,
    };
    *total = match (*total, x) {
        // Past i64, sums go on as reals (as SQLite's total() does) instead of failing.
        (Amount::Integer(a), Amount::Integer(b)) => match a.checked_add(b) {
            Some(s) => Amount::Integer(s),
            None => Amount::Real(a as f64 + b as f64),
        },
        (a, b) => Amount::Real(a.as_f64() + b.as_f64()),
    };
}

/// Whether a UNIQUE index (or primary key) of the invoice table covers exactly the series and
/// number columns, so no number repeats within a series.
pub(super) fn numbers_unique(conn: &Connection, d: &Description) -> rusqlite::Result<bool> {
    let Some(number) = &d.number_column else {
        return Ok(false);
    };
    let mut want: Vec<String> = d
        .series_column
        .iter()
        .chain(std::iter::once(number))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    want.sort();
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM pragma_index_list(?1) WHERE \"unique\" = 1 AND partial = 0")?
        .query_map([&d.invoice_table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for index in indexes {
        let mut cols: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_info(?1)")?
            .query_map([&index], |r| r.get::<_, Option<String>>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .map(|c| c.unwrap_or_default().to_ascii_lowercase())
            .collect();
        cols.sort();
        if cols == want {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A child's row counts per key, in key order.
struct ChildCursor<'s> {
    table: String,
    rows: rusqlite::Rows<'s>,
    head: Option<(i64, u64)>,
    /// A key that is not an integer came up: the SQL join must count this child.
    unusable: bool,
}

impl ChildCursor<'_> {
    /// Moves to the next key that is an integer, skipping NULLs (which join nothing).
    fn advance(&mut self) -> rusqlite::Result<()> {
        self.head = None;
        while let Some(r) = self.rows.next()? {
            let n = r.get::<_, i64>(1)? as u64;
            match r.get_ref(0)? {
                ValueRef::Null => continue,
                ValueRef::Integer(k) => {
                    self.head = Some((k, n));
                    return Ok(());
                }
                ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 9e15 => {
                    self.head = Some((f as i64, n));
                    return Ok(());
                }
                _ => {
                    self.unusable = true;
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// The pass. `merge` lists the children counted by merging (only for a rowid table).
pub(super) fn scan(
    conn: &Connection,
    d: &Description,
    merge: &[MergeChild],
    series_in_pass: bool,
) -> rusqlite::Result<Scanned> {
    let inv = quote(&d.invoice_table);
    let status = d
        .status_column
        .as_ref()
        .map(|s| format!("coalesce(CAST(i.{} AS TEXT), '')", quote(s)))
        .unwrap_or_else(|| "NULL".into());
    let a = format!("i.{}", quote(&d.amount_column));
    // Text amounts become numbers as sum() would read them.
    let amount =
        format!("CASE WHEN typeof({a}) IN ('integer', 'real', 'null') THEN {a} ELSE {a} + 0 END");
    let (series, number) = match (&d.number_column, series_in_pass) {
        (Some(n), true) => {
            let n = format!("i.{}", quote(n));
            let s = d
                .series_column
                .as_ref()
                .map(|s| format!("CAST(i.{} AS TEXT)", quote(s)))
                .unwrap_or_else(|| "NULL".into());
            (
                s,
                format!(
                    "CASE WHEN {} THEN CAST({n} AS INTEGER) END",
                    super::numeric(&n)
                ),
            )
        }
        _ => ("NULL".to_string(), "NULL".to_string()),
    };
    let (key, order) = if merge.is_empty() {
        ("NULL", "")
    } else {
        ("i.rowid", " ORDER BY i.rowid")
    };
    let sql = format!(
        "SELECT coalesce({}, '{UNKNOWN_MONTH}'), {status}, {amount}, {series}, {number}, {key} FROM {inv} AS i{order}",
        month_expr(d, "i")
    );
    let mut children_stmts = Vec::new();
    for c in merge {
        let fk = quote(&c.fk);
        children_stmts.push((
            c.table.clone(),
            conn.prepare(&format!(
                "SELECT {fk}, count(*) FROM {} GROUP BY {fk} ORDER BY {fk}",
                quote(&c.table)
            ))?,
        ));
    }
    let mut cursors = Vec::new();
    for (table, stmt) in children_stmts.iter_mut() {
        let mut cur = ChildCursor {
            table: table.clone(),
            rows: stmt.query([])?,
            head: None,
            unusable: false,
        };
        cur.advance()?;
        cursors.push(cur);
    }
    let mut months: BTreeMap<String, MonthFacts> = BTreeMap::new();
    let mut series_acc: BTreeMap<String, (u64, i64, i64)> = BTreeMap::new();
    let mut unnamed_series: Option<(u64, i64, i64)> = None;
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        // Borrowed, not allocated: a million rows share a few dozen months and statuses.
        let month = r.get_ref(0)?.as_str()?;
        if !months.contains_key(month) {
            let children = merge.iter().map(|c| (c.table.clone(), 0)).collect();
            months.insert(
                month.to_string(),
                MonthFacts {
                    month: month.to_string(),
                    invoices: 0,
                    total: Amount::Integer(0),
                    by_status: BTreeMap::new(),
                    children,
                },
            );
        }
        let Some(e) = months.get_mut(month) else {
            continue;
        };
        e.invoices += 1;
        let amount = r.get_ref(2)?;
        add(&mut e.total, amount);
        if let ValueRef::Text(st) = r.get_ref(1)? {
            let st = std::str::from_utf8(st).unwrap_or_default();
            if !e.by_status.contains_key(st) {
                e.by_status.insert(
                    st.to_string(),
                    StatusFacts {
                        invoices: 0,
                        total: Amount::Integer(0),
                    },
                );
            }
            if let Some(s) = e.by_status.get_mut(st) {
                s.invoices += 1;
                add(&mut s.total, amount);
            }
        }
        if let ValueRef::Integer(n) = r.get_ref(4)? {
            let series = match r.get_ref(3)? {
                ValueRef::Text(t) => Some(std::str::from_utf8(t).unwrap_or_default()),
                _ => None,
            };
            let acc = match series {
                Some(name) => {
                    if !series_acc.contains_key(name) {
                        series_acc.insert(name.to_string(), (0, n, n));
                    }
                    series_acc.get_mut(name)
                }
                None => Some(unnamed_series.get_or_insert((0, n, n))),
            };
            if let Some(s) = acc {
                s.0 += 1;
                s.1 = s.1.min(n);
                s.2 = s.2.max(n);
            }
        }
        if let Some(id) = r.get::<_, Option<i64>>(5)? {
            for c in cursors.iter_mut().filter(|c| !c.unusable) {
                // Keys below this invoice's rowid have no invoice (orphans): skip them.
                while matches!(c.head, Some((k, _)) if k < id) {
                    c.advance()?;
                }
                if let Some((k, n)) = c.head {
                    if k == id {
                        if let Some(count) = e.children.get_mut(c.table.as_str()) {
                            *count += n;
                        }
                        c.advance()?;
                    }
                }
            }
        }
    }
    // Keys past the last invoice are orphans, unless one is not an integer (text sorts after
    // every number): such a child needs the join, which compares by value.
    for c in cursors.iter_mut() {
        while c.head.is_some() && !c.unusable {
            c.advance()?;
        }
    }
    let children_done = cursors
        .iter()
        .filter(|c| !c.unusable)
        .map(|c| c.table.clone())
        .collect();
    Ok(Scanned {
        months,
        children_done,
        series: series_in_pass.then(|| {
            // NULL sorts first, as in the SQL query's ORDER BY.
            let unnamed = unnamed_series.map(|acc| (None, acc));
            unnamed
                .into_iter()
                .chain(series_acc.into_iter().map(|(s, acc)| (Some(s), acc)))
                .map(|(series, (count, min, max))| SeriesFacts {
                    series,
                    count,
                    min,
                    max,
                })
                .collect()
        }),
    })
}
