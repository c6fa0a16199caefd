//! What needs a second S3 implementation (moto, out of process): cleaning up multipart
//! uploads a killed run left behind, and servers that ignore `If-None-Match`. Object Lock is in
//! `s3_object_lock.rs`.

mod common;
use common::fault_proxy::{Fault, FaultProxy, Rule};
use common::moto::Moto;
use common::Env;
use invoice_vault::repo::{keys, Repository};
use invoice_vault::sample::JournalMode;
use invoice_vault::storage::{S3Storage, Storage, StorageError};
use std::sync::Arc;
use std::time::Duration;

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
