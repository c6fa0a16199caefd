//! The period as a condition SQLite can answer from an index on the date column. The exact
//! test (`day_expr`, which reads every date format) must look at every invoice; ANDed with
//! ranges of the column's raw values that hold every row the exact test can accept, SQLite
//! walks only the period's entries of the index. Over a snapshot read in place, that is the
//! difference between fetching a month's pages and fetching every invoice page.
//!
//! Which raw values can be in the period, by what SQLite stored (see `day_expr`):
//! - text beginning `YYYY-MM-DD`: text from the first day up to (not including) the day after
//!   the last;
//! - integers and reals (Unix seconds): the period's instants, widened by two days for any UTC
//!   offset;
//! - digit-only text (Unix seconds as text): for each digit count, the same instants as text.
//!   Only a TEXT or untyped column can hold such text (any other affinity stores it as a
//!   number), and only without leading zeros does text order equal number order: a column
//!   holding text that begins with `0` gets no ranges at all.

use super::dates::Period;
use crate::facts::Description;
use crate::source::facts::{day_expr, quote};
use chrono::NaiveTime;
use rusqlite::Connection;

/// Seconds the numeric ranges are widened by on each side (more than any UTC offset).
const SLACK: i64 = 2 * 86_400;

/// The condition that the invoice row aliased `alias` of `schema` is in the period.
pub(super) fn in_period(
    conn: &Connection,
    schema: &str,
    d: &Description,
    period: &Period,
    alias: &str,
) -> rusqlite::Result<String> {
    let exact = period.sql(&day_expr(d, alias));
    let column = format!("{alias}.{}", quote(&d.date_column));
    Ok(match ranges(conn, schema, d, period, &column)? {
        Some(terms) => format!("{exact} AND ({})", terms.join(" OR ")),
        None => exact,
    })
}

/// The ranges, or `None` when they would not help (no index) or not be safe.
fn ranges(
    conn: &Connection,
    schema: &str,
    d: &Description,
    period: &Period,
    column: &str,
) -> rusqlite::Result<Option<Vec<String>>> {
    if !indexed(conn, schema, &d.invoice_table, &d.date_column)? {
        return Ok(None);
    }
    let Some(after) = period.to.succ_opt() else {
        return Ok(None);
    };
    let mut terms = vec![format!(
        "({column} >= '{}' AND {column} < '{}')",
        period.from_text(),
        after.format("%Y-%m-%d")
    )];
    let lo = period.from.and_time(NaiveTime::MIN).and_utc().timestamp() - SLACK;
    let hi = after.and_time(NaiveTime::MIN).and_utc().timestamp() + SLACK;
    let affinity = affinity(conn, schema, &d.invoice_table, &d.date_column)?;
    if affinity != Affinity::Text {
        terms.push(format!("({column} >= {lo} AND {column} <= {hi})"));
    }
    if matches!(affinity, Affinity::Text | Affinity::Blob) {
        let zero: Option<i64> = conn
            .query_row(
                &format!(
                    "SELECT 1 FROM {schema}.{} WHERE {c} >= '0' AND {c} < '1' LIMIT 1",
                    quote(&d.invoice_table),
                    c = quote(&d.date_column)
                ),
                [],
                |r| r.get(0),
            )
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        if zero.is_some() {
            return Ok(None);
        }
        terms.extend(
            digit_ranges(lo.max(10_000), hi)
                .map(|(a, b)| format!("({column} >= '{a}' AND {column} <= '{b}')")),
        );
    }
    Ok(Some(terms))
}

/// `lo ..= hi` split by number of digits, so that each part compares as text like numbers.
fn digit_ranges(lo: i64, hi: i64) -> impl Iterator<Item = (i64, i64)> {
    let mut parts = Vec::new();
    let mut start = lo;
    while start <= hi {
        let digits = start.checked_ilog10().unwrap_or(0) + 1;
        let top = 10i64
            .checked_pow(digits)
            .map_or(i64::MAX, |p| p - 1)
            .min(hi);
        parts.push((start, top));
        if top == i64::MAX {
            break;
        }
        start = top + 1;
    }
    parts.into_iter()
}

#[derive(Debug, PartialEq, Eq)]
enum Affinity {
    Text,
    Blob,
    /// INTEGER, REAL or NUMERIC: digit-only text is stored as a number.
    Numeric,
}

/// The column's affinity by SQLite's rules for its declared type.
fn affinity(
    conn: &Connection,
    schema: &str,
    table: &str,
    column: &str,
) -> rusqlite::Result<Affinity> {
    let declared: String = conn
        .query_row(
            "SELECT upper(type) FROM pragma_table_info(?1, ?2) WHERE name = ?3 COLLATE NOCASE",
            [table, schema, column],
            |r| r.get(0),
        )
        .or_else(|e| match e {
            // `rowid` itself: an integer.
            rusqlite::Error::QueryReturnedNoRows => Ok("INTEGER".into()),
            e => Err(e),
        })?;
    Ok(if declared.contains("INT") {
        Affinity::Numeric
    } else if ["CHAR", "CLOB", "TEXT"]
        .iter()
        .any(|t| declared.contains(t))
    {
        Affinity::Text
    } else if declared.is_empty() || declared.contains("BLOB") {
        Affinity::Blob
    } else {
        Affinity::Numeric
    })
}

/// Whether a complete (not partial) index of `table` begins with `column`.
fn indexed(conn: &Connection, schema: &str, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_index_list(?1, ?2) AS l
                        JOIN pragma_index_info(l.name, ?2) AS i
                        WHERE l.partial = 0 AND i.seqno = 0 AND i.name = ?3 COLLATE NOCASE)",
        [table, schema, column],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(table: &str, date: &str, offset: Option<&str>) -> Description {
        Description {
            invoice_table: table.into(),
            date_column: date.into(),
            amount_column: "rowid".into(),
            key_columns: vec!["rowid".into()],
            children: Vec::new(),
            status_column: None,
            number_column: None,
            series_column: None,
            utc_offset: offset.map(String::from),
            list: None,
        }
    }

    #[test]
    fn digit_ranges_split_where_the_digit_count_changes() {
        assert_eq!(
            digit_ranges(99_990, 100_005).collect::<Vec<_>>(),
            vec![(99_990, 99_999), (100_000, 100_005)]
        );
        assert_eq!(
            digit_ranges(1_709_078_400, 1_712_000_000).collect::<Vec<_>>(),
            vec![(1_709_078_400, 1_712_000_000)]
        );
        assert_eq!(digit_ranges(10, 5).count(), 0);
    }

    /// Every date form `day_expr` reads, in columns of each affinity, with and without an
    /// index: the fast condition selects exactly the rows the exact one does.
    #[test]
    fn the_ranges_select_exactly_the_period() {
        let values: Vec<rusqlite::types::Value> = {
            use rusqlite::types::Value::*;
            let mut v = vec![Null, Blob(vec![1, 2]), Text("soon".into())];
            for day in [
                "2024-02-29",
                "2024-03-01",
                "2024-03-15",
                "2024-03-31",
                "2024-04-01",
            ] {
                v.push(Text(day.into()));
                v.push(Text(format!("{day} 23:59:59.250")));
                v.push(Text(format!("{day}T00:30:00+08:00")));
                v.push(Text(format!("{day}T23:30:00Z")));
            }
            for secs in [
                1_709_164_799i64,
                1_709_164_800,
                1_711_000_000,
                1_711_929_599,
                1_711_929_600,
            ] {
                v.push(Integer(secs));
                v.push(Real(secs as f64 + 0.5));
                v.push(Text(secs.to_string()));
            }
            v
        };
        let period = Period::parse("2024-03", "2024-03").unwrap();
        for declared in ["TEXT", "INTEGER", "REAL", "", "BLOB", "DATE", "VARCHAR(30)"] {
            for index in [false, true] {
                for offset in [None, Some("+08:00"), Some("-05:00")] {
                    let conn = Connection::open_in_memory().unwrap();
                    conn.execute_batch(&format!(
                        "CREATE TABLE \"inv list\" (\"issued on\" {declared});"
                    ))
                    .unwrap();
                    if index {
                        conn.execute_batch("CREATE INDEX d ON \"inv list\"(\"issued on\");")
                            .unwrap();
                    }
                    for v in &values {
                        conn.execute("INSERT INTO \"inv list\" VALUES (?1)", [v])
                            .unwrap();
                    }
                    let d = description("inv list", "issued on", offset);
                    let rows = |cond: &str| -> Vec<i64> {
                        conn.prepare(&format!(
                            "SELECT rowid FROM main.\"inv list\" AS p WHERE {cond} ORDER BY rowid"
                        ))
                        .unwrap()
                        .query_map([], |r| r.get(0))
                        .unwrap()
                        .collect::<rusqlite::Result<_>>()
                        .unwrap()
                    };
                    let exact = rows(&period.sql(&day_expr(&d, "p")));
                    let fast = in_period(&conn, "main", &d, &period, "p").unwrap();
                    assert!(!exact.is_empty());
                    assert_eq!(
                        rows(&fast),
                        exact,
                        "{declared:?} index {index} {offset:?}: {fast}"
                    );
                    assert_eq!(fast.contains(" OR "), index, "{declared:?}");
                }
            }
        }
    }

    #[test]
    fn text_with_a_leading_zero_gets_no_ranges() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE inv (day TEXT); CREATE INDEX d ON inv(day);
             INSERT INTO inv VALUES ('01709164800'), ('2024-03-02');",
        )
        .unwrap();
        let d = description("inv", "day", None);
        let period = Period::parse("2024-02", "2024-03").unwrap();
        let cond = in_period(&conn, "main", &d, &period, "p").unwrap();
        assert!(!cond.contains(" OR "), "{cond}");
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM inv AS p WHERE {cond}"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 2);
    }
}
