//! `ivault trace`: one invoice through every snapshot of a source.

use super::{exit, print_json, RepoArgs};
use clap::Args;
use invoice_vault::engine::trace::{self, TraceJob};
use invoice_vault::engine::Context;
use invoice_vault::Result;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct TraceArgs {
    /// The source: a policy source name, or the name or path its snapshots record.
    source: String,
    /// The invoice's key: its key column's value, or the values of a composite key separated
    /// by '/' (CODE/NO).
    #[arg(long, value_name = "KEY")]
    invoice: String,
    #[command(flatten)]
    repo: RepoArgs,
    /// Where a scratch copy goes when the invoice table has no index on the key's columns
    /// (snapshots are otherwise read in place) [default: the state directory].
    #[arg(long, value_name = "DIR")]
    scratch_dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub(super) fn trace_cmd(ctx: &Context, args: TraceArgs) -> Result<i32> {
    let job = TraceJob {
        source: args.source,
        repo: args.repo.repo,
        identity: args.repo.identity,
        invoice: args.invoice,
        scratch_dir: args.scratch_dir,
    };
    let r = trace::run(ctx, &job)?;
    if args.json {
        print_json(&r);
        return Ok(exit::OK);
    }
    println!(
        "invoice {} of {} in {}:",
        r.invoice.join("/"),
        r.source,
        r.repository
    );
    for s in &r.snapshots {
        let what = if s.present {
            format!(
                "{}  {}  {}",
                s.status.as_deref().unwrap_or("-"),
                s.amount.as_deref().unwrap_or("-"),
                s.date.as_deref().unwrap_or("-")
            )
        } else {
            "not there".to_string()
        };
        println!(
            "  {}  {}  {:<13}  {what}",
            s.time,
            &s.snapshot.to_string()[..12],
            s.change
        );
    }
    match (&r.first_missing, r.snapshots.last()) {
        (Some(id), Some(last)) if !last.present => println!(
            "first missing from snapshot {id}; restore-period from the snapshot before it brings it back"
        ),
        (Some(id), _) => println!("missing from snapshot {id} on, and there again later"),
        _ => {}
    }
    Ok(exit::OK)
}
