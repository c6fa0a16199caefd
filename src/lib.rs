//! invoice-vault: encrypted, deduplicated, verified backups of SQLite invoice databases.
//!
//! Layers, bottom up: [`storage`] (where objects live), [`repo`] (the repository format:
//! packs, indexes, manifests, keys), [`source`] (consistent reads of live SQLite databases),
//! [`engine`] (backup, restore, check, copy), [`state`] (local job history and caches),
//! [`policy`] (named sources, targets and keys from a TOML file). Beside them, [`sample`]
//! makes realistic invoice databases for `ivault demo` and the tests.
//! docs/ARCHITECTURE.md walks through them; docs/FORMAT.md specifies the format.

pub mod digest_runs;
pub mod engine;
pub mod error;
pub mod facts;
pub mod failpoint;
pub mod hash;
pub mod host;
pub mod notify;
pub mod paths;
pub mod policy;
pub mod progress;
mod record_tape;
mod recycle;
pub mod repo;
pub mod report;
pub mod retention;
/// Sample invoice databases and "a day of business" on them, for the demo and the tests.
pub mod sample;
pub mod scheduler;
pub mod secret;
pub mod sorted_runs;
pub mod source;
pub mod sqlite_vfs;
pub mod state;
pub mod storage;
pub mod target;
pub mod typo;

pub use error::{Error, Result};
