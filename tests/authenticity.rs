//! Snapshots are authenticated: a snapshot planted by someone who can write to the repository
//! (the recipients are public) is never taken for the owner's, and objects that do not open
//! (foreign, damaged, encrypted to another key) never keep intact snapshots from restoring.

mod common;
use common::Env;
use invoice_vault::repo::codec::Sealer;
use invoice_vault::repo::keys;
use invoice_vault::sample::JournalMode;
use std::path::Path;

const KEY: i32 = 6;
const INTEGRITY: i32 = 5;

/// The owner's repository with one snapshot of `owner.sqlite`, and a snapshot of
/// `intruder.sqlite` added later by a host with its own state (so its own signing key), as an
/// attacker with write access to the target would.
struct Planted {
    env: Env,
    key: String,
    repo: String,
    owner_db: std::path::PathBuf,
    owner_signer: String,
    intruder_id: String,
}

fn planted() -> Planted {
    let env = Env::new();
    let (key, recipient) = env.new_key("identity.txt");
    let repo = env.path("repo").to_str().unwrap().to_string();
    let init = env
        .run(&["init", &repo, "--recipient", &recipient])
        .ok()
        .stdout;
    let owner_signer = init
        .split_whitespace()
        .find(|w| w.starts_with("ivsig1"))
        .expect("init prints the signer")
        .to_string();
    let owner_db = env.database("owner.sqlite", 2, JournalMode::Wal);
    env.backup_report(owner_db.to_str().unwrap(), &repo, &[]);

    let intruder_db = env.database("intruder.sqlite", 1, JournalMode::Rollback);
    let intruder_state = env.path("intruder-state");
    let r = env
        .run_env(
            &[
                "backup",
                intruder_db.to_str().unwrap(),
                "--to",
                &repo,
                "--name",
                "owner",
                "--json",
            ],
            &[("IVAULT_STATE_DIR", intruder_state.to_str().unwrap())],
        )
        .ok();
    let intruder_id = r.json()[0]["snapshot_id"].as_str().unwrap().to_string();
    Planted {
        env,
        key,
        repo,
        owner_db,
        owner_signer,
        intruder_id,
    }
}

fn snapshots(p: &Planted, state: Option<&Path>, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "snapshots",
        "--repo",
        &p.repo,
        "--identity",
        &p.key,
        "--json",
    ];
    args.extend_from_slice(extra);
    match state {
        Some(s) => p
            .env
            .run_env(&args, &[("IVAULT_STATE_DIR", s.to_str().unwrap())]),
        None => p.env.run(&args),
    }
    .ok()
    .json()
}

#[test]
fn a_planted_snapshot_is_marked_and_never_latest() {
    let p = planted();
    let list = snapshots(&p, None, &[]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let planted = list
        .iter()
        .find(|s| s["id"] == p.intruder_id.as_str())
        .unwrap();
    assert_eq!(planted["authenticity"], "untrusted signer");
    let own = list
        .iter()
        .find(|s| s["id"] != p.intruder_id.as_str())
        .unwrap();
    assert_eq!(own["authenticity"], "signed");
    assert_eq!(own["signer"], p.owner_signer.as_str());

    // `latest` is the owner's snapshot although the planted one is newer.
    let out = p.env.path("latest.sqlite");
    p.env.restore("latest", &p.repo, &p.key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(&p.owner_db));

    // By id, the planted snapshot is refused, and restores only with the override.
    let out2 = p.env.path("planted.sqlite");
    let args = [
        "restore",
        &p.intruder_id,
        "--repo",
        &p.repo,
        "--identity",
        &p.key,
        "--to",
        out2.to_str().unwrap(),
    ];
    let r = p.env.run(&args);
    assert_eq!(r.code, KEY, "{}", r.stderr);
    assert!(r.stderr.contains("is not authenticated"), "{}", r.stderr);
    assert!(r.stderr.contains("--trust-signer"), "{}", r.stderr);
    assert!(!out2.exists());
    let mut forced = args.to_vec();
    forced.push("--allow-unverified");
    let r = p.env.run(&forced).ok();
    assert!(
        r.stderr.contains("is not authenticated (untrusted signer)"),
        "{}",
        r.stderr
    );
    assert!(out2.exists());
}

#[test]
fn a_new_restore_host_trusts_only_the_signers_it_is_given() {
    let p = planted();
    let fresh = p.env.path("drill-state");
    let out = p.env.path("r.sqlite");
    let restore = |extra: &[&str]| {
        let mut args = vec![
            "restore",
            "latest",
            "--repo",
            &p.repo,
            "--identity",
            &p.key,
            "--to",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        p.env
            .run_env(&args, &[("IVAULT_STATE_DIR", fresh.to_str().unwrap())])
    };
    let r = restore(&[]);
    assert_eq!(r.code, KEY, "{}", r.stderr);
    assert!(
        r.stderr.contains("is signed by a trusted signer"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&p.owner_signer), "{}", r.stderr);
    assert!(!out.exists());

    restore(&["--trust-signer", &p.owner_signer]).ok();
    assert_eq!(common::sha256_file(&out), common::sha256_file(&p.owner_db));
    // Remembered for this repository: the next run needs no flag.
    let list = snapshots(&p, Some(&fresh), &[]);
    let trusted = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["authenticity"] == "signed")
        .count();
    assert_eq!(trusted, 1);
}

#[test]
fn a_policy_names_the_trusted_signers() {
    let p = planted();
    let policy = p.env.path("p.toml");
    std::fs::write(
        &policy,
        format!("[encryption]\nsigners = [\"{}\"]\n", p.owner_signer),
    )
    .unwrap();
    let fresh = p.env.path("policy-state");
    let out = p.env.path("r.sqlite");
    p.env
        .run_env(
            &[
                "restore",
                "latest",
                "--repo",
                &p.repo,
                "--identity",
                &p.key,
                "--to",
                out.to_str().unwrap(),
                "--policy",
                policy.to_str().unwrap(),
            ],
            &[("IVAULT_STATE_DIR", fresh.to_str().unwrap())],
        )
        .ok();
    assert_eq!(common::sha256_file(&out), common::sha256_file(&p.owner_db));
}

/// Stores `plain` as a manifest object sealed to the repository's recipients, as a writer
/// holding only the public recipients could; returns its id.
fn plant_manifest(repo: &Path, recipient: &str, plain: &[u8]) -> String {
    let sealed = Sealer::new(&[recipient.to_string()])
        .unwrap()
        .seal(plain, 3)
        .unwrap();
    let id = hex::encode(invoice_vault::hash::sha256(&sealed));
    std::fs::write(repo.join("snapshots").join(&id), sealed).unwrap();
    id
}

#[test]
fn an_altered_signed_manifest_is_a_bad_signature() {
    let p = planted();
    let repo = Path::new(&p.repo);
    let keyring = keys::load_identity(Path::new(&p.key)).unwrap();
    let list = snapshots(&p, None, &[]);
    let own = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["authenticity"] == "signed")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sealed = std::fs::read(repo.join("snapshots").join(&own)).unwrap();
    let plain = invoice_vault::repo::codec::unseal(&keyring, &sealed).unwrap();
    // Move it to 2031, keeping the owner's signature: it must not become `latest`.
    let text = String::from_utf8(plain).unwrap();
    let year = &text[text.find("\"time\":\"").unwrap() + 8..][..4];
    let altered = text.replacen(&format!("\"time\":\"{year}"), "\"time\":\"2031", 1);
    assert_ne!(altered, text);
    let recipient = keyring.recipients().remove(0);
    let forged = plant_manifest(repo, &recipient, altered.as_bytes());

    let list = snapshots(&p, None, &[]);
    let forged_entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == forged.as_str())
        .unwrap()
        .clone();
    assert_eq!(forged_entry["authenticity"], "bad signature");
    let out = p.env.path("r.sqlite");
    p.env.restore("latest", &p.repo, &p.key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(&p.owner_db));
}

#[test]
fn foreign_and_damaged_objects_do_not_block_intact_snapshots() {
    let p = planted();
    let repo = Path::new(&p.repo);
    let keyring = keys::load_identity(Path::new(&p.key)).unwrap();
    // A garbage index, an index and a manifest encrypted to someone else's key, and a
    // damaged copy of the owner's manifest: all named as the format names objects.
    let garbage = b"not an ivault object".to_vec();
    let gid = hex::encode(invoice_vault::hash::sha256(&garbage));
    std::fs::write(repo.join("index").join(&gid), &garbage).unwrap();
    let stranger = Env::new();
    let (_, stranger_recipient) = stranger.new_key("s.txt");
    let foreign = Sealer::new(std::slice::from_ref(&stranger_recipient))
        .unwrap()
        .seal(b"{}", 3)
        .unwrap();
    let fid = hex::encode(invoice_vault::hash::sha256(&foreign));
    std::fs::write(repo.join("index").join(&fid), &foreign).unwrap();
    let foreign_manifest = plant_manifest(repo, &stranger_recipient, b"{}");
    let own_recipient = keyring.recipients().remove(0);
    let unreadable = plant_manifest(repo, &own_recipient, b"{\"not\": \"a manifest\"}");

    let r = p
        .env
        .run(&[
            "snapshots",
            "--repo",
            &p.repo,
            "--identity",
            &p.key,
            "--json",
        ])
        .ok();
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    assert!(r.stderr.contains(&foreign_manifest), "{}", r.stderr);
    assert!(r.stderr.contains(&unreadable), "{}", r.stderr);

    let out = p.env.path("r.sqlite");
    let r = p.env.restore("latest", &p.repo, &p.key, &out);
    assert_eq!(common::sha256_file(&out), common::sha256_file(&p.owner_db));
    assert!(
        r.stderr.contains(&gid) && r.stderr.contains(&fid),
        "{}",
        r.stderr
    );

    // check reports each and goes on; it does not stop with a key error.
    let r = p.env.check(&p.repo, &p.key, false);
    assert_eq!(r.code, INTEGRITY, "{}", r.stderr);
    let report = r.json();
    let objects: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["object"].as_str().unwrap())
        .collect();
    // The manifests are problems (their snapshots are unreadable); the indexes, which no
    // snapshot depends on, are reported as unreadable and counted.
    for id in [&foreign_manifest, &unreadable] {
        assert!(
            objects.iter().any(|o| o.ends_with(id.as_str())),
            "{id} in {objects:?}"
        );
    }
    assert_eq!(report["unreadable_indexes"], 2, "{report}");
    let warnings = report["warnings"].to_string();
    for id in [&gid, &fid] {
        assert!(warnings.contains(id.as_str()), "{id} in {warnings}");
    }
}

#[test]
fn an_identity_that_opens_nothing_is_still_a_key_error() {
    let p = planted();
    let (other, _) = p.env.new_key("other.txt");
    let r = p
        .env
        .run(&["snapshots", "--repo", &p.repo, "--identity", &other]);
    assert_eq!(r.code, KEY, "{}", r.stderr);
    let r = p
        .env
        .run(&["check", "--repo", &p.repo, "--identity", &other]);
    assert_eq!(r.code, KEY, "{}", r.stderr);
}
