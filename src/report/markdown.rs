//! Markdown, for tickets and chat: the verdict on the first line, then the facts, every
//! check, and the invoices per month with differences marked.

use super::labels::{self, label, Key, Lang};
use super::model::{DrillReport, Status};
use super::units::bytes;
use super::view::{self, MonthDiff};
use std::fmt::Write;

pub fn render(reports: &[&DrillReport], lang: Lang) -> String {
    if reports.is_empty() {
        return format!("{}\n", label(Key::NoReports, lang));
    }
    let parts: Vec<String> = reports.iter().map(|r| one(r, lang)).collect();
    parts.join("\n---\n\n")
}

fn one(r: &DrillReport, lang: Lang) -> String {
    let l = |k| label(k, lang);
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let mark = match r.verdict {
        super::model::Verdict::Passed => "✅",
        super::model::Verdict::Failed => "❌",
    };
    let _ = writeln!(
        out,
        "# {mark} {} — {}: {} → {}: {}\n",
        l(labels::verdict(r.verdict)),
        l(Key::Source),
        inline(&r.source.name),
        l(Key::Target),
        inline(&r.target),
    );
    let _ = writeln!(
        out,
        "{} {} · {}\n",
        l(Key::Title),
        r.id,
        view::check_summary(&r.checks, lang)
    );

    let mut facts: Vec<(Key, String)> = vec![
        (
            Key::Source,
            format!("{} ({})", inline(&r.source.name), inline(&r.source.path)),
        ),
        (Key::Target, inline(&r.target)),
    ];
    match &r.snapshot {
        Some(s) => {
            facts.push((
                Key::Snapshot,
                format!("{} ({})", inline(&s.id), cell(&s.kind)),
            ));
            facts.push((Key::SnapshotTime, cell(&s.time)));
            let signer = match &s.signer {
                Some(signer) => inline(signer),
                None => l(Key::Unsigned).to_string(),
            };
            facts.push((Key::Signer, signer));
        }
        None => facts.push((Key::Snapshot, format!("**{}**", l(Key::NoSnapshot)))),
    }
    facts.push((Key::Rto, objective(&r.rto, lang)));
    facts.push((Key::Rpo, objective(&r.rpo, lang)));
    facts.push((Key::BytesRead, bytes(r.bytes_read)));
    facts.push((Key::Started, cell(&r.started)));
    facts.push((Key::Finished, cell(&r.finished)));
    facts.push((Key::Host, cell(&r.host)));
    for (key, value) in facts {
        let _ = writeln!(out, "- **{}:** {value}", l(key));
    }

    let _ = writeln!(out, "\n## {}\n", l(Key::Checks));
    table_head(
        &mut out,
        &[
            l(Key::Check),
            l(Key::Subject),
            l(Key::Status),
            l(Key::Expected),
            l(Key::Actual),
            l(Key::Detail),
        ],
    );
    for c in &r.checks {
        let status = format!("{} {}", status_mark(c.status), l(labels::status(c.status)));
        // A failure stands out in plain text too.
        let status = if c.status == Status::Failed {
            format!("**{status}**")
        } else {
            status
        };
        let row = [
            l(labels::kind(c.kind)).to_string(),
            opt(&c.subject),
            status,
            opt(&c.expected),
            opt(&c.actual),
            opt(&c.detail),
        ];
        table_row(&mut out, &row);
    }

    let _ = writeln!(out, "\n## {}\n", l(Key::Months));
    if r.months.is_empty() {
        let _ = writeln!(out, "{}", l(Key::NoMonths));
    } else {
        months(&mut out, r, lang);
    }
    out
}

fn months(out: &mut String, r: &DrillReport, lang: Lang) {
    let l = |k| label(k, lang);
    let with_live = r.months.iter().any(|m| m.live.is_some());
    let mut head = vec![
        l(Key::Month),
        l(Key::ExpectedInvoices),
        l(Key::ExpectedTotal),
        l(Key::ActualInvoices),
        l(Key::ActualTotal),
    ];
    if with_live {
        head.extend([
            l(Key::LiveInvoices),
            l(Key::LiveTotal),
            l(Key::Missing),
            l(Key::Extra),
            l(Key::AmountDifference),
        ]);
    }
    head.push(l(Key::Match));
    table_head(out, &head);
    for m in &r.months {
        let d = MonthDiff::of(m);
        let unreadable = || l(Key::Unreadable).to_string();
        let mut row = vec![
            cell(&m.month),
            m.expected_invoices.to_string(),
            m.expected_total.to_string(),
            marked(
                m.actual_invoices.map_or_else(unreadable, |n| n.to_string()),
                d.actual_invoices,
            ),
            marked(
                m.actual_total.map_or_else(unreadable, |t| t.to_string()),
                d.actual_total,
            ),
        ];
        if with_live {
            match &m.live {
                Some(live) => row.extend([
                    marked(live.invoices.to_string(), d.live_invoices),
                    marked(live.total.to_string(), d.live_total),
                    marked(live.missing.to_string(), d.missing),
                    marked(live.extra.to_string(), d.extra),
                    marked(live.amount_difference.to_string(), d.amount_difference),
                ]),
                None => row.extend(std::iter::repeat_n(String::new(), 5)),
            }
        }
        row.push(if view::month_ok(m) {
            format!("✓ {}", l(Key::Matches))
        } else {
            format!("**✗ {}**", l(Key::Differs))
        });
        table_row(out, &row);
    }
}

fn objective(o: &super::model::Objective, lang: Lang) -> String {
    let text = view::objective(o, lang);
    if view::objective_missed(o) {
        format!("**{text}** ❌")
    } else {
        text
    }
}

/// A differing figure: bold with a cross, readable without colour.
fn marked(value: String, differs: bool) -> String {
    if differs {
        format!("**{value}** ✗")
    } else {
        value
    }
}

fn status_mark(s: Status) -> &'static str {
    match s {
        Status::Passed => "✅",
        Status::Warning => "⚠️",
        Status::Failed => "❌",
        Status::Skipped => "⏭️",
    }
}

fn opt(value: &Option<String>) -> String {
    value.as_deref().map(cell).unwrap_or_default()
}

/// Text safe inside a table cell: a `|` would end the cell and a line break the row; a `<`
/// could start HTML that a viewer hides; backslashes are doubled so an escape we add cannot
/// be cancelled by the data.
pub fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '<' => out.push_str("\\<"),
            '\r' => {}
            '\n' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

/// A data value outside tables shown as code (ids, names, paths), so `*` or `_` in it are
/// not markup; a backtick would end the code span, a line break the line.
pub(crate) fn inline(text: &str) -> String {
    let text: String = text
        .chars()
        .filter(|&c| c != '\r')
        .map(|c| match c {
            '`' => '\'',
            '\n' => ' ',
            c => c,
        })
        .collect();
    format!("`{text}`")
}

pub(crate) fn table_head(out: &mut String, head: &[&str]) {
    let row: Vec<String> = head.iter().map(|h| cell(h)).collect();
    let _ = writeln!(out, "| {} |", row.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(head.len()));
}

pub(crate) fn table_row(out: &mut String, row: &[String]) {
    let _ = writeln!(out, "| {} |", row.join(" | "));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::units::duration;

    #[test]
    fn cells_escape_pipes_and_line_breaks() {
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(cell("a\\|b"), "a\\\\\\|b");
        assert_eq!(cell("one\r\ntwo"), "one two");
        assert_eq!(cell("发票 <b>1</b> & 2"), "发票 \\<b>1\\</b> & 2");
        assert_eq!(inline("x`|y\nz"), "`x'|y z`");
    }

    #[test]
    fn duration_is_used_for_objectives() {
        // Guards against the Markdown showing raw milliseconds.
        let o = super::super::model::Objective::new(90_000, None);
        assert!(objective(&o, Lang::En).starts_with(&duration(90_000)));
    }
}
