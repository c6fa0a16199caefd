//! age X25519 identities and recipients. An identity file holds `AGE-SECRET-KEY-1…` lines
//! (the `age-keygen` format); a passphrase-protected one is that text encrypted with an age
//! passphrase (scrypt), as `age -p` would write it. Passphrases come from a
//! [`PassphraseSource`] the caller provides (never from the command line).

use crate::error::{Error, Fault, Hint, Hinted, Result};
use crate::secret;
use age::secrecy::{ExposeSecret, SecretString};
use age::x25519;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;

/// Where the passphrase of a protected identity comes from. The face decides: a terminal
/// prompt, an environment variable, a secrets manager.
pub trait PassphraseSource: Send + Sync {
    /// The passphrase for the identity file `file`.
    fn passphrase(&self, file: &Path) -> Result<SecretString>;
}

/// For callers with no way to ask: a protected identity is refused.
pub struct NoPassphrase;

impl PassphraseSource for NoPassphrase {
    fn passphrase(&self, file: &Path) -> Result<SecretString> {
        Err(Error::Key(
            format!(
                "identity file {} is protected by a passphrase and none was given",
                file.display()
            )
            .hinted(Hint::PassphraseSource),
        ))
    }
}

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
                    let what = if x25519::Recipient::from_str(l).is_ok() {
                        "the identity file holds a public recipient (age1…) where a secret key belongs"
                    } else {
                        "the identity file holds a line that is not an age X25519 secret key"
                    };
                    Error::Key(what.hinted(Hint::IdentityFile))
                })
            })
            .collect::<Result<_>>()?;
        if identities.is_empty() {
            return Err(Error::Key(Fault::new(
                "the identity file holds no age secret key",
                Hint::IdentityFile,
            )));
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
            let mut w = enc.wrap_output(&mut out).map_err(|e| {
                Error::Internal(format!("could not encrypt the identity: {e}").into())
            })?;
            w.write_all(text.as_bytes())
                .and_then(|_| w.finish().map(|_| ()))
                .map_err(|e| {
                    Error::Internal(format!("could not encrypt the identity: {e}").into())
                })?;
            out
        }
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(Error::Destination(
                format!("directory {} does not exist", dir.display()).hinted(Hint::KeyDirectory),
            ));
        }
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Destination(
                format!(
                    "{} already exists; ivault never overwrites a key file",
                    out.display()
                )
                .hinted(Hint::OtherOutput),
            ),
            _ => Error::Destination(format!("cannot create {}: {e}", out.display()).into()),
        })?;
    let written = f.write_all(&contents).and_then(|_| f.sync_all());
    if let Err(e) = written {
        drop(f);
        let _ = std::fs::remove_file(out);
        return Err(Error::Destination(
            format!("cannot write {}: {e}", out.display()).into(),
        ));
    }
    Ok(recipient)
}

/// Reads an identity file that is not passphrase-protected.
pub fn load_identity(path: &Path) -> Result<Keyring> {
    load_identity_with(path, &NoPassphrase)
}

/// Reads an identity file, asking `passphrase` if it is encrypted.
pub fn load_identity_with(path: &Path, passphrase: &dyn PassphraseSource) -> Result<Keyring> {
    if secret::holds_secret_key(&path.to_string_lossy()) {
        return Err(key_given_as_path("identity", Hint::KeyInFile));
    }
    let mut data = Vec::new();
    let mut f = std::fs::File::open(path).map_err(|e| {
        Error::Key(
            format!(
                "cannot read identity file {}: {}",
                path.display(),
                io_reason(&e)
            )
            .hinted(Hint::GiveIdentity),
        )
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
    f.read_to_end(&mut data).map_err(|e| {
        Error::Key(format!("cannot read identity file {}: {e}", path.display()).into())
    })?;
    let text = if data.starts_with(b"age-encryption.org/v1") {
        decrypt_with_passphrase(path, &data, passphrase.passphrase(path)?)?
    } else {
        String::from_utf8(data).map_err(|_| {
            Error::Key(
                format!("{} is not an age identity file", path.display())
                    .hinted(Hint::IdentityFile),
            )
        })?
    };
    Keyring::from_identity_text(&text).map_err(|e| {
        Error::Key(Fault {
            message: format!("{}: {}", path.display(), e.message()),
            hint: e.hint().cloned(),
        })
    })
}

fn decrypt_with_passphrase(path: &Path, data: &[u8], passphrase: SecretString) -> Result<String> {
    let dec = age::Decryptor::new_buffered(data).map_err(|_| {
        Error::Key(format!("{} is damaged and cannot be read", path.display()).into())
    })?;
    let ident = age::scrypt::Identity::new(passphrase);
    let mut r = dec
        .decrypt(std::iter::once(&ident as &dyn age::Identity))
        .map_err(|_| {
            Error::Key(
                format!("wrong passphrase for identity file {}", path.display())
                    .hinted(Hint::RetypePassphrase),
            )
        })?;
    let mut text = String::new();
    r.read_to_string(&mut text).map_err(|_| {
        Error::Key(format!("{} is damaged and cannot be read", path.display()).into())
    })?;
    Ok(text)
}

/// Parses and checks an `age1…` recipient. A secret key given by mistake is refused without
/// being repeated.
pub fn parse_recipient(s: &str) -> Result<x25519::Recipient> {
    if secret::holds_secret_key(s) {
        return Err(Error::Key(Fault::new(
            "the recipient given is a secret key (an age identity), not a public recipient",
            Hint::PublicRecipient,
        )));
    }
    x25519::Recipient::from_str(s.trim()).map_err(|_| {
        Error::Key(
            format!("{:?} is not an age X25519 recipient", s.trim()).hinted(Hint::RecipientFormat),
        )
    })
}

/// Recipients from a file: one `age1…` per line, `#` comments allowed. A file that holds a
/// secret key, or is age-encrypted (a protected identity), is refused without quoting it.
pub fn read_recipients_file(path: &Path) -> Result<Vec<String>> {
    if secret::holds_secret_key(&path.to_string_lossy()) {
        return Err(key_given_as_path("recipients file", Hint::PublicRecipient));
    }
    let data = std::fs::read(path).map_err(|e| {
        Error::Key(
            format!(
                "cannot read recipients file {}: {}",
                path.display(),
                io_reason(&e)
            )
            .into(),
        )
    })?;
    let shown = path.display();
    if secret::is_age_encrypted(&data) {
        return Err(Error::Key(
            format!("recipients file {shown} is an age-encrypted file (a passphrase-protected identity, perhaps), not a list of public recipients")
                .hinted(Hint::PublicRecipient),
        ));
    }
    if secret::holds_secret_key(&String::from_utf8_lossy(&data)) {
        return Err(Error::Key(
            format!("recipients file {shown} holds a secret key (an age identity), not only public recipients")
                .hinted(Hint::PublicRecipient),
        ));
    }
    let text = String::from_utf8(data).map_err(|_| {
        Error::Key(
            format!("recipients file {shown} is not a text file of age1… lines")
                .hinted(Hint::RecipientFormat),
        )
    })?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_recipient(l).map(|r| r.to_string()))
        .collect()
}

/// A secret key given where the path of a file belongs: said without repeating it.
fn key_given_as_path(what: &str, hint: Hint) -> Error {
    Error::Key(Fault::new(
        format!("the {what} given is a secret key itself, not the path of a file"),
        hint,
    ))
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
