//! HTML: one self-contained page in the drill report's style (its CSS, no scripts, fonts or
//! links to fetch). Every data value goes through [`esc`].

use super::labels::tr;
use super::model::{ReconcileReport, Verdict};
use super::{facts, summary, tables, verdict_word};
use crate::report::html::{esc, CSS};
use crate::report::Lang;
use std::fmt::Write;

pub fn render(r: &ReconcileReport, lang: Lang) -> String {
    let (class, word) = match r.verdict {
        Verdict::Matches => ("passed", "matches"),
        Verdict::Differences => ("failed", "differences"),
    };
    let title = format!(
        "{} — {} — {} ↔ {}",
        tr("Reconciliation", lang),
        verdict_word(r.verdict, lang),
        r.source.name,
        r.list.file
    );
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        lang.tag(),
        esc(&title)
    );
    let _ = writeln!(
        out,
        "<section class=\"drill reconcile\">\n<div id=\"verdict\" class=\"verdict {class}\" data-verdict=\"{word}\"><span class=\"word\">{}</span> <span class=\"route\">{} ↔ {}</span></div>",
        esc(verdict_word(r.verdict, lang)),
        esc(&r.source.name),
        esc(&r.list.file)
    );
    let _ = writeln!(out, "<p class=\"summary\">{}</p>", esc(&summary(r, lang)));
    out.push_str("<dl class=\"facts\">\n");
    for (key, value) in facts(r, lang) {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", esc(key), esc(&value));
    }
    out.push_str("</dl>\n");
    for t in tables(r, lang) {
        let _ = writeln!(out, "<h2>{}</h2>", esc(t.title));
        if t.rows.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", esc(t.none));
            continue;
        }
        out.push_str("<table>\n<tr>");
        for h in &t.head {
            let _ = write!(out, "<th>{}</th>", esc(h));
        }
        out.push_str("</tr>\n");
        let class = if t.differences {
            " class=\"failed\""
        } else {
            ""
        };
        for row in &t.rows {
            let _ = write!(out, "<tr{class}>");
            for c in row {
                // Counts and amounts line up on the right, as in the drill report.
                let num = !c.is_empty() && c.parse::<f64>().is_ok();
                let td = if num { "<td class=\"num\">" } else { "<td>" };
                let _ = write!(out, "{td}{}</td>", esc(c));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n</main>\n</body>\n</html>\n");
    out
}
