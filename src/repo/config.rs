//! The repository's `config` object: the one plaintext object, so that a backup host holding
//! only public keys can check the format version and learn the recipients.

use crate::error::{Error, Hint, Hinted, Result};
use serde::{Deserialize, Serialize};

/// The format this build writes and the newest it reads. See docs/FORMAT.md.
pub const FORMAT_VERSION: u32 = 4;
pub const CONFIG_KEY: &str = "config";
const FORMAT_NAME: &str = "invoice-vault";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub format: String,
    pub version: u32,
    /// 32 random bytes, hex: names the repository in the local state.
    pub id: String,
    pub created: String,
    /// age recipients every object is encrypted to.
    pub recipients: Vec<String>,
}

impl Config {
    pub fn new(recipients: Vec<String>) -> Self {
        Config {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            id: hex::encode(rand::random::<[u8; 32]>()),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            recipients,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses and checks a config; `location` names the repository in messages.
    pub fn parse(bytes: &[u8], location: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct Probe {
            format: Option<String>,
            version: Option<u32>,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|_| {
            Error::Repository(format!(
                "{location} has a config that is not an ivault repository config; is this the right directory?"
            ).into())
        })?;
        if probe.format.as_deref() != Some(FORMAT_NAME) {
            return Err(Error::Repository(
                format!("{location} is not an ivault repository").hinted(Hint::CreateRepository {
                    location: location.to_string(),
                }),
            ));
        }
        match probe.version {
            Some(v) if v > FORMAT_VERSION => {
                return Err(Error::Repository(format!(
                    "{location} uses repository format version {v}, but this ivault reads up to version {FORMAT_VERSION}; upgrade ivault"
                ).into()))
            }
            Some(v) if v >= 1 => {}
            _ => {
                return Err(Error::Repository(format!(
                    "{location} has a config without a valid format version; the repository is damaged"
                ).into()))
            }
        }
        serde_json::from_slice(bytes).map_err(|e| {
            Error::Repository(
                format!("{location} has a damaged config ({e}); restore it from another copy")
                    .into(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(version: u32) -> Vec<u8> {
        let mut c = Config::new(vec!["age1example".into()]);
        c.version = version;
        c.to_bytes()
    }

    #[test]
    fn every_version_up_to_this_one_opens_and_a_newer_one_is_refused() {
        assert_eq!(FORMAT_VERSION, 4);
        for v in 1..=FORMAT_VERSION {
            assert_eq!(Config::parse(&config(v), "repo").unwrap().version, v);
        }
        let e = Config::parse(&config(FORMAT_VERSION + 1), "repo")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("uses repository format version 5, but this ivault reads up to version 4"),
            "{e}"
        );
    }

    #[test]
    fn a_new_repository_says_the_current_version() {
        assert_eq!(Config::new(vec![]).version, FORMAT_VERSION);
    }
}
