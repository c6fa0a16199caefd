//! The network between ivault and S3 fails the way networks do: a loopback proxy in front of
//! a real S3 server answers 500 and 503 SlowDown and resets connections mid-body, and the real
//! binary, through the real SDK, must retry what is transient, stop cleanly on what is not,
//! and leave a repository that checks clean and that the next run completes.

mod common;
use common::fault_proxy::{Fault, FaultProxy, Rule};
use common::s3::S3Server;
use common::Env;
use invoice_vault::sample::JournalMode;
use invoice_vault::storage::{S3Storage, Storage, StorageError};

const REPOSITORY: i32 = 4;
/// Attempts per request the binary makes (the SDK's standard retry, src/storage/s3/config.rs).
const SDK_ATTEMPTS: usize = 5;
/// Downloads broken off mid-body are tried this often in all (`BODY_ATTEMPTS` in
/// src/storage/s3/mod.rs).
const BODY_ATTEMPTS: usize = 4;

/// An S3 server, a proxy in front of it, and an environment whose ivault talks to the proxy.
fn setup(bucket: &str) -> (S3Server, FaultProxy, Env) {
    let server = S3Server::start();
    server.bucket(bucket);
    let proxy = FaultProxy::start(&server.endpoint);
    let mut env = Env::with_vars(server.env());
    env.vars.retain(|(k, _)| *k != "IVAULT_S3_ENDPOINT");
    env.vars
        .push(("IVAULT_S3_ENDPOINT", proxy.endpoint.clone()));
    (server, proxy, env)
}

fn key_and_init(env: &Env, repo: &str) -> String {
    let (key, recipient) = env.new_key("id.txt");
    env.run(&["init", repo, "--recipient", &recipient]).ok();
    key
}

#[test]
fn transient_server_errors_are_retried() {
    let (_server, proxy, env) = setup("flaky");
    let repo = "s3://flaky/r";
    let key = key_and_init(&env, repo);
    let db = env.database("db.sqlite", 12, JournalMode::Wal);
    proxy.add(Rule {
        method: Some("PUT"),
        contains: "/data/",
        fault: Fault::Answer(503, "SlowDown"),
        times: 3,
    });
    proxy.add(Rule {
        method: Some("PUT"),
        contains: "/snapshots/",
        fault: Fault::Answer(500, "InternalError"),
        times: 1,
    });
    proxy.add(Rule {
        method: Some("GET"),
        contains: "list-type=2",
        fault: Fault::Answer(503, "ServiceUnavailable"),
        times: 1,
    });
    env.run(&["backup", db.to_str().unwrap(), "--to", repo])
        .ok();
    assert!(proxy.unexercised().is_empty(), "{:?}", proxy.unexercised());
    assert_eq!(proxy.fired(), vec![3, 1, 1]);
    assert_eq!(env.check(repo, &key, true).code, 0);
    let out = env.path("restored.sqlite");
    env.restore("latest", repo, &key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));
}

#[test]
fn downloads_that_break_off_mid_body_are_tried_again() {
    let (_server, proxy, env) = setup("resets");
    let repo = "s3://resets/r";
    let key = key_and_init(&env, repo);
    let db = env.database("db.sqlite", 12, JournalMode::Wal);
    env.run(&["backup", db.to_str().unwrap(), "--to", repo])
        .ok();
    proxy.add(Rule {
        method: Some("GET"),
        contains: "/data/",
        fault: Fault::ResetMidBody,
        times: 3,
    });
    proxy.add(Rule {
        method: Some("GET"),
        contains: "/snapshots/",
        fault: Fault::ResetMidBody,
        times: 1,
    });
    let out = env.path("restored.sqlite");
    env.restore("latest", repo, &key, &out);
    assert!(proxy.unexercised().is_empty(), "{:?}", proxy.unexercised());
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));
}

#[test]
fn a_server_that_keeps_failing_stops_the_backup_cleanly_and_the_next_run_completes() {
    let (server, proxy, env) = setup("broken");
    let repo = "s3://broken/r";
    let key = key_and_init(&env, repo);
    let db = env.database("db.sqlite", 24, JournalMode::Wal);
    // The server fails every pack write, however often it is tried.
    proxy.add(Rule {
        method: Some("PUT"),
        contains: "/data/",
        fault: Fault::Answer(500, "InternalError"),
        times: usize::MAX,
    });
    let r = env.run(&["backup", db.to_str().unwrap(), "--to", repo]);
    assert_eq!(r.code, REPOSITORY, "{}", r.stderr);
    assert!(
        r.stderr.contains("s3://broken/r") && r.stderr.contains("500"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    // The SDK's standard retry (src/storage/s3/config.rs: 5 attempts unless configured):
    // every pack write was tried exactly 5 times before the backup gave up, no more, no less.
    let mut tries = std::collections::BTreeMap::new();
    for r in proxy.requests() {
        if r.method == "PUT" && r.path().contains("/data/") {
            assert_eq!(r.status, 500, "{r:?}");
            *tries.entry(r.path().to_string()).or_insert(0) += 1;
        }
    }
    assert!(!tries.is_empty());
    assert!(tries.values().all(|&n| n == SDK_ATTEMPTS), "{tries:?}");
    assert_eq!(proxy.fired(), vec![SDK_ATTEMPTS * tries.len()]);
    let snapshots = common::walk(&server.root.join("broken/r/snapshots"));
    assert!(
        snapshots.is_empty(),
        "a snapshot was written: {snapshots:?}"
    );

    proxy.clear();
    assert_eq!(env.check(repo, &key, true).code, 0);
    env.run(&["backup", db.to_str().unwrap(), "--to", repo])
        .ok();
    let out = env.path("restored.sqlite");
    env.restore("latest", repo, &key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));
}

#[test]
fn a_multipart_upload_that_fails_midway_is_aborted() {
    let (server, proxy, _env) = setup("multi");
    proxy.add(Rule {
        method: Some("PUT"),
        contains: "partNumber=2",
        fault: Fault::Answer(500, "InternalError"),
        times: usize::MAX,
    });
    let s3 = S3Storage::new(invoice_vault::storage::S3Config {
        endpoint: Some(proxy.endpoint.clone()),
        ..server.config("multi", "r")
    })
    .unwrap();
    let big = vec![5u8; invoice_vault::storage::MULTIPART_THRESHOLD + 3_000_000];
    let e = s3.put("data/aa/big", &big).unwrap_err();
    assert!(
        matches!(&e, StorageError::Other { key, message, transient: true }
            if key == "data/aa/big" && message == "the S3 server answered 500 InternalError"),
        "{e:?}"
    );
    // The test servers' configuration allows 2 attempts: part 2 was sent exactly twice, nothing
    // was completed, and the upload was aborted once.
    let requests = proxy.requests();
    let count = |method: &str, query: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.query().contains(query))
            .count()
    };
    assert_eq!(proxy.fired(), vec![2]);
    assert_eq!(count("PUT", "partNumber=2"), 2, "{requests:?}");
    // Part 1 goes up beside part 2; once part 2 has failed for good, the upload stops, and
    // part 1's request may be cancelled before it is sent: at most once, never retried.
    assert!(count("PUT", "partNumber=1") <= 1, "{requests:?}");
    assert_eq!(count("POST", "uploadId="), 0, "{requests:?}");
    assert_eq!(count("DELETE", "uploadId="), 1, "{requests:?}");
    // Nothing is visible and no parts are left in the server's store.
    assert!(s3.list("").unwrap().is_empty());
    let leftovers: Vec<_> = common::walk(&server.root)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("upload"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Once the server recovers, the same object goes up whole.
    proxy.clear();
    s3.put("data/aa/big", &big).unwrap();
    assert_eq!(s3.get("data/aa/big").unwrap(), big);
}

#[test]
fn a_download_is_tried_again_exactly_as_often_as_promised_when_its_body_breaks_off() {
    let (server, proxy, _env) = setup("bodies");
    let s3 = S3Storage::new(invoice_vault::storage::S3Config {
        endpoint: Some(proxy.endpoint.clone()),
        ..server.config("bodies", "r")
    })
    .unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    s3.put("data/aa/object", &data).unwrap();
    let gets = |proxy: &FaultProxy| {
        proxy
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path().ends_with("/data/aa/object"))
            .count()
    };

    // Broken off on every attempt but the last: the last one delivers the whole object.
    proxy.add(Rule {
        method: Some("GET"),
        contains: "/data/aa/object",
        fault: Fault::ResetMidBody,
        times: BODY_ATTEMPTS - 1,
    });
    assert_eq!(s3.get("data/aa/object").unwrap(), data);
    assert_eq!(proxy.fired(), vec![BODY_ATTEMPTS - 1]);
    assert_eq!(gets(&proxy), BODY_ATTEMPTS);

    // Broken off every time: after exactly BODY_ATTEMPTS downloads, a transient error.
    proxy.clear();
    proxy.clear_log();
    proxy.add(Rule {
        method: Some("GET"),
        contains: "/data/aa/object",
        fault: Fault::ResetMidBody,
        times: usize::MAX,
    });
    let e = s3.get("data/aa/object").unwrap_err();
    assert!(
        matches!(&e, StorageError::Other { key, message, transient: true }
            if key == "data/aa/object"
                && message.starts_with(&format!("the download from {} broke off", proxy.endpoint))),
        "{e:?}"
    );
    assert_eq!(proxy.fired(), vec![BODY_ATTEMPTS]);
    assert_eq!(gets(&proxy), BODY_ATTEMPTS);
}
