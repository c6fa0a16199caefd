//! Targets: what `--to`, `--repo` and `--from` name (a policy's target, an `s3://` URL or a
//! directory) turned into storage. The policy stays plain data; this is where its target
//! settings meet the storage backends.

use crate::error::{Error, Hint, Hinted, Result};
use crate::policy::{looks_like_a_name, Policy, TargetPolicy};
use crate::storage::{LocalStorage, S3Config, S3Storage, Storage};

pub use crate::storage::{LockMode, ObjectLock};
use std::sync::Arc;

/// Settings for S3 targets that do not fit in the URL.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Write S3 objects under this retention (local targets have no such thing).
    pub object_lock: Option<ObjectLock>,
}

/// Resolves target names, through a policy when there is one; `defaults` are the settings
/// given outside the policy (command line, environment).
#[derive(Debug, Clone, Default)]
pub struct Targets {
    defaults: TargetOptions,
    policy: Option<Policy>,
}

impl Targets {
    pub fn new(defaults: TargetOptions, policy: Option<Policy>) -> Self {
        Targets { defaults, policy }
    }

    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    /// A policy target's URL and settings, or a directory or URL taken as it is.
    pub fn resolve(&self, target: &str) -> Result<(String, TargetOptions)> {
        match &self.policy {
            Some(p) => match p.target(target) {
                Some(t) => Ok((t.url.clone(), options(t, &self.defaults))),
                None if looks_like_a_name(target) => Err(p.unknown("target", target)),
                None => Ok((target.to_string(), self.defaults.clone())),
            },
            None => Ok((target.to_string(), self.defaults.clone())),
        }
    }

    pub fn open(&self, target: &str) -> Result<Arc<dyn Storage>> {
        let (url, opts) = self.resolve(target)?;
        open_target(&url, &opts)
    }

    /// Reading needs no Object Lock settings (nor the bucket check they bring).
    pub fn open_for_reading(&self, target: &str) -> Result<Arc<dyn Storage>> {
        let (url, mut opts) = self.resolve(target)?;
        opts.object_lock = None;
        open_target(&url, &opts)
    }

    /// Object Lock exists only on S3; asking for it with no S3 target is a mistake worth naming.
    pub fn require_s3_for_lock(&self, names: &[&str]) -> Result<()> {
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
        Err(Error::Usage(
            format!(
                "--object-lock-days applies to s3:// targets, and {} is not one; leave it out for local directories",
                names.join(", ")
            )
            .into(),
        ))
    }
}

/// A policy target's S3 settings, each falling back to the defaults.
pub fn options(t: &TargetPolicy, defaults: &TargetOptions) -> TargetOptions {
    let lock = t.object_lock_days.map(|days| ObjectLock {
        days,
        mode: t
            .object_lock_mode
            .as_deref()
            .and_then(|m| m.parse().ok())
            .unwrap_or(LockMode::Governance),
    });
    TargetOptions {
        endpoint: t.endpoint.clone().or_else(|| defaults.endpoint.clone()),
        region: t.region.clone().or_else(|| defaults.region.clone()),
        profile: t.profile.clone().or_else(|| defaults.profile.clone()),
        object_lock: lock.or(defaults.object_lock),
    }
}

/// Opens the storage a target URL names: a local directory, or `s3://bucket/prefix`.
pub fn open_target(target: &str, opts: &TargetOptions) -> Result<Arc<dyn Storage>> {
    if target.is_empty() {
        return Err(Error::Usage(
            "empty target; give a repository directory or s3://bucket/prefix".into(),
        ));
    }
    if target.starts_with("s3://") {
        let mut cfg = S3Config::from_url(target).map_err(|e| Error::Usage(e.into()))?;
        cfg.endpoint = opts.endpoint.clone();
        cfg.region = opts.region.clone();
        cfg.profile = opts.profile.clone();
        cfg.object_lock = opts.object_lock;
        if let Some(e) = &cfg.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(Error::Usage(
                    format!("the S3 endpoint {e} is not an http:// or https:// URL")
                        .hinted(Hint::EndpointUrl),
                ));
            }
        }
        let s3 = S3Storage::new(cfg).map_err(|e| Error::Repository(e.to_string().into()))?;
        if opts.object_lock.is_some() {
            // Before anything is written: an unlocked bucket would silently give no protection.
            s3.require_object_lock()
                .map_err(|e| Error::Repository(e.to_string().hinted(Hint::ObjectLock)))?;
        }
        return Ok(Arc::new(s3));
    }
    if let Some((scheme, _)) = target.split_once("://") {
        return Err(Error::Usage(format!(
            "target {target}: {scheme}:// is not a known kind of target; give a local directory or s3://bucket/prefix"
        ).into()));
    }
    Ok(Arc::new(LocalStorage::new(target)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_policy_target_takes_its_own_settings_over_the_defaults() {
        let p = Policy::parse(
            "[[target]]\nname = \"offsite\"\nurl = \"s3://b/x\"\nendpoint = \"https://s3.example.internal\"\nobject_lock_days = 30\n",
            Path::new("p.toml"),
        )
        .unwrap();
        let defaults = TargetOptions {
            endpoint: Some("http://127.0.0.1:9".into()),
            region: Some("eu-west-1".into()),
            ..TargetOptions::default()
        };
        let (url, opts) = Targets::new(defaults, Some(p)).resolve("offsite").unwrap();
        assert_eq!(url, "s3://b/x");
        assert_eq!(
            opts.endpoint.as_deref(),
            Some("https://s3.example.internal")
        );
        assert_eq!(opts.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            opts.object_lock,
            Some(ObjectLock {
                days: 30,
                mode: LockMode::Governance
            })
        );
    }
}
