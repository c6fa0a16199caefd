// placeholder until the generator lands
use std::path::Path;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalMode { Wal, Rollback }
#[derive(Debug, Clone)]
pub struct GenerateOptions { pub size_mb: u64, pub seed: u64, pub journal_mode: JournalMode }
#[derive(Debug, Clone, Default)]
pub struct GenerateStats { pub invoices: u64, pub items: u64, pub uploads: u64, pub bytes: u64 }
#[derive(Debug, Clone, Default)]
pub struct BusinessStats { pub updated: u64, pub added: u64 }
pub fn generate(_path: &Path, _opts: &GenerateOptions) -> rusqlite::Result<GenerateStats> { Err(rusqlite::Error::InvalidQuery) }
pub fn day_of_business(_path: &Path, _seed: u64) -> rusqlite::Result<BusinessStats> { Err(rusqlite::Error::InvalidQuery) }
pub fn check_invariants(_conn: &rusqlite::Connection) -> rusqlite::Result<Option<String>> { Ok(None) }
pub fn write_one(_conn: &mut rusqlite::Connection, _n: u64) -> rusqlite::Result<()> { Ok(()) }
