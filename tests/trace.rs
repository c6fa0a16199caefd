//! `ivault trace` with the real binary, on two schemas: an invoice is followed through a
//! sequence of snapshots (present, changed, unchanged, missing, still missing, back), with the
//! status and amount each snapshot holds, and the first snapshot it is missing from.

mod common;
use common::{Env, DEMO_BUSINESS};
use invoice_vault::sample::JournalMode;
use rusqlite::Connection;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A WITHOUT ROWID table with a composite text key, names that need quoting, Unix-second
/// dates and REAL amounts, in rollback-journal mode.
const LEDGER_BUSINESS: &str = r#"
[source.business]
invoice_table = "Sales Invoice"
date_column = "Issued At"
amount_column = "Amount (CNY)"
key_columns = ["Code", "No"]
status_column = "State"
utc_offset = "+08:00"
"#;

/// A table with no index at all: its key is a plain column.
const BILLS_BUSINESS: &str = r#"
[source.business]
invoice_table = "bills"
date_column = "issued"
amount_column = "amount"
key_columns = ["ref"]
status_column = "state"
"#;

struct Setup {
    env: Env,
    key: String,
    repo: String,
    db: PathBuf,
    policy: String,
    snapshots: Vec<String>,
}

fn setup(db: PathBuf, env: Env, business: &str) -> Setup {
    let (key, repo) = env.key_and_repo();
    let policy = env.path("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[source]]\nname = \"books\"\npath = {db:?}\n{business}\n[[target]]\nname = \"local\"\nurl = {repo:?}\n[encryption]\nidentity_file = {key:?}\n"
        ),
    )
    .unwrap();
    Setup {
        env,
        key,
        repo,
        db,
        policy: policy.to_str().unwrap().to_string(),
        snapshots: Vec::new(),
    }
}

impl Setup {
    fn backup(&mut self, change: &str) {
        if !change.is_empty() {
            let c = Connection::open(&self.db).unwrap();
            c.execute_batch(change).unwrap();
        }
        let r = self
            .env
            .run(&["backup", "books", "--policy", &self.policy, "--json"])
            .ok()
            .json();
        self.snapshots
            .push(r[0]["snapshot_id"].as_str().unwrap().to_string());
    }

    fn trace(&self, invoice: &str) -> Value {
        self.run_trace(invoice, &["--json"]).ok().json()
    }

    /// `trace` of `invoice` with `extra` arguments, however it ends.
    fn run_trace(&self, invoice: &str, extra: &[&str]) -> common::Run {
        let mut args = vec![
            "trace",
            "books",
            "--invoice",
            invoice,
            "--repo",
            &self.repo,
            "--identity",
            &self.key,
        ];
        args.extend_from_slice(extra);
        self.env.run(&args)
    }
}

fn changes(v: &Value) -> Vec<String> {
    v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["change"].as_str().unwrap().to_string())
        .collect()
}

fn column(v: &Value, name: &str) -> Vec<Value> {
    v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[name].clone())
        .collect()
}

#[test]
fn an_invoice_is_followed_from_present_through_changed_to_missing() {
    let env = Env::new();
    let db = env.database("books.sqlite", 2, JournalMode::Wal);
    let mut s = setup(db, env, DEMO_BUSINESS);
    let (code, no, amount, status): (String, String, i64, String) = Connection::open(&s.db)
        .unwrap()
        .query_row(
            "SELECT invoice_code, invoice_no, total_cents, status FROM invoices ORDER BY id LIMIT 1 OFFSET 40",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    let key = format!("{code}/{no}");
    let matching = format!("invoice_code = '{code}' AND invoice_no = '{no}'");
    s.backup("");
    s.backup(&format!(
        "UPDATE invoices SET total_cents = total_cents + 500, status = 'red-flushed' WHERE {matching}"
    ));
    // Other invoices change; this one does not.
    s.backup("UPDATE invoices SET remark = 'x' WHERE id % 50 = 1");
    s.backup(&format!(
        "DELETE FROM invoice_items WHERE invoice_id IN (SELECT id FROM invoices WHERE {matching});
         DELETE FROM tax_uploads WHERE invoice_id IN (SELECT id FROM invoices WHERE {matching});
         DELETE FROM invoices WHERE {matching};"
    ));
    s.backup("UPDATE invoices SET remark = 'y' WHERE id % 50 = 2");

    let v = s.trace(&key);
    assert_eq!(
        changes(&v),
        [
            "first seen",
            "changed",
            "unchanged",
            "missing",
            "still missing"
        ]
    );
    let ids: Vec<Value> = s
        .snapshots
        .iter()
        .map(|i| Value::from(i.as_str()))
        .collect();
    assert_eq!(column(&v, "snapshot"), ids);
    assert_eq!(
        column(&v, "amount"),
        [
            Value::from(amount.to_string()),
            Value::from((amount + 500).to_string()),
            Value::from((amount + 500).to_string()),
            Value::Null,
            Value::Null
        ]
    );
    assert_eq!(column(&v, "status")[0], Value::from(status));
    assert_eq!(column(&v, "status")[1], Value::from("red-flushed"));
    assert_eq!(v["first_missing"], Value::from(s.snapshots[3].as_str()));

    // The table for people says the same.
    let text = s.run_trace(&key, &[]).ok().stdout;
    assert!(
        text.contains(&format!("first missing from snapshot {}", s.snapshots[3])),
        "{text}"
    );
    // Snapshots are read in place: no scratch copy is made, none is left.
    assert!(s.env.files_named("trace-").is_empty());
}

#[test]
fn a_composite_key_on_a_second_schema_is_seen_absent_new_missing_and_back() {
    let env = Env::new();
    let db = env.path("ledger.sqlite");
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=DELETE;
             CREATE TABLE \"Sales Invoice\" (\"Code\" TEXT NOT NULL, \"No\" TEXT NOT NULL,
               \"Issued At\" INTEGER NOT NULL, \"Amount (CNY)\" REAL NOT NULL, \"State\" TEXT,
               PRIMARY KEY (\"Code\", \"No\")) WITHOUT ROWID;",
        )
        .unwrap();
        for i in 0..500 {
            c.execute(
                "INSERT INTO \"Sales Invoice\" VALUES (?1, ?2, ?3, ?4, 'open')",
                rusqlite::params![
                    format!("A-{}", i % 3),
                    format!("{i:08}"),
                    1_711_915_200 - i * 3600,
                    100.25 + i as f64
                ],
            )
            .unwrap();
        }
    }
    let mut s = setup(db, env, LEDGER_BUSINESS);
    let row = "\"Code\" = 'B-7' AND \"No\" = '00000123'";
    s.backup("");
    s.backup("INSERT INTO \"Sales Invoice\" VALUES ('B-7', '00000123', 1711915200, 99.5, 'open')");
    s.backup(&format!("DELETE FROM \"Sales Invoice\" WHERE {row}"));
    s.backup(
        "INSERT INTO \"Sales Invoice\" VALUES ('B-7', '00000123', 1711915200, 99.5, 'reissued')",
    );
    let v = s.trace("B-7/00000123");
    assert_eq!(changes(&v), ["absent", "first seen", "missing", "back"]);
    assert_eq!(column(&v, "amount")[1], Value::from("99.5"));
    assert_eq!(column(&v, "status")[3], Value::from("reissued"));
    assert_eq!(v["first_missing"], Value::from(s.snapshots[2].as_str()));

    // A key with the wrong number of parts is one sentence, exit 2.
    let bad = s.run_trace("B-7", &[]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("does not match the key (Code, No); give one value per key column"),
        "{}",
        bad.stderr
    );
    assert!(Path::new(&s.db).exists());
}

#[test]
fn a_damaged_pack_on_the_invoice_path_is_named_not_taken_for_a_bad_description() {
    let env = Env::new();
    let db = env.database("books.sqlite", 2, JournalMode::Wal);
    let mut s = setup(db, env, DEMO_BUSINESS);
    let key: String = Connection::open(&s.db)
        .unwrap()
        .query_row(
            "SELECT invoice_code || '/' || invoice_no FROM invoices LIMIT 1 OFFSET 7",
            [],
            |r| r.get(0),
        )
        .unwrap();
    s.backup("");
    s.backup("UPDATE invoices SET remark = 'z' WHERE id % 40 = 3");
    // The full's pages are in the biggest pack (the trees, in packs of their own, stay
    // whole): a byte of every 4 KiB past age's header damaged, so every frame a lookup
    // fetches from it fails to decrypt.
    let biggest = common::walk(&Path::new(&s.repo).join("data"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    for b in bytes.iter_mut().skip(1024).step_by(4096) {
        *b ^= 0x5a;
    }
    std::fs::write(&biggest, bytes).unwrap();
    let r = s.run_trace(&key, &[]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    let pack = common::damaged::key_of(&biggest);
    assert!(r.stderr.contains(&format!("{pack} in ")), "{}", r.stderr);
    assert!(r.stderr.contains("is damaged"), "{}", r.stderr);
    assert!(!r.stderr.contains("business description"), "{}", r.stderr);
    assert_eq!(r.stdout, "");
}

#[test]
fn without_an_index_on_the_key_snapshots_go_through_a_scratch_copy_with_the_same_answers() {
    let env = Env::new();
    let db = env.path("bills.sqlite");
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch(
            "PRAGMA page_size = 8192; PRAGMA journal_mode = DELETE;
             CREATE TABLE bills (ref TEXT NOT NULL, issued TEXT NOT NULL, amount INTEGER NOT NULL,
               state TEXT, memo TEXT);",
        )
        .unwrap();
        for i in 0..3000 {
            c.execute(
                "INSERT INTO bills VALUES (?1, '2024-03-01', ?2, 'open', ?3)",
                rusqlite::params![format!("R-{i:05}"), 1000 + i, "x".repeat(200)],
            )
            .unwrap();
        }
    }
    let mut s = setup(db, env, BILLS_BUSINESS);
    s.backup("");
    s.backup("UPDATE bills SET amount = 5, state = 'void' WHERE ref = 'R-00042'");
    s.backup("UPDATE bills SET memo = 'y' WHERE rowid % 9 = 0");
    s.backup("DELETE FROM bills WHERE ref = 'R-00042'");
    let v = s.trace("R-00042");
    assert_eq!(
        changes(&v),
        ["first seen", "changed", "unchanged", "missing"]
    );
    assert_eq!(
        column(&v, "amount"),
        [
            Value::from("1042"),
            Value::from("5"),
            Value::from("5"),
            Value::Null
        ]
    );
    let scratch = s.env.path("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let r = s.run_trace(
        "R-00042",
        &["-v", "--scratch-dir", scratch.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "no index on the key's columns of bills: snapshots are brought forward in a scratch copy under {}",
            scratch.display()
        )),
        "{}",
        r.stderr
    );
    // The copy is gone once the trace is done.
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
    // Once an index exists, the newest snapshot is read in place, the older ones still
    // through the copy: the answers run on as before.
    let c = Connection::open(&s.db).unwrap();
    c.execute_batch("CREATE INDEX bills_ref ON bills (ref)")
        .unwrap();
    c.execute(
        "INSERT INTO bills VALUES ('R-00042', '2024-04-02', 77, 'reissued', '')",
        [],
    )
    .unwrap();
    drop(c);
    s.backup("");
    let v = s.trace("R-00042");
    assert_eq!(
        changes(&v),
        ["first seen", "changed", "unchanged", "missing", "back"]
    );
    assert_eq!(column(&v, "status")[4], Value::from("reissued"));
}
