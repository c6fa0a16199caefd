//! `ivault forget`: apply a retention policy to a repository's snapshots, per source. A
//! forgotten snapshot's manifest is deleted; its data stays until a prune. Only snapshots a
//! trusted signer signed count toward the rules (a planted snapshot must not push a real one
//! out); the others, and those that cannot be read, are left alone and reported. Holds keep a
//! snapshot whatever the rules say.

use crate::engine::context::{recorded, Context};
use crate::error::{Error, Result};
use crate::repo::holds::Hold;
use crate::repo::ids::{ObjectId, SnapshotId};
use crate::retention::{self, Rules};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct ForgetJob {
    pub repo: String,
    pub identity: Option<PathBuf>,
    /// Only this source's snapshots (name or path); all sources otherwise, each on its own.
    pub source: Option<String>,
    pub rules: Rules,
    /// Decide and report, delete nothing.
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForgetReport {
    pub repository: String,
    pub dry_run: bool,
    /// Per source name, newest first.
    pub sources: BTreeMap<String, Vec<Decision>>,
    pub kept: usize,
    pub forgotten: usize,
    /// Snapshots no rule applies to: unreadable, or not signed by a trusted signer.
    pub untouched: Vec<Untouched>,
    /// Manifests that could not be deleted (e.g. still under Object Lock), with why.
    pub not_deleted: Vec<Untouched>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub id: SnapshotId,
    pub time: String,
    pub keep: bool,
    /// The rules (and holds) that keep it; empty when it is forgotten.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Untouched {
    pub id: SnapshotId,
    pub why: String,
}

pub fn run(ctx: &Context, job: &ForgetJob) -> Result<ForgetReport> {
    if !job.rules.keeps_something() {
        return Err(Error::Usage(
            "these retention rules keep no snapshot at all; give at least one keep rule".into(),
        ));
    }
    let (repo, keys) = ctx.open_repo_with_key(&job.repo, job.identity.as_deref())?;
    let trust = ctx.trust(&repo, false)?;
    let mut state = ctx.state()?;
    let location = repo.location();
    let summary = |_: &ForgetReport| (0, 0, None);
    recorded(
        &mut state,
        "forget",
        job.source.as_deref(),
        Some(&location),
        summary,
        |_| {
            let catalog = repo.catalog(&keys, job.source.as_deref(), &trust)?;
            let (holds, unreadable_holds) = repo.holds(&keys)?;
            for (id, e) in &unreadable_holds {
                tracing::warn!(
                    "hold {id} cannot be read ({}); its snapshot may be forgotten",
                    e.message()
                );
            }
            let held: BTreeMap<SnapshotId, &Hold> =
                holds.iter().map(|(_, h)| (h.snapshot, h)).collect();
            let accepted: Vec<SnapshotId> = catalog.accepted(&trust).map(|e| e.id).collect();
            let mut report = ForgetReport {
                repository: location.clone(),
                dry_run: job.dry_run,
                sources: BTreeMap::new(),
                kept: 0,
                forgotten: 0,
                untouched: catalog
                    .unreadable
                    .iter()
                    .map(|(id, e)| Untouched {
                        id: *id,
                        why: e.message().to_string(),
                    })
                    .collect(),
                not_deleted: Vec::new(),
            };
            let mut groups: BTreeMap<String, Vec<retention::Snapshot>> = BTreeMap::new();
            let mut times: BTreeMap<SnapshotId, String> = BTreeMap::new();
            for e in &catalog.entries {
                if !accepted.contains(&e.id) {
                    report.untouched.push(Untouched {
                        id: e.id,
                        why: format!("not signed by a trusted signer ({})", e.verdict.label()),
                    });
                    continue;
                }
                let Ok(time) = chrono::DateTime::parse_from_rfc3339(&e.manifest.time) else {
                    report.untouched.push(Untouched {
                        id: e.id,
                        why: format!("its time {:?} cannot be read", e.manifest.time),
                    });
                    continue;
                };
                times.insert(e.id, e.manifest.time.clone());
                groups
                    .entry(e.manifest.source.name.clone())
                    .or_default()
                    .push(retention::Snapshot {
                        id: e.id.to_string(),
                        time: time.with_timezone(&chrono::Utc),
                        tags: e.manifest.tags.clone(),
                        hold: held.get(&e.id).map(|h| h.reason.clone()),
                    });
            }
            let zone = *chrono::Local::now().offset();
            let now = chrono::Utc::now();
            for (source, snapshots) in groups {
                let mut decisions = Vec::new();
                for d in retention::decide(&snapshots, &job.rules, zone, now) {
                    let Some(id) = SnapshotId::parse(&d.id) else {
                        continue;
                    };
                    let keep = d.keep();
                    if keep {
                        report.kept += 1;
                    } else if job.dry_run {
                        report.forgotten += 1;
                    } else {
                        match repo.storage().delete(&id.key()) {
                            Ok(()) => report.forgotten += 1,
                            Err(e) => report.not_deleted.push(Untouched {
                                id,
                                why: e.to_string(),
                            }),
                        }
                    }
                    decisions.push(Decision {
                        id,
                        time: times.get(&id).cloned().unwrap_or_default(),
                        keep,
                        reasons: d.reasons,
                    });
                }
                report.sources.insert(source, decisions);
            }
            Ok(report)
        },
    )
}

/// Places a legal hold on a snapshot (an id or unique prefix).
pub fn hold(
    ctx: &Context,
    repo: &str,
    identity: Option<&std::path::Path>,
    snapshot: &str,
    reason: &str,
) -> Result<(SnapshotId, Hold)> {
    if reason.trim().is_empty() {
        return Err(Error::Usage(
            "a hold needs a reason; say why the snapshot must be kept".into(),
        ));
    }
    let (repo, keys) = ctx.open_repo_with_key(repo, identity)?;
    let trust = ctx.trust(&repo, true)?;
    let picked = repo.resolve_snapshot(&keys, snapshot, None, &trust)?;
    let hold = Hold {
        snapshot: picked.id,
        reason: reason.trim().to_string(),
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        host: crate::host::name(),
    };
    repo.put_hold(&hold)?;
    Ok((picked.id, hold))
}

/// Removes every hold on a snapshot; returns how many there were.
pub fn unhold(
    ctx: &Context,
    repo: &str,
    identity: Option<&std::path::Path>,
    snapshot: &str,
) -> Result<usize> {
    let (repo, keys) = ctx.open_repo_with_key(repo, identity)?;
    let (holds, _) = repo.holds(&keys)?;
    let matching: Vec<_> = holds
        .iter()
        .filter(|(_, h)| {
            h.snapshot
                .to_string()
                .starts_with(&snapshot.to_ascii_lowercase())
        })
        .collect();
    let snapshots: std::collections::BTreeSet<SnapshotId> =
        matching.iter().map(|(_, h)| h.snapshot).collect();
    if snapshots.len() > 1 {
        return Err(Error::Usage(
            format!("{snapshot:?} matches holds on several snapshots; give more of the id").into(),
        ));
    }
    for (id, _) in &matching {
        repo.storage()
            .delete(&id.key())
            .map_err(|e| crate::repo::storage_error(&repo.location(), e))?;
    }
    Ok(matching.len())
}
