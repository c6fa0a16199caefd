//! Edges: problem sentences, numbers and totals at the limits of their types, and SQLite's
//! check on a healthy and a damaged file.

use super::schema_b::{description_b, fill_b};
use super::*;

#[test]
fn problems_are_one_sentence_each() {
    let (conn, _) = database_a(3);
    let d = description_a();
    let problem = |d: &Description| describe_problem(&conn, d).unwrap();

    let missing_table = Description {
        invoice_table: "receipts".into(),
        ..d.clone()
    };
    assert_eq!(
        problem(&missing_table).as_deref(),
        Some(r#"the invoice table "receipts" does not exist"#)
    );
    let table_typo = Description {
        invoice_table: "invoice".into(),
        ..d.clone()
    };
    assert_eq!(
        problem(&table_typo).as_deref(),
        Some(r#"the invoice table "invoice" does not exist (did you mean "invoices"?)"#)
    );
    let missing_column = Description {
        amount_column: "grand_total".into(),
        ..d.clone()
    };
    assert_eq!(
        problem(&missing_column).as_deref(),
        Some(r#"amount_column "grand_total" is not a column of the invoice table "invoices""#)
    );
    let column_typo = Description {
        date_column: "isue_date".into(),
        ..d.clone()
    };
    assert_eq!(
        problem(&column_typo).as_deref(),
        Some(
            r#"date_column "isue_date" is not a column of the invoice table "invoices" (did you mean "issue_date"?)"#
        )
    );
    // Column names are matched without regard to case, as SQLite does.
    let case = Description {
        date_column: "Issue_Date".into(),
        ..d.clone()
    };
    assert_eq!(problem(&case), None);
    let child_typo = Description {
        children: vec![child("invoice_item", &["invoice_id"])],
        ..d.clone()
    };
    assert_eq!(
        problem(&child_typo).as_deref(),
        Some(r#"the child table "invoice_item" does not exist (did you mean "invoice_items"?)"#)
    );
    let fk_typo = Description {
        children: vec![child("tax_uploads", &["invoiceid"])],
        ..d.clone()
    };
    assert_eq!(
        problem(&fk_typo).as_deref(),
        Some(
            r#"fk "invoiceid" is not a column of the child table "tax_uploads" (did you mean "invoice_id"?)"#
        )
    );
    let offset = Description {
        utc_offset: Some("8".into()),
        ..d
    };
    assert_eq!(
        problem(&offset).as_deref(),
        Some(r#"utc_offset "8" is not an offset such as "+08:00""#)
    );

    // A one-column link into a table with a composite key cannot be told.
    let conn = Connection::open_in_memory().unwrap();
    fill_b(&conn, 2);
    let unlinked = Description {
        children: vec![child("tax \"uploads\"", &["No"])],
        ..description_b()
    };
    assert_eq!(
        describe_problem(&conn, &unlinked).unwrap().as_deref(),
        Some(
            r#"cannot tell which columns of the invoice table "Sales Invoice [2024]" the child table "tax ""uploads"""'s "No" refer to; declare a FOREIGN KEY"#
        )
    );
    // measure says the same when asked directly.
    let e = measure(&conn, &unlinked).unwrap_err().to_string();
    assert!(e.starts_with("cannot tell which columns"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Edges of numbers and amounts.

#[test]
fn numbers_spanning_all_of_i64_do_not_overflow() {
    let s = SeriesFacts {
        series: None,
        count: 2,
        min: i64::MIN,
        max: i64::MAX,
    };
    assert_eq!(s.missing(), u64::MAX - 1);
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE inv (id INTEGER PRIMARY KEY, d TEXT, a INTEGER, n INTEGER)")
        .unwrap();
    for n in [i64::MIN, -1, 1, i64::MAX] {
        conn.execute(
            "INSERT INTO inv (d, a, n) VALUES ('2024-01-01', 1, ?1)",
            [n],
        )
        .unwrap();
    }
    let d = Description {
        invoice_table: "inv".into(),
        date_column: "d".into(),
        amount_column: "a".into(),
        key_columns: vec!["id".into()],
        children: vec![],
        status_column: None,
        number_column: Some("n".into()),
        series_column: None,
        utc_offset: None,
        list: None,
    };
    let facts = measure(&conn, &d).unwrap();
    assert_eq!(facts.series[0].missing(), u64::MAX - 3);
    let (count, first) = missing_numbers(&conn, &d, None, 3).unwrap();
    assert_eq!(count, u64::MAX - 3);
    assert_eq!(first, vec![i64::MIN + 1, i64::MIN + 2, i64::MIN + 3]);
}

#[test]
fn amounts_that_overflow_to_infinity_are_refused_not_recorded() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE inv (id INTEGER PRIMARY KEY, d TEXT, a REAL);
         INSERT INTO inv (d, a) VALUES ('2024-01-01', 1e308), ('2024-01-02', 1e308);",
    )
    .unwrap();
    let d = Description {
        invoice_table: "inv".into(),
        date_column: "d".into(),
        amount_column: "a".into(),
        key_columns: vec!["id".into()],
        children: vec![],
        status_column: None,
        number_column: None,
        series_column: None,
        utc_offset: None,
        list: None,
    };
    let e = measure(&conn, &d).unwrap_err().to_string();
    assert!(e.contains("2024-01") && e.contains("finite"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// SQLite's check.

/// Makes the b-tree of table `b` the same pages as table `a`'s: quick_check finds the second
/// reference and the orphaned page, while every table still reads.
fn corrupt(conn: &Connection) {
    conn.execute_batch(
        "CREATE TABLE a (x); CREATE TABLE b (y);
         INSERT INTO a VALUES (1), (2); INSERT INTO b VALUES (3);
         PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET rootpage = (SELECT rootpage FROM sqlite_schema WHERE name = 'a') WHERE name = 'b';
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
}

#[test]
fn the_check_reports_ok_or_the_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA_A).unwrap();
    assert_eq!(run_check(&conn, CheckLevel::Off).unwrap(), None);
    for level in [CheckLevel::Quick, CheckLevel::Full] {
        let c = run_check(&conn, level).unwrap().unwrap();
        assert!(c.ok && c.problems.is_empty(), "{c:?}");
    }
    corrupt(&conn);
    drop(conn);
    let conn = Connection::open(&path).unwrap();
    // Every table still reads: a backup can still take it.
    crate::source::count_rows(&conn).unwrap();
    let c = run_check(&conn, CheckLevel::Quick).unwrap().unwrap();
    assert_eq!(c.pragma, "quick_check");
    assert!(!c.ok, "{c:?}");
    assert!(!c.problems.is_empty() && c.problems.len() <= SOURCE_CHECK_PROBLEMS);
    assert!(c.problems.iter().all(|p| !p.starts_with("***")), "{c:?}");
    let c = run_check(&conn, CheckLevel::Full).unwrap().unwrap();
    assert_eq!(c.pragma, "integrity_check");
    assert!(!c.ok);
}

// ---------------------------------------------------------------------------------------------
// Speed on a demo database: `IVAULT_FACTS_DB=demo.sqlite cargo test --lib facts -- --ignored`
// (make one with `ivault demo generate --out demo.sqlite --size-mb 256`).

#[test]
fn a_child_without_fk_follows_its_declared_foreign_key_and_days_read_like_months() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        r#"CREATE TABLE inv (code TEXT, no INTEGER, d, amount INTEGER, PRIMARY KEY (code, no)) WITHOUT ROWID;
           CREATE TABLE line (id INTEGER PRIMARY KEY, c TEXT, n INTEGER,
             FOREIGN KEY (c, n) REFERENCES inv (code, no));
           INSERT INTO inv VALUES ('a', 1, '2024-03-31T23:30:00+08:00', 1), ('a', 2, 1711900800, 2),
             ('a', 3, '2024-02-29 23:59:59.999', 3), ('a', 4, '1711900799', 4);"#,
    )
    .unwrap();
    let d = Description {
        invoice_table: "inv".into(),
        date_column: "d".into(),
        amount_column: "amount".into(),
        key_columns: vec!["code".into(), "no".into()],
        children: vec![ChildTable {
            table: "line".into(),
            fk: Columns::default(),
        }],
        status_column: None,
        number_column: None,
        series_column: None,
        utc_offset: Some("+08:00".into()),
        list: None,
    };
    assert_eq!(describe_problem(&conn, &d).unwrap(), None);
    let pairs = link(&conn, &d, &d.children[0]).unwrap().unwrap();
    assert_eq!(
        pairs,
        vec![
            ("c".to_string(), "code".to_string()),
            ("n".into(), "no".into())
        ]
    );
    let days: Vec<String> = conn
        .prepare(&format!(
            "SELECT {} FROM inv AS i ORDER BY no",
            day_expr(&d, "i")
        ))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        days,
        ["2024-03-31", "2024-04-01", "2024-02-29", "2024-03-31"]
    );
}
