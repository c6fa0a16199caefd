//! Creating a sample database: a bulk load of invoice history up to about the requested size.

use super::*;

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
    let conn = Connection::open(crate::paths::sqlite_filename(path))?;
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
