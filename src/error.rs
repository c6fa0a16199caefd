//! One error type for the whole engine. Each variant is a class of failure with its own exit
//! code; the message is one sentence that names the thing and says what to do.

use std::fmt;

/// What went wrong, grouped by who has to act on it. The payload is the user-facing sentence.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// Wrong arguments: unknown snapshot, bad option value.
    Usage(String),
    /// The database to back up is missing, not SQLite, corrupt or locked.
    Source(String),
    /// The repository or its storage is missing, unreadable, full or of another format.
    Repository(String),
    /// Stored data is damaged: a hash does not match, an object does not decrypt.
    Integrity(String),
    /// The identity or recipients are missing, wrong or unreadable.
    Key(String),
    /// The restore destination exists or cannot be written.
    Destination(String),
    /// The policy file is unreadable or invalid, or names no such source or target.
    Policy(String),
    /// A bug or an environment problem ivault cannot classify.
    Internal(String),
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
            Error::Internal(_) => exit::INTERNAL,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Error::Usage(m)
            | Error::Source(m)
            | Error::Repository(m)
            | Error::Integrity(m)
            | Error::Key(m)
            | Error::Destination(m)
            | Error::Policy(m)
            | Error::Internal(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
