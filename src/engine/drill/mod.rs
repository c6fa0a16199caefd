//! Restore drills: for each target, one snapshot of a source is restored into a scratch
//! directory and checked end to end (objects, SHA-256, SQLite's checks, row counts, invoices
//! per month, numbering, optionally the live database's closed months), with RTO and RPO
//! against the objectives. Every check is recorded; a drill never stops at the first failure.
//! Each drill is stored in the state's history with its whole report.

mod checks;
mod history;
mod live;
pub(crate) mod scratch;

pub use history::{history, reports, write_reports};
use scratch::Scratch;

use crate::engine::context::{recorded_judged, remember_damage, Context};
use crate::error::{Error, Result};
use crate::repo::catalog::Verdict as Authenticity;
use crate::repo::ids::SnapshotId;
use crate::repo::manifest::Manifest;
use crate::repo::Repository;
use crate::report::model::{
    Check, CheckKind, DrillReport, Objective, SnapshotRef, SourceRef, Status, Verdict,
    REPORT_SCHEMA,
};
use crate::report::units;
use crate::state::State;
use checks::check;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How many past drills of a source and target a report charts.
const HISTORY_POINTS: usize = 30;

/// Which snapshot a drill restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotChoice {
    Latest,
    /// One of the source's authenticated snapshots, drawn at random: over many nights every
    /// snapshot gets drilled, not only the newest.
    Random,
    /// An id or unique prefix.
    Id(String),
}

impl SnapshotChoice {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "latest" => Ok(SnapshotChoice::Latest),
            "random" => Ok(SnapshotChoice::Random),
            id if !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(SnapshotChoice::Id(id.to_string()))
            }
            other => Err(Error::Usage(
                format!("--snapshot {other:?} is not latest, random or a snapshot id").into(),
            )),
        }
    }
}

pub struct DrillJob {
    /// A database path or source name (of the context's policy, or as recorded in snapshots).
    pub source: String,
    /// Targets to drill; empty means every target of the policy.
    pub targets: Vec<String>,
    pub identity: Option<PathBuf>,
    pub snapshot: SnapshotChoice,
    /// Where restored copies go (default: the state directory).
    pub scratch_dir: Option<PathBuf>,
    pub keep: bool,
    /// Compare the closed months of the live database with the snapshot.
    pub compare_live: bool,
    /// How many months, the current one included, are still open (not compared).
    pub open_months: u32,
    pub rto: Option<Duration>,
    pub rpo: Option<Duration>,
    /// Drill a snapshot no trusted signer signed (the snapshot check fails all the same).
    pub allow_unverified: bool,
}

impl Default for DrillJob {
    fn default() -> Self {
        DrillJob {
            source: String::new(),
            targets: Vec::new(),
            identity: None,
            snapshot: SnapshotChoice::Latest,
            scratch_dir: None,
            keep: false,
            compare_live: false,
            open_months: 2,
            rto: None,
            rpo: None,
            allow_unverified: false,
        }
    }
}

/// Every target's drill.
#[derive(Debug)]
pub struct DrillRun {
    pub reports: Vec<DrillReport>,
    /// Scratch directories kept (`keep`), with the restored copy inside.
    pub kept: Vec<PathBuf>,
    /// Notifiers that failed to deliver an alert about a failed drill, one sentence each.
    pub alert_failures: Vec<String>,
}

impl DrillRun {
    pub fn passed(&self) -> bool {
        self.reports.iter().all(|r| r.verdict == Verdict::Passed)
    }
}

/// Runs the drill on every target. An error here means no drill could start (no target, a
/// bad source name); everything that goes wrong within a drill is one of its checks.
pub fn run(ctx: &Context, job: &DrillJob) -> Result<DrillRun> {
    let policy = ctx.targets.policy();
    let named = policy.and_then(|p| p.source(&job.source));
    let (filter, live_path) = match named {
        Some(s) => (s.name.clone(), Some(s.path.clone())),
        None if Path::new(&job.source).exists() => {
            let p =
                std::fs::canonicalize(&job.source).unwrap_or_else(|_| PathBuf::from(&job.source));
            (p.display().to_string(), Some(p))
        }
        None if policy.is_some() && crate::policy::looks_like_a_name(&job.source) => {
            return Err(policy
                .map(|p| p.unknown("source", &job.source))
                .unwrap_or_else(|| Error::Usage("no such source".into())))
        }
        None => (job.source.clone(), None),
    };
    let targets: Vec<String> = match (&job.targets[..], policy) {
        ([], Some(p)) if !p.target.is_empty() => p.targets_of(named.map(|s| s.name.as_str())),
        ([], _) => {
            return Err(Error::Usage(
                "give at least one --repo TARGET to drill (a directory, s3://bucket/prefix, or a target of the --policy)".into(),
            ))
        }
        (named, _) => named.to_vec(),
    };
    let mut state = ctx.state()?;
    let mut run = DrillRun {
        reports: Vec::new(),
        kept: Vec::new(),
        alert_failures: Vec::new(),
    };
    for target in targets {
        let scratch = Scratch::create(
            job.scratch_dir.as_deref().unwrap_or(&ctx.state_dir),
            job.keep,
        )?;
        let summary = |r: &DrillReport| {
            let id = r.snapshot.as_ref().map(|s| s.id.clone());
            let failed = r
                .checks
                .iter()
                .filter(|c| c.status == Status::Failed)
                .count();
            let failure = (failed > 0).then(|| format!("drill {}: {failed} checks failed", r.id));
            ((r.bytes_read, 0, id), failure)
        };
        let report = recorded_judged(
            &mut state,
            "drill",
            Some(&filter),
            Some(&target),
            summary,
            |state| {
                let mut drill = Drill {
                    ctx,
                    job,
                    state,
                    target: &target,
                    filter: &filter,
                    live: live_path.as_deref(),
                    scratch: &scratch,
                    checks: Vec::new(),
                };
                drill.run()
            },
        )?;
        if job.keep {
            run.kept.push(scratch.dir.clone());
        }
        if report.verdict == Verdict::Failed {
            let failures = crate::engine::alert::on_failure(
                ctx,
                &crate::engine::alert::drill_summary(&report),
            );
            run.alert_failures.extend(failures);
        }
        run.reports.push(report);
    }
    Ok(run)
}

/// One target's drill in progress.
struct Drill<'a> {
    ctx: &'a Context,
    job: &'a DrillJob,
    state: &'a mut State,
    target: &'a str,
    filter: &'a str,
    live: Option<&'a Path>,
    scratch: &'a Scratch,
    checks: Vec<Check>,
}

/// What restoring the snapshot gave.
struct Restored {
    id: SnapshotId,
    manifest: Manifest,
    signer: Option<String>,
    rto: Duration,
    bytes_read: u64,
    /// The copy is whole (SHA-256 equal): the database checks count.
    whole: bool,
    /// The rebuilt copy, until it is verified.
    file: Option<std::fs::File>,
}

impl Drill<'_> {
    fn run(&mut self) -> Result<DrillReport> {
        let started = chrono::Utc::now();
        let mut restored = self.restore();
        let found = match restored.as_mut() {
            Some(r) => self.verify_and_check(r),
            None => None,
        };
        let mut months = Vec::new();
        if let (Some(r), Some(found)) = (restored.as_ref().filter(|r| r.whole), found) {
            let path = self.scratch.database();
            self.source_check(&r.manifest);
            self.checks.extend(found.checks);
            if let Some(expected) = &r.manifest.business {
                months = checks::month_rows(expected, found.facts.as_ref());
                if self.job.compare_live {
                    let recorded = Path::new(&r.manifest.source.path);
                    self.compare_live(&path, recorded, expected, &mut months);
                }
            } else if self.job.compare_live {
                let mut c = check(CheckKind::LiveDrift, None, Status::Skipped);
                c.detail = Some(
                    "the snapshot records no invoice facts: give the source a business description in the policy".into(),
                );
                self.checks.push(c);
            }
        } else {
            for kind in [
                CheckKind::IntegrityCheck,
                CheckKind::ForeignKeyCheck,
                CheckKind::RowCount,
            ] {
                let mut c = check(kind, None, Status::Skipped);
                c.detail = Some("not run: the snapshot could not be restored whole".into());
                self.checks.push(c);
            }
        }
        let finished = chrono::Utc::now();
        let rto_ms = restored.as_ref().map_or(0, |r| r.rto.as_millis() as u64);
        let rpo_ms = restored
            .as_ref()
            .map_or(0, |r| rpo_at(&r.manifest, finished));
        let rto = Objective::new(rto_ms, self.job.rto.map(|d| d.as_millis() as u64));
        // The RPO is about the newest backup: an older snapshot drilled on purpose is not late.
        let rpo_objective = self
            .job
            .rpo
            .filter(|_| self.job.snapshot == SnapshotChoice::Latest);
        let rpo = Objective::new(rpo_ms, rpo_objective.map(|d| d.as_millis() as u64));
        if restored.is_some() {
            self.objective(CheckKind::Rto, rto);
            self.objective(CheckKind::Rpo, rpo);
        }
        let verdict = if self.checks.iter().any(|c| c.status == Status::Failed) {
            Verdict::Failed
        } else {
            Verdict::Passed
        };
        let source = restored.as_ref().map_or(
            SourceRef {
                name: self.filter.to_string(),
                path: self
                    .live
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            },
            |r| SourceRef {
                name: r.manifest.source.name.clone(),
                path: r.manifest.source.path.clone(),
            },
        );
        let mut report = DrillReport {
            schema: REPORT_SCHEMA.into(),
            id: 0,
            started: rfc3339(started),
            finished: rfc3339(finished),
            verdict,
            source,
            target: crate::secret::redact(self.target).into_owned(),
            snapshot: restored.as_ref().map(|r| SnapshotRef {
                id: r.id.to_string(),
                time: r.manifest.time.clone(),
                kind: r.manifest.kind.to_string(),
                signer: r.signer.clone(),
            }),
            host: crate::host::name(),
            rto,
            rpo,
            bytes_read: restored.as_ref().map_or(0, |r| r.bytes_read),
            checks: std::mem::take(&mut self.checks),
            months,
            history: Vec::new(),
        };
        history::record(self.state, &mut report)?;
        Ok(report)
    }

    /// Picks the snapshot and restores it into the scratch directory: the snapshot, objects
    /// and SHA-256 checks. `None` when nothing could be restored.
    fn restore(&mut self) -> Option<Restored> {
        let opened = self
            .ctx
            .open_repo_with_key(self.target, self.job.identity.as_deref())
            .and_then(|(repo, keys)| {
                let trust = self.ctx.trust(&repo, self.job.allow_unverified)?;
                Ok((repo, keys, trust))
            });
        let (repo, keys, trust) = match opened {
            Ok(o) => o,
            Err(e) => {
                self.fail(CheckKind::Snapshot, None, e.message());
                return None;
            }
        };
        let picked = match self.pick(&repo, &keys, &trust) {
            Ok(p) => p,
            Err(e) => {
                self.fail(CheckKind::Snapshot, None, e.message());
                return None;
            }
        };
        let signer = match &picked.verdict {
            Authenticity::Trusted(s) => Some(s.to_string()),
            _ => None,
        };
        let mut c = check(
            CheckKind::Snapshot,
            Some(picked.id.to_string()),
            Status::Passed,
        );
        c.expected = Some("signed by a trusted signer".into());
        c.actual = Some(picked.verdict.label().into());
        if signer.is_none() {
            // Drilled on request, but an unauthenticated snapshot proves nothing.
            c.status = Status::Failed;
            c.detail = picked.warnings.first().cloned();
        }
        self.checks.push(c);
        for w in &picked.warnings {
            self.warn(CheckKind::Snapshot, None, w);
        }
        let (id, m) = (picked.id, picked.manifest);
        let path = self.scratch.database();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                self.fail(
                    CheckKind::Objects,
                    None,
                    &format!("cannot create the scratch copy {}: {e}", path.display()),
                );
                return None;
            }
        };
        let started = Instant::now();
        let write_error = |e: std::io::Error| {
            Error::Destination(format!("writing the scratch copy failed: {e}").into())
        };
        let mut damaged = Vec::new();
        let read = crate::engine::restore::rebuild_into(
            &repo,
            &keys,
            (&id, &m),
            (&file, &write_error, &self.scratch.dir),
            false,
            &mut damaged,
        );
        if let Some(w) = remember_damage(self.state, &repo, &damaged) {
            self.warn(CheckKind::Objects, None, &w);
        }
        let mut restored = Restored {
            id,
            signer,
            rto: started.elapsed(),
            bytes_read: 0,
            whole: false,
            file: None,
            manifest: m,
        };
        match read {
            Ok(rebuilt) => {
                let read = rebuilt.read;
                restored.bytes_read = read.bytes;
                let mut c = check(CheckKind::Objects, None, Status::Passed);
                c.expected = Some("every object decrypts and matches its hash".into());
                c.actual = Some(format!("{} bytes read", read.bytes));
                self.checks.push(c);
                for w in &read.warnings {
                    self.warn(CheckKind::Objects, None, w);
                }
            }
            Err(e) => {
                // A failed read returns no warnings: name the indexes that could not be read
                // again, as they are the likely cause when no pack is.
                let unreadable = repo.load_index(&keys).map(|(_, u)| u).unwrap_or_default();
                for (index, why) in &unreadable {
                    self.warn(CheckKind::Objects, Some(index.to_string()), why.message());
                }
                let object = damaged
                    .first()
                    .map(|d| d.id.to_string())
                    .or_else(|| unreadable.first().map(|(i, _)| i.to_string()));
                self.fail(CheckKind::Objects, object, e.message());
                return Some(restored);
            }
        }
        restored.rto = started.elapsed();
        restored.file = Some(file);
        Some(restored)
    }

    /// Hashes the rebuilt copy while the database checks already run on it (both read the
    /// same pages from the page cache); the checks count only if the hash matches. Returns
    /// the checks' findings for a whole copy.
    fn verify_and_check(&mut self, r: &mut Restored) -> Option<checks::Findings> {
        let file = r.file.take()?;
        let path = self.scratch.database();
        let read_error = |e: std::io::Error| {
            Error::Destination(format!("cannot read the scratch copy back: {e}").into())
        };
        let (hashed, found) = std::thread::scope(|s| {
            let hashing = s.spawn(|| {
                let t = Instant::now();
                (
                    crate::engine::restore::file_sha256(&file, &read_error),
                    t.elapsed(),
                )
            });
            let found = checks::run(&path, &r.manifest);
            (hashing.join(), found)
        });
        let (sha, took) = match hashed {
            Ok(h) => h,
            Err(_) => (
                Err(Error::Internal("hashing the scratch copy failed".into())),
                Duration::ZERO,
            ),
        };
        r.rto += took;
        let mut c = check(CheckKind::Sha256, None, Status::Passed);
        c.expected = Some(r.manifest.database_sha256.clone());
        match sha {
            Ok(actual) => {
                r.whole = actual == r.manifest.database_sha256;
                if !r.whole {
                    c.status = Status::Failed;
                    c.detail = Some("the restored database differs from the one backed up".into());
                }
                c.actual = Some(actual);
            }
            Err(e) => {
                c.status = Status::Failed;
                c.detail = Some(e.message().to_string());
            }
        }
        self.checks.push(c);
        r.whole.then_some(found)
    }

    fn pick(
        &self,
        repo: &Repository,
        keys: &crate::repo::keys::Keyring,
        trust: &crate::repo::catalog::Trust,
    ) -> Result<crate::repo::catalog::Resolved> {
        let filter = Some(self.filter);
        match &self.job.snapshot {
            SnapshotChoice::Latest => repo.resolve_snapshot(keys, "latest", filter, trust),
            SnapshotChoice::Id(id) => repo.resolve_snapshot(keys, id, filter, trust),
            SnapshotChoice::Random => {
                let catalog = repo.catalog(keys, filter, trust)?;
                let ids: Vec<String> = catalog.accepted(trust).map(|e| e.id.to_string()).collect();
                let spec = match ids.len() {
                    0 => "latest".to_string(), // says why nothing is acceptable
                    n => ids[rand::random::<usize>() % n].clone(),
                };
                repo.resolve_snapshot(keys, &spec, filter, trust)
            }
        }
    }

    /// SQLite's check of the source at backup time, as the manifest recorded it: a damaged
    /// source was kept on purpose, and the drill says so.
    fn source_check(&mut self, m: &Manifest) {
        let mut c = check(CheckKind::SourceCheck, None, Status::Skipped);
        match &m.source_check {
            Some(sc) => {
                c.expected = Some("ok".into());
                c.actual = Some(if sc.ok {
                    "ok".into()
                } else {
                    sc.problems.first().cloned().unwrap_or_default()
                });
                c.status = if sc.ok {
                    Status::Passed
                } else {
                    Status::Failed
                };
                if !sc.ok {
                    c.detail = Some(format!(
                        "the source already failed PRAGMA {} when it was backed up",
                        sc.pragma
                    ));
                }
            }
            None => c.detail = Some("the backup did not check its source".into()),
        }
        self.checks.push(c);
    }

    /// Compares with the live database: the one the drill was given (path or policy source),
    /// else the path the snapshot recorded, if that is on this host.
    fn compare_live(
        &mut self,
        restored: &Path,
        recorded: &Path,
        expected: &crate::facts::BusinessFacts,
        months: &mut [crate::report::model::MonthRow],
    ) {
        let live = self.live.unwrap_or(recorded);
        if !live.exists() {
            self.fail(
                CheckKind::LiveDrift,
                None,
                &format!(
                    "the live database {} is not on this host; drill on the host that has it",
                    live.display()
                ),
            );
            return;
        };
        let today = chrono::Local::now().date_naive();
        let first_open = live::first_open_month(today, self.job.open_months);
        let (found, table) = live::compare(live, restored, expected, &first_open);
        self.checks.extend(found);
        for row in months.iter_mut() {
            if let Some(l) = table.get(&row.month) {
                row.ok &= l.missing == 0
                    && l.extra == 0
                    && l.invoices == row.expected_invoices
                    && l.total.same_as(row.expected_total);
                row.live = Some(l.clone());
            }
        }
    }

    fn objective(&mut self, kind: CheckKind, o: Objective) {
        let mut c = check(
            kind,
            None,
            match o.met {
                Some(true) => Status::Passed,
                Some(false) => Status::Failed,
                None => Status::Skipped,
            },
        );
        c.expected = o
            .objective_ms
            .map(|ms| format!("≤ {}", units::duration(ms)));
        c.actual = Some(units::duration(o.actual_ms));
        if o.met.is_none() {
            c.detail = Some(match (kind, &self.job.snapshot) {
                (CheckKind::Rpo, SnapshotChoice::Random | SnapshotChoice::Id(_))
                    if self.job.rpo.is_some() =>
                {
                    "the RPO objective applies to the newest snapshot only".into()
                }
                _ => "no objective set in the policy's [objectives]".into(),
            });
        }
        self.checks.push(c);
    }

    fn fail(&mut self, kind: CheckKind, subject: Option<String>, why: &str) {
        let mut c = check(kind, subject, Status::Failed);
        c.detail = Some(crate::secret::redact(why).into_owned());
        self.checks.push(c);
    }

    fn warn(&mut self, kind: CheckKind, subject: Option<String>, why: &str) {
        let mut c = check(kind, subject, Status::Warning);
        c.detail = Some(crate::secret::redact(why).into_owned());
        self.checks.push(c);
    }
}

/// The snapshot's age at `now`.
fn rpo_at(m: &Manifest, now: chrono::DateTime<chrono::Utc>) -> u64 {
    chrono::DateTime::parse_from_rfc3339(&m.time)
        .map(|t| {
            (now - t.with_timezone(&chrono::Utc))
                .num_milliseconds()
                .max(0) as u64
        })
        .unwrap_or(0)
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
