//! Files that crashed or replaced databases leave behind: a hot journal on a source is named
//! for what it is (and left for SQLite to roll back), and the stale `-wal`, `-shm` and
//! `-journal` beside a destination that `restore --force` replaces are removed before they
//! can be applied to the restored database.

mod common;
use common::crashed_writer::{self, journal, leave_hot_journal};
use common::{sha256_file, sqlite_checks, Env};
use invoice_vault::sample::{self, GenerateOptions, JournalMode};
use invoice_vault::source::compare;
use std::ffi::OsString;
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

fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut p = OsString::from(db.as_os_str());
    p.push(suffix);
    PathBuf::from(p)
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

#[test]
fn restore_force_removes_stale_wal_shm_and_journal_files() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    // Leftovers of other databases with the same page size: a WAL with committed frames that
    // were never checkpointed (and its index), and the hot journal of a crashed writer.
    let wal_db = database(&env, "other-wal.sqlite", 5, JournalMode::Wal);
    let writer = rusqlite::Connection::open(&wal_db).unwrap();
    writer
        .execute_batch("PRAGMA wal_autocheckpoint = 0; DELETE FROM invoice_items;")
        .unwrap();
    let crashed = database(&env, "other-journal.sqlite", 6, JournalMode::Rollback);
    leave_hot_journal(&crashed, "crashing_writer");

    let leftover = |suffix: &str| match suffix {
        "-journal" => journal(&crashed),
        _ => beside(&wal_db, suffix),
    };
    assert!(std::fs::metadata(leftover("-wal")).unwrap().len() > 0);

    // Each kind of leftover on its own (each would be applied to the restored database, as
    // the read-back below shows without the removal), then all of them together.
    for (name, mode, suffixes) in [
        ("wal", JournalMode::Wal, &["-wal", "-shm"][..]),
        ("rollback", JournalMode::Rollback, &["-journal"][..]),
        (
            "all",
            JournalMode::Rollback,
            &["-wal", "-shm", "-journal"][..],
        ),
    ] {
        let db = database(&env, &format!("{name}.sqlite"), 7, mode);
        env.run(&["backup", db.to_str().unwrap(), "--to", &repo])
            .ok();
        // The database being replaced is the crashed writer's file.
        let dest = env.path(&format!("{name}-restored.sqlite"));
        std::fs::copy(&crashed, &dest).unwrap();
        for suffix in suffixes {
            std::fs::copy(leftover(suffix), beside(&dest, suffix)).unwrap();
        }

        let to = dest.to_str().unwrap();
        env.run(&[
            "restore",
            "latest",
            "--source",
            name,
            "--repo",
            &repo,
            "--identity",
            &key,
            "--to",
            to,
            "--force",
        ])
        .ok();
        for suffix in ["-wal", "-shm", "-journal"] {
            assert!(!beside(&dest, suffix).exists(), "{name}: {suffix} is left");
        }
        assert_eq!(sha256_file(&dest), sha256_file(&db), "{name}");
        // Opened read-write, as the application would: nothing is applied to it.
        assert_eq!(sqlite_checks(&dest), None, "{name}");
        assert_eq!(
            compare::differing_tables(&db, &dest).unwrap(),
            Vec::<String>::new(),
            "{name}"
        );
    }
    drop(writer);
}

#[test]
fn a_leftover_that_cannot_be_removed_stops_the_restore() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = database(&env, "db.sqlite", 8, JournalMode::Wal);
    env.run(&["backup", db.to_str().unwrap(), "--to", &repo])
        .ok();
    let dest = env.path("dest.sqlite");
    std::fs::write(&dest, b"the old database").unwrap();
    std::fs::create_dir(beside(&dest, "-wal")).unwrap();
    std::fs::write(beside(&dest, "-wal").join("x"), b"x").unwrap();
    let r = env.run(&[
        "restore",
        "latest",
        "--repo",
        &repo,
        "--identity",
        &key,
        "--to",
        "dest.sqlite",
        "--force",
    ]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "ivault: cannot remove dest.sqlite-wal, left by the database being replaced, which SQLite would apply to the restored one: Is a directory (os error 21)\n"
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"the old database");
    assert_eq!(env.files_named(".ivault-"), Vec::<PathBuf>::new());
}
