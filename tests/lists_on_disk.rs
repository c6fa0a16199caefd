//! A large backup keeps the blobs it knows, and the packs it stored, on disk instead of in
//! memory; a large restore sorts its read plan there. Forced to with a tiny budget
//! (`IVAULT_LIST_MEMORY`), backups store exactly the pages they store with the default
//! budget, restores of the full, the incremental and a second full (every blob then stored
//! twice) give back the same bytes, and
//! `check`, which keeps the tree segments it reads on disk, finds the same problems with
//! either budget, on two databases unlike each other, leaving nothing behind.

mod common;
use common::{sha256_file, Env};
use invoice_vault::sample::{self, JournalMode};
use rusqlite::{params, Connection};
use std::path::Path;

/// A budget of a few dozen records: the lists are sorted in many runs, merged in more than
/// one pass, and the known blobs are in many runs on disk.
const TINY: &str = "2000";
const DEFAULT: &str = "16777216";

fn tiny_env() -> Env {
    Env::with_vars(vec![("IVAULT_LIST_MEMORY", TINY.into())])
}

/// Backs `db` up, lets `change` change it, backs it up again, and once more in full after
/// another change, each time into a repository with the tiny budget and one with the default;
/// then restores every snapshot of the first and compares each with the database as it was.
fn round_trips_through_lists_on_disk(env: &Env, db: &Path, change: impl Fn(&Path)) {
    let (key, recipient) = env.new_key("identity.txt");
    let repos = [env.path("repo"), env.path("repo-default")];
    for r in &repos {
        env.run(&["init", r.to_str().unwrap(), "--recipient", &recipient])
            .ok();
    }
    let (repo, repo_default) = (repos[0].to_str().unwrap(), repos[1].to_str().unwrap());
    let dbs = db.to_str().unwrap();
    let mut expected = Vec::new();
    let mut last_full_packs = Vec::new();
    // A full, an incremental, and a full again: every blob then has two copies, which the
    // restore plan weighs (kept on disk past the budget too).
    for round in 0..3 {
        if round > 0 {
            change(db);
        }
        let full: &[&str] = if round == 2 { &["--full"] } else { &[] };
        let before = common::walk(&repos[0].join("data"));
        let tiny = env.backup_report(dbs, repo, full);
        if round == 2 {
            last_full_packs = common::walk(&repos[0].join("data"));
            last_full_packs.retain(|p| !before.contains(p));
        }
        let mut args = vec!["backup", dbs, "--to", repo_default, "--json"];
        args.extend_from_slice(full);
        let default = env
            .run_env(&args, &[("IVAULT_LIST_MEMORY", DEFAULT)])
            .ok()
            .json()[0]
            .clone();
        for field in ["kind", "pages_new", "bytes_new"] {
            assert_eq!(tiny[field], default[field], "round {round}: {field}");
        }
        let (new, all) = (&tiny["pages_new"], &tiny["page_count"]);
        // The first backup of a database with no repeated page stores every page.
        assert!(
            round != 1 || new.as_u64() < all.as_u64(),
            "{new} of {all} pages new"
        );
        let id = tiny["snapshot_id"].as_str().unwrap().to_string();
        expected.push((id, sha256_file(db)));
    }
    let out_dir = env.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    for (k, (id, sha)) in expected.iter().enumerate() {
        let out = out_dir.join(format!("restored-{k}.sqlite"));
        env.restore(id, repo, &key, &out);
        assert_eq!(&sha256_file(&out), sha, "snapshot {id}");
    }
    // The runs were unnamed files: only the restored databases are there.
    let mut left: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "restored-0.sqlite",
            "restored-1.sqlite",
            "restored-2.sqlite"
        ]
    );

    // A lost data pack: both budgets name it, and the same snapshots.
    let check = |budget: &str| {
        let args = ["check", "--repo", repo, "--identity", &key, "--json"];
        let run = env.run_env(&args, &[("IVAULT_LIST_MEMORY", budget)]);
        (run.code, run.json()["problems"].clone())
    };
    assert_eq!(check(TINY).0, 0);
    // From a host whose state directory does not exist yet, too.
    let fresh = env.path("other-host/state");
    let args = ["check", "--repo", repo, "--identity", &key, "--json"];
    let fresh_state = [
        ("IVAULT_LIST_MEMORY", TINY),
        ("IVAULT_STATE_DIR", fresh.to_str().unwrap()),
    ];
    let run = env.run_env(&args, &fresh_state);
    assert_eq!(
        (run.code, &run.json()["ok"]),
        (0, &serde_json::json!(true)),
        "{}",
        run.stderr
    );
    // The last full's packs lost: the pages changed just before it had no other copy.
    for lost in &last_full_packs {
        std::fs::remove_file(lost).unwrap();
    }
    let (code, problems) = check(TINY);
    assert_eq!((code, &problems), (5, &check(DEFAULT).1));
    let problems = problems.as_array().unwrap();
    assert_eq!(problems.len(), last_full_packs.len(), "{problems:?}");
    let affected: Vec<&serde_json::Value> = problems
        .iter()
        .flat_map(|p| p["affected_snapshots"].as_array().unwrap())
        .collect();
    assert!(
        affected.contains(&&expected[2].0.as_str().into()),
        "{problems:?}"
    );
}

#[test]
fn the_sample_invoice_database_round_trips_through_lists_on_disk() {
    let env = tiny_env();
    let db = env.database("invoices.sqlite", 8, JournalMode::Wal);
    round_trips_through_lists_on_disk(&env, &db, |db| {
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
fn a_database_of_small_pages_and_repeated_pages_round_trips_through_lists_on_disk() {
    let env = tiny_env();
    let db = env.path("documents.sqlite");
    documents(&db);
    round_trips_through_lists_on_disk(&env, &db, |db| {
        let c = Connection::open(db).unwrap();
        c.execute(
            "UPDATE scan SET image = zeroblob(3000) WHERE id % 7 = 0",
            [],
        )
        .unwrap();
        c.execute("DELETE FROM scan WHERE id % 11 = 0", []).unwrap();
        // Something new each time it runs.
        c.execute(
            "UPDATE scan SET invoice = invoice || '+' WHERE id % 13 = 0",
            [],
        )
        .unwrap();
    });
}
