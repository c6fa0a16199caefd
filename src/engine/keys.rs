//! Key jobs: making an identity, and the recipients a job encrypts to.

use crate::error::{Error, Hint, Hinted, Result};
use crate::repo::keys;
use std::path::{Path, PathBuf};

pub use crate::repo::keys::{NoPassphrase, PassphraseSource};
pub use age::secrecy::{ExposeSecret, SecretString};

/// Creates an identity file (mode 0600, never overwriting) and returns its public recipient.
pub fn generate(out: &Path, passphrase: Option<SecretString>) -> Result<String> {
    keys::generate(out, passphrase)
}

/// Creates a signing key file (mode 0600, never overwriting) and returns its public signer.
pub fn generate_signing_key(out: &Path) -> Result<String> {
    Ok(crate::repo::signing::SigningKey::create(out)?
        .signer()
        .to_string())
}

/// `$XDG_CONFIG_HOME/ivault/identity.txt`, else `~/.config/ivault/identity.txt`; the
/// directory is created.
pub fn default_identity_path() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| {
            Error::Usage("there is no HOME to put the identity in".hinted(Hint::OtherOutput))
        })?;
    let dir = base.join("ivault");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Destination(format!("cannot create {}: {e}", dir.display()).into()))?;
    Ok(dir.join("identity.txt"))
}

/// Recipients given one by one and in a file, each checked, without repeats.
pub fn collect_recipients(given: &[String], file: Option<&Path>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for r in given {
        out.push(keys::parse_recipient(r)?.to_string());
    }
    if let Some(f) = file {
        out.extend(keys::read_recipients_file(f)?);
    }
    out.dedup();
    Ok(out)
}
