//! The network between ivault and S3 fails the way networks do: a loopback proxy in front of
//! a real S3 server answers 500 and 503 SlowDown and resets connections mid-body, and the real
//! binary, through the real SDK, must retry what is transient, stop cleanly on what is not,
//! and leave a repository that checks clean and that the next run completes.

mod common;
use common::fault_proxy::{Fault, FaultProxy, Rule};
use common::s3::S3Server;
use common::Env;
use invoice_vault::sample::JournalMode;
use invoice_vault::storage::{S3Storage, Storage};

const REPOSITORY: i32 = 4;

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
    // Standard retry: every write was tried 5 times before giving up.
    assert!(proxy.fired()[0] >= 5, "{:?}", proxy.fired());
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
    assert!(s3.put("data/aa/big", &big).is_err());
    assert!(proxy.fired()[0] >= 2, "{:?}", proxy.fired());
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
