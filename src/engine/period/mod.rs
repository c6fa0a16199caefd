//! `restore-period`: bring back a lost period of invoices from a snapshot into the live
//! database. The snapshot is read in place, straight from the repository (only the pages the
//! period's queries touch), and attached beside the live database, read-only. The invoices
//! whose day falls in the period, and their child rows, are compared by key: missing live,
//! changed, extra live. `--apply` backs the live database up first, then inserts what is
//! missing (and with `--overwrite-changed` replaces what changed) in one short transaction,
//! never deletes, re-checks the period's count and total, and leaves an audit record. Anything
//! that does not fit refuses before a byte of the live database is written.

mod apply;
mod audit;
mod choose;
mod dates;
mod diff;
mod live;
mod plan;
mod range;
mod tables;

pub use audit::AuditRecord;
pub use dates::Period;
pub use diff::{ChangedRow, ColumnChange, Figures, TableDiff};

use crate::engine::backup::{self, BackupJob, BackupOptions};
use crate::engine::restore::image;
use crate::engine::Context;
use crate::error::{Error, Result};
use crate::facts::Description;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct PeriodJob {
    /// A database path, or a source name of the context's policy.
    pub source: String,
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub from: String,
    pub to: String,
    /// `latest`, `auto`, or a snapshot id (prefix).
    pub snapshot: String,
    /// The target to read from (and back up to before applying); default: the policy's first
    /// target of the source.
    pub target: Option<String>,
    pub identity: Option<PathBuf>,
    pub apply: bool,
    pub overwrite_changed: bool,
    /// Apply even though live tables have triggers (they fire for every row written).
    pub allow_triggers: bool,
    pub allow_unverified: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeriodReport {
    pub source: String,
    pub live_path: String,
    pub target: String,
    pub snapshot_id: String,
    pub snapshot_time: String,
    /// Why this snapshot.
    pub choice: String,
    pub from: String,
    pub to: String,
    /// The period's invoices in the snapshot and live (before any repair).
    pub snapshot: Figures,
    pub live: Figures,
    pub tables: Vec<TableDiff>,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<Applied>,
}

impl PeriodReport {
    /// Whether the snapshot holds rows the live database lacks or holds otherwise.
    pub fn to_restore(&self) -> bool {
        self.tables
            .iter()
            .any(|t| !t.missing.is_empty() || !t.changed.is_empty())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The backup of the live database taken before writing (none when nothing was written).
    pub backup_snapshot_id: Option<String>,
    pub inserted: BTreeMap<String, u64>,
    pub replaced: BTreeMap<String, u64>,
    /// The period's invoices live after the repair, and whether they equal the snapshot's.
    pub after: Figures,
    pub matches: bool,
    pub audit_id: Option<i64>,
    pub audit_file: Option<String>,
}

/// The live database as the job names it.
struct Live {
    path: PathBuf,
    /// What snapshots of it are listed under: the policy's source name, else the path.
    filter: String,
    policy_name: Option<String>,
    description: Option<Description>,
}

fn resolve_live(ctx: &Context, source: &str) -> Result<Live> {
    let policy = ctx.targets.policy();
    if let Some(s) = policy.and_then(|p| p.source(source)) {
        return Ok(Live {
            path: s.path.clone(),
            filter: s.name.clone(),
            policy_name: Some(s.name.clone()),
            description: s.business.clone(),
        });
    }
    if let Some(p) = policy.filter(|_| crate::policy::looks_like_a_name(source)) {
        if !Path::new(source).exists() {
            return Err(p.unknown("source", source));
        }
    }
    let path = std::fs::canonicalize(source).map_err(|e| {
        Error::Source(
            format!("the live database {source} cannot be opened ({e}); check the path").into(),
        )
    })?;
    Ok(Live {
        filter: path.display().to_string(),
        path,
        policy_name: None,
        description: None,
    })
}

/// Compares, and with `apply` repairs. Refusals are [`Error::Refused`].
pub fn run(ctx: &Context, job: &PeriodJob) -> Result<PeriodReport> {
    let started = std::time::Instant::now();
    let stage = |what: &str| tracing::debug!("{what} after {:?}", started.elapsed());
    let period = Period::parse(&job.from, &job.to)?;
    let live = resolve_live(ctx, &job.source)?;
    let policy = ctx.targets.policy();
    let target = match (&job.target, policy) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => p
            .targets_of(live.policy_name.as_deref())
            .into_iter()
            .next()
            .ok_or_else(|| Error::Usage("give --repo TARGET: the policy names no target".into()))?,
        (None, None) => {
            return Err(Error::Usage(
                "give --repo TARGET (a directory, s3://bucket/prefix, or a target of the --policy)"
                    .into(),
            ))
        }
    };
    let (repo, keys) = ctx.open_repo_with_key(&target, job.identity.as_deref())?;
    let (repo, keys) = (Arc::new(repo), Arc::new(keys));
    let trust = ctx.trust(&repo, job.allow_unverified)?;
    let mut measure = |id: &crate::repo::ids::SnapshotId,
                       m: &crate::repo::manifest::Manifest|
     -> Result<Figures> {
        let d = live
            .description
            .clone()
            .or_else(|| m.business.as_ref().map(|b| b.description.clone()));
        match d {
            Some(d) => live::measure(
                &image::mount(repo.clone(), keys.clone(), id, m)?,
                &d,
                &period,
            ),
            None => Ok(Figures {
                invoices: 0,
                total: crate::facts::Amount::Integer(0),
            }),
        }
    };
    let chosen = choose::choose(
        &repo,
        &keys,
        &trust,
        &choose::Wanted {
            spec: &job.snapshot,
            filter: &live.filter,
            description: live.description.as_ref(),
            period: &period,
        },
        &mut measure,
    )?;
    let m = &chosen.manifest;
    let live_text = live.path.display().to_string();
    if m.source.name != live.filter && m.source.path != live_text {
        return Err(Error::Refused(
            format!(
                "snapshot {} is of the source {} ({}), not of the live database {live_text}; give a snapshot of this database (ivault snapshots --source {})",
                chosen.id, m.source.name, m.source.path, live.filter
            )
            .into(),
        ));
    }
    let Some(d) = live
        .description
        .clone()
        .or_else(|| m.business.as_ref().map(|b| b.description.clone()))
    else {
        return Err(Error::Refused(
            format!(
                "neither the policy nor snapshot {} describes the invoices of {}; give the source a [source.business] description in the policy and pass --policy",
                chosen.id, live.filter
            )
            .into(),
        ));
    };
    // Read in place: only the pages the period's queries touch are fetched.
    let snapshot = image::mount(repo.clone(), keys.clone(), &chosen.id, m)?;
    let session = live::Session::open(&live.path, (&snapshot, chosen.id), &d, &period, job.apply)?;
    stage("snapshot mounted and plans made");
    // With --apply, the refusals come first, and the undo point is taken while the comparison
    // runs (both only read the live database) when there is anything to write at all.
    let mut undo = None;
    let compared = if job.apply {
        session.refuse_triggers(job.allow_triggers)?;
        session.refuse_collisions(job.overwrite_changed)?;
        stage("refusals checked");
        if session.anything_to_write(job.overwrite_changed)? {
            let (compared, backed_up) = std::thread::scope(|s| {
                let backup = s.spawn(|| undo_point(ctx, &live, &target, m));
                (session.compare(), backup.join())
            });
            undo =
                Some(backed_up.map_err(|_| {
                    Error::Internal("the backup before the repair panicked".into())
                })??);
            stage("backed up");
            compared?
        } else {
            session.compare()?
        }
    } else {
        session.compare()?
    };
    stage("compared");
    let mut report = PeriodReport {
        source: live.filter.clone(),
        live_path: live_text.clone(),
        target: crate::secret::redact(&target).into_owned(),
        snapshot_id: chosen.id.to_string(),
        snapshot_time: m.time.clone(),
        choice: chosen.why.clone(),
        from: period.from_text(),
        to: period.to_text(),
        snapshot: compared.snapshot,
        live: compared.live,
        tables: compared.tables,
        warnings: chosen.warnings.clone(),
        applied: None,
    };
    if !job.apply {
        return Ok(report);
    }
    let writes = report
        .tables
        .iter()
        .any(|t| !t.missing.is_empty() || (job.overwrite_changed && !t.changed.is_empty()));
    let backup_id = match undo {
        Some(id) => id,
        // Another writer took rows away since the first look: the undo point is taken now.
        None if writes => undo_point(ctx, &live, &target, m)?,
        None => {
            let after = session.figures()?;
            report.applied = Some(Applied {
                backup_snapshot_id: None,
                inserted: BTreeMap::new(),
                replaced: BTreeMap::new(),
                matches: after.same_as(&report.snapshot),
                after,
                audit_id: None,
                audit_file: None,
            });
            return Ok(report);
        }
    };
    let written = session.write(job.overwrite_changed)?;
    stage("written");
    let after = session.figures()?;
    drop(session);
    let record = AuditRecord {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        user: audit::user(),
        host: crate::host::name(),
        source: live.filter.clone(),
        live_path: live_text,
        target: report.target.clone(),
        snapshot_id: report.snapshot_id.clone(),
        backup_snapshot_id: backup_id.clone(),
        from: report.from.clone(),
        to: report.to.clone(),
        overwrite_changed: job.overwrite_changed,
        inserted: written.inserted.clone(),
        replaced: written.replaced.clone(),
        snapshot_figures: report.snapshot,
        live_figures_after: after,
    };
    let state = ctx.state()?;
    let (audit_id, file) = audit::record(&state, &ctx.state_dir, &record)?;
    report.applied = Some(Applied {
        backup_snapshot_id: Some(backup_id),
        inserted: written.inserted,
        replaced: written.replaced,
        matches: after.same_as(&report.snapshot),
        after,
        audit_id: Some(audit_id),
        audit_file: Some(file.display().to_string()),
    });
    Ok(report)
}

/// Backs the live database up to the target before a repair, so that restoring this snapshot
/// undoes it; returns its id. It is an undo point, restored whole if ever: no SQLite check and
/// no invoice facts, which would cost more than the rest of the repair on a large database
/// (the next scheduled backup records both).
fn undo_point(
    ctx: &Context,
    live: &Live,
    target: &str,
    m: &crate::repo::manifest::Manifest,
) -> Result<String> {
    let live_text = live.path.display().to_string();
    let backed_up = backup::run(
        ctx,
        &BackupJob {
            source: PathBuf::from(live.policy_name.as_deref().unwrap_or(&live_text)),
            targets: vec![target.to_string()],
            options: BackupOptions {
                name: Some(m.source.name.clone()),
                tags: vec![choose::UNDO_TAG.into()],
                read: backup::ReadOptions {
                    check: crate::source::CheckLevel::Off,
                    ..Default::default()
                },
                without_facts: true,
                ..Default::default()
            },
        },
    )?;
    match backed_up.targets.into_iter().next().map(|t| t.result) {
        Some(Ok(r)) => Ok(r.snapshot_id.to_string()),
        Some(Err(e)) => Err(e),
        None => Err(Error::Internal(
            "the backup before the repair reported nothing".into(),
        )),
    }
}
