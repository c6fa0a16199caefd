//! `ivault backup`: one source to one or more targets, each reported on its own.

use super::{exit, hints, print_json, RecipientArgs};
use clap::Args;
use invoice_vault::engine::backup::{self, BackupJob, BackupOptions, CheckLevel, ReadOptions};
use invoice_vault::engine::demo::{mib, short};
use invoice_vault::engine::Context;
use invoice_vault::secret::redact;
use invoice_vault::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub(super) struct BackupArgs {
    /// The SQLite database file, or a source name from the --policy.
    source: PathBuf,
    /// Repository to write to (directory, s3:// URL or policy target name); repeat for several
    /// [default: every target of the --policy].
    #[arg(long = "to", value_name = "TARGET")]
    targets: Vec<String>,
    /// Store every page again in fresh packs.
    #[arg(long)]
    full: bool,
    /// Take the backup in full once the incremental snapshots since the last full (of this
    /// source, in that repository) stored changed pages worth this percent of the database, so
    /// that no restore reads much more than a full's: a restore of the newest reads about the
    /// database plus that share. `off` never does [default: the policy's
    /// [schedule] full_after_changed, else 100]
    #[arg(long, value_name = "PERCENT|off", value_parser = full_after_changed)]
    full_after_changed: Option<FullAfterChanged>,
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Source name recorded in the snapshot [default: file name without extension].
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    recipients: RecipientArgs,
    /// Seconds to wait for a writer holding the database locked.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    lock_timeout: f64,
    /// Trust the repository's recipients even though they changed since this host last saw them.
    #[arg(long)]
    accept_recipients: bool,
    /// SQLite's check of the image backed up: quick (quick_check, about 1.7 s per GiB), full
    /// (integrity_check, about 7.7 s per GiB) or off. A failing check warns; the backup is kept.
    #[arg(long, value_enum, default_value_t = SourceCheckArg::Quick, value_name = "LEVEL")]
    source_check: SourceCheckArg,
    /// zstd level (1-19).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    compression: i32,
    #[arg(long)]
    json: bool,
}

/// A `--full-after-changed` limit: `None` is `off`. (A bare `Option` would make clap take the
/// value as optional.)
#[derive(Clone, Copy)]
struct FullAfterChanged(Option<u32>);

fn full_after_changed(text: &str) -> std::result::Result<FullAfterChanged, String> {
    backup::parse_full_after_changed(text).map(FullAfterChanged)
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SourceCheckArg {
    Quick,
    Full,
    Off,
}

pub(super) fn backup_cmd(ctx: &Context, args: BackupArgs) -> Result<i32> {
    if !args.lock_timeout.is_finite() || args.lock_timeout < 0.0 {
        return Err(Error::Usage(
            "--lock-timeout must be a number of seconds, 0 or more".into(),
        ));
    }
    let job = BackupJob {
        source: args.source,
        targets: args.targets,
        options: BackupOptions {
            full: args.full,
            full_after_changed: match (args.full_after_changed, ctx.targets.policy()) {
                (Some(limit), _) => limit.0,
                (None, Some(policy)) => policy.full_after_changed(),
                (None, None) => Some(backup::DEFAULT_FULL_AFTER_CHANGED),
            },
            tags: args.tags,
            name: args.name,
            read: ReadOptions {
                lock_timeout: Duration::from_secs_f64(args.lock_timeout),
                check: match args.source_check {
                    SourceCheckArg::Quick => CheckLevel::Quick,
                    SourceCheckArg::Full => CheckLevel::Full,
                    SourceCheckArg::Off => CheckLevel::Off,
                },
                business: None,
            },
            extra_recipients: args.recipients.collect()?,
            accept_recipients: args.accept_recipients,
            compression_level: args.compression,
            ..BackupOptions::default()
        },
    };
    let bar = invoice_vault::progress::show("backup", args.json);
    let run = backup::run(ctx, &job)?;
    drop(bar);
    let source = run.source.display().to_string();
    let several = run.targets.len() > 1;
    if args.json {
        let entries: Vec<serde_json::Value> = run
            .targets
            .iter()
            .map(|t| match &t.result {
                Ok(rep) => {
                    let mut v = serde_json::to_value(rep).unwrap_or_default();
                    v["ok"] = true.into();
                    v
                }
                Err(e) => serde_json::json!({
                    "target": redact(&t.target), "ok": false, "error": hints::describe(e), "exit_code": e.exit_code()
                }),
            })
            .collect();
        print_json(&entries);
    }
    for t in &run.targets {
        for f in &t.alert_failures {
            eprintln!("ivault: warning: the failure alert was not delivered: {f}");
        }
        if let Ok(r) = &t.result {
            for w in &r.warnings {
                eprintln!("ivault: warning: {w}");
            }
        }
        match &t.result {
            Ok(r) if !args.json => {
                println!(
                    "snapshot {} ({}) of {} to {}: {} pages, {} new, stored {} in {:.2} s",
                    short(r.snapshot_id),
                    r.kind,
                    source,
                    r.target,
                    r.page_count,
                    r.pages_new,
                    mib(r.bytes_stored),
                    r.duration_ms as f64 / 1000.0
                );
                if let Some(why) = &r.full_because {
                    println!("  {why}");
                }
            }
            Err(e) if several => eprintln!(
                "ivault: backup to {} failed: {}",
                redact(&t.target),
                hints::describe(e)
            ),
            _ => {}
        }
    }
    let failed = run.failed();
    let mut targets = run.targets;
    match (failed, targets.len()) {
        (0, _) => Ok(exit::OK),
        // One target: its own error and exit code.
        (_, 1) => Err(targets
            .pop()
            .and_then(|t| t.result.err())
            .unwrap_or_else(|| Error::Internal("lost a result".into()))),
        (f, n) if f == n => Ok(targets
            .first()
            .and_then(|t| t.result.as_ref().err())
            .map_or(exit::INTERNAL, Error::exit_code)),
        _ => Ok(exit::PARTIAL),
    }
}
