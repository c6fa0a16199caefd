//! Target names on the command line: policy target names, `s3://` URLs and directories.

use invoice_vault::policy::{self, Policy};
use invoice_vault::storage::{self, Storage, TargetOptions};
use invoice_vault::{Error, Result};
use std::sync::Arc;

/// Turns target names from the command line into storage, through the policy if one is given.
pub(super) struct Targets {
    pub(super) defaults: TargetOptions,
    pub(super) policy: Option<Policy>,
}

impl Targets {
    pub(super) fn resolve(&self, target: &str) -> Result<(String, TargetOptions)> {
        policy::resolve_target(self.policy.as_ref(), target, &self.defaults)
    }

    pub(super) fn open(&self, target: &str) -> Result<Arc<dyn Storage>> {
        let (url, opts) = self.resolve(target)?;
        storage::open_target(&url, &opts)
    }

    /// Reading needs no Object Lock settings (nor the bucket check they bring).
    pub(super) fn open_for_reading(&self, target: &str) -> Result<Arc<dyn Storage>> {
        let (url, mut opts) = self.resolve(target)?;
        opts.object_lock = None;
        storage::open_target(&url, &opts)
    }

    /// Object Lock exists only on S3; asking for it with no S3 target is a mistake worth naming.
    pub(super) fn require_s3_for_lock(&self, names: &[&str]) -> Result<()> {
        if self.defaults.object_lock.is_none() {
            return Ok(());
        }
        let mut any_s3 = false;
        for name in names {
            any_s3 |= self.resolve(name)?.0.starts_with("s3://");
        }
        if any_s3 {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "--object-lock-days applies to s3:// targets, and {} is not one; leave it out for local directories",
            names.join(", ")
        )))
    }
}
