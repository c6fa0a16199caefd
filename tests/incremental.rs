//! Incremental backups store only changed pages; every snapshot restores alone to exactly the
//! database it was taken of; `--full` stores everything again in fresh packs.

mod common;
use common::Env;
use invoice_vault::sample::{self, JournalMode};
use invoice_vault::source::compare;
use std::collections::HashSet;
use std::path::PathBuf;

fn packs(repo: &str) -> HashSet<PathBuf> {
    common::walk(&PathBuf::from(repo).join("data"))
        .into_iter()
        .collect()
}

#[test]
fn a_day_of_business_costs_a_small_incremental_and_every_snapshot_restores_exactly() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 32, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    let before = env.path("before.sqlite");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("VACUUM INTO ?1", [before.to_str().unwrap()])
        .unwrap();

    let full = env.backup_report(dbs, &repo, &[]);
    let stats = sample::day_of_business(&db, 5).unwrap();
    assert!(stats.updated > 0 && stats.added > 0);
    let incr = env.backup_report(dbs, &repo, &[]);

    assert_eq!(full["kind"], "full");
    assert_eq!(incr["kind"], "incremental");
    assert_eq!(incr["parent"], full["snapshot_id"]);
    let (fs, is) = (
        full["bytes_stored"].as_u64().unwrap(),
        incr["bytes_stored"].as_u64().unwrap(),
    );
    assert!(is * 4 < fs, "incremental stored {is} bytes, full {fs}");
    let pages = incr["page_count"].as_u64().unwrap();
    assert!(incr["pages_new"].as_u64().unwrap() * 2 < pages);

    let base = ["--repo", repo.as_str(), "--identity", key.as_str()];
    for (id, expected) in [(&incr["snapshot_id"], &db), (&full["snapshot_id"], &before)] {
        let out = env.path(&format!("{}.sqlite", &id.as_str().unwrap()[..8]));
        let mut a = vec![
            "restore",
            id.as_str().unwrap(),
            "--to",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(&base);
        env.run(&a).ok();
        assert_eq!(
            compare::differing_tables(expected, &out).unwrap(),
            Vec::<String>::new()
        );
    }
    // And the two differ from each other where the business happened.
    assert!(!compare::differing_tables(&before, &db).unwrap().is_empty());
}

#[test]
fn a_full_backup_does_not_depend_on_older_packs() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 8, JournalMode::Rollback);
    let dbs = db.to_str().unwrap();
    env.run(&["backup", dbs, "--to", &repo]).ok();
    let old = packs(&repo);
    let full = env.backup_report(dbs, &repo, &["--full"]);
    assert_eq!(full["pages_new"], full["page_count"]);
    // Losing every older pack does not touch the new full snapshot.
    for p in &old {
        std::fs::remove_file(p).unwrap();
    }
    // check names the lost packs but knows the full snapshot is intact.
    let c = env.check(&repo, &key, true);
    assert_eq!(c.code, 5);
    let problems = c.json()["problems"].as_array().unwrap().clone();
    assert_eq!(problems.len(), old.len());
    for p in &problems {
        assert!(
            !p["affected_snapshots"]
                .as_array()
                .unwrap()
                .contains(&full["snapshot_id"]),
            "{p}"
        );
    }
    let out = env.path("out.sqlite");
    env.restore(full["snapshot_id"].as_str().unwrap(), &repo, &key, &out);
    assert!(compare::differing_tables(&db, &out).unwrap().is_empty());
}

#[test]
fn no_plaintext_leaves_the_machine() {
    let env = Env::new();
    let (_key, repo) = env.key_and_repo();
    let db = env.path("secret.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE confidential_customers (name TEXT, note TEXT, amount INTEGER);",
    )
    .unwrap();
    for i in 0..3000 {
        conn.execute(
            "INSERT INTO confidential_customers VALUES (?1, ?2, ?3)",
            rusqlite::params![
                format!("CANARY-{i:05}-Acme Trading"),
                "金桥科技有限公司 技术服务费",
                1234567 + i
            ],
        )
        .unwrap();
    }
    drop(conn);
    env.run(&[
        "backup",
        db.to_str().unwrap(),
        "--to",
        &repo,
        "--tag",
        "quarterly-close",
    ])
    .ok();
    let needles: [&[u8]; 5] = [
        b"CANARY-",
        "金桥科技".as_bytes(),
        b"confidential_customers",
        b"secret",
        b"quarterly-close",
    ];
    let objects = common::walk(&PathBuf::from(&repo));
    assert!(objects.len() >= 4);
    for o in objects {
        let bytes = std::fs::read(&o).unwrap();
        for n in needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n),
                "{} holds {:?}",
                o.display(),
                String::from_utf8_lossy(n)
            );
        }
    }
}
