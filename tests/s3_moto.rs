//! What needs a second S3 implementation (moto, out of process): Object Lock, cleaning up
//! multipart uploads a killed run left behind, and servers that ignore `If-None-Match`.

mod common;
use common::fault_proxy::{Fault, FaultProxy, Rule};
use common::moto::Moto;
use common::Env;
use invoice_vault::repo::{keys, Repository};
use invoice_vault::sample::JournalMode;
use invoice_vault::storage::{S3Storage, Storage, StorageError};
use std::sync::Arc;
use std::time::Duration;

const USAGE: i32 = 2;
const REPOSITORY: i32 = 4;

/// Object keys in a bucket, with the Object Lock mode each carries.
fn locked_objects(moto: &Moto, bucket: &str) -> Vec<(String, Option<String>)> {
    let (client, rt) = moto.client();
    let list = rt
        .block_on(client.list_objects_v2().bucket(bucket).send())
        .unwrap();
    list.contents()
        .iter()
        .map(|o| {
            let key = o.key().unwrap().to_string();
            let head = rt
                .block_on(client.head_object().bucket(bucket).key(&key).send())
                .unwrap();
            let mode = head.object_lock_mode().map(|m| m.as_str().to_string());
            (key, mode)
        })
        .collect()
}

#[test]
fn object_lock_protects_every_object_a_backup_writes() {
    let moto = Moto::start();
    moto.bucket("locked", true);
    let env = Env::with_vars(moto.env());
    let (key, recipient) = env.new_key("id.txt");
    let repo = "s3://locked/r";
    env.run(&["init", repo, "--recipient", &recipient]).ok();
    let db = env.database("db.sqlite", 3, JournalMode::Wal);
    env.run(&[
        "backup",
        db.to_str().unwrap(),
        "--to",
        repo,
        "--object-lock-days",
        "7",
        "--object-lock-mode",
        "compliance",
    ])
    .ok();
    let objects = locked_objects(&moto, "locked");
    let written: Vec<_> = objects
        .iter()
        .filter(|(k, _)| !k.ends_with("/config"))
        .collect();
    assert!(written.iter().any(|(k, _)| k.contains("/data/")));
    assert!(written.iter().any(|(k, _)| k.contains("/snapshots/")));
    for (k, mode) in &written {
        assert_eq!(mode.as_deref(), Some("COMPLIANCE"), "{k} is not locked");
    }

    // A locked version cannot be deleted, even with the same credentials.
    let (client, rt) = moto.client();
    let (pack, _) = written.iter().find(|(k, _)| k.contains("/data/")).unwrap();
    let head = rt
        .block_on(client.head_object().bucket("locked").key(pack).send())
        .unwrap();
    let refused = rt.block_on(
        client
            .delete_object()
            .bucket("locked")
            .key(pack)
            .set_version_id(head.version_id().map(str::to_string))
            .send(),
    );
    assert!(refused.is_err(), "a locked pack was deleted");

    // And the locked repository restores.
    let out = env.path("restored.sqlite");
    env.restore("latest", repo, &key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));
}

#[test]
fn object_lock_on_a_bucket_without_it_is_refused_before_writing() {
    let moto = Moto::start();
    moto.bucket("plain", false);
    let env = Env::with_vars(moto.env());
    let (_, recipient) = env.new_key("id.txt");
    let r = env.run(&[
        "init",
        "s3://plain/r",
        "--recipient",
        &recipient,
        "--object-lock-days",
        "30",
    ]);
    assert_eq!(r.code, REPOSITORY, "{}", r.stderr);
    assert!(
        r.stderr.contains("bucket plain") && r.stderr.contains("does not have Object Lock enabled"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(
        locked_objects(&moto, "plain").is_empty(),
        "something was written"
    );

    // With a repository there, a locked backup is refused the same way, and writes nothing.
    env.run(&["init", "s3://plain/r", "--recipient", &recipient])
        .ok();
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    let r = env.run(&[
        "backup",
        db.to_str().unwrap(),
        "--to",
        "s3://plain/r",
        "--object-lock-days",
        "30",
    ]);
    assert_eq!(r.code, REPOSITORY, "{}", r.stderr);
    assert!(r.stderr.contains("does not have Object Lock enabled"));
    assert_eq!(locked_objects(&moto, "plain").len(), 1, "only config");

    // Object Lock on a local directory is a usage error, not silently nothing.
    let r = env.run(&[
        "backup",
        db.to_str().unwrap(),
        "--to",
        env.path("local").to_str().unwrap(),
        "--object-lock-days",
        "30",
    ]);
    assert_eq!(r.code, USAGE, "{}", r.stderr);
    assert!(
        r.stderr.contains("applies to s3:// targets"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_next_run_aborts_multipart_uploads_a_killed_run_left() {
    let moto = Moto::start();
    moto.bucket("parts", false);
    let (client, rt) = moto.client();
    // What a process killed in the middle of a large upload leaves: an upload with a part.
    let started = rt
        .block_on(
            client
                .create_multipart_upload()
                .bucket("parts")
                .key("r/data/ab/abandoned")
                .send(),
        )
        .unwrap();
    let upload_id = started.upload_id().unwrap().to_string();
    rt.block_on(
        client
            .upload_part()
            .bucket("parts")
            .key("r/data/ab/abandoned")
            .upload_id(&upload_id)
            .part_number(1)
            .body(vec![7u8; 5 << 20].into())
            .send(),
    )
    .unwrap();
    // Another repository's upload in the same bucket is not this repository's business.
    rt.block_on(
        client
            .create_multipart_upload()
            .bucket("parts")
            .key("other/data/cd/elsewhere")
            .send(),
    )
    .unwrap();
    let uploads = |prefix: &str| {
        rt.block_on(
            client
                .list_multipart_uploads()
                .bucket("parts")
                .prefix(prefix)
                .send(),
        )
        .unwrap()
        .uploads()
        .len()
    };
    assert_eq!(uploads("r/"), 1);

    let s3 = moto.storage("parts", "r");
    assert_eq!(s3.sweep_incomplete(Duration::ZERO).unwrap(), 1);
    assert_eq!(uploads("r/"), 0);
    assert_eq!(uploads("other/"), 1);

    // A backup sweeps before it writes (moto dates every upload in 2010, so it looks old).
    rt.block_on(
        client
            .create_multipart_upload()
            .bucket("parts")
            .key("r/data/ef/abandoned")
            .send(),
    )
    .unwrap();
    let env = Env::with_vars(moto.env());
    let (_, recipient) = env.new_key("id.txt");
    env.run(&["init", "s3://parts/r", "--recipient", &recipient])
        .ok();
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    env.run(&["backup", db.to_str().unwrap(), "--to", "s3://parts/r"])
        .ok();
    assert_eq!(uploads("r/"), 0);
    assert_eq!(uploads("other/"), 1);
}

#[test]
fn a_server_that_ignores_if_none_match_is_detected() {
    let moto = Moto::start();
    moto.bucket("careless", false);
    let recipient = {
        let env = Env::new();
        keys::generate(&env.path("id.txt"), None).unwrap()
    };
    Repository::init(Arc::new(moto.storage("careless", "r")), vec![recipient]).unwrap();

    // The proxy drops the condition from every request, as a careless server would ignore it.
    let proxy = FaultProxy::start(&moto.endpoint);
    proxy.add(Rule {
        method: None,
        contains: "",
        fault: Fault::DropHeader("if-none-match"),
        times: usize::MAX,
    });
    let careless =
        Arc::new(S3Storage::new(moto.config_via(&proxy.endpoint, "careless", "r")).unwrap());
    // Opening the repository names `config` as the object the storage may probe with.
    Repository::open(careless.clone()).unwrap();
    careless.put("index/once", b"first").unwrap();
    assert_eq!(
        careless.put("index/once", b"second"),
        Err(StorageError::AlreadyExists("index/once".into()))
    );
    assert_eq!(careless.get("index/once").unwrap(), b"first");
    // The probe rewrote the config byte for byte; the repository still opens.
    Repository::open(Arc::new(moto.storage("careless", "r"))).unwrap();
}
