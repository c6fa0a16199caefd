//! One pass over a policy (`ivault run`): for every source, what is due now (or everything):
//! a backup to every target (full when the full schedule is due; all sources' backups run
//! together), a drill of every target, then retention (forget) on every target, and a prune of
//! each target once a night. One
//! failing source or job does not stop the others; each job's outcome is returned.

use super::plan::{self, JobKind, LastRuns, Schedules, Zone};
use crate::engine::backup::{self, BackupJob, BackupOptions};
use crate::engine::drill::{self, DrillJob};
use crate::engine::forget::{self, ForgetJob};
use crate::engine::Context;
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::state::State;
use serde::Serialize;
use std::path::PathBuf;

/// What one job of the pass did.
#[derive(Debug, Clone, Serialize)]
pub struct JobOutcome {
    pub source: String,
    /// `full`, `incremental`, `drill` or `retention`.
    pub job: String,
    /// The target, for drills and retention; backups cover every target in one job.
    pub target: Option<String>,
    pub ok: bool,
    /// One sentence: what was done, or why it failed.
    pub summary: String,
    pub exit_code: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    pub jobs: Vec<JobOutcome>,
}

impl PassReport {
    /// 0 when everything succeeded; the failure's own code when every job failed alike; 8
    /// (partial) otherwise.
    pub fn exit_code(&self) -> i32 {
        use crate::error::exit;
        let failed: Vec<&JobOutcome> = self.jobs.iter().filter(|j| !j.ok).collect();
        match failed.first() {
            None => exit::OK,
            Some(f)
                if failed.len() == self.jobs.len()
                    && failed.iter().all(|j| j.exit_code == f.exit_code) =>
            {
                f.exit_code
            }
            Some(_) => exit::PARTIAL,
        }
    }
}

/// The schedules of a policy (checked when it was loaded).
pub fn schedules(policy: &Policy) -> Schedules {
    let mut s = Schedules::default();
    if let Some(sched) = &policy.schedule {
        for (kind, expr) in [
            (JobKind::Incremental, &sched.incremental),
            (JobKind::Full, &sched.full),
            (JobKind::Drill, &sched.drill),
        ] {
            if let Some(cron) = expr.as_deref().and_then(|e| plan::parse_cron(e).ok()) {
                s.by_kind.insert(kind, cron);
            }
        }
    }
    s
}

/// The zone a policy's schedules are read in (checked when it was loaded).
pub fn zone(policy: &Policy) -> Zone {
    policy
        .schedule
        .as_ref()
        .and_then(|s| s.zone().ok())
        .unwrap_or_default()
}

/// When each kind of job last ran for `source`: its last start, or a later scheduled run the
/// daemon skipped because the source was busy (a skipped run counts as done).
pub fn last_runs(state: &State, source: &str) -> Result<LastRuns> {
    let kind_named = |name: &str| {
        [JobKind::Full, JobKind::Incremental, JobKind::Drill]
            .into_iter()
            .find(|k| k.name() == name)
    };
    let mut last = LastRuns::new();
    let started = state.schedule_runs(source)?.into_iter();
    let skipped = state
        .schedule_skips(source)?
        .into_iter()
        .map(|(kind, t, _)| (kind, t));
    for (kind, t) in started.chain(skipped) {
        if let (Some(kind), Some(t)) = (kind_named(&kind), time(&t)) {
            let entry = last.entry(kind).or_insert(t);
            *entry = (*entry).max(t);
        }
    }
    Ok(last)
}

/// Runs what is due (or, with `all`, everything) for every source of the context's policy.
pub fn run(ctx: &Context, all: bool, now: chrono::DateTime<chrono::Utc>) -> Result<PassReport> {
    let policy = ctx
        .targets
        .policy()
        .ok_or_else(|| Error::Usage("ivault run needs a --policy".into()))?;
    let schedules = schedules(policy);
    let zone = zone(policy);
    let state = ctx.state()?;
    let mut due_now = Vec::new();
    for source in &policy.source {
        let last = last_runs(&state, &source.name)?;
        let mut due = zone.due(&schedules, &last, now);
        if all {
            let backup = if due.contains(&JobKind::Full) {
                JobKind::Full
            } else {
                JobKind::Incremental
            };
            due = vec![backup, JobKind::Drill];
        }
        let stamp = stamp(now);
        for kind in &due {
            state.record_schedule_run(&source.name, kind.name(), &stamp)?;
        }
        due_now.push((source.name.as_str(), due));
    }
    // Every backup first, together: sources that share a target share its listing, known
    // blobs, packs and index (see `backup::run_many`).
    let backups: Vec<(&str, bool)> = due_now
        .iter()
        .flat_map(|(source, due)| {
            due.iter()
                .filter(|k| **k != JobKind::Drill)
                .map(|k| (*source, *k == JobKind::Full))
        })
        .collect();
    let mut jobs = back_up(ctx, &backups);
    for (source, due) in &due_now {
        if due.contains(&JobKind::Drill) {
            jobs.extend(drill_all(ctx, policy, source));
        }
    }
    // Retention after the backups, for every source that backed up or when asked for all.
    for source in &policy.source {
        let backed_up = backups.iter().any(|(s, _)| *s == source.name);
        if backed_up || all {
            jobs.extend(retention(ctx, policy, &source.name));
        }
    }
    if jobs.iter().any(|j| j.job == "retention") {
        jobs.extend(prune(ctx, policy, all, now));
    }
    Ok(PassReport { jobs })
}

/// A start time as the state holds it.
fn time(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// How start times are written in the state (`2026-11-23T10:00:00Z`).
pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One scheduled job of one source: a backup to every target (one outcome), or a drill of
/// every target (one outcome per target). The caller records its start and, after a backup,
/// runs [`retention`].
pub fn run_job(ctx: &Context, policy: &Policy, source: &str, kind: JobKind) -> Vec<JobOutcome> {
    match kind {
        JobKind::Full | JobKind::Incremental => back_up(ctx, &[(source, kind == JobKind::Full)]),
        JobKind::Drill => drill_all(ctx, policy, source),
    }
}

/// Backs up each `(source, full)` to every target of the source, all in one run: one outcome
/// per source.
fn back_up(ctx: &Context, sources: &[(&str, bool)]) -> Vec<JobOutcome> {
    let full_after_changed = ctx.targets.policy().map_or(
        Some(backup::DEFAULT_FULL_AFTER_CHANGED),
        Policy::full_after_changed,
    );
    let jobs: Vec<BackupJob> = sources
        .iter()
        .map(|(source, full)| BackupJob {
            source: PathBuf::from(source),
            targets: Vec::new(),
            options: BackupOptions {
                full: *full,
                full_after_changed,
                ..BackupOptions::default()
            },
        })
        .collect();
    let runs = backup::run_many(ctx, &jobs);
    sources
        .iter()
        .zip(runs)
        .map(|((source, full), run)| backup_outcome(source, *full, run))
        .collect()
}

fn backup_outcome(source: &str, full: bool, run: Result<backup::BackupRun>) -> JobOutcome {
    let name = if full { "full" } else { "incremental" };
    let outcome = |ok: bool, summary: String, exit_code: i32| JobOutcome {
        source: source.to_string(),
        job: name.into(),
        target: None,
        ok,
        summary,
        exit_code,
    };
    match run {
        Ok(run) => {
            let failed: Vec<String> =
                run.targets
                    .iter()
                    .filter_map(|t| {
                        t.result.as_ref().err().map(|e| {
                            format!("{}: {}", crate::secret::redact(&t.target), e.message())
                        })
                    })
                    .collect();
            let code = run
                .targets
                .iter()
                .find_map(|t| t.result.as_ref().err().map(Error::exit_code))
                .unwrap_or(0);
            if failed.is_empty() {
                outcome(
                    true,
                    format!("{name} backup to {} targets", run.targets.len()),
                    0,
                )
            } else {
                outcome(false, failed.join("; "), code)
            }
        }
        Err(e) => outcome(false, e.message().to_string(), e.exit_code()),
    }
}

fn drill_all(ctx: &Context, policy: &Policy, source: &str) -> Vec<JobOutcome> {
    let has_business = policy.source(source).is_some_and(|s| s.business.is_some());
    let job = DrillJob {
        source: source.to_string(),
        compare_live: has_business,
        rto: policy.objectives.rto,
        rpo: policy.objectives.rpo,
        ..DrillJob::default()
    };
    match drill::run(ctx, &job) {
        Ok(run) => run
            .reports
            .iter()
            .map(|r| {
                let failed = r
                    .checks
                    .iter()
                    .filter(|c| c.status == crate::report::model::Status::Failed)
                    .count();
                JobOutcome {
                    source: source.to_string(),
                    job: "drill".into(),
                    target: Some(r.target.clone()),
                    ok: failed == 0,
                    summary: if failed == 0 {
                        format!("drill {} passed", r.id)
                    } else {
                        format!("drill {}: {failed} checks failed", r.id)
                    },
                    exit_code: if failed == 0 {
                        0
                    } else {
                        crate::error::exit::DRILL_FAILED
                    },
                }
            })
            .collect(),
        Err(e) => vec![JobOutcome {
            source: source.to_string(),
            job: "drill".into(),
            target: None,
            ok: false,
            summary: e.message().to_string(),
            exit_code: e.exit_code(),
        }],
    }
}

/// The policy's `[retention]` for `source` on every target, one outcome per target (none
/// without a `[retention]`).
pub fn retention(ctx: &Context, policy: &Policy, source: &str) -> Vec<JobOutcome> {
    let Some(rules) = policy.retention.as_ref().and_then(|r| r.rules().ok()) else {
        return Vec::new();
    };
    policy
        .targets_of(Some(source))
        .into_iter()
        .map(|target| {
            let job = ForgetJob {
                repo: target.clone(),
                identity: None,
                source: Some(source.to_string()),
                rules: rules.clone(),
                dry_run: false,
            };
            let (ok, summary, exit_code) = match forget::run(ctx, &job) {
                Ok(r) if r.not_deleted.is_empty() => {
                    (true, format!("kept {}, forgot {}", r.kept, r.forgotten), 0)
                }
                Ok(r) => (
                    false,
                    format!(
                        "kept {}, forgot {}, could not forget {}",
                        r.kept,
                        r.forgotten,
                        r.not_deleted.len()
                    ),
                    crate::error::exit::PARTIAL,
                ),
                Err(e) => (false, e.message().to_string(), e.exit_code()),
            };
            JobOutcome {
                source: source.to_string(),
                job: "retention".into(),
                target: Some(target),
                ok,
                summary,
                exit_code,
            }
        })
        .collect()
}

/// How often the scheduler prunes a target: once a night, whatever the number of sources.
const PRUNE_EVERY: chrono::TimeDelta = chrono::TimeDelta::hours(20);

/// Prunes every target of the policy not pruned by this host in the last [`PRUNE_EVERY`] (or
/// every target, with `all`), unless the policy's `[retention]` says `prune = false`: one
/// outcome per target pruned. Objects left under Object Lock do not make it a failure.
pub fn prune(
    ctx: &Context,
    policy: &Policy,
    all: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<JobOutcome> {
    let Some(retention) = &policy.retention else {
        return Vec::new();
    };
    if retention.prune == Some(false) {
        return Vec::new();
    }
    let grace = retention
        .prune_grace
        .and_then(|g| chrono::TimeDelta::from_std(g).ok())
        .unwrap_or(crate::engine::prune::DEFAULT_GRACE);
    let state = match ctx.state() {
        Ok(s) => s,
        Err(e) => return vec![failed_prune("", &e)],
    };
    let mut out = Vec::new();
    for t in &policy.target {
        // Keyed apart from source names: a target is pruned once for all its sources.
        let key = format!("target {}", t.name);
        let last = state
            .schedule_runs(&key)
            .ok()
            .and_then(|runs| runs.get("prune").and_then(|t| time(t)));
        if !all && last.is_some_and(|l| now - l < PRUNE_EVERY) {
            continue;
        }
        if let Err(e) = state.record_schedule_run(&key, "prune", &stamp(now)) {
            out.push(failed_prune(&t.name, &e));
            continue;
        }
        let job = crate::engine::prune::PruneJob {
            repo: t.name.clone(),
            identity: None,
            grace,
            repack_unused_above: crate::engine::prune::DEFAULT_REPACK_UNUSED_ABOVE,
            dry_run: false,
        };
        out.push(match crate::engine::prune::run(ctx, &job) {
            Ok(r) => JobOutcome {
                source: String::new(),
                job: "prune".into(),
                target: Some(t.name.clone()),
                ok: true,
                summary: format!(
                    "deleted {} packs ({}), marked {}, {} left under Object Lock",
                    r.packs_deleted,
                    crate::report::units::bytes(r.bytes_freed),
                    r.marked,
                    r.left_in_place.len()
                ),
                exit_code: 0,
            },
            Err(e) => failed_prune(&t.name, &e),
        });
    }
    out
}

fn failed_prune(target: &str, e: &Error) -> JobOutcome {
    JobOutcome {
        source: String::new(),
        job: "prune".into(),
        target: (!target.is_empty()).then(|| target.to_string()),
        ok: false,
        summary: e.message().to_string(),
        exit_code: e.exit_code(),
    }
}
