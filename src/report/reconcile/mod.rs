//! Reconciliation reports: the data ([`model`]) and its renderings, siblings of the drill
//! report: Markdown for the ticket, JSON for machines, one self-contained HTML page for
//! auditors. Both text renderings are built from the same [`Table`]s, so they say the same.

mod html;
mod markdown;
pub mod model;

use super::Format;
use crate::facts::Amount;
use model::{Held, ReconcileReport, SnapshotRef, Verdict};

pub fn render(r: &ReconcileReport, format: Format) -> String {
    match format {
        Format::Markdown => markdown::render(r),
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_else(|e| {
            let message = serde_json::Value::String(format!("report could not be written: {e}"));
            format!("{{\"error\": {message}}}")
        }),
        Format::Html => html::render(r),
    }
}

/// One section of the report: a heading, and a table (or a sentence when it has no rows).
pub struct Table {
    pub title: &'static str,
    pub head: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// Said instead of an empty table.
    pub none: &'static str,
    /// Whether its rows are differences (shown as failures).
    pub differences: bool,
}

pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Matches => "Matches",
        Verdict::Differences => "Differences",
    }
}

/// One line under the verdict: the period and how many differences of each kind.
pub fn summary(r: &ReconcileReport) -> String {
    let period = match &r.period {
        Some(p) => format!("period {} … {}", p.from, p.to),
        None => "the list holds no invoices".to_string(),
    };
    format!(
        "Reconciliation · {period} · {} in the list only, {} in the database only, {} differing, {} duplicated",
        r.missing_in_database.len(),
        r.missing_in_list.len(),
        r.differing.len(),
        r.duplicates.len()
    )
}

/// The facts block: what was compared with what.
pub fn facts(r: &ReconcileReport) -> Vec<(&'static str, String)> {
    let l = &r.list;
    let mut how = vec![l.format.clone()];
    how.extend(l.encoding.clone());
    how.extend(l.sheet.as_ref().map(|s| format!("sheet {s}")));
    how.push(format!("header row {}", l.header_row));
    if !l.skipped_rows.is_empty() {
        let rows: Vec<String> = l.skipped_rows.iter().map(usize::to_string).collect();
        how.push(format!("rows without a key skipped: {}", rows.join(", ")));
    }
    let searched = if r.searched.is_empty() {
        "none (no invoice needed it)".to_string()
    } else {
        let each: Vec<String> = r
            .searched
            .iter()
            .map(|s| format!("{} ({} snapshots)", s.target, s.snapshots))
            .collect();
        each.join(", ")
    };
    vec![
        ("Source", format!("{} ({})", r.source.name, r.source.path)),
        ("List", format!("{} ({})", l.file, how.join(", "))),
        (
            "Period",
            r.period
                .as_ref()
                .map_or("—".into(), |p| format!("{} … {}", p.from, p.to)),
        ),
        ("Snapshots searched", searched),
        ("Started", r.started.clone()),
        ("Host", r.host.clone()),
    ]
}

pub fn tables(r: &ReconcileReport) -> Vec<Table> {
    let t = &r.totals;
    let totals = Table {
        title: "Totals",
        head: vec!["", "Invoices", "Amount"],
        rows: vec![
            vec![
                "List".into(),
                t.list.invoices.to_string(),
                t.list.amount.to_string(),
            ],
            vec![
                "Database".into(),
                t.database.invoices.to_string(),
                t.database.amount.to_string(),
            ],
            vec![
                "List − database".into(),
                (i128::from(t.list.invoices) - i128::from(t.database.invoices)).to_string(),
                t.list.amount.minus(t.database.amount).to_string(),
            ],
        ],
        none: "",
        differences: false,
    };
    let missing_db = Table {
        title: "In the list, not in the database",
        head: vec![
            "Invoice",
            "Row",
            "Date",
            "Amount",
            "Newest snapshot with it",
            "Since",
        ],
        rows: r
            .missing_in_database
            .iter()
            .map(|m| {
                let (last, since) = match m.snapshots.first() {
                    Some(h) => (
                        format!(
                            "{} {}{}",
                            h.target,
                            snapshot(&h.last),
                            if h.in_latest { " (the newest)" } else { "" }
                        ),
                        snapshot(&h.first),
                    ),
                    None => ("none".into(), "—".into()),
                };
                let mut row = vec![m.key.join("/"), m.row.to_string()];
                row.extend(held(&m.list));
                row.extend([last, since]);
                row
            })
            .collect(),
        none: "None.",
        differences: true,
    };
    let missing_list = Table {
        title: "In the database, not in the list",
        head: vec!["Invoice", "Date", "Amount"],
        rows: r
            .missing_in_list
            .iter()
            .map(|m| {
                let mut row = vec![m.key.join("/")];
                row.extend(held(&m.database));
                row
            })
            .collect(),
        none: "None.",
        differences: true,
    };
    let differing = Table {
        title: "Amount or date differs",
        head: vec![
            "Invoice",
            "Row",
            "Differs",
            "List date",
            "Database date",
            "List amount",
            "Database amount",
        ],
        rows: r
            .differing
            .iter()
            .map(|d| {
                let (l, b) = (held(&d.list), held(&d.database));
                vec![
                    d.key.join("/"),
                    d.row.to_string(),
                    d.fields.join(", "),
                    l[0].clone(),
                    b[0].clone(),
                    l[1].clone(),
                    b[1].clone(),
                ]
            })
            .collect(),
        none: "None.",
        differences: true,
    };
    let duplicates = Table {
        title: "In the list more than once",
        head: vec!["Invoice", "Rows"],
        rows: r
            .duplicates
            .iter()
            .map(|d| {
                let rows: Vec<String> = d.rows.iter().map(usize::to_string).collect();
                vec![d.key.join("/"), rows.join(", ")]
            })
            .collect(),
        none: "None.",
        differences: true,
    };
    let warnings = Table {
        title: "Warnings",
        head: vec!["Warning"],
        rows: r.warnings.iter().map(|w| vec![w.clone()]).collect(),
        none: "None.",
        differences: false,
    };
    vec![
        totals,
        missing_db,
        missing_list,
        differing,
        duplicates,
        warnings,
    ]
}

fn snapshot(s: &SnapshotRef) -> String {
    format!("{} ({})", &s.id[..12.min(s.id.len())], s.time)
}

fn held(h: &Held) -> [String; 2] {
    [
        h.date.clone().unwrap_or_else(|| "no date".into()),
        h.amount
            .map_or("no amount".into(), |a: Amount| a.to_string()),
    ]
}

/// A file name part made of the source's name: letters, digits, `-`, `_` and `.` only.
pub fn file_stem(r: &ReconcileReport) -> String {
    let name: String = r
        .source
        .name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let time: String = r
        .started
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("reconcile-{name}-{time}")
}
