//! Two invoice schemas of our own for the period restore tests, unlike the demo's and unlike
//! each other in every way the description allows.
//!
//! Schema C (rollback journal): quoted names with spaces, brackets and quotes; a WITHOUT ROWID
//! invoice table with a composite key; TEXT dates as `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS.fff`
//! and ISO 8601 with a zone; NUMERIC amounts; a child linked by its declared composite
//! FOREIGN KEY (no `fk` in the description) with AUTOINCREMENT; a child without a primary
//! key linked by two columns; a trigger on a live table.
//!
//! Schema D (WAL): keywords as names; an AUTOINCREMENT invoice table keyed by a UNIQUE text
//! column; Unix-second dates read at +08:00; integer-cent amounts; a WITHOUT ROWID child with
//! a composite primary key linked by one column.

use rusqlite::{params, Connection};
use std::path::Path;

pub const BUSINESS_C: &str = r#"invoice_table = "Sales Invoice [2024]"
date_column = "Issued At"
amount_column = "Amount"
key_columns = ["Invoice Code", "Invoice No"]
children = [{ table = "Line Items" }, { table = 'tax "uploads"', fk = ["Code", "No"] }]"#;

/// `Issued At` values of schema C: the day they fall on is as written, whatever the zone.
const DATES_C: [&str; 6] = [
    "2024-02-29 23:59:59.999",
    "2024-03-01",
    "2024-03-15 08:00:00",
    "2024-03-31T23:30:00+08:00",
    "2024-03-31 23:59:59.999",
    "2024-04-01T00:30:00-05:00",
];

pub fn schema_c(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        r#"
PRAGMA journal_mode = DELETE;
CREATE TABLE "Sales Invoice [2024]" (
  "Invoice Code" TEXT NOT NULL,
  "Invoice No" INTEGER NOT NULL,
  "Issued At" TEXT,
  "Amount" NUMERIC,
  "Status" TEXT,
  PRIMARY KEY ("Invoice Code", "Invoice No")
) WITHOUT ROWID;
CREATE TABLE "Line Items" (
  "Line" INTEGER PRIMARY KEY AUTOINCREMENT,
  "Invoice Code" TEXT NOT NULL,
  "Invoice No" INTEGER NOT NULL,
  "Qty" REAL,
  FOREIGN KEY ("Invoice Code", "Invoice No") REFERENCES "Sales Invoice [2024]" ("Invoice Code", "Invoice No")
);
CREATE TABLE "tax ""uploads""" ("Code" TEXT, "No" INTEGER, "Receipt" TEXT);
CREATE TABLE "line log" ("what" TEXT);
CREATE TRIGGER "log [lines]" AFTER INSERT ON "Line Items" BEGIN
  INSERT INTO "line log" VALUES ('line ' || NEW."Line");
END;
"#,
    )
    .unwrap();
    for k in 0..60i64 {
        let code = if k % 2 == 0 { "A 1" } else { "B\"2" };
        let date = DATES_C[(k % 6) as usize];
        let amount = format!("{}.{:02}", 100 + k * 7, k % 100);
        c.execute(
            r#"INSERT INTO "Sales Invoice [2024]" VALUES (?1, ?2, ?3, ?4, 'Issued')"#,
            params![code, 1000 + k, date, amount],
        )
        .unwrap();
        for q in 0..(k % 3 + 1) {
            c.execute(
                r#"INSERT INTO "Line Items" ("Invoice Code", "Invoice No", "Qty") VALUES (?1, ?2, ?3)"#,
                params![code, 1000 + k, q as f64 + 0.5],
            )
            .unwrap();
        }
        if k % 2 == 0 {
            c.execute(
                r#"INSERT INTO "tax ""uploads""" VALUES (?1, ?2, ?3)"#,
                params![code, 1000 + k, format!("r{k}")],
            )
            .unwrap();
        }
    }
    c.execute(r#"DELETE FROM "line log""#, []).unwrap();
}

/// Schema C's March, as SQL over the invoice table aliased `i`.
pub const MARCH_C: &str = r#"substr(i."Issued At", 1, 7) = '2024-03'"#;

pub const BUSINESS_D: &str = r#"invoice_table = "order"
date_column = "when"
amount_column = "cents"
key_columns = ["no"]
utc_offset = "+08:00"
children = [{ table = "order line", fk = "order" }]"#;

/// 2024-03-31T16:00:00Z: 2024-04-01 00:00 at +08:00.
pub const APRIL_AT_8: i64 = 1_711_900_800;

pub fn schema_d(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        r#"
PRAGMA journal_mode = WAL;
CREATE TABLE "order" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT,
  "no" TEXT NOT NULL UNIQUE,
  "when" INTEGER,
  "cents" INTEGER,
  "select" TEXT
);
CREATE TABLE "order line" (
  "order" INTEGER NOT NULL REFERENCES "order" ("id"),
  "n" INTEGER NOT NULL,
  "price" REAL,
  PRIMARY KEY ("order", "n")
) WITHOUT ROWID;
"#,
    )
    .unwrap();
    for k in 0..80i64 {
        // From mid-March to mid-April at +08:00, a few on either side of midnight.
        let when = APRIL_AT_8 - 15 * 86_400 + k * 9 * 3_600 + if k % 7 == 0 { -1 } else { 0 };
        c.execute(
            r#"INSERT INTO "order" ("no", "when", "cents", "select") VALUES (?1, ?2, ?3, 'x')"#,
            params![format!("N-{k:04}"), when, 1000 + k * 37],
        )
        .unwrap();
        let id = c.last_insert_rowid();
        for n in 0..(k % 4) {
            c.execute(
                r#"INSERT INTO "order line" VALUES (?1, ?2, ?3)"#,
                params![id, n, n as f64 * 1.25],
            )
            .unwrap();
        }
    }
}

/// Schema D's March at +08:00, as SQL over the invoice table aliased `i`.
pub const MARCH_D: &str =
    r#"strftime('%Y-%m', i."when", 'unixepoch', '28800 seconds') = '2024-03'"#;
