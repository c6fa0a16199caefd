//! Each bad input gets one clear sentence, its own exit code, and leaves nothing behind.

mod common;
use common::Env;
use invoice_vault::sample::JournalMode;
use std::os::unix::fs::PermissionsExt;

const SOURCE: i32 = 3;
const REPOSITORY: i32 = 4;
const INTEGRITY: i32 = 5;
const KEY: i32 = 6;
const DESTINATION: i32 = 7;
const USAGE: i32 = 2;

fn snapshot_count(repo: &str) -> usize {
    std::fs::read_dir(format!("{repo}/snapshots"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[track_caller]
fn fails(r: &common::Run, code: i32, words: &[&str]) {
    assert_eq!(r.code, code, "stderr: {}", r.stderr);
    for w in words {
        assert!(r.stderr.contains(w), "{w:?} not in: {}", r.stderr);
    }
    assert_eq!(
        r.stderr.trim().lines().count(),
        1,
        "one sentence expected: {}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn bad_sources() {
    let env = Env::new();
    let (_key, repo) = env.key_and_repo();

    let r = env.run(&["backup", "missing.sqlite", "--to", &repo]);
    fails(&r, SOURCE, &["missing.sqlite", "does not exist"]);

    std::fs::write(
        env.path("notes.txt"),
        "these are not invoices\n".repeat(100),
    )
    .unwrap();
    let r = env.run(&["backup", "notes.txt", "--to", &repo]);
    fails(&r, SOURCE, &["notes.txt", "not a SQLite database"]);

    let mut corrupt = b"SQLite format 3\0".to_vec();
    corrupt.extend((0..8192u32).map(|i| (i * 7 % 256) as u8));
    std::fs::write(env.path("corrupt.sqlite"), corrupt).unwrap();
    let r = env.run(&["backup", "corrupt.sqlite", "--to", &repo]);
    fails(&r, SOURCE, &["corrupt.sqlite", "corrupt"]);

    let r = env.run(&["backup", ".", "--to", &repo]);
    fails(&r, SOURCE, &["not a file"]);

    assert_eq!(snapshot_count(&repo), 0);
    assert!(
        std::fs::read_dir(format!("{repo}/data"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
}

#[test]
fn a_database_locked_by_an_exclusive_writer_times_out() {
    let env = Env::new();
    let (_key, repo) = env.key_and_repo();
    let db = env.database("locked.sqlite", 1, JournalMode::Rollback);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "BEGIN EXCLUSIVE; UPDATE counters SET value = value WHERE name = 'invoices';",
    )
    .unwrap();
    let start = std::time::Instant::now();
    let r = env.run(&[
        "backup",
        db.to_str().unwrap(),
        "--to",
        &repo,
        "--lock-timeout",
        "0.5",
    ]);
    fails(&r, SOURCE, &["locked", "--lock-timeout"]);
    assert!(start.elapsed().as_secs() < 10);
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(snapshot_count(&repo), 0);
    // Once the writer is done the same backup succeeds.
    env.run(&["backup", db.to_str().unwrap(), "--to", &repo])
        .ok();
}

#[test]
fn bad_repositories() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    let db = db.to_str().unwrap();

    let r = env.run(&["backup", db, "--to", "no-such-repo"]);
    fails(&r, REPOSITORY, &["no-such-repo", "ivault init"]);
    assert!(!env.path("no-such-repo").exists());

    std::fs::create_dir(env.path("empty")).unwrap();
    let r = env.run(&["snapshots", "--repo", "empty", "--identity", &key]);
    fails(&r, REPOSITORY, &["empty", "ivault init"]);

    std::fs::write(env.path("empty/file"), b"x").unwrap();
    let r = env.run(&["init", "empty"]);
    fails(&r, REPOSITORY, &["not empty"]);
    let r = env.run(&["init", &repo]);
    fails(&r, REPOSITORY, &["already an ivault repository"]);

    let r = env.run(&["backup", db, "--to", "s3x://bucket/x"]);
    fails(&r, USAGE, &["s3x://"]);

    // A repository written by a newer ivault is refused before anything is written.
    let cfg = format!("{repo}/config");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    config["version"] = 99.into();
    std::fs::write(&cfg, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let r = env.run(&["backup", db, "--to", &repo]);
    fails(&r, REPOSITORY, &["format version 99", "upgrade ivault"]);
    assert_eq!(snapshot_count(&repo), 0);
}

#[test]
fn recipients_changed_behind_the_users_back_are_refused() {
    let env = Env::new();
    let (_key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    let db = db.to_str().unwrap();
    env.run(&["backup", db, "--to", &repo]).ok();
    let other = env
        .run(&["key", "generate", "--out", "attacker.txt"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let cfg = format!("{repo}/config");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let old = v["recipients"][0].as_str().unwrap();
    std::fs::write(&cfg, text.replace(old, &other)).unwrap();
    let r = env.run(&["backup", db, "--to", &repo]);
    fails(&r, KEY, &["recipients", "changed"]);
    assert_eq!(snapshot_count(&repo), 1);
    // Accepting the change explicitly works.
    env.run(&["backup", db, "--to", &repo, "--accept-recipients"])
        .ok();
}

#[test]
fn key_errors() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    env.run(&["backup", db.to_str().unwrap(), "--to", &repo])
        .ok();

    let r = env.run(&["snapshots", "--repo", &repo]);
    fails(&r, KEY, &["--identity"]);

    env.run(&["key", "generate", "--out", "other.txt"]).ok();
    let r = env.run(&[
        "restore",
        "latest",
        "--repo",
        &repo,
        "--identity",
        "other.txt",
        "--to",
        "out.sqlite",
    ]);
    fails(&r, KEY, &["identity", "recipients"]);
    assert!(!env.path("out.sqlite").exists());

    let r = env.run(&["snapshots", "--repo", &repo, "--identity", "nope.txt"]);
    fails(&r, KEY, &["nope.txt"]);

    std::fs::write(env.path("garbage.txt"), "AGE-SECRET-KEY-1NOTAKEY\n").unwrap();
    std::fs::set_permissions(
        env.path("garbage.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let r = env.run(&["snapshots", "--repo", &repo, "--identity", "garbage.txt"]);
    fails(&r, KEY, &["garbage.txt", "not an age X25519 secret key"]);

    let r = env.run(&[
        "backup",
        db.to_str().unwrap(),
        "--to",
        &repo,
        "--recipient",
        "age1nope",
    ]);
    fails(&r, KEY, &["age1nope"]);

    // The key file must never be overwritten, and is created private.
    let r = env.run(&["key", "generate", "--out", &key]);
    fails(&r, DESTINATION, &["already exists"]);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A group-readable identity still works, with a warning.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let r = env
        .run(&["snapshots", "--repo", &repo, "--identity", &key])
        .ok();
    assert!(
        r.stderr.contains("readable by group or others"),
        "{}",
        r.stderr
    );
}

#[test]
fn passphrase_protected_identity() {
    let env = Env::new();
    let pass = [("IVAULT_PASSPHRASE", "correct horse battery staple")];
    let r = env
        .run_env(
            &["key", "generate", "--out", "locked.txt", "--passphrase"],
            &pass,
        )
        .ok();
    let recipient = r.stdout.trim().to_string();
    let file = std::fs::read(env.path("locked.txt")).unwrap();
    assert!(file.starts_with(b"age-encryption.org/v1"));
    assert!(!String::from_utf8_lossy(&file).contains("AGE-SECRET-KEY"));
    env.run(&["init", "repo", "--recipient", &recipient]).ok();
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    // The backup host needs no key at all.
    env.run(&["backup", db.to_str().unwrap(), "--to", "repo"])
        .ok();
    env.run_env(
        &[
            "restore",
            "latest",
            "--repo",
            "repo",
            "--identity",
            "locked.txt",
            "--to",
            "out.sqlite",
        ],
        &pass,
    )
    .ok();
    // The identity opened with the passphrase restores exactly the database.
    assert_eq!(
        common::sha256_file(&env.path("out.sqlite")),
        common::sha256_file(&db)
    );

    let wrong = [("IVAULT_PASSPHRASE", "wrong")];
    let r = env.run_env(
        &["snapshots", "--repo", "repo", "--identity", "locked.txt"],
        &wrong,
    );
    fails(&r, KEY, &["wrong passphrase", "locked.txt"]);
    assert!(!r.stderr.contains("wrong\n") && !r.stderr.contains("correct horse"));
    // No passphrase and no terminal to ask on.
    let r = env
        .cmd(&["snapshots", "--repo", "repo", "--identity", "locked.txt"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(KEY));
    assert!(String::from_utf8_lossy(&r.stderr).contains("IVAULT_PASSPHRASE"));
}

#[test]
fn restore_destinations_and_snapshot_ids() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    let db = db.to_str().unwrap();
    // 17 snapshots: two of them must share their first hex digit.
    let mut ids = Vec::new();
    for _ in 0..17 {
        let r = env.backup_report(db, &repo, &[]);
        ids.push(r["snapshot_id"].as_str().unwrap().to_string());
    }
    let base = ["--repo", repo.as_str(), "--identity", key.as_str()];
    let restore = |snap: &str, to: &str, extra: &[&str]| {
        let mut a = vec!["restore", snap, "--to", to];
        a.extend_from_slice(&base);
        a.extend_from_slice(extra);
        env.run(&a)
    };

    std::fs::write(env.path("exists.sqlite"), b"precious").unwrap();
    let r = restore("latest", "exists.sqlite", &[]);
    fails(&r, DESTINATION, &["exists.sqlite", "--force"]);
    assert_eq!(
        std::fs::read(env.path("exists.sqlite")).unwrap(),
        b"precious"
    );
    restore("latest", "exists.sqlite", &["--force"]).ok();
    assert_eq!(common::sqlite_checks(&env.path("exists.sqlite")), None);

    let r = restore("latest", "no/such/dir/out.sqlite", &[]);
    fails(&r, DESTINATION, &["no/such/dir", "does not exist"]);

    let r = restore("deadbeef", "a.sqlite", &[]);
    fails(&r, USAGE, &["no snapshot deadbeef"]);
    let first = ids[0].chars().next().unwrap();
    let shared = ids.iter().filter(|i| i.starts_with(first)).count();
    let prefix = if shared > 1 {
        first.to_string()
    } else {
        let c = (b'0'..=b'f')
            .map(|c| c as char)
            .find(|c| ids.iter().filter(|i| i.starts_with(*c)).count() > 1)
            .unwrap();
        c.to_string()
    };
    let r = restore(&prefix, "a.sqlite", &[]);
    fails(&r, USAGE, &["matches", "more characters"]);
    let r = restore("not-hex!", "a.sqlite", &[]);
    fails(&r, USAGE, &["not a snapshot id"]);
    restore(&ids[3][..12], "a.sqlite", &[]).ok();

    // Nothing half-written is left anywhere.
    assert!(
        env.files_named(".ivault-").is_empty(),
        "{:?}",
        env.files_named(".ivault-")
    );
    let _ = INTEGRITY;
}

#[test]
fn recipients_from_a_file() {
    let env = Env::new();
    let a = env
        .run(&["key", "generate", "--out", "a.txt"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let b = env
        .run(&["key", "generate", "--out", "b.txt"])
        .ok()
        .stdout
        .trim()
        .to_string();
    std::fs::write(
        env.path("recipients.txt"),
        format!("# restore keys\n{a}\n\n{b}\n"),
    )
    .unwrap();
    env.run(&["init", "repo", "--recipients-file", "recipients.txt"])
        .ok();
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    env.run(&["backup", db.to_str().unwrap(), "--to", "repo"])
        .ok();
    // Either identity opens the repository.
    for id in ["a.txt", "b.txt"] {
        std::fs::set_permissions(env.path(id), std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = format!("{id}.sqlite");
        env.run(&[
            "restore",
            "latest",
            "--repo",
            "repo",
            "--identity",
            id,
            "--to",
            &out,
        ])
        .ok();
    }
    std::fs::write(env.path("bad.txt"), "age1notarecipient\n").unwrap();
    let r = env.run(&["init", "repo2", "--recipients-file", "bad.txt"]);
    fails(&r, KEY, &["age1notarecipient"]);
    let r = env.run(&["init", "repo3", "--recipients-file", "missing.txt"]);
    fails(&r, KEY, &["missing.txt"]);
}
