//! `ivault restore-period`: show how a period of the live database differs from a snapshot,
//! and with `--apply` bring the lost rows back.

use super::{exit, print_json};
use clap::Args;
use invoice_vault::engine::period::{self, PeriodJob, PeriodReport, TableDiff};
use invoice_vault::engine::Context;
use invoice_vault::Result;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct PeriodArgs {
    /// The live database: a path, or a source name of the --policy.
    source: String,
    /// First day of the period, YYYY-MM-DD (or YYYY-MM: the month's first day), inclusive.
    #[arg(long, value_name = "DATE")]
    from: String,
    /// Last day of the period, YYYY-MM-DD (or YYYY-MM: the month's last day), inclusive.
    #[arg(long, value_name = "DATE")]
    to: String,
    /// latest, auto (the newest snapshot with the most invoices and the highest total in the
    /// period) or a snapshot id.
    #[arg(long, default_value = "latest", value_name = "SNAPSHOT")]
    snapshot: String,
    /// The repository to read (and, with --apply, to back the live database up to first)
    /// [default: the policy's first target of the source].
    #[arg(long = "repo", value_name = "TARGET")]
    repo: Option<String>,
    /// age identity file that reads the repository [default: the policy's identity_file].
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Write: back the live database up, then insert the missing rows in one transaction.
    #[arg(long)]
    apply: bool,
    /// With --apply, also replace rows that differ from the snapshot (never deletes).
    #[arg(long, requires = "apply")]
    overwrite_changed: bool,
    /// With --apply, write even though live tables have triggers (they fire for each row).
    #[arg(long, requires = "apply")]
    allow_triggers: bool,
    /// Use a snapshot no trusted signer signed.
    #[arg(long)]
    allow_unverified: bool,
    #[arg(long)]
    json: bool,
}

pub(super) fn period_cmd(ctx: &Context, args: PeriodArgs) -> Result<i32> {
    let job = PeriodJob {
        source: args.source,
        from: args.from,
        to: args.to,
        snapshot: args.snapshot,
        target: args.repo,
        identity: args.identity,
        apply: args.apply,
        overwrite_changed: args.overwrite_changed,
        allow_triggers: args.allow_triggers,
        allow_unverified: args.allow_unverified,
    };
    let report = period::run(ctx, &job)?;
    if args.json {
        print_json(&report);
    } else {
        print_report(&report);
    }
    Ok(match &report.applied {
        None if report.to_restore() => exit::DIFFERENCES,
        _ => exit::OK,
    })
}

/// Rows listed per table and kind on a terminal (`--json` lists all).
const SHOWN: usize = 10;

fn print_report(r: &PeriodReport) {
    println!(
        "{} from {} to {}, compared with snapshot {} ({}) of {}",
        r.live_path,
        r.from,
        r.to,
        &r.snapshot_id[..12.min(r.snapshot_id.len())],
        r.snapshot_time,
        r.target
    );
    println!("  chosen: {}", r.choice);
    for w in &r.warnings {
        println!("  warning: {w}");
    }
    println!(
        "  invoices: snapshot {} (total {}), live {} (total {})",
        r.snapshot.invoices, r.snapshot.total, r.live.invoices, r.live.total
    );
    println!();
    println!(
        "  {:<32} {:>9} {:>9} {:>9}",
        "table", "missing", "changed", "extra"
    );
    for t in &r.tables {
        println!(
            "  {:<32} {:>9} {:>9} {:>9}",
            t.table,
            t.missing.len(),
            t.changed.len(),
            t.extra.len()
        );
    }
    for t in &r.tables {
        print_rows(t);
    }
    match &r.applied {
        None if r.to_restore() => println!(
            "\nNothing was changed. --apply inserts the missing rows (and --overwrite-changed replaces the changed ones)."
        ),
        None => println!("\nNothing to restore: the live database holds every row of the snapshot's period."),
        Some(a) => {
            println!();
            match &a.backup_snapshot_id {
                Some(id) => println!("  backed up the live database first: snapshot {id}"),
                None => println!("  nothing to write: the live database already holds the snapshot's rows"),
            }
            for (table, n) in &a.inserted {
                println!("  inserted {n} rows into {table}");
            }
            for (table, n) in &a.replaced {
                println!("  replaced {n} rows of {table}");
            }
            println!(
                "  after: {} invoices (total {}), {} the snapshot's {} (total {})",
                a.after.invoices,
                a.after.total,
                if a.matches { "equal to" } else { "NOT equal to" },
                r.snapshot.invoices,
                r.snapshot.total
            );
            if let Some(f) = &a.audit_file {
                println!("  audit record: {f}");
            }
        }
    }
}

fn print_rows(t: &TableDiff) {
    let key = |k: &[Value]| {
        let parts: Vec<String> = k.iter().map(show).collect();
        format!("{} = {}", t.key_columns.join("/"), parts.join("/"))
    };
    let lists = [("missing", &t.missing), ("extra", &t.extra)];
    for (what, rows) in lists {
        for k in rows.iter().take(SHOWN) {
            println!("  {what} in {}: {}", t.table, key(k));
        }
        if rows.len() > SHOWN {
            println!("  … and {} more {what} in {}", rows.len() - SHOWN, t.table);
        }
    }
    for c in t.changed.iter().take(SHOWN) {
        let cols: Vec<String> = c
            .columns
            .iter()
            .map(|x| format!("{}: {} → {}", x.column, show(&x.snapshot), show(&x.live)))
            .collect();
        println!(
            "  changed in {}: {} ({}; snapshot → live)",
            t.table,
            key(&c.key),
            cols.join(", ")
        );
    }
    if t.changed.len() > SHOWN {
        println!(
            "  … and {} more changed in {}",
            t.changed.len() - SHOWN,
            t.table
        );
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "NULL".into(),
        other => other.to_string(),
    }
}
