//! The difference between a snapshot's period and the live database, table by table: rows
//! missing live, rows changed (which columns, the snapshot's and the live values), rows only
//! live. Also the period's invoice count and total on either side.

use super::dates::Period;
use super::plan::TablePlan;
use crate::facts::{Amount, Description};
use crate::source::facts::quote;
use rusqlite::types::Value;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value as Json;

#[derive(Debug, Clone, Serialize)]
pub struct TableDiff {
    pub table: String,
    /// `invoices` or `child`.
    pub role: String,
    /// The columns a row's key lists (`rowid` for a table without a primary key).
    pub key_columns: Vec<String>,
    /// Keys of the snapshot's rows the live database lacks.
    pub missing: Vec<Vec<Json>>,
    pub changed: Vec<ChangedRow>,
    /// Keys of live rows the snapshot does not hold.
    pub extra: Vec<Vec<Json>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangedRow {
    pub key: Vec<Json>,
    pub columns: Vec<ColumnChange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnChange {
    pub column: String,
    pub snapshot: Json,
    pub live: Json,
}

/// How many invoices the period holds and their total.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Figures {
    pub invoices: u64,
    pub total: Amount,
}

impl Figures {
    pub fn same_as(&self, other: &Figures) -> bool {
        self.invoices == other.invoices && self.total.same_as(other.total)
    }
}

pub(super) fn table_diff(conn: &Connection, plan: &TablePlan) -> rusqlite::Result<TableDiff> {
    let t = plan.quoted();
    let keys = |sql: &str| -> rusqlite::Result<Vec<Vec<Json>>> {
        let t = std::time::Instant::now();
        let mut stmt = conn.prepare(sql)?;
        let n = stmt.column_count();
        let rows = stmt.query_map([], |r| {
            (0..n).map(|k| r.get::<_, Value>(k).map(json)).collect()
        })?;
        let rows = rows.collect();
        tracing::debug!("{sql}: {:?}", t.elapsed());
        rows
    };
    let missing = keys(&format!(
        "SELECT {} FROM snap.{t} AS s WHERE {} ORDER BY 1",
        plan.identity_of("s"),
        plan.missing()
    ))?;
    let extra = keys(&format!(
        "SELECT {} FROM main.{t} AS l WHERE {} ORDER BY 1",
        plan.identity_of("l"),
        plan.extra()
    ))?;
    let cols = &plan.shape.columns;
    let select: Vec<String> = cols
        .iter()
        .map(|c| format!("s.{q}, l.{q}, s.{q} IS l.{q}", q = quote(&c.name)))
        .collect();
    let sql = format!(
        "SELECT {}, {} {} ORDER BY 1",
        plan.identity_of("s"),
        select.join(", "),
        plan.changed_join()
    );
    let width = plan.identity.len();
    let started = std::time::Instant::now();
    let mut stmt = conn.prepare(&sql)?;
    let changed = stmt
        .query_map([], |r| {
            let key = (0..width)
                .map(|k| r.get::<_, Value>(k).map(json))
                .collect::<rusqlite::Result<_>>()?;
            let mut columns = Vec::new();
            for (k, c) in cols.iter().enumerate() {
                let at = width + 3 * k;
                if !r.get::<_, bool>(at + 2)? {
                    columns.push(ColumnChange {
                        column: c.name.clone(),
                        snapshot: json(r.get(at)?),
                        live: json(r.get(at + 1)?),
                    });
                }
            }
            Ok(ChangedRow { key, columns })
        })?
        .collect::<rusqlite::Result<_>>()?;
    tracing::debug!("{sql}: {:?}", started.elapsed());
    Ok(TableDiff {
        table: plan.table.clone(),
        role: plan.role.into(),
        key_columns: plan.identity.iter().map(|(n, _)| n.clone()).collect(),
        missing,
        changed,
        extra,
    })
}

/// The period's invoices in `schema` (`main` or `snap`): how many, and their total.
pub(super) fn figures(
    conn: &Connection,
    d: &Description,
    schema: &str,
    period: &Period,
) -> rusqlite::Result<Figures> {
    let sql = format!(
        "SELECT count(*), sum(i.{}) FROM {schema}.{} AS i WHERE {}",
        quote(&d.amount_column),
        quote(&d.invoice_table),
        super::range::in_period(conn, schema, d, period, "i")?
    );
    conn.query_row(&sql, [], |r| {
        let total = match r.get::<_, Value>(1)? {
            Value::Integer(i) => Amount::Integer(i),
            Value::Real(f) => Amount::Real(f),
            _ => Amount::Integer(0),
        };
        Ok(Figures {
            invoices: r.get::<_, i64>(0)? as u64,
            total,
        })
    })
}

/// A SQLite value as JSON: a blob as `x'…'` hex, as SQL writes it.
pub(super) fn json(v: Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Integer(i) => Json::from(i),
        Value::Real(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Value::Text(s) => Json::String(s),
        Value::Blob(b) => Json::String(format!("x'{}'", hex::encode(b))),
    }
}
