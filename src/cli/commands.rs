//! The commands other than backup and demo: each calls one engine job and prints its report.

use super::{print_json, RecipientArgs, RepoArgs};
use invoice_vault::engine::copy::{self, CopyJob};
use invoice_vault::engine::demo::{mib, short};
use invoice_vault::engine::init::{self, InitJob};
use invoice_vault::engine::restore::{self, RestoreJob};
use invoice_vault::engine::{keys, snapshots, Context};
use invoice_vault::error::exit;
use invoice_vault::{Error, Result};
use std::path::PathBuf;

pub(super) fn key_generate(out: Option<PathBuf>, passphrase: bool, signing: bool) -> Result<i32> {
    if signing {
        let Some(out) = out else {
            return Err(Error::Usage(
                "a signing key needs --out FILE (backup hosts give it with --signing-key or the policy's signing_key)".into(),
            ));
        };
        let signer = keys::generate_signing_key(&out)?;
        eprintln!(
            "wrote signing key {} (keep it secret; backup hosts sign snapshots with it)",
            out.display()
        );
        println!("{signer}");
        return Ok(exit::OK);
    }
    let out = match out {
        Some(o) => o,
        None => keys::default_identity_path()?,
    };
    let pass = if passphrase {
        Some(super::passphrase::new_passphrase()?)
    } else {
        None
    };
    let recipient = keys::generate(&out, pass)?;
    eprintln!(
        "wrote identity {} (keep it secret; restores need it)",
        out.display()
    );
    println!("{recipient}");
    Ok(exit::OK)
}

pub(super) fn init(ctx: &Context, target: String, recipients: &RecipientArgs) -> Result<i32> {
    let job = InitJob {
        target,
        recipients: recipients.collect()?,
    };
    let rep = init::run(ctx, &job)?;
    println!(
        "created repository {} (id {})",
        rep.location,
        short(&rep.id)
    );
    println!("snapshots from this host are signed by {}", rep.signer);
    if rep.recipients.is_empty() {
        eprintln!("no recipient recorded: every backup must pass --recipient");
    }
    Ok(exit::OK)
}

pub(super) fn snapshots(
    ctx: &Context,
    repo: &RepoArgs,
    source: Option<&str>,
    json: bool,
) -> Result<i32> {
    let list = snapshots::run(ctx, &repo.repo, repo.identity.as_deref(), source)?;
    for u in &list.unreadable {
        eprintln!(
            "ivault: warning: snapshot {} cannot be read: {}",
            u.id, u.why
        );
    }
    if json {
        print_json(&list.snapshots);
    } else if list.snapshots.is_empty() {
        println!("no snapshots in {}", list.repository);
    } else {
        println!(
            "{:<12}  {:<24}  {:<16}  {:<11}  {:>10}  {:<16}  {:<6}  tags",
            "id", "time", "source", "kind", "size", "authenticity", "check"
        );
        for s in &list.snapshots {
            println!(
                "{:<12}  {:<24}  {:<16}  {:<11}  {:>10}  {:<16}  {:<6}  {}",
                short(s.id),
                s.time,
                s.source,
                s.kind.to_string(),
                mib(s.database_bytes),
                s.authenticity,
                s.source_check_label(),
                s.tags.join(",")
            );
        }
    }
    Ok(exit::OK)
}

pub(super) fn restore(ctx: &Context, job: &RestoreJob, json: bool) -> Result<i32> {
    let bar = invoice_vault::progress::show("restore", json);
    let rep = restore::run(ctx, job)?;
    drop(bar);
    if json {
        print_json(&rep);
        return Ok(exit::OK);
    }
    for w in &rep.warnings {
        eprintln!("ivault: warning: {w}");
    }
    let checks = match rep.check {
        restore::RestoreCheck::Full => "SHA-256, quick_check and integrity_check passed",
        restore::RestoreCheck::Quick if rep.check_at_backup => {
            "SHA-256 passed; quick_check passed at backup on this very image"
        }
        restore::RestoreCheck::Quick => "SHA-256 and quick_check passed",
        restore::RestoreCheck::Off => "SHA-256 passed, SQLite's check skipped",
    };
    println!(
        "restored snapshot {} to {} ({}) in {:.2} s; {checks}",
        short(rep.snapshot_id),
        rep.path,
        mib(rep.bytes_written),
        rep.duration_ms as f64 / 1000.0
    );
    Ok(exit::OK)
}

pub(super) fn copy(ctx: &Context, job: &CopyJob, json: bool) -> Result<i32> {
    let bar = invoice_vault::progress::show("copy", json);
    let rep = copy::run(ctx, job)?;
    drop(bar);
    for w in &rep.warnings {
        eprintln!("ivault: warning: {w}");
    }
    if json {
        print_json(&rep);
        return Ok(exit::OK);
    }
    for c in &rep.snapshots {
        if c.already_present {
            println!(
                "snapshot {} ({} {}) is already in {} as {}",
                short(c.from_snapshot),
                c.source,
                c.time,
                rep.to,
                short(c.to_snapshot)
            );
        } else {
            println!(
                "copied snapshot {} ({} {}) to {} as {}: read {}, stored {}",
                short(c.from_snapshot),
                c.source,
                c.time,
                rep.to,
                short(c.to_snapshot),
                mib(c.bytes_read),
                mib(c.bytes_stored)
            );
        }
    }
    Ok(exit::OK)
}
