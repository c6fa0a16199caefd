//! Damage is reported precisely: `check --read-data` names every damaged object and the
//! snapshots it affects; restoring an affected snapshot fails clearly and leaves no file.

mod common;
use common::Env;
use std::path::PathBuf;

use common::damaged::{
    affected, key_of, objects, objects_and_kinds, repository, Damaged, INTEGRITY,
};

/// Restoring `id` fails clearly with exit code 5 and leaves no file.
#[track_caller]
fn restore_fails(d: &Damaged, id: &str) {
    let r = d.restore(id, "restored.sqlite");
    assert_eq!(r.code, INTEGRITY, "{}", r.stderr);
    assert!(
        r.stderr.contains("damaged") || r.stderr.contains("does not match"),
        "{}",
        r.stderr
    );
    assert!(!d.env.path("restored.sqlite").exists());
    assert!(d.env.files_named(".ivault-").is_empty());
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
    assert_eq!(
        objects_and_kinds(&problems),
        [(key_of(&pack), "damaged_pack".to_string())]
    );
    let affected = affected(&problems[0]);
    assert!(affected.contains(&d.full), "{affected:?}");
    restore_fails(&d, &d.full);
}

#[test]
fn a_truncated_pack_is_found_by_the_structure_check() {
    let d = repository();
    let pack = d.biggest_pack();
    let bytes = std::fs::read(&pack).unwrap();
    std::fs::write(&pack, &bytes[..bytes.len() / 2]).unwrap();
    let problems = d.problems(false);
    assert_eq!(
        objects_and_kinds(&problems),
        [(key_of(&pack), "wrong_size_pack".to_string())]
    );
    assert_eq!(
        problems[0]["what"],
        format!(
            "pack has {} bytes, the index records {}",
            bytes.len() / 2,
            bytes.len()
        )
    );
    assert!(!problems[0]["affected_snapshots"]
        .as_array()
        .unwrap()
        .is_empty());
    restore_fails(&d, "latest");
}

#[test]
fn a_deleted_pack_is_reported_with_the_snapshots_it_breaks() {
    let d = repository();
    let pack = d.biggest_pack();
    std::fs::remove_file(&pack).unwrap();
    let problems = d.problems(false);
    assert_eq!(
        objects_and_kinds(&problems),
        [(key_of(&pack), "missing_pack".to_string())]
    );
    assert_eq!(problems[0]["what"], "pack is missing");
    let mut both = vec![d.full.clone(), d.incr.clone()];
    both.sort();
    assert_eq!(affected(&problems[0]), both);
    // Restoring needs the pack: the same cause gives the same exit code as the check.
    let r = d.restore(&d.full, "x.sqlite");
    assert_eq!(r.code, INTEGRITY, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim().lines().last().unwrap(),
        format!(
            "ivault: object {} in {} is missing; run `ivault check`",
            key_of(&pack),
            d.repo
        )
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
    restore_fails(&d, &d.incr);
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
fn human_output_is_a_summary_and_details_on_request() {
    let d = repository();
    let pack = d.biggest_pack();
    std::fs::remove_file(&pack).unwrap();
    let counts = d.check(false).json();
    let mut both = [d.full[..12].to_string(), d.incr[..12].to_string()];
    both.sort();
    let head = format!(
        "2 snapshots, 2 indexes, {} packs ({} read)\n\
         problems:\n  \
         1 missing pack (a fresh `ivault backup --full` stores every page again, so new snapshots do not depend on damaged packs)\n\
         affected snapshots (2 of 2): {}\n",
        counts["packs"],
        counts["packs_read"],
        both.join(", ")
    );
    let r = d.check_human(&[]);
    assert_eq!(r.code, INTEGRITY);
    assert_eq!(
        r.stdout,
        format!("{head}the repository is damaged; `ivault check --details` lists every object\n")
    );
    let r = d.check_human(&["--details"]);
    assert_eq!(r.code, INTEGRITY);
    assert_eq!(
        r.stdout,
        format!(
            "{head}damaged: {}: pack is missing; affects snapshots: {}\nthe repository is damaged\n",
            key_of(&pack),
            both.join(", ")
        )
    );
}

#[test]
fn a_pack_nobody_needs_is_a_leftover_and_no_problem() {
    let d = repository();
    invoice_vault::sample::day_of_business(&d.db, 2).unwrap();
    // A backup killed after storing its first pack leaves packs no index lists (two are
    // uploaded at once, so one or two, and maybe a temporary file, which is no object).
    let before = objects(&d.repo, "data");
    let dbs = d.db.to_str().unwrap();
    let r = d.env.run_env(
        &["backup", dbs, "--to", &d.repo],
        &[("IVAULT_FAILPOINT", "pack-written")],
    );
    assert_ne!(r.code, 0);
    let left: Vec<String> = objects(&d.repo, "data")
        .difference(&before)
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| key_of(p))
        .collect();
    let warning = match left.len() {
        1 => "1 pack is in no readable index and no snapshot needs it (left by an interrupted backup); it is harmless".to_string(),
        2 => "2 packs are in no readable index and no snapshot needs them (left by interrupted backups); they are harmless".to_string(),
        _ => panic!("{left:?}"),
    };
    let r = d.check(false).ok();
    let v = r.json();
    assert_eq!(v["problems"], serde_json::json!([]));
    assert_eq!(v["leftover_packs"], serde_json::json!(left));
    assert_eq!(v["unindexed_packs_read"], 0);
    assert_eq!(v["warnings"], serde_json::json!([warning]));
    let human = d.check_human(&[]).ok().stdout;
    assert!(!human.contains("prune"), "{human}");
    assert!(human.ends_with("no problems found\n"), "{human}");
}

#[test]
fn a_source_that_fails_integrity_check_is_caught_by_the_full_check_at_restore() {
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
    let restore = |out: &str, extra: &[&str]| {
        let mut a = vec!["restore", "latest", "--to", out];
        a.extend_from_slice(&base);
        a.extend_from_slice(extra);
        env.run(&a)
    };
    // Only the full check reads an index against its table.
    let r = restore("out.sqlite", &["--integrity-check", "full"]);
    assert_eq!(r.code, INTEGRITY, "{}", r.stderr);
    assert!(
        r.stderr.contains("fails PRAGMA integrity_check"),
        "{}",
        r.stderr
    );
    assert!(!env.path("out.sqlite").exists());
    assert!(env.files_named(".ivault-").is_empty());
    // The bytes are still exactly the snapshot's: quick_check (by default relied on from the
    // backup, which ran it on this image; or run again) and no check at all restore them.
    for (out, extra, said) in [
        (
            "default.sqlite",
            &[][..],
            "SHA-256 passed; quick_check passed at backup on this very image",
        ),
        (
            "quick.sqlite",
            &["--integrity-check", "quick"][..],
            "SHA-256 and quick_check passed",
        ),
        (
            "off.sqlite",
            &["--skip-integrity-check"][..],
            "SQLite's check skipped",
        ),
    ] {
        let r = restore(out, extra).ok();
        assert!(r.stdout.contains(said), "{}", r.stdout);
        assert_eq!(
            common::sha256_file(&env.path(out)),
            common::sha256_file(&db)
        );
    }
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

/// Moves the packs out of the repository and back, by renaming.
fn set_aside(packs: &[PathBuf], aside: bool) {
    for p in packs {
        let away = p.with_extension("aside");
        let (from, to) = if aside { (p, &away) } else { (&away, p) };
        std::fs::rename(from, to).unwrap();
    }
}

#[test]
fn a_restore_reads_the_blobs_of_a_lost_pack_from_another_copy() {
    let d = repository();
    let first: Vec<PathBuf> = objects(&d.repo, "data").into_iter().collect();
    // A second full backup of the same database stores every page again, in packs of its own.
    let db = d.db.to_str().unwrap();
    let again = d.env.backup_report(db, &d.repo, &["--full"]);
    let second: Vec<PathBuf> = objects(&d.repo, "data")
        .into_iter()
        .filter(|p| !first.contains(p))
        .collect();
    assert!(!second.is_empty());
    let id = again["snapshot_id"].as_str().unwrap();
    // Which copy a restore reads first is its own choice: losing each generation in turn, one
    // of the two restores has to find its chosen packs gone and use the other copies.
    let mut fell_back = 0;
    for lost in [&first, &second] {
        set_aside(lost, true);
        let report = d.restores_exactly(id, &d.incr_db);
        let warnings = report["warnings"].as_array().unwrap();
        if !warnings.is_empty() {
            fell_back += 1;
            assert!(
                warnings.iter().all(|w| {
                    let w = w.as_str().unwrap();
                    w.contains("is missing") && w.ends_with("its blobs were read from other copies")
                }),
                "{warnings:?}"
            );
        }
        set_aside(lost, false);
    }
    assert!(fell_back >= 1);
}
