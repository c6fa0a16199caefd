//! age X25519 identities and recipients. An identity file holds `AGE-SECRET-KEY-1…` lines
//! (the `age-keygen` format); a passphrase-protected one is that text encrypted with an age
//! passphrase (scrypt), as `age -p` would write it. Passphrases come from `IVAULT_PASSPHRASE`
//! or a terminal prompt, never from the command line.

use crate::error::{Error, Result};
use age::secrecy::{ExposeSecret, SecretString};
use age::x25519;
use std::fs::OpenOptions;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;

pub const PASSPHRASE_ENV: &str = "IVAULT_PASSPHRASE";

/// The private keys that can open repository objects.
pub struct Keyring {
    identities: Vec<x25519::Identity>,
}

impl Keyring {
    pub fn identities(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.identities.iter().map(|i| i as &dyn age::Identity)
    }

    pub fn recipients(&self) -> Vec<String> {
        self.identities
            .iter()
            .map(|i| i.to_public().to_string())
            .collect()
    }

    pub fn from_identity_text(text: &str) -> Result<Self> {
        let identities: Vec<x25519::Identity> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                x25519::Identity::from_str(l).map_err(|_| {
                    Error::Key("the identity file holds a line that is not an age X25519 secret key; use a file written by `ivault key generate` or `age-keygen`".into())
                })
            })
            .collect::<Result<_>>()?;
        if identities.is_empty() {
            return Err(Error::Key(
                "the identity file holds no age secret key; use a file written by `ivault key generate`".into(),
            ));
        }
        Ok(Keyring { identities })
    }
}

/// Creates a new identity at `out` (mode 0600, never overwriting), optionally encrypted with a
/// passphrase, and returns its public recipient.
pub fn generate(out: &Path, passphrase: Option<SecretString>) -> Result<String> {
    let identity = x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let text = format!(
        "# created: {}\n# public key: {recipient}\n{}\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        identity.to_string().expose_secret()
    );
    let contents = match passphrase {
        None => text.into_bytes(),
        Some(p) => {
            let enc = age::Encryptor::with_user_passphrase(p);
            let mut out = Vec::new();
            let mut w = enc
                .wrap_output(&mut out)
                .map_err(|e| Error::Internal(format!("could not encrypt the identity: {e}")))?;
            w.write_all(text.as_bytes())
                .and_then(|_| w.finish().map(|_| ()))
                .map_err(|e| Error::Internal(format!("could not encrypt the identity: {e}")))?;
            out
        }
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(Error::Destination(format!(
                "directory {} does not exist; create it or choose another --out",
                dir.display()
            )));
        }
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Destination(format!(
                "{} already exists; ivault never overwrites a key file, choose another --out",
                out.display()
            )),
            _ => Error::Destination(format!("cannot create {}: {e}", out.display())),
        })?;
    let written = f.write_all(&contents).and_then(|_| f.sync_all());
    if let Err(e) = written {
        drop(f);
        let _ = std::fs::remove_file(out);
        return Err(Error::Destination(format!(
            "cannot write {}: {e}",
            out.display()
        )));
    }
    Ok(recipient)
}

/// Reads an identity file, asking for its passphrase if it is encrypted.
pub fn load_identity(path: &Path) -> Result<Keyring> {
    let mut data = Vec::new();
    let mut f = std::fs::File::open(path).map_err(|e| {
        Error::Key(format!(
            "cannot read identity file {}: {}; pass --identity with the file from `ivault key generate`",
            path.display(),
            io_reason(&e)
        ))
    })?;
    if let Ok(meta) = f.metadata() {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "identity file {} is readable by group or others; run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    f.read_to_end(&mut data)
        .map_err(|e| Error::Key(format!("cannot read identity file {}: {e}", path.display())))?;
    let text = if data.starts_with(b"age-encryption.org/v1") {
        decrypt_with_passphrase(path, &data)?
    } else {
        String::from_utf8(data).map_err(|_| {
            Error::Key(format!(
                "{} is not an age identity file; pass the file from `ivault key generate`",
                path.display()
            ))
        })?
    };
    Keyring::from_identity_text(&text)
        .map_err(|e| Error::Key(format!("{}: {}", path.display(), e.message())))
}

fn decrypt_with_passphrase(path: &Path, data: &[u8]) -> Result<String> {
    let passphrase = read_passphrase(&format!("Passphrase for {}: ", path.display()))?;
    let dec = age::Decryptor::new_buffered(data)
        .map_err(|_| Error::Key(format!("{} is damaged and cannot be read", path.display())))?;
    let ident = age::scrypt::Identity::new(passphrase);
    let mut r = dec
        .decrypt(std::iter::once(&ident as &dyn age::Identity))
        .map_err(|_| {
            Error::Key(format!(
                "wrong passphrase for identity file {}; check IVAULT_PASSPHRASE or retype it",
                path.display()
            ))
        })?;
    let mut text = String::new();
    r.read_to_string(&mut text)
        .map_err(|_| Error::Key(format!("{} is damaged and cannot be read", path.display())))?;
    Ok(text)
}

/// The passphrase from `IVAULT_PASSPHRASE`, else from a prompt on the terminal.
pub fn read_passphrase(prompt: &str) -> Result<SecretString> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(SecretString::from(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Key(format!(
            "a passphrase is needed and there is no terminal to ask on; set {PASSPHRASE_ENV}"
        )));
    }
    rpassword::prompt_password(prompt)
        .map(SecretString::from)
        .map_err(|e| Error::Key(format!("could not read the passphrase: {e}")))
}

/// Asks twice for a new passphrase (or takes `IVAULT_PASSPHRASE`).
pub fn new_passphrase() -> Result<SecretString> {
    if std::env::var(PASSPHRASE_ENV).is_ok() {
        return read_passphrase("");
    }
    let first = read_passphrase("New passphrase: ")?;
    let second = read_passphrase("Repeat passphrase: ")?;
    if first.expose_secret() != second.expose_secret() {
        return Err(Error::Key("the two passphrases differ; try again".into()));
    }
    if first.expose_secret().is_empty() {
        return Err(Error::Key(
            "an empty passphrase protects nothing; type one or leave out --passphrase".into(),
        ));
    }
    Ok(first)
}

/// Parses and checks an `age1…` recipient.
pub fn parse_recipient(s: &str) -> Result<x25519::Recipient> {
    x25519::Recipient::from_str(s.trim()).map_err(|_| {
        Error::Key(format!(
            "{:?} is not an age X25519 recipient; recipients look like age1… (see `ivault key generate`)",
            s.trim()
        ))
    })
}

/// Recipients from a file: one `age1…` per line, `#` comments allowed.
pub fn read_recipients_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Key(format!(
            "cannot read recipients file {}: {}",
            path.display(),
            io_reason(&e)
        ))
    })?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_recipient(l).map(|r| r.to_string()))
        .collect()
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
