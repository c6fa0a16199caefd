//! Object Lock against moto: every object a backup writes (packs, index, manifest) carries the
//! retention asked for, from the command line or from a policy, read back from the server;
//! a locked version cannot be deleted and stays byte for byte; a bucket without Object Lock is
//! refused before anything is written.

mod common;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use common::moto::Moto;
use common::Env;
use invoice_vault::sample::JournalMode;
use std::time::{Duration, SystemTime};

const USAGE: i32 = 2;
const REPOSITORY: i32 = 4;
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// One object version as the server reports it.
struct Stored {
    key: String,
    version: Option<String>,
    mode: Option<String>,
    retain_until: Option<SystemTime>,
}

/// Every object in a bucket, with the Object Lock mode and retain-until date its head reports.
fn stored_objects(moto: &Moto, bucket: &str) -> Vec<Stored> {
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
            Stored {
                version: head.version_id().map(str::to_string),
                mode: head.object_lock_mode().map(|m| m.as_str().to_string()),
                retain_until: head
                    .object_lock_retain_until_date()
                    .map(|d| SystemTime::try_from(*d).unwrap()),
                key,
            }
        })
        .collect()
}

/// Runs `args`, which must write one snapshot to `bucket/prefix` under `mode` for `days`, and
/// asserts that every object it wrote (all but `config`) carries that retention, counted from
/// the moment of its write. Returns the objects.
fn run_and_assert_locked(
    env: &Env,
    moto: &Moto,
    args: &[&str],
    bucket: &str,
    prefix: &str,
    mode: &str,
    days: u32,
) -> Vec<Stored> {
    let before = SystemTime::now();
    env.run(args).ok();
    let after = SystemTime::now();
    let objects: Vec<Stored> = stored_objects(moto, bucket)
        .into_iter()
        .filter(|o| o.key != format!("{prefix}/config"))
        .collect();
    let count = |kind: &str| {
        objects
            .iter()
            .filter(|o| o.key.starts_with(&format!("{prefix}/{kind}/")))
            .count()
    };
    assert!(count("data") >= 2, "a data pack and a tree pack at least");
    assert_eq!(count("index"), 1);
    assert_eq!(count("snapshots"), 1);
    assert_eq!(count("data") + 2, objects.len(), "nothing else is written");
    // The header carries whole seconds.
    let earliest = before + DAY * days - Duration::from_secs(1);
    let latest = after + DAY * days + Duration::from_secs(1);
    for o in &objects {
        assert_eq!(o.mode.as_deref(), Some(mode), "{}", o.key);
        let until = o
            .retain_until
            .unwrap_or_else(|| panic!("{}: no retain-until date", o.key));
        assert!(
            earliest <= until && until <= latest,
            "{}: retained until {until:?}, not {days} days after its write",
            o.key
        );
    }
    objects
}

/// Deleting this version of `key` is refused: 403 AccessDenied, the answer S3 gives for a
/// version under retention.
fn assert_delete_refused(moto: &Moto, bucket: &str, o: &Stored, bypass_governance: bool) {
    let (client, rt) = moto.client();
    let refused = rt.block_on(
        client
            .delete_object()
            .bucket(bucket)
            .key(&o.key)
            .set_version_id(o.version.clone())
            // Sent only when asked: moto takes any value of the header, "false" too, as a bypass.
            .set_bypass_governance_retention(bypass_governance.then_some(true))
            .send(),
    );
    match refused {
        Err(SdkError::ServiceError(se)) => {
            assert_eq!(se.raw().status().as_u16(), 403, "{}", o.key);
            assert_eq!(se.err().code(), Some("AccessDenied"), "{}", o.key);
        }
        other => panic!("deleting locked {} was not refused: {other:?}", o.key),
    }
}

fn get_version(moto: &Moto, bucket: &str, o: &Stored) -> Vec<u8> {
    let (client, rt) = moto.client();
    rt.block_on(async {
        let out = client
            .get_object()
            .bucket(bucket)
            .key(&o.key)
            .set_version_id(o.version.clone())
            .send()
            .await
            .unwrap();
        out.body.collect().await.unwrap().into_bytes().to_vec()
    })
}

#[test]
fn object_lock_from_the_command_line_holds_every_object_until_its_retention_ends() {
    let moto = Moto::start();
    moto.bucket("locked", true);
    let env = Env::with_vars(moto.env());
    let (key, recipient) = env.new_key("id.txt");
    let repo = "s3://locked/r";
    env.run(&["init", repo, "--recipient", &recipient]).ok();
    let db = env.database("db.sqlite", 3, JournalMode::Wal);
    let args = [
        "backup",
        db.to_str().unwrap(),
        "--to",
        repo,
        "--object-lock-days",
        "7",
        "--object-lock-mode",
        "compliance",
    ];
    let objects = run_and_assert_locked(&env, &moto, &args, "locked", "r", "COMPLIANCE", 7);

    // The same credentials delete an unlocked version in the same bucket...
    let (client, rt) = moto.client();
    let free = rt
        .block_on(
            client
                .put_object()
                .bucket("locked")
                .key("unlocked")
                .body(b"free".to_vec().into())
                .send(),
        )
        .unwrap();
    rt.block_on(
        client
            .delete_object()
            .bucket("locked")
            .key("unlocked")
            .set_version_id(free.version_id().map(str::to_string))
            .send(),
    )
    .unwrap();
    // ...but not a locked one, not even asking to bypass governance (compliance allows none),
    // and every locked version is still there, byte for byte.
    let before: Vec<Vec<u8>> = objects
        .iter()
        .map(|o| get_version(&moto, "locked", o))
        .collect();
    for o in &objects {
        assert_delete_refused(&moto, "locked", o, false);
        assert_delete_refused(&moto, "locked", o, true);
    }
    let after: Vec<Vec<u8>> = objects
        .iter()
        .map(|o| get_version(&moto, "locked", o))
        .collect();
    assert!(before == after, "a locked version changed");

    let out = env.path("restored.sqlite");
    env.restore("latest", repo, &key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));
}

#[test]
fn object_lock_from_a_policy_holds_every_object_until_its_retention_ends() {
    let moto = Moto::start();
    moto.bucket("offsite", true);
    let mut env = Env::with_vars(moto.env());
    // The endpoint and the lock come from the policy alone.
    env.vars.retain(|(k, _)| *k != "IVAULT_S3_ENDPOINT");
    let (key, recipient) = env.new_key("id.txt");
    let db = env.database("db.sqlite", 3, JournalMode::Wal);
    let policy = env.path("beijing.toml");
    std::fs::write(
        &policy,
        format!(
            r#"
[[source]]
name = "beijing"
path = "{db}"

[[target]]
name = "offsite"
url = "s3://offsite/ivault"
endpoint = "{endpoint}"
object_lock_days = 3
object_lock_mode = "governance"

[encryption]
recipients = ["{recipient}"]
identity_file = "{key}"
"#,
            db = db.display(),
            endpoint = moto.endpoint,
        ),
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    env.run(&["init", "offsite", "--policy", p]).ok();
    let args = ["backup", "beijing", "--policy", p];
    let objects = run_and_assert_locked(&env, &moto, &args, "offsite", "ivault", "GOVERNANCE", 3);
    // Governance retention refuses a plain delete too.
    for o in &objects {
        assert_delete_refused(&moto, "offsite", o, false);
    }
    let out = env.path("restored.sqlite");
    let out = out.to_str().unwrap();
    env.run(&[
        "restore", "latest", "--repo", "offsite", "--to", out, "--policy", p,
    ])
    .ok();
    assert_eq!(common::sha256_file(out.as_ref()), common::sha256_file(&db));

    // What refused the deletes was the governance retention: bypassing it lets one through.
    let (client, rt) = moto.client();
    let manifest = objects
        .iter()
        .find(|o| o.key.contains("/snapshots/"))
        .unwrap();
    rt.block_on(
        client
            .delete_object()
            .bucket("offsite")
            .key(&manifest.key)
            .set_version_id(manifest.version.clone())
            .bypass_governance_retention(true)
            .send(),
    )
    .unwrap();
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
        stored_objects(&moto, "plain").is_empty(),
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
    let keys: Vec<String> = stored_objects(&moto, "plain")
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["r/config"], "only config");

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
fn prune_leaves_objects_under_object_lock_in_place_and_reports_them() {
    let moto = Moto::start();
    moto.bucket("pruned", true);
    let env = Env::with_vars(moto.env());
    let (key, recipient) = env.new_key("id.txt");
    let repo = "s3://pruned/r";
    env.run(&["init", repo, "--recipient", &recipient]).ok();
    let db = env.database("db.sqlite", 2, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    let locked = [
        "--object-lock-days",
        "7",
        "--object-lock-mode",
        "governance",
    ];
    let mut args = vec!["backup", dbs, "--to", repo];
    args.extend_from_slice(&locked);
    env.run(&args).ok();
    let sha = common::sha256_file(&db);
    // A locked backup killed after its index: locked packs and index that no snapshot uses.
    let mut full = args.clone();
    full.push("--full");
    env.run_env(&full, &[("IVAULT_FAILPOINT", "index-written")])
        .killed_at("index-written");
    let before = stored_objects(&moto, "pruned").len();

    let prune = |grace: &str| {
        env.run(&[
            "prune",
            "--repo",
            repo,
            "--identity",
            &key,
            "--grace",
            grace,
            "--json",
        ])
    };
    let marked = prune("0s").ok().json();
    assert!(marked["marked"].as_u64().unwrap() > 0, "{marked}");
    for _ in 0..2 {
        let run = prune("0s");
        assert_eq!(
            run.code, 0,
            "left in place is not a failure: {}",
            run.stderr
        );
        let r = run.json();
        assert_eq!(r["packs_deleted"], 0, "{r}");
        let left = r["left_in_place"].as_array().unwrap();
        assert!(
            left.iter()
                .any(|l| l["object"].as_str().unwrap().starts_with("index/")),
            "{r}"
        );
        assert!(
            left.iter()
                .any(|l| l["object"].as_str().unwrap().starts_with("data/")),
            "{r}"
        );
        assert!(run.stderr.contains("left in place"), "{}", run.stderr);
    }
    // Every locked object is still there and visible; the repository checks clean and restores.
    let objects = stored_objects(&moto, "pruned");
    assert!(objects.len() >= before, "no locked object vanished");
    let check = env.run(&["check", "--repo", repo, "--identity", &key, "--read-data"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let out = env.path("restored.sqlite");
    env.restore("latest", repo, &key, &out);
    assert_eq!(common::sha256_file(&out), sha);
}
