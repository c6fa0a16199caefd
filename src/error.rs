//! One error type for the whole engine. Each variant is a class of failure with its own exit
//! code. The message is one sentence that names the thing and what is wrong; what the user
//! should do about it is a [`Hint`], which each face (command line, scheduler log, report)
//! words its own way, since only the command line has flags to point at.

use std::fmt;

/// What went wrong, grouped by who has to act on it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// Wrong arguments: unknown snapshot, bad option value.
    Usage(Fault),
    /// The database to back up is missing, not SQLite, corrupt or locked.
    Source(Fault),
    /// The repository or its storage is missing, unreadable, full or of another format.
    Repository(Fault),
    /// Stored data is damaged: a hash does not match, an object does not decrypt.
    Integrity(Fault),
    /// The identity or recipients are missing, wrong or unreadable.
    Key(Fault),
    /// The restore destination exists or cannot be written.
    Destination(Fault),
    /// The policy file is unreadable or invalid, or names no such source or target.
    Policy(Fault),
    /// A period restore refused to write: the live database and the snapshot do not fit
    /// together (schema, source, description, an empty period, a colliding key). Nothing was
    /// written.
    Refused(Fault),
    /// A bug or an environment problem ivault cannot classify.
    Internal(Fault),
    /// The job stopped before finishing because it was asked to: a shutdown, or another stage
    /// of the same job failed (whose error is then the one reported). Nothing half-written is
    /// referenced.
    Cancelled,
}

/// The sentence, and what would fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub message: String,
    pub hint: Option<Hint>,
}

impl From<String> for Fault {
    fn from(message: String) -> Self {
        Fault {
            message,
            hint: None,
        }
    }
}

impl From<&str> for Fault {
    fn from(message: &str) -> Self {
        Fault::from(message.to_string())
    }
}

/// What the user can do about an error, independent of how they talk to ivault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hint {
    /// Replace the existing file explicitly, or choose another destination.
    Overwrite,
    /// Verify every stored byte of the repository.
    CheckData,
    /// Verify the repository's structure.
    CheckStructure,
    /// Create a repository at this location, or correct the location.
    CreateRepository { location: String },
    /// Take a backup first.
    BackUpFirst,
    /// List the snapshots to find the right id.
    ListSnapshots,
    /// Name a snapshot by `latest` or an id (prefix).
    SnapshotSpec,
    /// Give an identity file (private key); reading needs one.
    GiveIdentity,
    /// Give the identity that belongs to this repository.
    MatchingIdentity,
    /// Use an identity file written by ivault or age-keygen.
    IdentityFile,
    /// Choose another path for the file to write (a new key, a sample database).
    OtherOutput,
    /// Create the directory, or choose another path for the key file.
    KeyDirectory,
    /// The passphrase was wrong: check where it comes from, or retype it.
    RetypePassphrase,
    /// There is no terminal to ask for a passphrase on: provide it another way.
    PassphraseSource,
    /// An empty passphrase: type one, or do without.
    NonEmptyPassphrase,
    /// Recipients are age X25519 public keys.
    RecipientFormat,
    /// A secret key was given where its public recipient belongs.
    PublicRecipient,
    /// A secret key was given where the path of a file holding it belongs.
    KeyInFile,
    /// Give a recipient to encrypt to, or record one in the repository.
    GiveRecipient,
    /// Confirm a deliberate change of the repository's recipients, else treat it as tampering.
    AcceptRecipients,
    /// Free space in the state directory or use another one.
    StateDirectory,
    /// Give the source a name of its own: its file name is taken by another source.
    SourceName,
    /// Wait for the writer holding the source locked, or wait longer.
    LockTimeout,
    /// Give the S3 endpoint as an http(s) URL.
    EndpointUrl,
    /// Enable Object Lock on the bucket, or do not ask for it.
    ObjectLock,
    /// Correct the path of the policy file.
    PolicyPath,
    /// Choose another directory for the demo.
    DemoDirectory,
    /// Rebuild ivault so that `.cargo/config.toml` applies.
    Rebuild,
    /// Signers look like `ivsig1…`, as printed when a signing key is made.
    SignerFormat,
    /// Trust the signer named in the message if it is the owner's backup host's key.
    TrustSigner,
    /// Restore anyway, knowing the snapshot is not authenticated.
    AllowUnverified,
    /// Index again, from the packs themselves, the packs no readable index lists.
    RepairIndex,
    /// Take a full backup, so that new snapshots do not depend on damaged packs.
    FullBackup,
}

impl Fault {
    pub fn new(message: impl Into<String>, hint: Hint) -> Self {
        Fault {
            message: message.into(),
            hint: Some(hint),
        }
    }
}

/// Exit codes, documented in README.md.
pub mod exit {
    pub const OK: i32 = 0;
    pub const INTERNAL: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const SOURCE: i32 = 3;
    pub const REPOSITORY: i32 = 4;
    pub const INTEGRITY: i32 = 5;
    pub const KEY: i32 = 6;
    pub const DESTINATION: i32 = 7;
    /// Some targets of a multi-target backup succeeded, others failed.
    pub const PARTIAL: i32 = 8;
    pub const POLICY: i32 = 9;
    /// Stopped on request (SIGINT, SIGTERM) before finishing.
    pub const CANCELLED: i32 = 10;
    /// A drill ran and at least one of its checks failed (the report says which).
    pub const DRILL_FAILED: i32 = 11;
    /// `status`: a backup is older than the RPO, or the last backup or drill failed.
    pub const STALE: i32 = 12;
    /// `daemon`: another daemon holds the lock of the state directory.
    pub const ALREADY_RUNNING: i32 = 13;
    /// `restore-period` without `--apply`: the snapshot holds rows of the period that the live
    /// database lacks or holds otherwise; `reconcile`: the invoice list and the live database
    /// differ. Nothing was changed either way.
    pub const DIFFERENCES: i32 = 14;
    /// `restore-period` refused (schema, source, description, empty period, colliding key);
    /// nothing was written.
    pub const REFUSED: i32 = 15;
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Source(_) => exit::SOURCE,
            Error::Repository(_) => exit::REPOSITORY,
            Error::Integrity(_) => exit::INTEGRITY,
            Error::Key(_) => exit::KEY,
            Error::Destination(_) => exit::DESTINATION,
            Error::Policy(_) => exit::POLICY,
            Error::Refused(_) => exit::REFUSED,
            Error::Internal(_) => exit::INTERNAL,
            Error::Cancelled => exit::CANCELLED,
        }
    }

    fn fault(&self) -> Option<&Fault> {
        match self {
            Error::Usage(f)
            | Error::Source(f)
            | Error::Repository(f)
            | Error::Integrity(f)
            | Error::Key(f)
            | Error::Destination(f)
            | Error::Policy(f)
            | Error::Refused(f)
            | Error::Internal(f) => Some(f),
            Error::Cancelled => None,
        }
    }

    /// The sentence without any advice.
    pub fn message(&self) -> &str {
        self.fault()
            .map_or("stopped before finishing", |f| f.message.as_str())
    }

    pub fn hint(&self) -> Option<&Hint> {
        self.fault().and_then(|f| f.hint.as_ref())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `format!(…).hinted(Hint::…)`: a message with its advice, at the many places errors are made.
pub trait Hinted {
    fn hinted(self, hint: Hint) -> Fault;
}

impl<T: Into<String>> Hinted for T {
    fn hinted(self, hint: Hint) -> Fault {
        Fault::new(self, hint)
    }
}
