//! What every job needs from its surroundings: where the local state lives, how target names
//! become storage, and how to unlock a passphrase-protected identity. A face (the command
//! line, the scheduler) builds one; jobs never look at arguments or the terminal themselves.

use crate::error::{Error, Hint, Hinted, Result};
use crate::repo::catalog::Trust;
use crate::repo::keys::{self, Keyring, PassphraseSource};
use crate::repo::reader::DamagedPack;
use crate::repo::signing::{Signer, SigningKey};
use crate::repo::Repository;
use crate::state::{JobRecord, State};
use crate::target::Targets;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a host keeps its own signing key unless told otherwise.
pub const SIGNING_KEY_FILE: &str = "signing.key";

pub struct Context {
    pub state_dir: PathBuf,
    pub targets: Targets,
    /// Asked when an identity file is protected by a passphrase.
    pub passphrase: Box<dyn PassphraseSource>,
    /// The key this host signs snapshots with; default: the policy's `signing_key`, else
    /// `signing.key` in the state directory (made on first use).
    pub signing_key: Option<PathBuf>,
    /// Signers to trust from now on for the repositories this run reads (pinned in the state).
    pub trust_signers: Vec<String>,
}

impl Context {
    /// A context without a policy or S3 settings, whose passphrase source has none to give.
    pub fn new(state_dir: PathBuf) -> Self {
        Context {
            state_dir,
            targets: Targets::default(),
            passphrase: Box::new(keys::NoPassphrase),
            signing_key: None,
            trust_signers: Vec::new(),
        }
    }

    /// The key this host signs snapshots with, made on first use.
    pub fn signing_key(&self) -> Result<Arc<SigningKey>> {
        let from_policy = self
            .targets
            .policy()
            .and_then(|p| p.encryption.as_ref())
            .and_then(|e| e.signing_key.clone());
        match self.signing_key.clone().or(from_policy) {
            Some(path) => SigningKey::load(&path).map(Arc::new),
            None => {
                // The state directory is created (0700) by opening the state.
                self.state()?;
                SigningKey::load_or_create(&self.state_dir.join(SIGNING_KEY_FILE)).map(Arc::new)
            }
        }
    }

    /// The signers trusted for `repo`: the policy's, those given to this run (pinned in the
    /// state for next time), and those pinned earlier, among them this host's own.
    pub fn trust(&self, repo: &Repository, allow_unverified: bool) -> Result<Trust> {
        let state = self.state()?;
        let repo_id = &repo.config().id;
        for s in &self.trust_signers {
            state.trust_signer(repo_id, &Signer::parse(s)?.to_string())?;
        }
        let mut signers = BTreeSet::new();
        for s in state.trusted_signers(repo_id)? {
            signers.extend(Signer::parse(&s).ok());
        }
        let policy = self.targets.policy().and_then(|p| p.encryption.as_ref());
        for s in policy.map(|e| e.signers.as_slice()).unwrap_or_default() {
            signers.insert(Signer::parse(s)?);
        }
        Ok(Trust {
            signers,
            allow_unverified,
        })
    }

    pub fn state(&self) -> Result<State> {
        State::open(&self.state_dir)
    }

    /// Opens a repository to read from (no Object Lock checks: nothing is written).
    pub fn open_repo(&self, target: &str) -> Result<Repository> {
        Repository::open(self.targets.open_for_reading(target)?)
    }

    /// Opens a repository to write to, with the target's Object Lock settings.
    pub fn open_repo_for_writing(&self, target: &str) -> Result<Repository> {
        Repository::open(self.targets.open(target)?)
    }

    /// The identity that reads `repo`: the one given, else the policy's `identity_file`.
    pub fn identity(&self, given: Option<&Path>, repo: &str) -> Result<Keyring> {
        let from_policy = self
            .targets
            .policy()
            .and_then(|p| p.encryption.as_ref())
            .and_then(|e| e.identity_file.as_deref());
        let path = given.or(from_policy).ok_or_else(|| {
            Error::Key(
                format!("reading repository {repo} needs its private key")
                    .hinted(Hint::GiveIdentity),
            )
        })?;
        keys::load_identity_with(path, self.passphrase.as_ref())
    }

    /// Opens a repository and the identity that reads it.
    pub fn open_repo_with_key(
        &self,
        target: &str,
        identity: Option<&Path>,
    ) -> Result<(Repository, Keyring)> {
        let repo = self.open_repo(target)?;
        Ok((repo, self.identity(identity, target)?))
    }
}

/// Runs `job` with a row in the job history that says how it ended. `summary` gives the bytes
/// read, bytes stored and snapshot id of a success.
pub(crate) fn recorded<T>(
    state: &mut State,
    kind: &str,
    source: Option<&str>,
    target: Option<&str>,
    summary: impl Fn(&T) -> (u64, u64, Option<String>),
    job: impl FnOnce(&mut State) -> Result<T>,
) -> Result<T> {
    let judged = |v: &T| (summary(v), None);
    recorded_judged(state, kind, source, target, judged, job)
}

/// [`recorded`] for jobs that can finish and still have failed (a drill whose checks fail):
/// `summary` also gives the reason such a result is a failure.
pub(crate) fn recorded_judged<T>(
    state: &mut State,
    kind: &str,
    source: Option<&str>,
    target: Option<&str>,
    summary: impl Fn(&T) -> ((u64, u64, Option<String>), Option<String>),
    job: impl FnOnce(&mut State) -> Result<T>,
) -> Result<T> {
    let id = job_started(state, kind, source, target)?;
    let res = job(state);
    job_finished(state, id, &res, summary)?;
    res
}

/// Adds a row for a job that starts now to the history; [`job_finished`] completes it. For
/// jobs that do not fit one closure (a batch of backups); the others use [`recorded`].
pub(crate) fn job_started(
    state: &State,
    kind: &str,
    source: Option<&str>,
    target: Option<&str>,
) -> Result<i64> {
    let redacted = |s: Option<&str>| s.map(|s| crate::secret::redact(s).into_owned());
    let (source, target) = (redacted(source), redacted(target));
    state.job_start(kind, source.as_deref(), target.as_deref())
}

/// Says in the history how the job `id` ended.
pub(crate) fn job_finished<T>(
    state: &State,
    id: i64,
    res: &Result<T>,
    summary: impl Fn(&T) -> ((u64, u64, Option<String>), Option<String>),
) -> Result<()> {
    let record = match res {
        Ok(v) => {
            let ((bytes_read, bytes_stored, snapshot_id), failure) = summary(v);
            JobRecord {
                outcome: if failure.is_some() { "failed" } else { "ok" }.into(),
                bytes_read,
                bytes_stored,
                snapshot_id,
                error: failure.map(|f| crate::secret::redact(&f).into_owned()),
            }
        }
        Err(e) => JobRecord {
            outcome: "failed".into(),
            error: Some(crate::secret::redact(e.message()).into_owned()),
            ..Default::default()
        },
    };
    state.job_finish(id, &record)
}

/// Records packs a job found missing or damaged, so that backups from this host stop
/// deduplicating against them. A failure to record is returned as a warning: it must not hide
/// what the job itself found.
pub(crate) fn remember_damage(
    state: &State,
    repo: &Repository,
    damaged: &[DamagedPack],
) -> Option<String> {
    if damaged.is_empty() {
        return None;
    }
    let packs: Vec<(String, String)> = damaged
        .iter()
        .map(|d| (d.id.to_string(), d.why.clone()))
        .collect();
    let e = state
        .record_damaged_packs(&repo.config().id, &packs)
        .err()?;
    let said = format!("the damaged packs could not be recorded in the local state: {e}");
    tracing::warn!("{said}");
    Some(said)
}
