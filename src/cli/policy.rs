//! `ivault policy check FILE|DIR`: every policy parsed strictly, then checked as a whole
//! (recipients, source files), one sentence per problem; and the next runs of each schedule.

use super::exit;
use clap::Subcommand;
use invoice_vault::engine::keys::collect_recipients;
use invoice_vault::policy::Policy;
use invoice_vault::scheduler::plan::parse_cron;
use invoice_vault::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub(super) enum PolicyCommand {
    /// Check policy files (a file, or every *.toml in a directory) and print the next runs of
    /// their schedules; exit 9 if any is wrong.
    Check { path: PathBuf },
}

pub(super) fn policy_cmd(cmd: PolicyCommand) -> Result<i32> {
    let PolicyCommand::Check { path } = cmd;
    let files = policy_files(&path)?;
    let mut wrong = 0;
    for f in &files {
        match check_one(f) {
            Ok((_, lines)) => {
                println!("ok: {}", f.display());
                for l in lines {
                    println!("  {l}");
                }
            }
            Err(problems) => {
                wrong += 1;
                for p in problems {
                    eprintln!("ivault: {p}");
                }
            }
        }
    }
    Ok(if wrong == 0 { exit::OK } else { exit::POLICY })
}

/// The file itself, or the `*.toml` files of a directory, sorted.
pub(super) fn policy_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| {
            Error::Policy(
                format!("cannot read the policy directory {}: {e}", path.display()).into(),
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Policy(
            format!("{} holds no *.toml policy files", path.display()).into(),
        ));
    }
    Ok(files)
}

/// The policy and what it will do, or every problem found in it.
pub(super) fn check_one(file: &Path) -> std::result::Result<(Policy, Vec<String>), Vec<String>> {
    let policy = Policy::load(file).map_err(|e| vec![e.to_string()])?;
    let shown = file.display();
    let mut problems = Vec::new();
    let recipients = policy
        .encryption
        .as_ref()
        .map(|e| e.recipients.clone())
        .unwrap_or_default();
    if !policy.target.is_empty() && recipients.is_empty() {
        problems.push(format!(
            "policy {shown}: [encryption] recipients is empty; `ivault init` of its targets needs the public recipient (age1…)"
        ));
    }
    if let Err(e) = collect_recipients(&recipients, None) {
        problems.push(format!("policy {shown}: [encryption] recipients: {e}"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut lines = Vec::new();
    // A database may not exist yet where the policy is written; the backup says so in time.
    for s in &policy.source {
        if !s.path.exists() {
            lines.push(format!(
                "warning: source {} has path {}, which does not exist here",
                s.name,
                s.path.display()
            ));
        }
    }
    lines.push(format!(
        "{} sources ({}), {} targets ({})",
        policy.source.len(),
        names(policy.source.iter().map(|s| s.name.as_str())),
        policy.target.len(),
        names(policy.target.iter().map(|t| t.name.as_str()))
    ));
    if let Some(s) = &policy.schedule {
        let now = chrono::Utc::now();
        // Checked when the policy was loaded.
        let zone = s.zone().unwrap_or_default();
        if let Some(name) = &s.time_zone {
            lines.push(format!("schedules in time zone {name}"));
        }
        if let Some(j) = s.jitter {
            lines.push(format!(
                "the daemon starts each due job up to {} late (jitter)",
                invoice_vault::report::units::duration(
                    u64::try_from(j.as_millis()).unwrap_or(u64::MAX)
                )
            ));
        }
        for (kind, expr) in [
            ("incremental", &s.incremental),
            ("full", &s.full),
            ("drill", &s.drill),
        ] {
            let Some(expr) = expr else { continue };
            let Ok(cron) = parse_cron(expr) else { continue };
            let times = zone.next_times_shown(&cron, now, 3);
            lines.push(format!("{kind} ({expr}): next {}", times.join(", ")));
        }
    }
    Ok((policy, lines))
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = it.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
