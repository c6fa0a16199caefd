//! Passphrases on the command line's terms: `IVAULT_PASSPHRASE`, else a prompt on the
//! terminal; never an argument, where `ps` would show it.

use invoice_vault::engine::keys::{ExposeSecret, PassphraseSource, SecretString};
use invoice_vault::error::{Error, Hint, Hinted};
use invoice_vault::Result;
use std::io::IsTerminal;
use std::path::Path;

pub(super) const PASSPHRASE_ENV: &str = "IVAULT_PASSPHRASE";

pub(super) struct EnvOrTerminal;

impl PassphraseSource for EnvOrTerminal {
    fn passphrase(&self, file: &Path) -> Result<SecretString> {
        read(&format!("Passphrase for {}: ", file.display()))
    }
}

fn read(prompt: &str) -> Result<SecretString> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(SecretString::from(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Key(
            "a passphrase is needed and there is no terminal to ask on"
                .hinted(Hint::PassphraseSource),
        ));
    }
    rpassword::prompt_password(prompt)
        .map(SecretString::from)
        .map_err(|e| Error::Key(format!("could not read the passphrase: {e}").into()))
}

/// Asks twice for a new passphrase (or takes `IVAULT_PASSPHRASE`).
pub(super) fn new_passphrase() -> Result<SecretString> {
    if std::env::var(PASSPHRASE_ENV).is_ok() {
        return read("");
    }
    let first = read("New passphrase: ")?;
    let second = read("Repeat passphrase: ")?;
    if first.expose_secret() != second.expose_secret() {
        return Err(Error::Key("the two passphrases differ; try again".into()));
    }
    if first.expose_secret().is_empty() {
        return Err(Error::Key(
            "an empty passphrase protects nothing".hinted(Hint::NonEmptyPassphrase),
        ));
    }
    Ok(first)
}
