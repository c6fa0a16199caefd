//! `ivault prune` with the real binary on real repositories: what forgotten snapshots alone
//! used is marked, then deleted once the grace period is over; what remains restores byte for
//! byte and checks clean; backups stop building on marked packs; a prune killed at any step
//! leaves a repository that checks clean and the next prune finishes the work.

mod common;
use common::{Env, Run};
use invoice_vault::sample::JournalMode;
use serde_json::Value;
use std::path::Path;

const REPOSITORY: i32 = 4;

struct Repo {
    env: Env,
    key: String,
    repo: String,
    db: String,
    /// Snapshot ids oldest first, with the database's SHA-256 at each.
    snapshots: Vec<(String, String)>,
}

impl Repo {
    fn new() -> Repo {
        let env = Env::new();
        let (key, repo) = env.key_and_repo();
        let db = env.database("p.sqlite", 2, JournalMode::Wal);
        Repo {
            db: db.to_str().unwrap().to_string(),
            env,
            key,
            repo,
            snapshots: Vec::new(),
        }
    }

    /// Rewrites a quarter of the invoice lines (a different quarter each time), so that every
    /// snapshot holds pages no other one has.
    fn change(&self, round: usize) {
        let c = rusqlite::Connection::open(&self.db).unwrap();
        c.execute(
            "UPDATE invoice_items SET description = description || ?1 WHERE id % 4 = ?2",
            rusqlite::params![format!(" r{round}"), (round % 4) as i64],
        )
        .unwrap();
    }

    fn backup(&mut self) -> Value {
        let r = self.env.backup_report(&self.db, &self.repo, &[]);
        let id = r["snapshot_id"].as_str().unwrap().to_string();
        self.snapshots
            .push((id, common::sha256_file(Path::new(&self.db))));
        r
    }

    fn run(&self, cmd: &str, extra: &[&str]) -> Run {
        let mut args = vec![cmd, "--repo", &self.repo, "--identity", &self.key, "--json"];
        args.extend_from_slice(extra);
        self.env.run(&args)
    }

    fn prune(&self, extra: &[&str]) -> Value {
        self.run("prune", extra).ok().json()
    }

    fn listed(&self) -> Vec<String> {
        let v = self.run("snapshots", &[]).ok().json();
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Every listed snapshot restores to the bytes the database had when it was taken, and
    /// `check --read-data` finds nothing wrong and nothing left over.
    #[track_caller]
    fn assert_whole(&self) {
        let listed = self.listed();
        assert!(!listed.is_empty());
        for id in &listed {
            let sha = &self.snapshots.iter().find(|(s, _)| s == id).unwrap().1;
            let out = self.env.path(&format!("restored-{}.sqlite", &id[..12]));
            let _ = std::fs::remove_file(&out);
            self.env.restore(id, &self.repo, &self.key, &out);
            assert_eq!(&common::sha256_file(&out), sha, "snapshot {id}");
        }
        let check = self.env.check(&self.repo, &self.key, true);
        assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
        assert_eq!(check.json()["problems"], serde_json::json!([]));
    }

    fn stored_bytes(&self, dir: &str) -> u64 {
        common::walk(&Path::new(&self.repo).join(dir))
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    }

    fn count(&self, dir: &str) -> usize {
        common::walk(&Path::new(&self.repo).join(dir)).len()
    }

    /// Four snapshots, the two oldest forgotten.
    fn with_forgotten() -> Repo {
        let mut r = Repo::new();
        for round in 0..4 {
            if round > 0 {
                r.change(round);
            }
            r.backup();
        }
        r.run("forget", &["--keep-last", "2"]).ok();
        r
    }
}

#[test]
fn forgotten_data_is_marked_then_deleted_after_the_grace_period() {
    let r = Repo::with_forgotten();
    let data_before = r.stored_bytes("data");

    let dry = r.prune(&["--grace", "0s", "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert!(dry["marked"].as_u64().unwrap() > 0, "{dry}");
    assert_eq!(r.count("doomed"), 0, "a dry run writes nothing");
    assert_eq!(r.stored_bytes("data"), data_before);

    // First run: marks, deletes nothing.
    let first = r.prune(&[]);
    let marked = first["marked"].as_u64().unwrap();
    assert!(marked > 0, "{first}");
    assert_eq!(first["packs_deleted"], 0);
    assert_eq!(first["waiting"], 0, "nothing was marked before this run");
    assert_eq!(r.count("doomed") as u64, marked);
    assert_eq!(r.count("locks"), 0, "the lock is released");
    r.assert_whole();

    // Within the grace period nothing goes.
    let waiting = r.prune(&["--grace", "1h"]);
    assert_eq!(waiting["packs_deleted"], 0);
    assert_eq!(waiting["waiting"].as_u64().unwrap(), marked);
    assert!(waiting["next_deletion"].is_string());

    // After it, the marked packs go, and the space with them.
    let data_marked = r.stored_bytes("data");
    let second = r.prune(&["--grace", "0s"]);
    assert_eq!(
        second["packs_deleted"].as_u64().unwrap(),
        marked,
        "{second}"
    );
    let freed = second["bytes_freed"].as_u64().unwrap();
    assert!(freed > 0);
    assert_eq!(second["repacked"], 0, "{second}");
    assert_eq!(
        r.stored_bytes("data"),
        data_marked - freed,
        "exactly the deleted packs' bytes are gone"
    );
    assert!(r.stored_bytes("data") < data_before);
    r.assert_whole();

    // Nothing is left to do once the repository has settled.
    let third = r.prune(&["--grace", "0s"]);
    assert_eq!(third["marked"], 0, "{third}");
    assert_eq!(third["packs_deleted"], 0);
    assert_eq!(r.count("doomed"), 0);
    r.assert_whole();
}

#[test]
fn a_backup_does_not_build_on_packs_a_prune_has_marked() {
    let mut r = Repo::new();
    let first = r.backup();
    // A second source keeps one snapshot tagged; the first source's only snapshot goes.
    let other = r.env.database("other.sqlite", 1, JournalMode::Rollback);
    let kept = r
        .env
        .backup_report(other.to_str().unwrap(), &r.repo, &["--tag", "keep"]);
    r.snapshots.push((
        kept["snapshot_id"].as_str().unwrap().to_string(),
        common::sha256_file(&other),
    ));
    r.run("forget", &["--keep-tag", "keep"]).ok();
    assert!(r.prune(&[])["marked"].as_u64().unwrap() > 0);

    // The same unchanged database again: without the marks every page would be deduplicated.
    let again = r.backup();
    assert_eq!(again["pages_new"], first["page_count"], "{again}");
    r.prune(&["--grace", "0s"]);
    r.assert_whole();
}

#[test]
fn a_prune_killed_at_any_step_leaves_a_repository_that_checks_clean() {
    // A repository where one prune run repacks, marks, writes an index, deletes indexes and
    // deletes packs.
    let mut template = Repo::with_forgotten();
    template.prune(&["--grace", "0s"]);
    template.change(9);
    template.backup();
    template.run("forget", &["--keep-last", "2"]).ok();

    for point in [
        "prune-repacked",
        "prune-marked",
        "prune-index-written",
        "prune-index-deleted",
        "prune-pack-deleted",
    ] {
        let r = copy_of(&template);
        let args = [
            "prune",
            "--repo",
            &r.repo,
            "--identity",
            &r.key,
            "--grace",
            "0s",
            "--repack-unused-above",
            "1",
        ];
        r.env
            .run_env(&args, &[("IVAULT_FAILPOINT", point)])
            .killed_at(point);
        r.assert_whole();
        // The next prunes finish the work (the killed run's lock is its host's, and stale):
        // one deletes what was marked and marks what it repacked, one deletes that.
        r.prune(&["--grace", "0s"]);
        r.prune(&["--grace", "0s"]);
        let last = r.prune(&["--grace", "0s"]);
        assert_eq!(last["packs_deleted"], 0, "{point}: {last}");
        assert_eq!(last["marked"], 0, "{point}: {last}");
        assert_eq!(r.count("locks"), 0);
        r.assert_whole();
    }
}

#[test]
fn another_running_prune_is_waited_for_and_a_bad_threshold_is_refused() {
    let r = Repo::with_forgotten();
    // A lock another host's prune holds right now.
    let lock = serde_json::json!({
        "host": "drill-02", "pid": 4242, "time": chrono::Utc::now().to_rfc3339(),
    });
    let locks = Path::new(&r.repo).join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    std::fs::write(locks.join("0123456789abcdef"), lock.to_string()).unwrap();
    let refused = r.run("prune", &[]);
    assert_eq!(refused.code, REPOSITORY, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("another prune (host drill-02, pid 4242, since "),
        "{}",
        refused.stderr
    );
    assert_eq!(r.count("doomed"), 0, "nothing was marked");
    assert_eq!(r.count("locks"), 1, "only the other prune's lock is left");

    let bad = r.run("prune", &["--repack-unused-above", "101"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

fn copy_of(r: &Repo) -> Repo {
    let env = Env::new();
    copy_dir(r.env.dir.path(), env.dir.path());
    let moved = |p: &str| {
        env.dir
            .path()
            .join(Path::new(p).strip_prefix(r.env.dir.path()).unwrap())
            .to_str()
            .unwrap()
            .to_string()
    };
    Repo {
        key: moved(&r.key),
        repo: moved(&r.repo),
        db: moved(&r.db),
        snapshots: r.snapshots.clone(),
        env,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
