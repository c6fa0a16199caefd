//! Snapshot signatures. A repository's recipients are public (a backup host needs only them),
//! so anyone who can write to the repository can encrypt a manifest to them; what only the
//! owner's backup hosts hold is an Ed25519 signing key. Every manifest is signed; a reader
//! trusts a snapshot only if a signer it was told to trust signed it (docs/SECURITY.md).
//!
//! The manifest is the root of a snapshot: tree segments and pages are named by their hashes,
//! so signing the manifest's bytes authenticates every page it leads to.

use crate::error::{Error, Hint, Hinted, Result};
use ed25519_dalek::{Signature, Signer as _, SigningKey as Ed25519Key, VerifyingKey};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// How a public signer is written: `ivsig1` and 64 hex digits.
const SIGNER_PREFIX: &str = "ivsig1";
/// The line of a signing key file that holds the secret: this and 64 hex digits.
const KEY_PREFIX: &str = "IVAULT-SIGNING-KEY-1";
/// Signatures cover this and then the manifest's bytes, so they mean nothing anywhere else.
const DOMAIN: &[u8] = b"invoice-vault snapshot manifest\0";

/// A public signer: who signed a manifest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signer(VerifyingKeyBytes);

type VerifyingKeyBytes = [u8; 32];

impl Signer {
    pub fn parse(s: &str) -> Result<Signer> {
        let bad = || {
            Error::Key(
                format!(
                    "{:?} is not an ivault signer",
                    s.chars().take(80).collect::<String>()
                )
                .hinted(Hint::SignerFormat),
            )
        };
        let hex = s.trim().strip_prefix(SIGNER_PREFIX).ok_or_else(bad)?;
        let bytes = crate::hash::parse_hex(hex).ok_or_else(bad)?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
        Ok(Signer(bytes))
    }

    /// Whether `signature` (hex) is this signer's signature of `manifest`.
    pub fn verifies(&self, manifest: &[u8], signature: &str) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let mut sig = [0u8; 64];
        if hex::decode_to_slice(signature, &mut sig).is_err() {
            return false;
        }
        key.verify_strict(&signed_bytes(manifest), &Signature::from_bytes(&sig))
            .is_ok()
    }
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SIGNER_PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({self})")
    }
}

/// The secret half, held by backup hosts (file mode 0600).
pub struct SigningKey(Ed25519Key);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.signer())
    }
}

impl SigningKey {
    pub fn signer(&self) -> Signer {
        Signer(self.0.verifying_key().to_bytes())
    }

    /// The signature (hex) of a manifest's bytes.
    pub fn sign(&self, manifest: &[u8]) -> String {
        hex::encode(self.0.sign(&signed_bytes(manifest)).to_bytes())
    }

    /// Creates a new key file (mode 0600, never overwriting) and returns the key.
    pub fn create(path: &Path) -> Result<SigningKey> {
        let key = SigningKey(Ed25519Key::generate(&mut rand::rngs::OsRng));
        let text = format!(
            "# ivault signing key: backup hosts sign snapshots with it; keep it secret\n# signer: {}\n{KEY_PREFIX}{}\n",
            key.signer(),
            hex::encode(key.0.to_bytes())
        );
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::Destination(
                    format!(
                        "{} already exists; ivault never overwrites a key file",
                        path.display()
                    )
                    .hinted(Hint::OtherOutput),
                ),
                _ => Error::Destination(format!("cannot create {}: {e}", path.display()).into()),
            })?;
        if let Err(e) = f.write_all(text.as_bytes()).and_then(|_| f.sync_all()) {
            drop(f);
            let _ = std::fs::remove_file(path);
            return Err(Error::Destination(
                format!("cannot write {}: {e}", path.display()).into(),
            ));
        }
        Ok(key)
    }

    /// Reads a key file written by [`SigningKey::create`].
    pub fn load(path: &Path) -> Result<SigningKey> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Key(
                format!(
                    "cannot read signing key {}: {}",
                    path.display(),
                    super::keys::io_reason(&e)
                )
                .into(),
            )
        })?;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "signing key {} is readable by group or others; run `chmod 600 {}`",
                    path.display(),
                    path.display()
                );
            }
        }
        let secret = text
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(KEY_PREFIX))
            .and_then(crate::hash::parse_hex)
            .ok_or_else(|| {
                Error::Key(format!("{} is not an ivault signing key file", path.display()).into())
            })?;
        Ok(SigningKey(Ed25519Key::from_bytes(&secret)))
    }

    /// Loads the key at `path`, creating it first if there is none.
    pub fn load_or_create(path: &Path) -> Result<SigningKey> {
        if path.exists() {
            SigningKey::load(path)
        } else {
            SigningKey::create(path)
        }
    }
}

fn signed_bytes(manifest: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(DOMAIN.len() + manifest.len());
    v.extend_from_slice(DOMAIN);
    v.extend_from_slice(manifest);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_manifest_and_signer() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::create(&dir.path().join("k")).unwrap();
        let other = SigningKey::create(&dir.path().join("o")).unwrap();
        let sig = key.sign(b"{\"a\":1}");
        assert!(key.signer().verifies(b"{\"a\":1}", &sig));
        assert!(!key.signer().verifies(b"{\"a\":2}", &sig));
        assert!(!other.signer().verifies(b"{\"a\":1}", &sig));
        assert!(!key.signer().verifies(b"{\"a\":1}", "00"));
        let again = SigningKey::load(&dir.path().join("k")).unwrap();
        assert_eq!(again.signer(), key.signer());
        assert_eq!(
            Signer::parse(&key.signer().to_string()).unwrap(),
            key.signer()
        );
        assert!(Signer::parse("ivsig1zz").is_err());
        let mode = std::fs::metadata(dir.path().join("k"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
