//! `ivault forget`, `hold`, `unhold` and `prune`: retention rules from flags, legal holds,
//! freeing what no snapshot uses.

use super::{exit, print_json, RepoArgs};
use clap::Args;
use invoice_vault::engine::forget::{self, ForgetJob};
use invoice_vault::engine::prune::{self, PruneJob};
use invoice_vault::engine::Context;
use invoice_vault::retention::{Count, Rules};
use invoice_vault::Result;
use std::time::Duration;

#[derive(Args)]
pub(super) struct ForgetArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Only this source's snapshots (name or path) [default: every source, each on its own].
    #[arg(long)]
    source: Option<String>,
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N|all", value_parser = parse_count)]
    keep_last: Option<Count>,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(long, value_name = "N|all", value_parser = parse_count)]
    keep_hourly: Option<Count>,
    #[arg(long, value_name = "N|all", value_parser = parse_count)]
    keep_daily: Option<Count>,
    #[arg(long, value_name = "N|all", value_parser = parse_count)]
    keep_weekly: Option<Count>,
    #[arg(long, value_name = "N|all", value_parser = parse_count)]
    keep_monthly: Option<Count>,
    #[arg(long, value_name = "N|all", value_parser = parse_count)]
    keep_yearly: Option<Count>,
    /// Keep every snapshot younger than this, counted from the newest (e.g. 30d, 12h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    keep_within: Option<Duration>,
    /// Keep every snapshot with this tag; repeatable.
    #[arg(long = "keep-tag", value_name = "TAG")]
    keep_tags: Vec<String>,
    /// Keep the last snapshot of each of the last N closed months.
    #[arg(long, value_name = "N|all", value_parser = parse_count)]
    keep_month_end: Option<Count>,
    /// Keep the last snapshot of each of the last N closed fiscal years.
    #[arg(long, value_name = "N|all", value_parser = parse_count)]
    keep_year_end: Option<Count>,
    /// First day of the fiscal year, MM-DD.
    #[arg(long, default_value = "01-01", value_name = "MM-DD", value_parser = parse_month_day)]
    fiscal_year_start: (u32, u32),
    /// Show what would be kept and forgotten, and why; delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

fn parse_count(s: &str) -> std::result::Result<Count, String> {
    match s {
        "all" | "-1" => Ok(Count::All),
        n => n
            .parse::<u32>()
            .map(Count::Last)
            .map_err(|_| format!("{n:?} is not a count; give a number or all")),
    }
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write it like 12h, 30d or 2w"))?;
    let secs = match unit {
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "{s:?} is not a duration; write it like 12h, 30d or 2w"
            ))
        }
    };
    Ok(Duration::from_secs(n * secs))
}

fn parse_month_day(s: &str) -> std::result::Result<(u32, u32), String> {
    let bad = || format!("{s:?} is not a month and day; write it like 04-01");
    let (m, d) = s.split_once('-').ok_or_else(bad)?;
    let (m, d): (u32, u32) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    chrono::NaiveDate::from_ymd_opt(2024, m, d).ok_or_else(bad)?;
    Ok((m, d))
}

pub(super) fn forget_cmd(ctx: &Context, args: ForgetArgs) -> Result<i32> {
    let flags = Rules {
        last: args.keep_last,
        hourly: args.keep_hourly,
        daily: args.keep_daily,
        weekly: args.keep_weekly,
        monthly: args.keep_monthly,
        yearly: args.keep_yearly,
        within: args.keep_within,
        tags: args.keep_tags,
        month_end: args.keep_month_end,
        year_end: args.keep_year_end,
        fiscal_year_start: args.fiscal_year_start,
    };
    // No keep flag: the policy's [retention] (checked when the policy was loaded).
    let from_policy = ctx
        .targets
        .policy()
        .and_then(|p| p.retention.as_ref())
        .and_then(|r| r.rules().ok());
    let no_flags = Rules {
        fiscal_year_start: flags.fiscal_year_start,
        ..Rules::default()
    } == flags;
    let rules = match from_policy {
        Some(r) if no_flags => r,
        _ => flags,
    };
    let job = ForgetJob {
        repo: args.repo.repo,
        identity: args.repo.identity,
        source: args.source,
        rules,
        dry_run: args.dry_run,
    };
    let rep = forget::run(ctx, &job)?;
    for u in &rep.untouched {
        eprintln!("ivault: warning: snapshot {} left alone: {}", u.id, u.why);
    }
    for u in &rep.not_deleted {
        eprintln!(
            "ivault: warning: snapshot {} could not be forgotten: {}",
            u.id, u.why
        );
    }
    if args.json {
        print_json(&rep);
    } else {
        for (source, decisions) in &rep.sources {
            println!("{source}:");
            for d in decisions {
                let what = if d.keep { "keep  " } else { "forget" };
                println!(
                    "  {what} {}  {}  {}",
                    &d.id.to_string()[..12],
                    d.time,
                    d.reasons.join(", ")
                );
            }
        }
        let verb = if rep.dry_run {
            "would forget"
        } else {
            "forgot"
        };
        println!(
            "{} kept, {verb} {}; run ivault prune to free the space",
            rep.kept, rep.forgotten
        );
    }
    Ok(if rep.not_deleted.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

#[derive(Args)]
pub(super) struct HoldArgs {
    /// Snapshot id or unique prefix.
    snapshot: String,
    #[command(flatten)]
    repo: RepoArgs,
    /// Why the snapshot must be kept (an audit, a dispute, a tax inspection).
    #[arg(long)]
    reason: String,
}

pub(super) fn hold_cmd(ctx: &Context, args: HoldArgs) -> Result<i32> {
    let (id, hold) = forget::hold(
        ctx,
        &args.repo.repo,
        args.repo.identity.as_deref(),
        &args.snapshot,
        &args.reason,
    )?;
    println!("snapshot {id} is held: {}", hold.reason);
    Ok(exit::OK)
}

#[derive(Args)]
pub(super) struct UnholdArgs {
    /// Snapshot id or unique prefix.
    snapshot: String,
    #[command(flatten)]
    repo: RepoArgs,
}

pub(super) fn unhold_cmd(ctx: &Context, args: UnholdArgs) -> Result<i32> {
    let n = forget::unhold(
        ctx,
        &args.repo.repo,
        args.repo.identity.as_deref(),
        &args.snapshot,
    )?;
    println!("removed {n} holds on {}", args.snapshot);
    Ok(exit::OK)
}

#[derive(Args)]
pub(super) struct PruneArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// How long a pack stays marked before it is deleted: longer than any backup into this
    /// repository runs (e.g. 24h, 2d, 90m).
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = parse_grace)]
    grace: Duration,
    /// Repack a pack when more than this percentage of it is unused.
    #[arg(long, default_value_t = 50, value_name = "PERCENT",
          value_parser = clap::value_parser!(u8).range(0..=100))]
    repack_unused_above: u8,
    /// Show what would be marked, repacked and deleted; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

fn parse_grace(s: &str) -> std::result::Result<Duration, String> {
    invoice_vault::policy::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration; write it like 90m, 24h or 2d"))
}

pub(super) fn prune_cmd(ctx: &Context, args: PruneArgs) -> Result<i32> {
    let job = PruneJob {
        repo: args.repo.repo,
        identity: args.repo.identity,
        grace: chrono::TimeDelta::from_std(args.grace).unwrap_or(chrono::TimeDelta::MAX),
        repack_unused_above: f64::from(args.repack_unused_above) / 100.0,
        dry_run: args.dry_run,
    };
    let rep = prune::run(ctx, &job)?;
    for l in &rep.left_in_place {
        eprintln!("ivault: note: {} left in place: {}", l.object, l.why);
    }
    if args.json {
        print_json(&rep);
        return Ok(exit::OK);
    }
    let would = if rep.dry_run { "would be " } else { "" };
    println!(
        "{} snapshots use the repository's {} packs",
        rep.snapshots, rep.packs
    );
    if rep.repacked > 0 {
        println!(
            "{} mostly unused packs {would}repacked{}",
            rep.repacked,
            if rep.dry_run {
                String::new()
            } else {
                format!(
                    " into {} new packs ({})",
                    rep.repack_packs_written,
                    invoice_vault::report::units::bytes(rep.repack_bytes_written)
                )
            }
        );
    }
    println!(
        "{} packs {would}marked for deletion, {} marks {would}removed",
        rep.marked, rep.unmarked
    );
    println!(
        "{} packs {would}deleted ({} freed), {} indexes {would}rewritten",
        rep.packs_deleted,
        invoice_vault::report::units::bytes(rep.bytes_freed),
        rep.indexes_deleted
    );
    if let Some(t) = rep.next_deletion {
        println!(
            "{} marked packs wait for their grace period; the first may be deleted from {}",
            rep.waiting,
            t.format("%Y-%m-%d %H:%M UTC")
        );
    }
    if !rep.left_in_place.is_empty() {
        println!(
            "{} objects left in place (under Object Lock?); the next prune tries again",
            rep.left_in_place.len()
        );
    }
    Ok(exit::OK)
}
