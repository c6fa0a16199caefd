//! Markdown, for tickets and chat: the verdict on the first line, then the facts, the totals
//! and every difference.

use super::labels::tr;
use super::model::{ReconcileReport, Verdict};
use super::{facts, summary, tables, verdict_word};
use crate::report::markdown::{cell, inline, table_head, table_row};
use crate::report::Lang;
use std::fmt::Write;

pub fn render(r: &ReconcileReport, lang: Lang) -> String {
    let mut out = String::new();
    let mark = match r.verdict {
        Verdict::Matches => "✅",
        Verdict::Differences => "❌",
    };
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        out,
        "# {mark} {} — {}: {} ↔ {}: {}\n",
        verdict_word(r.verdict, lang),
        tr("Source", lang),
        inline(&r.source.name),
        tr("List", lang),
        inline(&r.list.file)
    );
    let _ = writeln!(out, "{}\n", cell(&summary(r, lang)));
    for (key, value) in facts(r, lang) {
        let _ = writeln!(out, "- **{key}:** {}", cell(&value));
    }
    for t in tables(r, lang) {
        let _ = writeln!(out, "\n## {}\n", t.title);
        if t.rows.is_empty() {
            let _ = writeln!(out, "{}", t.none);
            continue;
        }
        table_head(&mut out, &t.head);
        for row in &t.rows {
            let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
            table_row(&mut out, &cells);
        }
    }
    out
}
