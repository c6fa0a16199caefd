//! The SQLite check a restore runs after the SHA-256: `quick_check` by default,
//! `--integrity-check full` (per table, in parallel, with a whole-file `quick_check`) and
//! `off`. A source whose index disagrees with its table passes `quick_check` (it reads no index
//! against its table) and is backed up; only the full check finds it, and then the restore
//! leaves nothing behind.

mod common;
use common::{sha256_file, Env};
use invoice_vault::sample::JournalMode;
use rusqlite::Connection;
use std::path::Path;

/// A database whose index `by_b` was built on column `a` but is declared on `b`: every b-tree
/// is sound, the index's entries are not the table's.
fn index_disagrees_with_table(p: &Path) {
    let c = Connection::open(p).unwrap();
    c.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);
         CREATE INDEX by_b ON t (a);",
    )
    .unwrap();
    for i in 0..200 {
        c.execute(
            "INSERT INTO t (a, b) VALUES (?1, ?2)",
            [format!("a{i:04}"), format!("b{:04}", 1000 - i)],
        )
        .unwrap();
    }
    c.execute_batch(
        "PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET sql = 'CREATE INDEX by_b ON t (b)' WHERE name = 'by_b';
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
}

fn restore(env: &Env, repo: &str, key: &str, id: &str, out: &Path, level: &[&str]) -> common::Run {
    let mut args = vec![
        "restore",
        id,
        "--repo",
        repo,
        "--identity",
        key,
        "--to",
        out.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(level);
    env.run(&args)
}

#[test]
fn only_the_full_check_finds_an_index_that_disagrees_with_its_table() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.path("odd.sqlite");
    index_disagrees_with_table(&db);
    let id = env.backup_report(db.to_str().unwrap(), &repo, &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();

    for (level, check) in [
        (&[][..], "quick"),
        (&["--integrity-check", "off"][..], "off"),
    ] {
        let out = env.path(&format!("restored-{check}.sqlite"));
        let r = restore(&env, &repo, &key, &id, &out, level).ok().json();
        assert_eq!(r["check"], check);
        assert_eq!(sha256_file(&out), sha256_file(&db));
    }

    let out = env.path("restored-full.sqlite");
    let r = restore(&env, &repo, &key, &id, &out, &["--integrity-check", "full"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("fails PRAGMA integrity_check") && r.stderr.contains("by_b"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(env.path(""))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_sound_database_passes_every_level_byte_for_byte() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    for (name, mode) in [
        ("wal.sqlite", JournalMode::Wal),
        ("rollback.sqlite", JournalMode::Rollback),
    ] {
        let db = env.database(name, 2, mode);
        let id = env.backup_report(db.to_str().unwrap(), &repo, &[])["snapshot_id"]
            .as_str()
            .unwrap()
            .to_string();
        for level in ["off", "quick", "full"] {
            let out = env.path(&format!("{level}-{name}"));
            let r = restore(&env, &repo, &key, &id, &out, &["--integrity-check", level])
                .ok()
                .json();
            assert_eq!(r["check"], level);
            assert_eq!(r["integrity_checked"], level != "off");
            assert_eq!(sha256_file(&out), sha256_file(&db), "{level} {name}");
        }
    }
    // The old spelling of `off` still works, and cannot be combined with a level.
    let out = env.path("skipped.sqlite");
    let id = env.snapshot_list(&repo, &key)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = restore(&env, &repo, &key, &id, &out, &["--skip-integrity-check"])
        .ok()
        .json();
    assert_eq!(r["check"], "off");
    let both = ["--skip-integrity-check", "--integrity-check", "full"];
    let r = restore(&env, &repo, &key, &id, &env.path("both.sqlite"), &both);
    assert_eq!(r.code, 2, "{}", r.stderr);
}
