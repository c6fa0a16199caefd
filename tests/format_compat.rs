//! Repositories written by earlier format versions keep reading. `tests/fixtures/format-v1`
//! was written by the first release (two snapshots of a small database, test-only key).

mod common;
use common::Env;
use std::os::unix::fs::PermissionsExt;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-v1");
const INCREMENTAL: &str = "2f0a8a5ec5e65dab2839513d604e6ce0607bef95f3091cd0e5b25e3503f3d933";
const DATABASE_SHA256: &str = "2a63237ee86257763a581433b59cf6180542d4d2c7b14539c87ef6c9db74f95f";

#[test]
fn format_v1_repository_still_restores_and_checks() {
    let env = Env::new();
    let key = env.path("identity.txt");
    std::fs::copy(format!("{FIXTURE}/identity.txt"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = key.to_str().unwrap();
    let repo = format!("{FIXTURE}/repo");

    let list = env
        .run(&["snapshots", "--repo", &repo, "--identity", key, "--json"])
        .ok()
        .json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["kind"], "full");
    assert_eq!(list[1]["kind"], "incremental");
    assert_eq!(list[1]["id"], INCREMENTAL);
    assert_eq!(list[1]["parent"], list[0]["id"]);
    assert_eq!(list[1]["tables"]["invoices"], 301);
    assert_eq!(list[1]["tags"], serde_json::json!(["v1"]));
    // Written before snapshots were signed: readable, and said so.
    assert!(list.iter().all(|s| s["authenticity"] == "unsigned"));

    let out = env.path("restored.sqlite");
    let restored = env
        .run(&[
            "restore",
            &INCREMENTAL[..10],
            "--repo",
            &repo,
            "--identity",
            key,
            "--to",
            out.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(common::sha256_file(&out), DATABASE_SHA256);
    assert!(
        restored
            .stderr
            .contains("written before snapshots were signed"),
        "{}",
        restored.stderr
    );
    let c = env.run(&["check", "--repo", &repo, "--identity", key, "--read-data"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
}

const FIXTURE_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-v2");
const V2_INCREMENTAL: &str = "e67b26dc050a7a156c7721b48351cf89a54d3d80cb9ee92eceffbea5c9c65735";
const V2_DATABASE_SHA256: &str = "2ff94ff0a5e05c754ec898c3a27d26a99d8dd72370f0c95257e38a434544faa7";

/// Version 2 signs every manifest; a reader that trusts the fixture's signer restores it.
#[test]
fn format_v2_repository_restores_with_its_signer_trusted() {
    let env = Env::new();
    let key = env.path("identity.txt");
    std::fs::copy(format!("{FIXTURE_V2}/identity.txt"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = key.to_str().unwrap();
    let repo = format!("{FIXTURE_V2}/repo");
    let signer = std::fs::read_to_string(format!("{FIXTURE_V2}/signer.txt")).unwrap();
    let signer = signer.trim();

    let list = |extra: &[&str]| {
        let mut args = vec!["snapshots", "--repo", &repo, "--identity", key, "--json"];
        args.extend_from_slice(extra);
        env.run(&args).ok().json()
    };
    let untrusted = list(&[]);
    let untrusted = untrusted.as_array().unwrap();
    assert_eq!(untrusted.len(), 2);
    assert!(untrusted
        .iter()
        .all(|s| s["authenticity"] == "untrusted signer" && s["signer"] == signer));

    let trusted = list(&["--trust-signer", signer]);
    let trusted = trusted.as_array().unwrap();
    assert!(trusted.iter().all(|s| s["authenticity"] == "signed"));
    assert_eq!(trusted[1]["id"], V2_INCREMENTAL);
    assert_eq!(trusted[1]["parent"], trusted[0]["id"]);

    let out = env.path("restored.sqlite");
    env.run(&[
        "restore",
        "latest",
        "--repo",
        &repo,
        "--identity",
        key,
        "--to",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(common::sha256_file(&out), V2_DATABASE_SHA256);
    let c = env.run(&["check", "--repo", &repo, "--identity", key, "--read-data"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
}
