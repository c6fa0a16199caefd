//! Changes to an existing sample database, each one transaction that keeps the invariant of
//! [`check_invariants`]: a whole day of business, or one small write a concurrent writer repeats.

use super::*;

/// Applies a day of business: about 1% of invoices updated (status change to 'paid' or 'red-flushed', updated_at, and for some of them one line's amount changed with the invoice totals kept equal to the sum of lines), about 0.3% new invoices added (with items and uploads) dated on the day after the latest issue_date. Deterministic by seed. One transaction.
pub fn day_of_business(path: &Path, seed: u64) -> rusqlite::Result<BusinessStats> {
    // No CREATE flag: a wrong path must fail, not produce an empty database.
    let mut conn = Connection::open_with_flags(
        crate::paths::sqlite_filename(path),
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

/// One small transaction a concurrent writer can repeat: inserts one invoice with 1-5 items and one upload, or (every other call) updates one existing invoice's item and totals, keeping the invariant of [`check_invariants`] and bumping counters. `n` selects the invoice deterministically.
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
