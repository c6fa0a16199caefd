//! The prune protocol's rules, case by case.

use super::*;
use crate::repo::pack::{BlobKind, FrameInfo, PackTable};

const HOUR: TimeDelta = TimeDelta::hours(1);

fn now() -> DateTime<Utc> {
    "2026-06-01T12:00:00Z".parse().expect("time")
}

fn settings() -> Settings {
    Settings {
        now: now(),
        grace: TimeDelta::hours(24),
        repack_unused_above: 0.5,
    }
}

fn pack(n: u8) -> PackId {
    PackId([n; 32])
}

fn blob(n: u8) -> Hash {
    [n; 32]
}

/// A pack holding blobs `ids`, 100 bytes each.
fn record(p: u8, ids: &[u8]) -> PackRecord {
    PackRecord {
        id: pack(p),
        size: 1000,
        table: PackTable {
            kind: BlobKind::Data,
            frames: vec![FrameInfo {
                compressed_len: 50,
                uncompressed_len: 100 * ids.len() as u32,
                blobs: ids.iter().map(|b| (blob(*b), 100)).collect(),
            }],
        },
    }
}

fn index(n: u8) -> IndexId {
    IndexId([n; 32])
}

/// Packs 1..=n stored; `indexes` lists (index, packs); `used` the blobs in use.
fn holdings(indexes: &[(u8, Vec<PackRecord>)], used: &[u8]) -> Holdings {
    let mut h = Holdings::default();
    for (i, records) in indexes {
        for r in records {
            h.stored.insert(r.id, r.size);
        }
        h.indexes.push((index(*i), records.clone()));
    }
    h.used = used.iter().map(|b| blob(*b)).collect();
    h
}

fn set(packs: &[u8]) -> BTreeSet<PackId> {
    packs.iter().map(|p| pack(*p)).collect()
}

#[test]
fn an_unused_pack_is_marked_first_and_deleted_only_after_the_grace_period() {
    let mut h = holdings(
        &[(1, vec![record(1, &[1, 2]), record(2, &[3, 4])])],
        &[1, 2],
    );
    let p = plan(&h, &settings());
    assert_eq!(p.mark, set(&[2]));
    assert!(p.delete.is_empty() && p.rewrite.is_empty());

    h.marks.insert(pack(2), now() - TimeDelta::hours(23));
    let p = plan(&h, &settings());
    assert!(p.mark.is_empty() && p.delete.is_empty());
    assert_eq!(p.waiting, vec![(pack(2), now() + HOUR)]);

    h.marks.insert(pack(2), now() - TimeDelta::hours(24));
    let p = plan(&h, &settings());
    assert_eq!(p.delete, set(&[2]));
    assert_eq!(p.rewrite, BTreeSet::from([index(1)]));
    let kept: Vec<PackId> = p.kept_records.iter().map(|r| r.id).collect();
    assert_eq!(kept, vec![pack(1)]);
}

#[test]
fn a_doomed_pack_a_new_snapshot_uses_again_is_unmarked_not_deleted() {
    let mut h = holdings(&[(1, vec![record(1, &[1]), record(2, &[2])])], &[1, 2]);
    h.marks.insert(pack(2), now() - TimeDelta::hours(100));
    let p = plan(&h, &settings());
    assert!(p.delete.is_empty());
    assert_eq!(p.unmark, set(&[2]));
}

#[test]
fn a_mostly_unused_pack_is_repacked_and_a_mostly_used_one_is_left() {
    let h = holdings(
        &[(1, vec![record(1, &[1, 2, 3]), record(2, &[4, 5, 6])])],
        &[1, 4, 5],
    );
    let p = plan(&h, &settings());
    assert_eq!(p.repack, set(&[1]));
    assert_eq!(p.copy_blobs, BTreeSet::from([blob(1)]));
    assert!(
        p.mark.is_empty(),
        "repacked packs are marked after their copies are stored"
    );
}

#[test]
fn a_pack_whose_used_blobs_all_have_better_copies_is_doomed() {
    // After `backup --full` pack 3 holds every used blob again; old packs 1 and 2 are
    // partly used by id but every used blob is kept in pack 3.
    let h = holdings(
        &[
            (1, vec![record(1, &[1, 2, 9])]),
            (2, vec![record(2, &[3, 8])]),
            (3, vec![record(3, &[1, 2, 3])]),
        ],
        &[1, 2, 3],
    );
    let p = plan(&h, &settings());
    assert_eq!(p.mark, set(&[1, 2]));
    assert!(p.repack.is_empty());
}

#[test]
fn two_doomed_copies_of_a_used_blob_keep_one() {
    let mut h = holdings(&[(1, vec![record(1, &[1]), record(2, &[1])])], &[1]);
    h.marks.insert(pack(1), now() - TimeDelta::hours(100));
    h.marks.insert(pack(2), now() - TimeDelta::hours(100));
    let p = plan(&h, &settings());
    assert_eq!(p.delete, set(&[2]));
    assert_eq!(p.unmark, set(&[1]));
}

#[test]
fn a_repacked_pack_is_deleted_once_its_blobs_have_their_new_copy_and_the_grace_is_over() {
    let mut h = holdings(
        &[(1, vec![record(1, &[1, 2, 3])]), (2, vec![record(2, &[1])])],
        &[1],
    );
    h.marks.insert(pack(1), now() - TimeDelta::hours(25));
    let p = plan(&h, &settings());
    assert_eq!(p.delete, set(&[1]));
    assert_eq!(p.rewrite, BTreeSet::from([index(1)]));
    assert!(
        p.kept_records.is_empty(),
        "index 1 listed only the deleted pack"
    );
}

#[test]
fn unindexed_packs_are_doomed_like_unused_ones_and_need_no_index_rewrite() {
    let mut h = holdings(&[(1, vec![record(1, &[1])])], &[1]);
    h.stored.insert(pack(7), 500);
    let p = plan(&h, &settings());
    assert_eq!(p.mark, set(&[7]));
    h.marks.insert(pack(7), now() - TimeDelta::hours(48));
    let p = plan(&h, &settings());
    assert_eq!(p.delete, set(&[7]));
    assert!(p.rewrite.is_empty());
}

#[test]
fn marks_of_packs_no_longer_stored_are_removed() {
    let mut h = holdings(&[(1, vec![record(1, &[1])])], &[1]);
    h.marks.insert(pack(9), now() - HOUR);
    assert_eq!(plan(&h, &settings()).unmark, set(&[9]));
}

#[test]
fn used_blobs_in_no_stored_pack_are_counted() {
    let mut h = holdings(&[(1, vec![record(1, &[1]), record(2, &[2])])], &[1, 2, 3]);
    h.stored.remove(&pack(2));
    assert_eq!(plan(&h, &settings()).missing_blobs, 2);
}

#[test]
fn a_rewritten_index_keeps_every_other_pack_it_listed_once() {
    let mut h = holdings(
        &[
            (1, vec![record(1, &[1]), record(2, &[2])]),
            (2, vec![record(1, &[1]), record(3, &[3])]),
            (3, vec![record(4, &[4])]),
        ],
        &[1, 3, 4],
    );
    h.marks.insert(pack(2), now() - TimeDelta::hours(100));
    let p = plan(&h, &settings());
    assert_eq!(p.delete, set(&[2]));
    assert_eq!(p.rewrite, BTreeSet::from([index(1)]));
    let kept: Vec<PackId> = p.kept_records.iter().map(|r| r.id).collect();
    assert_eq!(kept, vec![pack(1)]);
}

#[test]
fn of_two_full_copies_whole_packs_are_doomed_and_every_used_blob_stays() {
    // Two full backups of the same pages, cut into packs at different places. Pack ids are
    // chosen so that blob-by-blob tie-breaking would split the choice between both copies.
    let indexes = [
        (1, vec![record(1, &[1, 2]), record(9, &[3, 4])]),
        (
            2,
            vec![record(5, &[1]), record(2, &[2, 3]), record(7, &[4])],
        ),
    ];
    let h = holdings(&indexes, &[1, 2, 3, 4]);
    let p = plan(&h, &settings());
    assert!(p.mark.len() >= 2, "whole packs are doomed: {:?}", p.mark);
    assert!(p.repack.is_empty());
    let kept: HashSet<Hash> = indexes
        .iter()
        .flat_map(|(_, r)| r)
        .filter(|r| !p.mark.contains(&r.id))
        .flat_map(|r| r.table.frames[0].blobs.iter().map(|(b, _)| *b))
        .collect();
    for b in [1, 2, 3, 4] {
        assert!(kept.contains(&blob(b)), "blob {b} lost its last kept copy");
    }
}
