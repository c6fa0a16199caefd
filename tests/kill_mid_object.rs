//! Backups killed in the middle of writing an object, not just between objects: half-way
//! through a local temporary file, between the parts of an S3 multipart upload, and in the
//! middle of sweeping up what earlier killed runs left. After each, the repository checks
//! clean with `--read-data`, the next backup succeeds and sweeps the leftovers away, and the
//! latest snapshot restores to the database's exact bytes.

mod common;
use common::moto::Moto;
use common::Env;
use invoice_vault::sample::{self, JournalMode};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Parts of 5 MiB (S3's smallest), so the largest pack of a 16 MiB database goes up in two.
const PART_BYTES: &str = "5242880";

/// Temporary files under a local repository: writes that were never linked into place.
fn temp_files(repo: &str) -> Vec<PathBuf> {
    common::walk(Path::new(repo))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
        })
        .collect()
}

/// Makes files look as old as leftovers the sweep may remove (it leaves those younger than an
/// hour alone: they may belong to a backup still running).
fn age_by_two_hours(files: &[PathBuf]) {
    let then = SystemTime::now() - Duration::from_secs(2 * 60 * 60);
    for f in files {
        std::fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(then)
            .unwrap();
    }
}

/// `check --read-data` reads every pack and finds nothing wrong.
#[track_caller]
fn checks_clean(env: &Env, repo: &str, key: &str) {
    let c = env.check(repo, key, true);
    assert_eq!(c.code, 0, "{}", c.stdout);
    let v = c.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["problems"], serde_json::json!([]));
    assert_eq!(v["packs_read"], v["packs"]);
}

/// The latest snapshot restores to exactly the database's bytes.
#[track_caller]
fn restores_exactly(env: &Env, repo: &str, key: &str, db: &Path, name: &str) {
    let out = env.path(name);
    env.restore("latest", repo, key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(db));
}

#[test]
fn killed_half_way_through_a_local_write() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 4, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    env.backup_report(dbs, &repo, &[]);
    let packs = common::walk(&Path::new(&repo).join("data")).len();
    // A full backup writes its packs (two uploaders, either may go first), its index, then
    // its manifest: tear each kind of object in turn.
    for (n, dir) in [(1, "data"), (packs + 1, "index"), (packs + 2, "snapshots")] {
        // The other uploader may be half-way through a pack of its own when the first is torn.
        let at_most = if dir == "data" { 2 } else { 1 };
        sample::day_of_business(&db, n as u64).unwrap();
        let point = format!("temp-half-written:{n}");
        env.run_env(
            &["backup", dbs, "--to", &repo, "--full"],
            &[("IVAULT_FAILPOINT", &point)],
        )
        .killed_at(&point);
        // Torn temporary files beside the objects they were to become; nothing else.
        let torn = temp_files(&repo);
        assert!((1..=at_most).contains(&torn.len()), "{point}: {torn:?}");
        assert!(
            torn.iter()
                .all(|t| t.starts_with(Path::new(&repo).join(dir))),
            "{point}: {torn:?} is not under {dir}/"
        );
        checks_clean(&env, &repo, &key);

        age_by_two_hours(&torn);
        let r = env.backup_report(dbs, &repo, &[]);
        swept(
            &r,
            &format!(
                "removed {} leftovers of interrupted writes from {repo}",
                torn.len()
            ),
        );
        assert_eq!(temp_files(&repo), Vec::<PathBuf>::new(), "{point}");
        checks_clean(&env, &repo, &key);
        restores_exactly(&env, &repo, &key, &db, &format!("after-{n}.sqlite"));
    }
}

#[test]
fn killed_while_sweeping_local_leftovers() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 4, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    env.backup_report(dbs, &repo, &[]);
    let packs = common::walk(&Path::new(&repo).join("data")).len();
    // Three runs killed half-way through their index leave three torn files (young, so each
    // run's sweep leaves them alone).
    let point = format!("temp-half-written:{}", packs + 1);
    for seed in 1..=3 {
        sample::day_of_business(&db, seed).unwrap();
        env.run_env(
            &["backup", dbs, "--to", &repo, "--full"],
            &[("IVAULT_FAILPOINT", &point)],
        )
        .killed_at(&point);
    }
    let torn = temp_files(&repo);
    assert_eq!(torn.len(), 3, "{torn:?}");
    assert!(
        torn.iter()
            .all(|t| t.starts_with(Path::new(&repo).join("index"))),
        "{torn:?}"
    );
    age_by_two_hours(&torn);

    env.run_env(
        &["backup", dbs, "--to", &repo],
        &[("IVAULT_FAILPOINT", "leftover-removed")],
    )
    .killed_at("leftover-removed");
    assert_eq!(temp_files(&repo).len(), 2, "exactly one was removed");
    checks_clean(&env, &repo, &key);

    let r = env.backup_report(dbs, &repo, &[]);
    swept(
        &r,
        &format!("removed 2 leftovers of interrupted writes from {repo}"),
    );
    assert_eq!(temp_files(&repo), Vec::<PathBuf>::new());
    checks_clean(&env, &repo, &key);
    restores_exactly(&env, &repo, &key, &db, "restored.sqlite");
}

/// A moto bucket with a repository, and an environment to reach it.
fn moto_repository(bucket: &str) -> (Moto, Env, String, String) {
    let moto = Moto::start();
    moto.bucket(bucket, false);
    let env = Env::with_vars(moto.env());
    let (key, recipient) = env.new_key("id.txt");
    let repo = format!("s3://{bucket}/r");
    env.run(&["init", &repo, "--recipient", &recipient]).ok();
    (moto, env, key, repo)
}

/// Unfinished multipart uploads under `prefix`, with how many parts each holds.
fn uploads(moto: &Moto, bucket: &str, prefix: &str) -> Vec<(String, usize)> {
    let (client, rt) = moto.client();
    let list = rt
        .block_on(
            client
                .list_multipart_uploads()
                .bucket(bucket)
                .prefix(prefix)
                .send(),
        )
        .unwrap();
    list.uploads()
        .iter()
        .map(|u| {
            let key = u.key().unwrap().to_string();
            let parts = raw_get(
                &moto.endpoint,
                &format!("/{bucket}/{key}?uploadId={}", u.upload_id().unwrap()),
            );
            (key, parts.matches("<Part>").count())
        })
        .collect()
}

/// An unsigned GET (moto checks no signatures): the SDK cannot parse moto's ListParts answer,
/// whose root element is `ListPartsResponse`.
fn raw_get(endpoint: &str, target: &str) -> String {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
}

#[test]
fn killed_between_the_parts_of_an_s3_upload() {
    let (moto, env, key, repo) = moto_repository("parts");
    let db = env.database("db.sqlite", 16, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    // Packs over 5 MiB go up in parts in this run. Only in this one: the SDK cannot read
    // moto's answer to a completed multipart upload (its root element is
    // `CompleteMultipartUploadResponse`), so a run that completes one fails against moto.
    env.run_env(
        &["backup", dbs, "--to", &repo],
        &[
            ("IVAULT_FAILPOINT", "part-uploaded"),
            (invoice_vault::storage::PART_BYTES_ENV, PART_BYTES),
        ],
    )
    .killed_at("part-uploaded");
    // A pack's upload with a part in it and never completed; no snapshot.
    let left = uploads(&moto, "parts", "r/");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].0.starts_with("r/data/") && left[0].1 >= 1,
        "{left:?}"
    );
    let snapshots = env
        .run(&["snapshots", "--repo", &repo, "--identity", &key, "--json"])
        .ok()
        .json();
    assert_eq!(snapshots, serde_json::json!([]));
    checks_clean(&env, &repo, &key);

    // moto dates every upload in 2010, so the next run finds it old enough to abort.
    let r = env.backup_report(dbs, &repo, &[]);
    swept(
        &r,
        &format!("removed 1 leftovers of interrupted writes from {repo}"),
    );
    assert_eq!(uploads(&moto, "parts", "r/"), Vec::new());
    checks_clean(&env, &repo, &key);
    restores_exactly(&env, &repo, &key, &db, "restored.sqlite");
}

#[test]
fn killed_while_aborting_stale_s3_uploads() {
    let (moto, env, key, repo) = moto_repository("stale");
    let db = env.database("db.sqlite", 4, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    env.backup_report(dbs, &repo, &[]);
    // What three runs killed mid-upload leave: uploads with a part each.
    let (client, rt) = moto.client();
    for n in 0..3 {
        let key = format!("r/data/0{n}/abandoned");
        let started = rt
            .block_on(
                client
                    .create_multipart_upload()
                    .bucket("stale")
                    .key(&key)
                    .send(),
            )
            .unwrap();
        rt.block_on(
            client
                .upload_part()
                .bucket("stale")
                .key(&key)
                .upload_id(started.upload_id().unwrap())
                .part_number(1)
                .body(vec![n as u8; 1 << 20].into())
                .send(),
        )
        .unwrap();
    }
    assert_eq!(uploads(&moto, "stale", "r/").len(), 3);

    sample::day_of_business(&db, 1).unwrap();
    env.run_env(
        &["backup", dbs, "--to", &repo],
        &[("IVAULT_FAILPOINT", "leftover-removed")],
    )
    .killed_at("leftover-removed");
    assert_eq!(
        uploads(&moto, "stale", "r/").len(),
        2,
        "exactly one was aborted"
    );
    checks_clean(&env, &repo, &key);

    let r = env.backup_report(dbs, &repo, &[]);
    swept(
        &r,
        &format!("removed 2 leftovers of interrupted writes from {repo}"),
    );
    assert_eq!(uploads(&moto, "stale", "r/"), Vec::new());
    checks_clean(&env, &repo, &key);
    restores_exactly(&env, &repo, &key, &db, "restored.sqlite");
}

/// The backup after a kill says it swept the leftovers, and may also say it reused the packs
/// the killed run stored completely (which packs landed before the kill depends on timing).
#[track_caller]
fn swept(report: &serde_json::Value, sweep: &str) {
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.first(), Some(&sweep), "{warnings:?}");
    assert!(
        warnings[1..]
            .iter()
            .all(|w| w.ends_with("packs an interrupted backup stored were indexed and reused")),
        "{warnings:?}"
    );
}
