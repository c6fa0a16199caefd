//! Repositories on S3-compatible storage, through the real binary and a real S3 server on
//! 127.0.0.1: round trips, damage checks, bad endpoints and credentials, several targets.

mod common;
use common::s3::S3Server;
use common::Env;
use invoice_vault::engine::backup::{backup, BackupOptions};
use invoice_vault::engine::check::{check, ReadData};
use invoice_vault::error::Error;
use invoice_vault::repo::{keys, Repository};
use invoice_vault::sample::{self, JournalMode};
use invoice_vault::source::compare;
use invoice_vault::state::State;
use invoice_vault::storage::{FaultyStorage, Storage};
use std::sync::Arc;

const USAGE: i32 = 2;
const REPOSITORY: i32 = 4;
const PARTIAL: i32 = 8;

#[test]
fn backup_restore_and_check_through_s3() {
    let server = S3Server::start();
    server.bucket("invoices");
    let env = Env::with_vars(server.env());
    let (key, recipient) = env.new_key("id.txt");
    let key = key.as_str();
    let repo = "s3://invoices/beijing";
    env.run(&["init", repo, "--recipient", &recipient]).ok();
    let db = env.database("db.sqlite", 12, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    let full = env.backup_report(dbs, repo, &[]);
    assert_eq!(full["target"], repo);
    sample::day_of_business(&db, 3).unwrap();
    let incr = env.backup_report(dbs, repo, &[]);
    assert_eq!(incr["kind"], "incremental");
    assert!(incr["bytes_stored"].as_u64().unwrap() * 4 < full["bytes_stored"].as_u64().unwrap());

    let list = env
        .run(&["snapshots", "--repo", repo, "--identity", key, "--json"])
        .ok()
        .json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let out = env.path("restored.sqlite");
    env.run(&[
        "restore",
        "latest",
        "--repo",
        repo,
        "--identity",
        key,
        "--to",
        out.to_str().unwrap(),
    ])
    .ok();
    assert!(compare::differing_tables(&db, &out).unwrap().is_empty());
    assert_eq!(env.check(repo, key, true).code, 0);

    // A flipped byte in a pack on the server is found and named.
    let pack = common::walk(&server.root.join("invoices/beijing/data"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&pack, bytes).unwrap();
    let c = env.check(repo, key, true);
    assert_eq!(c.code, 5);
    let name = pack.file_name().unwrap().to_string_lossy().to_string();
    assert!(c.json()["problems"][0]["object"]
        .as_str()
        .unwrap()
        .ends_with(&name));
}

#[test]
fn bad_s3_targets_get_one_clear_sentence() {
    let server = S3Server::start();
    server.bucket("present");
    let env = Env::with_vars(server.env());
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    let (_, recipient) = env.new_key("id.txt");

    let r = env.run(&["init", "s3://missing-bucket/x", "--recipient", &recipient]);
    assert_eq!(r.code, REPOSITORY, "{}", r.stderr);
    assert!(
        r.stderr.contains("missing-bucket") && r.stderr.contains("does not exist"),
        "{}",
        r.stderr
    );

    let r = env.run(&["init", "s3://Bad_Bucket/x"]);
    assert_eq!(r.code, USAGE, "{}", r.stderr);
    assert!(r.stderr.contains("not a valid bucket name"), "{}", r.stderr);

    let r = env.run(&["init", "s3://present/x", "--endpoint", "ftp://nowhere"]);
    assert_eq!(r.code, USAGE, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the S3 endpoint ftp://nowhere is not an http:// or https:// URL"),
        "{}",
        r.stderr
    );

    let mut wrong = Env::new();
    wrong.vars = server.env();
    wrong.vars.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    wrong
        .vars
        .push(("AWS_SECRET_ACCESS_KEY", "not-the-secret".into()));
    let r = wrong.run(&["init", "s3://present/x", "--recipient", &recipient]);
    assert_eq!(r.code, REPOSITORY, "{}", r.stderr);
    assert!(
        r.stderr.contains("rejected the credentials"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("not-the-secret") && !r.stderr.contains(common::s3::ACCESS_KEY));

    // Nothing reachable on this port: a clear sentence after bounded retries.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let start = std::time::Instant::now();
    let r = env.run(&[
        "backup",
        dbs,
        "--to",
        "s3://present/x",
        "--endpoint",
        &format!("http://127.0.0.1:{port}"),
    ]);
    assert_eq!(r.code, REPOSITORY, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot reach the S3 endpoint"),
        "{}",
        r.stderr
    );
    assert!(start.elapsed().as_secs() < 60);

    // None of this wrote anything into the bucket.
    assert!(common::walk(&server.root.join("present")).is_empty());
}

#[test]
fn one_target_down_does_not_stop_the_other() {
    let server = S3Server::start();
    server.bucket("offsite");
    let env = Env::with_vars(server.env());
    let (key, local) = env.key_and_repo();
    let recipient = keys::load_identity(std::path::Path::new(&key))
        .unwrap()
        .recipients()[0]
        .clone();
    env.run(&["init", "s3://offsite/r", "--recipient", &recipient])
        .ok();
    let db = env.database("db.sqlite", 2, JournalMode::Wal);
    let dbs = db.to_str().unwrap();

    let r = env
        .run(&[
            "backup",
            dbs,
            "--to",
            &local,
            "--to",
            "s3://offsite/r",
            "--json",
        ])
        .ok();
    let v = r.json();
    assert!(v.as_array().unwrap().iter().all(|t| t["ok"] == true), "{v}");

    // The off-site bucket goes away; the local target still gets its snapshot.
    std::fs::rename(server.root.join("offsite"), server.root.join("gone")).unwrap();
    let r = env.run(&[
        "backup",
        dbs,
        "--to",
        &local,
        "--to",
        "s3://offsite/r",
        "--json",
    ]);
    assert_eq!(r.code, PARTIAL, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v[0]["ok"], true);
    assert_eq!(v[1]["ok"], false);
    assert_eq!(v[1]["target"], "s3://offsite/r");
    assert_eq!(v[1]["exit_code"], REPOSITORY);
    assert!(r.stderr.contains("offsite"), "{}", r.stderr);
    let list = env
        .run(&["snapshots", "--repo", &local, "--identity", &key, "--json"])
        .ok()
        .json();
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[test]
fn failing_s3_writes_leave_a_valid_repository() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let env = Env::new();
    let db = env.database("db.sqlite", 12, JournalMode::Wal);
    let recipient = keys::generate(&env.path("id.txt"), None).unwrap();
    let keyring = keys::load_identity(&env.path("id.txt")).unwrap();
    let s3: Arc<dyn Storage> = Arc::new(server.storage(&bucket, "r"));
    Repository::init(s3.clone(), vec![recipient]).unwrap();
    let mut state = State::open(&env.path("state")).unwrap();
    for n in [1, 2, 3] {
        let fault = common::connection_reset_on_put(n);
        let faulty = Arc::new(FaultyStorage::new(s3.clone(), vec![fault]));
        let opts = BackupOptions {
            full: true,
            ..Default::default()
        };
        let e = backup(
            &db,
            &Repository::open(faulty.clone()).unwrap(),
            &mut state,
            &opts,
        )
        .unwrap_err();
        assert!(faulty.unexercised().is_empty(), "write {n} was not failed");
        // The failed write is the reason, classed as a repository error and naming the target.
        assert!(matches!(e, Error::Repository(_)), "{e:?}");
        assert_eq!(e.exit_code(), REPOSITORY);
        assert_eq!(e.message(), "target s3://faults/r: x: connection reset");
        let report = check(
            &Repository::open(s3.clone()).unwrap(),
            &keyring,
            ReadData::All,
        )
        .unwrap();
        assert!(report.ok, "after failing write {n}: {:?}", report.problems);
    }
    backup(
        &db,
        &Repository::open(s3.clone()).unwrap(),
        &mut state,
        &BackupOptions::default(),
    )
    .unwrap();
    assert_eq!(s3.list("snapshots/").unwrap().len(), 1);
}
