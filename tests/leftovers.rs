//! Files that crashed databases leave behind: a hot journal on a source is named for what it
//! is (and left for SQLite to roll back).

mod common;
use common::crashed_writer::{self, journal, leave_hot_journal};
use common::{sha256_file, Env};
use invoice_vault::sample::{self, GenerateOptions, JournalMode};
use invoice_vault::source::compare;
use std::path::{Path, PathBuf};

const SOURCE: i32 = 3;

#[test]
#[ignore = "the crashing writer of common::crashed_writer, run as a child process"]
fn crashing_writer() {
    crashed_writer::writer();
}

fn database(env: &Env, name: &str, seed: u64, journal_mode: JournalMode) -> PathBuf {
    let p = env.path(name);
    let opts = GenerateOptions {
        size_mb: 1,
        seed,
        journal_mode,
    };
    sample::generate(&p, &opts).unwrap();
    p
}

fn snapshot_count(repo: &str) -> usize {
    common::walk(&Path::new(repo).join("snapshots")).len()
}

#[test]
fn a_source_with_a_hot_journal_is_named_as_such_and_left_alone() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = database(&env, "crashed.sqlite", 3, JournalMode::Rollback);
    let intact = env.path("intact.sqlite");
    std::fs::copy(&db, &intact).unwrap();
    leave_hot_journal(&db, "crashing_writer");
    let (db_sha, journal_sha) = (sha256_file(&db), sha256_file(&journal(&db)));
    assert_ne!(db_sha, sha256_file(&intact), "no page reached the file");

    let r = env.run(&["backup", db.to_str().unwrap(), "--to", &repo]);
    assert_eq!(r.code, SOURCE, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "ivault: source database {} has a hot journal left by a writer that crashed; open it once with sqlite3 or the application so SQLite rolls it back, then back up again\n",
            db.display()
        )
    );
    assert_eq!(snapshot_count(&repo), 0);
    // Read-only: the journal and the half-changed file are as the writer left them.
    assert_eq!(sha256_file(&db), db_sha);
    assert_eq!(sha256_file(&journal(&db)), journal_sha);

    // Once SQLite has rolled the journal back, the backup holds the last committed rows.
    let rolled_back: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM invoice_items", [], |r| r.get(0))
        .unwrap();
    assert!(rolled_back > 0);
    assert!(!journal(&db).exists());
    env.run(&["backup", db.to_str().unwrap(), "--to", &repo])
        .ok();
    let out = env.path("out.sqlite");
    env.restore("latest", &repo, &key, &out);
    assert_eq!(
        compare::differing_tables(&intact, &out).unwrap(),
        Vec::<String>::new()
    );
}
