//! How a child table's rows belong to invoices: the child's columns and the invoice columns
//! they refer to, from the description's `fk`, the child's declared FOREIGN KEY, the invoice
//! table's primary key or rowid, or its key columns.

use super::quote;
use crate::facts::{ChildTable, Description};
use rusqlite::Connection;
use std::collections::BTreeMap;

/// How a child table's rows belong to invoices: pairs of (child column, invoice column). An
/// empty `fk` takes the columns of the child's one declared FOREIGN KEY to the invoice table.
/// `Err` says why the link cannot be told.
pub fn link(
    conn: &Connection,
    d: &Description,
    child: &ChildTable,
) -> rusqlite::Result<Result<Vec<(String, String)>, String>> {
    let mut fk: Vec<String> = child.fk.names().iter().map(|c| c.to_string()).collect();
    if fk.is_empty() {
        let mut declared: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        let mut stmt = conn.prepare(
            "SELECT id, \"from\" FROM pragma_foreign_key_list(?1) WHERE \"table\" = ?2 COLLATE NOCASE ORDER BY id, seq",
        )?;
        let rows = stmt.query_map([child.table.as_str(), d.invoice_table.as_str()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (id, from) = row?;
            declared.entry(id).or_default().push(from);
        }
        let mut keys = declared.into_values();
        match (keys.next(), keys.next()) {
            (Some(one), None) => fk = one,
            (None, _) => {
                return Ok(Err(format!(
                    "the child table {} declares no FOREIGN KEY to the invoice table {}; name its columns in fk",
                    quote(&child.table),
                    quote(&d.invoice_table)
                )))
            }
            (Some(_), Some(_)) => {
                return Ok(Err(format!(
                    "the child table {} declares several FOREIGN KEYs to the invoice table {}; name the columns of one in fk",
                    quote(&child.table),
                    quote(&d.invoice_table)
                )))
            }
        }
    }
    let names: Vec<&str> = fk.iter().map(String::as_str).collect();
    Ok(parent_columns(conn, d, &child.table, &names)?
        .map(|parent| fk.iter().cloned().zip(parent).collect()))
}

/// The invoice columns a child's `fk` columns refer to: its declared FOREIGN KEY to the
/// invoice table, else the invoice table's primary key (or rowid) or key columns of the same
/// width. `Err` says why none fits.
pub(super) fn parent_columns(
    conn: &Connection,
    d: &Description,
    child: &str,
    fk: &[&str],
) -> rusqlite::Result<Result<Vec<String>, String>> {
    let mut declared: BTreeMap<i64, Vec<(String, Option<String>)>> = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT id, \"from\", \"to\" FROM pragma_foreign_key_list(?1) WHERE \"table\" = ?2 COLLATE NOCASE ORDER BY id, seq",
    )?;
    let rows = stmt.query_map([child, d.invoice_table.as_str()], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    for row in rows {
        let (id, from, to) = row?;
        declared.entry(id).or_default().push((from, to));
    }
    let primary: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")?
        .query_map([d.invoice_table.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for cols in declared.values() {
        // The description's fk columns, in its order, matched to a declared key's columns.
        let at: Option<Vec<usize>> = fk
            .iter()
            .map(|f| {
                cols.iter()
                    .position(|(from, _)| f.eq_ignore_ascii_case(from))
            })
            .collect();
        let Some(at) = at.filter(|_| cols.len() == fk.len()) else {
            continue;
        };
        if cols.iter().all(|(_, to)| to.is_some()) {
            return Ok(Ok(at.iter().filter_map(|&k| cols[k].1.clone()).collect()));
        }
        // `REFERENCES t` without columns: the primary key, column by column in key order.
        if primary.len() == fk.len() {
            return Ok(Ok(at.iter().map(|&k| primary[k].clone()).collect()));
        }
    }
    let without_rowid: bool = conn
        .query_row(
            "SELECT sql LIKE '%WITHOUT%ROWID%' FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
            [d.invoice_table.as_str()],
            |r| r.get(0),
        )
        .unwrap_or(false);
    if fk.len() == 1 && !without_rowid && primary.len() <= 1 {
        return Ok(Ok(vec![primary
            .into_iter()
            .next()
            .unwrap_or_else(|| "rowid".into())]));
    }
    if primary.len() == fk.len() {
        return Ok(Ok(primary));
    }
    if d.key_columns.len() == fk.len() {
        return Ok(Ok(d.key_columns.clone()));
    }
    let fk: Vec<String> = fk.iter().map(|c| quote(c)).collect();
    Ok(Err(format!(
        "cannot tell which columns of the invoice table {} the child table {}'s {} refer to; declare a FOREIGN KEY",
        quote(&d.invoice_table),
        quote(child),
        fk.join(", ")
    )))
}
