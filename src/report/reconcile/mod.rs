//! Reconciliation reports: the data ([`model`]) and its renderings, siblings of the drill
//! report: Markdown for the ticket, JSON for machines, one self-contained HTML page for
//! auditors. Both text renderings are built from the same [`Table`]s, so they say the same.

mod html;
pub mod labels;
mod markdown;
pub mod model;

use super::{Format, Lang};
use crate::facts::Amount;
use labels::tr;
use model::{Held, ReconcileReport, SnapshotRef, Verdict};

/// Renders the report; labels follow `lang`, data does not (JSON has no labels).
pub fn render(r: &ReconcileReport, format: Format, lang: Lang) -> String {
    match format {
        Format::Markdown => markdown::render(r, lang),
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_else(|e| {
            let message = serde_json::Value::String(format!("report could not be written: {e}"));
            format!("{{\"error\": {message}}}")
        }),
        Format::Html => html::render(r, lang),
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

pub fn verdict_word(v: Verdict, lang: Lang) -> &'static str {
    match v {
        Verdict::Matches => tr("Matches", lang),
        Verdict::Differences => tr("Differences", lang),
    }
}

/// One line under the verdict: the period and how many differences of each kind.
pub fn summary(r: &ReconcileReport, lang: Lang) -> String {
    let period = match &r.period {
        Some(p) => labels::period(&p.from, &p.to, lang),
        None => tr("the list holds no invoices", lang).to_string(),
    };
    let counts = [
        r.missing_in_database.len(),
        r.missing_in_list.len(),
        r.differing.len(),
        r.duplicates.len(),
    ];
    format!(
        "{} · {period} · {}",
        tr("Reconciliation", lang),
        labels::counts(counts, lang)
    )
}

/// The facts block: what was compared with what.
pub fn facts(r: &ReconcileReport, lang: Lang) -> Vec<(&'static str, String)> {
    let l = &r.list;
    let mut how = vec![l.format.clone()];
    how.extend(l.encoding.clone());
    how.extend(l.sheet.as_ref().map(|s| labels::sheet(s, lang)));
    how.push(labels::header_row(l.header_row, lang));
    if !l.skipped_rows.is_empty() {
        let rows: Vec<String> = l.skipped_rows.iter().map(usize::to_string).collect();
        how.push(labels::skipped(&rows.join(", "), lang));
    }
    let searched = if r.searched.is_empty() {
        tr("none (no invoice needed it)", lang).to_string()
    } else {
        let each: Vec<String> = r
            .searched
            .iter()
            .map(|s| labels::snapshots(&s.target, s.snapshots, lang))
            .collect();
        each.join(", ")
    };
    vec![
        (
            tr("Source", lang),
            format!("{} ({})", r.source.name, r.source.path),
        ),
        (tr("List", lang), format!("{} ({})", l.file, how.join(", "))),
        (
            tr("Period", lang),
            r.period
                .as_ref()
                .map_or("—".into(), |p| format!("{} … {}", p.from, p.to)),
        ),
        (tr("Snapshots searched", lang), searched),
        (tr("Started", lang), r.started.clone()),
        (tr("Host", lang), r.host.clone()),
    ]
}

pub fn tables(r: &ReconcileReport, lang: Lang) -> Vec<Table> {
    let word = |en| tr(en, lang);
    let t = &r.totals;
    let totals = Table {
        title: word("Totals"),
        head: vec!["", word("Invoices"), word("Amount")],
        rows: vec![
            vec![
                word("List").into(),
                t.list.invoices.to_string(),
                t.list.amount.to_string(),
            ],
            vec![
                word("Database").into(),
                t.database.invoices.to_string(),
                t.database.amount.to_string(),
            ],
            vec![
                word("List − database").into(),
                (i128::from(t.list.invoices) - i128::from(t.database.invoices)).to_string(),
                t.list.amount.minus(t.database.amount).to_string(),
            ],
        ],
        none: "",
        differences: false,
    };
    let missing_db = Table {
        title: word("In the list, not in the database"),
        head: vec![
            word("Invoice"),
            word("Row"),
            word("Date"),
            word("Amount"),
            word("Newest snapshot with it"),
            word("Since"),
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
                            if h.in_latest {
                                word("(the newest)")
                            } else {
                                ""
                            }
                        ),
                        snapshot(&h.first),
                    ),
                    None => (word("none").into(), "—".into()),
                };
                let mut row = vec![m.key.join("/"), m.row.to_string()];
                row.extend(held(&m.list, lang));
                row.extend([last, since]);
                row
            })
            .collect(),
        none: word("None."),
        differences: true,
    };
    let missing_list = Table {
        title: word("In the database, not in the list"),
        head: vec![word("Invoice"), word("Date"), word("Amount")],
        rows: r
            .missing_in_list
            .iter()
            .map(|m| {
                let mut row = vec![m.key.join("/")];
                row.extend(held(&m.database, lang));
                row
            })
            .collect(),
        none: word("None."),
        differences: true,
    };
    let differing = Table {
        title: word("Amount or date differs"),
        head: vec![
            word("Invoice"),
            word("Row"),
            word("Differs"),
            word("List date"),
            word("Database date"),
            word("List amount"),
            word("Database amount"),
        ],
        rows: r
            .differing
            .iter()
            .map(|d| {
                let (l, b) = (held(&d.list, lang), held(&d.database, lang));
                vec![
                    d.key.join("/"),
                    d.row.to_string(),
                    d.fields
                        .iter()
                        .map(|f| field(f, lang))
                        .collect::<Vec<_>>()
                        .join(", "),
                    l[0].clone(),
                    b[0].clone(),
                    l[1].clone(),
                    b[1].clone(),
                ]
            })
            .collect(),
        none: word("None."),
        differences: true,
    };
    let duplicates = Table {
        title: word("In the list more than once"),
        head: vec![word("Invoice"), word("Rows")],
        rows: r
            .duplicates
            .iter()
            .map(|d| {
                let rows: Vec<String> = d.rows.iter().map(usize::to_string).collect();
                vec![d.key.join("/"), rows.join(", ")]
            })
            .collect(),
        none: word("None."),
        differences: true,
    };
    let warnings = Table {
        title: word("Warnings"),
        head: vec![word("Warning")],
        rows: r.warnings.iter().map(|w| vec![w.clone()]).collect(),
        none: word("None."),
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

fn held(h: &Held, lang: Lang) -> [String; 2] {
    [
        h.date.clone().unwrap_or_else(|| tr("no date", lang).into()),
        h.amount
            .map_or(tr("no amount", lang).into(), |a: Amount| a.to_string()),
    ]
}

/// A differing field's name (`amount`, `date`) in `lang`.
fn field(f: &str, lang: Lang) -> &'static str {
    match f {
        "amount" => tr("amount", lang),
        "date" => tr("date", lang),
        _ => "?",
    }
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
