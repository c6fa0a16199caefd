//! Policies name sources and targets, so `--to offsite` means a bucket with its endpoint and
//! lock settings; a bad policy is refused with the file, the line and what to fix.

mod common;
use common::s3::S3Server;
use common::Env;
use invoice_vault::sample::JournalMode;

const POLICY: i32 = 9;

fn write_policy(env: &Env, server: &S3Server, db: &str, key: &str, recipient: &str) -> String {
    let text = format!(
        r#"
[[source]]
name = "beijing"
path = "{db}"

[[target]]
name = "local"
url = "{local}"

[[target]]
name = "offsite"
url = "s3://offsite/ivault"
endpoint = "{endpoint}"

[encryption]
recipients = ["{recipient}"]
identity_file = "{key}"

[retention]
keep_daily = 14
"#,
        local = env.path("local-repo").display(),
        endpoint = server.endpoint,
    );
    let path = env.path("beijing.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn names_from_a_policy_reach_local_and_s3_targets() {
    let server = S3Server::start();
    server.bucket("offsite");
    let mut env = Env::with_vars(server.env());
    // The endpoint comes from the policy alone.
    env.vars.retain(|(k, _)| *k != "IVAULT_S3_ENDPOINT");
    let (key, recipient) = env.new_key("id.txt");
    let db = env.database("db.sqlite", 2, JournalMode::Wal);
    let policy = write_policy(&env, &server, db.to_str().unwrap(), &key, &recipient);
    let p = ["--policy", policy.as_str()];

    // init takes its recipients from the policy.
    env.run(&[&["init", "local"][..], &p].concat()).ok();
    env.run(&[&["init", "offsite"][..], &p].concat()).ok();
    // Source by name, every policy target by default.
    let r = env
        .run(&[&["backup", "beijing", "--json"][..], &p].concat())
        .ok()
        .json();
    let targets: Vec<&str> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            env.path("local-repo").to_str().unwrap(),
            "s3://offsite/ivault"
        ]
    );
    // The identity file comes from the policy too.
    for repo in ["local", "offsite"] {
        let list = env
            .run(&[&["snapshots", "--repo", repo, "--json"][..], &p].concat())
            .ok()
            .json();
        assert_eq!(list.as_array().unwrap().len(), 1, "{repo}");
        assert_eq!(list[0]["source"], "beijing");
    }
    let out = env.path("restored.sqlite");
    env.run(
        &[
            &[
                "restore",
                "latest",
                "--repo",
                "offsite",
                "--to",
                out.to_str().unwrap(),
            ][..],
            &p,
        ]
        .concat(),
    )
    .ok();
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));

    // A name the policy does not define is refused with the nearest one.
    let r = env.run(&[&["backup", "beijing", "--to", "ofsite"][..], &p].concat());
    assert_eq!(r.code, POLICY, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("no target named ofsite (did you mean offsite?)"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_bad_policy_names_the_file_and_line() {
    let env = Env::new();
    let path = env.path("bad.toml");
    let repo = env.path("x");
    std::fs::write(
        &path,
        format!(
            "[[target]]\nname = \"local\"\nurl = \"{}\"\n\n[retention]\nkeep_dialy = 3\n",
            repo.display()
        ),
    )
    .unwrap();
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    let r = env.run(&[
        "backup",
        db.to_str().unwrap(),
        "--policy",
        path.to_str().unwrap(),
    ]);
    assert_eq!(r.code, POLICY, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        format!(
            "ivault: policy {}, line 6: unknown key keep_dialy; did you mean keep_daily?",
            path.display()
        )
    );
    let r = env.run(&["backup", db.to_str().unwrap(), "--policy", "missing.toml"]);
    assert_eq!(r.code, POLICY, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot read policy missing.toml"),
        "{}",
        r.stderr
    );
    // Nothing was written anywhere.
    assert!(!repo.exists());
}
