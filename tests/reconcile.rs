//! `ivault reconcile` with the real binary: tax-authority style invoice lists with Chinese
//! headers (a GB18030 CSV with a title line and a total row, an XLSX written by openpyxl, a
//! UTF-8 CSV with a byte order mark) against a live database in which differences were
//! planted: an invoice deleted after a backup, one the list lacks, one with another amount,
//! one with another date. Two schemas: a composite text key with integer cents and text
//! dates, and a single integer key with REAL yuan and Unix-second dates in +08:00.

mod common;
use common::lists::{gb18030, keys, thousands, write_xlsx};
use common::{Env, Run};
use rusqlite::Connection;
use serde_json::Value;
use std::path::{Path, PathBuf};

const DIFFERENCES: i32 = 14;

/// Composite key, integer cents, TEXT dates; the list in yuan.
const SCHEMA_A: &str = "
CREATE TABLE invoices (id INTEGER PRIMARY KEY, invoice_code TEXT NOT NULL, invoice_no TEXT NOT NULL,
    issue_date TEXT NOT NULL, total_cents INTEGER NOT NULL, UNIQUE (invoice_code, invoice_no));";
const BUSINESS_A: &str = r#"
[source.business]
invoice_table = "invoices"
date_column = "issue_date"
amount_column = "total_cents"
key_columns = ["invoice_code", "invoice_no"]
[source.business.list]
key = ["发票代码", "发票号码"]
date = "开票日期"
amount = "价税合计"
amount_scale = 100
"#;

/// One INTEGER key, REAL yuan, Unix seconds read in +08:00; the list in yuan too.
const SCHEMA_B: &str = r#"
CREATE TABLE "Sales Invoice" ("No" INTEGER PRIMARY KEY, "Amount (CNY)" REAL NOT NULL, "Issued At" INTEGER NOT NULL);"#;
const BUSINESS_B: &str = r#"
[source.business]
invoice_table = "Sales Invoice"
date_column = "Issued At"
amount_column = "Amount (CNY)"
key_columns = ["No"]
utc_offset = "+08:00"
[source.business.list]
key = "发票号码"
date = "开票日期"
amount = "金额"
"#;

struct Case {
    env: Env,
    db: PathBuf,
    policy: String,
}

fn case(schema: &str, business: &str) -> Case {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.path("books.sqlite");
    Connection::open(&db)
        .unwrap()
        .execute_batch(schema)
        .unwrap();
    let policy = env.path("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[source]]\nname = \"books\"\npath = {db:?}\n{business}\n[[target]]\nname = \"local\"\nurl = {repo:?}\n[encryption]\nidentity_file = {key:?}\n"
        ),
    )
    .unwrap();
    let policy = policy.to_str().unwrap().to_string();
    Case { env, db, policy }
}

impl Case {
    fn sql(&self, sql: &str) {
        Connection::open(&self.db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }

    fn backup(&self) -> String {
        let r = self
            .env
            .run(&["backup", "books", "--policy", &self.policy, "--json"])
            .ok()
            .json();
        r[0]["snapshot_id"].as_str().unwrap().to_string()
    }

    fn reconcile(&self, list: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["reconcile", "books", "--policy", &self.policy];
        args.extend(["--list", list.to_str().unwrap()]);
        args.extend_from_slice(extra);
        self.env.run(&args)
    }
}

/// Schema A's live database: eight March invoices, one in February and one in April (outside
/// every list's period). Invoice n has the number 0000000n and n × 1 000.55 yuan.
fn live_a() -> Case {
    let c = case(SCHEMA_A, BUSINESS_A);
    let mut sql = String::new();
    for n in 1..=8 {
        sql.push_str(&format!(
            "INSERT INTO invoices (invoice_code, invoice_no, issue_date, total_cents) VALUES ('044001', '{n:08}', '2024-03-{n:02} 10:00:00', {});",
            n * 100_055
        ));
    }
    sql.push_str("INSERT INTO invoices (invoice_code, invoice_no, issue_date, total_cents) VALUES ('044001', '00000020', '2024-02-28', 5000), ('044001', '00000021', '2024-04-02', 7000);");
    c.sql(&sql);
    c
}

/// Plants the differences in schema A: invoice 3 is backed up and then deleted from the live
/// database (and a second backup no longer has it), invoice 9 is issued but not listed.
/// Returns the first snapshot (the newest with invoice 3) and the second.
fn plant_a(c: &Case) -> (String, String) {
    let first = c.backup();
    c.sql("DELETE FROM invoices WHERE invoice_no = '00000003';
           INSERT INTO invoices (invoice_code, invoice_no, issue_date, total_cents) VALUES ('044001', '00000009', '2024-03-04', 12345);");
    let second = c.backup();
    (first, second)
}

/// The list's rows for schema A: invoices 1 to 8 as (code, number, date, yuan), invoice 5 with
/// one yuan more, invoice 6 a day later.
fn rows_a() -> Vec<(String, String, (u32, u32), f64)> {
    (1..=8u32)
        .map(|n| {
            let yuan = f64::from(n) * 1000.55 + if n == 5 { 1.0 } else { 0.0 };
            let day = if n == 6 { 7 } else { n };
            ("044001".into(), format!("{n:08}"), (3, day), yuan)
        })
        .collect()
}

/// Every planted difference of schema A, exactly, and the snapshot that still has invoice 3.
fn assert_planted_a(run: &Run, first: &str, second: &str) {
    assert_eq!(run.code, DIFFERENCES, "{}\n{}", run.stdout, run.stderr);
    let v = run.json();
    assert_eq!(v["verdict"], "differences");
    assert_eq!(v["period"]["from"], "2024-03-01");
    assert_eq!(v["period"]["to"], "2024-03-08");
    assert_eq!(keys(&v, "missing_in_database"), ["044001/00000003"]);
    assert_eq!(keys(&v, "missing_in_list"), ["044001/00000009"]);
    assert_eq!(
        keys(&v, "differing"),
        ["044001/00000005", "044001/00000006"]
    );
    let diffs = v["differing"].as_array().unwrap();
    assert_eq!(diffs[0]["fields"], serde_json::json!(["amount"]));
    assert_eq!(diffs[0]["list"]["amount"], 5 * 100_055 + 100);
    assert_eq!(diffs[0]["database"]["amount"], 5 * 100_055);
    assert_eq!(diffs[1]["fields"], serde_json::json!(["date"]));
    assert_eq!(diffs[1]["list"]["date"], "2024-03-07");
    assert_eq!(diffs[1]["database"]["date"], "2024-03-06");
    let missing = &v["missing_in_database"][0];
    assert_eq!(missing["list"]["amount"], 3 * 100_055);
    let held = &missing["snapshots"][0];
    assert_eq!(held["target"], "local");
    assert_eq!(
        held["last"]["id"], first,
        "the newest snapshot with the invoice"
    );
    assert_eq!(held["first"]["id"], first);
    assert_eq!(held["in_latest"], false);
    assert_eq!(v["searched"][0]["latest"]["id"], second);
    assert_eq!(v["totals"]["list"]["invoices"], 8);
    assert_eq!(v["totals"]["list"]["amount"], 36 * 100_055 + 100);
    // Live in March: 1–8 without 3, with 9.
    assert_eq!(v["totals"]["database"]["invoices"], 8);
    assert_eq!(v["totals"]["database"]["amount"], 33 * 100_055 + 12345);
}

#[test]
fn a_gb18030_csv_with_chinese_headers_shows_each_planted_difference() {
    let c = live_a();
    let (first, second) = plant_a(&c);
    // As tax systems export: a title line, thousands separators, mixed date styles, a total.
    let mut csv =
        String::from("增值税发票开具清单,,,,\n序号,发票代码,发票号码,开票日期,价税合计\n");
    for (i, (code, no, (m, d), yuan)) in rows_a().into_iter().enumerate() {
        let date = if i % 2 == 0 {
            format!("2024年{m:02}月{d:02}日")
        } else {
            format!("2024/{m}/{d}")
        };
        csv.push_str(&format!(
            "{},{code},{no},{date},\"{}\"\n",
            i + 1,
            thousands(yuan)
        ));
    }
    csv.push_str("合计,,,,\"36,020.80\"\n");
    let bytes = gb18030(&csv);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the fixture must not be UTF-8"
    );
    let list = c.env.path("清单.csv");
    std::fs::write(&list, bytes).unwrap();

    let run = c.reconcile(&list, &["--json"]);
    assert_planted_a(&run, &first, &second);
    let v = run.json();
    assert_eq!(v["list"]["encoding"], "gb18030");
    assert_eq!(v["list"]["header_row"], 2);
    assert_eq!(v["list"]["skipped_rows"], serde_json::json!([11]));

    // The table for people names the same, and exits the same.
    let text = c.reconcile(&list, &[]);
    assert_eq!(text.code, DIFFERENCES);
    for needle in [
        "DIFFERENCES",
        "044001/00000003",
        "044001/00000009",
        "044001/00000005",
        &first[..12],
    ] {
        assert!(text.stdout.contains(needle), "{needle}: {}", text.stdout);
    }
    // Told the wrong encoding, the list is refused rather than misread.
    let wrong = c.reconcile(&list, &["--encoding", "utf-8"]);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("not valid UTF-8"), "{}", wrong.stderr);
}

#[test]
fn an_xlsx_list_with_chinese_headers_shows_each_planted_difference_and_writes_reports() {
    let c = live_a();
    let (first, second) = plant_a(&c);
    let rows: Vec<Value> = rows_a()
        .into_iter()
        .map(|(code, no, (m, d), yuan)| serde_json::json!([code, no, {"date": [2024, m, d]}, yuan]))
        .collect();
    let list = c.env.path("list.xlsx");
    write_xlsx(
        &list,
        &["发票代码", "发票号码", "开票日期", "价税合计"],
        &rows,
    );

    let reports = c.env.path("reports");
    let run = c.reconcile(
        &list,
        &["--json", "--report-dir", reports.to_str().unwrap()],
    );
    assert_planted_a(&run, &first, &second);
    assert_eq!(run.json()["list"]["format"], "spreadsheet");
    assert_eq!(run.json()["list"]["sheet"], "发票");

    let written: Vec<PathBuf> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let find = |ext: &str| {
        let p = written
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("no .{ext} in {written:?}"));
        std::fs::read_to_string(p).unwrap()
    };
    let json: Value = serde_json::from_str(&find("json")).unwrap();
    assert_eq!(json, run.json());
    let md = find("md");
    assert!(md.starts_with("# ❌ Differences"), "{md}");
    assert!(
        md.contains("## In the list, not in the database") && md.contains("044001/00000003"),
        "{md}"
    );
    let html = find("html");
    assert!(
        html.contains("data-verdict=\"differences\"") && html.contains("044001/00000009"),
        "{html}"
    );
    assert!(html.contains(&first[..12]), "the snapshot to restore from");
    in_a_browser(&written, &first[..12]);

    // Labels in Chinese for finance staff; the data is the same.
    let zh = c.env.path("reports-zh");
    let run = c.reconcile(
        &list,
        &["--lang", "zh-CN", "--report-dir", zh.to_str().unwrap()],
    );
    assert_eq!(run.code, DIFFERENCES, "{}", run.stderr);
    assert!(run.stdout.contains("清单有、数据库无"), "{}", run.stdout);
    for entry in std::fs::read_dir(&zh).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(text.contains("00000003"), "{text}");
        if text.starts_with("<!DOCTYPE") {
            assert!(
                text.contains("<html lang=\"zh-CN\">") && text.contains("金额或日期不一致"),
                "{text}"
            );
        }
    }
}

#[test]
fn a_matching_utf8_csv_with_a_byte_order_mark_exits_0() {
    let c = live_a();
    let mut csv = String::from("\u{feff}发票代码,发票号码,开票日期,价税合计\n");
    for n in 1..=8u32 {
        csv.push_str(&format!(
            "044001,{n:08},2024-03-{n:02},{:.2}\n",
            f64::from(n) * 1000.55
        ));
    }
    let list = c.env.path("list.csv");
    std::fs::write(&list, csv).unwrap();
    let run = c.reconcile(&list, &["--json"]).ok();
    let v = run.json();
    assert_eq!(v["verdict"], "matches");
    assert_eq!(v["list"]["encoding"], "utf-8");
    for section in [
        "missing_in_database",
        "missing_in_list",
        "differing",
        "duplicates",
    ] {
        assert_eq!(v[section], serde_json::json!([]), "{section}");
    }
    assert_eq!(v["totals"]["list"], v["totals"]["database"]);
    let text = c.reconcile(&list, &[]).ok();
    assert!(text.stdout.contains("MATCHES"), "{}", text.stdout);
}

#[test]
fn a_header_the_mapping_names_but_the_list_lacks_is_one_sentence_and_nothing_is_written() {
    let c = live_a();
    let list = c.env.path("list.csv");
    std::fs::write(
        &list,
        gb18030("发票代码,号码,开票日期,价税合计\n044001,00000001,2024-03-01,1000.55\n"),
    )
    .unwrap();
    let reports = c.env.path("reports");
    let run = c.reconcile(&list, &["--report-dir", reports.to_str().unwrap()]);
    assert_eq!(run.code, 9, "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("no column \"发票号码\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("\"发票代码\", \"号码\", \"开票日期\", \"价税合计\""),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    assert!(!reports.exists());
}

#[test]
fn an_integer_key_with_real_yuan_and_epoch_dates_shows_each_planted_difference() {
    let c = case(SCHEMA_B, BUSINESS_B);
    // 2024-03-n 23:30 in +08:00 is 15:30 UTC the same day: the offset decides the day.
    let at = |day: i64| 1_709_251_200 + (day - 1) * 86_400 + 15 * 3600 + 1800;
    let mut sql = String::new();
    for n in 1..=6i64 {
        sql.push_str(&format!(
            "INSERT INTO \"Sales Invoice\" VALUES ({}, {}, {});",
            1000 + n,
            n as f64 * 88.8,
            at(n)
        ));
    }
    c.sql(&sql);
    let first = c.backup();
    c.sql(&format!(
        "DELETE FROM \"Sales Invoice\" WHERE \"No\" = 1002; INSERT INTO \"Sales Invoice\" VALUES (1007, 1.5, {});",
        at(3)
    ));
    let mut csv = String::from("发票号码\t开票日期\t金额\n");
    for n in 1..=6i64 {
        let day = if n == 4 { 5 } else { n };
        let yuan = n as f64 * 88.8 + if n == 6 { 0.01 } else { 0.0 };
        csv.push_str(&format!("{}\t2024-03-{day:02}\t{yuan:.2}\n", 1000 + n));
    }
    let list = c.env.path("list.tsv");
    std::fs::write(&list, csv).unwrap();
    let run = c.reconcile(&list, &["--json"]);
    assert_eq!(run.code, DIFFERENCES, "{}\n{}", run.stdout, run.stderr);
    let v = run.json();
    assert_eq!(keys(&v, "missing_in_database"), ["1002"]);
    assert_eq!(
        v["missing_in_database"][0]["snapshots"][0]["last"]["id"],
        first
    );
    assert_eq!(
        v["missing_in_database"][0]["snapshots"][0]["in_latest"],
        true
    );
    assert_eq!(keys(&v, "missing_in_list"), ["1007"]);
    assert_eq!(keys(&v, "differing"), ["1004", "1006"]);
    assert_eq!(v["differing"][0]["fields"], serde_json::json!(["date"]));
    assert_eq!(v["differing"][1]["fields"], serde_json::json!(["amount"]));
}

/// The HTML reconciliation report as headless Chromium renders it: the verdict, each planted
/// difference and the snapshot that still holds the missing invoice, as text of the DOM.
fn in_a_browser(written: &[PathBuf], snapshot: &str) {
    let Some(browser) = common::browser::required() else {
        return;
    };
    let page = written
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "html"))
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let dom =
        common::browser::run_browser(&browser, profile.path(), &["--dump-dom".to_string()], page);
    let (open, text) = common::browser::element(&dom, "div", "verdict");
    assert!(open.contains("data-verdict=\"differences\""), "{open}");
    assert!(!text.trim().is_empty(), "{open}");
    for planted in ["044001/00000003", "044001/00000009", snapshot] {
        assert!(
            dom.contains(planted),
            "{planted} is not in the rendered page"
        );
    }
    assert!(dom.contains("<table"), "no table in the rendered page");
}
