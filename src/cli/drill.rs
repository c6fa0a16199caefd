//! `ivault drill` and `ivault history`: run restore drills, print a one-screen summary (or the
//! reports as JSON), and list past jobs and drills.

use super::{exit, print_json};
use clap::Args;
use invoice_vault::engine::demo::mib;
use invoice_vault::engine::drill::{self, DrillJob, SnapshotChoice};
use invoice_vault::engine::Context;
use invoice_vault::report::model::{DrillReport, Status, Verdict};
use invoice_vault::report::units::duration;
use invoice_vault::report::{self, Format, Lang};
use invoice_vault::Result;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct DrillArgs {
    /// The database path or source name whose snapshots are drilled (with --policy, a source
    /// of the policy).
    source: String,
    /// Repository to drill (directory, s3:// URL or policy target name); repeat for several
    /// [default: every target of the --policy].
    #[arg(long = "repo", value_name = "TARGET")]
    targets: Vec<String>,
    /// age identity file that reads the repositories [default: the policy's identity_file].
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// latest, random (any authenticated snapshot of the source) or a snapshot id.
    #[arg(long, default_value = "latest", value_name = "SNAPSHOT")]
    snapshot: String,
    /// Write each drill's report as Markdown, JSON and HTML into this directory.
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Where restored copies go [default: the state directory].
    #[arg(long, value_name = "DIR")]
    scratch_dir: Option<PathBuf>,
    /// Compare the closed months of the live database with the snapshot.
    #[arg(long)]
    compare_live: bool,
    /// Months still open, the current one included, that --compare-live leaves out.
    #[arg(long, default_value_t = 2, value_name = "N")]
    open_months: u32,
    /// Keep the restored copy (its path is printed).
    #[arg(long)]
    keep: bool,
    /// Drill a snapshot no trusted signer signed (its snapshot check still fails).
    #[arg(long)]
    allow_unverified: bool,
    /// Print the reports as JSON (docs/REPORTS.md).
    #[arg(long)]
    json: bool,
}

pub(super) fn drill_cmd(ctx: &Context, args: DrillArgs) -> Result<i32> {
    let objectives = ctx
        .targets
        .policy()
        .map(|p| p.objectives.clone())
        .unwrap_or_default();
    let job = DrillJob {
        source: args.source,
        targets: args.targets,
        identity: args.identity,
        snapshot: SnapshotChoice::parse(&args.snapshot)?,
        scratch_dir: args.scratch_dir,
        keep: args.keep,
        compare_live: args.compare_live,
        open_months: args.open_months.max(1),
        rto: objectives.rto,
        rpo: objectives.rpo,
        allow_unverified: args.allow_unverified,
    };
    let run = drill::run(ctx, &job)?;
    for f in &run.alert_failures {
        eprintln!("ivault: warning: the failure alert was not delivered: {f}");
    }
    if let Some(dir) = &args.report_dir {
        for r in &run.reports {
            let written = drill::write_reports(dir, r, Lang::En)?;
            if !args.json {
                println!("report of drill {}: {}", r.id, written.display());
            }
        }
    }
    if args.json {
        match &run.reports[..] {
            [one] => print_json(one),
            all => print_json(&all),
        }
    } else {
        for r in &run.reports {
            print_summary(r);
        }
        for dir in &run.kept {
            println!("restored copy kept in {}", dir.display());
        }
    }
    Ok(if run.passed() {
        exit::OK
    } else {
        exit::DRILL_FAILED
    })
}

/// One screen: the verdict, the snapshot, RTO and RPO, the counts, and every check that did
/// not pass.
fn print_summary(r: &DrillReport) {
    let verdict = match r.verdict {
        Verdict::Passed => "PASSED",
        Verdict::Failed => "FAILED",
    };
    println!(
        "drill {} of {} from {}: {verdict}",
        r.id, r.source.name, r.target
    );
    if let Some(s) = &r.snapshot {
        println!(
            "  snapshot {} ({}, {}){}",
            &s.id[..12.min(s.id.len())],
            s.kind,
            s.time,
            s.signer
                .as_deref()
                .map(|x| format!(", signed by {x}"))
                .unwrap_or_default()
        );
    }
    let objective = |o: Option<u64>| {
        o.map(|ms| format!(" (objective {})", duration(ms)))
            .unwrap_or_default()
    };
    println!(
        "  RTO {}{}   RPO {}{}   read {}",
        duration(r.rto.actual_ms),
        objective(r.rto.objective_ms),
        duration(r.rpo.actual_ms),
        objective(r.rpo.objective_ms),
        mib(r.bytes_read)
    );
    let count = |s: Status| r.checks.iter().filter(|c| c.status == s).count();
    println!(
        "  checks: {} passed, {} warnings, {} failed, {} skipped",
        count(Status::Passed),
        count(Status::Warning),
        count(Status::Failed),
        count(Status::Skipped)
    );
    // Failures first; a screen, not a scroll: the report has everything.
    let mut shown: Vec<_> = r
        .checks
        .iter()
        .filter(|c| matches!(c.status, Status::Failed | Status::Warning))
        .collect();
    shown.sort_by_key(|c| c.status != Status::Failed);
    let more = shown.len().saturating_sub(SUMMARY_LINES);
    for c in shown.into_iter().take(SUMMARY_LINES) {
        let kind = serde_json::to_value(c.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let tag = if c.status == Status::Failed {
            "FAILED "
        } else {
            "WARNING"
        };
        let mut line = format!("  {tag} {kind}");
        if let Some(s) = &c.subject {
            line.push_str(&format!(" {s}"));
        }
        if let (Some(e), Some(a)) = (&c.expected, &c.actual) {
            line.push_str(&format!(": expected {e}, found {a}"));
        }
        if let Some(d) = &c.detail {
            line.push_str(&format!(" ({d})"));
        }
        println!("{line}");
    }
    if more > 0 {
        println!("  … and {more} more (the report lists every check)");
    }
}

/// How many failed or warning checks the terminal summary lists.
const SUMMARY_LINES: usize = 12;

#[derive(Args)]
pub(super) struct HistoryArgs {
    /// List drills instead of jobs.
    #[arg(long)]
    drills: bool,
    /// How many, newest first.
    #[arg(long, default_value_t = 20, value_name = "N")]
    limit: usize,
    #[arg(long)]
    json: bool,
}

pub(super) fn history_cmd(ctx: &Context, args: HistoryArgs) -> Result<i32> {
    if args.drills {
        let rows = drill::history(ctx, args.limit)?;
        if args.json {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id, "started": r.started, "finished": r.finished,
                        "source": r.source, "target": r.target, "snapshot_id": r.snapshot_id,
                        "verdict": r.verdict, "rto_ms": r.rto_ms, "rpo_ms": r.rpo_ms,
                        "bytes_read": r.bytes_read,
                    })
                })
                .collect();
            print_json(&v);
        } else if rows.is_empty() {
            println!("no drills yet");
        } else {
            println!(
                "{:>5}  {:<24}  {:<16}  {:<24}  {:<7}  {:>10}  {:>12}",
                "id", "started", "source", "target", "verdict", "RTO", "RPO"
            );
            for r in &rows {
                println!(
                    "{:>5}  {:<24}  {:<16}  {:<24}  {:<7}  {:>10}  {:>12}",
                    r.id,
                    r.started,
                    r.source,
                    r.target,
                    r.verdict,
                    duration(r.rto_ms),
                    duration(r.rpo_ms)
                );
            }
        }
        return Ok(exit::OK);
    }
    let jobs = invoice_vault::engine::jobs(ctx, args.limit)?;
    if args.json {
        print_json(&jobs);
    } else if jobs.is_empty() {
        println!("no jobs yet");
    } else {
        println!(
            "{:>5}  {:<8}  {:<24}  {:<9}  {:<20}  {:<24}  error",
            "id", "kind", "started", "outcome", "source", "target"
        );
        for j in &jobs {
            println!(
                "{:>5}  {:<8}  {:<24}  {:<9}  {:<20}  {:<24}  {}",
                j.id,
                j.kind,
                j.started,
                j.outcome,
                j.source.as_deref().unwrap_or("-"),
                j.target.as_deref().unwrap_or("-"),
                j.error.as_deref().unwrap_or("")
            );
        }
    }
    Ok(exit::OK)
}

#[derive(Args)]
pub(super) struct ReportArgs {
    /// The drill to report (`ivault history --drills` lists them).
    #[arg(long, value_name = "ID", conflicts_with = "last")]
    drill: Option<i64>,
    /// The last N drills, newest first.
    #[arg(long, value_name = "N", default_value_t = 1)]
    last: usize,
    /// md (for a ticket), json (for machines, docs/REPORTS.md) or html (one self-contained file).
    #[arg(long, default_value = "md", value_parser = parse_format)]
    format: Format,
    /// Write to this file (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Labels in English (en) or Simplified Chinese (zh-CN); data is never translated.
    #[arg(long, default_value = "en", value_parser = parse_lang)]
    lang: Lang,
}

fn parse_format(s: &str) -> std::result::Result<Format, String> {
    s.parse().map_err(|e: report::ParseError| e.to_string())
}

fn parse_lang(s: &str) -> std::result::Result<Lang, String> {
    s.parse().map_err(|e: report::ParseError| e.to_string())
}

pub(super) fn report_cmd(ctx: &Context, args: ReportArgs) -> Result<i32> {
    let reports = drill::reports(ctx, args.drill, args.last.max(1))?;
    if reports.is_empty() {
        return Err(invoice_vault::Error::Usage(
            "no drill in the history yet; run ivault drill first".into(),
        ));
    }
    let text = report::render(&reports, args.format, args.lang);
    match &args.out {
        Some(f) => invoice_vault::engine::status::write_atomically(f, &text)?,
        None => print!("{text}"),
    }
    Ok(exit::OK)
}
