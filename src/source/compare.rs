//! Row-by-row comparison of two databases, used to prove a restore gives back exactly the
//! data (not only the same bytes).

use crate::paths::sqlite_filename;
use rusqlite::Connection;
use std::path::Path;

/// Tables whose rows differ between `a` and `b` (or exist in only one), with a count each.
/// An empty result means every table holds the same rows.
pub fn differing_tables(a: &Path, b: &Path) -> rusqlite::Result<Vec<String>> {
    use std::os::unix::ffi::OsStrExt;
    let conn = Connection::open_with_flags(
        sqlite_filename(a),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    // The file name's bytes as they are (SQLite reads a blob argument as text unchanged), so
    // a name that is not UTF-8 is not altered on the way.
    conn.execute(
        "ATTACH DATABASE ?1 AS other",
        [sqlite_filename(b).as_os_str().as_bytes()],
    )?;
    let list = |schema: &str| -> rusqlite::Result<Vec<String>> {
        conn.prepare(&format!(
            "SELECT name FROM {schema}.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        ))?
        .query_map([], |r| r.get(0))?
        .collect()
    };
    let (ta, tb) = (list("main")?, list("other")?);
    let mut out = Vec::new();
    for t in ta.iter().filter(|t| !tb.contains(t)) {
        out.push(format!("{t}: only in {}", a.display()));
    }
    for t in tb.iter().filter(|t| !ta.contains(t)) {
        out.push(format!("{t}: only in {}", b.display()));
    }
    for t in ta.iter().filter(|t| tb.contains(t)) {
        let q = t.replace('"', "\"\"");
        let n: i64 = conn.query_row(
            &format!(
                "SELECT (SELECT count(*) FROM (SELECT * FROM main.\"{q}\" EXCEPT SELECT * FROM other.\"{q}\"))
                      + (SELECT count(*) FROM (SELECT * FROM other.\"{q}\" EXCEPT SELECT * FROM main.\"{q}\"))"
            ),
            [],
            |r| r.get(0),
        )?;
        if n > 0 {
            out.push(format!("{t}: {n} rows differ"));
        }
    }
    Ok(out)
}
