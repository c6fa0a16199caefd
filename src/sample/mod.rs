//! Generates realistic invoice databases for the demo, the tests and the benchmark,
//! and applies "a day of business" to them. Deterministic for a given seed.
//!
//! The data imitates Chinese VAT invoices (fapiao): sequential numbers within
//! 12-digit invoice codes, a pool of ~500 companies with 18-character tax ids,
//! mixed Chinese/English item lines at 6/9/13 % VAT, one tax-bureau upload per
//! invoice. It is realistic on purpose: deduplication and compression results of
//! the backup engine are only meaningful on data that looks like the real thing.
//!
//! Every transaction in this module keeps one invariant (see [`check_invariants`]),
//! so a backup taken at any instant, restored, must satisfy it: that is how the
//! tests detect torn or mixed-up snapshots.
//!
//! [`check_invariants`]: crate::sample::check_invariants

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::ffi::{c_int, OsString};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{ffi, params, CachedStatement, Connection, OpenFlags, OptionalExtension, ToSql};
use rusqlite::{types::Type, TransactionBehavior};

mod business;
mod create;
mod invariants;
mod vocabulary;
mod writer;
use vocabulary::*;
use writer::*;

pub use business::{day_of_business, write_one};
pub use create::generate;
pub use invariants::check_invariants;

/// What an invoice is in a generated database, as a policy's `[source.business]` says it.
pub fn business_description() -> crate::facts::Description {
    use crate::facts::{ChildTable, Columns, Description};
    let child = |table: &str| ChildTable {
        table: table.into(),
        fk: Columns::One("invoice_id".into()),
    };
    Description {
        invoice_table: "invoices".into(),
        date_column: "issue_date".into(),
        amount_column: "total_cents".into(),
        key_columns: vec!["invoice_code".into(), "invoice_no".into()],
        children: vec![child("invoice_items"), child("tax_uploads")],
        status_column: Some("status".into()),
        number_column: Some("invoice_no".into()),
        series_column: Some("invoice_code".into()),
        utc_offset: None,
        list: None,
    }
}

/// SQLite journal mode of a generated database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalMode {
    /// `PRAGMA journal_mode=WAL`.
    Wal,
    /// `PRAGMA journal_mode=DELETE` (classic rollback journal).
    Rollback,
}

/// What [`generate`] should produce.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Approximate size of the database file, in MiB.
    pub size_mb: u64,
    /// Seed of the pseudo-random generator: same seed and size, same content.
    pub seed: u64,
    /// Journal mode the database is left in.
    pub journal_mode: JournalMode,
}

/// What [`generate`] produced.
#[derive(Debug, Clone, Default)]
pub struct GenerateStats {
    /// Rows in `invoices`.
    pub invoices: u64,
    /// Rows in `invoice_items`.
    pub items: u64,
    /// Rows in `tax_uploads`.
    pub uploads: u64,
    /// Size of the database file (`page_count * page_size`).
    pub bytes: u64,
}

/// What [`day_of_business`] changed.
#[derive(Debug, Clone, Default)]
pub struct BusinessStats {
    /// Existing invoices updated.
    pub updated: u64,
    /// New invoices added.
    pub added: u64,
}

const SCHEMA: &str = "
CREATE TABLE invoices (
  id INTEGER PRIMARY KEY,
  invoice_code TEXT NOT NULL,
  invoice_no TEXT NOT NULL,
  issue_date TEXT NOT NULL,
  seller_name TEXT NOT NULL, seller_tax_id TEXT NOT NULL,
  buyer_name TEXT NOT NULL, buyer_tax_id TEXT NOT NULL,
  amount_cents INTEGER NOT NULL, tax_cents INTEGER NOT NULL, total_cents INTEGER NOT NULL,
  currency TEXT NOT NULL DEFAULT 'CNY',
  status TEXT NOT NULL,
  remark TEXT,
  updated_at TEXT NOT NULL,
  UNIQUE (invoice_code, invoice_no)
);
CREATE INDEX invoices_issue_date ON invoices(issue_date);
CREATE TABLE invoice_items (
  id INTEGER PRIMARY KEY,
  invoice_id INTEGER NOT NULL REFERENCES invoices(id),
  line_no INTEGER NOT NULL, description TEXT NOT NULL, quantity INTEGER NOT NULL,
  unit_price_cents INTEGER NOT NULL, amount_cents INTEGER NOT NULL, tax_rate_bp INTEGER NOT NULL, tax_cents INTEGER NOT NULL
);
CREATE INDEX invoice_items_invoice ON invoice_items(invoice_id);
CREATE TABLE tax_uploads (
  id INTEGER PRIMARY KEY,
  invoice_id INTEGER NOT NULL REFERENCES invoices(id),
  uploaded_at TEXT NOT NULL, status TEXT NOT NULL, response_code TEXT NOT NULL, payload_sha256 TEXT NOT NULL
);
CREATE INDEX tax_uploads_invoice ON tax_uploads(invoice_id);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters (name, value) VALUES ('invoices', 0);
";

const PAGE_SIZE: u64 = 4096;
/// Issue dates of generated history run over 2023-01-01 ..= 2025-12-31.
const SPAN_DAYS: u64 = 1096;
/// First guess of the on-disk bytes per invoice (row, ~3 items, 1 upload, index
/// entries); refined from `page_count` while generating.
const EST_BYTES_PER_INVOICE: f64 = 580.0;
/// Invoices per bulk transaction: large enough to be fast, small enough to keep
/// the page cache from spilling mid-transaction.
const COMMIT_EVERY: u64 = 50_000;
/// The company pool does not depend on the seed, so `day_of_business` and
/// `write_one` (which get no generation seed) draw from the same companies.
const PARTY_SEED: u64 = 0x00f0_a910_2023_0001;
const POOL_SIZE: usize = 500;
/// The first parties of the pool are "our group": they issue most invoices.
const CORE_SELLERS: usize = 40;
const CODES_PER_YEAR: usize = 30;
const MAX_LINES: usize = 5;
const MAX_INVOICE_NO: u32 = 99_999_999;
const WRITE_ONE_SALT: u64 = 0x5752_4954_455f_4f4e;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// VAT of a line, rounded half up (amounts are never negative here).
fn tax_of(amount: i64, rate_bp: i64) -> i64 {
    (amount.saturating_mul(rate_bp) + 5_000) / 10_000
}

fn fmt_date(buf: &mut String, d: NaiveDate) {
    buf.clear();
    let _ = write!(buf, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
}

fn fmt_datetime(buf: &mut String, d: NaiveDate, hour: u32, minute: u32, second: u32) {
    fmt_date(buf, d);
    let _ = write!(buf, " {hour:02}:{minute:02}:{second:02}");
}

fn parse_date(s: &str) -> rusqlite::Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(e)))
}

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 1, 1).expect("constant date is valid")
}

fn last_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 12, 31).expect("constant date is valid")
}

fn failure(code: c_int, msg: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(msg))
}

#[cfg(test)]
mod tests;
