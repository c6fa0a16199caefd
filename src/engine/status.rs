//! `ivault status`: for every source and target, the last successful backup and the last
//! drill, their age against the objectives, and whether anything is stale or failing, from the
//! job and drill history in the state. Also as Prometheus text-format metrics, written
//! atomically for node_exporter's textfile collector.

use crate::engine::context::Context;
use crate::error::{Error, Result};
use crate::state::{DrillRow, JobRow};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

pub use crate::policy::Objectives;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub lines: Vec<Line>,
    /// Nothing stale, failing or missing.
    pub healthy: bool,
}

/// One source on one target.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub source: String,
    pub target: String,
    pub last_backup: Option<BackupBrief>,
    pub last_drill: Option<DrillBrief>,
    /// What is wrong, one sentence each; empty when healthy.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupBrief {
    /// When the last successful backup ended (RFC 3339).
    pub time: String,
    pub age_ms: u64,
    pub duration_ms: u64,
    pub bytes_stored: u64,
    pub snapshot_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillBrief {
    pub id: i64,
    pub time: String,
    pub verdict: String,
    pub rto_ms: u64,
    pub rpo_ms: u64,
}

fn ms_between(a: &str, b: chrono::DateTime<chrono::Utc>) -> Option<u64> {
    let a = chrono::DateTime::parse_from_rfc3339(a).ok()?;
    Some(
        (b - a.with_timezone(&chrono::Utc))
            .num_milliseconds()
            .max(0) as u64,
    )
}

fn backup_brief(j: &JobRow, now: chrono::DateTime<chrono::Utc>) -> BackupBrief {
    let ended = j.ended.clone().unwrap_or_else(|| j.started.clone());
    BackupBrief {
        age_ms: ms_between(&ended, now).unwrap_or(0),
        duration_ms: chrono::DateTime::parse_from_rfc3339(&ended)
            .ok()
            .and_then(|e| ms_between(&j.started, e.with_timezone(&chrono::Utc)))
            .unwrap_or(0),
        time: ended,
        bytes_stored: j.bytes_stored.unwrap_or(0),
        snapshot_id: j.snapshot_id.clone(),
    }
}

fn drill_brief(d: &DrillRow) -> DrillBrief {
    DrillBrief {
        id: d.id,
        time: d.finished.clone(),
        verdict: d.verdict.clone(),
        rto_ms: d.rto_ms,
        rpo_ms: d.rpo_ms,
    }
}

/// The status of every source and target the policy names (each must have been backed up),
/// and of every other pair the history has seen.
pub fn run(ctx: &Context, objectives: &Objectives) -> Result<Status> {
    let state = ctx.state()?;
    let now = chrono::Utc::now();
    let backups = state.latest_jobs("backup")?;
    let drills = state.latest_drills()?;
    // Backups record the database's path, drills the source's name: a policy ties them.
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut lines: BTreeMap<(String, String), Line> = BTreeMap::new();
    if let Some(p) = ctx.targets.policy() {
        for s in &p.source {
            names.insert(s.path.display().to_string(), s.name.clone());
            for t in p.targets_of(Some(&s.name)) {
                entry(&mut lines, s.name.clone(), t);
            }
        }
    }
    for b in &backups {
        let (Some(source), Some(target)) = (&b.source, &b.target) else {
            continue;
        };
        let source = names.get(source).cloned().unwrap_or_else(|| source.clone());
        let l = entry(&mut lines, source, target.clone());
        l.last_backup = b.last_ok.as_ref().map(|j| backup_brief(j, now));
        if b.last.outcome != "ok" && b.last.outcome != "running" {
            l.problems.push(format!(
                "the last backup ({}) {}: {}",
                b.last.started,
                b.last.outcome,
                b.last.error.as_deref().unwrap_or("no reason recorded")
            ));
        }
    }
    for d in &drills {
        let l = entry(&mut lines, d.source.clone(), d.target.clone());
        if d.verdict != "passed" {
            l.problems.push(format!(
                "the last drill ({}, drill {}) failed; ivault report --drill {} says why",
                d.finished, d.id, d.id
            ));
        }
        if let Some(rto) = objectives.rto {
            if Duration::from_millis(d.rto_ms) > rto {
                l.problems.push(format!(
                    "the last drill's restore took {} s, over the RTO of {} s",
                    d.rto_ms / 1000,
                    rto.as_secs()
                ));
            }
        }
        l.last_drill = Some(drill_brief(d));
    }
    for l in lines.values_mut() {
        match (&l.last_backup, objectives.rpo) {
            (None, _) => l.problems.push("never backed up successfully".into()),
            (Some(b), Some(rpo)) if Duration::from_millis(b.age_ms) > rpo => {
                l.problems.push(format!(
                    "the last successful backup is {} h old, over the RPO of {} h",
                    b.age_ms / 3_600_000,
                    rpo.as_secs() / 3600
                ))
            }
            _ => {}
        }
    }
    let lines: Vec<Line> = lines.into_values().collect();
    Ok(Status {
        healthy: lines.iter().all(|l| l.problems.is_empty()),
        lines,
    })
}

fn entry(
    lines: &mut BTreeMap<(String, String), Line>,
    source: String,
    target: String,
) -> &mut Line {
    lines
        .entry((source.clone(), target.clone()))
        .or_insert_with(|| Line {
            source,
            target,
            last_backup: None,
            last_drill: None,
            problems: Vec::new(),
        })
}

/// Prometheus text format (node_exporter's textfile collector), one series per source and
/// target.
pub fn metrics(status: &Status) -> String {
    let mut out = String::new();
    type Series = (&'static str, &'static str, fn(&Line) -> Option<f64>);
    let series: [Series; 9] = [
        (
            "ivault_backup_last_success_timestamp_seconds",
            "When the last successful backup ended.",
            |l| l.last_backup.as_ref().and_then(|b| timestamp(&b.time)),
        ),
        (
            "ivault_backup_last_success_age_seconds",
            "Age of the last successful backup.",
            |l| l.last_backup.as_ref().map(|b| b.age_ms as f64 / 1000.0),
        ),
        (
            "ivault_backup_last_duration_seconds",
            "Duration of the last successful backup.",
            |l| {
                l.last_backup
                    .as_ref()
                    .map(|b| b.duration_ms as f64 / 1000.0)
            },
        ),
        (
            "ivault_backup_last_bytes_stored",
            "Bytes the last successful backup stored.",
            |l| l.last_backup.as_ref().map(|b| b.bytes_stored as f64),
        ),
        (
            "ivault_drill_last_timestamp_seconds",
            "When the last drill ended.",
            |l| l.last_drill.as_ref().and_then(|d| timestamp(&d.time)),
        ),
        (
            "ivault_drill_last_passed",
            "1 when the last drill passed every check.",
            |l| {
                l.last_drill
                    .as_ref()
                    .map(|d| f64::from(u8::from(d.verdict == "passed")))
            },
        ),
        (
            "ivault_drill_last_rto_seconds",
            "Restore time of the last drill.",
            |l| l.last_drill.as_ref().map(|d| d.rto_ms as f64 / 1000.0),
        ),
        (
            "ivault_drill_last_rpo_seconds",
            "Age of the snapshot the last drill restored.",
            |l| l.last_drill.as_ref().map(|d| d.rpo_ms as f64 / 1000.0),
        ),
        (
            "ivault_healthy",
            "1 when nothing is stale, failing or missing.",
            |l| Some(f64::from(u8::from(l.problems.is_empty()))),
        ),
    ];
    for (name, help, value) in series {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for l in &status.lines {
            if let Some(v) = value(l) {
                out.push_str(&format!(
                    "{name}{{source=\"{}\",target=\"{}\"}} {v}\n",
                    label(&l.source),
                    label(&crate::secret::redact(&l.target))
                ));
            }
        }
    }
    out
}

fn timestamp(rfc3339: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
}

/// A label value escaped as the text format requires.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `text` to `path` atomically: a temporary file beside it, fsynced, renamed over it,
/// so the collector never reads half a file.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| {
        Error::Destination(format!("cannot write the metrics file {}: {e}", path.display()).into())
    };
    let tmp = dir.join(format!(
        ".{}.ivault-{:08x}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        rand::random::<u32>()
    ));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}
