//! `ivault forget`, `hold` and `unhold` with the real binary: what is forgotten is gone from
//! the listing, what is kept restores byte for byte, holds outlast every rule, rules that keep
//! nothing are refused, and planted snapshots neither count nor get deleted.

mod common;
use common::Env;
use invoice_vault::sample::{self, JournalMode};
use serde_json::Value;

struct Setup {
    env: Env,
    key: String,
    repo: String,
    /// Snapshot ids oldest first, with the database's SHA-256 at each.
    snapshots: Vec<(String, String)>,
}

fn setup(n: usize) -> Setup {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("f.sqlite", 1, JournalMode::Wal);
    let dbs = db.to_str().unwrap().to_string();
    let mut snapshots = Vec::new();
    for i in 0..n {
        if i > 0 {
            let mut c = rusqlite::Connection::open(&db).unwrap();
            sample::write_one(&mut c, i as u64).unwrap();
        }
        let id = env.backup_report(&dbs, &repo, &[])["snapshot_id"]
            .as_str()
            .unwrap()
            .to_string();
        snapshots.push((id, common::sha256_file(&db)));
    }
    Setup {
        env,
        key,
        repo,
        snapshots,
    }
}

impl Setup {
    fn forget(&self, extra: &[&str]) -> common::Run {
        let mut args = vec![
            "forget",
            "--repo",
            &self.repo,
            "--identity",
            &self.key,
            "--json",
        ];
        args.extend_from_slice(extra);
        self.env.run(&args)
    }

    fn listed(&self) -> Vec<String> {
        self.env
            .snapshot_list(&self.repo, &self.key)
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }

    fn ids(&self, range: std::ops::Range<usize>) -> Vec<String> {
        self.snapshots[range]
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[test]
fn forget_keeps_the_newest_and_they_restore_exactly() {
    let s = setup(5);
    let dry = s.forget(&["--keep-last", "2", "--dry-run"]).ok().json();
    assert_eq!(dry["forgotten"], 3);
    assert_eq!(dry["kept"], 2);
    assert_eq!(s.listed(), s.ids(0..5), "a dry run deletes nothing");

    let r = s.forget(&["--keep-last", "2"]).ok().json();
    assert_eq!(r["forgotten"], 3);
    let decisions = r["sources"]["f"].as_array().unwrap();
    let kept: Vec<&str> = decisions
        .iter()
        .filter(|d| d["keep"] == true)
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(kept, [s.snapshots[4].0.as_str(), s.snapshots[3].0.as_str()]);
    assert_eq!(decisions[0]["reasons"], serde_json::json!(["last"]));
    assert_eq!(s.listed(), s.ids(3..5));
    for (id, sha) in &s.snapshots[3..] {
        let out = s.env.path(&format!("{id}.sqlite"));
        s.env.restore(id, &s.repo, &s.key, &out);
        assert_eq!(&common::sha256_file(&out), sha);
    }
    // Their data is still there, unreferenced until a prune: the repository checks clean.
    assert_eq!(s.env.check(&s.repo, &s.key, true).code, 0);
}

#[test]
fn a_held_snapshot_outlasts_every_rule_until_unheld() {
    let s = setup(3);
    let oldest = &s.snapshots[0].0;
    let held = s.env.run(&[
        "hold",
        &oldest[..10],
        "--repo",
        &s.repo,
        "--identity",
        &s.key,
        "--reason",
        "tax inspection 2025",
    ]);
    assert_eq!(
        held.ok().stdout.trim(),
        format!("snapshot {oldest} is held: tax inspection 2025")
    );
    let r = s.forget(&["--keep-last", "1"]).ok().json();
    let d = &r["sources"]["f"];
    let oldest_decision = d
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == oldest.as_str())
        .unwrap();
    assert_eq!(
        oldest_decision["reasons"],
        serde_json::json!(["hold: tax inspection 2025"])
    );
    assert_eq!(s.listed(), vec![oldest.clone(), s.snapshots[2].0.clone()]);
    let check = s.env.check(&s.repo, &s.key, true);
    assert_eq!(check.code, 0, "{}", check.stdout);

    s.env
        .run(&["unhold", oldest, "--repo", &s.repo, "--identity", &s.key])
        .ok();
    s.forget(&["--keep-last", "1"]).ok();
    assert_eq!(s.listed(), s.ids(2..3));
}

#[test]
fn rules_that_keep_nothing_and_bad_values_are_refused() {
    let s = setup(2);
    let r = s.forget(&[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "ivault: these retention rules keep no snapshot at all; give at least one keep rule"
    );
    let r = s.forget(&["--keep-daily", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = s.forget(&["--keep-within", "3x"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("\"3x\" is not a duration; write it like 12h, 30d or 2w"),
        "{}",
        r.stderr
    );
    let r = s.forget(&["--keep-last", "1", "--fiscal-year-start", "13-01"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = s.env.run(&[
        "hold",
        &s.snapshots[0].0,
        "--repo",
        &s.repo,
        "--identity",
        &s.key,
        "--reason",
        " ",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(s.listed(), s.ids(0..2));
}

#[test]
fn a_planted_snapshot_neither_counts_nor_is_deleted() {
    let s = setup(2);
    // Another host, with its own signing key nobody trusts, writes into the repository.
    let other = s.env.path("other.sqlite");
    sample::generate(
        &other,
        &sample::GenerateOptions {
            size_mb: 1,
            seed: 9,
            journal_mode: JournalMode::Wal,
        },
    )
    .unwrap();
    let planted = s
        .env
        .run_env(
            &[
                "backup",
                other.to_str().unwrap(),
                "--to",
                &s.repo,
                "--name",
                "f",
                "--json",
            ],
            &[("IVAULT_STATE_DIR", s.env.path("intruder").to_str().unwrap())],
        )
        .ok()
        .json()[0]["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.forget(&["--keep-last", "1"]);
    let v = r.ok_json();
    assert_eq!(v["forgotten"], 1);
    assert_eq!(v["untouched"][0]["id"], planted.as_str());
    let mut want = vec![s.snapshots[1].0.clone(), planted];
    want.sort();
    let mut got = s.listed();
    got.sort();
    assert_eq!(got, want);
}

trait OkJson {
    fn ok_json(self) -> Value;
}

impl OkJson for common::Run {
    fn ok_json(self) -> Value {
        let stderr = self.stderr.clone();
        let v = self.ok().json();
        assert!(
            stderr.contains("left alone: not signed by a trusted signer"),
            "{stderr}"
        );
        v
    }
}

#[test]
fn without_keep_flags_the_policy_retention_applies() {
    let s = setup(3);
    let policy = s.env.path("p.toml");
    std::fs::write(
        &policy,
        format!(
            "[[target]]\nname = \"local\"\nurl = {:?}\n[retention]\nkeep_last = 1\n",
            s.repo
        ),
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let r = s
        .env
        .run(&[
            "forget",
            "--repo",
            "local",
            "--identity",
            &s.key,
            "--policy",
            p,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["forgotten"], 2);
    assert_eq!(s.listed(), s.ids(2..3));
    // A flag overrides the policy.
    let r = s.forget(&["--keep-last", "5", "--dry-run"]).ok().json();
    assert_eq!(r["forgotten"], 0);
}
