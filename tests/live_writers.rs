//! Backups taken while another process keeps committing must be transactionally consistent:
//! each restored snapshot keeps the writer's invariant, passes integrity_check and
//! foreign_key_check, and hashes to its manifest's SHA-256. Runs in WAL and rollback modes.
//! In WAL mode SQLite's check and the invoice facts are measured on a second connection beside
//! the page read: they must describe the very snapshot stored.

mod common;
use common::{sha256_file, sqlite_checks, Env, DEMO_BUSINESS};
use invoice_vault::sample::{self, JournalMode};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const WRITER_DB: &str = "IVAULT_TEST_WRITER_DB";

/// Not a test: the writer process. The test binary re-runs itself with this filter, so the
/// writer is a separate process with its own locks, like a real invoicing application.
#[test]
#[ignore = "helper process for the live-writer tests"]
fn writer_process() {
    let Ok(db) = std::env::var(WRITER_DB) else {
        return;
    };
    let stop = format!("{db}.stop");
    let progress = format!("{db}.progress");
    let mut conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(60)).unwrap();
    let mut n = 0u64;
    while !Path::new(&stop).exists() {
        sample::write_one(&mut conn, n).unwrap();
        n += 1;
        if n % 10 == 0 {
            report(&progress, n);
        }
    }
    report(&progress, n);
}

/// Replaces the progress file atomically, so a reader never sees it half-written.
fn report(progress: &str, n: u64) {
    let tmp = format!("{progress}.tmp");
    std::fs::write(&tmp, n.to_string()).unwrap();
    std::fs::rename(&tmp, progress).unwrap();
}

fn spawn_writer(db: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "writer_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_DB, db)
        .spawn()
        .unwrap()
}

fn commits(db: &Path) -> u64 {
    std::fs::read_to_string(format!("{}.progress", db.display()))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn wait_for_commits(db: &Path, at_least: u64) {
    let start = Instant::now();
    while commits(db) < at_least {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "writer made no progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn backups_under_load(mode: JournalMode) {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("live.sqlite", 12, mode);
    let dbs = db.to_str().unwrap();
    let mut writer = spawn_writer(&db);
    wait_for_commits(&db, 20);

    let mut ids = Vec::new();
    let mut during = Vec::new();
    for round in 0..3 {
        let before = commits(&db);
        let full = if round == 1 { "--full" } else { "--tag=live" };
        let r = env.backup_report(dbs, &repo, &["--lock-timeout", "60", full]);
        ids.push(r["snapshot_id"].as_str().unwrap().to_string());
        if mode == JournalMode::Rollback {
            // Pages are staged locally, so writers wait for the read, not for the whole backup.
            let (lock, total) = (
                r["read_lock_ms"].as_u64().unwrap(),
                r["duration_ms"].as_u64().unwrap(),
            );
            assert!(lock * 2 <= total, "read lock held {lock} ms of {total} ms");
        }
        during.push(commits(&db).saturating_sub(before));
        wait_for_commits(&db, commits(&db) + 10);
    }
    std::fs::write(format!("{dbs}.stop"), b"").unwrap();
    assert!(writer.wait().unwrap().success());
    // The writer really was committing while the backups ran (in WAL mode it is never blocked).
    if mode == JournalMode::Wal {
        assert!(
            during.iter().sum::<u64>() > 0,
            "no commits during the backups: {during:?}"
        );
    }

    let list = env
        .run(&["snapshots", "--repo", &repo, "--identity", &key, "--json"])
        .ok()
        .json();
    for id in &ids {
        let out = env.path(&format!("restored-{}.sqlite", &id[..8]));
        env.restore(id, &repo, &key, &out);
        let manifest = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id.as_str())
            .unwrap();
        assert_eq!(
            sha256_file(&out),
            manifest["database_sha256"].as_str().unwrap()
        );
        assert_eq!(sqlite_checks(&out), None, "snapshot {id}");
        let conn = rusqlite::Connection::open(&out).unwrap();
        assert_eq!(
            sample::check_invariants(&conn).unwrap(),
            None,
            "snapshot {id} is not consistent"
        );
        let invoices: i64 = conn
            .query_row("SELECT count(*) FROM invoices", [], |r| r.get(0))
            .unwrap();
        assert_eq!(manifest["tables"]["invoices"].as_i64().unwrap(), invoices);
    }
    // Later snapshots saw more of the writer's invoices.
    let counts: Vec<i64> = ids
        .iter()
        .map(|id| {
            let m = list
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == id.as_str())
                .unwrap();
            m["tables"]["invoices"].as_i64().unwrap()
        })
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]) && counts[0] < counts[2],
        "{counts:?}"
    );
}

#[test]
fn consistent_snapshots_while_writing_in_wal_mode() {
    backups_under_load(JournalMode::Wal);
}

#[test]
fn consistent_snapshots_while_writing_in_rollback_mode() {
    backups_under_load(JournalMode::Rollback);
}

#[test]
fn facts_and_check_measured_beside_the_read_describe_the_snapshot_stored() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("live.sqlite", 12, JournalMode::Wal);
    let policy = env.path("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[source]]\nname = \"live\"\npath = \"{}\"\n{DEMO_BUSINESS}\n[[target]]\nname = \"local\"\nurl = \"{repo}\"\n\n[encryption]\nidentity_file = \"{key}\"\n",
            db.display()
        ),
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    let mut writer = spawn_writer(&db);
    wait_for_commits(&db, 20);
    for _ in 0..2 {
        env.run(&["backup", "live", "--policy", policy, "--lock-timeout", "60"])
            .ok();
        wait_for_commits(&db, commits(&db) + 10);
    }
    std::fs::write(format!("{}.stop", db.display()), b"").unwrap();
    assert!(writer.wait().unwrap().success());

    let list = env
        .run(&["snapshots", "--repo", &repo, "--identity", &key, "--json"])
        .ok()
        .json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let mut invoices = Vec::new();
    for m in list {
        let id = m["id"].as_str().unwrap();
        assert_eq!(m["source_check"]["pragma"], "quick_check", "{m}");
        assert_eq!(m["source_check"]["ok"], true, "{m}");
        let out = env.path(&format!("restored-{}.sqlite", &id[..8]));
        env.restore(id, &repo, &key, &out);
        let conn = rusqlite::Connection::open(&out).unwrap();
        let facts =
            invoice_vault::source::facts::measure(&conn, &sample::business_description()).unwrap();
        assert_eq!(
            m["business"]["months"],
            serde_json::to_value(&facts.months).unwrap(),
            "snapshot {id}: the facts recorded are not those of the pages stored"
        );
        invoices.push(facts.months.iter().map(|f| f.invoices).sum::<u64>());
    }
    // The writer's invoices went on arriving between the two snapshots.
    assert!(invoices[0] < invoices[1], "{invoices:?}");
}
