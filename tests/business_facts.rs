//! Backups measure invoice facts per month and run SQLite's quick_check on the image they
//! store, whichever way the image was taken: inside the read transaction (WAL), on the staged
//! copy (rollback journal), or once for several targets. Neither stops a backup: a description
//! that does not fit and a damaged source are warnings, and the snapshot is kept.

mod common;
use common::Env;
use rusqlite::{params, Connection};
use std::collections::BTreeMap;

/// Unix seconds of 2024-03-31T20:00:00Z: April at +08:00.
const EVENING: i64 = 1_711_915_200;

#[derive(Clone, Copy, PartialEq)]
enum Journal {
    Wal,
    Delete,
}

/// What one month of the schema-B database must show, worked out from the inserted rows.
#[derive(Default, Debug)]
struct Month {
    invoices: u64,
    total: f64,
    status: BTreeMap<String, u64>,
    lines: u64,
    uploads: u64,
}

/// A database with quoted names, Unix-second dates, REAL amounts, a WITHOUT ROWID invoice
/// table with a composite key, a child with a composite FOREIGN KEY and one without.
fn schema_b(path: &std::path::Path, journal: Journal) -> BTreeMap<String, Month> {
    let conn = Connection::open(path).unwrap();
    let mode = match journal {
        Journal::Wal => "wal",
        Journal::Delete => "delete",
    };
    let got: String = conn
        .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(got, mode);
    conn.execute_batch(
        r#"
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
CREATE TABLE "tax ""uploads""" ("Code" TEXT, "No" INTEGER);
"#,
    )
    .unwrap();
    let mut months: BTreeMap<String, Month> = BTreeMap::new();
    for k in 0..120i64 {
        let code = if k % 3 == 0 { "A-1" } else { "b 2" };
        let no = 500 + k;
        // From mid-February to late April, first one at EVENING.
        let secs = EVENING - (k * 7919 * 60) % (45 * 86400) + (k % 5) * 5 * 86400;
        let amount = (k * 1234 % 9999) as f64 / 100.0 + 0.5;
        let status = ["Issued", "Red-Letter", "void"][(k % 3) as usize];
        let lines = (k % 4) as u64;
        let uploads = (k % 2) as u64;
        conn.execute(
            r#"INSERT INTO "Sales Invoice [2024]" VALUES (?1, ?2, ?3, ?4, ?5)"#,
            params![code, no, secs, amount, status],
        )
        .unwrap();
        for _ in 0..lines {
            conn.execute(
                r#"INSERT INTO "Line Items" ("Invoice Code", "Invoice No") VALUES (?1, ?2)"#,
                params![code, no],
            )
            .unwrap();
        }
        for _ in 0..uploads {
            conn.execute(
                r#"INSERT INTO "tax ""uploads""" VALUES (?1, ?2)"#,
                params![code, no],
            )
            .unwrap();
        }
        let month = chrono::DateTime::from_timestamp(secs + 8 * 3600, 0)
            .unwrap()
            .format("%Y-%m")
            .to_string();
        let m = months.entry(month).or_default();
        m.invoices += 1;
        m.total += amount;
        *m.status.entry(status.to_string()).or_default() += 1;
        m.lines += lines;
        m.uploads += uploads;
    }
    assert!(months.contains_key("2024-04") && months.contains_key("2024-03"));
    months
}

fn business_toml(amount_column: &str) -> String {
    format!(
        r#"[source.business]
invoice_table = "Sales Invoice [2024]"
date_column = "Issue Date"
amount_column = "{amount_column}"
key_columns = ["Invoice Code", "Invoice No"]
children = [{{ table = "Line Items", fk = ["Invoice Code", "Invoice No"] }}, {{ table = 'tax "uploads"', fk = ["Code", "No"] }}]
status_column = "Status"
number_column = "Invoice No"
series_column = "Invoice Code"
utc_offset = "+08:00"
"#
    )
}

struct Setup {
    env: Env,
    key: String,
    policy: String,
}

/// A policy with the source `sales` (schema B at `db`, described by `business`) and two
/// local targets, both initialised.
fn setup(journal: Journal, business: &str) -> (Setup, BTreeMap<String, Month>) {
    let env = Env::new();
    let db = env.path("sales.sqlite");
    let want = schema_b(&db, journal);
    let (key, recipient) = env.new_key("id.txt");
    let text = format!(
        r#"[[source]]
name = "sales"
path = "{db}"
{business}
[[target]]
name = "one"
url = "{one}"

[[target]]
name = "two"
url = "{two}"

[encryption]
recipients = ["{recipient}"]
identity_file = "{key}"
"#,
        db = db.display(),
        one = env.path("repo-one").display(),
        two = env.path("repo-two").display(),
    );
    let policy = env.path("policy.toml");
    std::fs::write(&policy, text).unwrap();
    let policy = policy.to_str().unwrap().to_string();
    for t in ["one", "two"] {
        env.run(&["init", t, "--policy", &policy]).ok();
    }
    (Setup { env, key, policy }, want)
}

impl Setup {
    fn backup(&self, extra: &[&str]) -> common::Run {
        let mut args = vec!["backup", "sales", "--policy", &self.policy];
        args.extend_from_slice(extra);
        self.env.run(&args)
    }

    fn snapshots(&self, target: &str) -> Vec<serde_json::Value> {
        let repo = self.env.path(&format!("repo-{target}"));
        let list = self
            .env
            .run(&[
                "snapshots",
                "--repo",
                repo.to_str().unwrap(),
                "--identity",
                &self.key,
                "--json",
            ])
            .ok()
            .json();
        list.as_array().unwrap().clone()
    }
}

#[track_caller]
fn assert_months(business: &serde_json::Value, want: &BTreeMap<String, Month>) {
    let months = business["months"].as_array().expect("business.months");
    let keys: Vec<&str> = months
        .iter()
        .map(|m| m["month"].as_str().unwrap())
        .collect();
    assert_eq!(keys, want.keys().map(String::as_str).collect::<Vec<_>>());
    for m in months {
        let w = &want[m["month"].as_str().unwrap()];
        assert_eq!(m["invoices"], w.invoices, "{m}");
        let total = m["total"].as_f64().unwrap();
        assert!((total - w.total).abs() < 1e-6, "{m} {w:?}");
        for (status, n) in &w.status {
            assert_eq!(m["by_status"][status]["invoices"], *n, "{m}");
        }
        assert_eq!(m["by_status"].as_object().unwrap().len(), w.status.len());
        assert_eq!(m["children"]["Line Items"], w.lines, "{m}");
        assert_eq!(m["children"]["tax \"uploads\""], w.uploads, "{m}");
    }
    let series = business["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(
        business["description"]["invoice_table"],
        "Sales Invoice [2024]"
    );
}

fn backs_up_with_facts_and_a_clean_check(journal: Journal) {
    let (s, want) = setup(journal, &business_toml("Amount (CNY)"));
    let r = s.backup(&["--to", "one"]).ok();
    assert!(!r.stderr.contains("ivault: warning"), "{}", r.stderr);
    let list = s.snapshots("one");
    assert_eq!(list.len(), 1);
    assert_months(&list[0]["business"], &want);
    let check = &list[0]["source_check"];
    assert_eq!(check["pragma"], "quick_check");
    assert_eq!(check["ok"], true);
    assert!(check.get("problems").is_none(), "{check}");

    // --source-check full runs integrity_check; off records none.
    s.backup(&["--to", "one", "--source-check", "full"]).ok();
    s.backup(&["--to", "one", "--source-check", "off"]).ok();
    let list = s.snapshots("one");
    assert_eq!(list[1]["source_check"]["pragma"], "integrity_check");
    assert_eq!(list[1]["source_check"]["ok"], true);
    assert!(list[2]["source_check"].is_null(), "{}", list[2]);
    assert_months(&list[2]["business"], &want);
}

#[test]
fn a_wal_source_is_measured_inside_the_read_transaction() {
    backs_up_with_facts_and_a_clean_check(Journal::Wal);
}

#[test]
fn a_rollback_journal_source_is_measured_on_the_staged_copy() {
    backs_up_with_facts_and_a_clean_check(Journal::Delete);
}

#[test]
fn two_targets_at_once_get_the_same_facts_from_one_staged_image() {
    for journal in [Journal::Wal, Journal::Delete] {
        let (s, want) = setup(journal, &business_toml("Amount (CNY)"));
        let r = s.backup(&[]).ok();
        assert!(!r.stderr.contains("ivault: warning"), "{}", r.stderr);
        let one = s.snapshots("one");
        let two = s.snapshots("two");
        assert_months(&one[0]["business"], &want);
        assert_eq!(one[0]["business"], two[0]["business"]);
        assert_eq!(one[0]["source_check"]["ok"], true);
        assert_eq!(two[0]["source_check"]["ok"], true);
    }
}

#[test]
fn a_description_that_names_a_missing_column_warns_and_the_backup_is_kept() {
    for journal in [Journal::Wal, Journal::Delete] {
        let (s, _) = setup(journal, &business_toml("Amount (USD)"));
        let r = s.backup(&["--to", "one"]).ok();
        assert!(
            r.stderr.contains("ivault: warning")
                && r.stderr.contains(
                    r#"amount_column "Amount (USD)" is not a column of the invoice table "Sales Invoice [2024]" (did you mean "Amount (CNY)"?)"#
                )
                && r.stderr.contains("[source.business]"),
            "{}",
            r.stderr
        );
        let list = s.snapshots("one");
        assert_eq!(list.len(), 1);
        assert!(list[0]["business"].is_null());
        assert_eq!(list[0]["source_check"]["ok"], true);
    }
}

/// Makes table `b` share table `a`'s b-tree: every table still reads (so the backup can take
/// the image), but quick_check finds the page referenced twice and the one never used.
fn damaged(env: &Env, name: &str, journal: Journal) -> String {
    let path = env.path(name);
    let conn = Connection::open(&path).unwrap();
    if journal == Journal::Wal {
        conn.query_row("PRAGMA journal_mode = wal", [], |_| Ok(()))
            .unwrap();
    }
    conn.execute_batch(
        "CREATE TABLE a (x); CREATE TABLE b (y);
         INSERT INTO a VALUES (1), (2); INSERT INTO b VALUES (3);
         PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET rootpage = (SELECT rootpage FROM sqlite_schema WHERE name = 'a') WHERE name = 'b';
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
    drop(conn);
    let conn = Connection::open(&path).unwrap();
    let answer: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    assert_ne!(answer, "ok");
    path.to_str().unwrap().to_string()
}

#[test]
fn a_source_that_fails_quick_check_is_backed_up_with_a_warning_and_recorded() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let healthy = env.path("healthy.sqlite");
    schema_b(&healthy, Journal::Wal);
    for (name, journal) in [
        ("wal.sqlite", Journal::Wal),
        ("delete.sqlite", Journal::Delete),
    ] {
        let db = damaged(&env, name, journal);
        let r = env.run(&["backup", &db, "--to", &repo]).ok();
        assert!(
            r.stderr.contains("ivault: warning") && r.stderr.contains("fails PRAGMA quick_check"),
            "{}",
            r.stderr
        );
        env.run(&["backup", &db, "--to", &repo, "--source-check", "off"])
            .ok();
    }
    let r = env
        .run(&["backup", healthy.to_str().unwrap(), "--to", &repo])
        .ok();
    assert!(!r.stderr.contains("ivault: warning"), "{}", r.stderr);

    let list = env
        .run(&["snapshots", "--repo", &repo, "--identity", &key, "--json"])
        .ok()
        .json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 5);
    for damaged in [&list[0], &list[2]] {
        let c = &damaged["source_check"];
        assert_eq!(c["pragma"], "quick_check");
        assert_eq!(c["ok"], false, "{c}");
        let problems = c["problems"].as_array().unwrap();
        assert!(!problems.is_empty() && problems.len() <= 20, "{c}");
    }
    assert!(list[1]["source_check"].is_null());
    assert!(list[3]["source_check"].is_null());
    assert_eq!(list[4]["source_check"]["ok"], true);
    assert!(list[4]["source_check"].get("problems").is_none());
    // Without a policy there is no description, so no facts.
    assert!(list.iter().all(|s| s["business"].is_null()));
}
