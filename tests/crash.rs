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
    // Each attempt starts from the state as it was before the counted run (a failed attempt
    // leaves packs the next one would reuse), so it makes the same writes as the counted one,
    // up to its fault; the manifest, the last write, is failed last.
    let saved = env.path("state-before");
    for full in [true, false] {
        seed += 1;
        sample::day_of_business(&db, seed).unwrap();
        let opts = BackupOptions {
            full,
            ..BackupOptions::default()
        };
        copy_dir(&state_dir, &saved);
        let writes = writes_of_next_backup(&env, &memory, &db, &opts);
        // Packs (data and tree), an index, a manifest.
        assert!(writes >= 4, "{writes} writes");
        for n in 1..=writes {
            let fault = common::connection_reset_on_put(n);
            let faulty = Arc::new(FaultyStorage::new(memory.clone(), vec![fault]));
            copy_dir(&saved, &state_dir);
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

type JobRow = (String, Option<i64>, Option<String>, Option<String>);

fn job(state: &rusqlite::Connection, id: i64) -> JobRow {
    state
        .query_row(
            "SELECT outcome, pid, host, error FROM jobs WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
}

#[test]
fn a_killed_backup_is_marked_abandoned_by_the_next_job() {
    let env = Env::new();
    let (_key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 4, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    let child = env
        .cmd(&["backup", dbs, "--to", &repo])
        .env("IVAULT_FAILPOINT", "pack-written")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i64;
    let out = child.wait_with_output().unwrap();
    // Both uploader threads may reach the point before the abort lands.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.is_empty()
            && stderr
                .lines()
                .all(|l| l == "ivault: failpoint pack-written reached, aborting"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), None, "the process was not killed");

    let host = invoice_vault::host::name();
    let state = rusqlite::Connection::open(env.path("state/state.sqlite")).unwrap();
    let killed: i64 = state
        .query_row("SELECT max(id) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        job(&state, killed),
        ("running".into(), Some(pid), Some(host.clone()), None)
    );
    // Rows the next job must leave alone: a job of this test process, which runs, and one of
    // another host, whose processes cannot be asked about. And one whose pid is this
    // process's but whose process started at another time: the pid was reused.
    let me = std::process::id();
    let started = invoice_vault::host::process_start(me).unwrap() as i64;
    let add = |pid: u32, host: &str, started: i64| {
        state
            .execute(
                "INSERT INTO jobs (kind, started, host, pid, pid_started)
                 VALUES ('backup', '2026-01-01T00:00:00.000Z', ?1, ?2, ?3)",
                rusqlite::params![host, pid, started],
            )
            .unwrap();
        state.last_insert_rowid()
    };
    let alive = add(me, &host, started);
    let elsewhere = add(pid as u32, "another-host", 1);
    let reused = add(me, &host, started + 1);

    env.run(&["backup", dbs, "--to", &repo]).ok();
    let gone = |pid: i64| {
        format!("the process that ran it (pid {pid}) ended before the job finished: it was killed or the machine stopped")
    };
    assert_eq!(
        job(&state, killed),
        (
            "abandoned".into(),
            Some(pid),
            Some(host.clone()),
            Some(gone(pid))
        )
    );
    assert_eq!(job(&state, alive).0, "running");
    assert_eq!(job(&state, elsewhere).0, "running");
    assert_eq!(
        job(&state, reused),
        (
            "abandoned".into(),
            Some(me as i64),
            Some(host.clone()),
            Some(gone(me as i64))
        )
    );
    let last: (String, i64) = state
        .query_row(
            "SELECT outcome, pid FROM jobs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(last.0, "ok");
    assert_ne!(last.1, pid);
}

/// A restore killed after writing every page, before it verified and placed the file, leaves
/// no file at all: the pages went into an unnamed file that died with the process.
#[test]
fn a_killed_restore_leaves_no_plaintext() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 4, JournalMode::Wal);
    env.backup_report(db.to_str().unwrap(), &repo, &[]);
    let dir = env.path("restores");
    std::fs::create_dir(&dir).unwrap();
    let old = dir.join("old.sqlite");
    std::fs::write(&old, b"the file a --force restore would replace").unwrap();
    for (dest, force) in [(dir.join("new.sqlite"), false), (old.clone(), true)] {
        let mut args = vec![
            "restore",
            "latest",
            "--repo",
            &repo,
            "--identity",
            &key,
            "--to",
            dest.to_str().unwrap(),
        ];
        if force {
            args.push("--force");
        }
        let r = env.run_env(&args, &[("IVAULT_FAILPOINT", "restore-pages-written")]);
        assert_ne!(r.code, 0, "the failpoint must fire: {}", r.stderr);
        assert!(r.stderr.contains("failpoint"), "{}", r.stderr);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec!["old.sqlite".to_string()],
            "after killing {args:?}"
        );
        assert_eq!(
            std::fs::read(&old).unwrap(),
            b"the file a --force restore would replace"
        );
    }
    let dest = dir.join("new.sqlite");
    env.restore("latest", &repo, &key, &dest);
    assert_eq!(common::sha256_file(&dest), common::sha256_file(&db));
}

/// A backup killed after storing some packs, before its index, leaves complete packs the next
/// backup indexes and builds on instead of storing their pages again.
#[test]
fn the_next_backup_builds_on_packs_a_killed_one_stored() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 40, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    let r = env.run_env(
        &["backup", dbs, "--to", &repo],
        &[("IVAULT_FAILPOINT", "pack-written:2")],
    );
    assert!(r.stderr.contains("failpoint pack-written"), "{}", r.stderr);
    let left: Vec<_> = common::walk(&std::path::Path::new(&repo).join("data"));
    assert!(left.len() >= 2, "{left:?}");
    assert!(common::walk(&std::path::Path::new(&repo).join("index")).is_empty());

    let report = env.backup_report(dbs, &repo, &[]);
    let (new, all) = (
        report["pages_new"].as_u64().unwrap(),
        report["page_count"].as_u64().unwrap(),
    );
    assert!(new < all, "{new} of {all} pages stored again");
    assert!(
        report["warnings"]
            .to_string()
            .contains("were indexed and reused"),
        "{report}"
    );
    let out = env.path("out.sqlite");
    env.restore("latest", &repo, &key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));
    let c = env.check(&repo, &key, true);
    assert_eq!(c.code, 0, "{}", c.stdout);
    // Packs are recorded as they land; the second uploader can finish one in the instant of
    // the kill, before it is recorded, and that one stays a leftover.
    let leftovers = c.json()["leftover_packs"].as_array().unwrap().len();
    assert!(leftovers <= 1, "{}", c.stdout);
}

/// Replaces `to` with a copy of the directory `from` (no state connection may be open).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}
