//! A backup job: one source to one or more targets. Several targets read the source once
//! (the image is staged locally and replayed into each); a failing target does not stop the
//! next; each target's outcome is reported and recorded in the job history on its own.

use super::{backup, backup_staged, BackupOptions, BackupReport};
use crate::engine::context::{recorded, Context};
use crate::error::{Error, Result};
use crate::policy;
use crate::source;
use std::path::PathBuf;

pub struct BackupJob {
    /// A database file, or a source name of the context's policy.
    pub source: PathBuf,
    /// Directories, `s3://` URLs or policy target names; empty means every target of the
    /// policy.
    pub targets: Vec<String>,
    /// `spill_dir` is filled in from the context (the state directory).
    pub options: BackupOptions,
}

/// How one target fared.
#[derive(Debug)]
pub struct TargetOutcome {
    /// The target as the job named it.
    pub target: String,
    pub result: Result<BackupReport>,
    /// Notifiers that failed to deliver the alert about a failed backup.
    pub alert_failures: Vec<String>,
}

#[derive(Debug)]
pub struct BackupRun {
    /// The database file that was read.
    pub source: PathBuf,
    pub targets: Vec<TargetOutcome>,
}

impl BackupRun {
    pub fn failed(&self) -> usize {
        self.targets.iter().filter(|t| t.result.is_err()).count()
    }
}

/// Runs the job. An error here means nothing was attempted (a bad source name, no target);
/// failures of single targets are in the run's outcomes.
pub fn run(ctx: &Context, job: &BackupJob) -> Result<BackupRun> {
    let (path, policy_name) = policy::resolve_source(ctx.targets.policy(), &job.source)?;
    let targets = match (&job.targets[..], ctx.targets.policy()) {
        ([], Some(p)) if !p.target.is_empty() => p.targets_of(policy_name.as_deref()),
        ([], _) => {
            return Err(Error::Usage(
                "give at least one --to TARGET (a directory, s3://bucket/prefix, or a target of the --policy)".into(),
            ))
        }
        (named, _) => named.to_vec(),
    };
    let names: Vec<&str> = targets.iter().map(String::as_str).collect();
    ctx.targets.require_s3_for_lock(&names)?;
    let mut state = ctx.state()?;
    let business = policy_name
        .as_deref()
        .and_then(|n| ctx.targets.policy()?.source(n)?.business.clone());
    let mut opts = BackupOptions {
        name: job.options.name.clone().or(policy_name),
        spill_dir: Some(ctx.state_dir.clone()),
        signing_key: Some(ctx.signing_key()?),
        ..job.options.clone()
    };
    if opts.read.business.is_none() {
        opts.read.business = business;
    }
    // Several targets: read the source once and give every target the same image.
    let staged = if targets.len() > 1 {
        Some(source::stage_image(&path, &opts.read, &ctx.state_dir)?)
    } else {
        None
    };
    let shown = path.display().to_string();
    let mut outcomes = Vec::new();
    for target in targets {
        let summary = |r: &BackupReport| {
            let id = Some(r.snapshot_id.to_string());
            (r.database_bytes, r.bytes_stored, id)
        };
        let result = recorded(
            &mut state,
            "backup",
            Some(&shown),
            Some(&target),
            summary,
            |state| {
                let repo = ctx.open_repo_for_writing(&target)?;
                match &staged {
                    Some(img) => backup_staged(&path, img, &repo, state, &opts),
                    None => backup(&path, &repo, state, &opts),
                }
            },
        );
        let mut alert_failures = Vec::new();
        if let Err(e) = &result {
            let summary = crate::engine::alert::backup_summary(&shown, &target, e);
            alert_failures = crate::engine::alert::on_failure(ctx, &summary);
        }
        outcomes.push(TargetOutcome {
            target,
            result,
            alert_failures,
        });
    }
    Ok(BackupRun {
        source: path,
        targets: outcomes,
    })
}
