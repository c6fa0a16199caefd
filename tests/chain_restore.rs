//! Restores stay close to a full's cost however long the chain: a restore reads a blob from
//! the copy that serves most of the snapshot's pages (so after `backup --full` it reads the
//! new full's packs, not the old chain's), and a backup turns full by itself once the
//! incrementals since the last full stored the `--full-after-changed` share of the database.
//! Each on two databases unlike each other: the sample invoices in WAL mode, and a ledger of
//! 2 KiB pages keyed by text in rollback-journal mode.

mod common;
use common::{sha256_file, Env};
use invoice_vault::sample::{self, JournalMode};
use rusqlite::{params, Connection};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A database, and a day of changes spread over it (the day's number given).
struct Database {
    path: PathBuf,
    change: fn(&Path, u64),
}

fn invoices(env: &Env) -> Database {
    Database {
        path: env.database("invoices.sqlite", 8, JournalMode::Wal),
        change: |db, day| {
            sample::day_of_business(db, day).unwrap();
        },
    }
}

fn ledger(env: &Env) -> Database {
    let path = env.path("ledger.sqlite");
    let c = Connection::open(&path).unwrap();
    c.execute_batch(
        "PRAGMA page_size = 2048; PRAGMA journal_mode = DELETE;
         CREATE TABLE entry (code TEXT PRIMARY KEY, seq INTEGER NOT NULL,
           account TEXT NOT NULL, amount INTEGER NOT NULL, memo TEXT NOT NULL) WITHOUT ROWID;
         CREATE INDEX entry_account ON entry (account, amount);",
    )
    .unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for i in 0..30_000u32 {
        tx.execute(
            "INSERT INTO entry VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                format!("LG-{:08x}", i.wrapping_mul(2_654_435_761)),
                i,
                format!("acct-{}", i % 97),
                i64::from(i) * 13 % 100_003,
                format!("entry {i} of the ledger, posted and reconciled"),
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    Database {
        path,
        change: |db, day| {
            // Keys are hashed, so every 53rd entry by number is anywhere in the key order.
            let c = Connection::open(db).unwrap();
            c.execute(
                "UPDATE entry SET amount = amount + ?1 WHERE seq % 53 = ?2",
                params![day as i64, (day % 53) as i64],
            )
            .unwrap();
        },
    }
}

/// A policy of one source and one target whose backups turn full after `limit` (as written
/// in TOML).
fn policy_text(db: &Path, repo: &str, recipient: &str, limit: &str) -> String {
    format!(
        "[[source]]\nname = \"books\"\npath = \"{}\"\n\n[[target]]\nname = \"local\"\nurl = \"{repo}\"\n\n[schedule]\nfull_after_changed = {limit}\n\n[encryption]\nrecipients = [\"{recipient}\"]\n",
        db.display()
    )
}

fn databases(env: &Env) -> Vec<Database> {
    vec![invoices(env), ledger(env)]
}

fn backup(env: &Env, db: &Path, repo: &str, extra: &[&str]) -> Value {
    env.backup_report(db.to_str().unwrap(), repo, extra)
}

fn id(report: &Value) -> String {
    report["snapshot_id"].as_str().unwrap().to_string()
}

/// Restores `id`, SHA-256 only; checks the bytes against `sha` and returns the bytes read.
fn restored_reading(env: &Env, (repo, key): (&str, &str), id: &str, sha: &str) -> u64 {
    let out = env.path(&format!("restored-{id}.sqlite"));
    let args = ["--json", "--integrity-check", "off"];
    let r = env.restore_with(id, repo, key, &out, &args).ok().json();
    assert_eq!(sha256_file(&out), sha, "snapshot {id}");
    std::fs::remove_file(&out).unwrap();
    r["bytes_read"].as_u64().unwrap()
}

#[test]
fn after_a_new_full_a_restore_reads_its_packs_not_the_old_chain() {
    let env = Env::new();
    for (k, db) in databases(&env).into_iter().enumerate() {
        let (key, recipient) = env.new_key(&format!("identity-{k}.txt"));
        let repo = env.path(&format!("repo-{k}"));
        let repo = repo.to_str().unwrap();
        env.run(&["init", repo, "--recipient", &recipient]).ok();
        let chain_only = ["--full-after-changed", "off"];
        backup(&env, &db.path, repo, &chain_only);
        for day in 1..=5 {
            (db.change)(&db.path, day);
            let r = backup(&env, &db.path, repo, &chain_only);
            assert_eq!(r["kind"], "incremental");
        }
        let full = backup(&env, &db.path, repo, &["--full"]);
        assert_eq!(full["kind"], "full");
        assert!(full.get("full_because").is_none(), "{full}");
        let read = restored_reading(&env, (repo, &key), &id(&full), &sha256_file(&db.path));
        let stored = full["bytes_stored"].as_u64().unwrap();
        // Every page has a copy in the old chain too; reading those would cost far more.
        assert!(
            read <= stored + stored / 10,
            "database {k}: the restore of the new full read {read} bytes, the full stored {stored}"
        );

        (db.change)(&db.path, 6);
        let next = backup(&env, &db.path, repo, &chain_only);
        assert_eq!(next["kind"], "incremental");
        let read = restored_reading(&env, (repo, &key), &id(&next), &sha256_file(&db.path));
        let stored = stored + next["bytes_stored"].as_u64().unwrap();
        assert!(
            read <= stored + stored / 10,
            "database {k}: the restore of the incremental after the full read {read} bytes, the two stored {stored}"
        );
    }
}

#[test]
fn a_backup_turns_full_once_the_chain_stored_the_limit() {
    let env = Env::new();
    let limit = 20u64;
    for (k, db) in databases(&env).into_iter().enumerate() {
        let (key, recipient) = env.new_key(&format!("identity-{k}.txt"));
        let repo = env.path(&format!("repo-{k}"));
        let repo = repo.to_str().unwrap();
        env.run(&["init", repo, "--recipient", &recipient]).ok();
        // The first database is given the limit on the command line, the second by a policy.
        let policy = env.path(&format!("policy-{k}.toml"));
        std::fs::write(&policy, policy_text(&db.path, repo, &recipient, "\"20%\"")).unwrap();
        let limit_arg = match k {
            0 => ["--full-after-changed", "20%"],
            _ => ["--policy", policy.to_str().unwrap()],
        };
        let first = backup(&env, &db.path, repo, &limit_arg);
        assert_eq!(first["kind"], "full");
        assert!(first.get("full_because").is_none(), "{first}");
        let (mut changed, mut turned) = (0u64, 0);
        let mut last = first;
        for day in 1..=8 {
            (db.change)(&db.path, day);
            let size = last["database_bytes"].as_u64().unwrap();
            let percent = changed * 100 / size;
            let r = backup(&env, &db.path, repo, &limit_arg);
            // The size the backup weighs against is the file's before it reads; close to
            // the limit the two may differ, so only clear cases are held to a kind.
            if percent.abs_diff(limit) > 2 {
                let due = percent >= limit;
                assert_eq!(
                    r["kind"],
                    if due { "full" } else { "incremental" },
                    "database {k}, day {day}: {percent}% changed since the last full"
                );
            }
            if r["kind"] == "full" {
                turned += 1;
                let why = r["full_because"].as_str().unwrap();
                assert!(why.contains("(the limit is 20%"), "{why}");
                assert!(why.contains(&format!("worth {percent}%")), "{why}");
                changed = 0;
            } else {
                assert!(r.get("full_because").is_none(), "{r}");
                changed += r["bytes_new"].as_u64().unwrap();
            }
            let sha = sha256_file(&db.path);
            restored_reading(&env, (repo, &key), &id(&r), &sha);
            last = r;
        }
        assert!(turned >= 1, "database {k}: no backup turned full in 8 days");

        // `off` keeps the chain going however long it gets.
        for day in 9..=12 {
            (db.change)(&db.path, day);
            let r = backup(&env, &db.path, repo, &["--full-after-changed", "off"]);
            assert_eq!(r["kind"], "incremental", "database {k}, day {day}");
        }
    }
}

#[test]
fn a_limit_that_is_no_percent_is_refused_before_anything_is_read() {
    let env = Env::new();
    let (_, repo) = env.key_and_repo();
    let db = env.database("invoices.sqlite", 1, JournalMode::Wal);
    for bad in ["0", "150.5", "half", "10001"] {
        let args = [
            "backup",
            db.to_str().unwrap(),
            "--to",
            &repo,
            "--full-after-changed",
            bad,
        ];
        let r = env.run(&args);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.stderr.contains("from 1 to 10000"), "{bad}: {}", r.stderr);
    }
    assert!(common::walk(&Path::new(&repo).join("snapshots")).is_empty());

    let policy = env.path("policy.toml");
    let recipient = env.new_key("other.txt").1;
    std::fs::write(&policy, policy_text(&db, &repo, &recipient, "0")).unwrap();
    let r = env.run(&["policy", "check", policy.to_str().unwrap()]);
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("[schedule] full_after_changed: \"0\" is not a limit for full backups"),
        "{}",
        r.stderr
    );
}
