//! A second invoice schema, unlike the demo's in every way a business description must cope
//! with: quoted names with spaces, brackets and mixed case; dates as Unix seconds (read in
//! +08:00); REAL amounts; a `WITHOUT ROWID` invoice table with a composite key; one child
//! linked by a declared composite foreign key and one linked without a declared key.

use rusqlite::{params, Connection};
use std::collections::BTreeMap;
use std::path::Path;

/// The description of this schema, as a policy's `[source.business]`.
pub const BUSINESS: &str = r#"
[source.business]
invoice_table = "Sales Invoice [2024]"
date_column = "Issue Date"
amount_column = "Amount (CNY)"
key_columns = ["Invoice Code", "Invoice No"]
children = [{ table = "Line Items", fk = ["Invoice Code", "Invoice No"] }, { table = "audit trail", fk = ["code", "no"] }]
status_column = "State"
series_column = "Invoice Code"
number_column = "Invoice No"
utc_offset = "+08:00"
"#;

/// Creates the database at `path` (WAL mode) and returns, per month in +08:00, the invoice
/// count and total, computed here from the rows inserted.
pub fn create(path: &Path) -> Vec<(String, u64, f64)> {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        r#"PRAGMA journal_mode = WAL;
        CREATE TABLE "Sales Invoice [2024]" (
          "Invoice Code" TEXT NOT NULL, "Invoice No" INTEGER NOT NULL,
          "Issue Date" INTEGER NOT NULL, "Amount (CNY)" REAL NOT NULL, "State" TEXT,
          PRIMARY KEY ("Invoice Code", "Invoice No")) WITHOUT ROWID;
        CREATE TABLE "Line Items" (
          "Line Id" INTEGER PRIMARY KEY, "Invoice Code" TEXT NOT NULL, "Invoice No" INTEGER NOT NULL,
          "What" TEXT,
          FOREIGN KEY ("Invoice Code", "Invoice No") REFERENCES "Sales Invoice [2024]" ("Invoice Code", "Invoice No"));
        CREATE TABLE "audit trail" (code TEXT, no INTEGER, note TEXT);"#,
    )
    .unwrap();
    let mut months: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    // 2024-01-01T00:00:00Z, then every 7.3 hours for 900 invoices: about ten months, with
    // invoices near midnight UTC that fall into the next day (and month) in +08:00.
    let start = 1_704_067_200i64;
    let tx = c.unchecked_transaction().unwrap();
    for i in 0..900i64 {
        let t = start + i * 26_280;
        let code = if i % 3 == 0 { "A-01" } else { "B-02" };
        let amount = (i as f64) * 1.25 + 0.1;
        let state = ["open", "paid", "void"][(i % 3) as usize];
        tx.execute(
            r#"INSERT INTO "Sales Invoice [2024]" VALUES (?1, ?2, ?3, ?4, ?5)"#,
            params![code, 1000 + i, t, amount, state],
        )
        .unwrap();
        for line in 0..(i % 4) {
            tx.execute(
                r#"INSERT INTO "Line Items" ("Invoice Code", "Invoice No", "What") VALUES (?1, ?2, ?3)"#,
                params![code, 1000 + i, format!("line {line}")],
            )
            .unwrap();
        }
        tx.execute(
            r#"INSERT INTO "audit trail" VALUES (?1, ?2, 'created')"#,
            params![code, 1000 + i],
        )
        .unwrap();
        let local = chrono::DateTime::from_timestamp(t + 8 * 3600, 0).unwrap();
        let e = months
            .entry(local.format("%Y-%m").to_string())
            .or_insert((0, 0.0));
        e.0 += 1;
        e.1 += amount;
    }
    tx.commit().unwrap();
    months.into_iter().map(|(m, (n, t))| (m, n, t)).collect()
}
