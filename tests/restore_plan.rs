//! A large restore sorts its read plan on disk instead of holding it in memory. Forced to do
//! so with a tiny budget (`IVAULT_PLAN_MEMORY`), a restore of a full snapshot and of an
//! incremental one gives back the same bytes, on two databases unlike each other, and leaves
//! nothing beside the restored file.

mod common;
use common::{sha256_file, Env};
use invoice_vault::sample::{self, JournalMode};
use rusqlite::{params, Connection};
use std::path::Path;

/// A budget of a few dozen records: the plan's lists are sorted in many runs, merged in
/// more than one pass.
const TINY: &str = "2000";

/// Backs `db` up, lets `change` change it, backs it up again, then restores both snapshots
/// through a plan sorted on disk and compares each with the database as it was.
fn restores_through_runs_on_disk(env: &Env, db: &Path, change: impl Fn(&Path)) {
    let (key, repo) = env.key_and_repo();
    let dbs = db.to_str().unwrap();
    let mut expected = Vec::new();
    for round in 0..2 {
        if round > 0 {
            change(db);
        }
        let id = env.backup_report(dbs, &repo, &[])["snapshot_id"]
            .as_str()
            .unwrap()
            .to_string();
        expected.push((id, sha256_file(db)));
    }
    let out_dir = env.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    for (k, (id, sha)) in expected.iter().enumerate() {
        let out = out_dir.join(format!("restored-{k}.sqlite"));
        let args = [
            "restore",
            id,
            "--repo",
            &repo,
            "--identity",
            &key,
            "--to",
            out.to_str().unwrap(),
        ];
        env.run_env(&args, &[("IVAULT_PLAN_MEMORY", TINY)]).ok();
        assert_eq!(&sha256_file(&out), sha, "snapshot {id}");
    }
    // The runs were unnamed files: only the restored databases are there.
    let mut left: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["restored-0.sqlite", "restored-1.sqlite"]);
}

#[test]
fn the_sample_invoice_database_restores_through_a_plan_sorted_on_disk() {
    let env = Env::new();
    let db = env.database("invoices.sqlite", 8, JournalMode::Wal);
    restores_through_runs_on_disk(&env, &db, |db| {
        sample::day_of_business(db, 3).unwrap();
    });
}

/// 1 KiB pages in rollback-journal mode, and many pages that are the same blob (rows of
/// zeros), so one blob fills pages far apart in the file.
fn documents(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "PRAGMA page_size = 1024; PRAGMA journal_mode = DELETE;
         CREATE TABLE scan (id INTEGER PRIMARY KEY, invoice TEXT NOT NULL, image BLOB NOT NULL);",
    )
    .unwrap();
    let mut insert = c
        .prepare("INSERT INTO scan (invoice, image) VALUES (?1, ?2)")
        .unwrap();
    for i in 0..600u32 {
        let image: Vec<u8> = if i % 3 == 0 {
            vec![0; 3000]
        } else {
            (0..3000u32)
                .map(|b| (b.wrapping_mul(31) ^ i.wrapping_mul(97)) as u8)
                .collect()
        };
        insert
            .execute(params![format!("INV-{i:05}"), image])
            .unwrap();
    }
}

#[test]
fn a_database_of_small_pages_and_repeated_pages_restores_through_a_plan_sorted_on_disk() {
    let env = Env::new();
    let db = env.path("documents.sqlite");
    documents(&db);
    restores_through_runs_on_disk(&env, &db, |db| {
        let c = Connection::open(db).unwrap();
        c.execute(
            "UPDATE scan SET image = zeroblob(3000) WHERE id % 7 = 0",
            [],
        )
        .unwrap();
        c.execute("DELETE FROM scan WHERE id % 11 = 0", []).unwrap();
    });
}
