//! The checks a drill runs on a restored copy: SQLite's integrity check (one task per table,
//! plus `quick_check` for what only a whole-database check sees), `foreign_key_check`, row
//! counts, and the invoice facts against the manifest. Tasks run concurrently on separate
//! read-only connections; every check is recorded, none stops the others.

use crate::facts::{BusinessFacts, MonthFacts, SeriesFacts};
use crate::repo::manifest::Manifest;
use crate::report::model::{Check, CheckKind, MonthRow, Status};
use crate::source::facts::{self, quote};
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// How many missing invoice numbers a gap warning lists.
const GAPS_LISTED: usize = 20;

/// What the checks found: every check, and the facts measured on the copy.
pub(super) struct Findings {
    pub checks: Vec<Check>,
    pub facts: Option<BusinessFacts>,
}

pub(super) fn check(kind: CheckKind, subject: Option<String>, status: Status) -> Check {
    Check {
        kind,
        subject,
        status,
        expected: None,
        actual: None,
        detail: None,
    }
}

/// One unit of work on its own connection.
enum Task {
    /// `PRAGMA integrity_check(<table>)`: the table and its indexes.
    TableIntegrity(String),
    /// `PRAGMA quick_check`: page accounting and the freelist, which per-table checks skip.
    WholeQuickCheck,
    ForeignKeys,
    RowCounts,
    Facts,
}

impl Task {
    fn name(&self) -> String {
        match self {
            Task::TableIntegrity(t) => format!("integrity_check({t})"),
            Task::WholeQuickCheck => "quick_check".into(),
            Task::ForeignKeys => "foreign_key_check".into(),
            Task::RowCounts => "row counts".into(),
            Task::Facts => "invoice facts".into(),
        }
    }
}

enum Outcome {
    Integrity(Vec<String>),
    Checks(Vec<Check>),
    Facts(Option<Box<BusinessFacts>>, Vec<Check>),
}

/// Runs every check on the restored database at `path` against manifest `m`.
pub(super) fn run(path: &Path, m: &Manifest) -> Findings {
    let tables = match crate::paths::open_immutable(path)
        .and_then(|c| crate::engine::restore::tables_by_size(&c, m))
    {
        Ok(t) => t,
        Err(e) => {
            let mut c = check(CheckKind::IntegrityCheck, None, Status::Failed);
            c.detail = Some(format!("SQLite cannot open the restored database: {e}"));
            return Findings {
                checks: vec![c],
                facts: None,
            };
        }
    };
    // Longest first, so no core idles at the end: the invoice facts (a pass over the invoices
    // and their children), then each table's integrity check by size, the whole-database
    // quick_check, and the short ones.
    let mut tasks = vec![Task::Facts];
    tasks.extend(tables.into_iter().map(Task::TableIntegrity));
    tasks.extend([Task::WholeQuickCheck, Task::ForeignKeys, Task::RowCounts]);
    let outcomes = crate::engine::parallel::each(&tasks, |task| {
        let t = std::time::Instant::now();
        let out = run_task(path, m, task);
        tracing::debug!("drill task {} took {:?}", task.name(), t.elapsed());
        out
    });
    let mut problems = Vec::new();
    let (mut rest, mut facts) = (Vec::new(), None);
    for o in outcomes {
        match o {
            Outcome::Integrity(p) => problems.extend(p),
            Outcome::Checks(c) => rest.extend(c),
            Outcome::Facts(f, c) => {
                facts = f.map(|f| *f);
                rest.extend(c);
            }
        }
    }
    let mut integrity = check(
        CheckKind::IntegrityCheck,
        None,
        if problems.is_empty() {
            Status::Passed
        } else {
            Status::Failed
        },
    );
    integrity.expected = Some("ok".into());
    integrity.actual = Some(if problems.is_empty() {
        "ok".into()
    } else {
        format!(
            "{} problems: {}",
            problems.len(),
            problems.first().cloned().unwrap_or_default()
        )
    });
    if problems.len() > 1 {
        integrity.detail = Some(
            problems
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    // Order of the report: integrity, foreign keys, row counts, invoices.
    rest.sort_by_key(|c| c.kind);
    let mut checks = vec![integrity];
    checks.extend(rest);
    Findings { checks, facts }
}

/// Ordinary tables, the costliest to check first, so the longest check starts first.
fn run_task(path: &Path, m: &Manifest, task: &Task) -> Outcome {
    let conn = match crate::paths::open_immutable(path) {
        Ok(c) => c,
        Err(e) => return Outcome::Integrity(vec![format!("cannot open the copy: {e}")]),
    };
    match task {
        Task::TableIntegrity(t) => Outcome::Integrity(pragma_lines(
            &conn,
            &format!("PRAGMA integrity_check({})", quote(t)),
        )),
        Task::WholeQuickCheck => Outcome::Integrity(pragma_lines(&conn, "PRAGMA quick_check")),
        Task::ForeignKeys => Outcome::Checks(vec![foreign_keys(&conn)]),
        Task::RowCounts => Outcome::Checks(row_counts(&conn, m)),
        Task::Facts => match &m.business {
            Some(expected) => {
                let (facts, checks) = business(&conn, expected);
                Outcome::Facts(facts.map(Box::new), checks)
            }
            None => Outcome::Facts(None, Vec::new()),
        },
    }
}

/// The problems a check pragma reports (none when it says `ok`).
fn pragma_lines(conn: &Connection, sql: &str) -> Vec<String> {
    facts::check_problems(conn, sql).unwrap_or_else(|e| vec![e.to_string()])
}

fn foreign_keys(conn: &Connection) -> Check {
    let rows: rusqlite::Result<Vec<(String, Option<i64>, String)>> =
        conn.prepare("PRAGMA foreign_key_check").and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        });
    let mut c = check(CheckKind::ForeignKeyCheck, None, Status::Passed);
    c.expected = Some("0 violations".into());
    match rows {
        Ok(v) if v.is_empty() => c.actual = Some("0 violations".into()),
        Ok(v) => {
            c.status = Status::Failed;
            c.actual = Some(format!("{} violations", v.len()));
            let mut per: BTreeMap<(String, String), (u64, Option<i64>)> = BTreeMap::new();
            for (table, rowid, parent) in v {
                let e = per.entry((table, parent)).or_insert((0, rowid));
                e.0 += 1;
            }
            let said: Vec<String> = per
                .iter()
                .map(|((t, p), (n, first))| match first {
                    Some(r) => {
                        format!("{n} rows of {t} refer to missing rows of {p} (first: rowid {r})")
                    }
                    None => format!("{n} rows of {t} refer to missing rows of {p}"),
                })
                .collect();
            c.subject = per.keys().next().map(|(t, _)| t.clone());
            c.detail = Some(said.join("; "));
        }
        Err(e) => {
            c.status = Status::Failed;
            c.detail = Some(format!("foreign_key_check could not run: {e}"));
        }
    }
    c
}

fn row_counts(conn: &Connection, m: &Manifest) -> Vec<Check> {
    let actual = match crate::source::count_rows(conn) {
        Ok(a) => a,
        Err(e) => {
            let mut c = check(CheckKind::RowCount, None, Status::Failed);
            c.detail = Some(format!("the tables could not be counted: {e}"));
            return vec![c];
        }
    };
    let names: BTreeSet<&String> = m.tables.keys().chain(actual.keys()).collect();
    names
        .into_iter()
        .map(|t| {
            let (want, got) = (m.tables.get(t), actual.get(t));
            let mut c = check(
                CheckKind::RowCount,
                Some(t.clone()),
                if want == got {
                    Status::Passed
                } else {
                    Status::Failed
                },
            );
            c.expected = Some(want.map_or("no such table".into(), u64::to_string));
            c.actual = Some(got.map_or("no such table".into(), u64::to_string));
            c
        })
        .collect()
}

/// Measures the copy with the description the backup used and compares month by month.
fn business(conn: &Connection, expected: &BusinessFacts) -> (Option<BusinessFacts>, Vec<Check>) {
    let d = &expected.description;
    let actual = match facts::measure(conn, d) {
        Ok(a) => a,
        Err(e) => {
            let mut c = check(CheckKind::InvoicesPerMonth, None, Status::Failed);
            c.detail = Some(format!(
                "the invoices of the restored copy could not be measured: {e}"
            ));
            return (None, vec![c]);
        }
    };
    let mut checks = compare_months(expected, &actual);
    checks.extend(gaps(conn, &actual));
    (Some(actual), checks)
}

fn month_summary(f: Option<&MonthFacts>) -> String {
    match f {
        Some(f) => format!("{} invoices, total {}", f.invoices, f.total),
        None => "0 invoices".into(),
    }
}

/// Whether two months hold the same invoices by count, total and status (children apart).
fn same_invoices(a: Option<&MonthFacts>, b: Option<&MonthFacts>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.invoices == b.invoices
                && a.total.same_as(b.total)
                && a.by_status.len() == b.by_status.len()
                && a.by_status.iter().all(|(k, s)| {
                    b.by_status
                        .get(k)
                        .is_some_and(|t| t.invoices == s.invoices && t.total.same_as(s.total))
                })
        }
        (None, None) => true,
        _ => false,
    }
}

fn compare_months(expected: &BusinessFacts, actual: &BusinessFacts) -> Vec<Check> {
    let exp: BTreeMap<&str, &MonthFacts> = expected
        .months
        .iter()
        .map(|m| (m.month.as_str(), m))
        .collect();
    let act: BTreeMap<&str, &MonthFacts> = actual
        .months
        .iter()
        .map(|m| (m.month.as_str(), m))
        .collect();
    let months: BTreeSet<&str> = exp.keys().chain(act.keys()).copied().collect();
    let mut checks = Vec::new();
    for month in &months {
        let (e, a) = (exp.get(month).copied(), act.get(month).copied());
        let ok = same_invoices(e, a);
        let mut c = check(
            CheckKind::InvoicesPerMonth,
            Some(month.to_string()),
            if ok { Status::Passed } else { Status::Failed },
        );
        c.expected = Some(month_summary(e));
        c.actual = Some(month_summary(a));
        if !ok {
            let statuses: BTreeSet<&String> = e
                .iter()
                .chain(a.iter())
                .flat_map(|m| m.by_status.keys())
                .collect();
            let differing: Vec<String> = statuses
                .into_iter()
                .filter_map(|s| {
                    let x = e.and_then(|m| m.by_status.get(s));
                    let y = a.and_then(|m| m.by_status.get(s));
                    let same = matches!((x, y), (Some(x), Some(y)) if x.invoices == y.invoices && x.total.same_as(y.total));
                    (!same).then(|| {
                        let show = |v: Option<&crate::facts::StatusFacts>| {
                            v.map_or("none".to_string(), |v| format!("{} ({})", v.invoices, v.total))
                        };
                        format!("status {s:?}: {} expected, {} restored", show(x), show(y))
                    })
                })
                .collect();
            if !differing.is_empty() {
                c.detail = Some(differing.join("; "));
            }
        }
        checks.push(c);
    }
    for child in &expected.description.children {
        let t = &child.table;
        let differing: Vec<String> = months
            .iter()
            .filter_map(|month| {
                let x = exp
                    .get(month)
                    .and_then(|m| m.children.get(t))
                    .copied()
                    .unwrap_or(0);
                let y = act
                    .get(month)
                    .and_then(|m| m.children.get(t))
                    .copied()
                    .unwrap_or(0);
                (x != y).then(|| format!("{month}: {x} expected, {y} restored"))
            })
            .collect();
        let sum = |f: &BTreeMap<&str, &MonthFacts>| -> u64 {
            f.values().filter_map(|m| m.children.get(t)).sum()
        };
        let mut c = check(
            CheckKind::ChildRows,
            Some(t.clone()),
            if differing.is_empty() {
                Status::Passed
            } else {
                Status::Failed
            },
        );
        c.expected = Some(sum(&exp).to_string());
        c.actual = Some(sum(&act).to_string());
        if !differing.is_empty() {
            c.detail = Some(differing.join("; "));
        }
        checks.push(c);
    }
    checks
}

/// One warning per series with missing numbers, listing the first of them.
fn gaps(conn: &Connection, actual: &BusinessFacts) -> Vec<Check> {
    let d = &actual.description;
    actual
        .series
        .iter()
        .filter(|s| s.missing() > 0)
        .map(|s: &SeriesFacts| {
            let mut c = check(
                CheckKind::NumberingGaps,
                Some(s.series.clone().unwrap_or_default()),
                Status::Warning,
            );
            c.expected = Some(format!("{}..={} without gaps", s.min, s.max));
            match facts::missing_numbers(conn, d, s.series.as_deref(), GAPS_LISTED) {
                Ok((count, first)) => {
                    c.actual = Some(format!("{count} missing"));
                    let list: Vec<String> = first.iter().map(i64::to_string).collect();
                    c.detail = Some(format!(
                        "{count} numbers missing{}: {}{}",
                        s.series
                            .as_deref()
                            .map(|x| format!(" in series {x}"))
                            .unwrap_or_default(),
                        list.join(", "),
                        if count as usize > first.len() {
                            ", …"
                        } else {
                            ""
                        }
                    ));
                }
                Err(e) => {
                    c.actual = Some(format!("{} missing", s.missing()));
                    c.detail = Some(format!("the missing numbers could not be listed: {e}"));
                }
            }
            c
        })
        .collect()
}

/// The per-month table of a report: expected against restored.
pub(super) fn month_rows(
    expected: &BusinessFacts,
    actual: Option<&BusinessFacts>,
) -> Vec<MonthRow> {
    let act: BTreeMap<&str, &MonthFacts> = actual
        .map(|a| a.months.iter().map(|m| (m.month.as_str(), m)).collect())
        .unwrap_or_default();
    let mut months: BTreeSet<&str> = expected.months.iter().map(|m| m.month.as_str()).collect();
    months.extend(act.keys());
    months
        .into_iter()
        .map(|month| {
            let e = expected.months.iter().find(|m| m.month == month);
            let a = act.get(month).copied();
            MonthRow {
                month: month.to_string(),
                expected_invoices: e.map_or(0, |m| m.invoices),
                expected_total: e.map_or_else(Default::default, |m| m.total),
                actual_invoices: actual.map(|_| a.map_or(0, |m| m.invoices)),
                actual_total: actual.map(|_| a.map_or_else(Default::default, |m| m.total)),
                live: None,
                ok: actual.is_some() && same_invoices(e, a),
            }
        })
        .collect()
}
