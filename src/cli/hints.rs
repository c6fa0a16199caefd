//! How the command line words the engine's advice: flags and commands to type.

use invoice_vault::error::Hint;

pub(super) fn advice(hint: &Hint) -> String {
    match hint {
        Hint::Overwrite => "pass --force to replace it, or restore to another path".into(),
        Hint::CheckData => "run `ivault check --read-data`".into(),
        Hint::CheckStructure => "run `ivault check`".into(),
        Hint::CreateRepository { location } => {
            format!("create one with `ivault init {location}` or check the path")
        }
        Hint::BackUpFirst => "run `ivault backup` first".into(),
        Hint::ListSnapshots => "list them with `ivault snapshots`".into(),
        Hint::SnapshotSpec => {
            "give `latest` or an id (or unique prefix) from `ivault snapshots`".into()
        }
        Hint::GiveIdentity => {
            "pass --identity FILE (or set IVAULT_IDENTITY) with the file from `ivault key generate`"
                .into()
        }
        Hint::MatchingIdentity => "pass the matching --identity".into(),
        Hint::IdentityFile => {
            "use a file written by `ivault key generate` or `age-keygen`".into()
        }
        Hint::OtherOutput => "choose another --out".into(),
        Hint::KeyDirectory => "create it or choose another --out".into(),
        Hint::RetypePassphrase => "check IVAULT_PASSPHRASE or retype it".into(),
        Hint::PassphraseSource => "set IVAULT_PASSPHRASE".into(),
        Hint::NonEmptyPassphrase => "type one or leave out --passphrase".into(),
        Hint::RecipientFormat => {
            "recipients look like age1… (see `ivault key generate`)".into()
        }
        Hint::PublicRecipient => "give its public key age1…, which `ivault key generate` printed and the identity file's `# public key:` line repeats".into(),
        Hint::KeyInFile => "keep the key in a file (mode 0600) and pass that file's path with --identity or IVAULT_IDENTITY".into(),
        Hint::GiveRecipient => {
            "pass --recipient age1… or record one with `ivault init --recipient`".into()
        }
        Hint::AcceptRecipients => "if you changed them on purpose, run the backup once with --accept-recipients, otherwise treat the repository as tampered with".into(),
        Hint::StateDirectory => "free space there or pass another --state-dir".into(),
        Hint::SourceName => "give this one its own name with --name NAME".into(),
        Hint::LockTimeout => "retry when the writer is done or raise --lock-timeout".into(),
        Hint::EndpointUrl => {
            "give --endpoint a URL such as https://s3.example.internal or http://127.0.0.1:9000"
                .into()
        }
        Hint::ObjectLock => "enable it on the bucket (see docs/OPERATIONS.md) or leave out --object-lock-days".into(),
        Hint::PolicyPath => "check the path given to --policy".into(),
        Hint::DemoDirectory => "choose another --dir".into(),
        Hint::Rebuild => {
            "rebuild it from the project directory so .cargo/config.toml applies".into()
        }
        Hint::SignerFormat => "signers look like ivsig1… and are printed by `ivault key generate --signing` and `ivault init`".into(),
        Hint::TrustSigner => "if it is your backup host's key, pass --trust-signer with it (or list it under [encryption] signers in the policy)".into(),
        Hint::AllowUnverified => "pass --allow-unverified to restore it anyway, knowing that anyone with write access to the repository could have made it".into(),
        Hint::RepairIndex => "rebuildable with `ivault repair index`".into(),
        Hint::FullBackup => {
            "a fresh `ivault backup --full` stores every page again, so new snapshots do not depend on damaged packs".into()
        }
        _ => String::new(),
    }
}

/// The one line printed for a failed command: the sentence, then what to type about it. A
/// secret key that reached the sentence (a mistyped argument quoted back) is not repeated.
pub(super) fn describe(e: &invoice_vault::Error) -> String {
    let line = match e.hint().map(advice).filter(|a| !a.is_empty()) {
        Some(a) => format!("{e}; {a}"),
        None => e.to_string(),
    };
    invoice_vault::secret::redact(&line).into_owned()
}
