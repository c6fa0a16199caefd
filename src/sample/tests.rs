use super::*;

fn opts(size_mb: u64, seed: u64, journal_mode: JournalMode) -> GenerateOptions {
    GenerateOptions {
        size_mb,
        seed,
        journal_mode,
    }
}

fn all_invoices(path: &Path) -> Vec<String> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare(
            "SELECT id || '|' || invoice_code || '|' || invoice_no || '|' || issue_date || '|' ||
                    seller_name || '|' || seller_tax_id || '|' || buyer_name || '|' || buyer_tax_id
                    || '|' || amount_cents || '|' || tax_cents || '|' || total_cents || '|' ||
                    currency || '|' || status || '|' || COALESCE(remark, '-') || '|' || updated_at
             FROM invoices ORDER BY id",
        )
        .expect("prepare");
    let rows = stmt.query_map([], |r| r.get(0)).expect("query");
    rows.collect::<rusqlite::Result<Vec<String>>>()
        .expect("rows")
}

#[test]
fn generate_day_of_business_and_invariants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inv.db");
    let stats = generate(&path, &opts(2, 7, JournalMode::Wal)).expect("generate");
    let mib = 1u64 << 20;
    assert!(
        stats.bytes >= 2 * mib && stats.bytes < 2 * mib + mib / 4,
        "{stats:?}"
    );
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), stats.bytes);
    assert!(stats.invoices > 1000, "{stats:?}");
    let per = stats.items as f64 / stats.invoices as f64;
    assert!((2.7..3.4).contains(&per), "{per}");
    assert_eq!(stats.uploads, stats.invoices);

    let conn = Connection::open(&path).expect("open");
    assert_eq!(check_invariants(&conn).expect("check"), None);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
    let (min_d, max_d, items): (String, String, i64) = conn
        .query_row(
            "SELECT MIN(issue_date), MAX(issue_date), (SELECT COUNT(*) FROM invoice_items) FROM invoices",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("dates");
    assert_eq!(min_d, "2023-01-01");
    assert!(
        max_d.as_str() >= "2025-12-01" && max_d.as_str() <= "2025-12-31",
        "{max_d}"
    );
    assert_eq!(items as u64, stats.items);
    let unordered: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM invoices a JOIN invoices b ON b.id = a.id + 1 WHERE b.issue_date < a.issue_date",
            [],
            |r| r.get(0),
        )
        .expect("order");
    assert_eq!(unordered, 0);
    drop(conn);

    assert!(
        generate(&path, &opts(1, 1, JournalMode::Wal)).is_err(),
        "existing file must fail"
    );

    let n = stats.invoices as i64;
    let biz = day_of_business(&path, 42).expect("day");
    assert_eq!(biz.updated as i64, ((n + 50) / 100).max(1));
    assert_eq!(biz.added as i64, ((n * 3 + 500) / 1000).max(1));
    let conn = Connection::open(&path).expect("open");
    assert_eq!(check_invariants(&conn).expect("check"), None);
    let next_day = parse_date(&max_d).expect("date").succ_opt().expect("succ");
    let mut day = String::new();
    fmt_date(&mut day, next_day);
    let (changed, added): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM invoices WHERE id <= ?1 AND updated_at >= ?2),
                    (SELECT COUNT(*) FROM invoices WHERE id > ?1 AND issue_date = ?2)",
            params![n, day],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("counts");
    assert_eq!(changed as u64, biz.updated);
    assert_eq!(added as u64, biz.added);
}

#[test]
fn generation_is_deterministic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        dir.path().join("a.db"),
        dir.path().join("b.db"),
        dir.path().join("c.db"),
    );
    generate(&a, &opts(1, 99, JournalMode::Wal)).expect("a");
    generate(&b, &opts(1, 99, JournalMode::Rollback)).expect("b");
    generate(&c, &opts(1, 100, JournalMode::Wal)).expect("c");
    let (ra, rb, rc) = (all_invoices(&a), all_invoices(&b), all_invoices(&c));
    assert!(!ra.is_empty());
    assert_eq!(ra, rb);
    assert_ne!(ra, rc);
    let conn = Connection::open(&b).expect("open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "delete");
    day_of_business(&a, 5).expect("day a");
    day_of_business(&b, 5).expect("day b");
    assert_eq!(all_invoices(&a), all_invoices(&b));
}

#[test]
fn write_one_keeps_invariant_and_broken_rows_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.db");
    let stats = generate(&path, &opts(1, 3, JournalMode::Wal)).expect("generate");
    let mut conn = Connection::open(&path).expect("open");
    for n in 0..40 {
        write_one(&mut conn, n).expect("write_one");
    }
    assert_eq!(check_invariants(&conn).expect("check"), None);
    let (count, writes): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM invoices), (SELECT value FROM counters WHERE name = 'writes')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("counts");
    assert_eq!(count as u64, stats.invoices + 20);
    assert_eq!(writes, 40);

    conn.execute(
        "UPDATE invoice_items SET amount_cents = amount_cents + 1 WHERE id = 10",
        [],
    )
    .expect("break");
    let msg = check_invariants(&conn).expect("check").expect("violation");
    assert!(msg.contains("amount_cents"), "{msg}");
    conn.execute(
        "UPDATE invoice_items SET amount_cents = amount_cents - 1 WHERE id = 10",
        [],
    )
    .expect("repair");
    assert_eq!(check_invariants(&conn).expect("check"), None);
    conn.execute(
        "UPDATE invoices SET total_cents = total_cents + 1 WHERE id = 5",
        [],
    )
    .expect("break");
    assert!(check_invariants(&conn).expect("check").is_some());
    conn.execute(
        "UPDATE invoices SET total_cents = total_cents - 1 WHERE id = 5",
        [],
    )
    .expect("repair");
    conn.execute(
        "UPDATE counters SET value = value + 1 WHERE name = 'invoices'",
        [],
    )
    .expect("break");
    let msg = check_invariants(&conn).expect("check").expect("violation");
    assert!(msg.contains("counters"), "{msg}");
    conn.execute(
        "UPDATE counters SET value = value - 1 WHERE name = 'invoices'",
        [],
    )
    .expect("repair");

    // An invoice whose items vanished, and items whose invoice vanished.
    let tx = conn.transaction().expect("tx");
    tx.execute("DELETE FROM invoice_items WHERE invoice_id = 7", [])
        .expect("delete");
    let msg = check_invariants(&tx).expect("check").expect("violation");
    assert!(
        msg.contains("invoice 7") && msg.contains("no items"),
        "{msg}"
    );
    tx.rollback().expect("rollback");
    conn.pragma_update(None, "foreign_keys", false)
        .expect("fk off");
    let tx = conn.transaction().expect("tx");
    tx.execute(
        "UPDATE invoice_items SET invoice_id = 999999999 WHERE id = 1",
        [],
    )
    .expect("move");
    let msg = check_invariants(&tx).expect("check").expect("violation");
    assert!(
        msg.contains("missing invoice") || msg.contains("invoice 1:"),
        "{msg}"
    );
    tx.rollback().expect("rollback");
    assert_eq!(check_invariants(&conn).expect("check"), None);
}

#[test]
fn write_one_works_while_a_reader_holds_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.db");
    let stats = generate(&path, &opts(1, 11, JournalMode::Wal)).expect("generate");
    let reader = Connection::open(&path).expect("open reader");
    reader.execute_batch("BEGIN").expect("begin");
    let before: i64 = reader
        .query_row("SELECT COUNT(*) FROM invoices", [], |r| r.get(0))
        .expect("count");
    let mut writer = Connection::open(&path).expect("open writer");
    for n in 0..10 {
        write_one(&mut writer, n).expect("write_one");
    }
    // The reader's snapshot is unaffected and still consistent.
    let during: i64 = reader
        .query_row("SELECT COUNT(*) FROM invoices", [], |r| r.get(0))
        .expect("count");
    assert_eq!(
        (before, during),
        (stats.invoices as i64, stats.invoices as i64)
    );
    assert_eq!(check_invariants(&reader).expect("check"), None);
    reader.execute_batch("COMMIT").expect("commit");
    assert_eq!(check_invariants(&reader).expect("check"), None);
    let after: i64 = reader
        .query_row("SELECT COUNT(*) FROM invoices", [], |r| r.get(0))
        .expect("count");
    assert_eq!(after, before + 5);
}
