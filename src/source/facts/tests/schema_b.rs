//! The second schema: quoted names with spaces and brackets, Unix-second dates read at
//! +08:00, REAL amounts, a WITHOUT ROWID invoice table with a composite key.

use super::*;

pub(super) const SCHEMA_B: &str = r#"
CREATE TABLE "Sales Invoice [2024]" (
  "Invoice Code" TEXT NOT NULL,
  "Invoice No" INTEGER NOT NULL,
  "Issue Date" INTEGER,
  "Amount (CNY)" REAL,
  "Status" TEXT,
  PRIMARY KEY ("Invoice Code", "Invoice No")
) WITHOUT ROWID;
CREATE TABLE "Line Items" (
  "Line" INTEGER PRIMARY KEY,
  "Invoice Code" TEXT NOT NULL,
  "Invoice No" INTEGER NOT NULL,
  FOREIGN KEY ("Invoice Code", "Invoice No") REFERENCES "Sales Invoice [2024]" ("Invoice Code", "Invoice No")
);
CREATE INDEX "Line Items by invoice" ON "Line Items" ("Invoice Code", "Invoice No");
CREATE TABLE "tax ""uploads""" ("Code" TEXT, "No" INTEGER, "At" INTEGER);
"#;

pub(super) fn description_b() -> Description {
    Description {
        invoice_table: "Sales Invoice [2024]".into(),
        date_column: "Issue Date".into(),
        amount_column: "Amount (CNY)".into(),
        key_columns: vec!["Invoice Code".into(), "Invoice No".into()],
        children: vec![
            child("Line Items", &["Invoice Code", "Invoice No"]),
            child("tax \"uploads\"", &["Code", "No"]),
        ],
        status_column: Some("Status".into()),
        number_column: Some("Invoice No".into()),
        series_column: Some("Invoice Code".into()),
        utc_offset: Some("+08:00".into()),
        list: None,
    }
}

pub(super) struct InvoiceB {
    code: &'static str,
    no: i64,
    secs: i64,
    amount: f64,
    status: &'static str,
    lines: u64,
    uploads: u64,
}

/// Schema B's database with `n` invoices; the first is issued at 2024-03-31T20:00:00Z.
pub(super) fn fill_b(conn: &Connection, n: i64) -> Vec<InvoiceB> {
    conn.execute_batch(SCHEMA_B).unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2024-03-31T20:00:00Z")
        .unwrap()
        .timestamp();
    let mut rng = Lcg(11);
    let mut out = Vec::new();
    for k in 0..n {
        let code = ["A-1", "b 2"][(k % 2) as usize];
        let inv = InvoiceB {
            code,
            no: 1000 + k / 2,
            secs: if k == 0 {
                start
            } else {
                start - 40 * 86400 + rng.next(120 * 86400) as i64
            },
            amount: rng.next(100_000) as f64 / 100.0 + 0.1,
            status: ["Issued", "Red-Letter", "void"][rng.next(3) as usize],
            lines: rng.next(4),
            uploads: rng.next(3),
        };
        conn.execute(
            r#"INSERT INTO "Sales Invoice [2024]" VALUES (?1, ?2, ?3, ?4, ?5)"#,
            params![inv.code, inv.no, inv.secs, inv.amount, inv.status],
        )
        .unwrap();
        for _ in 0..inv.lines {
            conn.execute(
                r#"INSERT INTO "Line Items" ("Invoice Code", "Invoice No") VALUES (?1, ?2)"#,
                params![inv.code, inv.no],
            )
            .unwrap();
        }
        for _ in 0..inv.uploads {
            conn.execute(
                r#"INSERT INTO "tax ""uploads""" VALUES (?1, ?2, 0)"#,
                params![inv.code, inv.no],
            )
            .unwrap();
        }
        out.push(inv);
    }
    out
}

#[test]
fn schema_b_quoted_names_unix_seconds_real_amounts_and_composite_keys() {
    let conn = Connection::open_in_memory().unwrap();
    let invoices = fill_b(&conn, 300);
    let d = description_b();
    assert_eq!(describe_problem(&conn, &d).unwrap(), None);
    let facts = measure(&conn, &d).unwrap();

    let month_of = |secs: i64| {
        chrono::DateTime::from_timestamp(secs + 8 * 3600, 0)
            .unwrap()
            .format("%Y-%m")
            .to_string()
    };
    assert_eq!(month_of(invoices[0].secs), "2024-04");
    #[derive(Default)]
    struct Want {
        invoices: u64,
        total: f64,
        status: BTreeMap<String, (u64, f64)>,
        lines: u64,
        uploads: u64,
    }
    let mut want: BTreeMap<String, Want> = BTreeMap::new();
    for i in &invoices {
        let w = want.entry(month_of(i.secs)).or_default();
        w.invoices += 1;
        w.total += i.amount;
        let s = w.status.entry(i.status.to_string()).or_default();
        s.0 += 1;
        s.1 += i.amount;
        w.lines += i.lines;
        w.uploads += i.uploads;
    }
    let got: Vec<&str> = facts.months.iter().map(|m| m.month.as_str()).collect();
    assert_eq!(got, want.keys().map(String::as_str).collect::<Vec<_>>());
    for m in &facts.months {
        let w = &want[&m.month];
        assert_eq!(m.invoices, w.invoices, "{}", m.month);
        assert!(matches!(m.total, Amount::Real(_)), "{m:?}");
        assert!(m.total.same_as(Amount::Real(w.total)), "{m:?} {}", w.total);
        assert_eq!(
            m.by_status.keys().collect::<Vec<_>>(),
            w.status.keys().collect::<Vec<_>>()
        );
        for (s, (n, t)) in &w.status {
            assert_eq!(m.by_status[s].invoices, *n);
            assert!(m.by_status[s].total.same_as(Amount::Real(*t)));
        }
        assert_eq!(
            m.children,
            BTreeMap::from([
                ("Line Items".to_string(), w.lines),
                ("tax \"uploads\"".to_string(), w.uploads),
            ])
        );
    }

    // Integer numbers per series, without gaps; then a gap.
    let mut numbers: BTreeMap<Option<String>, BTreeSet<i64>> = BTreeMap::new();
    for i in &invoices {
        numbers.entry(Some(i.code.into())).or_default().insert(i.no);
    }
    assert_eq!(facts.series, expected_series(&numbers));
    assert!(facts.series.iter().all(|s| s.missing() == 0));
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute(
        r#"DELETE FROM "Sales Invoice [2024]" WHERE "Invoice Code" = 'b 2' AND "Invoice No" IN (1010, 1011, 1050)"#,
        [],
    )
    .unwrap();
    let facts = measure(&conn, &d).unwrap();
    let b2 = facts
        .series
        .iter()
        .find(|s| s.series.as_deref() == Some("b 2"))
        .unwrap();
    assert_eq!(b2.missing(), 3);
    assert_eq!(
        missing_numbers(&conn, &d, Some("b 2"), 2).unwrap(),
        (3, vec![1010, 1011])
    );
    assert_eq!(
        facts.months.iter().map(|m| m.invoices).sum::<u64>(),
        invoices.len() as u64 - 3
    );

    // The composite key given in another order than the FOREIGN KEY declares it.
    let swapped = Description {
        children: vec![child("Line Items", &["Invoice No", "Invoice Code"])],
        ..d.clone()
    };
    assert_eq!(describe_problem(&conn, &swapped).unwrap(), None);
    let a = measure(&conn, &d).unwrap();
    let b = measure(&conn, &swapped).unwrap();
    for (x, y) in a.months.iter().zip(&b.months) {
        assert_eq!(x.children["Line Items"], y.children["Line Items"]);
    }
}

// ---------------------------------------------------------------------------------------------
// What cannot be measured, in one sentence.
