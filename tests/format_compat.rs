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

    let out = env.path("restored.sqlite");
    env.run(&[
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
    let c = env.run(&["check", "--repo", &repo, "--identity", key, "--read-data"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
}
