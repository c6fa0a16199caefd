//! Backups do not build on damaged packs: a pack listed at another size than it was written
//! with, or one a check or restore found damaged, is not deduplicated against, so the next
//! incremental stores those pages again and its snapshot restores byte for byte.

mod common;
use common::damaged::{affected, key_of, objects_and_kinds, repository, Damaged, INTEGRITY};
use invoice_vault::sample;
use std::path::Path;

fn flip_a_byte(pack: &Path) {
    let mut bytes = std::fs::read(pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(pack, bytes).unwrap();
}

/// A day of business, an incremental backup that must store the pages of `pack` again, and a
/// byte-for-byte restore of its snapshot; `check --read-data` then reports `pack` alone, as
/// `kind`, and not against the new snapshot. Returns the backup's warnings.
#[track_caller]
fn next_backup_avoids(d: &Damaged, pack: &Path, kind: &str) -> Vec<String> {
    sample::day_of_business(&d.db, 2).unwrap();
    let report = d.back_up();
    assert_eq!(report["kind"], "incremental");
    let new = report["snapshot_id"].as_str().unwrap().to_string();
    let now = d.env.path("now-copy.sqlite");
    std::fs::copy(&d.db, &now).unwrap();
    d.restores_exactly(&new, &now);

    let problems = d.problems(true);
    assert_eq!(
        objects_and_kinds(&problems),
        [(key_of(pack), kind.to_string())]
    );
    let affected = affected(&problems[0]);
    assert!(affected.contains(&d.full), "{affected:?}");
    assert!(!affected.contains(&new), "{affected:?}");
    report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_truncated_pack_is_not_deduplicated_against() {
    let d = repository();
    let pack = d.biggest_pack();
    let bytes = std::fs::read(&pack).unwrap();
    let half = bytes.len() / 2;
    std::fs::write(&pack, &bytes[..half]).unwrap();
    // No check in between: the listing's size alone gives the damage away.
    let warnings = next_backup_avoids(&d, &pack, "wrong_size_pack");
    let id = &key_of(&pack)["data/xx/".len()..];
    assert_eq!(
        warnings,
        [format!(
            "pack {id} has {half} bytes but was written with {}; its pages are stored again",
            bytes.len()
        )]
    );
}

#[test]
fn a_pack_a_check_found_damaged_is_not_deduplicated_against() {
    let d = repository();
    let pack = d.biggest_pack();
    flip_a_byte(&pack);
    // Same size: only reading the data finds it, and the check records it.
    assert_eq!(d.problems(true).len(), 1);
    let warnings = next_backup_avoids(&d, &pack, "damaged_pack");
    assert_eq!(
        warnings,
        ["1 pack was found damaged earlier; the pages it holds are stored again"]
    );
}

#[test]
fn a_pack_a_restore_found_damaged_is_not_deduplicated_against() {
    let d = repository();
    let pack = d.biggest_pack();
    flip_a_byte(&pack);
    let r = d.restore(&d.full, "broken.sqlite");
    assert_eq!(r.code, INTEGRITY, "{}", r.stderr);
    let warnings = next_backup_avoids(&d, &pack, "damaged_pack");
    assert_eq!(
        warnings,
        ["1 pack was found damaged earlier; the pages it holds are stored again"]
    );
}
