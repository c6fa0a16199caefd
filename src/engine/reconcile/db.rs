//! The invoices of a database (the live one, or a snapshot's copy) as `reconcile` compares
//! them: key values as text, the issue day, and the amount. Every identifier is quoted.

use crate::facts::{Amount, Description};
use crate::source::facts::{offset_seconds, quote};
use chrono::NaiveDate;
use rusqlite::types::Value;
use rusqlite::{Connection, Row};

/// One invoice of the database.
#[derive(Debug, Clone, PartialEq)]
pub struct DbInvoice {
    pub key: Vec<String>,
    /// `None` when the date column holds no date.
    pub date: Option<NaiveDate>,
    /// `None` when the amount column holds no number.
    pub amount: Option<Amount>,
}

/// The SQL expression of an invoice's day (`YYYY-MM-DD`, or NULL), read the way the business
/// facts read months: numbers are Unix seconds shifted by `utc_offset`, text starting
/// `YYYY-MM-DD` is the day as written, text of digits only is Unix seconds.
pub fn day_expr(d: &Description, alias: &str) -> String {
    let c = format!("{alias}.{}", quote(&d.date_column));
    let shift = d
        .utc_offset
        .as_deref()
        .and_then(offset_seconds)
        .unwrap_or(0);
    format!(
        "CASE WHEN typeof({c}) IN ('integer', 'real') THEN strftime('%Y-%m-%d', {c}, 'unixepoch', '{shift} seconds') \
         WHEN typeof({c}) <> 'text' THEN NULL \
         WHEN {c} GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]*' THEN CASE WHEN julianday(substr({c}, 1, 10)) IS NOT NULL THEN substr({c}, 1, 10) END \
         WHEN length({c}) > 4 AND {c} NOT GLOB '*[^0-9]*' THEN strftime('%Y-%m-%d', CAST({c} AS INTEGER), 'unixepoch', '{shift} seconds') \
         END"
    )
}

fn select(d: &Description) -> String {
    let keys: Vec<String> = d
        .key_columns
        .iter()
        .map(|k| format!("i.{}", quote(k)))
        .collect();
    format!(
        "SELECT {}, i.{}, {} AS day FROM {} AS i",
        keys.join(", "),
        quote(&d.amount_column),
        day_expr(d, "i"),
        quote(&d.invoice_table)
    )
}

/// The invoices whose day is within `from..=to`.
pub fn in_period(
    conn: &Connection,
    d: &Description,
    from: NaiveDate,
    to: NaiveDate,
) -> rusqlite::Result<Vec<DbInvoice>> {
    let sql = format!("SELECT * FROM ({}) WHERE day BETWEEN ?1 AND ?2", select(d));
    let mut stmt = conn.prepare(&sql)?;
    let n = d.key_columns.len();
    let rows = stmt.query_map([from.to_string(), to.to_string()], |r| invoice(r, n))?;
    rows.collect()
}

/// Looks invoices up by key, one prepared statement for all of them.
pub struct Lookup<'c> {
    stmt: rusqlite::Statement<'c>,
    width: usize,
}

impl<'c> Lookup<'c> {
    pub fn new(conn: &'c Connection, d: &Description) -> rusqlite::Result<Lookup<'c>> {
        let wheres: Vec<String> = d
            .key_columns
            .iter()
            .enumerate()
            .map(|(k, c)| format!("i.{} = ?{}", quote(c), k + 1))
            .collect();
        let sql = format!("{} WHERE {} LIMIT 1", select(d), wheres.join(" AND "));
        Ok(Lookup {
            stmt: conn.prepare(&sql)?,
            width: d.key_columns.len(),
        })
    }

    pub fn find(&mut self, key: &[String]) -> rusqlite::Result<Option<DbInvoice>> {
        let width = self.width;
        let mut rows = self.stmt.query(rusqlite::params_from_iter(key))?;
        match rows.next()? {
            Some(r) => invoice(r, width).map(Some),
            None => Ok(None),
        }
    }
}

fn invoice(r: &Row, width: usize) -> rusqlite::Result<DbInvoice> {
    let mut key = Vec::with_capacity(width);
    for k in 0..width {
        key.push(text(r.get::<_, Value>(k)?));
    }
    let amount = match r.get::<_, Value>(width)? {
        Value::Integer(i) => Some(Amount::Integer(i)),
        Value::Real(x) => Some(Amount::Real(x)),
        Value::Text(t) => t
            .trim()
            .parse::<i64>()
            .map(Amount::Integer)
            .ok()
            .or_else(|| t.trim().parse::<f64>().ok().map(Amount::Real)),
        Value::Null | Value::Blob(_) => None,
    };
    let date = r
        .get::<_, Option<String>>(width + 1)?
        .and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok());
    Ok(DbInvoice { key, date, amount })
}

/// A key value as text, as a list writes it: integers and whole reals without a fraction.
fn text(v: Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Value::Real(x) => x.to_string(),
        Value::Text(t) => t.trim().to_string(),
        Value::Blob(b) => format!("x'{}'", hex::encode(b)),
    }
}
