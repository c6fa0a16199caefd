//! `ivault copy`: snapshots move between repositories (local disk to a real S3 server here)
//! without reading the source database again, re-encrypted to the destination's keys, verified
//! on the way, and never copied twice.

mod common;
use common::s3::S3Server;
use common::Env;
use invoice_vault::sample::{self, JournalMode};
use std::path::PathBuf;

const USAGE: i32 = 2;
const INTEGRITY: i32 = 5;
const KEY: i32 = 6;

struct Setup {
    server: S3Server,
    env: Env,
    key: String,
    local: String,
    db: PathBuf,
    /// SHA-256 of the database at each snapshot, oldest first.
    states: Vec<String>,
}

/// A local repository with a full and an incremental snapshot, and an S3 repository encrypted
/// to a different key.
fn setup() -> (Setup, String) {
    let server = S3Server::start();
    server.bucket("offsite");
    let env = Env::with_vars(server.env());
    let (key, local) = env.key_and_repo();
    let db = env.database("db.sqlite", 12, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    env.backup_report(dbs, &local, &["--tag", "nightly"]);
    let mut states = vec![common::sha256_file(&db)];
    sample::day_of_business(&db, 5).unwrap();
    env.backup_report(dbs, &local, &[]);
    states.push(common::sha256_file(&db));
    let (offsite_key, recipient) = env.new_key("offsite.txt");
    env.run(&["init", "s3://offsite/r", "--recipient", &recipient])
        .ok();
    let s = Setup {
        server,
        env,
        key,
        local,
        db,
        states,
    };
    (s, offsite_key)
}

impl Setup {
    fn copy(&self, extra: &[&str]) -> common::Run {
        self.copy_to("s3://offsite/r", extra)
    }

    fn copy_to(&self, to: &str, extra: &[&str]) -> common::Run {
        let mut args = vec![
            "copy",
            "--from",
            &self.local,
            "--identity",
            &self.key,
            "--to",
            to,
            "--json",
        ];
        args.extend_from_slice(extra);
        self.env.run(&args)
    }

    fn snapshots(&self, repo: &str, key: &str) -> Vec<serde_json::Value> {
        self.env
            .run(&["snapshots", "--repo", repo, "--identity", key, "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .clone()
    }

    fn stored_bytes(&self) -> u64 {
        common::walk(&self.server.root.join("offsite"))
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    }
}

#[test]
fn copies_every_snapshot_to_s3_and_each_restores_to_the_same_bytes() {
    let (s, offsite_key) = setup();
    let r = s.copy(&[]).ok().json();
    let copied = r["snapshots"].as_array().unwrap();
    assert_eq!(copied.len(), 2);
    assert!(copied.iter().all(|c| c["already_present"] == false));

    let originals = s.snapshots(&s.local, &s.key);
    let copies = s.snapshots("s3://offsite/r", &offsite_key);
    assert_eq!(copies.len(), 2);
    for (o, c) in originals.iter().zip(&copies) {
        for field in [
            "time",
            "source",
            "path",
            "host",
            "database_sha256",
            "tables",
            "tags",
        ] {
            assert_eq!(o[field], c[field], "{field}");
        }
        assert_ne!(o["id"], c["id"]);
    }
    // Each copy restores on its own to exactly the database as it was backed up.
    for (c, want) in copies.iter().zip(&s.states) {
        let out = s.env.path(&format!("{}.sqlite", c["id"].as_str().unwrap()));
        s.env.restore(
            c["id"].as_str().unwrap(),
            "s3://offsite/r",
            &offsite_key,
            &out,
        );
        assert_eq!(&common::sha256_file(&out), want);
    }
    // The copy is encrypted to the destination's key only.
    let r = s.env.run(&[
        "snapshots",
        "--repo",
        "s3://offsite/r",
        "--identity",
        &s.key,
    ]);
    assert_eq!(r.code, KEY, "{}", r.stderr);
    // The incremental copy stored only what changed.
    assert!(
        copies[1]["bytes_stored"].as_u64().unwrap() * 4
            < copies[0]["bytes_stored"].as_u64().unwrap()
    );
    assert_eq!(s.env.check("s3://offsite/r", &offsite_key, true).code, 0);
}

#[test]
fn copying_again_writes_nothing() {
    let (s, _) = setup();
    // Copies never read the database: it can be gone.
    std::fs::remove_file(&s.db).unwrap();
    s.copy(&["latest"]).ok();
    let before = s.stored_bytes();
    let r = s.copy(&[]).ok().json();
    let copied = r["snapshots"].as_array().unwrap();
    assert_eq!(copied.len(), 2);
    assert_eq!(copied[1]["already_present"], true, "{r}");
    assert_eq!(copied[0]["already_present"], false, "{r}");
    let middle = s.stored_bytes();
    assert!(middle > before);
    let r = s.copy(&[]).ok().json();
    assert!(r["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["already_present"] == true));
    assert_eq!(s.stored_bytes(), middle);
}

#[test]
fn a_damaged_source_snapshot_is_not_copied() {
    let (s, offsite_key) = setup();
    let pack = common::walk(&PathBuf::from(&s.local).join("data"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&pack, bytes).unwrap();
    let bucket_before = common::walk(&s.server.root.join("offsite"));
    let r = s.copy(&[]);
    assert_eq!(r.code, INTEGRITY, "{}", r.stderr);
    assert!(r.stderr.contains("damaged"), "{}", r.stderr);
    assert!(s.snapshots("s3://offsite/r", &offsite_key).is_empty());
    // Nothing reached the bucket.
    assert_eq!(common::walk(&s.server.root.join("offsite")), bucket_before);
}

#[test]
fn bad_copy_requests_get_one_clear_sentence() {
    let (s, _) = setup();
    let r = s.copy_to(&s.local, &[]);
    assert_eq!(r.code, USAGE, "{}", r.stderr);
    assert!(r.stderr.contains("same repository"), "{}", r.stderr);

    let r = s
        .env
        .run(&["copy", "--from", &s.local, "--to", "s3://offsite/r"]);
    assert_eq!(r.code, KEY, "{}", r.stderr);
    assert!(r.stderr.contains("--identity"), "{}", r.stderr);

    let r = s.copy(&["0123abcd"]);
    assert_eq!(r.code, USAGE, "{}", r.stderr);
    assert!(r.stderr.contains("no snapshot 0123abcd"), "{}", r.stderr);

    let r = s.copy_to(s.env.path("nowhere").to_str().unwrap(), &[]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("no ivault repository"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
}
