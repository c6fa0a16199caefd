//! The facts measured on two very different schemas, against values worked out here in Rust
//! from the rows the tests insert.

use super::*;
use crate::facts::{Amount, ChildTable, Columns, MonthFacts, StatusFacts};
use rusqlite::params;
use std::collections::{BTreeMap, BTreeSet};

/// A small deterministic generator, so the data is varied but the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn child(table: &str, fk: &[&str]) -> ChildTable {
    ChildTable {
        table: table.into(),
        fk: match fk {
            [one] => Columns::One(one.to_string()),
            many => Columns::Many(many.iter().map(|c| c.to_string()).collect()),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Schema A: the demo's shape.

const SCHEMA_A: &str = "
CREATE TABLE invoices (
  id INTEGER PRIMARY KEY,
  invoice_code TEXT NOT NULL,
  invoice_no TEXT NOT NULL,
  issue_date TEXT,
  total_cents INTEGER NOT NULL,
  status TEXT,
  UNIQUE (invoice_code, invoice_no)
);
CREATE TABLE invoice_items (
  id INTEGER PRIMARY KEY,
  invoice_id INTEGER NOT NULL REFERENCES invoices(id),
  amount_cents INTEGER NOT NULL
);
CREATE INDEX invoice_items_invoice ON invoice_items(invoice_id);
CREATE TABLE tax_uploads (
  id INTEGER PRIMARY KEY,
  invoice_id INTEGER NOT NULL REFERENCES invoices(id)
);
CREATE INDEX tax_uploads_invoice ON tax_uploads(invoice_id);
";

fn description_a() -> Description {
    Description {
        invoice_table: "invoices".into(),
        date_column: "issue_date".into(),
        amount_column: "total_cents".into(),
        key_columns: vec!["invoice_code".into(), "invoice_no".into()],
        children: vec![
            child("invoice_items", &["invoice_id"]),
            child("tax_uploads", &["invoice_id"]),
        ],
        status_column: Some("status".into()),
        number_column: Some("invoice_no".into()),
        series_column: Some("invoice_code".into()),
        utc_offset: None,
    }
}

/// One invoice of schema A as inserted.
struct InvoiceA {
    id: i64,
    code: &'static str,
    no: i64,
    month: String,
    date: String,
    total: i64,
    status: Option<&'static str>,
    items: u64,
    uploads: u64,
}

fn database_a(n: i64) -> (Connection, Vec<InvoiceA>) {
    let conn = Connection::open_in_memory().unwrap();
    // Deleting invoices leaves their children behind as orphans.
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute_batch(SCHEMA_A).unwrap();
    let mut rng = Lcg(7);
    let mut next_no: BTreeMap<&str, i64> = BTreeMap::new();
    let mut out = Vec::new();
    for id in 1..=n {
        let code = if rng.next(3) == 0 { "3100" } else { "4400" };
        let no = {
            let e = next_no.entry(code).or_insert(0);
            *e += 1;
            *e
        };
        let month = format!("2024-{:02}", 1 + rng.next(12));
        let day = 1 + rng.next(28);
        let date = match rng.next(3) {
            0 => format!("{month}-{day:02}"),
            1 => format!("{month}-{day:02} 09:{:02}:00", rng.next(60)),
            _ => format!("{month}-{day:02} 23:59:59.{:03}", rng.next(1000)),
        };
        let status = [Some("issued"), Some("paid"), Some("void"), None][rng.next(4) as usize];
        let inv = InvoiceA {
            id,
            code,
            no,
            month,
            date,
            total: rng.next(1_000_000) as i64 - 10_000,
            status,
            items: rng.next(5),
            uploads: rng.next(2),
        };
        conn.execute(
            "INSERT INTO invoices VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                inv.id,
                inv.code,
                format!("{:08}", inv.no),
                inv.date,
                inv.total,
                inv.status
            ],
        )
        .unwrap();
        for _ in 0..inv.items {
            conn.execute(
                "INSERT INTO invoice_items (invoice_id, amount_cents) VALUES (?1, 1)",
                [id],
            )
            .unwrap();
        }
        for _ in 0..inv.uploads {
            conn.execute("INSERT INTO tax_uploads (invoice_id) VALUES (?1)", [id])
                .unwrap();
        }
        out.push(inv);
    }
    (conn, out)
}

/// The months schema A's facts must show, worked out from the invoices themselves.
fn expected_months_a(invoices: &[InvoiceA]) -> Vec<MonthFacts> {
    let mut months: BTreeMap<String, MonthFacts> = BTreeMap::new();
    for inv in invoices {
        let e = months
            .entry(inv.month.clone())
            .or_insert_with(|| MonthFacts {
                month: inv.month.clone(),
                invoices: 0,
                total: Amount::Integer(0),
                by_status: BTreeMap::new(),
                children: BTreeMap::from([
                    ("invoice_items".to_string(), 0),
                    ("tax_uploads".to_string(), 0),
                ]),
            });
        e.invoices += 1;
        e.total = Amount::Integer(e.total.as_f64() as i64 + inv.total);
        let s = e
            .by_status
            .entry(inv.status.unwrap_or("").to_string())
            .or_insert(StatusFacts {
                invoices: 0,
                total: Amount::Integer(0),
            });
        s.invoices += 1;
        s.total = Amount::Integer(s.total.as_f64() as i64 + inv.total);
        *e.children.get_mut("invoice_items").unwrap() += inv.items;
        *e.children.get_mut("tax_uploads").unwrap() += inv.uploads;
    }
    months.into_values().collect()
}

/// Series facts and missing numbers, worked out from the numbers present.
fn expected_series(numbers: &BTreeMap<Option<String>, BTreeSet<i64>>) -> Vec<SeriesFacts> {
    numbers
        .iter()
        .map(|(series, set)| SeriesFacts {
            series: series.clone(),
            count: set.len() as u64,
            min: *set.first().unwrap(),
            max: *set.last().unwrap(),
        })
        .collect()
}

fn gaps(set: &BTreeSet<i64>) -> Vec<i64> {
    let (lo, hi) = (*set.first().unwrap(), *set.last().unwrap());
    (lo..=hi).filter(|n| !set.contains(n)).collect()
}

#[test]
fn schema_a_months_statuses_children_and_series_match_the_rows() {
    let d = description_a();
    let (conn, mut invoices) = database_a(400);
    assert_eq!(describe_problem(&conn, &d).unwrap(), None);
    let facts = measure(&conn, &d).unwrap();
    assert_eq!(facts.description, d);
    assert_eq!(facts.months, expected_months_a(&invoices));

    // Delete a few invoices in the middle of series 4400 and the last of 3100; their children
    // stay behind as orphans, which belong to no month.
    let last_3100 = invoices
        .iter()
        .filter(|i| i.code == "3100")
        .map(|i| i.no)
        .max();
    let gone: Vec<(&str, i64)> = vec![
        ("4400", 5),
        ("4400", 6),
        ("4400", 17),
        ("4400", 101),
        ("4400", 102),
        ("4400", 103),
        ("3100", last_3100.unwrap()),
        ("3100", 1),
        ("3100", 3),
    ];
    for (code, no) in &gone {
        let n = conn
            .execute(
                "DELETE FROM invoices WHERE invoice_code = ?1 AND invoice_no = ?2",
                params![code, format!("{no:08}")],
            )
            .unwrap();
        assert_eq!(n, 1, "{code} {no}");
    }
    invoices.retain(|i| !gone.contains(&(i.code, i.no)));

    let facts = measure(&conn, &d).unwrap();
    assert_eq!(facts.months, expected_months_a(&invoices));
    let mut numbers: BTreeMap<Option<String>, BTreeSet<i64>> = BTreeMap::new();
    for i in &invoices {
        numbers
            .entry(Some(i.code.to_string()))
            .or_default()
            .insert(i.no);
    }
    assert_eq!(facts.series, expected_series(&numbers));
    for s in &facts.series {
        let set = &numbers[&s.series];
        let want = gaps(set);
        assert_eq!(s.missing(), want.len() as u64, "{:?}", s.series);
        let (count, first) = missing_numbers(&conn, &d, s.series.as_deref(), 4).unwrap();
        assert_eq!(count, want.len() as u64);
        assert_eq!(first, want[..want.len().min(4)]);
    }
    // The gaps are exactly the numbers deleted inside each series.
    let (count, first) = missing_numbers(&conn, &d, Some("4400"), 100).unwrap();
    assert_eq!((count, first), (6, vec![5, 6, 17, 101, 102, 103]));
    let (count, first) = missing_numbers(&conn, &d, Some("3100"), 100).unwrap();
    assert_eq!((count, first), (1, vec![3]));
    // A series that does not exist has nothing missing.
    assert_eq!(
        missing_numbers(&conn, &d, Some("9999"), 10).unwrap(),
        (0, vec![])
    );

    // Without a series column, all numbers form one series (the same number in two series
    // counts once).
    let one = Description {
        series_column: None,
        ..d.clone()
    };
    let all: BTreeSet<i64> = invoices.iter().map(|i| i.no).collect();
    let facts = measure(&conn, &one).unwrap();
    assert_eq!(
        facts.series,
        expected_series(&BTreeMap::from([(None, all.clone())]))
    );
    let want = gaps(&all);
    assert_eq!(
        missing_numbers(&conn, &one, None, 3).unwrap(),
        (want.len() as u64, want[..want.len().min(3)].to_vec())
    );
    // Without a number column there are no series.
    let none = Description {
        number_column: None,
        ..d
    };
    assert!(measure(&conn, &none).unwrap().series.is_empty());
    assert_eq!(missing_numbers(&conn, &none, None, 3).unwrap(), (0, vec![]));
}

// ---------------------------------------------------------------------------------------------
// Dates in every form in one column.

#[test]
fn dates_in_every_form_fall_in_their_months_and_the_rest_in_unknown() {
    let conn = Connection::open_in_memory().unwrap();
    // No declared type: every value keeps its own type.
    conn.execute_batch("CREATE TABLE inv (id INTEGER PRIMARY KEY, d, amount INTEGER)")
        .unwrap();
    let offset = 8 * 3600;
    let unix_month = |secs: i64| {
        chrono::DateTime::from_timestamp(secs + offset, 0)
            .unwrap()
            .format("%Y-%m")
            .to_string()
    };
    // 2024-03-31T20:00:00Z: still March in UTC, April at +08:00.
    let evening = chrono::DateTime::parse_from_rfc3339("2024-03-31T20:00:00Z")
        .unwrap()
        .timestamp();
    let values: Vec<(rusqlite::types::Value, String)> = {
        use rusqlite::types::Value::*;
        vec![
            (Text("2024-01-15".into()), "2024-01".into()),
            (Text("2024-02-29 13:45:00".into()), "2024-02".into()),
            (Text("2024-02-01 00:00:00.123".into()), "2024-02".into()),
            // The month as written, whatever the zone.
            (Text("2024-03-31T23:30:00+08:00".into()), "2024-03".into()),
            (Text("2024-03-31T20:00:00Z".into()), "2024-03".into()),
            (Text("2024-12-31T23:59:59-05:00".into()), "2024-12".into()),
            (Integer(evening), unix_month(evening)),
            (Text(evening.to_string()), unix_month(evening)),
            (Real(evening as f64 + 0.5), unix_month(evening)),
            (Integer(0), unix_month(0)),
            (Null, UNKNOWN_MONTH.into()),
            (Text("garbage".into()), UNKNOWN_MONTH.into()),
            (Text("2024-13-45".into()), UNKNOWN_MONTH.into()),
            (Text("2024-03-15garbage".into()), UNKNOWN_MONTH.into()),
            (Text("".into()), UNKNOWN_MONTH.into()),
            (Text("2024".into()), UNKNOWN_MONTH.into()),
            (Blob(vec![1, 2, 3]), UNKNOWN_MONTH.into()),
        ]
    };
    assert_eq!(unix_month(evening), "2024-04");
    let mut want: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for (k, (v, month)) in values.iter().enumerate() {
        let amount = 100 * (k as i64 + 1);
        conn.execute(
            "INSERT INTO inv (d, amount) VALUES (?1, ?2)",
            params![v, amount],
        )
        .unwrap();
        let e = want.entry(month.clone()).or_default();
        e.0 += 1;
        e.1 += amount;
    }
    let d = Description {
        invoice_table: "inv".into(),
        date_column: "d".into(),
        amount_column: "amount".into(),
        key_columns: vec!["id".into()],
        children: vec![],
        status_column: None,
        number_column: None,
        series_column: None,
        utc_offset: Some("+08:00".into()),
    };
    assert_eq!(describe_problem(&conn, &d).unwrap(), None);
    let got: BTreeMap<String, (u64, i64)> = measure(&conn, &d)
        .unwrap()
        .months
        .into_iter()
        .map(|m| {
            assert!(m.by_status.is_empty() && m.children.is_empty());
            let Amount::Integer(t) = m.total else {
                panic!("{m:?}")
            };
            (m.month, (m.invoices, t))
        })
        .collect();
    assert_eq!(got, want);

    // A negative offset moves Unix seconds the other way.
    let west = Description {
        utc_offset: Some("-05:30".into()),
        ..d
    };
    let facts = measure(&conn, &west).unwrap();
    let epoch = facts
        .months
        .iter()
        .find(|m| m.month == "1969-12")
        .expect("Unix second 0 at -05:30 is in December 1969");
    assert_eq!(epoch.invoices, 1);
}

// ---------------------------------------------------------------------------------------------
// Schema B: quoted names, Unix seconds, REAL amounts, WITHOUT ROWID with a composite key.

const SCHEMA_B: &str = r#"
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

fn description_b() -> Description {
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
    }
}

struct InvoiceB {
    code: &'static str,
    no: i64,
    secs: i64,
    amount: f64,
    status: &'static str,
    lines: u64,
    uploads: u64,
}

/// Schema B's database with `n` invoices; the first is issued at 2024-03-31T20:00:00Z.
fn fill_b(conn: &Connection, n: i64) -> Vec<InvoiceB> {
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
#[ignore = "needs a demo database in IVAULT_FACTS_DB"]
fn measure_speed_on_a_demo_database() {
    let path = std::env::var("IVAULT_FACTS_DB").expect("IVAULT_FACTS_DB");
    let conn =
        Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let d = description_a();
    let bytes = std::fs::metadata(&path).unwrap().len();
    // Where the time goes: months alone, then with each child, then with the series.
    let months_only = Description {
        children: vec![],
        number_column: None,
        ..d.clone()
    };
    let parts = [
        ("months", months_only.clone()),
        (
            "months + invoice_items",
            Description {
                children: vec![d.children[0].clone()],
                ..months_only.clone()
            },
        ),
        (
            "months + tax_uploads",
            Description {
                children: vec![d.children[1].clone()],
                ..months_only.clone()
            },
        ),
        (
            "months + series",
            Description {
                number_column: d.number_column.clone(),
                ..months_only
            },
        ),
    ];
    for (name, part) in &parts {
        let t = std::time::Instant::now();
        measure(&conn, part).unwrap();
        eprintln!("{name}: {:?}", t.elapsed());
    }
    for round in 0..2 {
        let t = std::time::Instant::now();
        let facts = measure(&conn, &d).unwrap();
        let measured = t.elapsed();
        let t = std::time::Instant::now();
        let missing = facts
            .series
            .iter()
            .map(|s| {
                missing_numbers(&conn, &d, s.series.as_deref(), 10)
                    .unwrap()
                    .0
            })
            .sum::<u64>();
        eprintln!(
            "round {round}: measure {measured:?} ({} months, {} invoices), missing_numbers {:?} ({missing} missing), {} MiB",
            facts.months.len(),
            facts.months.iter().map(|m| m.invoices).sum::<u64>(),
            t.elapsed(),
            bytes >> 20
        );
    }
}

/// The one-pass merge of child rows must count exactly what the SQL join counts: orphans and
/// NULL keys count nowhere, a key stored as text still joins (the merge hands that child to
/// the join), and series ranges from a UNIQUE index equal the DISTINCT query's.
#[test]
fn the_single_pass_counts_what_the_joins_count() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE inv (id INTEGER PRIMARY KEY, d TEXT, amt INTEGER, code TEXT, no TEXT, UNIQUE (code, no));
         CREATE TABLE items (inv_id INTEGER);
         CREATE INDEX items_inv ON items (inv_id);
         CREATE TABLE loose (inv_id);",
    )
    .unwrap();
    let mut rng = Lcg(7);
    for id in 1..=500i64 {
        let month = 1 + rng.next(12);
        conn.execute(
            "INSERT INTO inv VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                format!("2024-{month:02}-15"),
                rng.next(10_000) as i64,
                format!("S{}", id % 3),
                format!("{:08}", 1000 + id)
            ],
        )
        .unwrap();
        for _ in 0..rng.next(4) {
            conn.execute("INSERT INTO items VALUES (?1)", [id]).unwrap();
        }
        // Every seventh loose row's key is text: SQL still joins it by value.
        if id % 7 == 0 {
            conn.execute("INSERT INTO loose VALUES (?1)", [id.to_string()])
                .unwrap();
        } else {
            conn.execute("INSERT INTO loose VALUES (?1)", [id]).unwrap();
        }
    }
    conn.execute_batch(
        "INSERT INTO items VALUES (NULL), (9999), (-3); INSERT INTO loose VALUES (NULL), (777777);",
    )
    .unwrap();
    let d = Description {
        invoice_table: "inv".into(),
        date_column: "d".into(),
        amount_column: "amt".into(),
        key_columns: vec!["code".into(), "no".into()],
        children: vec![
            ChildTable {
                table: "items".into(),
                fk: Columns::One("inv_id".into()),
            },
            ChildTable {
                table: "loose".into(),
                fk: Columns::One("inv_id".into()),
            },
        ],
        status_column: None,
        number_column: Some("no".into()),
        series_column: Some("code".into()),
        utc_offset: None,
    };
    let f = measure(&conn, &d).unwrap();
    for table in ["items", "loose"] {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT substr(i.d, 1, 7), count(*) FROM {table} c JOIN inv i ON c.inv_id = i.id GROUP BY 1"
            ))
            .unwrap();
        let joined: BTreeMap<String, u64> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let got: BTreeMap<String, u64> = f
            .months
            .iter()
            .map(|m| (m.month.clone(), m.children[table]))
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(got, joined, "{table}");
    }
    let mut distinct = conn
        .prepare("SELECT code, count(DISTINCT CAST(no AS INTEGER)), min(CAST(no AS INTEGER)), max(CAST(no AS INTEGER)) FROM inv GROUP BY 1 ORDER BY 1")
        .unwrap();
    let want: Vec<SeriesFacts> = distinct
        .query_map([], |r| {
            Ok(SeriesFacts {
                series: r.get(0)?,
                count: r.get::<_, i64>(1)? as u64,
                min: r.get(2)?,
                max: r.get(3)?,
            })
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(f.series, want);
}
