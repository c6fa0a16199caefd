//! A backup that dies at any point leaves a repository that checks clean, and the next backup
//! completes. The real binary is aborted at each failpoint; the library is driven through a
//! storage that fails its N-th write, for every N, and one that runs out of space.

mod common;
use common::Env;
use invoice_vault::engine::backup::{backup, BackupOptions};
use invoice_vault::engine::check::{check, ReadData};
use invoice_vault::engine::restore::{restore, RestoreOptions};
use invoice_vault::repo::manifest::SnapshotKind;
use invoice_vault::repo::{keys, Repository};
use invoice_vault::sample::{self, JournalMode};
use invoice_vault::source::compare;
use invoice_vault::state::State;
use invoice_vault::storage::{
    Fault, FaultKind, FaultyStorage, MemoryStorage, Op, Storage, StorageError,
};
use std::sync::Arc;

#[test]
fn killed_backups_leave_a_valid_repository() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 24, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    env.run(&["backup", dbs, "--to", &repo]).ok();
    let mut seed = 10;
    for point in [
        "pack-written:1",
        "pack-written:2",
        "index-written",
        "manifest-written",
    ] {
        seed += 1;
        sample::day_of_business(&db, seed).unwrap();
        let r = env.run_env(
            &["backup", dbs, "--to", &repo, "--full"],
            &[("IVAULT_FAILPOINT", point)],
        );
        r.killed_at(point);
        let c = env.check(&repo, &key, true);
        assert_eq!(c.code, 0, "{point}: {}", c.stdout);
        // The next run completes and restores exactly the database.
        env.run(&["backup", dbs, "--to", &repo]).ok();
        let out = env.path(&format!("after-{}.sqlite", point.replace(':', "-")));
        env.restore("latest", &repo, &key, &out);
        assert_eq!(
            compare::differing_tables(&db, &out).unwrap(),
            Vec::<String>::new()
        );
    }
    assert_eq!(
        env.run(&["check", "--repo", &repo, "--identity", &key])
            .code,
        0
    );
}

fn setup(env: &Env) -> (std::path::PathBuf, keys::Keyring, String) {
    let db = env.database("db.sqlite", 20, JournalMode::Wal);
    let recipient = keys::generate(&env.path("id.txt"), None).unwrap();
    (
        db,
        keys::load_identity(&env.path("id.txt")).unwrap(),
        recipient,
    )
}

/// A copy of every object in `from`.
fn fork(from: &MemoryStorage) -> Arc<MemoryStorage> {
    let copy = Arc::new(MemoryStorage::new());
    for o in from.list("").unwrap() {
        copy.put(&o.key, &from.get(&o.key).unwrap()).unwrap();
    }
    copy
}

/// How many writes a backup makes from here, counted on copies of the repository and of the
/// state directory, so that neither changes.
fn writes_of_next_backup(
    env: &Env,
    memory: &MemoryStorage,
    db: &std::path::Path,
    opts: &BackupOptions,
) -> usize {
    let scratch = tempfile::tempdir_in(env.dir.path()).unwrap();
    for file in std::fs::read_dir(env.path("state")).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), scratch.path().join(file.file_name())).unwrap();
    }
    let counting = Arc::new(FaultyStorage::new(fork(memory), vec![]));
    let mut state = State::open(scratch.path()).unwrap();
    backup(
        db,
        &Repository::open(counting.clone()).unwrap(),
        &mut state,
        opts,
    )
    .unwrap();
    counting.calls(Op::Put)
}

#[test]
fn failing_the_nth_write_for_every_n_keeps_the_repository_valid() {
    let env = Env::new();
    let (db, keyring, recipient) = setup(&env);
    let memory = Arc::new(MemoryStorage::new());
    Repository::init(memory.clone(), vec![recipient]).unwrap();
    let state_dir = env.path("state");
    State::open(&state_dir).unwrap();
    let mut seed = 100;
    // A full backup into an empty repository, then an incremental one after a day of business.
    // A failed write before the manifest changes nothing the next attempt sees (the state cache
    // learns of packs only once their index is stored), so each attempt makes the same writes
    // as the counted one, up to its fault; the manifest, the last write, is failed last.
    for full in [true, false] {
        seed += 1;
        sample::day_of_business(&db, seed).unwrap();
        let opts = BackupOptions {
            full,
            ..BackupOptions::default()
        };
        let writes = writes_of_next_backup(&env, &memory, &db, &opts);
        // Packs (data and tree), an index, a manifest.
        assert!(writes >= 4, "{writes} writes");
        for n in 1..=writes {
            let fault = common::connection_reset_on_put(n);
            let faulty = Arc::new(FaultyStorage::new(memory.clone(), vec![fault]));
            let mut state = State::open(&state_dir).unwrap();
            let res = backup(
                &db,
                &Repository::open(faulty.clone()).unwrap(),
                &mut state,
                &opts,
            );
            assert!(
                faulty.unexercised().is_empty(),
                "write {n} of {writes} was not failed"
            );
            let e = res.expect_err("the failed write must fail the backup");
            assert_eq!(e.exit_code(), 4, "{e}");
            assert_eq!(
                e.message(),
                format!("target {}: x: connection reset", memory.location())
            );
            let report = check(
                &Repository::open(memory.clone()).unwrap(),
                &keyring,
                ReadData::All,
            )
            .unwrap();
            assert!(report.ok, "after failing write {n}: {:?}", report.problems);
        }
        let mut state = State::open(&state_dir).unwrap();
        let r = backup(
            &db,
            &Repository::open(memory.clone()).unwrap(),
            &mut state,
            &opts,
        )
        .unwrap();
        assert_eq!(r.kind == SnapshotKind::Full, full);
    }
    // After all that, the latest snapshot restores to exactly the database's bytes.
    let repo = Repository::open(memory.clone()).unwrap();
    let out = env.path("out.sqlite");
    restore(&repo, &keyring, "latest", &out, &RestoreOptions::default()).unwrap();
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));
}

#[test]
fn disk_full_fails_clearly_and_keeps_the_repository_valid() {
    let env = Env::new();
    let (db, keyring, recipient) = setup(&env);
    let memory = Arc::new(MemoryStorage::new());
    Repository::init(memory.clone(), vec![recipient]).unwrap();
    let mut state = State::open(&env.path("state")).unwrap();
    let full = Arc::new(FaultyStorage::new(
        memory.clone(),
        vec![Fault {
            op: Op::Put,
            nth: 2,
            kind: FaultKind::Truncate(100, StorageError::NoSpace("data/xx".into())),
        }],
    ));
    let e = backup(
        &db,
        &Repository::open(full.clone()).unwrap(),
        &mut state,
        &BackupOptions::default(),
    )
    .unwrap_err();
    assert!(full.unexercised().is_empty());
    assert_eq!(e.exit_code(), 4);
    assert!(e.to_string().contains("out of space"), "{e}");
    assert!(memory.list("snapshots/").unwrap().is_empty());
    // The torn object is reported as unreferenced at worst, never as a referenced, damaged one.
    let repo = Repository::open(memory.clone()).unwrap();
    let report = check(&repo, &keyring, ReadData::All).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    backup(&db, &repo, &mut state, &BackupOptions::default()).unwrap();
    assert_eq!(memory.list("snapshots/").unwrap().len(), 1);
}

#[test]
fn a_stale_cache_never_references_missing_blobs() {
    let env = Env::new();
    let (db, keyring, recipient) = setup(&env);
    let memory = Arc::new(MemoryStorage::new());
    let repo = Repository::init(memory.clone(), vec![recipient]).unwrap();
    let mut state = State::open(&env.path("state")).unwrap();
    backup(&db, &repo, &mut state, &BackupOptions::default()).unwrap();
    // Someone deletes the repository's packs and indexes behind the cache's back.
    for o in memory
        .list("data/")
        .unwrap()
        .into_iter()
        .chain(memory.list("index/").unwrap())
    {
        memory.delete(&o.key).unwrap();
    }
    for o in memory.list("snapshots/").unwrap() {
        memory.delete(&o.key).unwrap();
    }
    let r = backup(&db, &repo, &mut state, &BackupOptions::default()).unwrap();
    assert_eq!(r.pages_new, r.page_count, "pages must be stored again");
    let out = env.path("out.sqlite");
    restore(&repo, &keyring, "latest", &out, &RestoreOptions::default()).unwrap();
    assert!(check(&repo, &keyring, ReadData::All).unwrap().ok);
    // A brand-new state directory (no cache at all) is also safe.
    let mut fresh = State::open(&env.path("state2")).unwrap();
    let r = backup(&db, &repo, &mut fresh, &BackupOptions::default()).unwrap();
    assert_eq!(r.pages_new, r.page_count);
}
