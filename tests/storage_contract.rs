//! One contract every storage backend must meet; each backend runs the same suite.

mod common;
use common::s3::S3Server;
use common::walk;

use invoice_vault::storage::{
    Fault, FaultKind, FaultyStorage, LocalStorage, MemoryStorage, Op, Storage, StorageError,
};
use std::collections::BTreeSet;
use std::sync::Arc;

fn contract(s: &dyn Storage) {
    // Not found before a put.
    assert!(matches!(
        s.get("data/aa/one"),
        Err(StorageError::NotFound(_))
    ));
    assert!(s.list("data/").unwrap().is_empty());

    // Round trips: empty, small and large objects.
    s.put("data/aa/empty", b"").unwrap();
    assert_eq!(s.get("data/aa/empty").unwrap(), b"");
    s.put("data/aa/one", b"hello").unwrap();
    assert_eq!(s.get("data/aa/one").unwrap(), b"hello");
    let big: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    s.put("data/bb/big", &big).unwrap();
    assert_eq!(s.get("data/bb/big").unwrap(), big);

    // Parts of an object: inside, across the end (short), at and past the end (empty).
    assert_eq!(s.get_range("data/aa/one", 1, 3).unwrap(), b"ell");
    assert_eq!(s.get_range("data/aa/one", 3, 10).unwrap(), b"lo");
    assert_eq!(s.get_range("data/aa/one", 5, 4).unwrap(), b"");
    assert_eq!(s.get_range("data/aa/one", 9, 4).unwrap(), b"");
    assert_eq!(s.get_range("data/aa/one", 0, 0).unwrap(), b"");
    let at = 8 * 1024 * 1024 + 17;
    assert_eq!(
        s.get_range("data/bb/big", at as u64, 100_000).unwrap(),
        &big[at..at + 100_000]
    );
    assert!(matches!(
        s.get_range("data/aa/none", 0, 4),
        Err(StorageError::NotFound(_))
    ));
    // Into a buffer that held something: only the part read is left in it.
    let mut buf = b"left over".to_vec();
    s.get_range_into("data/aa/one", 1, 3, &mut buf).unwrap();
    assert_eq!(buf, b"ell");
    s.get_range_into("data/bb/big", at as u64, 100_000, &mut buf)
        .unwrap();
    assert_eq!(buf, &big[at..at + 100_000]);
    s.get_range_into("data/aa/one", 9, 4, &mut buf).unwrap();
    assert_eq!(buf, b"");
    assert!(matches!(
        s.get_range_into("data/aa/none", 0, 4, &mut buf),
        Err(StorageError::NotFound(_))
    ));

    // Never overwritten.
    assert!(matches!(
        s.put("data/aa/one", b"other"),
        Err(StorageError::AlreadyExists(_))
    ));
    assert_eq!(s.get("data/aa/one").unwrap(), b"hello");

    // Invalid keys are refused, not written somewhere unexpected.
    for bad in [
        "",
        "/abs",
        "data/../x",
        "data//x",
        "Data/X",
        "data/.hidden",
        "data/x/",
    ] {
        assert!(
            matches!(s.put(bad, b"x"), Err(StorageError::InvalidKey(_))),
            "{bad:?} accepted"
        );
    }

    // Listings at awkward sizes, with sizes, and only under the prefix.
    for n in [11usize, 23, 40] {
        let prefix = format!("index{n}/");
        for i in 0..n {
            s.put(&format!("{prefix}{i:04}"), &vec![1u8; i]).unwrap();
        }
        let listed = s.list(&prefix).unwrap();
        assert_eq!(listed.len(), n);
        let keys: BTreeSet<_> = listed.iter().map(|o| o.key.clone()).collect();
        assert_eq!(keys.len(), n);
        for o in &listed {
            let i: usize = o.key[prefix.len()..].parse().unwrap();
            assert_eq!(o.size, i as u64);
        }
    }
    let data: BTreeSet<_> = s
        .list("data/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        data,
        ["data/aa/empty", "data/aa/one", "data/bb/big"]
            .map(String::from)
            .into()
    );

    // Deleting twice is not an error.
    s.delete("data/aa/one").unwrap();
    s.delete("data/aa/one").unwrap();
    assert!(matches!(
        s.get("data/aa/one"),
        Err(StorageError::NotFound(_))
    ));

    // Concurrent puts and reads of distinct keys.
    std::thread::scope(|sc| {
        for t in 0..4 {
            sc.spawn(move || {
                for i in 0..25 {
                    let k = format!("snapshots/{t}-{i}");
                    s.put(&k, k.as_bytes()).unwrap();
                    assert_eq!(s.get(&k).unwrap(), k.as_bytes());
                }
            });
        }
    });
    assert_eq!(s.list("snapshots/").unwrap().len(), 100);

    // Sweeping the leftovers of interrupted writes never touches an object.
    let before = s.list("").unwrap().len();
    s.sweep_incomplete(std::time::Duration::ZERO).unwrap();
    assert_eq!(s.list("").unwrap().len(), before);
}

#[test]
fn memory_storage_meets_the_contract() {
    contract(&MemoryStorage::new());
}

#[test]
fn local_storage_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStorage::new(dir.path());
    contract(&s);
    // Nothing temporary is left behind.
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn faulty_storage_without_faults_meets_the_contract() {
    let s = FaultyStorage::new(Arc::new(MemoryStorage::new()), vec![]);
    contract(&s);
}

#[test]
fn local_storage_sweeps_temporary_files_of_killed_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStorage::new(dir.path());
    s.put("data/aa/kept", b"object").unwrap();
    // What a write killed between create and link leaves behind.
    let leftover = dir.path().join("data/aa/.tmp-0123456789abcdef");
    std::fs::write(&leftover, b"half").unwrap();
    assert_eq!(
        s.sweep_incomplete(std::time::Duration::from_secs(3600))
            .unwrap(),
        0
    );
    assert!(
        leftover.exists(),
        "a young temporary file may be a write in progress"
    );
    assert_eq!(s.sweep_incomplete(std::time::Duration::ZERO).unwrap(), 1);
    assert!(!leftover.exists());
    assert_eq!(s.get("data/aa/kept").unwrap(), b"object");
}

#[test]
fn local_storage_refuses_a_missing_root() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStorage::new(dir.path().join("nope"));
    assert!(matches!(
        s.put("config", b"x"),
        Err(StorageError::NotFound(_))
    ));
    assert!(!dir.path().join("nope").exists());
}

#[test]
fn faults_fire_on_the_nth_call_and_report_unexercised_ones() {
    let s = FaultyStorage::new(
        Arc::new(MemoryStorage::new()),
        vec![
            Fault {
                op: Op::Put,
                nth: 2,
                kind: FaultKind::Fail(StorageError::NoSpace("x".into())),
            },
            Fault {
                op: Op::Get,
                nth: 9,
                kind: FaultKind::Fail(StorageError::NotFound("x".into())),
            },
        ],
    );
    s.put("a", b"1").unwrap();
    assert!(matches!(s.put("b", b"2"), Err(StorageError::NoSpace(_))));
    s.put("b", b"2").unwrap();
    assert_eq!(s.unexercised().len(), 1);
    assert_eq!(s.unexercised()[0].op, Op::Get);
}

#[test]
fn s3_storage_meets_the_contract() {
    let server = S3Server::start();
    let bucket = server.bucket("contract");
    contract(&server.storage(&bucket, "team/repo"));
    // Everything stayed under the prefix.
    let other = server.storage(&bucket, "");
    assert!(other
        .list("")
        .unwrap()
        .iter()
        .all(|o| o.key.starts_with("team/repo/")));
}

#[test]
fn s3_listings_follow_continuation_tokens() {
    let server = S3Server::start();
    let s = server.storage(&server.bucket("pages"), "p");
    for i in 0..1003 {
        s.put(&format!("index/{i:05}"), b"x").unwrap();
    }
    let keys: BTreeSet<_> = s
        .list("index/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys.len(), 1003);
}

#[test]
fn s3_large_objects_go_up_in_parts_and_stay_immutable() {
    let server = S3Server::start();
    let bucket = server.bucket("multi");
    let s = server.storage(&bucket, "r");
    let big: Vec<u8> = (0..(invoice_vault::storage::MULTIPART_THRESHOLD as u32 + 5_000_000))
        .map(|i| (i % 253) as u8)
        .collect();
    s.put("data/aa/big", &big).unwrap();
    assert_eq!(s.get("data/aa/big").unwrap(), big);
    assert!(matches!(
        s.put("data/aa/big", &big),
        Err(StorageError::AlreadyExists(_))
    ));
    // The refused upload was aborted: no parts are left behind in the server's store.
    let leftovers: Vec<_> = walk(&server.root)
        .into_iter()
        .filter(|p| !p.starts_with(server.root.join(&bucket).join("r")))
        .collect();
    assert!(
        leftovers
            .iter()
            .all(|p| !p.to_string_lossy().contains("upload")),
        "{leftovers:?}"
    );
}

#[test]
fn s3_storage_meets_the_contract_on_moto() {
    let moto = common::moto::Moto::start();
    moto.bucket("contract", false);
    contract(&moto.storage("contract", "team/repo"));
}
