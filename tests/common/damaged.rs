//! A small repository to damage: a full snapshot of a sample database and an incremental one
//! after a day of business, made by the real binary, with what each backup wrote.

use super::{walk, Env, Run};
use invoice_vault::sample::{self, JournalMode};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub const REPOSITORY: i32 = 4;
pub const INTEGRITY: i32 = 5;

pub struct Damaged {
    pub env: Env,
    pub key: String,
    pub repo: String,
    pub db: PathBuf,
    pub full: String,
    pub incr: String,
    /// The packs and indexes the full backup wrote.
    pub full_packs: BTreeSet<PathBuf>,
    pub full_indexes: BTreeSet<PathBuf>,
    /// The database as each snapshot saw it.
    pub full_db: PathBuf,
    pub incr_db: PathBuf,
}

/// Files under `dir` of the repository.
pub fn objects(repo: &str, dir: &str) -> BTreeSet<PathBuf> {
    walk(&PathBuf::from(repo).join(dir)).into_iter().collect()
}

/// `data/ab/ab12…` for a pack's path.
pub fn key_of(p: &Path) -> String {
    let s = p.to_string_lossy();
    let i = s.find("/data/").or_else(|| s.find("/index/")).unwrap();
    s[i + 1..].to_string()
}

/// A repository with a full snapshot and an incremental one after a day of business; a clean
/// `check --read-data` proves it whole before the test damages it.
pub fn repository() -> Damaged {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 24, JournalMode::Wal);
    let dbs = db.to_str().unwrap().to_string();
    let full = env.backup_report(&dbs, &repo, &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let full_db = env.path("full-copy.sqlite");
    std::fs::copy(&db, &full_db).unwrap();
    let (full_packs, full_indexes) = (objects(&repo, "data"), objects(&repo, "index"));
    sample::day_of_business(&db, 1).unwrap();
    let incr = env.backup_report(&dbs, &repo, &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let incr_db = env.path("incr-copy.sqlite");
    std::fs::copy(&db, &incr_db).unwrap();
    let d = Damaged {
        env,
        key,
        repo,
        db,
        full,
        incr,
        full_packs,
        full_indexes,
        full_db,
        incr_db,
    };
    let r = d.check(true);
    assert_eq!(r.code, 0, "{}", r.stdout);
    d
}

impl Damaged {
    /// `check --json`, with `--read-data` if asked.
    pub fn check(&self, read_data: bool) -> Run {
        self.env.check(&self.repo, &self.key, read_data)
    }

    /// `check` with human output and `extra` flags.
    pub fn check_human(&self, extra: &[&str]) -> Run {
        let mut args = vec!["check", "--repo", &self.repo, "--identity", &self.key];
        args.extend_from_slice(extra);
        self.env.run(&args)
    }

    /// The largest pack: a data pack that both snapshots use.
    pub fn biggest_pack(&self) -> PathBuf {
        objects(&self.repo, "data")
            .into_iter()
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap()
    }

    /// The problems of a check that must fail with exit code 5.
    pub fn problems(&self, read_data: bool) -> Vec<serde_json::Value> {
        let r = self.check(read_data);
        assert_eq!(r.code, INTEGRITY, "check must fail: {}", r.stdout);
        let v = r.json();
        assert_eq!(v["ok"], false);
        v["problems"].as_array().unwrap().clone()
    }

    /// Runs `restore` of `id` into `name` in the test directory.
    pub fn restore(&self, id: &str, name: &str) -> Run {
        let out = self.env.path(name);
        self.env.run(&[
            "restore",
            id,
            "--repo",
            &self.repo,
            "--identity",
            &self.key,
            "--to",
            out.to_str().unwrap(),
            "--json",
        ])
    }

    /// Restores `id` and asserts the file is byte for byte `expected`; returns the restore's
    /// JSON report.
    #[track_caller]
    pub fn restores_exactly(&self, id: &str, expected: &Path) -> serde_json::Value {
        let out = self.env.path("restored-exactly.sqlite");
        let r = self.restore(id, "restored-exactly.sqlite").ok();
        assert_eq!(
            super::sha256_file(&out),
            super::sha256_file(expected),
            "snapshot {id}"
        );
        std::fs::remove_file(&out).unwrap();
        r.json()
    }

    /// Backs the database up again; returns the backup's JSON report.
    pub fn back_up(&self) -> serde_json::Value {
        self.env
            .backup_report(self.db.to_str().unwrap(), &self.repo, &[])
    }
}

/// The `object` of each problem, with its kind.
pub fn objects_and_kinds(problems: &[serde_json::Value]) -> Vec<(String, String)> {
    problems
        .iter()
        .map(|p| {
            (
                p["object"].as_str().unwrap().to_string(),
                p["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A problem's affected snapshots.
pub fn affected(problem: &serde_json::Value) -> Vec<String> {
    problem["affected_snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}
