//! Business facts and SQLite's check, measured on one connection: the source's inside its read
//! transaction (or on the staged copy of that same image), and a restored copy's in a drill,
//! with the same queries so the two compare exactly. Every identifier is quoted.

use crate::facts::{
    BusinessFacts, Description, SeriesFacts, SourceCheck, SOURCE_CHECK_PROBLEMS, UNKNOWN_MONTH,
};
use rusqlite::Connection;
use std::time::Instant;

/// Which of SQLite's checks a backup runs on the source's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckLevel {
    Off,
    /// `PRAGMA quick_check`: b-tree structure, about 1.7 s per GiB.
    #[default]
    Quick,
    /// `PRAGMA integrity_check`: also indexes against tables, about 7.7 s per GiB.
    Full,
}

/// A quoted SQL identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The problems a check pragma (`quick_check`, `integrity_check`, with or without a table)
/// reports, one per line; none when it says `ok`. SQLite may put several problems in one row,
/// under a "*** in database main ***" line, which is not a problem itself.
pub fn check_problems(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let rows: Vec<String> = conn
        .prepare(sql)?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(Vec::new());
    }
    let problems: Vec<String> = rows
        .iter()
        .flat_map(|r| r.lines())
        .filter(|l| !l.starts_with("***"))
        .map(str::to_string)
        .collect();
    // Not `ok` is a problem even when SQLite said nothing else.
    Ok(if problems.is_empty() { rows } else { problems })
}

/// Runs `PRAGMA quick_check` or `integrity_check` and keeps the first problems it reports.
pub fn run_check(conn: &Connection, level: CheckLevel) -> rusqlite::Result<Option<SourceCheck>> {
    let pragma = match level {
        CheckLevel::Off => return Ok(None),
        CheckLevel::Quick => "quick_check",
        CheckLevel::Full => "integrity_check",
    };
    let started = Instant::now();
    let mut problems = check_problems(conn, &format!("PRAGMA {pragma}({SOURCE_CHECK_PROBLEMS})"))?;
    let ok = problems.is_empty();
    problems.truncate(SOURCE_CHECK_PROBLEMS);
    Ok(Some(SourceCheck {
        pragma: pragma.into(),
        ok,
        problems,
        duration_ms: started.elapsed().as_millis() as u64,
    }))
}

/// Why a description cannot be measured on this database: a table or column it names is
/// missing (with the nearest existing name when it looks like a typo), a child's link to the
/// invoices cannot be told, or the offset is not one. One sentence.
pub fn describe_problem(conn: &Connection, d: &Description) -> rusqlite::Result<Option<String>> {
    let columns = |table: &str| -> rusqlite::Result<Vec<String>> {
        conn.prepare("SELECT name FROM pragma_table_info(?1)")?
            .query_map([table], |r| r.get(0))?
            .collect()
    };
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let inv = columns(&d.invoice_table)?;
    if inv.is_empty() {
        return Ok(Some(format!(
            "the invoice table {} does not exist{}",
            quote(&d.invoice_table),
            did_you_mean(&d.invoice_table, &tables)
        )));
    }
    let named = [
        ("date_column", &d.date_column),
        ("amount_column", &d.amount_column),
    ]
    .into_iter()
    .chain(d.key_columns.iter().map(|c| ("key_columns", c)))
    .chain(d.status_column.iter().map(|c| ("status_column", c)))
    .chain(d.number_column.iter().map(|c| ("number_column", c)))
    .chain(d.series_column.iter().map(|c| ("series_column", c)));
    for (key, c) in named {
        if !inv.iter().any(|x| x.eq_ignore_ascii_case(c)) {
            return Ok(Some(format!(
                "{key} {} is not a column of the invoice table {}{}",
                quote(c),
                quote(&d.invoice_table),
                did_you_mean(c, &inv)
            )));
        }
    }
    for child in &d.children {
        let cols = columns(&child.table)?;
        if cols.is_empty() {
            return Ok(Some(format!(
                "the child table {} does not exist{}",
                quote(&child.table),
                did_you_mean(&child.table, &tables)
            )));
        }
        for c in child.fk.names() {
            if !cols.iter().any(|x| x.eq_ignore_ascii_case(c)) {
                return Ok(Some(format!(
                    "fk {} is not a column of the child table {}{}",
                    quote(c),
                    quote(&child.table),
                    did_you_mean(c, &cols)
                )));
            }
        }
        if let Err(why) = link(conn, d, child)? {
            return Ok(Some(why));
        }
    }
    if let Some(off) = &d.utc_offset {
        if offset_seconds(off).is_none() {
            return Ok(Some(format!(
                "utc_offset {off:?} is not an offset such as \"+08:00\""
            )));
        }
    }
    Ok(None)
}

/// ` (did you mean "x"?)` when one of `names` is close enough to `word` to be a typo of it.
fn did_you_mean(word: &str, names: &[String]) -> String {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    crate::typo::nearest(word, &names)
        .map(|n| format!(" (did you mean {}?)", quote(n)))
        .unwrap_or_default()
}

/// `+08:00` or `-05:30` as seconds.
pub(crate) fn offset_seconds(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 3600 + m * 60))
}

/// The SQL expression of an invoice's month (`YYYY-MM`, or NULL) from the date column of
/// the table aliased `alias`: integers and reals are Unix seconds, shifted by `utc_offset`;
/// text that SQLite reads as a date and starts `YYYY-MM-DD` is the month as written (any zone
/// it names is ignored); text of digits only is Unix seconds; anything else is NULL.
pub fn month_expr(d: &Description, alias: &str) -> String {
    calendar_expr(d, alias, false)
}

/// As [`month_expr`], the invoice's calendar day (`YYYY-MM-DD`, or NULL), read the same way.
pub fn day_expr(d: &Description, alias: &str) -> String {
    calendar_expr(d, alias, true)
}

fn calendar_expr(d: &Description, alias: &str, day: bool) -> String {
    let c = format!("{alias}.{}", quote(&d.date_column));
    let shift = d
        .utc_offset
        .as_deref()
        .and_then(offset_seconds)
        .unwrap_or(0);
    let (fmt, len) = if day { ("%Y-%m-%d", 10) } else { ("%Y-%m", 7) };
    format!(
        "CASE WHEN typeof({c}) IN ('integer', 'real') THEN strftime('{fmt}', {c}, 'unixepoch', '{shift} seconds') \
         WHEN typeof({c}) <> 'text' THEN NULL \
         WHEN {c} GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]*' THEN CASE WHEN julianday({c}) IS NOT NULL THEN substr({c}, 1, {len}) END \
         WHEN length({c}) > 4 AND {c} NOT GLOB '*[^0-9]*' THEN strftime('{fmt}', CAST({c} AS INTEGER), 'unixepoch', '{shift} seconds') \
         END"
    )
}

/// Whether `column` of `table` is its rowid: `rowid` itself, or the INTEGER PRIMARY KEY of a
/// rowid table.
fn rowid_alias(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    if column.eq_ignore_ascii_case("rowid") {
        return Ok(true);
    }
    let without_rowid: bool = conn
        .query_row(
            "SELECT sql LIKE '%WITHOUT%ROWID%' FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
            [table],
            |r| r.get(0),
        )
        .unwrap_or(true);
    let pk: Vec<(String, String)> = conn
        .prepare("SELECT name, upper(type) FROM pragma_table_info(?1) WHERE pk > 0")?
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(!without_rowid
        && matches!(&pk[..], [(name, ty)] if name.eq_ignore_ascii_case(column) && ty == "INTEGER"))
}

/// Invoice facts per month (and per status, children and number series as described).
pub fn measure(conn: &Connection, d: &Description) -> rusqlite::Result<BusinessFacts> {
    let inv = quote(&d.invoice_table);
    let month = month_expr(d, "i");
    // Children keyed by one integer column on the invoices' rowid are merged in the pass.
    let mut merge = Vec::new();
    for child in &d.children {
        if let Ok(pairs) = link(conn, d, child)? {
            if let [(fk, parent)] = &pairs[..] {
                if rowid_alias(conn, &d.invoice_table, parent)? {
                    merge.push(scan::MergeChild {
                        table: child.table.clone(),
                        fk: fk.clone(),
                    });
                }
            }
        }
    }
    let series_in_pass = scan::numbers_unique(conn, d)?;
    let scanned = scan::scan(conn, d, &merge, series_in_pass)?;
    let mut months = scanned.months;
    for child in d
        .children
        .iter()
        .filter(|c| !scanned.children_done.contains(&c.table))
    {
        // A merge that gave up part way left partial counts.
        for e in months.values_mut() {
            e.children.remove(&child.table);
        }
        let (fk, parent): (Vec<String>, Vec<String>) = match link(conn, d, child)? {
            Ok(pairs) => pairs.into_iter().unzip(),
            Err(why) => return Err(rusqlite::Error::ToSqlConversionFailure(why.into())),
        };
        // Child rows are counted per parent key first (along the child's index on it, when
        // there is one), so each invoice is looked up and its month worked out once.
        let keys: Vec<String> = fk
            .iter()
            .enumerate()
            .map(|(k, f)| format!("{} AS k{k}", quote(f)))
            .collect();
        let on: Vec<String> = parent
            .iter()
            .enumerate()
            .map(|(k, p)| format!("c.k{k} = i.{}", quote(p)))
            .collect();
        let sql = format!(
            "SELECT coalesce({month}, '{UNKNOWN_MONTH}'), sum(c.n) \
             FROM (SELECT {}, count(*) AS n FROM {} GROUP BY {}) AS c JOIN {inv} AS i ON {} GROUP BY 1",
            keys.join(", "),
            quote(&child.table),
            (1..=fk.len()).map(|k| k.to_string()).collect::<Vec<_>>().join(", "),
            on.join(" AND ")
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let m: String = r.get(0)?;
            let n = r.get::<_, i64>(1)? as u64;
            if let Some(e) = months.get_mut(&m) {
                e.children.insert(child.table.clone(), n);
            }
        }
    }
    // Months without child rows record 0, so a lost child row is a difference.
    for child in &d.children {
        for e in months.values_mut() {
            e.children.entry(child.table.clone()).or_insert(0);
        }
    }
    // JSON has no infinity: a total that overflowed cannot be recorded, nor compared.
    for e in months.values() {
        let totals = std::iter::once(e.total).chain(e.by_status.values().map(|s| s.total));
        if totals.into_iter().any(|t| !t.as_f64().is_finite()) {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!(
                    "the amounts of month {} do not add up to a finite number",
                    e.month
                )
                .into(),
            ));
        }
    }
    Ok(BusinessFacts {
        description: d.clone(),
        months: months.into_values().collect(),
        series: match scanned.series {
            Some(s) => s,
            None => measure_series(conn, d)?,
        },
    })
}

/// The SQL condition that a number column holds a whole number (integer, or digits as text).
fn numeric(col: &str) -> String {
    format!(
        "(typeof({col}) = 'integer' OR (typeof({col}) = 'text' AND {col} <> '' AND {col} NOT GLOB '*[^0-9]*'))"
    )
}

fn measure_series(conn: &Connection, d: &Description) -> rusqlite::Result<Vec<SeriesFacts>> {
    let Some(number) = &d.number_column else {
        return Ok(Vec::new());
    };
    let n = quote(number);
    let series = d
        .series_column
        .as_ref()
        .map(|s| format!("CAST({} AS TEXT)", quote(s)))
        .unwrap_or_else(|| "NULL".into());
    let sql = format!(
        "SELECT {series}, count(DISTINCT CAST({n} AS INTEGER)), min(CAST({n} AS INTEGER)), max(CAST({n} AS INTEGER)) \
         FROM {} WHERE {} GROUP BY 1 ORDER BY 1",
        quote(&d.invoice_table),
        numeric(&n)
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| {
        Ok(SeriesFacts {
            series: r.get(0)?,
            count: r.get::<_, i64>(1)? as u64,
            min: r.get(2)?,
            max: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// The numbers missing from one series between its lowest and highest: how many, and the
/// first `limit` of them.
pub fn missing_numbers(
    conn: &Connection,
    d: &Description,
    series: Option<&str>,
    limit: usize,
) -> rusqlite::Result<(u64, Vec<i64>)> {
    let Some(number) = &d.number_column else {
        return Ok((0, Vec::new()));
    };
    let n = quote(number);
    let filter = match (&d.series_column, series) {
        // The IN list lets SQLite find the series along an index on its column (it holds
        // every value whose text is ?1); the CAST keeps exactly those.
        (Some(s), Some(_)) => format!(
            "{s} IN (?1, CAST(?1 AS INTEGER), CAST(?1 AS REAL), CAST(?1 AS BLOB)) AND CAST({s} AS TEXT) = ?1",
            s = quote(s)
        ),
        (Some(s), None) => format!("{} IS NULL AND ?1 IS NULL", quote(s)),
        (None, _) => "?1 IS NULL".into(),
    };
    let sql = format!(
        "SELECT DISTINCT CAST({n} AS INTEGER) AS v FROM {} WHERE {} AND {filter} ORDER BY v",
        quote(&d.invoice_table),
        numeric(&n)
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([series])?;
    let (mut count, mut first) = (0u64, Vec::new());
    let mut prev: Option<i64> = None;
    while let Some(r) = rows.next()? {
        let v: i64 = r.get(0)?;
        if let Some(p) = prev {
            let gap = (i128::from(v) - i128::from(p) - 1).clamp(0, i128::from(u64::MAX)) as u64;
            count = count.saturating_add(gap);
            let mut k = p + 1;
            while k < v && first.len() < limit {
                first.push(k);
                k += 1;
            }
        }
        prev = Some(v);
    }
    Ok((count, first))
}

mod link;
mod scan;

pub use link::link;

#[cfg(test)]
mod tests;
