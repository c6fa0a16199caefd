//! `restore-period` on the demo's schema: a lost month comes back row for row while another
//! process keeps writing, a second run writes nothing, the backup taken before the repair
//! holds the state before it, and the repair is on record.

mod common;
use common::period::{counts, dump, number, Setup};
use common::Env;
use invoice_vault::sample::JournalMode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const BUSINESS: &str = r#"invoice_table = "invoices"
date_column = "issue_date"
amount_column = "total_cents"
key_columns = ["invoice_code", "invoice_no"]
children = [{ table = "invoice_items", fk = "invoice_id" }, { table = "tax_uploads", fk = "invoice_id" }]"#;

const MONTH: &str = "issue_date >= '2024-03-01' AND issue_date < '2024-04-01'";

fn lose_month(db: &std::path::Path) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
    c.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         DELETE FROM invoice_items WHERE invoice_id IN (SELECT id FROM invoices WHERE {MONTH});
         DELETE FROM tax_uploads WHERE invoice_id IN (SELECT id FROM invoices WHERE {MONTH});
         DELETE FROM invoices WHERE {MONTH};
         COMMIT;"
    ))
    .unwrap();
}

/// Inserts invoices dated in the current month until stopped; returns how many.
fn writer(db: std::path::PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<i64> {
    std::thread::spawn(move || {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
        let mut n = 0i64;
        while !stop.load(Ordering::Relaxed) || n < 20 {
            c.execute(
                "INSERT INTO invoices (invoice_code, invoice_no, issue_date, seller_name, seller_tax_id,
                   buyer_name, buyer_tax_id, amount_cents, tax_cents, total_cents, status, updated_at)
                 VALUES ('LIVE', printf('%08d', ?1), '2026-11-24', 's', 's', 'b', 'b', 100, 13, 113, 'issued', 'now')",
                [n],
            )
            .unwrap();
            c.execute(
                "INSERT INTO invoice_items (invoice_id, line_no, description, quantity, unit_price_cents,
                   amount_cents, tax_rate_bp, tax_cents) VALUES (last_insert_rowid(), 1, 'x', 1, 100, 100, 1300, 13)",
                [],
            )
            .unwrap();
            n += 1;
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        n
    })
}

#[test]
fn a_lost_month_comes_back_row_for_row_while_another_writer_keeps_inserting() {
    let env = Env::new();
    let db = env.database("live.sqlite", 3, JournalMode::Wal);
    let s = Setup::new(&env, "shop", &db, BUSINESS);
    let snap = s.backup(&env);
    let restored = env.path("snapshot.sqlite");
    env.restore(&snap, &s.repo, &s.key, &restored);
    let tables = ["invoices", "invoice_items", "tax_uploads"];
    let original: Vec<_> = tables
        .iter()
        .map(|t| dump(&restored, &format!("SELECT * FROM {t} ORDER BY id")))
        .collect();
    let month_before = number(
        &restored,
        &format!("SELECT count(*) FROM invoices WHERE {MONTH}"),
    );
    let total_before = number(
        &restored,
        &format!("SELECT sum(total_cents) FROM invoices WHERE {MONTH}"),
    );
    assert!(month_before > 10);

    lose_month(&db);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), stop.clone());

    let shown = s.period(
        &env,
        &["--from", "2024-03", "--to", "2024-03", "--snapshot", &snap],
    );
    assert_eq!(shown.code, 14, "{}", shown.stderr);
    let report = shown.json();
    assert_eq!(counts(&report, "invoices"), (month_before as usize, 0, 0));
    assert_eq!(report["snapshot"]["invoices"], month_before);
    assert_eq!(report["live"]["invoices"], 0);

    let applied = s.period(
        &env,
        &[
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-31",
            "--snapshot",
            &snap,
            "--apply",
        ],
    );
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    stop.store(true, Ordering::Relaxed);
    let written = w.join().unwrap();
    let a = applied.json()["applied"].clone();
    assert_eq!(a["inserted"]["invoices"], month_before);
    assert_eq!(a["matches"], true, "{a}");
    assert_eq!(a["after"]["invoices"], month_before);
    assert_eq!(a["after"]["total"], total_before);

    // Row by row the snapshot's, and the writer's rows kept.
    for (t, rows) in tables.iter().zip(&original) {
        let now = dump(
            &db,
            &format!(
                "SELECT * FROM {t} WHERE id IN (SELECT id FROM {t}) AND {} ORDER BY id",
                match *t {
                    "invoices" => "invoice_code <> 'LIVE'".to_string(),
                    _ => "invoice_id NOT IN (SELECT id FROM invoices WHERE invoice_code = 'LIVE')"
                        .to_string(),
                }
            ),
        );
        assert_eq!(&now, rows, "table {t}");
    }
    assert_eq!(
        number(
            &db,
            "SELECT count(*) FROM invoices WHERE invoice_code = 'LIVE'"
        ),
        written
    );
    assert!(common::sqlite_checks(&db).is_none());

    // Twice: nothing more to write.
    let again = s.period(
        &env,
        &[
            "--from",
            "2024-03",
            "--to",
            "2024-03",
            "--snapshot",
            &snap,
            "--apply",
        ],
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    let a2 = again.json()["applied"].clone();
    assert!(a2["backup_snapshot_id"].is_null(), "{a2}");
    assert_eq!(a2["matches"], true);
    let plain = s.period(
        &env,
        &["--from", "2024-03", "--to", "2024-03", "--snapshot", &snap],
    );
    assert_eq!(plain.code, 0, "{}", plain.stdout);
    // `latest` passes over the undo point the repair took (which lacks the month).
    let latest = s.period(&env, &["--from", "2024-03", "--to", "2024-03"]);
    assert_eq!(latest.code, 0, "{}{}", latest.stdout, latest.stderr);
    assert_eq!(latest.json()["snapshot_id"], snap.as_str());

    // The backup before the repair restores the state before it: the month lost.
    let before = a["backup_snapshot_id"].as_str().unwrap();
    let undo = env.path("before-repair.sqlite");
    env.restore(before, &s.repo, &s.key, &undo);
    assert_eq!(
        number(
            &undo,
            &format!("SELECT count(*) FROM invoices WHERE {MONTH}")
        ),
        0
    );
    assert!(
        number(
            &undo,
            "SELECT count(*) FROM invoices WHERE invoice_code = 'LIVE'"
        ) > 0
    );

    // On record: the state database and a JSON file.
    let file = a["audit_file"].as_str().unwrap();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(record["snapshot_id"], snap.as_str());
    assert_eq!(record["backup_snapshot_id"], before);
    assert_eq!(record["from"], "2024-03-01");
    assert_eq!(record["inserted"]["invoices"], month_before);
    assert!(!record["user"].as_str().unwrap().is_empty());
    let state = env.path("state").join("state.sqlite");
    assert_eq!(number(&state, "SELECT count(*) FROM period_restores"), 1);
}

#[test]
fn the_demo_loses_a_month_and_brings_it_back() {
    let env = Env::new();
    let dir = env.path("demo");
    let r = env
        .run(&["demo", "--dir", dir.to_str().unwrap(), "--size-mb", "4"])
        .ok();
    let lost = r
        .stdout
        .lines()
        .find(|l| l.starts_with("9. lost 2024-03"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(
        lost.contains("invoices missing") || lost.contains(" invoices, "),
        "{lost}"
    );
    let back = r
        .stdout
        .lines()
        .find(|l| l.starts_with("10. restore-period --apply"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(back.ends_with("as the snapshot does"), "{back}");
    let db = dir.join("invoices.sqlite");
    assert!(
        number(
            &db,
            "SELECT count(*) FROM invoices WHERE issue_date LIKE '2024-03%'"
        ) > 0
    );
}
