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
    /// `check --read-data` finds nothing wrong.
    #[track_caller]
    fn assert_whole(&self) {
        let listed = self.listed();
        assert!(!listed.is_empty());
        for id in &listed {
            assert!(
                self.snapshots.iter().any(|(s, _)| s == id),
                "snapshot {id} is not one this test made"
            );
        }
        self.assert_whole_except_other_host();
    }

    /// [`Self::assert_whole`] for the snapshots this host made, leaving other hosts' alone.
    #[track_caller]
    fn assert_whole_except_other_host(&self) {
        let listed = self.listed();
        for id in &listed {
            let Some((_, sha)) = self.snapshots.iter().find(|(s, _)| s == id) else {
                continue;
            };
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

/// A second database unlike the sample: WITHOUT ROWID, text keys, blobs, rollback journal.
fn second_schema(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode=DELETE;
         CREATE TABLE \"Receipts 2025\" (code TEXT NOT NULL, no TEXT NOT NULL, scan BLOB NOT NULL,
             PRIMARY KEY (code, no)) WITHOUT ROWID;",
    )
    .unwrap();
    grow(path, 0, 300);
}

fn grow(path: &Path, from: usize, n: usize) {
    let mut c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let tx = c.transaction().unwrap();
    for i in from..from + n {
        let scan: Vec<u8> = (0..900).map(|k| ((i * 31 + k * 7) % 251) as u8).collect();
        tx.execute(
            "INSERT OR REPLACE INTO \"Receipts 2025\" VALUES (?1, ?2, ?3)",
            rusqlite::params![format!("R{}", i % 7), format!("{:08}", i), scan],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// Backups, forgets and prunes in a random order on one host while a second host keeps backing
/// up another database into the same repository: every snapshot that remains restores to its
/// exact bytes and the repository checks clean.
#[test]
fn random_backups_forgets_and_prunes_beside_a_concurrent_backup_lose_nothing() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("IVAULT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("IVAULT_TEST_SEED={seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut r = Repo::new();
    r.backup();
    let other_db = r.env.path("receipts.sqlite");
    second_schema(&other_db);
    let other_state = r.env.path("state-host2");
    let host2 = [("IVAULT_STATE_DIR", other_state.to_str().unwrap())];
    let stop = std::sync::atomic::AtomicBool::new(false);
    let other_snapshots = std::sync::Mutex::new(Vec::<(String, String)>::new());
    let mut mine = Vec::new();

    std::thread::scope(|s| {
        let host2_loop = s.spawn(|| {
            let mut round = 300;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                grow(&other_db, round, 40);
                round += 40;
                let db = other_db.to_str().unwrap();
                let run = r
                    .env
                    .run_env(&["backup", db, "--to", &r.repo, "--json"], &host2)
                    .ok();
                let id = run.json()[0]["snapshot_id"].as_str().unwrap().to_string();
                let sha = common::sha256_file(&other_db);
                other_snapshots.lock().unwrap().push((id, sha));
            }
        });
        // Stops the second host however this thread leaves the scope (a failed assertion too).
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        for step in 0..14 {
            match rng.gen_range(0..4) {
                0 | 1 => {
                    r.change(step);
                    let b = r.env.backup_report(&r.db, &r.repo, &[]);
                    let id = b["snapshot_id"].as_str().unwrap().to_string();
                    mine.push((id, common::sha256_file(Path::new(&r.db))));
                }
                2 => {
                    let keep = rng.gen_range(1..=3).to_string();
                    r.run("forget", &["--keep-last", &keep]).ok();
                }
                _ => {
                    r.prune(&["--grace", "2s", "--repack-unused-above", "30"]);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(0..700)));
        }
        drop(_stop);
        host2_loop.join().unwrap();
    });
    r.snapshots.extend(mine);
    // Forget all but the newest, let every mark pass its grace period, and prune until
    // nothing is left to do.
    r.run("forget", &["--keep-last", "1"]).ok();
    let mut deleted = 0;
    for _ in 0..3 {
        r.prune(&["--grace", "2s"]);
        std::thread::sleep(std::time::Duration::from_millis(2100));
        deleted += r.prune(&["--grace", "2s"])["packs_deleted"]
            .as_u64()
            .unwrap();
    }
    assert!(deleted > 0, "seed {seed}: the prunes deleted nothing");
    r.assert_whole_except_other_host();
    // The second host's snapshots restore too, with the signer it trusts.
    let listed = r.run("snapshots", &[]).ok().json();
    let others = other_snapshots.into_inner().unwrap();
    assert!(!others.is_empty());
    for s in listed.as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        let Some((_, sha)) = others.iter().find(|(o, _)| o == id) else {
            continue;
        };
        let out = r.env.path(&format!("host2-{}.sqlite", &id[..12]));
        let run = r.env.run_env(
            &[
                "restore",
                id,
                "--repo",
                &r.repo,
                "--identity",
                &r.key,
                "--to",
                out.to_str().unwrap(),
            ],
            &host2,
        );
        assert_eq!(run.code, 0, "seed {seed}: {}", run.stderr);
        assert_eq!(
            &common::sha256_file(&out),
            sha,
            "seed {seed}: snapshot {id}"
        );
    }
}
