//! Damage is reported precisely: `check --read-data` names every damaged object and the
//! snapshots it affects; restoring an affected snapshot fails clearly and leaves no file.

mod common;
use common::Env;
use invoice_vault::sample::{self, JournalMode};
use std::path::PathBuf;

const REPOSITORY: i32 = 4;
const INTEGRITY: i32 = 5;

struct Damaged {
    env: Env,
    key: String,
    repo: String,
    full: String,
    incr: String,
}

/// A repository with a full snapshot and an incremental one after a day of business.
fn repository() -> Damaged {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 24, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    let full = env.backup_report(dbs, &repo, &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    sample::day_of_business(&db, 1).unwrap();
    let incr = env.backup_report(dbs, &repo, &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = Damaged {
        env,
        key,
        repo,
        full,
        incr,
    };
    let r = d.check(true);
    assert_eq!(r.code, 0, "{}", r.stdout);
    d
}

impl Damaged {
    fn check(&self, read_data: bool) -> common::Run {
        self.env.check(&self.repo, &self.key, read_data)
    }

    /// The largest pack: a data pack that both snapshots use.
    fn biggest_pack(&self) -> PathBuf {
        common::walk(&PathBuf::from(&self.repo).join("data"))
            .into_iter()
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap()
    }

    fn problems(&self, read_data: bool) -> Vec<serde_json::Value> {
        let r = self.check(read_data);
        assert_eq!(r.code, INTEGRITY, "check must fail: {}", r.stdout);
        let v = r.json();
        assert_eq!(v["ok"], false);
        v["problems"].as_array().unwrap().clone()
    }

    /// Restoring `id` stops on the damaged `object` (exit code 5, the object named) and leaves
    /// no file behind.
    #[track_caller]
    fn restore_fails(&self, id: &str, object: &str) {
        let out = self.env.path("restored.sqlite");
        let r = self.env.run(&[
            "restore",
            id,
            "--repo",
            &self.repo,
            "--identity",
            &self.key,
            "--to",
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.code, INTEGRITY, "{}", r.stderr);
        let said = format!(
            "ivault: object {object} in {} is damaged (its hash does not match its name); run `ivault check --read-data`",
            self.repo
        );
        assert_eq!(
            r.stderr.trim().lines().last(),
            Some(said.as_str()),
            "{}",
            r.stderr
        );
        assert!(!out.exists());
        assert!(self.env.files_named(".ivault-").is_empty());
    }
}

fn key_of(p: &std::path::Path) -> String {
    let s = p.to_string_lossy();
    let i = s.find("/data/").unwrap();
    s[i + 1..].to_string()
}

#[test]
fn a_flipped_byte_in_a_pack_is_found_by_read_data() {
    let d = repository();
    let pack = d.biggest_pack();
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&pack, bytes).unwrap();
    // Same size: the structure check cannot see it, reading the data does.
    assert_eq!(d.check(false).code, 0);
    let problems = d.problems(true);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["object"], key_of(&pack));
    let affected: Vec<_> = problems[0]["affected_snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(affected.contains(&d.full), "{affected:?}");
    d.restore_fails(&d.full, &key_of(&pack));
}

#[test]
fn a_truncated_pack_is_found_by_the_structure_check() {
    let d = repository();
    let pack = d.biggest_pack();
    let bytes = std::fs::read(&pack).unwrap();
    std::fs::write(&pack, &bytes[..bytes.len() / 2]).unwrap();
    let problems = d.problems(false);
    assert_eq!(problems[0]["object"], key_of(&pack));
    assert!(
        problems[0]["what"].as_str().unwrap().contains("bytes"),
        "{problems:?}"
    );
    assert!(!problems[0]["affected_snapshots"]
        .as_array()
        .unwrap()
        .is_empty());
    d.restore_fails("latest", &key_of(&pack));
}

#[test]
fn a_deleted_pack_is_reported_with_the_snapshots_it_breaks() {
    let d = repository();
    let pack = d.biggest_pack();
    std::fs::remove_file(&pack).unwrap();
    let problems = d.problems(false);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["object"], key_of(&pack));
    assert!(problems[0]["what"].as_str().unwrap().contains("missing"));
    let affected = problems[0]["affected_snapshots"].as_array().unwrap();
    assert!(affected.iter().any(|s| s == d.full.as_str()));
    let r = d.env.run(&[
        "restore",
        &d.full,
        "--repo",
        &d.repo,
        "--identity",
        &d.key,
        "--to",
        "x.sqlite",
    ]);
    // No other copy of its blobs: the restore stops on the missing object, as a repository
    // error (exit code 4) naming it; `check` counts the same pack as damage (exit code 5).
    assert_eq!(r.code, REPOSITORY, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim().lines().last(),
        Some(
            format!(
                "ivault: target {}: object {} is missing",
                d.repo,
                key_of(&pack)
            )
            .as_str()
        ),
        "{}",
        r.stderr
    );
    assert!(!d.env.path("x.sqlite").exists());
    assert!(d.env.files_named(".ivault-").is_empty());
}

#[test]
fn a_tampered_manifest_is_named_and_only_its_snapshot_is_affected() {
    let d = repository();
    let path = PathBuf::from(&d.repo).join("snapshots").join(&d.incr);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let problems = d.problems(false);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["object"], format!("snapshots/{}", d.incr));
    assert_eq!(
        problems[0]["affected_snapshots"],
        serde_json::json!([d.incr])
    );
    d.restore_fails(&d.incr, &format!("snapshots/{}", d.incr));
    // The other snapshot is untouched and still restores.
    d.env
        .run(&[
            "restore",
            &d.full,
            "--repo",
            &d.repo,
            "--identity",
            &d.key,
            "--to",
            "ok.sqlite",
        ])
        .ok();
}

#[test]
fn human_output_lists_the_damage() {
    let d = repository();
    std::fs::remove_file(d.biggest_pack()).unwrap();
    let r = d
        .env
        .run(&["check", "--repo", &d.repo, "--identity", &d.key]);
    assert_eq!(r.code, INTEGRITY);
    assert!(r.stdout.contains("damaged: data/"), "{}", r.stdout);
    assert!(r.stdout.contains(&d.full[..12]));
    assert!(r.stdout.contains("the repository is damaged"));
}

#[test]
fn a_source_that_fails_integrity_check_is_caught_at_restore() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.path("inconsistent.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (a INTEGER, b INTEGER);
         CREATE INDEX t_a ON t(a);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO t SELECT i, 2000 - i FROM n;
         PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET sql = 'CREATE INDEX t_a ON t(b)' WHERE name = 't_a';",
    )
    .unwrap();
    drop(conn);
    // Every page reads fine, so the backup succeeds; the index no longer matches its table.
    env.run(&["backup", db.to_str().unwrap(), "--to", &repo])
        .ok();
    let base = ["--repo", repo.as_str(), "--identity", key.as_str()];
    let mut a = vec!["restore", "latest", "--to", "out.sqlite"];
    a.extend_from_slice(&base);
    let r = env.run(&a);
    assert_eq!(r.code, INTEGRITY, "{}", r.stderr);
    assert!(r.stderr.contains("integrity_check"), "{}", r.stderr);
    assert!(!env.path("out.sqlite").exists());
    assert!(env.files_named(".ivault-").is_empty());
    // The bytes are still exactly the snapshot's: skipping the check restores them.
    a.push("--skip-integrity-check");
    let r = env.run(&a).ok();
    assert!(r.stdout.contains("integrity_check skipped"), "{}", r.stdout);
    assert_eq!(
        common::sha256_file(&env.path("out.sqlite")),
        common::sha256_file(&db)
    );
}

#[test]
fn read_data_subset_reads_a_share_of_the_packs() {
    let d = repository();
    let all = d.env.check(&d.repo, &d.key, true).json()["packs_read"]
        .as_u64()
        .unwrap();
    let subset = |share: &str| {
        d.env.run(&[
            "check",
            "--repo",
            &d.repo,
            "--identity",
            &d.key,
            "--json",
            "--read-data-subset",
            share,
        ])
    };
    let some = subset("1%").ok();
    let read = some.json()["packs_read"].as_u64().unwrap();
    assert!(read >= 1 && read < all, "{read} of {all}");
    // The whole share finds damage just as --read-data does.
    let pack = d.biggest_pack();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[100] ^= 0x10;
    std::fs::write(&pack, bytes).unwrap();
    assert_eq!(subset("100%").code, INTEGRITY);
    for bad in ["0%", "150%", "ten"] {
        let r = subset(bad);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.stderr.contains("--read-data-subset"), "{}", r.stderr);
    }
}

/// A subset is drawn from the data packs (every tree pack is always read, and counted apart),
/// the chosen data packs are really read, and the choice varies between runs: a damaged data
/// pack is found by some runs of a half share and missed by others.
#[test]
fn read_data_subset_draws_data_packs_and_really_reads_them() {
    let d = repository();
    let data_packs: Vec<PathBuf> = common::walk(&PathBuf::from(&d.repo).join("data"));
    let full = d.env.check(&d.repo, &d.key, true).json();
    let all_data = full["data_packs_read"].as_u64().unwrap();
    let tree = full["packs_read"].as_u64().unwrap() - all_data;
    assert!(all_data >= 2 && tree >= 1, "{full}");
    assert_eq!(
        full["packs_read"].as_u64().unwrap() as usize,
        data_packs.len()
    );

    let pack = d.biggest_pack();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[100] ^= 0x10;
    std::fs::write(&pack, bytes).unwrap();
    let (mut found, mut missed) = (0, 0);
    for _ in 0..24 {
        let r = d.env.run(&[
            "check",
            "--repo",
            &d.repo,
            "--identity",
            &d.key,
            "--json",
            "--read-data-subset",
            "50%",
        ]);
        let report = r.json();
        let share = all_data.div_ceil(2);
        assert_eq!(
            report["data_packs_read"].as_u64().unwrap(),
            share,
            "{report}"
        );
        assert_eq!(
            report["packs_read"].as_u64().unwrap(),
            share + tree,
            "{report}"
        );
        match r.code {
            0 => missed += 1,
            INTEGRITY => {
                found += 1;
                assert_eq!(report["problems"][0]["object"], key_of(&pack), "{report}");
            }
            other => panic!("exit code {other}: {}", r.stderr),
        }
    }
    assert!(found > 0 && missed > 0, "found {found}, missed {missed}");
}
