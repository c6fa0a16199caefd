//! `ivault status`: one line per source and target, for people and monitoring probes.

use super::{exit, print_json};
use clap::Args;
use invoice_vault::engine::status::{self, Objectives};
use invoice_vault::engine::Context;
use invoice_vault::report::units::duration;
use invoice_vault::Result;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct StatusArgs {
    /// Also write Prometheus text-format metrics to this file, atomically (node_exporter's
    /// textfile collector).
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub(super) fn status_cmd(ctx: &Context, args: StatusArgs) -> Result<i32> {
    let objectives: Objectives = ctx
        .targets
        .policy()
        .map(|p| p.objectives.clone())
        .unwrap_or_default();
    let st = status::run(ctx, &objectives)?;
    if let Some(f) = &args.metrics_file {
        status::write_atomically(f, &status::metrics(&st))?;
    }
    if args.json {
        print_json(&st);
    } else if st.lines.is_empty() {
        println!("nothing backed up yet");
    } else {
        for l in &st.lines {
            let backup = l.last_backup.as_ref().map_or("never".to_string(), |b| {
                format!("{} ago", duration(b.age_ms))
            });
            let drill = l.last_drill.as_ref().map_or("never".to_string(), |d| {
                format!("{} (RTO {})", d.verdict, duration(d.rto_ms))
            });
            let health = if l.problems.is_empty() {
                "ok"
            } else {
                "PROBLEM"
            };
            println!(
                "{health:<7}  {} on {}: last backup {backup}, last drill {drill}",
                l.source, l.target
            );
            for p in &l.problems {
                println!("         {p}");
            }
        }
    }
    Ok(if st.healthy { exit::OK } else { exit::STALE })
}
