//! `--compare-live`: the closed months of the live database must still hold the invoices the
//! snapshot holds. A closed month that changed is the early alarm of lost (or slipped-in)
//! invoices; each drifting month is named with the invoices missing and extra by key, and the
//! difference in amount.

use super::checks::check;
use crate::facts::{Amount, BusinessFacts, MonthFacts, UNKNOWN_MONTH};
use crate::report::model::{Check, CheckKind, LiveMonth, Status};
use crate::source::facts::{self, month_expr, quote};
use rusqlite::{Connection, OpenFlags};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// The first month that is still open: months before it are closed.
pub(super) fn first_open_month(now: chrono::NaiveDate, open_months: u32) -> String {
    use chrono::Datelike;
    let back = open_months.saturating_sub(1) as i32;
    let index = now.year() * 12 + now.month0() as i32 - back;
    format!(
        "{:04}-{:02}",
        index.div_euclid(12),
        index.rem_euclid(12) + 1
    )
}

/// Compares the closed months (before `first_open`) of the live database at `live` with the
/// snapshot restored at `restored`, whose recorded facts are `snapshot`.
pub(super) fn compare(
    live: &Path,
    restored: &Path,
    snapshot: &BusinessFacts,
    first_open: &str,
) -> (Vec<Check>, BTreeMap<String, LiveMonth>) {
    match compare_inner(live, restored, snapshot, first_open) {
        Ok(r) => r,
        Err(e) => {
            let mut c = check(CheckKind::LiveDrift, None, Status::Failed);
            c.detail = Some(format!(
                "the live database {} could not be compared: {e}",
                live.display()
            ));
            (vec![c], BTreeMap::new())
        }
    }
}

fn compare_inner(
    live: &Path,
    restored: &Path,
    snapshot: &BusinessFacts,
    first_open: &str,
) -> rusqlite::Result<(Vec<Check>, BTreeMap<String, LiveMonth>)> {
    let d = &snapshot.description;
    let conn = Connection::open_with_flags(
        crate::paths::sqlite_uri(live, "mode=ro"),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute(
        "ATTACH DATABASE ?1 AS snap",
        [crate::paths::sqlite_uri(restored, "immutable=1")],
    )?;
    if let Some(why) = facts::describe_problem(&conn, d)? {
        return Err(rusqlite::Error::InvalidParameterName(why));
    }
    // One read transaction: the live figures and the key comparison see the same state.
    conn.execute_batch("BEGIN")?;
    let result = (|| {
        let live_facts = facts::measure(&conn, d)?;
        let closed = |m: &str| m != UNKNOWN_MONTH && m < first_open;
        let snap: BTreeMap<&str, &MonthFacts> = snapshot
            .months
            .iter()
            .filter(|m| closed(&m.month))
            .map(|m| (m.month.as_str(), m))
            .collect();
        let now: BTreeMap<&str, &MonthFacts> = live_facts
            .months
            .iter()
            .filter(|m| closed(&m.month))
            .map(|m| (m.month.as_str(), m))
            .collect();
        let months: BTreeSet<&str> = snap.keys().chain(now.keys()).copied().collect();
        let drifting: Vec<&str> = months
            .iter()
            .copied()
            .filter(|m| {
                let (a, b) = (snap.get(m), now.get(m));
                !matches!((a, b), (Some(a), Some(b)) if a.invoices == b.invoices && a.total.same_as(b.total))
            })
            .collect();
        let (missing, extra) = if drifting.is_empty() {
            (BTreeMap::new(), BTreeMap::new())
        } else {
            (
                by_key(&conn, d, "snap", "main")?,
                by_key(&conn, d, "main", "snap")?,
            )
        };
        let mut table = BTreeMap::new();
        let mut checks = Vec::new();
        for month in &months {
            let (s, l) = (snap.get(month), now.get(month));
            let total = |f: Option<&&MonthFacts>| f.map_or(Amount::Integer(0), |f| f.total);
            let count = |f: Option<&&MonthFacts>| f.map_or(0, |f| f.invoices);
            let lm = LiveMonth {
                invoices: count(l),
                total: total(l),
                missing: missing.get(*month).copied().unwrap_or(0),
                extra: extra.get(*month).copied().unwrap_or(0),
                amount_difference: total(l).minus(total(s)),
            };
            if drifting.contains(month) {
                let mut c = check(
                    CheckKind::LiveDrift,
                    Some(month.to_string()),
                    Status::Failed,
                );
                c.expected = Some(format!("{} invoices, total {}", count(s), total(s)));
                c.actual = Some(format!("{} invoices, total {}", lm.invoices, lm.total));
                c.detail = Some(format!(
                    "closed month {month} changed in the live database: {} invoices missing, {} extra, amount difference {}",
                    lm.missing, lm.extra, lm.amount_difference
                ));
                checks.push(c);
            }
            table.insert(month.to_string(), lm);
        }
        if drifting.is_empty() {
            let mut c = check(
                CheckKind::LiveDrift,
                Some(format!("{} closed months", months.len())),
                Status::Passed,
            );
            c.expected = Some(format!(
                "closed months before {first_open} equal the snapshot"
            ));
            c.actual = Some("equal".into());
            checks.push(c);
        }
        Ok((checks, table))
    })();
    let _ = conn.execute_batch("COMMIT");
    result
}

/// Per month, the invoices of schema `from` that schema `to` has no invoice with the same key.
fn by_key(
    conn: &Connection,
    d: &crate::facts::Description,
    from: &str,
    to: &str,
) -> rusqlite::Result<BTreeMap<String, u64>> {
    let table = quote(&d.invoice_table);
    let same_key: Vec<String> = d
        .key_columns
        .iter()
        .map(|k| format!("o.{0} IS a.{0}", quote(k)))
        .collect();
    let sql = format!(
        "SELECT coalesce({}, '{UNKNOWN_MONTH}'), count(*) FROM {from}.{table} AS a
         WHERE NOT EXISTS (SELECT 1 FROM {to}.{table} AS o WHERE {}) GROUP BY 1",
        month_expr(d, "a"),
        same_key.join(" AND ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::first_open_month;
    use chrono::NaiveDate;

    #[test]
    fn the_current_and_previous_months_are_open_by_default() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(first_open_month(d(2026, 11, 23), 2), "2026-10");
        assert_eq!(first_open_month(d(2026, 1, 5), 2), "2025-12");
        assert_eq!(first_open_month(d(2026, 1, 5), 1), "2026-01");
        assert_eq!(first_open_month(d(2026, 3, 31), 15), "2025-01");
    }
}
