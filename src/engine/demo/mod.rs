//! `ivault demo`: the whole job on a sample database, end to end, in one directory.

use crate::engine::backup::{self, BackupOptions, BackupReport};
use crate::engine::check::{self, ReadData};
use crate::engine::drill::{self, DrillJob};
use crate::engine::restore::{self, RestoreOptions};
use crate::engine::Context;
use crate::error::{Error, Hint, Hinted, Result};
use crate::repo::catalog::Trust;
use crate::repo::keys;
use crate::repo::signing::SigningKey;
use crate::repo::Repository;
use crate::report::model::Status;
use crate::sample;
use crate::source::compare;
use crate::source::ReadOptions;
use crate::state::State;
use crate::storage::LocalStorage;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

mod lost_month;

/// Marks a directory the demo created, so a rerun may replace it and nothing else.
const MARKER: &str = ".ivault-demo";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: PathBuf,
    pub size_mb: u64,
    pub seed: u64,
}

pub fn run(opts: &DemoOptions, out: &mut dyn Write) -> Result<()> {
    let dir = &opts.dir;
    prepare_dir(dir)?;
    let db = dir.join("invoices.sqlite");
    let key = dir.join("identity.txt");
    let repo_dir = dir.join("repo");
    let restored = dir.join("restored.sqlite");
    let say = |out: &mut dyn Write, s: String| {
        let _ = writeln!(out, "{s}");
    };

    let t = Instant::now();
    let gen = sample::generate(
        &db,
        &sample::GenerateOptions {
            size_mb: opts.size_mb,
            seed: opts.seed,
            journal_mode: sample::JournalMode::Wal,
        },
    )
    .map_err(|e| Error::Internal(format!("generating the sample database failed: {e}").into()))?;
    say(
        out,
        format!(
            "1. generated {} ({} invoices, {} lines, {} uploads, {}) in {:.1} s",
            db.display(),
            gen.invoices,
            gen.items,
            gen.uploads,
            mib(gen.bytes),
            t.elapsed().as_secs_f64()
        ),
    );

    let recipient = keys::generate(&key, None)?;
    let signing_key = Arc::new(SigningKey::create(&dir.join("signing.key"))?);
    let signer = signing_key.signer();
    std::fs::create_dir(&repo_dir).map_err(|e| {
        Error::Internal(format!("cannot create {}: {e}", repo_dir.display()).into())
    })?;
    let repo = Repository::init(
        Arc::new(LocalStorage::new(&repo_dir)),
        vec![recipient.clone()],
    )?;
    say(
        out,
        format!(
            "2. key {} (recipient {recipient}), signing key (signer {signer}), repository {}",
            key.display(),
            repo_dir.display()
        ),
    );

    let mut state = State::open(&dir.join("state"))?;
    // Backups record invoice facts per month, which the drill checks the restored copy against.
    let read = ReadOptions {
        business: Some(sample::business_description()),
        ..ReadOptions::default()
    };
    let bopts = BackupOptions {
        full: true,
        signing_key: Some(signing_key.clone()),
        read: read.clone(),
        ..Default::default()
    };
    let full = backup::backup(&db, &repo, &mut state, &bopts)?;
    say(out, format!("3. full backup {}", describe(&full)));

    let t = Instant::now();
    let biz = sample::day_of_business(&db, opts.seed.wrapping_add(1))
        .map_err(|e| Error::Internal(format!("applying a day of business failed: {e}").into()))?;
    say(
        out,
        format!(
            "4. a day of business: {} invoices updated, {} added ({:.1} s)",
            biz.updated,
            biz.added,
            t.elapsed().as_secs_f64()
        ),
    );

    let incr_opts = BackupOptions {
        signing_key: Some(signing_key),
        read,
        ..Default::default()
    };
    let incr = backup::backup(&db, &repo, &mut state, &incr_opts)?;
    say(out, format!("5. incremental backup {}", describe(&incr)));

    let keyring = keys::load_identity(&key)?;
    let r = restore::restore(
        &repo,
        &keyring,
        &incr.snapshot_id.to_string(),
        &restored,
        &RestoreOptions {
            trust: Trust {
                signers: [signer.clone()].into(),
                allow_unverified: false,
            },
            // The demo shows the strongest check; restores run quick_check by default.
            check: restore::RestoreCheck::Full,
            ..Default::default()
        },
    )?;
    let diff = compare::differing_tables(&db, &restored).map_err(|e| {
        Error::Internal(format!("comparing the restored database failed: {e}").into())
    })?;
    if !diff.is_empty() {
        return Err(Error::Integrity(
            format!(
                "the restored database differs from the source: {}",
                diff.join(", ")
            )
            .into(),
        ));
    }
    say(out, format!(
        "6. restored {} to {} in {:.2} s: SHA-256 and integrity_check passed, every row equals the source",
        short(r.snapshot_id), restored.display(), r.duration_ms as f64 / 1000.0
    ));

    let t = Instant::now();
    let report = check::check_in(&repo, &keyring, ReadData::All, &dir.join("state"))?;
    if !report.ok {
        return Err(Error::Integrity(
            format!("check found {} problems", report.problems.len()).into(),
        ));
    }
    say(
        out,
        format!(
            "7. check --read-data: {} snapshots, {} packs read, no problems ({:.2} s)",
            report.snapshots,
            report.packs_read,
            t.elapsed().as_secs_f64()
        ),
    );
    drop(state);
    let ctx = Context {
        signing_key: Some(dir.join("signing.key")),
        trust_signers: vec![signer.to_string()],
        ..Context::new(dir.join("state"))
    };
    let drilled = drill::run(
        &ctx,
        &DrillJob {
            source: db.display().to_string(),
            targets: vec![repo_dir.display().to_string()],
            identity: Some(key.clone()),
            compare_live: true,
            ..DrillJob::default()
        },
    )?;
    let Some(report) = drilled.reports.first() else {
        return Err(Error::Internal("the drill reported nothing".into()));
    };
    let count = |s: Status| report.checks.iter().filter(|c| c.status == s).count();
    say(
        out,
        format!(
            "8. drill {} of the newest snapshot: {}, {} checks passed and {} failed (SHA-256, integrity_check, foreign keys, rows of every table, invoices and totals of {} months, the closed months of the live database); restored in {:.2} s",
            report.id,
            if drilled.passed() { "PASSED" } else { "FAILED" },
            count(Status::Passed),
            count(Status::Failed),
            report.months.len(),
            report.rto.actual_ms as f64 / 1000.0
        ),
    );
    if !drilled.passed() {
        return Err(Error::Integrity(
            format!(
                "drill {} of the demo failed; see ivault history --drills",
                report.id
            )
            .into(),
        ));
    }
    let html = drill::write_reports(&dir.join("reports"), report, crate::report::Lang::En)?;
    lost_month::lose_and_restore_a_month(&ctx, &db, &repo_dir, &key, &incr, out)?;

    let stored = full.bytes_stored + incr.bytes_stored;
    say(out, format!(
        "\nTwo snapshots of {} each take {} in the repository ({:.1}x smaller); the incremental added {} ({:.1}% of the full).",
        mib(incr.database_bytes), mib(stored),
        (full.database_bytes + incr.database_bytes) as f64 / stored.max(1) as f64,
        mib(incr.bytes_stored), 100.0 * incr.bytes_stored as f64 / full.bytes_stored.max(1) as f64
    ));
    say(
        out,
        format!(
            "Try: ivault snapshots --repo {} --identity {} --trust-signer {signer}",
            repo_dir.display(),
            key.display()
        ),
    );
    say(
        out,
        format!(
            "Drill report (open it in a browser): {}\nThe same in Chinese: ivault report --state-dir {} --format html --lang zh-CN --out report.html",
            html.display(),
            dir.join("state").display()
        ),
    );
    Ok(())
}

fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            let empty = std::fs::read_dir(dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                return Err(Error::Destination(
                    format!("{} exists and was not made by `ivault demo`", dir.display())
                        .hinted(Hint::DemoDirectory),
                ));
            }
        } else {
            std::fs::remove_dir_all(dir).map_err(|e| {
                Error::Destination(
                    format!("cannot replace the old demo in {}: {e}", dir.display()).into(),
                )
            })?;
        }
    }
    std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(dir.join(MARKER), b"made by ivault demo; safe to delete\n"))
        .map_err(|e| Error::Destination(format!("cannot create {}: {e}", dir.display()).into()))
}

fn describe(r: &BackupReport) -> String {
    format!(
        "{}: {} pages read, {} new, stored {} in {:.2} s (read lock held {:.2} s)",
        short(r.snapshot_id),
        r.page_count,
        r.pages_new,
        mib(r.bytes_stored),
        r.duration_ms as f64 / 1000.0,
        r.read_lock_ms as f64 / 1000.0
    )
}

/// The first 12 characters of an id, as lists show it.
pub fn short(id: impl std::fmt::Display) -> String {
    id.to_string().chars().take(12).collect()
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `ivault demo generate`: a sample invoice database of about `size_mb` MiB at `out`, in
/// `journal` mode (`wal`, or `delete`/`rollback`).
pub fn generate_sample(
    out: &Path,
    size_mb: u64,
    seed: u64,
    journal: &str,
) -> Result<sample::GenerateStats> {
    let journal_mode = match journal {
        "wal" => sample::JournalMode::Wal,
        "delete" | "rollback" => sample::JournalMode::Rollback,
        other => {
            return Err(Error::Usage(
                format!("journal mode {other} is not one of wal or delete").into(),
            ))
        }
    };
    if out.exists() {
        return Err(Error::Destination(
            format!("{} already exists", out.display()).hinted(Hint::OtherOutput),
        ));
    }
    let opts = sample::GenerateOptions {
        size_mb,
        seed,
        journal_mode,
    };
    sample::generate(out, &opts)
        .map_err(|e| Error::Internal(format!("generating {} failed: {e}", out.display()).into()))
}

/// `ivault demo business`: a day of business (1% of invoices updated, 0.3% added).
pub fn business_day(db: &Path, seed: u64) -> Result<sample::BusinessStats> {
    if !db.is_file() {
        return Err(Error::Source(
            format!("database {} does not exist; check the path", db.display()).into(),
        ));
    }
    sample::day_of_business(db, seed)
        .map_err(|e| Error::Source(format!("changing {} failed: {e}", db.display()).into()))
}
