//! `ivault backup`: one source to one or more targets, each reported on its own.

use super::targets::Targets;
use super::{exit, job_record, print_json, RecipientArgs};
use clap::Args;
use invoice_vault::demo::{mib, short};
use invoice_vault::engine::backup::{self, BackupOptions};
use invoice_vault::policy;
use invoice_vault::repo::Repository;
use invoice_vault::source;
use invoice_vault::state::State;
use invoice_vault::{Error, Result};
use std::path::{Path, PathBuf};
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
    /// zstd level (1-19).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    compression: i32,
    #[arg(long)]
    json: bool,
}

pub(super) fn backup_cmd(mut args: BackupArgs, state_dir: &Path, targets: &Targets) -> Result<i32> {
    let (source_path, policy_name) = policy::resolve_source(targets.policy.as_ref(), &args.source)?;
    args.source = source_path;
    args.name = args.name.or(policy_name);
    if args.targets.is_empty() {
        args.targets = match &targets.policy {
            Some(p) if !p.target.is_empty() => p.target.iter().map(|t| t.name.clone()).collect(),
            _ => {
                return Err(Error::Usage(
                    "give at least one --to TARGET (a directory, s3://bucket/prefix, or a target of the --policy)".into(),
                ))
            }
        };
    }
    let names: Vec<&str> = args.targets.iter().map(String::as_str).collect();
    targets.require_s3_for_lock(&names)?;
    let mut state = State::open(state_dir)?;
    if !args.lock_timeout.is_finite() || args.lock_timeout < 0.0 {
        return Err(Error::Usage(
            "--lock-timeout must be a number of seconds, 0 or more".into(),
        ));
    }
    let opts = BackupOptions {
        full: args.full,
        tags: args.tags.clone(),
        name: args.name.clone(),
        lock_timeout: Duration::from_secs_f64(args.lock_timeout),
        extra_recipients: args.recipients.collect()?,
        accept_recipients: args.accept_recipients,
        compression_level: args.compression,
        spill_dir: Some(state_dir.to_path_buf()),
        origin: None,
    };
    let source = args.source.display().to_string();
    // Several targets: read the source once and give every target the same image.
    let staged = if args.targets.len() > 1 {
        Some(source::stage_image(
            &args.source,
            opts.lock_timeout,
            state_dir,
        )?)
    } else {
        None
    };
    let mut results = Vec::new();
    for target in &args.targets {
        let job = state.job_start("backup", Some(&source), Some(target))?;
        let res = targets
            .open(target)
            .and_then(Repository::open)
            .and_then(|repo| match &staged {
                Some(img) => backup::backup_staged(&args.source, img, &repo, &mut state, &opts),
                None => backup::backup(&args.source, &repo, &mut state, &opts),
            });
        state.job_finish(
            job,
            &job_record(&res, |r| {
                (
                    r.database_bytes,
                    r.bytes_stored,
                    Some(r.snapshot_id.clone()),
                )
            }),
        )?;
        results.push((target.clone(), res));
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if args.json {
        let entries: Vec<serde_json::Value> = results
            .iter()
            .map(|(target, r)| match r {
                Ok(rep) => {
                    let mut v = serde_json::to_value(rep).unwrap_or_default();
                    v["ok"] = true.into();
                    v
                }
                Err(e) => serde_json::json!({
                    "target": target, "ok": false, "error": e.to_string(), "exit_code": e.exit_code()
                }),
            })
            .collect();
        print_json(&entries);
    }
    for (target, r) in &results {
        match r {
            Ok(r) if !args.json => println!(
                "snapshot {} ({}) of {} to {}: {} pages, {} new, stored {} in {:.2} s",
                short(&r.snapshot_id),
                r.kind,
                source,
                r.target,
                r.page_count,
                r.pages_new,
                mib(r.bytes_stored),
                r.duration_ms as f64 / 1000.0
            ),
            Err(e) if results.len() > 1 => eprintln!("ivault: backup to {target} failed: {e}"),
            _ => {}
        }
    }
    match (failed, results.len()) {
        (0, _) => Ok(exit::OK),
        // One target: its own error and exit code.
        (_, 1) => Err(results
            .pop()
            .and_then(|(_, r)| r.err())
            .unwrap_or_else(|| Error::Internal("lost a result".into()))),
        (f, n) if f == n => Ok(results
            .first()
            .and_then(|(_, r)| r.as_ref().err())
            .map_or(exit::INTERNAL, Error::exit_code)),
        _ => Ok(exit::PARTIAL),
    }
}
