//! Lost and damaged indexes: `check` names the snapshots that need what only they listed and
//! the packs that hold it, in a short summary; `repair index` rebuilds the indexes from the
//! packs, after which the check is clean and every snapshot restores byte for byte.

mod common;
use common::damaged::INTEGRITY;
use common::damaged::{affected, key_of, objects, objects_and_kinds, repository, Damaged};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Both snapshot ids, sorted as reports list them.
fn both(d: &Damaged) -> Vec<String> {
    let mut v = vec![d.full.clone(), d.incr.clone()];
    v.sort();
    v
}

fn repair(d: &Damaged, extra: &[&str]) -> common::Run {
    let mut args = vec!["repair", "index", "--repo", &d.repo, "--identity", &d.key];
    args.extend_from_slice(extra);
    d.env.run(&args)
}

/// The only index the full backup wrote.
fn full_index(d: &Damaged) -> PathBuf {
    assert_eq!(d.full_indexes.len(), 1);
    d.full_indexes.iter().next().unwrap().clone()
}

/// After repair: the check is clean and both snapshots restore byte for byte.
#[track_caller]
fn whole_again(d: &Damaged) -> serde_json::Value {
    let r = d.check(true).ok();
    let v = r.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["problems"], serde_json::json!([]));
    d.restores_exactly(&d.full, &d.full_db);
    d.restores_exactly(&d.incr, &d.incr_db);
    v
}

#[test]
fn a_damaged_index_names_the_snapshots_that_need_it_and_repair_rebuilds_it() {
    let d = repository();
    let index = full_index(&d);
    let mut bytes = std::fs::read(&index).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&index, bytes).unwrap();

    let problems = d.problems(false);
    // One line for the index, one per pack it listed, one per snapshot: no line per blob.
    let mut expected = vec![(key_of(&index), "damaged_index".to_string())];
    expected.extend(
        d.full_packs
            .iter()
            .map(|p| (key_of(p), "unindexed_pack".to_string())),
    );
    for s in both(&d) {
        expected.push((format!("snapshots/{s}"), "unindexed_blobs".to_string()));
    }
    let mut got = objects_and_kinds(&problems);
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    // The index affects every snapshot that needs a blob only it listed; each pack, the
    // snapshots that need one of its blobs.
    let mut needing_packs = BTreeSet::new();
    for p in &problems {
        match p["kind"].as_str().unwrap() {
            "unindexed_blobs" => assert_eq!(
                affected(p),
                [p["object"].as_str().unwrap()["snapshots/".len()..].to_string()]
            ),
            "unindexed_pack" => {
                assert!(!affected(p).is_empty(), "{p}");
                assert!(affected(p).iter().all(|s| both(&d).contains(s)), "{p}");
                needing_packs.extend(affected(p));
            }
            _ => assert_eq!(affected(p), both(&d), "{p}"),
        }
    }
    assert_eq!(needing_packs.into_iter().collect::<Vec<_>>(), both(&d));
    let index_problem = problems.iter().find(|p| p["kind"] == "damaged_index");
    assert_eq!(
        index_problem.unwrap()["what"],
        format!(
            "object {} in {} is damaged (its hash does not match its name)",
            key_of(&index),
            d.repo
        )
    );
    for p in problems.iter().filter(|p| p["kind"] == "unindexed_blobs") {
        let what = p["what"].as_str().unwrap();
        assert!(
            what.ends_with(
                "blobs it needs are in no readable index; packs no index lists hold every one of them"
            ),
            "{what}"
        );
    }

    // The summary: counts per kind, the snapshots affected, and what to do.
    let r = d.check_human(&[]);
    assert_eq!(r.code, INTEGRITY);
    let n = d.full_packs.len();
    let short: Vec<String> = both(&d).iter().map(|s| s[..12].to_string()).collect();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].ends_with(&format!("; read {n} packs no readable index lists")),
        "{}",
        r.stdout
    );
    assert_eq!(
        lines[1..],
        [
            "problems:".to_string(),
            "  1 damaged index (rebuildable with `ivault repair index`)".to_string(),
            format!("  {n} packs unindexed but needed (rebuildable with `ivault repair index`)"),
            "  2 snapshots needing blobs no readable index lists (rebuildable with `ivault repair index`)".to_string(),
            format!("affected snapshots (2 of 2): {}", short.join(", ")),
            "the repository is damaged; `ivault check --details` lists every object".to_string(),
        ]
    );
    let details = d.check_human(&["--details"]).stdout;
    for p in problems.iter().filter(|p| p["kind"] == "unindexed_pack") {
        let line = format!(
            "unindexed but needed (rebuildable with `ivault repair index`): {}; affects snapshots: {}",
            p["object"].as_str().unwrap(),
            affected(p).iter().map(|s| &s[..12]).collect::<Vec<_>>().join(", ")
        );
        assert!(details.lines().any(|l| l == line), "{details}");
    }
    let line = format!(
        "damaged: object {} in {} is damaged (its hash does not match its name); affects snapshots: {}",
        key_of(&index),
        d.repo,
        short.join(", ")
    );
    assert!(details.lines().any(|l| l == line), "{details}");

    // Repair reads the packs no readable index lists and writes one new index.
    let indexes_before = objects(&d.repo, "index");
    let r = repair(&d, &[]).ok();
    let written: Vec<PathBuf> = objects(&d.repo, "index")
        .difference(&indexes_before)
        .cloned()
        .collect();
    assert_eq!(written.len(), 1);
    assert!(index.exists(), "the damaged index is left in place");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "read {n} packs no readable index lists; wrote index {} listing {n} packs (",
            &key_of(&written[0])["index/".len()..][..12]
        )),
        "{}",
        r.stdout
    );
    assert!(lines[1].starts_with(&format!("left in place: {}: ", key_of(&index))));
    assert_eq!(
        lines[2],
        "damaged indexes are left in place: they are harmless once another index lists their packs; `ivault check` says whether any snapshot still lacks something"
    );

    let v = whole_again(&d);
    assert_eq!(v["unreadable_indexes"], 1);
    assert_eq!(
        v["warnings"],
        serde_json::json!([format!(
            "object {} in {} is damaged (its hash does not match its name); every blob the snapshots need is listed by another index, so it is harmless",
            key_of(&index),
            d.repo
        )])
    );
    // Nothing is left to index.
    let again = repair(&d, &["--json"]).ok().json();
    assert_eq!(again["packs_read"], 0);
    assert_eq!(again["index"], serde_json::Value::Null);
    assert_eq!(objects(&d.repo, "index").len(), indexes_before.len() + 1);
}

#[test]
fn lost_indexes_are_rebuilt_from_the_packs() {
    let d = repository();
    let packs: BTreeSet<String> = objects(&d.repo, "data").iter().map(|p| key_of(p)).collect();
    for i in objects(&d.repo, "index") {
        std::fs::remove_file(i).unwrap();
    }
    let v = d.check(false).json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["unindexed_packs_read"], packs.len());
    let mut summary = serde_json::Map::new();
    summary.insert("unindexed_pack".into(), packs.len().into());
    summary.insert("unindexed_blobs".into(), 2.into());
    assert_eq!(v["summary"], serde_json::Value::Object(summary));
    assert_eq!(v["affected_snapshots"], serde_json::json!(both(&d)));
    let needed: BTreeSet<String> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "unindexed_pack")
        .map(|p| p["object"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(needed, packs);
    // Restores cannot find the blobs until the indexes are rebuilt.
    let r = d.restore(&d.full, "early.sqlite");
    assert_eq!(r.code, INTEGRITY, "{}", r.stderr);

    let rep = repair(&d, &["--json"]).ok().json();
    assert_eq!(rep["packs_read"], packs.len());
    assert_eq!(rep["packs_indexed"], packs.len());
    assert_eq!(rep["unreadable_indexes"], serde_json::json!([]));
    assert_eq!(objects(&d.repo, "index").len(), 1);
    let v = whole_again(&d);
    assert_eq!(v["warnings"], serde_json::json!([]));
    assert_eq!(v["packs"], packs.len());

    // --all indexes every pack again, in another new index.
    let all = repair(&d, &["--all", "--json"]).ok().json();
    assert_eq!(all["packs_indexed"], packs.len());
    assert_eq!(objects(&d.repo, "index").len(), 2);
    whole_again(&d);
}

#[test]
fn a_damaged_pack_no_index_lists_is_not_indexed() {
    let d = repository();
    let index = full_index(&d);
    std::fs::remove_file(&index).unwrap();
    let pack = d.full_packs.iter().next().unwrap().clone();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(&pack, bytes).unwrap();
    let rep = repair(&d, &["--json"]).ok().json();
    assert_eq!(rep["packs_read"], d.full_packs.len());
    assert_eq!(rep["packs_indexed"], d.full_packs.len() - 1);
    assert_eq!(
        rep["warnings"],
        serde_json::json!([format!(
            "object {} in {} is damaged (its hash does not match its name); it was not indexed",
            key_of(&pack),
            d.repo
        )])
    );
    // The check still says what is lacking, and warns about the pack it cannot read.
    let v = d.check(false).json();
    assert_eq!(v["ok"], false);
    assert_eq!(
        v["warnings"],
        serde_json::json!([format!(
            "object {} in {} is damaged (its hash does not match its name); no readable index lists it, so it cannot be indexed again",
            key_of(&pack),
            d.repo
        )])
    );
}
