//! HTML: one self-contained page (inline CSS and SVG, no scripts, fonts or links to fetch),
//! to attach to a ticket or open from a mail. Every data value goes through [`esc`].

use super::chart::{self, Goals};
use super::labels::{self, label, Key, Lang};
use super::model::{Check, DrillReport, MonthRow, Objective, Status, Verdict};
use super::units::bytes;
use super::view::{self, MonthDiff};
use std::fmt::Write;

/// System fonts only, CJK ones included, so Chinese labels render without a download.
pub(crate) const CSS: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif; margin: 0; padding: 24px; color: #111827; background: #f9fafb; }
main { max-width: 1200px; margin: 0 auto; }
section.drill { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 0 24px 24px; margin-bottom: 32px; }
.verdict { margin: 0 -24px 16px; padding: 18px 24px; border-radius: 8px 8px 0 0; font-size: 1.5em; color: #fff; }
.verdict.passed { background: #15803d; }
.verdict.failed { background: #b91c1c; }
.verdict .word { font-weight: 700; letter-spacing: 0.04em; margin-right: 0.6em; }
.summary { color: #374151; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.facts dt { font-weight: 600; color: #374151; }
dl.facts dd { margin: 0; }
.missed { color: #b91c1c; font-weight: 600; }
code, .id { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Noto Sans Mono CJK SC", monospace; font-size: 0.92em; word-break: break-all; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 0.92em; }
th, td { border: 1px solid #e5e7eb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.months td { white-space: nowrap; }
tr.failed td { background: #fee2e2; }
tr.failed td.status { color: #991b1b; font-weight: 700; }
tr.warning td { background: #fef3c7; }
tr.warning td.status { color: #92400e; font-weight: 700; }
tr.skipped td { color: #6b7280; }
td.diff { background: #fecaca; color: #7f1d1d; font-weight: 700; }
tr.differs td.match { color: #b91c1c; font-weight: 700; }
svg.chart { max-width: 100%; height: auto; font-size: 12px; background: #fff; }
svg.chart .x-label.failed { fill: #b91c1c; font-weight: 700; }
"#;

pub fn render(reports: &[&DrillReport], lang: Lang) -> String {
    let l = |k| label(k, lang);
    let title = match reports.first() {
        Some(r) => format!(
            "{} {} — {} — {} → {}",
            l(Key::Title),
            r.id,
            l(labels::verdict(r.verdict)),
            r.source.name,
            r.target
        ),
        None => l(Key::Title).to_string(),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        lang.tag(),
        esc(&title)
    );
    if reports.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", esc(l(Key::NoReports)));
    }
    for (i, r) in reports.iter().enumerate() {
        // The newest drill's banner and chart have the plain ids; the others are numbered.
        let suffix = if i == 0 {
            String::new()
        } else {
            format!("-{}", i + 1)
        };
        section(&mut out, r, &suffix, lang);
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn section(out: &mut String, r: &DrillReport, suffix: &str, lang: Lang) {
    let l = |k| label(k, lang);
    let verdict = match r.verdict {
        Verdict::Passed => "passed",
        Verdict::Failed => "failed",
    };
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        out,
        "<section class=\"drill\" data-drill=\"{}\">\n<div id=\"verdict{suffix}\" class=\"verdict {verdict}\" data-verdict=\"{verdict}\"><span class=\"word\">{}</span> <span class=\"route\">{} → {}</span></div>",
        r.id,
        esc(l(labels::verdict(r.verdict))),
        esc(&r.source.name),
        esc(&r.target),
    );
    let _ = writeln!(
        out,
        "<p class=\"summary\">{} {} · {}</p>",
        esc(l(Key::Title)),
        r.id,
        esc(&view::check_summary(&r.checks, lang))
    );

    out.push_str("<dl class=\"facts\">\n");
    let mut fact = |key: Key, value: String| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{value}</dd>", esc(l(key)));
    };
    fact(
        Key::Source,
        format!(
            "<span class=\"id\">{}</span> (<code>{}</code>)",
            esc(&r.source.name),
            esc(&r.source.path)
        ),
    );
    fact(Key::Target, format!("<code>{}</code>", esc(&r.target)));
    match &r.snapshot {
        Some(s) => {
            fact(
                Key::Snapshot,
                format!(
                    "<code id=\"snapshot{suffix}\">{}</code> ({})",
                    esc(&s.id),
                    esc(&s.kind)
                ),
            );
            fact(Key::SnapshotTime, esc(&s.time));
            let signer = match &s.signer {
                Some(signer) => format!("<code>{}</code>", esc(signer)),
                None => esc(l(Key::Unsigned)),
            };
            fact(Key::Signer, signer);
        }
        None => fact(
            Key::Snapshot,
            format!("<span class=\"missed\">{}</span>", esc(l(Key::NoSnapshot))),
        ),
    }
    fact(Key::Rto, objective(&r.rto, lang));
    fact(Key::Rpo, objective(&r.rpo, lang));
    fact(Key::BytesRead, esc(&bytes(r.bytes_read)));
    fact(Key::Started, esc(&r.started));
    fact(Key::Finished, esc(&r.finished));
    fact(Key::Host, esc(&r.host));
    out.push_str("</dl>\n");

    let _ = writeln!(out, "<h2>{}</h2>", esc(l(Key::Checks)));
    checks(out, &r.checks, lang);

    let _ = writeln!(out, "<h2>{}</h2>", esc(l(Key::Months)));
    if r.months.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", esc(l(Key::NoMonths)));
    } else {
        months(out, &r.months, lang);
    }

    let _ = writeln!(out, "<h2>{}</h2>", esc(l(Key::History)));
    let goals = Goals {
        rto_ms: r.rto.objective_ms,
        rpo_ms: r.rpo.objective_ms,
    };
    let _ = writeln!(
        out,
        "<figure>{}</figure>",
        chart::svg(&format!("chart{suffix}"), &r.history, &goals, lang)
    );
    out.push_str("</section>\n");
}

fn checks(out: &mut String, checks: &[Check], lang: Lang) {
    let l = |k| label(k, lang);
    out.push_str("<table class=\"checks\">\n<thead><tr>");
    for key in [
        Key::Check,
        Key::Subject,
        Key::Status,
        Key::Expected,
        Key::Actual,
        Key::Detail,
    ] {
        let _ = write!(out, "<th>{}</th>", esc(l(key)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for c in checks {
        let class = match c.status {
            Status::Passed => "passed",
            Status::Warning => "warning",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        };
        let opt = |v: &Option<String>| v.as_deref().map(esc).unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr class=\"{class}\" data-status=\"{class}\"><td>{}</td><td><code>{}</code></td><td class=\"status\">{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            esc(l(labels::kind(c.kind))),
            opt(&c.subject),
            esc(l(labels::status(c.status))),
            opt(&c.expected),
            opt(&c.actual),
            opt(&c.detail),
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn months(out: &mut String, months: &[MonthRow], lang: Lang) {
    let l = |k| label(k, lang);
    let with_live = months.iter().any(|m| m.live.is_some());
    let mut head = vec![
        Key::Month,
        Key::ExpectedInvoices,
        Key::ExpectedTotal,
        Key::ActualInvoices,
        Key::ActualTotal,
    ];
    if with_live {
        head.extend([
            Key::LiveInvoices,
            Key::LiveTotal,
            Key::Missing,
            Key::Extra,
            Key::AmountDifference,
        ]);
    }
    head.push(Key::Match);
    out.push_str("<table class=\"months\">\n<thead><tr>");
    for key in head {
        let _ = write!(out, "<th>{}</th>", esc(l(key)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for m in months {
        let d = MonthDiff::of(m);
        let ok = view::month_ok(m);
        let unreadable = || l(Key::Unreadable).to_string();
        let _ = write!(
            out,
            "<tr class=\"{}\" data-month=\"{}\"><td>{}</td>",
            if ok { "matches" } else { "differs" },
            esc(&m.month),
            esc(&m.month)
        );
        num(out, &m.expected_invoices.to_string(), false);
        num(out, &m.expected_total.to_string(), false);
        num(
            out,
            &m.actual_invoices.map_or_else(unreadable, |n| n.to_string()),
            d.actual_invoices,
        );
        num(
            out,
            &m.actual_total.map_or_else(unreadable, |t| t.to_string()),
            d.actual_total,
        );
        if with_live {
            match &m.live {
                Some(live) => {
                    num(out, &live.invoices.to_string(), d.live_invoices);
                    num(out, &live.total.to_string(), d.live_total);
                    num(out, &live.missing.to_string(), d.missing);
                    num(out, &live.extra.to_string(), d.extra);
                    num(
                        out,
                        &live.amount_difference.to_string(),
                        d.amount_difference,
                    );
                }
                None => out.push_str(&"<td></td>".repeat(5)),
            }
        }
        let word = if ok { Key::Matches } else { Key::Differs };
        let mark = if ok { "✓" } else { "✗" };
        let _ = writeln!(out, "<td class=\"match\">{mark} {}</td></tr>", esc(l(word)));
    }
    out.push_str("</tbody>\n</table>\n");
}

fn num(out: &mut String, value: &str, differs: bool) {
    let class = if differs { "num diff" } else { "num" };
    let _ = write!(out, "<td class=\"{class}\">{}</td>", esc(value));
}

fn objective(o: &Objective, lang: Lang) -> String {
    let text = esc(&view::objective(o, lang));
    if view::objective_missed(o) {
        format!("<span class=\"missed\">{text}</span>")
    } else {
        text
    }
}

/// Text safe in element content and in quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::units::duration;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(esc("发票 №1"), "发票 №1");
        assert_eq!(esc("&amp;"), "&amp;amp;");
    }

    #[test]
    fn durations_are_words_not_milliseconds() {
        let o = Objective::new(7_500_000, Some(3_600_000));
        let text = objective(&o, Lang::En);
        assert!(
            text.contains(&duration(7_500_000)) && text.contains("missed"),
            "{text}"
        );
    }
}
