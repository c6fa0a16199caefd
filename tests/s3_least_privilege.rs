//! A backup host holding only the repository's recipients stays within the least-privilege
//! bucket policy of docs/OPERATIONS.md: the loopback proxy records every request a backup
//! makes, each is mapped to the S3 action and resource AWS would authorize it as, and the
//! policy, read from the document itself, must allow it. Besides: no object is read but
//! `config`, and nothing is deleted but the unfinished uploads killed runs left.

mod common;
use common::fault_proxy::{Fault, FaultProxy, Logged, Rule};
use common::moto::Moto;
use common::s3::S3Server;
use common::Env;
use invoice_vault::sample::{self, JournalMode};

/// The bucket and prefix the document's policy names.
const BUCKET: &str = "finance-backups";
const REPO: &str = "s3://finance-backups/ivault";
const STALE: &str = "ivault/data/ab/abandoned";

/// One `Allow` statement: actions, resource patterns, and the `s3:prefix` patterns of a
/// `StringLike` condition if it has one.
#[derive(Debug)]
struct Statement {
    actions: Vec<String>,
    resources: Vec<String>,
    prefixes: Option<Vec<String>>,
}

/// The backup host's policy: the first JSON block of docs/OPERATIONS.md.
fn documented_policy() -> Vec<Statement> {
    let doc = include_str!("../docs/OPERATIONS.md");
    let start = doc
        .find("```json\n")
        .expect("a JSON policy in docs/OPERATIONS.md")
        + 8;
    let len = doc[start..].find("```").unwrap();
    let policy: serde_json::Value = serde_json::from_str(&doc[start..start + len]).unwrap();
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().into()).collect(),
            other => panic!("not a string or a list: {other}"),
        }
    };
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["Effect"], "Allow");
            let condition = &s["Condition"];
            if !condition.is_null() {
                let keys: Vec<_> = condition.as_object().unwrap().keys().collect();
                assert_eq!(
                    keys,
                    ["StringLike"],
                    "only s3:prefix conditions are understood"
                );
            }
            Statement {
                actions: strings(&s["Action"]),
                resources: strings(&s["Resource"]),
                prefixes: (!condition.is_null())
                    .then(|| strings(&condition["StringLike"]["s3:prefix"])),
            }
        })
        .collect()
}

/// IAM's `*` wildcard: any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| glob(rest, &text[head.len() + i..]))
        }
    }
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' && tail.len() >= 2 {
            let hex = std::str::from_utf8(&tail[..2]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            rest = &tail[2..];
        } else {
            out.push(b);
            rest = tail;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The bucket and the object key (empty for a request on the bucket) of a path-style request.
fn bucket_and_key(r: &Logged) -> (String, String) {
    let path = percent_decode(r.path().trim_start_matches('/'));
    let (bucket, key) = path.split_once('/').unwrap_or((&path, ""));
    (bucket.to_string(), key.to_string())
}

/// What AWS authorizes a request as: actions, the resource's ARN, and the listing prefix.
fn authorized_as(r: &Logged) -> (Vec<&'static str>, String, Option<String>) {
    let (bucket, key) = bucket_and_key(r);
    let params: Vec<(String, String)> = r
        .query()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect();
    let has = |name: &str| params.iter().any(|(k, _)| k == name);
    let prefix = params
        .iter()
        .find(|(k, _)| k == "prefix")
        .map(|(_, v)| v.clone());
    let locked = r.headers.iter().any(|h| h == "x-amz-object-lock-mode");
    let write = |with_lock: bool| {
        if with_lock {
            vec!["s3:PutObject", "s3:PutObjectRetention"]
        } else {
            vec!["s3:PutObject"]
        }
    };
    let arn = match key.is_empty() {
        true => format!("arn:aws:s3:::{bucket}"),
        false => format!("arn:aws:s3:::{bucket}/{key}"),
    };
    let actions = match (r.method.as_str(), !key.is_empty()) {
        ("GET", false) if has("list-type") => vec!["s3:ListBucket"],
        ("GET", false) if has("uploads") => vec!["s3:ListBucketMultipartUploads"],
        ("GET", false) if has("object-lock") => vec!["s3:GetBucketObjectLockConfiguration"],
        ("GET", true) if has("uploadId") => vec!["s3:ListMultipartUploadParts"],
        ("GET" | "HEAD", true) => vec!["s3:GetObject"],
        ("PUT", true) if has("uploadId") => write(false),
        ("PUT", true) => write(locked),
        ("POST", true) if has("uploads") => write(locked),
        ("POST", true) if has("uploadId") => write(false),
        ("DELETE", true) if has("uploadId") => vec!["s3:AbortMultipartUpload"],
        ("DELETE", true) => vec!["s3:DeleteObject"],
        _ => panic!("a request this test cannot map to an action: {r:?}"),
    };
    (actions, arn, prefix)
}

/// Every request is allowed by some statement of the policy; returns the actions used.
fn assert_within_policy(requests: &[Logged]) -> std::collections::BTreeSet<&'static str> {
    let policy = documented_policy();
    let mut used = std::collections::BTreeSet::new();
    for r in requests {
        let (actions, arn, prefix) = authorized_as(r);
        for action in actions {
            let allowed = policy.iter().any(|s| {
                s.actions.iter().any(|a| a == action)
                    && s.resources.iter().any(|p| glob(p, &arn))
                    && s.prefixes.as_ref().is_none_or(|patterns| {
                        prefix
                            .as_ref()
                            .is_some_and(|p| patterns.iter().any(|pat| glob(pat, p)))
                    })
            });
            assert!(
                allowed,
                "{action} on {arn} (prefix {prefix:?}) is not allowed by the policy in docs/OPERATIONS.md: {r:?}"
            );
            used.insert(action);
        }
    }
    used
}

/// No object is read but `config` (GET or HEAD), and nothing is deleted but unfinished uploads.
fn assert_reads_and_deletes(requests: &[Logged]) {
    for r in requests {
        let (bucket, key) = bucket_and_key(r);
        assert_eq!(bucket, BUCKET, "{r:?}");
        let aborts_upload = r.method == "DELETE" && r.query().contains("uploadId=");
        match r.method.as_str() {
            "GET" | "HEAD" if !key.is_empty() => {
                assert_eq!(key, "ivault/config", "an object was read: {r:?}")
            }
            "DELETE" => assert!(aborts_upload, "an object was deleted: {r:?}"),
            _ => {}
        }
    }
}

/// An admin environment that made a key and the repository (directly, not through the
/// proxy) and trusts the backup host's signer, and a backup host that reaches the server
/// through `proxy` and holds only its signing key, no identity.
fn admin_and_backup_host(
    vars: Vec<(&'static str, String)>,
    proxy: &FaultProxy,
) -> (Env, Env, String) {
    let mut admin = Env::with_vars(vars.clone());
    let (key, recipient) = admin.new_key("id.txt");
    admin.run(&["init", REPO, "--recipient", &recipient]).ok();
    let mut host = Env::with_vars(vars);
    let signing_key = host.path("signing.key");
    let signer = host
        .run(&[
            "key",
            "generate",
            "--signing",
            "--out",
            signing_key.to_str().unwrap(),
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    host.vars.push((
        "IVAULT_SIGNING_KEY",
        signing_key.to_str().unwrap().to_string(),
    ));
    admin.vars.push(("IVAULT_TRUST_SIGNERS", signer));
    host.vars.retain(|(k, _)| *k != "IVAULT_S3_ENDPOINT");
    host.vars
        .push(("IVAULT_S3_ENDPOINT", proxy.endpoint.clone()));
    (admin, host, key)
}

#[test]
fn a_backup_host_stays_within_the_documented_policy() {
    let moto = Moto::start();
    moto.bucket(BUCKET, true);
    let proxy = FaultProxy::start(&moto.endpoint);
    let (admin, host, key) = admin_and_backup_host(moto.env(), &proxy);
    // What a killed run left: an unfinished upload the backup is to abort.
    let (client, rt) = moto.client();
    rt.block_on(
        client
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(STALE)
            .send(),
    )
    .unwrap();

    let db = host.database("db.sqlite", 3, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    let locked = ["--object-lock-days", "1"];
    host.backup_report(dbs, REPO, &locked);
    sample::day_of_business(&db, 1).unwrap();
    let r = host.backup_report(dbs, REPO, &locked);
    assert_eq!(r["kind"], "incremental");

    let requests = proxy.requests();
    assert_reads_and_deletes(&requests);
    let aborted: Vec<&Logged> = requests.iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    assert_eq!(aborted[0].path(), format!("/{BUCKET}/{STALE}"));
    let used = assert_within_policy(&requests);
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        [
            "s3:AbortMultipartUpload",
            "s3:GetBucketObjectLockConfiguration",
            "s3:GetObject",
            "s3:ListBucket",
            "s3:ListBucketMultipartUploads",
            "s3:PutObject",
            "s3:PutObjectRetention",
        ]
    );

    let out = admin.path("restored.sqlite");
    admin.restore("latest", REPO, &key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));
}

#[test]
fn on_a_server_that_ignores_if_none_match_too() {
    let moto = Moto::start();
    moto.bucket(BUCKET, false);
    let proxy = FaultProxy::start(&moto.endpoint);
    proxy.add(Rule {
        method: None,
        contains: "",
        fault: Fault::DropHeader("if-none-match"),
        times: usize::MAX,
    });
    let (admin, host, key) = admin_and_backup_host(moto.env(), &proxy);
    let db = host.database("db.sqlite", 3, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    // ivault checks for each object before writing it here.
    host.backup_report(dbs, REPO, &[]);
    sample::day_of_business(&db, 1).unwrap();
    host.backup_report(dbs, REPO, &[]);

    let requests = proxy.requests();
    // Each object was looked for before it was written: a listing of its key, not a HEAD.
    let looked_for: Vec<String> = requests
        .iter()
        .filter(|r| r.method == "GET" && r.query().contains("max-keys=1"))
        .map(|r| {
            let prefix = r.query().split('&').find_map(|p| p.strip_prefix("prefix="));
            percent_decode(prefix.unwrap())
        })
        .collect();
    let written: Vec<String> = requests
        .iter()
        .filter(|r| r.method == "PUT" && !r.path().ends_with("/config"))
        .map(|r| bucket_and_key(r).1)
        .collect();
    assert!(written.len() >= 8, "two backups: {written:?}");
    let (mut looked_for, mut written) = (looked_for, written);
    looked_for.sort();
    written.sort();
    assert_eq!(looked_for, written);
    assert_reads_and_deletes(&requests);
    assert_within_policy(&requests);
    let out = admin.path("restored.sqlite");
    admin.restore("latest", REPO, &key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));
}

#[test]
fn uploads_in_parts_stay_within_the_documented_policy() {
    // s3s-fs completes multipart uploads (the SDK cannot read moto's answer to a completion).
    let server = S3Server::start();
    server.bucket(BUCKET);
    let proxy = FaultProxy::start(&server.endpoint);
    let (admin, mut host, key) = admin_and_backup_host(server.env(), &proxy);
    host.vars
        .push((invoice_vault::storage::PART_BYTES_ENV, "5242880".into()));
    let db = host.database("db.sqlite", 16, JournalMode::Wal);
    host.backup_report(db.to_str().unwrap(), REPO, &[]);

    let requests = proxy.requests();
    let completed = requests
        .iter()
        .filter(|r| r.method == "POST" && r.query().contains("uploadId="))
        .count();
    assert_eq!(completed, 1, "one pack went up in parts: {requests:?}");
    assert_reads_and_deletes(&requests);
    assert_within_policy(&requests);
    let out = admin.path("restored.sqlite");
    admin.restore("latest", REPO, &key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));
}
