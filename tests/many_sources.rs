//! `ivault run` over a glob of many small databases of two different schemas: the sources of a
//! target share one batch (packs and an index shared, a manifest each), a source that cannot
//! be read fails alone, every snapshot restores byte for byte, and a pass killed between its
//! index and its manifests, or between two manifests, leaves a repository that checks clean
//! and a next pass that finishes the job.

mod common;
use common::{sha256_file, Env};
use rusqlite::Connection;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DATABASES: usize = 12;

struct Setup {
    env: Env,
    policy: String,
    key: String,
    repo: String,
    dbs: Vec<PathBuf>,
}

/// Invoices with an integer key and a child table, rollback journal.
fn schema_a(p: &Path, seed: usize, rows: usize) {
    let c = Connection::open(p).unwrap();
    c.execute_batch(
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, no TEXT UNIQUE, day TEXT, cents INTEGER);
         CREATE TABLE lines (id INTEGER PRIMARY KEY, invoice_id INTEGER REFERENCES invoices(id),
                             what TEXT, cents INTEGER);",
    )
    .unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for i in 0..rows {
        tx.execute(
            "INSERT INTO invoices (no, day, cents) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                format!("A{seed}-{i:06}"),
                format!("2025-{:02}-01", 1 + i % 12),
                (i * 37 + seed) as i64
            ],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO lines (invoice_id, what, cents) VALUES (?1, ?2, ?3)",
            rusqlite::params![i as i64 + 1, "x".repeat(40 + seed), i as i64],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// Invoices under a composite text key in a WITHOUT ROWID table, epoch dates, WAL mode.
fn schema_b(p: &Path, seed: usize, rows: usize) {
    let c = Connection::open(p).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE \"Invoice Header\" (code TEXT, number TEXT, issued INTEGER, amount REAL,
                                         PRIMARY KEY (code, number)) WITHOUT ROWID;",
    )
    .unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for i in 0..rows {
        tx.execute(
            "INSERT INTO \"Invoice Header\" VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                format!("B{seed}"),
                format!("{i:08}"),
                1_700_000_000 + i as i64 * 3600,
                i as f64 * 1.25
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    // Closing the last connection checkpoints the WAL into the file, so the file on disk is
    // the image a restore must give back.
}

fn setup() -> Setup {
    let env = Env::new();
    let (key, recipient) = env.new_key("k.txt");
    let dir = env.path("branches");
    std::fs::create_dir(&dir).unwrap();
    let mut dbs = Vec::new();
    for i in 0..DATABASES {
        let p = dir.join(format!("branch{i:02}.sqlite"));
        if i % 2 == 0 {
            schema_a(&p, i, 300 + i * 20);
        } else {
            schema_b(&p, i, 500 + i * 20);
        }
        dbs.push(p);
    }
    let repo = env.path("repo").to_str().unwrap().to_string();
    env.run(&["init", &repo, "--recipient", &recipient]).ok();
    let policy = env.path("p.toml");
    std::fs::write(
        &policy,
        format!(
            r#"[[source]]
glob = "{}/*.sqlite"
[[target]]
name = "local"
url = {repo:?}
[encryption]
recipients = ["{recipient}"]
identity_file = {key:?}
[schedule]
incremental = "0 0 1 1 *"
"#,
            dir.display()
        ),
    )
    .unwrap();
    Setup {
        policy: policy.to_str().unwrap().to_string(),
        env,
        key,
        repo,
        dbs,
    }
}

impl Setup {
    fn pass(&self, env: &[(&str, &str)]) -> common::Run {
        let args = ["run", "--policy", &self.policy, "--all", "--json"];
        self.env.run_env(&args, env)
    }

    /// Every snapshot in the repository, newest last per source path.
    fn snapshots(&self) -> Vec<Value> {
        self.env.snapshot_list(&self.repo, &self.key)
    }

    /// Restores each source's newest snapshot and checks it equals the file.
    fn newest_restore_to_the_files(&self, tag: &str) {
        let mut newest: BTreeMap<String, Value> = BTreeMap::new();
        for s in self.snapshots() {
            newest.insert(s["path"].as_str().unwrap().to_string(), s);
        }
        assert_eq!(
            newest.len(),
            self.dbs.len(),
            "{tag}: a source has no snapshot"
        );
        for db in &self.dbs {
            let path = std::fs::canonicalize(db).unwrap();
            let s = &newest[path.to_str().unwrap()];
            let out = self
                .env
                .path(&format!("{tag}-{}", s["source"].as_str().unwrap()));
            self.env
                .restore(s["id"].as_str().unwrap(), &self.repo, &self.key, &out);
            assert_eq!(
                sha256_file(&out),
                sha256_file(db),
                "{tag}: {}",
                db.display()
            );
        }
    }

    fn files_under(&self, dir: &str) -> usize {
        common::walk(&Path::new(&self.repo).join(dir)).len()
    }

    fn checks_clean(&self) {
        let v = self.env.check(&self.repo, &self.key, true).ok().json();
        assert_eq!(v["ok"], true, "{v}");
    }
}

#[test]
fn a_pass_over_many_databases_shares_packs_and_every_snapshot_restores() {
    let s = setup();
    // A file the glob matches that is not a database fails alone.
    let broken = s.env.path("branches/broken.sqlite");
    std::fs::write(
        &broken,
        b"this is not a database, only a file named like one",
    )
    .unwrap();
    let run = s.pass(&[]);
    assert_eq!(run.code, 8, "partial success: {}", run.stderr);
    let jobs = run.json()["jobs"].as_array().unwrap().clone();
    let backups: Vec<&Value> = jobs
        .iter()
        .filter(|j| j["job"] == "full" || j["job"] == "incremental")
        .collect();
    assert_eq!(backups.len(), DATABASES + 1);
    let failed: Vec<&&Value> = backups.iter().filter(|j| j["ok"] == false).collect();
    assert_eq!(failed.len(), 1, "{jobs:?}");
    assert_eq!(failed[0]["source"], "broken");
    std::fs::remove_file(&broken).unwrap();

    // Twelve databases, one index and a data pack and a tree pack shared by all of them.
    assert_eq!(s.snapshots().len(), DATABASES);
    assert_eq!(s.files_under("index"), 1);
    assert!(
        s.files_under("data") <= 2,
        "{} packs",
        s.files_under("data")
    );
    s.newest_restore_to_the_files("first");
    s.checks_clean();

    // A day of business in two of them: the next pass stores their changes, and every
    // source's newest snapshot is still its file.
    let c = Connection::open(&s.dbs[0]).unwrap();
    c.execute("UPDATE invoices SET cents = cents + 1 WHERE id % 7 = 0", [])
        .unwrap();
    drop(c);
    let c = Connection::open(&s.dbs[1]).unwrap();
    c.execute(
        "INSERT INTO \"Invoice Header\" VALUES ('B1', 'new', 1800000000, 9.5)",
        [],
    )
    .unwrap();
    drop(c);
    let second = s.pass(&[]).ok().json();
    let ok = second["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["job"] == "incremental" && j["ok"] == true)
        .count();
    assert_eq!(ok, DATABASES);
    assert_eq!(s.snapshots().len(), 2 * DATABASES);
    s.newest_restore_to_the_files("second");
    s.checks_clean();
}

#[test]
fn a_pass_killed_before_or_between_its_manifests_leaves_a_clean_repository() {
    for (point, written) in [("index-written", 0), ("manifest-written:5", 5)] {
        let s = setup();
        s.pass(&[("IVAULT_FAILPOINT", point)]).killed_at(point);
        assert_eq!(s.snapshots().len(), written, "{point}");
        s.checks_clean();
        // Every snapshot written before the kill restores to its source.
        for snap in s.snapshots() {
            let out = s
                .env
                .path(&format!("killed-{}", snap["source"].as_str().unwrap()));
            s.env
                .restore(snap["id"].as_str().unwrap(), &s.repo, &s.key, &out);
            assert_eq!(
                sha256_file(&out),
                sha256_file(Path::new(snap["path"].as_str().unwrap())),
                "{point}"
            );
        }
        // The next pass backs every source up, reusing the packs the killed one stored.
        let data_before = s.files_under("data");
        s.pass(&[]).ok();
        assert_eq!(s.snapshots().len(), written + DATABASES, "{point}");
        assert_eq!(
            s.files_under("data"),
            data_before,
            "{point}: pages stored again"
        );
        s.newest_restore_to_the_files(point.split(':').next().unwrap());
        s.checks_clean();
    }
}
