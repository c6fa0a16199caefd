//! `ivault reconcile`: an external invoice list against the live database.

use super::{exit, print_json};
use clap::Args;
use invoice_vault::engine::reconcile::{self, ReconcileJob};
use invoice_vault::engine::Context;
use invoice_vault::facts::ListEncoding;
use invoice_vault::report::reconcile::model::{ReconcileReport, Verdict};
use invoice_vault::report::reconcile::{facts, summary, tables, verdict_word};
use invoice_vault::report::Lang;
use invoice_vault::Result;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct ReconcileArgs {
    /// A source of the --policy, whose [source.business.list] maps the list's columns.
    source: String,
    /// The invoice list: CSV (UTF-8 or GB18030) or a spreadsheet (XLSX).
    #[arg(long, value_name = "FILE")]
    list: PathBuf,
    /// The CSV list's encoding [default: the policy's, else UTF-8 when valid, else GB18030].
    #[arg(long, value_name = "ENCODING", value_parser = parse_encoding)]
    encoding: Option<ListEncoding>,
    /// Search this target's snapshots for invoices the database lacks; repeatable [default:
    /// the source's targets in the policy].
    #[arg(long = "repo", value_name = "TARGET")]
    targets: Vec<String>,
    /// Identity file that reads the targets [default: the policy's identity_file].
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Where the scratch copy for searching snapshots goes [default: the state directory].
    #[arg(long, value_name = "DIR")]
    scratch_dir: Option<PathBuf>,
    /// Write the report as Markdown, JSON and HTML into this directory.
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// The language of the table and the report files' labels: en or zh-CN.
    #[arg(long, default_value = "en", value_parser = parse_lang)]
    lang: Lang,
    #[arg(long)]
    json: bool,
}

fn parse_lang(s: &str) -> std::result::Result<Lang, String> {
    s.parse()
        .map_err(|e: invoice_vault::report::ParseError| e.to_string())
}

fn parse_encoding(s: &str) -> std::result::Result<ListEncoding, String> {
    s.parse()
}

pub(super) fn reconcile_cmd(ctx: &Context, args: ReconcileArgs) -> Result<i32> {
    let job = ReconcileJob {
        source: args.source,
        list: args.list,
        encoding: args.encoding,
        targets: args.targets,
        identity: args.identity,
        scratch_dir: args.scratch_dir,
    };
    let r = reconcile::run(ctx, &job)?;
    if let Some(dir) = &args.report_dir {
        let written = reconcile::write_reports(dir, &r, args.lang)?;
        if !args.json {
            for p in written {
                println!("report: {}", p.display());
            }
        }
    }
    if args.json {
        print_json(&r);
    } else {
        print_table(&r, args.lang);
    }
    Ok(match r.verdict {
        Verdict::Matches => exit::OK,
        Verdict::Differences => exit::DIFFERENCES,
    })
}

/// One screen: the verdict, what was compared, the totals and every difference.
fn print_table(r: &ReconcileReport, lang: Lang) {
    println!(
        "reconcile {} against {}: {}",
        r.source.name,
        r.list.file,
        verdict_word(r.verdict, lang).to_uppercase()
    );
    println!("  {}", summary(r, lang));
    for (key, value) in facts(r, lang).into_iter().skip(1).take(3) {
        println!("  {key}: {value}");
    }
    for t in tables(r, lang) {
        if t.rows.is_empty() {
            continue;
        }
        println!("\n{}:", t.title);
        let mut widths: Vec<usize> = t.head.iter().map(|h| width(h)).collect();
        for row in &t.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(c));
            }
        }
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(width(c)))))
                .collect();
            println!("  {}", padded.join("  ").trim_end());
        };
        line(t.head.clone());
        for row in &t.rows {
            line(row.iter().map(String::as_str).collect());
        }
    }
    if let Some(m) = r
        .missing_in_database
        .iter()
        .find(|m| !m.snapshots.is_empty())
    {
        let h = &m.snapshots[0];
        let (from, to) = r
            .period
            .as_ref()
            .map_or(("", ""), |p| (p.from.as_str(), p.to.as_str()));
        println!(
            "\nivault restore-period {} --from {from} --to {to} --snapshot {} brings back what that snapshot holds",
            r.source.name,
            &h.last.id[..12.min(h.last.id.len())],
        );
    }
}

/// Columns a terminal gives the text: two for each wide (CJK) character.
fn width(s: &str) -> usize {
    s.chars().map(|c| if c >= '\u{2E80}' { 2 } else { 1 }).sum()
}
