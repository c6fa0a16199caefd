//! Backup jobs: each one source to one or more targets. Several targets read the source once
//! (the image is staged locally and replayed into each); a failing target does not stop the
//! next; each target's outcome is reported and recorded in the job history on its own. Jobs
//! run together share a batch per target.

use super::batch::{self, Batch};
use super::pipeline::Pages;
use super::{BackupOptions, BackupReport};
use crate::engine::context::{job_finished, job_started, Context};
use crate::error::{Error, Result};
use crate::policy;
use crate::repo::signing::SigningKey;
use crate::repo::Repository;
use crate::source;
use crate::state::State;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

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
    run_many(ctx, std::slice::from_ref(job))
        .pop()
        .unwrap_or_else(|| Err(Error::Internal("a backup job ran nothing".into())))
}

/// Runs several jobs, as a pass over a policy does: the sources that go to one target share a
/// batch there (see `batch`), so that the repository is listed and the known blobs loaded once
/// and small databases share packs and an index. One result per job, in their order.
pub fn run_many(ctx: &Context, jobs: &[BackupJob]) -> Vec<Result<BackupRun>> {
    let fail_all = |e: Error| jobs.iter().map(|_| Err(e.clone())).collect();
    let mut state = match ctx.state() {
        Ok(s) => s,
        Err(e) => return fail_all(e),
    };
    let signing_key = match ctx.signing_key() {
        Ok(k) => k,
        Err(e) => return fail_all(e),
    };
    let resolved: Vec<Result<Resolved>> =
        jobs.iter().map(|j| resolve(ctx, j, &signing_key)).collect();
    // Every target once, opened before any batch borrows it.
    let mut repos: BTreeMap<&str, Result<Repository>> = BTreeMap::new();
    for r in resolved.iter().flatten() {
        for t in &r.targets {
            repos
                .entry(t.as_str())
                .or_insert_with(|| ctx.open_repo_for_writing(t));
        }
    }
    let mut batches: BTreeMap<&str, Result<Batch>> = BTreeMap::new();
    let mut done = Done::new(&resolved);
    for chunk in chunks(&resolved) {
        // A source with several targets is read once, and every target gets that image.
        let mut staged = BTreeMap::new();
        for &i in &chunk {
            let Ok(r) = &resolved[i] else { continue };
            if r.targets.len() > 1 {
                match source::stage_image(&r.path, &r.opts.read, &ctx.state_dir) {
                    Ok(img) => {
                        staged.insert(i, img);
                    }
                    Err(e) => done.job_failed(i, e),
                }
            }
        }
        let mut targets: Vec<&str> = Vec::new();
        for &i in &chunk {
            for t in resolved[i].iter().flat_map(|r| &r.targets) {
                if !targets.contains(&t.as_str()) {
                    targets.push(t);
                }
            }
        }
        for target in targets {
            let mut sources = Vec::new();
            for &i in &chunk {
                let Ok(r) = &resolved[i] else { continue };
                let Some(at) = r.targets.iter().position(|t| t == target) else {
                    continue;
                };
                if done.jobs[i].error.is_some() {
                    continue;
                }
                let shown = r.path.display().to_string();
                let id = match job_started(&state, "backup", Some(&shown), Some(target)) {
                    Ok(id) => id,
                    Err(e) => {
                        done.finish(&state, (i, at, None), Err(e));
                        continue;
                    }
                };
                let pages = match staged.get(&i) {
                    Some(img) => Pages::Staged(img),
                    None => Pages::Live {
                        path: &r.path,
                        read: &r.opts.read,
                        spill_dir: r.opts.spill_dir.as_deref(),
                    },
                };
                sources.push(batch::Source {
                    path: &r.path,
                    pages,
                    opts: &r.opts,
                    tag: (i, at, Some(id)),
                });
            }
            let Some(first) = sources.first() else {
                continue;
            };
            let batch = batches.entry(target).or_insert_with(|| {
                let sharing: Vec<&Resolved> = resolved
                    .iter()
                    .flatten()
                    .filter(|o| o.targets.iter().any(|t| t == target))
                    .collect();
                let all_full = sharing.iter().all(|o| o.opts.full);
                match &repos[target] {
                    Ok(repo) => Batch::open(repo, &state, first.opts, sharing.len(), all_full),
                    Err(e) => Err(e.clone()),
                }
            });
            let results = match batch {
                Ok(b) => b.back_up(sources, &mut state),
                Err(e) => sources
                    .into_iter()
                    .map(|s| (s.tag, Err(e.clone())))
                    .collect(),
            };
            let finished = state.in_transaction(|state| {
                for (tag, res) in results {
                    done.finish(state, tag, res);
                }
            });
            if let Err(e) = finished {
                tracing::warn!("{e}");
            }
        }
    }
    drop(batches);
    drop(repos);
    done.alert(ctx);
    done.into_runs(resolved)
}

/// Databases read into one index at most (unless one alone is larger): what a run stopped
/// before its index has to store again stays bounded, and so does the time the first
/// source's snapshot waits for it.
const CHUNK_BYTES: u64 = 1 << 30;

/// The jobs in order, in runs of about [`CHUNK_BYTES`] of database files.
fn chunks(resolved: &[Result<Resolved>]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut size = 0;
    for (i, r) in resolved.iter().enumerate() {
        let bytes = r
            .as_ref()
            .ok()
            .and_then(|r| std::fs::metadata(&r.path).ok())
            .map_or(0, |m| m.len());
        match out.last_mut() {
            Some(chunk) if size + bytes <= CHUNK_BYTES => {
                chunk.push(i);
                size += bytes;
            }
            _ => {
                out.push(vec![i]);
                size = bytes;
            }
        }
    }
    out
}

/// A job with its source path, targets and options worked out.
struct Resolved {
    path: PathBuf,
    targets: Vec<String>,
    opts: BackupOptions,
}

fn resolve(ctx: &Context, job: &BackupJob, key: &Arc<SigningKey>) -> Result<Resolved> {
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
    let business = policy_name
        .as_deref()
        .and_then(|n| ctx.targets.policy()?.source(n)?.business.clone());
    let mut opts = BackupOptions {
        name: job.options.name.clone().or(policy_name),
        spill_dir: Some(ctx.state_dir.clone()),
        signing_key: Some(Arc::clone(key)),
        ..job.options.clone()
    };
    if opts.read.business.is_none() && !opts.without_facts {
        opts.read.business = business;
    }
    Ok(Resolved {
        path,
        targets,
        opts,
    })
}

/// A source's place in a batch: the job, the target, and its row in the job history.
type Tag = (usize, usize, Option<i64>);

/// The outcome of every job's targets as they become known.
struct Done {
    jobs: Vec<JobDone>,
}

struct JobDone {
    /// The source as the history and alerts show it.
    shown: String,
    targets: Vec<String>,
    /// What stopped the job before any target was tried.
    error: Option<Error>,
    outcomes: Vec<Option<TargetOutcome>>,
}

impl Done {
    fn new(resolved: &[Result<Resolved>]) -> Self {
        let jobs = resolved
            .iter()
            .map(|r| {
                let (shown, targets) = match r {
                    Ok(r) => (r.path.display().to_string(), r.targets.clone()),
                    Err(_) => (String::new(), Vec::new()),
                };
                JobDone {
                    shown,
                    outcomes: targets.iter().map(|_| None).collect(),
                    targets,
                    error: None,
                }
            })
            .collect();
        Done { jobs }
    }

    fn job_failed(&mut self, job: usize, e: Error) {
        self.jobs[job].error = Some(e);
    }

    /// Records how one target of a job ended in the job history (alerts follow at the end).
    fn finish(&mut self, state: &State, tag: Tag, result: Result<BackupReport>) {
        let (job, at, history) = tag;
        let done = &mut self.jobs[job];
        let summary = |r: &BackupReport| {
            let id = Some(r.snapshot_id.to_string());
            ((r.database_bytes, r.bytes_stored, id), None)
        };
        let result = match history.map(|id| job_finished(state, id, &result, summary)) {
            Some(Err(e)) => Err(e),
            _ => result,
        };
        done.outcomes[at] = Some(TargetOutcome {
            target: done.targets[at].clone(),
            result,
            alert_failures: Vec::new(),
        });
    }

    /// Sends an alert for every target that failed, outside any transaction of the state (a
    /// notifier may take its time).
    fn alert(&mut self, ctx: &Context) {
        for done in &mut self.jobs {
            for outcome in done.outcomes.iter_mut().flatten() {
                if let Err(e) = &outcome.result {
                    let summary =
                        crate::engine::alert::backup_summary(&done.shown, &outcome.target, e);
                    outcome.alert_failures = crate::engine::alert::on_failure(ctx, &summary);
                }
            }
        }
    }

    fn into_runs(self, resolved: Vec<Result<Resolved>>) -> Vec<Result<BackupRun>> {
        resolved
            .into_iter()
            .zip(self.jobs)
            .map(|(r, done)| {
                let r = r?;
                if let Some(e) = done.error {
                    return Err(e);
                }
                let targets = done
                    .outcomes
                    .into_iter()
                    .zip(done.targets)
                    .map(|(o, target)| {
                        o.unwrap_or_else(|| TargetOutcome {
                            target,
                            result: Err(Error::Internal("a backup target was not tried".into())),
                            alert_failures: Vec::new(),
                        })
                    })
                    .collect();
                Ok(BackupRun {
                    source: r.path,
                    targets,
                })
            })
            .collect()
    }
}
