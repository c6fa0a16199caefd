//! Init: create a repository and pin its recipients in the local state.

use super::Context;
use crate::error::{Error, Result};
use crate::repo::keys;
use crate::repo::Repository;
use serde::Serialize;
use std::path::Path;

pub struct InitJob {
    /// A directory, `s3://bucket/prefix` or a policy target name.
    pub target: String,
    /// Recipients to record; empty takes the policy's.
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub location: String,
    pub id: String,
    pub recipients: Vec<String>,
    /// The signer this host signs snapshots with (trusted for this repository here).
    pub signer: String,
}

pub fn run(ctx: &Context, job: &InitJob) -> Result<InitReport> {
    ctx.targets.require_s3_for_lock(&[&job.target])?;
    let mut recipients = job.recipients.clone();
    if recipients.is_empty() {
        let from_policy = ctx.targets.policy().and_then(|p| p.encryption.as_ref());
        for r in from_policy
            .map(|e| e.recipients.as_slice())
            .unwrap_or_default()
        {
            recipients.push(keys::parse_recipient(r)?.to_string());
        }
    }
    let (url, _) = ctx.targets.resolve(&job.target)?;
    if !url.contains("://") {
        let p = Path::new(&url);
        if !p.exists() {
            std::fs::create_dir_all(p).map_err(|e| {
                Error::Repository(format!("cannot create repository directory {url}: {e}").into())
            })?;
        }
    }
    let repo = Repository::init(ctx.targets.open(&job.target)?, recipients)?;
    let signer = ctx.signing_key()?.signer().to_string();
    let state = ctx.state()?;
    let config = repo.config();
    state.pin_recipients(&config.id, &repo.location(), &config.recipients, false)?;
    state.trust_signer(&config.id, &signer)?;
    Ok(InitReport {
        location: repo.location(),
        id: config.id.clone(),
        recipients: config.recipients.clone(),
        signer,
    })
}
