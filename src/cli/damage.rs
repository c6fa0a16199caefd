//! Finding damage and mending what can be mended: `check` (a short summary, every object with
//! `--details`, everything in `--json`) and `repair index`.

use super::hints::advice;
use super::{print_json, RepoArgs};
use invoice_vault::engine::check::{self, CheckReport, Problem, ProblemKind, ReadData};
use invoice_vault::engine::demo::{mib, short};
use invoice_vault::engine::repair::{self, RepairIndexJob};
use invoice_vault::engine::Context;
use invoice_vault::error::exit;
use invoice_vault::{Error, Result};
use std::collections::BTreeSet;

/// Snapshots named in the summary; `--details` names them all.
const SUMMARY_SNAPSHOTS: usize = 10;

pub(super) struct CheckArgs<'a> {
    pub read_data: bool,
    pub subset: Option<&'a str>,
    pub details: bool,
    pub json: bool,
}

pub(super) fn check(ctx: &Context, repo: &RepoArgs, args: CheckArgs) -> Result<i32> {
    let mode = match (args.read_data, args.subset) {
        (true, _) => ReadData::All,
        (false, Some(s)) => ReadData::Subset(parse_percent(s)?),
        _ => ReadData::None,
    };
    let bar = (args.read_data || args.subset.is_some())
        .then(|| invoice_vault::progress::show("check", args.json));
    let report = check::run(ctx, &repo.repo, repo.identity.as_deref(), mode)?;
    drop(bar);
    if args.json {
        print_json(&report);
    } else {
        print_check(&report, args.details);
    }
    Ok(if report.ok { exit::OK } else { exit::INTEGRITY })
}

fn print_check(report: &CheckReport, details: bool) {
    let mut counts = format!(
        "{} snapshots, {} indexes, {} packs ({} read)",
        report.snapshots, report.indexes, report.packs, report.packs_read
    );
    if report.unindexed_packs_read > 0 {
        counts.push_str(&format!(
            "; read {} packs no readable index lists",
            report.unindexed_packs_read
        ));
    }
    println!("{counts}");
    for w in &report.warnings {
        println!("warning: {w}");
    }
    if report.ok {
        println!("no problems found");
        return;
    }
    println!("problems:");
    for (kind, n) in &report.summary {
        let of_kind = report.problems.iter().filter(|p| p.kind == *kind);
        let hints: BTreeSet<String> = of_kind
            .filter_map(|p| p.hint.as_ref().map(advice))
            .filter(|a| !a.is_empty())
            .collect();
        let hints: Vec<String> = hints.into_iter().collect();
        let hints = if hints.is_empty() {
            String::new()
        } else {
            format!(" ({})", hints.join("; "))
        };
        println!("  {}{hints}", count(*kind, *n));
    }
    let affected = &report.affected_snapshots;
    if !affected.is_empty() {
        let limit = if details {
            usize::MAX
        } else {
            SUMMARY_SNAPSHOTS
        };
        let mut shown: Vec<String> = affected.iter().take(limit).map(short).collect();
        if affected.len() > limit {
            shown.push(format!("and {} more", affected.len() - limit));
        }
        println!(
            "affected snapshots ({} of {}): {}",
            affected.len(),
            report.snapshots,
            shown.join(", ")
        );
    }
    if details {
        for p in &report.problems {
            println!("{}", detail(p));
        }
        println!("the repository is damaged");
    } else {
        println!("the repository is damaged; `ivault check --details` lists every object");
    }
}

/// "3 missing packs": how many problems of a kind.
fn count(kind: ProblemKind, n: usize) -> String {
    let (one, many) = match kind {
        ProblemKind::DamagedIndex => ("damaged index", "damaged indexes"),
        ProblemKind::DamagedSnapshot => ("damaged snapshot", "damaged snapshots"),
        ProblemKind::MissingPack => ("missing pack", "missing packs"),
        ProblemKind::WrongSizePack => ("pack of the wrong size", "packs of the wrong size"),
        ProblemKind::DamagedPack => ("damaged pack", "damaged packs"),
        ProblemKind::UnindexedPack => ("pack unindexed but needed", "packs unindexed but needed"),
        ProblemKind::UnindexedBlobs => (
            "snapshot needing blobs no readable index lists",
            "snapshots needing blobs no readable index lists",
        ),
    };
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One problem on one line.
fn detail(p: &Problem) -> String {
    let affected: Vec<String> = p.affected_snapshots.iter().map(short).collect();
    let affects = if affected.is_empty() {
        "affects no snapshot".to_string()
    } else {
        format!("affects snapshots: {}", affected.join(", "))
    };
    match p.kind {
        ProblemKind::UnindexedPack => {
            let how = p.hint.as_ref().map(advice).unwrap_or_default();
            format!("unindexed but needed ({how}): {}; {affects}", p.object)
        }
        ProblemKind::UnindexedBlobs => format!("unindexed blobs: {}: {}", p.object, p.what),
        // Messages of unreadable objects name the object already.
        _ if p.what.contains(&p.object) => format!("damaged: {}; {affects}", p.what),
        _ => format!("damaged: {}: {}; {affects}", p.object, p.what),
    }
}

fn parse_percent(s: &str) -> Result<f64> {
    let n: f64 = s.trim_end_matches('%').parse().map_err(|_| {
        Error::Usage(format!("--read-data-subset {s}: give a percentage such as 10%").into())
    })?;
    if !(n > 0.0 && n <= 100.0) {
        return Err(Error::Usage(
            format!("--read-data-subset {s}: the percentage must be above 0 and at most 100")
                .into(),
        ));
    }
    Ok(n)
}

pub(super) fn repair_index(ctx: &Context, repo: RepoArgs, all: bool, json: bool) -> Result<i32> {
    let job = RepairIndexJob {
        repo: repo.repo,
        identity: repo.identity,
        all,
    };
    let rep = repair::run(ctx, &job)?;
    if json {
        print_json(&rep);
        return Ok(exit::OK);
    }
    let which = if all {
        "packs"
    } else {
        "packs no readable index lists"
    };
    match (&rep.index, rep.packs_read) {
        (_, 0) => println!(
            "every pack of {} is listed by a readable index; nothing to do (pass --all to index every pack again)",
            rep.repository
        ),
        (None, n) => println!("read {n} {which}; none of them could be read, so no index was written"),
        (Some(id), n) => println!(
            "read {n} {which}; wrote index {} listing {} packs ({} blobs, {})",
            short(id),
            rep.packs_indexed,
            rep.blobs_indexed,
            mib(rep.bytes_indexed)
        ),
    }
    for w in &rep.warnings {
        println!("warning: {w}");
    }
    for i in &rep.unreadable_indexes {
        println!("left in place: {i}");
    }
    if !rep.unreadable_indexes.is_empty() {
        println!(
            "damaged indexes are left in place: they are harmless once another index lists their packs; `ivault check` says whether any snapshot still lacks something"
        );
    }
    Ok(exit::OK)
}
