//! `ivault run --policy P [--all]`: one pass of everything due, for cron and systemd timers.

use super::print_json;
use clap::Args;
use invoice_vault::engine::Context;
use invoice_vault::scheduler::pass;
use invoice_vault::Result;

#[derive(Args)]
pub(super) struct RunArgs {
    /// Run everything (a backup of every source to every target, drills, retention), not only
    /// what the policy's schedule says is due.
    #[arg(long)]
    all: bool,
    #[arg(long)]
    json: bool,
}

pub(super) fn run_cmd(ctx: &Context, args: RunArgs) -> Result<i32> {
    let report = pass::run(ctx, args.all, chrono::Utc::now())?;
    if args.json {
        print_json(&report);
    } else if report.jobs.is_empty() {
        println!("nothing is due");
    } else {
        for j in &report.jobs {
            println!(
                "{:<6}  {}{}: {}",
                if j.ok { "ok" } else { "FAILED" },
                format!("{} {}", j.source, j.job).trim_start(),
                j.target
                    .as_deref()
                    .map(|t| format!(" on {t}"))
                    .unwrap_or_default(),
                j.summary
            );
        }
    }
    Ok(report.exit_code())
}
