//! The facts measured on two very different schemas, against values worked out here in Rust
//! from the rows the tests insert.

use super::*;
use crate::facts::{Amount, ChildTable, Columns, MonthFacts, StatusFacts};
use rusqlite::params;
use std::collections::{BTreeMap, BTreeSet};

mod edges;
mod schema_b;

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
        list: None,
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
        list: None,
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
        list: None,
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
