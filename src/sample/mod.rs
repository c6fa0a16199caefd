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

mod vocabulary;
mod writer;
use vocabulary::*;
use writer::*;

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

/// Creates a new database at `path` (fails with an error if the file exists) of about `size_mb` MiB.
pub fn generate(path: &Path, opts: &GenerateOptions) -> rusqlite::Result<GenerateStats> {
    // `create_new` makes "must not exist" atomic; SQLite accepts the empty file.
    if let Err(e) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        return Err(failure(
            ffi::SQLITE_CANTOPEN,
            format!("cannot create {}: {e}", path.display()),
        ));
    }
    let result = generate_into(path, opts);
    if result.is_err() {
        // The bulk load runs without a journal: a half-written file is garbage.
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = OsString::from(path.as_os_str());
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
    result
}

fn generate_into(path: &Path, opts: &GenerateOptions) -> rusqlite::Result<GenerateStats> {
    let conn = Connection::open(path)?;
    // Nobody else can see this file yet and a failure deletes it, so the bulk
    // load can skip journaling and fsync; the final journal mode is set at the end.
    // Rows are written parent first, so foreign key checks (on by default in the
    // bundled SQLite) would only cost time.
    conn.execute_batch(&format!(
        "PRAGMA page_size = {PAGE_SIZE};
         PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA cache_size = -65536;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = OFF;"
    ))?;
    conn.execute_batch(SCHEMA)?;

    let target = opts.size_mb.saturating_mul(1 << 20);
    let pool = party_pool();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let (first, last) = (first_day(), last_day());
    let mut stats = GenerateStats::default();
    {
        let mut writer = Writer::new(&conn, true)?;
        let mut numbers = Numbers::default();
        let mut code = String::new();
        // Issue dates must increase with id and end near the last day, but the
        // invoice count is only known once the file is big enough: advance the
        // date by a step re-estimated from the bytes per invoice seen so far.
        let mut remaining = (target as f64 / EST_BYTES_PER_INVOICE).max(1.0);
        let mut step = SPAN_DAYS as f64 / remaining;
        let mut day_pos = 0.0f64;
        let mut since_commit = 0;
        conn.execute_batch("BEGIN")?;
        let mut bytes = db_bytes(&conn)?;
        while bytes < target {
            let batch = check_interval(remaining);
            for _ in 0..batch {
                let day = (day_pos as u64).min(SPAN_DAYS - 1);
                let issue = first.checked_add_days(Days::new(day)).unwrap_or(last);
                let k = rng.gen_range(0..CODES_PER_YEAR);
                invoice_code(&mut code, issue.year(), k);
                let no = numbers.take(issue.year(), k, &code, None, &mut rng)?;
                stats.invoices += 1;
                let inv = NewInvoice {
                    id: stats.invoices as i64,
                    code: &code,
                    no,
                    issue,
                    horizon: Some(last),
                };
                stats.items += writer.insert(&mut rng, pool, &inv)?;
                stats.uploads += 1;
                day_pos += step;
            }
            since_commit += batch;
            if since_commit >= COMMIT_EVERY {
                conn.execute_batch("COMMIT; BEGIN")?;
                since_commit = 0;
            }
            bytes = db_bytes(&conn)?;
            let per_invoice = bytes as f64 / stats.invoices as f64;
            remaining = (target.saturating_sub(bytes) as f64 / per_invoice).max(1.0);
            step = (SPAN_DAYS as f64 - day_pos).max(0.0) / remaining;
        }
        conn.execute(
            "UPDATE counters SET value = ?1 WHERE name = 'invoices'",
            [stats.invoices as i64],
        )?;
        conn.execute_batch("COMMIT")?;
    }

    let mode = match opts.journal_mode {
        JournalMode::Wal => "wal",
        JournalMode::Rollback => "delete",
    };
    let got: String = conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0))?;
    if !got.eq_ignore_ascii_case(mode) {
        return Err(failure(
            ffi::SQLITE_ERROR,
            format!(
                "cannot set journal_mode={mode} on {} (got {got})",
                path.display()
            ),
        ));
    }
    if opts.journal_mode == JournalMode::Wal {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    stats.bytes = db_bytes(&conn)?;
    Ok(stats)
}

/// Invoices between two size checks: a few thousand while far from the target,
/// fewer near it so the file ends close to the requested size.
fn check_interval(remaining_invoices: f64) -> u64 {
    (remaining_invoices / 4.0).clamp(64.0, 4096.0) as u64
}

fn db_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(pages.max(0) as u64 * page_size.max(0) as u64)
}

/// Applies a day of business: about 1% of invoices updated (status change to 'paid' or 'red-flushed', updated_at, and for some of them one line's amount changed with the invoice totals kept equal to the sum of lines), about 0.3% new invoices added (with items and uploads) dated on the day after the latest issue_date. Deterministic by seed. One transaction.
pub fn day_of_business(path: &Path, seed: u64) -> rusqlite::Result<BusinessStats> {
    // No CREATE flag: a wrong path must fail, not produce an empty database.
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // IMMEDIATE: take the write lock up front instead of failing on upgrade.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (count, max_id, latest): (i64, Option<i64>, Option<String>) = tx.query_row(
        "SELECT (SELECT COUNT(*) FROM invoices), (SELECT MAX(id) FROM invoices),
                (SELECT MAX(issue_date) FROM invoices)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let day = match latest {
        Some(s) => {
            let d = parse_date(&s)?;
            d.checked_add_days(Days::new(1)).unwrap_or(d)
        }
        None => first_day(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stats = BusinessStats::default();
    let mut when = String::new();

    if let Some(max_id) = max_id.filter(|&m| m > 0) {
        let wanted = ((count + 50) / 100).max(1) as usize;
        let mut done = HashSet::with_capacity(wanted);
        let mut find =
            tx.prepare_cached("SELECT id FROM invoices WHERE id >= ?1 ORDER BY id LIMIT 1")?;
        // Uniform over the id range, so the changed pages are spread across the
        // whole file like real late payments; bounded in case ids are sparse.
        for _ in 0..wanted * 4 {
            if done.len() >= wanted {
                break;
            }
            let probe = rng.gen_range(1..=max_id);
            let Some(id) = find.query_row([probe], |r| r.get::<_, i64>(0)).optional()? else {
                continue;
            };
            if !done.insert(id) {
                continue;
            }
            let status = if rng.gen_bool(0.85) {
                "paid"
            } else {
                "red-flushed"
            };
            fmt_datetime(
                &mut when,
                day,
                rng.gen_range(8..20),
                rng.gen_range(0..60),
                rng.gen_range(0..60),
            );
            let change_line = rng.gen_bool(0.3);
            change_invoice(&tx, &mut rng, id, &when, Some(status), change_line)?;
            stats.updated += 1;
        }
    }

    let to_add = ((count * 3 + 500) / 1000).max(1);
    {
        let pool = party_pool();
        let mut writer = Writer::new(&tx, false)?;
        let mut numbers = Numbers::default();
        let mut next_id = max_id.unwrap_or(0);
        for _ in 0..to_add {
            next_id += 1;
            add_fresh(&tx, &mut writer, &mut numbers, &mut rng, pool, next_id, day)?;
            stats.added += 1;
        }
    }
    bump_counter(&tx, "invoices", stats.added as i64)?;
    tx.commit()?;
    Ok(stats)
}

/// Checks the invariant every transaction in this module keeps: each invoice's amount_cents equals the sum of its items' amount_cents, tax_cents likewise, total_cents = amount_cents + tax_cents, and counters('invoices') equals the number of invoices. Returns Ok(None) if it holds, Ok(Some(description of the first violation)) otherwise.
pub fn check_invariants(conn: &rusqlite::Connection) -> rusqlite::Result<Option<String>> {
    // Items side: one ordered pass over the invoice_id index, grouped, joined to
    // invoices by primary key. Also catches items of a missing invoice.
    let from_items: Option<(i64, String)> = conn
        .query_row(
            "SELECT s.invoice_id, i.id, i.amount_cents, i.tax_cents, i.total_cents, s.a, s.t
             FROM (SELECT invoice_id, SUM(amount_cents) AS a, SUM(tax_cents) AS t
                   FROM invoice_items GROUP BY invoice_id) AS s
             LEFT JOIN invoices AS i ON i.id = s.invoice_id
             WHERE i.id IS NULL OR i.amount_cents != s.a OR i.tax_cents != s.t
                OR i.total_cents != i.amount_cents + i.tax_cents
             ORDER BY s.invoice_id LIMIT 1",
            [],
            |r| {
                let inv: i64 = r.get(0)?;
                if r.get::<_, Option<i64>>(1)?.is_none() {
                    return Ok((inv, format!("invoice_items reference missing invoice {inv}")));
                }
                let (amount, tax, total): (i64, i64, i64) = (r.get(2)?, r.get(3)?, r.get(4)?);
                let (sum_amount, sum_tax): (i64, i64) = (r.get(5)?, r.get(6)?);
                let msg = if amount != sum_amount {
                    format!("invoice {inv}: amount_cents {amount} != sum of item amount_cents {sum_amount}")
                } else if tax != sum_tax {
                    format!("invoice {inv}: tax_cents {tax} != sum of item tax_cents {sum_tax}")
                } else {
                    format!("invoice {inv}: total_cents {total} != amount_cents {amount} + tax_cents {tax}")
                };
                Ok((inv, msg))
            },
        )
        .optional()?;
    // Invoice side: totals that do not add up, and invoices without any item
    // whose amounts are not zero (the sum over no items).
    let by_invoices: Option<(i64, i64, i64, i64)> = conn
        .query_row(
            "SELECT id, amount_cents, tax_cents, total_cents FROM invoices AS i
             WHERE total_cents != amount_cents + tax_cents
                OR ((amount_cents != 0 OR tax_cents != 0)
                    AND NOT EXISTS (SELECT 1 FROM invoice_items WHERE invoice_id = i.id))
             ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;

    let from_invoices = by_invoices.map(|(id, amount, tax, total)| {
        let msg = if total != amount.wrapping_add(tax) {
            format!("invoice {id}: total_cents {total} != amount_cents {amount} + tax_cents {tax}")
        } else {
            format!("invoice {id}: has no items but amount_cents {amount}, tax_cents {tax}")
        };
        (id, msg)
    });
    let first = match (from_items, from_invoices) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    if let Some((_, msg)) = first {
        return Ok(Some(msg));
    }

    let (counter, count): (Option<i64>, i64) = conn.query_row(
        "SELECT (SELECT value FROM counters WHERE name = 'invoices'), (SELECT COUNT(*) FROM invoices)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(match counter {
        None => Some("counters has no 'invoices' row".to_owned()),
        Some(c) if c != count => Some(format!(
            "counters('invoices') = {c} but there are {count} invoices"
        )),
        Some(_) => None,
    })
}

/// One small transaction a concurrent writer can repeat: inserts one invoice with 1-5 items and one upload, or (every other call) updates one existing invoice's item and totals, keeping the invariant above and bumping counters. `n` selects the invoice deterministically.
pub fn write_one(conn: &mut rusqlite::Connection, n: u64) -> rusqlite::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(n ^ WRITE_ONE_SALT);
    // IMMEDIATE: a deferred read-then-write transaction could fail with BUSY on
    // the lock upgrade, which a busy handler cannot resolve.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (max_id, latest): (Option<i64>, Option<String>) = tx.query_row(
        "SELECT (SELECT MAX(id) FROM invoices), (SELECT MAX(issue_date) FROM invoices)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // "Today" is the latest issue date, so issue dates keep increasing with id.
    let today = match latest {
        Some(s) => parse_date(&s)?,
        None => first_day(),
    };
    match max_id.filter(|&m| m > 0) {
        Some(max_id) if n % 2 == 1 => {
            let probe = rng.gen_range(1..=max_id);
            let id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM invoices WHERE id >= ?1 ORDER BY id LIMIT 1",
                    [probe],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = id {
                let mut when = String::new();
                fmt_datetime(
                    &mut when,
                    today,
                    rng.gen_range(8..20),
                    rng.gen_range(0..60),
                    rng.gen_range(0..60),
                );
                change_invoice(&tx, &mut rng, id, &when, None, true)?;
            }
        }
        _ => {
            let pool = party_pool();
            let mut writer = Writer::new(&tx, false)?;
            let mut numbers = Numbers::default();
            add_fresh(
                &tx,
                &mut writer,
                &mut numbers,
                &mut rng,
                pool,
                max_id.unwrap_or(0) + 1,
                today,
            )?;
            drop(writer);
            bump_counter(&tx, "invoices", 1)?;
        }
    }
    bump_counter(&tx, "writes", 1)?;
    tx.commit()
}

/// Updates one invoice: optionally its status, always `updated_at`, optionally
/// the quantity (hence amount and tax) of one random line; the totals are then
/// recomputed from the lines so the invariant holds whatever the row was.
fn change_invoice(
    conn: &Connection,
    rng: &mut ChaCha8Rng,
    id: i64,
    updated_at: &str,
    status: Option<&str>,
    change_line: bool,
) -> rusqlite::Result<()> {
    if change_line {
        let lines: Vec<(i64, i64, i64, i64)> = {
            let mut stmt = conn.prepare_cached(
                "SELECT id, quantity, unit_price_cents, tax_rate_bp FROM invoice_items
                 WHERE invoice_id = ?1 ORDER BY line_no, id",
            )?;
            let rows =
                stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if !lines.is_empty() {
            let (item, qty, unit, rate) = lines[rng.gen_range(0..lines.len())];
            let mut new_qty = rng.gen_range(1..=20);
            if new_qty == qty {
                new_qty += 1;
            }
            let amount = unit.saturating_mul(new_qty);
            conn.prepare_cached(
                "UPDATE invoice_items SET quantity = ?2, amount_cents = ?3, tax_cents = ?4 WHERE id = ?1",
            )?
            .execute(params![item, new_qty, amount, tax_of(amount, rate)])?;
        }
    }
    conn.prepare_cached(
        "UPDATE invoices SET status = COALESCE(?2, status), updated_at = ?3,
                amount_cents = s.a, tax_cents = s.t, total_cents = s.a + s.t
         FROM (SELECT COALESCE(SUM(amount_cents), 0) AS a, COALESCE(SUM(tax_cents), 0) AS t
               FROM invoice_items WHERE invoice_id = ?1) AS s
         WHERE invoices.id = ?1",
    )?
    .execute(params![id, status, updated_at])?;
    Ok(())
}

/// Adds one fresh ('issued') invoice dated `day` with a free number of a random code.
fn add_fresh(
    conn: &Connection,
    writer: &mut Writer<'_>,
    numbers: &mut Numbers,
    rng: &mut ChaCha8Rng,
    pool: &[Party],
    id: i64,
    day: NaiveDate,
) -> rusqlite::Result<u64> {
    let k = rng.gen_range(0..CODES_PER_YEAR);
    let mut code = String::new();
    invoice_code(&mut code, day.year(), k);
    let no = numbers.take(day.year(), k, &code, Some(conn), rng)?;
    let inv = NewInvoice {
        id,
        code: &code,
        no,
        issue: day,
        horizon: None,
    };
    writer.insert(rng, pool, &inv)
}

fn bump_counter(conn: &Connection, name: &str, by: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO counters (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
    )?
    .execute(params![name, by])?;
    Ok(())
}

/// 1-5 (`MAX_LINES`) lines, about 3 on average.
fn item_count(rng: &mut ChaCha8Rng) -> usize {
    match rng.gen_range(0..100) {
        0..=9 => 1,
        10..=34 => 2,
        35..=64 => 3,
        65..=84 => 4,
        _ => 5,
    }
}

/// Old invoices are mostly paid by the end of the history, recent ones mostly
/// not yet; returns the status and the day of the last change.
fn historic_status(
    rng: &mut ChaCha8Rng,
    issue: NaiveDate,
    horizon: NaiveDate,
) -> (&'static str, NaiveDate) {
    let age = horizon.signed_duration_since(issue).num_days().max(0) as u64;
    let roll = rng.gen_range(0..100);
    let status = if age > 45 {
        match roll {
            0..=87 => "paid",
            88..=92 => "issued",
            93..=96 => "red-flushed",
            _ => "void",
        }
    } else {
        match roll {
            0..=49 => "issued",
            50..=94 => "paid",
            95..=97 => "red-flushed",
            _ => "void",
        }
    };
    let later = if status == "issued" {
        0
    } else {
        rng.gen_range(0..=age.min(45))
    };
    (
        status,
        issue.checked_add_days(Days::new(later)).unwrap_or(issue),
    )
}

/// Half of the invoices carry a remark; returns whether `buf` holds one.
fn remark(rng: &mut ChaCha8Rng, buf: &mut String, year: i32) -> bool {
    buf.clear();
    match rng.gen_range(0..10) {
        0..=4 => return false,
        5 | 6 => {
            let _ = write!(buf, "合同号 HT{year}-{:04}", rng.gen_range(1..2000));
        }
        7 => {
            let _ = write!(buf, "PO-{:06}", rng.gen_range(1..200_000));
        }
        _ => buf.push_str(REMARKS[rng.gen_range(0..REMARKS.len())]),
    }
    true
}

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
